/* SPDX-License-Identifier: MIT */
/*
 * The union root filesystem of a service VM (see vfs.h for the contract).
 *
 * A directory of the union is a "node": one O_PATH fd per layer in which the
 * directory exists and is not hidden (by a whiteout, an opaque directory or
 * a non-directory above it), plus its canonical guest path. Resolution walks
 * the guest path one component at a time with openat(O_PATH|O_NOFOLLOW) in
 * each layer of the current node, reads symbolic links itself and restarts
 * at the VM root for absolute targets; ".." is lexical on the canonical path
 * (symlinks are already resolved there), so it never leaves the root.
 *
 * On-disk conventions of the upper layer are OCI's: ".wh.NAME" is a
 * whiteout of NAME, ".wh..wh..opq" makes a directory opaque. Copy-up uses a
 * temporary name ".wh..wh..cu.N", invisible to the guest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/stat.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "vfs.h"

#include "../common/dir.h"

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define WH_TMP	  ".wh..wh..cu."
#define MODE_MASK 01777 /* set-user/group-ID bits are never stored on the host */
#define COPY_BUF  65536

enum mnt_kind { MNT_UNION, MNT_VOL, MNT_DEV, MNT_PROC };

struct vfs_mnt {
	enum mnt_kind kind;
	int root; /* MNT_VOL: O_PATH fd of the host directory */
	bool ro;
	char *guest;
	size_t glen;
};

struct vfs {
	unsigned nlayers; /* upper (if any) + lowers */
	bool has_upper;	  /* layer[0] is the upper layer */
	int layer[VFS_MAX_LAYERS];
	unsigned root_nfd;    /* layers the root directory spans (opaque roots cut it) */
	struct vfs_mnt *mnts; /* [0] union, then volumes, /dev, /proc */
	unsigned nmnts;
	uint64_t quota, used;
	uint64_t entries, max_entries; /* names in the upper layer (inodes), capped with quota */
	pthread_mutex_t qlock;
	atomic_uint tmpseq;
	struct vfs_proc_ops proc;
};

/* Synthetic objects of /dev and /proc. */
enum synth {
	SY_NONE,
	SY_DEV, /* /dev */
	SY_DEV_NULL,
	SY_DEV_ZERO,
	SY_DEV_FULL,
	SY_DEV_RANDOM,
	SY_DEV_URANDOM,
	SY_DEV_LINK, /* stdin, stdout, stderr, fd */
	SY_PROC,     /* /proc */
	SY_PROC_SELF,
	SY_PROC_FD,	/* /proc/self/fd */
	SY_PROC_FDLINK, /* /proc/self/fd/N */
	SY_PROC_EXE,
	SY_PROC_ROOT,	   /* /proc/self/root -> / */
	SY_PROC_CWD,	   /* /proc/self/cwd -> the working directory */
	SY_PROC_FILE,	   /* /proc/NAME: cpuinfo, meminfo, ... */
	SY_PROC_SELF_FILE, /* /proc/self/NAME: stat, status, cmdline, ... */
};

struct node {
	unsigned mnt;
	unsigned nfd; /* entries of fd[] in use */
	int top;      /* topmost layer holding it, -1 if none */
	bool borrowed;
	enum synth sy;
	long sarg;
	int fd[VFS_MAX_LAYERS];
	size_t plen;
	char path[VFS_PATH_MAX];
};

struct loc {
	struct node n[2];
	struct node *dir, *ent;
	bool has_parent; /* false: the path names a directory itself ("/", "a/.") */
	bool found;
	bool trailing; /* the path ended in '/' */
	char name[NAME_MAX + 1];
	struct stat st;
};

#define R_FOLLOW 1u

struct vfs_dent {
	uint64_t ino;
	uint8_t type;
	char *name;
};

struct vfs_dents {
	size_t n, cap;
	struct vfs_dent *e;
};

/* ------------------------------------------------------------ helpers */

static bool is_wh(const char *name)
{
	return strncmp(name, WH_PREFIX, 4) == 0;
}

static int make_wh(const char *name, char *out)
{
	size_t l = strlen(name);
	if (l + 4 > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(out, WH_PREFIX, 4);
	memcpy(out + 4, name, l + 1);
	return 0;
}

static bool exists_at(int dfd, const char *name)
{
	struct stat st;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void node_clear(struct node *n)
{
	n->mnt = 0;
	n->nfd = 0;
	n->top = -1;
	n->borrowed = false;
	n->sy = SY_NONE;
	n->sarg = 0;
	n->plen = 0;
	n->path[0] = 0;
}

static void node_release(struct node *n)
{
	if (!n->borrowed)
		for (unsigned i = 0; i < n->nfd; i++)
			if (n->fd[i] >= 0)
				close(n->fd[i]);
	n->nfd = 0;
	n->top = -1;
	n->borrowed = false;
	n->sy = SY_NONE;
}

static void node_root(struct vfs *v, struct node *n)
{
	node_clear(n);
	n->nfd = v->root_nfd;
	for (unsigned i = 0; i < n->nfd; i++)
		n->fd[i] = v->layer[i];
	n->top = 0;
	n->borrowed = true;
	n->plen = 1;
	strcpy(n->path, "/");
}

static void loc_release(struct loc *L)
{
	node_release(&L->n[0]);
	node_release(&L->n[1]);
}

/* Join directory path @d and @name into @out; -ENAMETOOLONG. */
static int path_join(const char *d, size_t dl, const char *name, char *out, size_t *outl)
{
	size_t nl = strlen(name);
	size_t base = dl == 1 ? 0 : dl;
	if (base + 1 + nl >= VFS_PATH_MAX)
		return -ENAMETOOLONG;
	memmove(out, d, base);
	out[base] = '/';
	memcpy(out + base + 1, name, nl + 1);
	*outl = base + 1 + nl;
	return 0;
}

static int mount_at(const struct vfs *v, const char *path, size_t len)
{
	for (unsigned i = 1; i < v->nmnts; i++)
		if (v->mnts[i].glen == len && memcmp(v->mnts[i].guest, path, len) == 0)
			return (int)i;
	return -1;
}

static bool node_is_mount_root(const struct vfs *v, const struct node *n)
{
	return n->plen == 1 || mount_at(v, n->path, n->plen) > 0;
}

/* 0 if @n's mount can be written, else -EROFS (or -EACCES for /dev, /proc). */
static int mnt_writable(const struct vfs *v, const struct node *n)
{
	const struct vfs_mnt *m = &v->mnts[n->mnt];
	if (m->kind == MNT_DEV || m->kind == MNT_PROC)
		return -EACCES;
	if (m->kind == MNT_UNION && !v->has_upper)
		return -EROFS;
	return m->ro ? -EROFS : 0;
}

/* ---------------------------------------------------------- synthetic */

struct synth_ent {
	const char *name;
	enum synth sy;
	const char *link;
};

static const struct synth_ent dev_ents[] = {
    {"null", SY_DEV_NULL, NULL},
    {"zero", SY_DEV_ZERO, NULL},
    {"full", SY_DEV_FULL, NULL},
    {"random", SY_DEV_RANDOM, NULL},
    {"urandom", SY_DEV_URANDOM, NULL},
    {"stdin", SY_DEV_LINK, "/proc/self/fd/0"},
    {"stdout", SY_DEV_LINK, "/proc/self/fd/1"},
    {"stderr", SY_DEV_LINK, "/proc/self/fd/2"},
    {"fd", SY_DEV_LINK, "/proc/self/fd"},
};

static const char *const proc_files[] = {"cpuinfo", "meminfo", "uptime",     "loadavg",
					 "version", "stat",    "filesystems"};
static const char *const proc_self_files[] = {"stat", "status", "cmdline", "environ",
					      "maps", "statm",	"limits",  "mounts"};

static const char *const dev_host[] = {
    [SY_DEV_NULL] = "/dev/null",     [SY_DEV_ZERO] = "/dev/zero",	[SY_DEV_FULL] = "/dev/full",
    [SY_DEV_RANDOM] = "/dev/random", [SY_DEV_URANDOM] = "/dev/urandom",
};
static const unsigned dev_minor[] = {
    [SY_DEV_NULL] = 3,	 [SY_DEV_ZERO] = 5,    [SY_DEV_FULL] = 7,
    [SY_DEV_RANDOM] = 8, [SY_DEV_URANDOM] = 9,
};

static bool synth_is_dir(enum synth sy)
{
	return sy == SY_DEV || sy == SY_PROC || sy == SY_PROC_SELF || sy == SY_PROC_FD;
}

static bool synth_is_link(enum synth sy)
{
	return sy == SY_DEV_LINK || sy == SY_PROC_FDLINK || sy == SY_PROC_EXE ||
	       sy == SY_PROC_ROOT || sy == SY_PROC_CWD;
}

static uint64_t name_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

static void synth_stat(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(0, 5);
	st->st_ino = (name_hash(n->path, n->plen) & 0xffffffffu) | 0x100000000ull;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	st->st_atim = st->st_mtim = st->st_ctim = now;
	if (synth_is_dir(n->sy)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else if (synth_is_link(n->sy)) {
		st->st_mode = S_IFLNK | 0777;
	} else if (n->sy >= SY_DEV_NULL && n->sy <= SY_DEV_URANDOM) {
		st->st_mode = S_IFCHR | 0666;
		st->st_rdev = makedev(1, dev_minor[n->sy]);
	} else {
		st->st_mode = S_IFREG | 0444;
	}
}

static bool all_digits(const char *s)
{
	if (!*s || strlen(s) > 9)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The index of @name in @names[0..@n), or -1. */
static long name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return (long)i;
	return -1;
}

/* Look up @name in synthetic directory @d; @c has its path already. */
static int synth_lookup(struct vfs *v, const struct node *d, const char *name, struct node *c)
{
	long idx;
	c->mnt = d->mnt;
	c->nfd = 0;
	c->top = 0;
	switch (d->sy) {
	case SY_DEV:
		for (size_t i = 0; i < sizeof(dev_ents) / sizeof(dev_ents[0]); i++)
			if (!strcmp(name, dev_ents[i].name)) {
				c->sy = dev_ents[i].sy;
				c->sarg = (long)i;
				return 0;
			}
		return -ENOENT;
	case SY_PROC:
		if (!strcmp(name, "self") || all_digits(name)) {
			c->sy = SY_PROC_SELF; /* one process per VM: every pid is "self" */
			return 0;
		}
		idx = name_index(proc_files, sizeof(proc_files) / sizeof(proc_files[0]), name);
		if (idx < 0)
			return -ENOENT;
		c->sy = SY_PROC_FILE;
		c->sarg = idx;
		return 0;
	case SY_PROC_SELF:
		if (!strcmp(name, "fd")) {
			c->sy = SY_PROC_FD;
			return 0;
		}
		if (!strcmp(name, "exe") && v->proc.exe) {
			c->sy = SY_PROC_EXE;
			return 0;
		}
		if (!strcmp(name, "root")) {
			c->sy = SY_PROC_ROOT;
			return 0;
		}
		if (!strcmp(name, "cwd") && v->proc.cwd) {
			c->sy = SY_PROC_CWD;
			return 0;
		}
		idx = name_index(proc_self_files,
				 sizeof(proc_self_files) / sizeof(proc_self_files[0]), name);
		if (idx < 0)
			return -ENOENT;
		c->sy = SY_PROC_SELF_FILE;
		c->sarg = idx;
		return 0;
	case SY_PROC_FD: {
		if (!all_digits(name) || !v->proc.fd_link)
			return -ENOENT;
		long fd = strtol(name, NULL, 10);
		char tmp[8];
		if (v->proc.fd_link(v->proc.ctx, (int)fd, tmp, sizeof(tmp)) < 0)
			return -ENOENT;
		c->sy = SY_PROC_FDLINK;
		c->sarg = fd;
		return 0;
	}
	default:
		return -ENOTDIR;
	}
}

static long synth_readlink(struct vfs *v, const struct node *n, char *buf, size_t len)
{
	const char *s;
	switch (n->sy) {
	case SY_DEV_LINK:
		s = dev_ents[n->sarg].link;
		break;
	case SY_PROC_EXE:
		s = v->proc.exe;
		break;
	case SY_PROC_ROOT:
		s = "/";
		break;
	case SY_PROC_CWD:
		return v->proc.cwd ? v->proc.cwd(v->proc.ctx, buf, len) : -ENOENT;
	case SY_PROC_FDLINK:
		return v->proc.fd_link ? v->proc.fd_link(v->proc.ctx, (int)n->sarg, buf, len)
				       : -ENOENT;
	default:
		return -EINVAL;
	}
	size_t l = strlen(s);
	if (l > len)
		l = len;
	memcpy(buf, s, l);
	return (long)l;
}

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < *cap - *len) {
			*len += (size_t)n;
			return 0;
		}
		size_t nc = *cap * 2 + (size_t)n;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = nc;
	}
}

/* Content of a synthetic /proc file. */
static int synth_content(struct vfs *v, const struct node *n, char **data, size_t *len)
{
	if (n->sy == SY_PROC_SELF_FILE) {
		if (!v->proc.self_file)
			return -ENOENT;
		return v->proc.self_file(v->proc.ctx, proc_self_files[n->sarg], data, len);
	}
	const char *name = proc_files[n->sarg];
	if (v->proc.proc_file) {
		int r = v->proc.proc_file(v->proc.ctx, name, data, len);
		if (r != -ENOENT)
			return r;
	}
	size_t cap = 256, l = 0;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	int err = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (!strcmp(name, "cpuinfo")) {
		for (long i = 0; i < ncpu && !err; i++)
			err = append(&b, &l, &cap,
				     "processor\t: %ld\nvendor_id\t: GenuineIntel\n"
				     "model name\t: nubis virtual CPU\nflags\t\t: fpu sse sse2\n\n",
				     i);
	} else if (!strcmp(name, "meminfo")) {
		err = append(&b, &l, &cap,
			     "MemTotal:       1048576 kB\nMemFree:         524288 kB\n"
			     "MemAvailable:    524288 kB\n");
	} else if (!strcmp(name, "uptime")) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		err = append(&b, &l, &cap, "%ld.%02ld 0.00\n", (long)ts.tv_sec,
			     ts.tv_nsec / 10000000);
	} else if (!strcmp(name, "loadavg")) {
		err = append(&b, &l, &cap, "0.00 0.00 0.00 1/1 1\n");
	} else if (!strcmp(name, "version")) {
		err = append(&b, &l, &cap, "Linux version 6.1.0-nubis (nubis) #1 SMP\n");
	} else if (!strcmp(name, "stat")) {
		err = append(&b, &l, &cap, "cpu  0 0 0 0 0 0 0 0 0 0\nbtime 0\n");
	} else {
		err = append(&b, &l, &cap, "nodev\tproc\n");
	}
	if (err) {
		free(b);
		return err;
	}
	*data = b;
	*len = l;
	return 0;
}

static int synth_open(struct vfs *v, const struct node *n, int flags)
{
	int acc = flags & O_ACCMODE;
	if (n->sy >= SY_DEV_NULL && n->sy <= SY_DEV_URANDOM) {
		int fd = open(dev_host[n->sy], (acc == O_WRONLY ? O_WRONLY : O_RDWR) | O_CLOEXEC |
						   O_NONBLOCK | O_NOCTTY);
		return fd < 0 ? -errno : fd;
	}
	if (acc != O_RDONLY || (flags & (O_TRUNC | O_CREAT)))
		return -EACCES;
	char *data = NULL;
	size_t len = 0;
	int err = synth_content(v, n, &data, &len);
	if (err)
		return err;
	int fd = memfd_create("nubis-proc", MFD_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w <= 0) {
			err = w < 0 ? -errno : -EIO;
			close(fd);
			goto out;
		}
		off += (size_t)w;
	}
	lseek(fd, 0, SEEK_SET);
	err = fd;
out:
	free(data);
	return err;
}

/* ---------------------------------------------------------- lookup */

/* Look up @name in union (or volume) directory @d, from layer @from on.
 * Fills @c's fds (a directory: every layer where it is visible; otherwise
 * the topmost only) and @st (of the topmost). 0 or -ENOENT / -errno. */
static int layer_lookup(struct vfs *v, const struct node *d, const char *name, unsigned from,
			struct node *c, struct stat *st)
{
	bool uni = v->mnts[d->mnt].kind == MNT_UNION;
	char wh[NAME_MAX + 1];
	bool whok = uni && make_wh(name, wh) == 0;
	int err = -ENOENT;

	c->mnt = d->mnt;
	c->nfd = d->nfd;
	c->top = -1;
	c->borrowed = false;
	c->sy = SY_NONE;
	for (unsigned i = 0; i < d->nfd; i++)
		c->fd[i] = -1;
	for (unsigned i = from; i < d->nfd; i++) {
		if (d->fd[i] < 0)
			continue;
		int fd = openat(d->fd[i], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT) {
				err = -errno;
				goto fail;
			}
			if (whok && exists_at(d->fd[i], wh))
				break;
			continue;
		}
		struct stat s;
		if (fstat(fd, &s) < 0) {
			err = -errno;
			close(fd);
			goto fail;
		}
		if (c->top < 0) {
			*st = s;
			c->top = (int)i;
			c->fd[i] = fd;
			if (!S_ISDIR(s.st_mode) || !uni)
				break;
		} else if (!S_ISDIR(s.st_mode)) {
			close(fd); /* a non-directory hides what is below */
			break;
		} else {
			c->fd[i] = fd;
		}
		if (exists_at(fd, WH_OPAQUE))
			break;
	}
	if (c->top < 0)
		return -ENOENT;
	return 0;
fail:
	node_release(c);
	return err;
}

/* Child @name of directory @d into @c: mounts, synthetic trees, layers. */
static int child_lookup(struct vfs *v, const struct node *d, const char *name, struct node *c,
			struct stat *st)
{
	int err;
	node_clear(c);
	if (is_wh(name))
		return -ENOENT;
	err = path_join(d->path, d->plen, name, c->path, &c->plen);
	if (err)
		return err;
	int m = mount_at(v, c->path, c->plen);
	if (m > 0) {
		c->mnt = (unsigned)m;
		c->top = 0;
		if (v->mnts[m].kind == MNT_VOL) {
			c->nfd = 1;
			c->fd[0] = v->mnts[m].root;
			c->borrowed = true;
			if (fstat(c->fd[0], st) < 0)
				return -errno;
			return 0;
		}
		c->sy = v->mnts[m].kind == MNT_DEV ? SY_DEV : SY_PROC;
		synth_stat(c, st);
		return 0;
	}
	if (d->sy != SY_NONE) {
		err = synth_lookup(v, d, name, c);
		if (err)
			return err;
		synth_stat(c, st);
		return 0;
	}
	return layer_lookup(v, d, name, 0, c, st);
}

static long node_readlink(struct vfs *v, const struct node *n, char *buf, size_t len)
{
	if (n->sy != SY_NONE)
		return synth_readlink(v, n, buf, len);
	ssize_t r = readlinkat(n->fd[n->top], "", buf, len);
	return r < 0 ? -errno : r;
}

static int node_stat(const struct node *n, struct stat *st)
{
	if (n->sy != SY_NONE) {
		synth_stat(n, st);
		return 0;
	}
	return fstat(n->fd[n->top], st) < 0 ? -errno : 0;
}

/* Resolve absolute guest path @path (see struct loc). */
static int resolve(struct vfs *v, const char *path, unsigned flags, struct loc *L)
{
	char pend[VFS_PATH_MAX], tmp[VFS_PATH_MAX];
	size_t len = strlen(path);
	int err;

	node_clear(&L->n[0]);
	node_clear(&L->n[1]);
	L->dir = L->ent = NULL;
	L->found = L->has_parent = L->trailing = false;
	L->name[0] = 0;
	if (len == 0)
		return -ENOENT;
	if (len >= VFS_PATH_MAX)
		return -ENAMETOOLONG;
	if (path[0] != '/')
		return -EINVAL;
	memcpy(pend, path, len + 1);

	struct node *cur = &L->n[0], *nx = &L->n[1];
	node_root(v, cur);
	unsigned links = 0;
	const char *p = pend;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break; /* the path names cur itself */
		const char *e = strchrnul(p, '/');
		size_t cl = (size_t)(e - p);
		if (cl > NAME_MAX) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		char name[NAME_MAX + 1];
		memcpy(name, p, cl);
		name[cl] = 0;
		const char *q = e;
		while (*q == '/')
			q++;
		bool last = !*q, trailing = last && *e == '/';
		if (!strcmp(name, ".")) {
			p = q;
			continue;
		}
		if (!strcmp(name, "..")) {
			/* Lexical on the canonical path: rewalk the parent from the root. */
			size_t pl = cur->plen;
			while (pl > 1 && cur->path[pl - 1] != '/')
				pl--;
			if (pl > 1)
				pl--;
			size_t ql = strlen(q);
			if (pl + 1 + ql >= VFS_PATH_MAX) {
				err = -ENAMETOOLONG;
				goto fail;
			}
			memcpy(tmp, cur->path, pl);
			tmp[pl] = '/';
			memcpy(tmp + pl + 1, q, ql + 1);
			memcpy(pend, tmp, pl + ql + 2);
			p = pend;
			node_release(cur);
			node_root(v, cur);
			continue;
		}
		struct stat st;
		err = child_lookup(v, cur, name, nx, &st);
		if (err == -ENOENT && last) {
			node_release(nx);
			L->dir = cur;
			L->ent = nx;
			L->has_parent = true;
			L->trailing = trailing;
			memcpy(L->name, name, cl + 1);
			return 0;
		}
		if (err)
			goto fail;
		if (S_ISLNK(st.st_mode) && (!last || (flags & R_FOLLOW) || trailing)) {
			if (++links > VFS_MAX_LINKS) {
				err = -ELOOP;
				goto fail;
			}
			long n = node_readlink(v, nx, tmp, sizeof(tmp) - 1);
			node_release(nx);
			if (n < 0) {
				err = (int)n;
				goto fail;
			}
			if (n == 0) {
				err = -ENOENT;
				goto fail;
			}
			size_t ql = strlen(q);
			if ((size_t)n + 1 + ql >= VFS_PATH_MAX) {
				err = -ENAMETOOLONG;
				goto fail;
			}
			size_t tl = (size_t)n;
			if (ql || trailing)
				tmp[tl++] = '/';
			memcpy(tmp + tl, q, ql + 1);
			memcpy(pend, tmp, tl + ql + 1);
			p = pend;
			if (pend[0] == '/') {
				node_release(cur);
				node_root(v, cur);
			}
			continue;
		}
		if (last) {
			if (trailing && !S_ISDIR(st.st_mode)) {
				err = -ENOTDIR;
				goto fail;
			}
			L->dir = cur;
			L->ent = nx;
			L->has_parent = L->found = true;
			L->trailing = trailing;
			L->st = st;
			memcpy(L->name, name, cl + 1);
			return 0;
		}
		if (!S_ISDIR(st.st_mode)) {
			err = -ENOTDIR;
			goto fail;
		}
		node_release(cur);
		struct node *t = cur;
		cur = nx;
		nx = t;
		p = q;
	}
	err = node_stat(cur, &L->st);
	if (err)
		goto fail;
	L->ent = cur;
	L->dir = nx;
	L->found = true;
	L->has_parent = false;
	return 0;
fail:
	loc_release(L);
	return err;
}

/* ---------------------------------------------------------- quota */

static void quota_add(struct vfs *v, int64_t delta)
{
	if (!v->quota || !delta)
		return;
	pthread_mutex_lock(&v->qlock);
	if (delta < 0 && (uint64_t)-delta > v->used)
		v->used = 0;
	else
		v->used += (uint64_t)delta;
	pthread_mutex_unlock(&v->qlock);
}

/* Reserve @bytes of new allocation (copy-up): -ENOSPC if it does not fit. */
static int quota_check(struct vfs *v, uint64_t bytes)
{
	if (!v->quota)
		return 0;
	pthread_mutex_lock(&v->qlock);
	int err = v->used + bytes > v->quota || v->used + bytes < v->used ? -ENOSPC : 0;
	pthread_mutex_unlock(&v->qlock);
	return err;
}

/* One more name in the upper layer (file, directory, link, whiteout,
 * marker): -ENOSPC past the entry cap. Approximate across races; the count
 * is redone by the walk at start. */
static int entry_charge(struct vfs *v)
{
	if (!v->quota)
		return 0;
	pthread_mutex_lock(&v->qlock);
	int err = v->entries >= v->max_entries ? -ENOSPC : 0;
	if (!err)
		v->entries++;
	pthread_mutex_unlock(&v->qlock);
	return err;
}

/* entry_charge() for a new name in directory @d: volumes are not counted. */
static int entry_charge_in(struct vfs *v, const struct node *d)
{
	return v->mnts[d->mnt].kind == MNT_UNION ? entry_charge(v) : 0;
}

static void entry_release_in(struct vfs *v, const struct node *d, uint64_t n);

static void entry_release(struct vfs *v, uint64_t n)
{
	if (!v->quota || !n)
		return;
	pthread_mutex_lock(&v->qlock);
	v->entries = v->entries > n ? v->entries - n : 0;
	pthread_mutex_unlock(&v->qlock);
}

static void entry_release_in(struct vfs *v, const struct node *d, uint64_t n)
{
	if (v->mnts[d->mnt].kind == MNT_UNION)
		entry_release(v, n);
}

bool vfs_quota_applies(const struct vfs *v, const struct vfs_file *f)
{
	return v->quota && f->upper;
}

/* Unallocated bytes of [a, b) in the file of @fd (a sparse file), through a
 * private description (SEEK_DATA/SEEK_HOLE move the offset). Conservative:
 * counts everything as a hole if it cannot tell. */
static uint64_t hole_bytes(int fd, uint64_t a, uint64_t b)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	int rfd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (rfd < 0)
		return b - a;
	uint64_t holes = 0, pos = a;
	for (int i = 0; pos < b && i < 256; i++) {
		off_t d = lseek(rfd, (off_t)pos, SEEK_DATA);
		if (d < 0) {
			holes += b - pos; /* ENXIO: no data after pos */
			pos = b;
			break;
		}
		if ((uint64_t)d > pos)
			holes += ((uint64_t)d < b ? (uint64_t)d : b) - pos;
		if ((uint64_t)d >= b) {
			pos = b;
			break;
		}
		off_t h = lseek(rfd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h <= (uint64_t)d)
			break;
		pos = (uint64_t)h;
	}
	if (pos < b)
		holes += b - pos;
	close(rfd);
	return holes;
}

int vfs_quota_begin(struct vfs *v, int fd, uint64_t off, uint64_t *len, uint64_t *token)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	uint64_t alloc = (uint64_t)st.st_blocks * 512, size = (uint64_t)st.st_size;
	uint64_t end;
	if (__builtin_add_overflow(off, *len, &end))
		end = UINT64_MAX;
	/* Writing inside a sparse file fills holes: they count. */
	uint64_t inside = end < size ? end : size, holes = 0;
	if (off < inside && alloc < size)
		holes = (hole_bytes(fd, off, inside) + 4095) & ~4095ull;
	pthread_mutex_lock(&v->qlock);
	uint64_t room = v->quota > v->used ? v->quota - v->used : 0;
	if (holes > room) {
		pthread_mutex_unlock(&v->qlock);
		return *len ? -ENOSPC : 0;
	}
	room -= holes;
	/* Past the end: the new bytes, rounded to 4 KiB blocks. */
	uint64_t base = off > size ? off : size;
	uint64_t maxend = ((base + 4095) & ~4095ull) + (room & ~4095ull);
	if (maxend < base)
		maxend = UINT64_MAX;
	if (end > maxend) {
		if (maxend <= off) {
			pthread_mutex_unlock(&v->qlock);
			return *len ? -ENOSPC : 0;
		}
		*len = maxend - off;
	}
	*token = (uint64_t)st.st_blocks;
	return 0;
}

void vfs_quota_end(struct vfs *v, int fd, uint64_t token)
{
	struct stat st;
	if (fstat(fd, &st) == 0) {
		int64_t d = ((int64_t)st.st_blocks - (int64_t)token) * 512;
		if (d < 0 && (uint64_t)-d > v->used)
			v->used = 0;
		else
			v->used += (uint64_t)d;
	}
	pthread_mutex_unlock(&v->qlock);
}

uint64_t vfs_quota_used(struct vfs *v)
{
	pthread_mutex_lock(&v->qlock);
	uint64_t u = v->used;
	pthread_mutex_unlock(&v->qlock);
	return u;
}

/* Bytes the upper directory @dfd holds (recursive, links shared by nlink);
 * counts its names into *@entries and removes copy-up leftovers. */
static uint64_t tree_usage(int dfd, unsigned depth, uint64_t *entries)
{
	if (depth > VFS_PATH_MAX / 2 + 8) /* deeper than any guest path */
		return 0;
	DIR *d = nb_opendir_at(dfd, ".", 0);
	if (!d)
		return 0;
	int fd = dirfd(d);
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strncmp(e->d_name, WH_TMP, sizeof(WH_TMP) - 1)) {
			unlinkat(fd, e->d_name, 0); /* a copy-up cut short by a crash */
			continue;
		}
		struct stat st;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		(*entries)++;
		if (S_ISDIR(st.st_mode)) {
			int sub =
			    openat(fd, e->d_name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
			if (sub >= 0) {
				sum += tree_usage(sub, depth + 1, entries);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			sum += (uint64_t)st.st_blocks * 512 / (st.st_nlink ? st.st_nlink : 1);
		}
	}
	closedir(d);
	return sum;
}

/* ---------------------------------------------------------- copy-up */

/* Make directory @d exist in the upper layer (creating its ancestors), so
 * that d->fd[0] is its upper fd. Volumes need nothing. */
static int copy_up_dir(struct vfs *v, struct node *d)
{
	int err = mnt_writable(v, d);
	if (err)
		return err;
	if (v->mnts[d->mnt].kind != MNT_UNION || d->fd[0] >= 0)
		return 0;
	struct node *a = malloc(2 * sizeof(struct node));
	if (!a)
		return -ENOMEM;
	struct node *b = a + 1;
	node_root(v, a);
	const char *p = d->path;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		char name[NAME_MAX + 1];
		size_t cl = (size_t)(e - p);
		if (cl > NAME_MAX) {
			err = -ENAMETOOLONG;
			goto out;
		}
		memcpy(name, p, cl);
		name[cl] = 0;
		struct stat st;
		node_clear(b);
		err = path_join(a->path, a->plen, name, b->path, &b->plen);
		if (!err)
			err = layer_lookup(v, a, name, 0, b, &st);
		if (err)
			goto out;
		if (!S_ISDIR(st.st_mode)) {
			node_release(b);
			err = -ENOENT; /* changed under us */
			goto out;
		}
		if (b->fd[0] < 0) {
			if ((err = entry_charge(v))) {
				node_release(b);
				goto out;
			}
			if (mkdirat(a->fd[0], name, st.st_mode & MODE_MASK) < 0) {
				entry_release(v, 1);
				if (errno != EEXIST) {
					err = -errno;
					node_release(b);
					goto out;
				}
			}
			b->fd[0] =
			    openat(a->fd[0], name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
			if (b->fd[0] < 0) {
				err = -errno;
				node_release(b);
				goto out;
			}
			struct timespec ts[2] = {st.st_atim, st.st_mtim};
			utimensat(b->fd[0], "", ts, AT_EMPTY_PATH);
			b->top = 0;
		}
		node_release(a);
		memcpy(a, b, offsetof(struct node, fd) + b->nfd * sizeof(int));
		memcpy(a->path, b->path, b->plen + 1);
		a->plen = b->plen;
		p = e;
	}
	/* a is now @d as seen in the upper layer */
	d->fd[0] = a->borrowed ? dup(a->fd[0]) : a->fd[0];
	if (d->fd[0] < 0) {
		err = -errno;
		goto out;
	}
	if (!a->borrowed)
		a->fd[0] = -1;
	d->top = 0;
	err = 0;
out:
	node_release(a);
	free(a);
	return err;
}

static int copy_data(int in, int out)
{
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	char *buf = malloc(COPY_BUF);
	if (!buf)
		return -ENOMEM;
	int err = 0;
	for (;;) {
		ssize_t n = read(in, buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		for (ssize_t o = 0; o < n;) {
			ssize_t w = write(out, buf + o, (size_t)(n - o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				err = w < 0 ? -errno : -EIO;
				goto done;
			}
			o += w;
		}
	}
done:
	free(buf);
	return err;
}

/* Reopen the entry L->ent (topmost layer) as an O_PATH fd in upper. */
static int reopen_upper(struct loc *L)
{
	struct node *e = L->ent;
	int fd = openat(L->dir->fd[0], L->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	if (!e->borrowed)
		for (unsigned i = 0; i < e->nfd; i++)
			if (e->fd[i] >= 0)
				close(e->fd[i]);
	if (e->nfd == 0)
		e->nfd = 1;
	for (unsigned i = 0; i < e->nfd; i++)
		e->fd[i] = -1;
	e->fd[0] = fd;
	e->top = 0;
	e->borrowed = false;
	L->st = st;
	return 0;
}

/* Copy the (non-directory) entry of @L up to the upper layer if it lives in
 * a lower one; @data false skips the contents (about to be truncated). For
 * directories, copies the directory itself (not its contents). */
static int copy_up(struct vfs *v, struct loc *L, bool data)
{
	struct node *e = L->ent;
	int err = mnt_writable(v, e);
	if (err)
		return err;
	if (v->mnts[e->mnt].kind != MNT_UNION || e->top == 0)
		return 0;
	if (S_ISDIR(L->st.st_mode))
		return copy_up_dir(v, e);
	if (!L->has_parent)
		return -EINVAL;
	err = copy_up_dir(v, L->dir);
	if (err)
		return err;
	int up = L->dir->fd[0];
	mode_t mode = L->st.st_mode;
	if (S_ISLNK(mode)) {
		char t[VFS_PATH_MAX];
		ssize_t n = readlinkat(e->fd[e->top], "", t, sizeof(t) - 1);
		if (n < 0)
			return -errno;
		t[n] = 0;
		if ((err = entry_charge(v)))
			return err;
		if (symlinkat(t, up, L->name) < 0) {
			entry_release(v, 1);
			if (errno != EEXIST)
				return -errno;
		}
		return reopen_upper(L);
	}
	if (!S_ISREG(mode))
		return -EACCES;
	err = quota_check(v, data ? (uint64_t)L->st.st_blocks * 512 : 0);
	if (!err)
		err = entry_charge(v);
	if (err)
		return err;
	int in =
	    openat(L->dir->fd[e->top], L->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (in < 0) {
		entry_release(v, 1);
		return -errno;
	}
	char tmp[32];
	snprintf(tmp, sizeof(tmp), WH_TMP "%u", atomic_fetch_add(&v->tmpseq, 1));
	int out = openat(up, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		err = -errno;
		close(in);
		entry_release(v, 1);
		return err;
	}
	struct stat ist;
	err = fstat(in, &ist) < 0 ? -errno : 0;
	if (!err && (ist.st_ino != L->st.st_ino || ist.st_dev != L->st.st_dev))
		err = -EAGAIN;
	if (!err && data)
		err = copy_data(in, out);
	if (!err && fchmod(out, mode & MODE_MASK) < 0)
		err = -errno;
	struct timespec ts[2] = {L->st.st_atim, L->st.st_mtim};
	if (!err && futimens(out, ts) < 0)
		err = -errno;
	struct stat ost;
	if (!err && fstat(out, &ost) < 0)
		err = -errno;
	close(in);
	close(out);
	if (!err && renameat2(up, tmp, up, L->name, RENAME_NOREPLACE) < 0) {
		err = errno == EEXIST ? 0 : -errno; /* copied up by another thread */
		unlinkat(up, tmp, 0);
		entry_release(v, 1);
	} else if (!err) {
		quota_add(v, (int64_t)ost.st_blocks * 512);
	}
	if (err) {
		unlinkat(up, tmp, 0);
		entry_release(v, 1);
		return err;
	}
	return reopen_upper(L);
}

static int whiteout(struct vfs *v, int upfd, const char *name)
{
	char wh[NAME_MAX + 1];
	int err = make_wh(name, wh);
	if (err || (err = entry_charge(v)))
		return err;
	int fd = openat(upfd, wh, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		entry_release(v, 1);
		return errno == EEXIST ? 0 : -errno;
	}
	close(fd);
	return 0;
}

static void unwhiteout(struct vfs *v, int upfd, const char *name)
{
	char wh[NAME_MAX + 1];
	if (make_wh(name, wh) == 0 && unlinkat(upfd, wh, 0) == 0)
		entry_release(v, 1);
}

/* Whether a lower layer (below upper) still shows @name in directory @d. */
static bool lower_has(struct vfs *v, const struct node *d, const char *name)
{
	if (v->mnts[d->mnt].kind != MNT_UNION || !v->has_upper)
		return false;
	struct node *c = malloc(sizeof(*c));
	if (!c)
		return true; /* err on the side of a whiteout */
	node_clear(c);
	struct stat st;
	bool r = layer_lookup(v, d, name, 1, c, &st) == 0;
	node_release(c);
	free(c);
	return r;
}

/* ---------------------------------------------------------- listing */

struct nameset {
	size_t cap, n;
	const char **slot;
};

static bool nameset_has(const struct nameset *s, const char *name)
{
	if (!s->cap)
		return false;
	size_t i = name_hash(name, strlen(name)) & (s->cap - 1);
	for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->slot[i], name))
			return true;
	return false;
}

/* Add @name (kept by pointer; must outlive the set). */
static int nameset_add(struct nameset *s, const char *name)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		const char **ns = calloc(nc, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i]) {
				size_t j = name_hash(s->slot[i], strlen(s->slot[i])) & (nc - 1);
				while (ns[j])
					j = (j + 1) & (nc - 1);
				ns[j] = s->slot[i];
			}
		free(s->slot);
		s->slot = ns;
		s->cap = nc;
	}
	size_t i = name_hash(name, strlen(name)) & (s->cap - 1);
	for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->slot[i], name))
			return 0;
	s->slot[i] = name;
	s->n++;
	return 0;
}

static void dents_free(struct vfs_dents *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

static int dents_add(struct vfs_dents *d, uint64_t ino, uint8_t type, const char *name)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 32;
		struct vfs_dent *ne = realloc(d->e, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->e = ne;
		d->cap = nc;
	}
	char *n = strdup(name);
	if (!n)
		return -ENOMEM;
	d->e[d->n++] = (struct vfs_dent){ino, type, n};
	return 0;
}

/* Hidden names: the set owns copies made here. */
struct hidden {
	struct nameset set;
	char **own;
	size_t nown, capown;
};

static int hidden_add(struct hidden *h, const char *name)
{
	if (nameset_has(&h->set, name))
		return 0;
	if (h->nown == h->capown) {
		size_t nc = h->capown ? h->capown * 2 : 32;
		char **no = realloc(h->own, nc * sizeof(*no));
		if (!no)
			return -ENOMEM;
		h->own = no;
		h->capown = nc;
	}
	char *c = strdup(name);
	if (!c)
		return -ENOMEM;
	h->own[h->nown++] = c;
	return nameset_add(&h->set, c);
}

static void hidden_free(struct hidden *h)
{
	for (size_t i = 0; i < h->nown; i++)
		free(h->own[i]);
	free(h->own);
	free(h->set.slot);
}

/* Merged listing of the directory spanning @fds (@nfd layers) at guest path
 * @path in mount @mnt, or synthetic directory @sy. */
static int list_dir(struct vfs *v, unsigned mnt, enum synth sy, const int *fds, unsigned nfd,
		    const char *path, struct vfs_dents **out)
{
	struct vfs_dents *d = calloc(1, sizeof(*d));
	struct hidden h = {0};
	int err = 0;
	if (!d)
		return -ENOMEM;
	bool uni = v->mnts[mnt].kind == MNT_UNION;
	uint64_t dino = name_hash(path, strlen(path));
	if ((err = dents_add(d, dino, DT_DIR, ".")) || (err = dents_add(d, dino, DT_DIR, "..")))
		goto fail;
	if (sy == SY_DEV) {
		for (size_t i = 0; i < sizeof(dev_ents) / sizeof(dev_ents[0]) && !err; i++)
			err = dents_add(d, 0x200000000ull + i,
					dev_ents[i].sy == SY_DEV_LINK ? DT_LNK : DT_CHR,
					dev_ents[i].name);
	} else if (sy == SY_PROC) {
		err = dents_add(d, 0x300000000ull, DT_DIR, "self");
		for (size_t i = 0; i < sizeof(proc_files) / sizeof(proc_files[0]) && !err; i++)
			err = dents_add(d, 0x300000001ull + i, DT_REG, proc_files[i]);
	} else if (sy == SY_PROC_SELF) {
		err = dents_add(d, 0x310000000ull, DT_DIR, "fd");
		if (!err && v->proc.exe)
			err = dents_add(d, 0x310000001ull, DT_LNK, "exe");
		if (!err)
			err = dents_add(d, 0x310000002ull, DT_LNK, "root");
		if (!err && v->proc.cwd)
			err = dents_add(d, 0x3100000ffull, DT_LNK, "cwd");
		for (size_t i = 0; i < sizeof(proc_self_files) / sizeof(proc_self_files[0]) && !err;
		     i++)
			err = dents_add(d, 0x310000003ull + i, DT_REG, proc_self_files[i]);
	} else if (sy == SY_PROC_FD) {
		int fdl[4096];
		size_t n = v->proc.fd_list ? v->proc.fd_list(v->proc.ctx, fdl, 4096) : 0;
		for (size_t i = 0; i < n && !err; i++) {
			char nm[16];
			snprintf(nm, sizeof(nm), "%d", fdl[i]);
			err = dents_add(d, 0x320000000ull + (uint64_t)fdl[i], DT_LNK, nm);
		}
	}
	if (err)
		goto fail;
	for (unsigned i = 0; i < nfd && sy == SY_NONE; i++) {
		if (fds[i] < 0)
			continue;
		DIR *dir = nb_opendir_at(fds[i], ".", 0);
		if (!dir) {
			err = -errno;
			goto fail;
		}
		struct dirent *e;
		while ((e = readdir(dir))) {
			const char *n = e->d_name;
			if (!strcmp(n, ".") || !strcmp(n, ".."))
				continue;
			if (is_wh(n)) {
				if (uni && (err = hidden_add(&h, n + 4)))
					break;
				continue;
			}
			if (nameset_has(&h.set, n))
				continue;
			if ((err = hidden_add(&h, n)) ||
			    (err = dents_add(d, e->d_ino, e->d_type, n)))
				break;
		}
		closedir(dir);
		if (err)
			goto fail;
	}
	if (sy == SY_NONE && !strcmp(path, "/")) {
		if (!nameset_has(&h.set, "dev") &&
		    (err = dents_add(d, 0x200000000ull, DT_DIR, "dev")))
			goto fail;
		if (!nameset_has(&h.set, "proc") &&
		    (err = dents_add(d, 0x300000000ull, DT_DIR, "proc")))
			goto fail;
	}
	/* Volume mount points below this directory not present in the layers. */
	size_t pl = strlen(path);
	for (unsigned m = 1; m < v->nmnts && sy == SY_NONE; m++) {
		const struct vfs_mnt *mt = &v->mnts[m];
		if (mt->kind != MNT_VOL)
			continue;
		const char *slash = strrchr(mt->guest, '/');
		size_t dl = (size_t)(slash - mt->guest);
		if (!((dl == 0 && pl == 1) || (dl == pl && !memcmp(mt->guest, path, pl))))
			continue;
		if (nameset_has(&h.set, slash + 1))
			continue;
		if ((err = hidden_add(&h, slash + 1)) ||
		    (err = dents_add(d, name_hash(mt->guest, mt->glen), DT_DIR, slash + 1)))
			goto fail;
	}
	hidden_free(&h);
	*out = d;
	return 0;
fail:
	hidden_free(&h);
	dents_free(d);
	return err;
}

struct dirent64_hdr {
	uint64_t d_ino;
	int64_t d_off;
	uint16_t d_reclen;
	uint8_t d_type;
} __attribute__((packed));

long vfs_getdents(struct vfs *v, struct vfs_file *f, uint64_t *pos, void *buf, size_t len)
{
	if (f->type != VFS_FT_DIR)
		return -ENOTDIR;
	if (!f->ents || *pos == 0) {
		/* The directory is found again by its canonical path (an open
		 * directory holds one host fd, not one per layer). Gone: empty. */
		struct vfs_dents *d;
		struct loc *L = malloc(sizeof(*L));
		if (!L)
			return -ENOMEM;
		int err = resolve(v, f->path, R_FOLLOW, L);
		if (!err && L->found && S_ISDIR(L->st.st_mode))
			err = list_dir(v, L->ent->mnt, L->ent->sy, L->ent->fd, L->ent->nfd, f->path,
				       &d);
		else if (!err || err == -ENOENT || err == -ENOTDIR)
			err = list_dir(v, f->mnt, SY_NONE, NULL, 0, f->path, &d);
		loc_release(L); /* idempotent: also after a failed resolve */
		free(L);
		if (err)
			return err;
		dents_free(f->ents);
		f->ents = d;
	}
	size_t o = 0;
	uint8_t *b = buf;
	while (*pos < f->ents->n) {
		const struct vfs_dent *e = &f->ents->e[*pos];
		size_t nl = strlen(e->name);
		size_t rl = (sizeof(struct dirent64_hdr) + nl + 1 + 7) & ~(size_t)7;
		if (o + rl > len) {
			if (o == 0)
				return -EINVAL;
			break;
		}
		struct dirent64_hdr h = {e->ino ? e->ino : 1, (int64_t)*pos + 1, (uint16_t)rl,
					 e->type};
		memcpy(b + o, &h, sizeof(h));
		memcpy(b + o + sizeof(h), e->name, nl);
		memset(b + o + sizeof(h) + nl, 0, rl - sizeof(h) - nl);
		o += rl;
		(*pos)++;
	}
	return (long)o;
}

int vfs_dir_seek(struct vfs_file *f, uint64_t pos)
{
	if (f->type != VFS_FT_DIR)
		return -ENOTDIR;
	if (pos != 0 && (!f->ents || pos > f->ents->n))
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------- life cycle */

static int open_dir(const char *path, struct nb_error *err, const char *what)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		nb_error_sys(err, errno, "%s %s", what, path);
	return fd;
}

static bool guest_path_ok(const char *p)
{
	if (p[0] != '/' || p[1] == 0 || strlen(p) >= VFS_PATH_MAX)
		return false;
	for (const char *c = p; *c;) {
		if (*c != '/')
			return false;
		const char *e = strchrnul(c + 1, '/');
		size_t l = (size_t)(e - c - 1);
		if (l == 0 || l > NAME_MAX || (l == 1 && c[1] == '.') ||
		    (l == 2 && c[1] == '.' && c[2] == '.') || is_wh(c + 1))
			return false;
		c = e;
	}
	return true;
}

static int mkdir_p(struct vfs *v, const char *path)
{
	char buf[VFS_PATH_MAX];
	size_t l = strlen(path);
	if (l >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, l + 1);
	for (size_t i = 1; i <= l; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char c = buf[i];
		buf[i] = 0;
		int err = vfs_mkdir(v, buf, 0755);
		buf[i] = c;
		if (err && err != -EEXIST)
			return err;
	}
	return 0;
}

int vfs_create(const struct vfs_config *cfg, struct vfs **out, struct nb_error *err)
{
	struct vfs *v = calloc(1, sizeof(*v));
	if (!v)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	pthread_mutex_init(&v->qlock, NULL);
	v->quota = cfg->quota;
	size_t nl = cfg->nlower + (cfg->upper_dir ? 1 : 0);
	if (nl == 0) {
		nb_error_set(err, NB_EINVAL, "root filesystem: no layers");
		goto fail;
	}
	if (nl > VFS_MAX_LAYERS) {
		nb_error_set(err, NB_EINVAL, "root filesystem: %zu layers (at most %d)", nl,
			     VFS_MAX_LAYERS);
		goto fail;
	}
	v->nmnts = 0;
	v->mnts = calloc(cfg->nvolumes + 3, sizeof(*v->mnts));
	if (!v->mnts) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	v->mnts[v->nmnts++] = (struct vfs_mnt){MNT_UNION, -1, false, NULL, 1};
	if (cfg->upper_dir) {
		if (mkdir(cfg->upper_dir, 0700) < 0 && errno != EEXIST) {
			nb_error_sys(err, errno, "writable layer %s", cfg->upper_dir);
			goto fail;
		}
		int fd = open_dir(cfg->upper_dir, err, "writable layer");
		if (fd < 0)
			goto fail;
		v->layer[v->nlayers++] = fd;
		v->has_upper = true;
	}
	for (size_t i = 0; i < cfg->nlower; i++) {
		int fd = open_dir(cfg->lower_dirs[i], err, "image layer");
		if (fd < 0)
			goto fail;
		v->layer[v->nlayers++] = fd;
	}
	v->root_nfd = v->nlayers;
	for (unsigned i = 0; i + 1 < v->nlayers; i++)
		if (exists_at(v->layer[i], WH_OPAQUE)) {
			v->root_nfd = i + 1;
			break;
		}
	for (size_t i = 0; i < cfg->nvolumes; i++) {
		const struct vfs_volume *vol = &cfg->volumes[i];
		if (!vol->guest_dir || !guest_path_ok(vol->guest_dir)) {
			nb_error_set(
			    err, NB_EINVAL,
			    "volume %s: guest path '%s' is not an absolute normalized path "
			    "below /",
			    vol->host_dir ? vol->host_dir : "?",
			    vol->guest_dir ? vol->guest_dir : "");
			goto fail;
		}
		if (mount_at(v, vol->guest_dir, strlen(vol->guest_dir)) > 0) {
			nb_error_set(err, NB_EINVAL, "volume: guest path %s given twice",
				     vol->guest_dir);
			goto fail;
		}
		struct vfs_mnt *m = &v->mnts[v->nmnts];
		m->kind = MNT_VOL;
		m->ro = vol->readonly;
		m->root = open_dir(vol->host_dir, err, "volume");
		if (m->root < 0)
			goto fail;
		m->guest = strdup(vol->guest_dir);
		if (!m->guest) {
			close(m->root);
			nb_error_set(err, NB_ERESOURCE, "out of memory");
			goto fail;
		}
		m->glen = strlen(m->guest);
		v->nmnts++;
	}
	const char *syn[2] = {"/dev", "/proc"};
	for (int i = 0; i < 2; i++) {
		struct vfs_mnt *m = &v->mnts[v->nmnts];
		m->kind = i == 0 ? MNT_DEV : MNT_PROC;
		m->root = -1;
		m->ro = true;
		m->guest = strdup(syn[i]);
		if (!m->guest) {
			nb_error_set(err, NB_ERESOURCE, "out of memory");
			goto fail;
		}
		m->glen = strlen(m->guest);
		v->nmnts++;
	}
	if (v->has_upper && v->quota) {
		v->used = tree_usage(v->layer[0], 0, &v->entries);
		v->max_entries =
		    v->quota / VFS_ENTRY_BYTES > 1024 ? v->quota / VFS_ENTRY_BYTES : 1024;
	}
	if (v->has_upper)
		for (size_t i = 0; i < cfg->nvolumes; i++)
			mkdir_p(v, cfg->volumes[i].guest_dir); /* best effort: listed anyway */
	/* A mount point below a symlink of the image (/var/run -> /run) is
	 * matched at its canonical path, where lookups arrive. */
	for (unsigned i = 1; i < v->nmnts; i++) {
		struct vfs_mnt *m = &v->mnts[i];
		char *slash = strrchr(m->guest, '/');
		if (m->kind != MNT_VOL || slash == m->guest)
			continue;
		char parent[VFS_PATH_MAX], canon[VFS_PATH_MAX];
		memcpy(parent, m->guest, (size_t)(slash - m->guest));
		parent[slash - m->guest] = 0;
		if (vfs_realdir(v, parent, canon) < 0 || !strcmp(canon, parent))
			continue;
		size_t cl = strlen(canon), bl = strlen(slash);
		char *g = cl + bl < VFS_PATH_MAX ? malloc(cl + bl + 1) : NULL;
		if (!g)
			continue;
		memcpy(g, canon, cl);
		memcpy(g + (cl == 1 ? 0 : cl), slash, bl + 1);
		free(m->guest);
		m->guest = g;
		m->glen = strlen(g);
	}
	*out = v;
	return 0;
fail:
	vfs_destroy(v);
	return -1;
}

void vfs_destroy(struct vfs *v)
{
	if (!v)
		return;
	for (unsigned i = 0; i < v->nlayers; i++)
		close(v->layer[i]);
	for (unsigned i = 0; v->mnts && i < v->nmnts; i++) {
		if (v->mnts[i].root >= 0)
			close(v->mnts[i].root);
		free(v->mnts[i].guest);
	}
	free(v->mnts);
	pthread_mutex_destroy(&v->qlock);
	free(v);
}

void vfs_set_proc_ops(struct vfs *v, const struct vfs_proc_ops *ops)
{
	v->proc = *ops;
}

void vfs_file_destroy(struct vfs_file *f)
{
	if (!f)
		return;
	free(f->path);
	dents_free(f->ents);
	free(f);
}

/* ---------------------------------------------------------- open */

static struct loc *loc_new(void)
{
	struct loc *L = malloc(sizeof(*L));
	if (L) {
		node_clear(&L->n[0]);
		node_clear(&L->n[1]);
	}
	return L;
}

static void loc_free(struct loc *L)
{
	if (L) {
		loc_release(L);
		free(L);
	}
}

/* Open the entry of @L (found, regular) with host @flags, checking that the
 * inode is the one resolved (never follows a link swapped in meanwhile). */
static int open_entry(struct loc *L, int flags)
{
	int pfd = L->dir->fd[L->ent->top];
	int fd = openat(pfd, L->name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errno == ELOOP ? -EAGAIN : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_ino != L->st.st_ino || st.st_dev != L->st.st_dev) {
		close(fd);
		return -EAGAIN;
	}
	return fd;
}

static int file_new(struct loc *L, enum vfs_file_type type, bool upper, struct vfs_file **out)
{
	struct vfs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->type = type;
	f->upper = upper;
	f->mnt = L->ent->mnt;
	f->synth = L->ent->sy;
	char p[VFS_PATH_MAX];
	size_t pl;
	if (L->has_parent) {
		if (path_join(L->dir->path, L->dir->plen, L->name, p, &pl)) {
			free(f);
			return -ENAMETOOLONG;
		}
	} else {
		memcpy(p, L->ent->path, L->ent->plen + 1);
	}
	f->path = strdup(p);
	if (!f->path) {
		free(f);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

/* Ready directory L->dir for a new entry named L->name: refuses a whiteout
 * name (-EINVAL), copies the directory up and charges one entry to the quota.
 * 0 or -errno; on 0 the caller undoes the charge with entry_release_in(v,
 * L->dir, 1) if the entry is then not created. */
static int create_prepare(struct vfs *v, struct loc *L)
{
	int err;
	if (is_wh(L->name))
		return -EINVAL;
	if ((err = copy_up_dir(v, L->dir)))
		return err;
	return entry_charge_in(v, L->dir);
}

static int open_once(struct vfs *v, const char *path, int flags, mode_t mode, struct vfs_file **out)
{
	struct loc *L = loc_new();
	if (!L)
		return -ENOMEM;
	unsigned rf = 0;
	if (!(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL)))
		rf |= R_FOLLOW;
	int acc = flags & O_ACCMODE;
	bool wr = acc != O_RDONLY || (flags & O_TRUNC);
	int keep = flags & (O_APPEND | O_SYNC | O_DSYNC | O_DIRECT | O_NOATIME);
	int fd = -1, err = resolve(v, path, rf, L);
	if (err)
		goto out;
	if (acc == O_ACCMODE && !(flags & O_PATH)) {
		err = -EINVAL;
		goto out;
	}
	if (flags & O_PATH) {
		if (!L->found) {
			err = -ENOENT;
			goto out;
		}
		if ((flags & O_DIRECTORY) && !S_ISDIR(L->st.st_mode)) {
			err = -ENOTDIR;
			goto out;
		}
		if (L->ent->sy != SY_NONE)
			fd = memfd_create("nubis-path", MFD_CLOEXEC);
		else
			fd = fcntl(L->ent->fd[L->ent->top], F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			goto out;
		}
		err = file_new(L, VFS_FT_PATH, false, out);
		goto out;
	}
	if (!L->found) {
		if (!(flags & O_CREAT)) {
			err = -ENOENT;
			goto out;
		}
		if (L->trailing) {
			err = -EISDIR;
			goto out;
		}
		if ((err = create_prepare(v, L)))
			goto out;
		fd = openat(L->dir->fd[0], L->name,
			    acc | keep | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
				O_NOCTTY,
			    mode & MODE_MASK);
		if (fd < 0) {
			err = errno == EEXIST ? -EAGAIN : -errno;
			entry_release_in(v, L->dir, 1);
			goto out;
		}
		bool uni = v->mnts[L->dir->mnt].kind == MNT_UNION;
		if (uni)
			unwhiteout(v, L->dir->fd[0], L->name);
		err = file_new(L, VFS_FT_REG, uni, out);
		goto out;
	}
	if ((flags & O_CREAT) && (flags & O_EXCL)) {
		err = -EEXIST;
		goto out;
	}
	mode_t m = L->st.st_mode;
	if (S_ISLNK(m)) {
		err = -ELOOP;
		goto out;
	}
	if (L->ent->sy != SY_NONE) {
		if (synth_is_dir(L->ent->sy)) {
			if (wr || (flags & O_CREAT)) {
				err = -EISDIR;
				goto out;
			}
			fd = memfd_create("nubis-dir", MFD_CLOEXEC);
			if (fd < 0) {
				err = -errno;
				goto out;
			}
			err = file_new(L, VFS_FT_DIR, false, out);
			goto out;
		}
		if (flags & O_DIRECTORY) {
			err = -ENOTDIR;
			goto out;
		}
		fd = synth_open(v, L->ent, flags);
		if (fd < 0) {
			err = fd;
			goto out;
		}
		err = file_new(L, L->ent->sy <= SY_DEV_URANDOM ? VFS_FT_DEV : VFS_FT_SYNTH, false,
			       out);
		goto out;
	}
	if (S_ISDIR(m)) {
		if (wr || (flags & O_CREAT)) {
			err = -EISDIR;
			goto out;
		}
		fd = openat(L->ent->fd[L->ent->top], ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			err = -errno;
			goto out;
		}
		if ((err = file_new(L, VFS_FT_DIR, false, out)))
			goto out;
		goto out;
	}
	if (flags & O_DIRECTORY) {
		err = -ENOTDIR;
		goto out;
	}
	if (!S_ISREG(m)) {
		err = S_ISSOCK(m) ? -ENXIO : -EACCES;
		goto out;
	}
	bool uni = v->mnts[L->ent->mnt].kind == MNT_UNION;
	blkcnt_t before = 0;
	if (wr) {
		if ((err = copy_up(v, L, !(flags & O_TRUNC))))
			goto out;
		before = L->st.st_blocks;
	}
	fd = open_entry(L, acc | keep | (flags & O_TRUNC));
	if (fd < 0) {
		err = fd;
		goto out;
	}
	if ((flags & O_TRUNC) && uni) {
		struct stat st;
		if (fstat(fd, &st) == 0)
			quota_add(v, ((int64_t)st.st_blocks - (int64_t)before) * 512);
	}
	err = file_new(L, VFS_FT_REG, uni && L->ent->top == 0 && v->has_upper, out);
out:
	loc_free(L);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

int vfs_open_tmpfile(struct vfs *v, const char *dir, int flags, mode_t mode, struct vfs_file **out)
{
	int acc = flags & O_ACCMODE;
	if (acc != O_WRONLY && acc != O_RDWR)
		return -EINVAL;
	struct loc *L = loc_new();
	if (!L)
		return -ENOMEM;
	int fd = -1, err = resolve(v, dir, R_FOLLOW, L);
	if (err)
		goto out;
	if (!L->found) {
		err = -ENOENT;
		goto out;
	}
	if (!S_ISDIR(L->st.st_mode)) {
		err = -ENOTDIR;
		goto out;
	}
	if (L->ent->sy != SY_NONE) {
		err = -EOPNOTSUPP;
		goto out;
	}
	if ((err = mnt_writable(v, L->ent)) || (err = copy_up_dir(v, L->ent)))
		goto out;
	fd = openat(L->ent->fd[0], ".",
		    __O_TMPFILE | O_DIRECTORY | acc |
			(flags & (O_APPEND | O_SYNC | O_DSYNC | O_DIRECT | O_NOATIME)) | O_CLOEXEC |
			O_NONBLOCK,
		    mode & MODE_MASK);
	if (fd < 0) {
		err = errno == EISDIR ? -EOPNOTSUPP : -errno;
		goto out;
	}
	struct vfs_file *f = calloc(1, sizeof(*f));
	char p[VFS_PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/#%d (deleted)", dir, fd);
	if (!f || !(f->path = strdup(p))) {
		free(f);
		err = -ENOMEM;
		goto out;
	}
	f->type = VFS_FT_REG;
	f->mnt = L->ent->mnt;
	f->tmpfile = true;
	f->upper = v->mnts[L->ent->mnt].kind == MNT_UNION;
	*out = f;
out:
	loc_free(L);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

void vfs_file_closing(struct vfs *v, struct vfs_file *f, int fd)
{
	struct stat st;
	if (f && f->tmpfile && f->upper && fstat(fd, &st) == 0 && st.st_nlink == 0)
		quota_add(v, -(int64_t)st.st_blocks * 512);
}

int vfs_open(struct vfs *v, const char *path, int flags, mode_t mode, struct vfs_file **out)
{
	int r;
	for (int i = 0; i < 8; i++) {
		r = open_once(v, path, flags, mode, out);
		if (r != -EAGAIN)
			return r;
	}
	return r;
}

int vfs_open_exec(struct vfs *v, const char *path)
{
	struct loc *L = loc_new();
	if (!L)
		return -ENOMEM;
	int err = resolve(v, path, R_FOLLOW, L);
	if (err)
		goto out;
	if (!L->found) {
		err = -ENOENT;
		goto out;
	}
	if (!S_ISREG(L->st.st_mode) || L->ent->sy != SY_NONE || !L->has_parent ||
	    !(L->st.st_mode & 0111)) {
		err = -EACCES;
		goto out;
	}
	err = open_entry(L, O_RDONLY);
	if (err >= 0) {
		/* no O_NONBLOCK on the loader's fd */
		int fl = fcntl(err, F_GETFL);
		fcntl(err, F_SETFL, fl & ~O_NONBLOCK);
	}
out:
	loc_free(L);
	return err;
}

/* ---------------------------------------------------------- path ops */

/* Resolve @path into a new loc; on success the caller frees it. */
static int lookup(struct vfs *v, const char *path, unsigned rf, struct loc **out)
{
	struct loc *L = loc_new();
	if (!L)
		return -ENOMEM;
	int err = resolve(v, path, rf, L);
	if (err) {
		free(L);
		return err;
	}
	*out = L;
	return 0;
}

static unsigned follow_flag(int flags)
{
	return (flags & AT_SYMLINK_NOFOLLOW) ? 0 : R_FOLLOW;
}

int vfs_stat(struct vfs *v, const char *path, int flags, struct stat *st)
{
	struct loc *L;
	int err = lookup(v, path, follow_flag(flags), &L);
	if (err)
		return err;
	if (!L->found)
		err = -ENOENT;
	else
		*st = L->st;
	loc_free(L);
	return err;
}

int vfs_statx(struct vfs *v, const char *path, int flags, unsigned mask, void *buf)
{
	struct loc *L;
	int err = lookup(v, path, follow_flag(flags), &L);
	if (err)
		return err;
	struct statx *sx = buf;
	if (!L->found) {
		err = -ENOENT;
	} else if (L->ent->sy != SY_NONE) {
		const struct stat *s = &L->st;
		memset(sx, 0, sizeof(*sx));
		sx->stx_mask = STATX_BASIC_STATS;
		sx->stx_blksize = (uint32_t)s->st_blksize;
		sx->stx_nlink = (uint32_t)s->st_nlink;
		sx->stx_mode = (uint16_t)s->st_mode;
		sx->stx_ino = s->st_ino;
		sx->stx_atime.tv_sec = s->st_atim.tv_sec;
		sx->stx_mtime.tv_sec = s->st_mtim.tv_sec;
		sx->stx_ctime.tv_sec = s->st_ctim.tv_sec;
		sx->stx_rdev_major = major(s->st_rdev);
		sx->stx_rdev_minor = minor(s->st_rdev);
		sx->stx_dev_minor = 5;
	} else if (statx(L->ent->fd[L->ent->top], "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, mask,
			 sx) < 0) {
		err = -errno;
	}
	loc_free(L);
	return err;
}

int vfs_access(struct vfs *v, const char *path, int mode, int flags)
{
	if (mode & ~(R_OK | W_OK | X_OK))
		return -EINVAL;
	struct loc *L;
	int err = lookup(v, path, follow_flag(flags), &L);
	if (err)
		return err;
	if (!L->found)
		err = -ENOENT;
	else if ((mode & W_OK) && L->ent->sy >= SY_DEV_NULL && L->ent->sy <= SY_DEV_URANDOM)
		err = 0;
	else if (mode & W_OK)
		err = mnt_writable(v, L->ent);
	if (!err && (mode & X_OK) && !S_ISDIR(L->st.st_mode) && !(L->st.st_mode & 0111))
		err = -EACCES;
	loc_free(L);
	return err;
}

int vfs_mkdir(struct vfs *v, const char *path, mode_t mode)
{
	struct loc *L;
	int err = lookup(v, path, 0, &L);
	if (err)
		return err;
	if (L->found) {
		err = -EEXIST;
		goto out;
	}
	if (is_wh(L->name)) {
		err = -EINVAL;
		goto out;
	}
	if ((err = copy_up_dir(v, L->dir)))
		goto out;
	int up = L->dir->fd[0];
	bool uni = v->mnts[L->dir->mnt].kind == MNT_UNION;
	bool opaque = uni && lower_has(v, L->dir, L->name);
	if ((err = entry_charge_in(v, L->dir)))
		goto out;
	if (opaque && (err = entry_charge(v))) {
		entry_release(v, 1);
		goto out;
	}
	if (mkdirat(up, L->name, mode & MODE_MASK) < 0) {
		err = -errno;
		entry_release_in(v, L->dir, opaque ? 2 : 1);
		goto out;
	}
	if (opaque) {
		int d = openat(up, L->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int fd =
		    d < 0 ? -1
			  : openat(d, WH_OPAQUE, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			err = -errno;
		else
			close(fd);
		if (d >= 0)
			close(d);
		if (err) {
			unlinkat(up, L->name, AT_REMOVEDIR);
			entry_release(v, 2);
			goto out;
		}
	}
	if (uni)
		unwhiteout(v, up, L->name);
out:
	loc_free(L);
	return err;
}

/* Empty in the guest's view? 0, -ENOTEMPTY or -errno. */
static int dir_empty(struct vfs *v, const struct node *d)
{
	struct vfs_dents *ds;
	int err = list_dir(v, d->mnt, d->sy, d->fd, d->nfd, d->path, &ds);
	if (err)
		return err;
	err = ds->n > 2 ? -ENOTEMPTY : 0;
	dents_free(ds);
	return err;
}

/* Remove the whiteouts and markers an (empty to the guest) upper directory
 * @fd holds, so that the host can remove or replace it. */
static int clear_upper_dir(struct vfs *v, int pfd, const char *name)
{
	DIR *d = nb_opendir_at(pfd, name, O_NOFOLLOW);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int fd = dirfd(d);
	int err = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!is_wh(e->d_name)) {
			err = -ENOTEMPTY;
			break;
		}
		if (unlinkat(fd, e->d_name, 0) == 0)
			entry_release(v, 1);
	}
	closedir(d);
	return err;
}

int vfs_rmdir(struct vfs *v, const char *path)
{
	struct loc *L;
	int err = lookup(v, path, 0, &L);
	if (err)
		return err;
	if (!L->found) {
		err = -ENOENT;
		goto out;
	}
	if (!S_ISDIR(L->st.st_mode)) {
		err = -ENOTDIR;
		goto out;
	}
	if (!L->has_parent || node_is_mount_root(v, L->ent) || L->ent->sy != SY_NONE) {
		err = -EBUSY;
		goto out;
	}
	if ((err = mnt_writable(v, L->ent)) || (err = dir_empty(v, L->ent)))
		goto out;
	bool uni = v->mnts[L->ent->mnt].kind == MNT_UNION;
	if (!uni) {
		if (unlinkat(L->dir->fd[0], L->name, AT_REMOVEDIR) < 0)
			err = -errno;
		goto out;
	}
	if ((err = copy_up_dir(v, L->dir)))
		goto out;
	int up = L->dir->fd[0];
	if (L->ent->fd[0] >= 0) {
		if ((err = clear_upper_dir(v, up, L->name)))
			goto out;
		if (unlinkat(up, L->name, AT_REMOVEDIR) < 0) {
			err = -errno;
			goto out;
		}
		entry_release(v, 1);
	}
	if (lower_has(v, L->dir, L->name))
		err = whiteout(v, up, L->name);
out:
	loc_free(L);
	return err;
}

static void quota_unlinked(struct vfs *v, const struct stat *st)
{
	if (S_ISREG(st->st_mode) && st->st_nlink <= 1)
		quota_add(v, -(int64_t)st->st_blocks * 512);
}

int vfs_unlink(struct vfs *v, const char *path)
{
	struct loc *L;
	int err = lookup(v, path, 0, &L);
	if (err)
		return err;
	if (!L->found) {
		err = L->trailing ? -ENOENT : -ENOENT;
		goto out;
	}
	if (S_ISDIR(L->st.st_mode) || !L->has_parent) {
		err = -EISDIR;
		goto out;
	}
	if ((err = mnt_writable(v, L->ent)))
		goto out;
	bool uni = v->mnts[L->ent->mnt].kind == MNT_UNION;
	if (!uni) {
		if (unlinkat(L->dir->fd[0], L->name, 0) < 0)
			err = -errno;
		goto out;
	}
	if ((err = copy_up_dir(v, L->dir)))
		goto out;
	int up = L->dir->fd[0];
	if (L->ent->top == 0) {
		if (unlinkat(up, L->name, 0) < 0) {
			err = -errno;
			goto out;
		}
		quota_unlinked(v, &L->st);
		entry_release(v, 1);
	}
	if (lower_has(v, L->dir, L->name))
		err = whiteout(v, up, L->name);
out:
	loc_free(L);
	return err;
}

static bool lower_parts(const struct vfs *v, const struct node *n)
{
	if (v->mnts[n->mnt].kind != MNT_UNION)
		return false;
	for (unsigned i = 1; i < n->nfd; i++)
		if (n->fd[i] >= 0)
			return true;
	return false;
}

static int make_opaque(int pfd, const char *name)
{
	int d = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return -errno;
	int fd = openat(d, WH_OPAQUE, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	close(d);
	return err;
}

int vfs_rename(struct vfs *v, const char *from, const char *to, unsigned flags)
{
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)))
		return -EINVAL;
	struct loc *S, *D;
	int err = lookup(v, from, 0, &S);
	if (err)
		return err;
	err = lookup(v, to, 0, &D);
	if (err) {
		loc_free(S);
		return err;
	}
	if (!S->found) {
		err = -ENOENT;
		goto out;
	}
	if (!S->has_parent || !D->has_parent || node_is_mount_root(v, S->ent) ||
	    (D->found && node_is_mount_root(v, D->ent)) || S->ent->sy != SY_NONE ||
	    D->dir->sy != SY_NONE) {
		err = -EBUSY;
		goto out;
	}
	if (is_wh(D->name)) {
		err = -EINVAL;
		goto out;
	}
	if (S->ent->mnt != D->dir->mnt) {
		err = -EXDEV;
		goto out;
	}
	if ((err = mnt_writable(v, S->ent)))
		goto out;
	bool sdir = S_ISDIR(S->st.st_mode);
	/* Moving a directory into itself? (canonical paths) */
	if (sdir) {
		size_t sl = 0;
		char sp[VFS_PATH_MAX];
		path_join(S->dir->path, S->dir->plen, S->name, sp, &sl);
		char dp[VFS_PATH_MAX];
		size_t dl = 0;
		path_join(D->dir->path, D->dir->plen, D->name, dp, &dl);
		if (dl > sl && !memcmp(dp, sp, sl) && dp[sl] == '/') {
			err = -EINVAL;
			goto out;
		}
		if (dl == sl && !memcmp(dp, sp, sl)) {
			err = 0; /* same entry */
			goto out;
		}
	}
	if (flags & RENAME_EXCHANGE) {
		if (!D->found) {
			err = -ENOENT;
			goto out;
		}
		if (lower_parts(v, S->ent) || lower_parts(v, D->ent)) {
			err = -EXDEV;
			goto out;
		}
	} else if (D->found) {
		if (flags & RENAME_NOREPLACE) {
			err = -EEXIST;
			goto out;
		}
		bool ddir = S_ISDIR(D->st.st_mode);
		if (sdir && !ddir) {
			err = -ENOTDIR;
			goto out;
		}
		if (!sdir && ddir) {
			err = -EISDIR;
			goto out;
		}
		if (S->st.st_ino == D->st.st_ino && S->st.st_dev == D->st.st_dev) {
			err = 0; /* same file: nothing to do, as rename(2) */
			goto out;
		}
		if (ddir && (err = dir_empty(v, D->ent)))
			goto out;
	}
	if (sdir && lower_parts(v, S->ent)) {
		err = -EXDEV; /* as overlayfs without redirect_dir: mv copies */
		goto out;
	}
	bool uni = v->mnts[S->ent->mnt].kind == MNT_UNION;
	if (!uni) {
		if (renameat2(S->dir->fd[0], S->name, D->dir->fd[0], D->name, flags) < 0)
			err = -errno;
		goto out;
	}
	if (!sdir && (err = copy_up(v, S, true)))
		goto out;
	if (flags & RENAME_EXCHANGE) {
		if (!S_ISDIR(D->st.st_mode) && (err = copy_up(v, D, true)))
			goto out;
	}
	if ((err = copy_up_dir(v, D->dir)) || (err = copy_up_dir(v, S->dir)))
		goto out;
	int sup = S->dir->fd[0], dup_ = D->dir->fd[0];
	bool dst_lower = !(flags & RENAME_EXCHANGE) && lower_has(v, D->dir, D->name);
	struct stat old;
	bool replaced = false;
	if (D->found && !(flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(D->st.st_mode) && D->ent->fd[0] >= 0 &&
		    (err = clear_upper_dir(v, dup_, D->name)))
			goto out;
		if (fstatat(dup_, D->name, &old, AT_SYMLINK_NOFOLLOW) == 0)
			replaced = true;
	}
	if (renameat2(sup, S->name, dup_, D->name, flags & RENAME_EXCHANGE) < 0) {
		err = -errno;
		goto out;
	}
	if (replaced) {
		quota_unlinked(v, &old);
		entry_release(v, 1);
	}
	if (!(flags & RENAME_EXCHANGE)) {
		unwhiteout(v, dup_, D->name);
		if (sdir && dst_lower && entry_charge(v) == 0 && make_opaque(dup_, D->name) < 0)
			entry_release(v, 1);
		if (lower_has(v, S->dir, S->name))
			err = whiteout(v, sup, S->name);
	}
out:
	loc_free(S);
	loc_free(D);
	return err;
}

int vfs_link(struct vfs *v, const char *from, const char *to, int flags)
{
	struct loc *S, *D;
	int err = lookup(v, from, (flags & AT_SYMLINK_FOLLOW) ? R_FOLLOW : 0, &S);
	if (err)
		return err;
	err = lookup(v, to, 0, &D);
	if (err) {
		loc_free(S);
		return err;
	}
	if (!S->found) {
		err = -ENOENT;
	} else if (S_ISDIR(S->st.st_mode) || !S->has_parent) {
		err = -EPERM;
	} else if (D->found) {
		err = -EEXIST;
	} else if (D->trailing) {
		err = -ENOENT;
	} else if (is_wh(D->name)) {
		err = -EINVAL;
	} else if (S->ent->sy != SY_NONE || S->ent->mnt != D->dir->mnt) {
		err = -EXDEV;
	} else if (!(err = copy_up(v, S, true)) && !(err = copy_up_dir(v, D->dir)) &&
		   !(err = entry_charge_in(v, D->dir))) {
		if (linkat(S->dir->fd[0], S->name, D->dir->fd[0], D->name, 0) < 0) {
			err = -errno;
			entry_release_in(v, D->dir, 1);
		} else if (v->mnts[D->dir->mnt].kind == MNT_UNION)
			unwhiteout(v, D->dir->fd[0], D->name);
	}
	loc_free(S);
	loc_free(D);
	return err;
}

int vfs_symlink(struct vfs *v, const char *target, const char *path)
{
	size_t tl = strlen(target);
	if (tl == 0)
		return -ENOENT;
	if (tl >= VFS_PATH_MAX)
		return -ENAMETOOLONG;
	struct loc *L;
	int err = lookup(v, path, 0, &L);
	if (err)
		return err;
	if (L->found)
		err = -EEXIST;
	else if (L->trailing)
		err = -ENOENT;
	else if (!(err = create_prepare(v, L))) {
		if (symlinkat(target, L->dir->fd[0], L->name) < 0) {
			err = -errno;
			entry_release_in(v, L->dir, 1);
		} else if (v->mnts[L->dir->mnt].kind == MNT_UNION)
			unwhiteout(v, L->dir->fd[0], L->name);
	}
	loc_free(L);
	return err;
}

long vfs_readlink(struct vfs *v, const char *path, char *buf, size_t len)
{
	struct loc *L;
	long err = lookup(v, path, 0, &L);
	if (err)
		return err;
	if (!L->found)
		err = -ENOENT;
	else if (!S_ISLNK(L->st.st_mode))
		err = -EINVAL;
	else
		err = node_readlink(v, L->ent, buf, len);
	loc_free(L);
	return err;
}

/* Resolve @path for a metadata change: found, writable, copied up. */
static int lookup_for_change(struct vfs *v, const char *path, int flags, struct loc **out)
{
	struct loc *L;
	int err = lookup(v, path, follow_flag(flags), &L);
	if (err)
		return err;
	if (!L->found)
		err = -ENOENT;
	else if (L->ent->sy != SY_NONE)
		err = -EPERM;
	else if (!(err = mnt_writable(v, L->ent)))
		err = copy_up(v, L, true);
	if (err) {
		loc_free(L);
		return err;
	}
	*out = L;
	return 0;
}

/* chmod of the inode of O_PATH fd @fd: through its /proc magic link (the
 * exact inode, no name lookup), else fchmodat2(AT_EMPTY_PATH). */
static int chmod_fd(int fd, mode_t mode)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (fchmodat(AT_FDCWD, p, mode, 0) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	return syscall(__NR_fchmodat2, fd, "", mode, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

int vfs_chmod(struct vfs *v, const char *path, mode_t mode, int flags)
{
	struct loc *L;
	int err = lookup_for_change(v, path, flags, &L);
	if (err)
		return err;
	if (S_ISLNK(L->st.st_mode))
		err = -EOPNOTSUPP;
	else
		err = chmod_fd(L->ent->fd[L->ent->top], mode & MODE_MASK);
	loc_free(L);
	return err;
}

int vfs_chown(struct vfs *v, const char *path, int flags)
{
	struct loc *L;
	int err = lookup(v, path, follow_flag(flags), &L);
	if (err)
		return err;
	if (!L->found)
		err = -ENOENT;
	else if (L->ent->sy == SY_NONE)
		err = mnt_writable(v, L->ent);
	loc_free(L);
	return err;
}

int vfs_utimens(struct vfs *v, const char *path, const struct timespec *ts, int flags)
{
	struct loc *L;
	int err = lookup_for_change(v, path, flags, &L);
	if (err)
		return err;
	if (utimensat(L->ent->fd[L->ent->top], "", ts, AT_EMPTY_PATH) < 0)
		err = -errno;
	loc_free(L);
	return err;
}

int vfs_truncate(struct vfs *v, const char *path, uint64_t len)
{
	if (len > (uint64_t)INT64_MAX)
		return -EINVAL;
	struct loc *L;
	int err = lookup(v, path, R_FOLLOW, &L);
	if (err)
		return err;
	if (!L->found) {
		err = -ENOENT;
		goto out;
	}
	if (S_ISDIR(L->st.st_mode)) {
		err = -EISDIR;
		goto out;
	}
	if (!S_ISREG(L->st.st_mode) || L->ent->sy != SY_NONE) {
		err = -EINVAL;
		goto out;
	}
	if ((err = mnt_writable(v, L->ent)) || (err = copy_up(v, L, len > 0)))
		goto out;
	int fd = open_entry(L, O_WRONLY);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	bool acct = v->quota && v->mnts[L->ent->mnt].kind == MNT_UNION;
	uint64_t tok = 0, grow = len > (uint64_t)L->st.st_size ? len - (uint64_t)L->st.st_size : 0;
	uint64_t want = grow;
	if (acct && (err = vfs_quota_begin(v, fd, (uint64_t)L->st.st_size, &want, &tok))) {
		close(fd);
		goto out;
	}
	if (acct && want < grow)
		err = -ENOSPC;
	else if (ftruncate(fd, (off_t)len) < 0)
		err = -errno;
	if (acct)
		vfs_quota_end(v, fd, tok);
	close(fd);
out:
	loc_free(L);
	return err;
}

int vfs_realdir(struct vfs *v, const char *path, char *out)
{
	struct loc *L;
	int err = lookup(v, path, R_FOLLOW, &L);
	if (err)
		return err;
	if (!L->found) {
		err = -ENOENT;
	} else if (!S_ISDIR(L->st.st_mode)) {
		err = -ENOTDIR;
	} else if (L->has_parent) {
		size_t l;
		err = path_join(L->dir->path, L->dir->plen, L->name, out, &l);
	} else {
		memcpy(out, L->ent->path, L->ent->plen + 1);
	}
	loc_free(L);
	return err;
}

static void statfs_fix(struct vfs *v, unsigned mnt, struct statfs *st)
{
	if (v->mnts[mnt].kind == MNT_UNION && v->quota && st->f_bsize > 0) {
		uint64_t used = vfs_quota_used(v);
		uint64_t bs = (uint64_t)st->f_bsize;
		st->f_blocks = v->quota / bs;
		st->f_bfree = st->f_bavail = used < v->quota ? (v->quota - used) / bs : 0;
	}
	if (mnt && (v->mnts[mnt].ro || v->mnts[mnt].kind != MNT_VOL))
		st->f_flags |= ST_RDONLY;
	if (!mnt && !v->has_upper)
		st->f_flags |= ST_RDONLY;
}

static int mnt_statfs(struct vfs *v, unsigned mnt, struct statfs *st)
{
	int fd = mnt == 0 ? v->layer[0] : v->mnts[mnt].root;
	if (fd < 0) {
		memset(st, 0, sizeof(*st));
		st->f_type = v->mnts[mnt].kind == MNT_PROC ? 0x9fa0 : 0x01021994; /* proc, tmpfs */
		st->f_bsize = 4096;
		st->f_namelen = NAME_MAX;
	} else if (fstatfs(fd, st) < 0) {
		return -errno;
	}
	statfs_fix(v, mnt, st);
	return 0;
}

int vfs_statfs(struct vfs *v, const char *path, struct statfs *st)
{
	struct loc *L;
	int err = lookup(v, path, R_FOLLOW, &L);
	if (err)
		return err;
	if (!L->found)
		err = -ENOENT;
	else
		err = mnt_statfs(v, L->ent->mnt, st);
	loc_free(L);
	return err;
}

void vfs_statfs_fd(struct vfs *v, const struct vfs_file *f, struct statfs *st)
{
	if (mnt_statfs(v, f->mnt, st) < 0)
		memset(st, 0, sizeof(*st));
}

int vfs_sync(struct vfs *v)
{
	if (v->has_upper && syncfs(v->layer[0]) < 0)
		return -errno;
	for (unsigned i = 1; i < v->nmnts; i++)
		if (v->mnts[i].kind == MNT_VOL && !v->mnts[i].ro)
			syncfs(v->mnts[i].root);
	return 0;
}

int vfs_sock_path(struct vfs *v, const char *path, bool create, int *dirfd, char *name, size_t cap)
{
	struct loc *L;
	int err = lookup(v, path, create ? 0 : R_FOLLOW, &L);
	if (err)
		return err;
	if (!L->has_parent || L->dir->sy != SY_NONE) {
		err = create ? (L->found ? -EADDRINUSE : -EACCES) : -ECONNREFUSED;
		goto out;
	}
	if (strlen(L->name) + 1 > cap) {
		err = -ENAMETOOLONG;
		goto out;
	}
	int layer;
	if (create) {
		if (L->found) {
			err = -EADDRINUSE;
			goto out;
		}
		if ((err = create_prepare(v, L)))
			goto out;
		if (v->mnts[L->dir->mnt].kind == MNT_UNION)
			unwhiteout(v, L->dir->fd[0], L->name);
		layer = 0;
	} else {
		if (!L->found) {
			err = -ENOENT;
			goto out;
		}
		if (!S_ISSOCK(L->st.st_mode)) {
			err = -ECONNREFUSED;
			goto out;
		}
		layer = L->ent->top;
	}
	*dirfd = fcntl(L->dir->fd[layer], F_DUPFD_CLOEXEC, 0);
	if (*dirfd < 0) {
		err = -errno;
		goto out;
	}
	memcpy(name, L->name, strlen(L->name) + 1);
out:
	loc_free(L);
	return err;
}
