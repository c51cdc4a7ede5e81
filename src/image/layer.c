/* SPDX-License-Identifier: MIT */
/*
 * Secure unpacking of tar streams (image layers and outer archives) and
 * packing of a plain directory into a tar.
 *
 * The stream is a chain of two libarchive readers: the first ("raw") reads
 * the file descriptor through fd_read() (hashing the compressed bytes) and
 * undoes any compression; the second ("tar") reads the raw reader through
 * raw_read() (hashing and counting the uncompressed bytes, the diff_id) and
 * parses tar entries. Entries are written with our own per-component
 * openat(O_NOFOLLOW) walk under the target directory: nothing is created
 * through a symlink, and nothing outside the directory is ever named.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image_int.h"

#define CHUNK (128 * 1024)

struct chain {
	const struct libs *lib;
	int fd;
	struct digest blob;
	struct digest tar;
	uint64_t blob_bytes;
	uint64_t tar_bytes;
	uint64_t cap;
	int cap_hit;  /* the uncompressed stream exceeded @cap */
	int io_errno; /* read() on the fd failed */
	int raw_eof;
	struct archive *raw;
	char rawmsg[256]; /* error of the raw reader */
	unsigned char fdbuf[CHUNK];
	unsigned char rawbuf[CHUNK];
};

static la_ssize_t fd_read(struct archive *a, void *p, const void **buf)
{
	struct chain *c = p;
	const struct libs *lib = c->lib;
	ssize_t n;
	do
		n = read(c->fd, c->fdbuf, sizeof(c->fdbuf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		c->io_errno = errno;
		lib->archive_set_error(a, errno, "read failed");
		return -1;
	}
	digest_update(&c->blob, c->fdbuf, (size_t)n);
	c->blob_bytes += (uint64_t)n;
	if (c->blob_bytes > c->cap) {
		c->cap_hit = 1;
		lib->archive_set_error(a, EFBIG, "size cap");
		return -1;
	}
	*buf = c->fdbuf;
	return n;
}

/* Pull the next chunk of uncompressed bytes; 0 at the end, -1 on error. */
static ssize_t raw_pull(struct chain *c, const void **buf)
{
	const struct libs *lib = c->lib;
	if (c->raw_eof)
		return 0;
	la_ssize_t n = lib->archive_read_data(c->raw, c->rawbuf, sizeof(c->rawbuf));
	if (n < 0) {
		snprintf(c->rawmsg, sizeof(c->rawmsg), "%s",
			 lib->archive_error_string(c->raw) ? lib->archive_error_string(c->raw)
							   : "decompression failed");
		return -1;
	}
	if (n == 0) {
		c->raw_eof = 1;
		return 0;
	}
	digest_update(&c->tar, c->rawbuf, (size_t)n);
	c->tar_bytes += (uint64_t)n;
	if (c->tar_bytes > c->cap) {
		c->cap_hit = 1;
		return -1;
	}
	*buf = c->rawbuf;
	return n;
}

static la_ssize_t raw_read(struct archive *a, void *p, const void **buf)
{
	struct chain *c = p;
	ssize_t n = raw_pull(c, buf);
	if (n < 0)
		c->lib->archive_set_error(a, c->cap_hit ? EFBIG : EIO, "%s",
					  c->cap_hit ? "size cap" : c->rawmsg);
	return n;
}

/* ---- path handling ---- */

/* Normalise a tar entry name into @out ("a/b/c", no leading or trailing
 * slash, no "." components). Returns 1 for a usable name, 0 for the root
 * itself, -1 (with @err) for an absolute name, a ".." component or an
 * over-long name. */
static int norm_name(const char *what, const char *kind, const char *in, char *out, size_t outsz,
		     struct nb_error *err)
{
	if (!in)
		return nb_error_set(err, NB_EFORMAT, "%s: %s with an unreadable name", what, kind);
	size_t inlen = strlen(in);
	if (inlen >= PATH_MAX)
		return nb_error_set(err, NB_EFORMAT, "%s: %s name is %zu bytes (limit %d)", what,
				    kind, inlen, PATH_MAX - 1);
	if (in[0] == '/')
		return nb_error_set(err, NB_EFORMAT, "%s: %s '%.200s' is an absolute path", what,
				    kind, in);
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 1 && p[0] == '.') {
			p += len;
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return nb_error_set(err, NB_EFORMAT, "%s: %s '%.200s' has a '..' component",
					    what, kind, in);
		if (len > NAME_MAX)
			return nb_error_set(
			    err, NB_EFORMAT,
			    "%s: %s '%.100s...' has a %zu-byte component (limit %d)", what, kind,
			    in, len, NAME_MAX);
		if (o + len + 2 > outsz)
			return nb_error_set(err, NB_EFORMAT, "%s: %s '%.200s' is too long", what,
					    kind, in);
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, len);
		o += len;
		p += len;
	}
	out[o] = '\0';
	return o ? 1 : 0;
}

/* Open the directory that holds the last component of @name (normalised,
 * modified in place: the last '/' becomes NUL) under @rootfd, creating
 * missing directories (0755) when @create. Every component is opened with
 * O_NOFOLLOW: a symlink or a file on the way is an error. Sets *@base to the
 * last component. Returns a directory fd or -1 with @err. */
static int open_parent(int rootfd, const char *what, const char *orig, char *name, int create,
		       const char **base, struct nb_error *err)
{
	int fd = dup(rootfd);
	if (fd < 0)
		return nb_error_sys(err, errno, "%s: dup", what);
	char *p = name;
	for (;;) {
		char *slash = strchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		int nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(fd);
				return nb_error_sys(err, e, "%s: creating the parent of '%.200s'",
						    what, orig);
			}
			nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			int e = errno;
			close(fd);
			if (e == ELOOP || e == ENOTDIR)
				return nb_error_set(err, NB_EFORMAT,
						    "%s: entry '%.200s' goes through '%.200s', "
						    "which is a symlink or not a directory",
						    what, orig, p);
			return nb_error_sys(err, e, "%s: opening the parent of '%.200s'", what,
					    orig);
		}
		close(fd);
		fd = nfd;
		*slash = '/';
		p = slash + 1;
	}
	if (p != name)
		p[-1] = '\0';
	*base = p;
	return fd;
}

/* Make room for a new non-directory @base in @dfd: unlink an earlier entry
 * of the same name (duplicate entries: the later one wins), but refuse to
 * replace a directory. */
static int clear_slot(int dfd, const char *base, const char *what, const char *orig,
		      struct nb_error *err)
{
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : nb_error_sys(err, errno, "%s: '%.200s'", what, orig);
	if (S_ISDIR(st.st_mode))
		return nb_error_set(err, NB_EFORMAT, "%s: entry '%.200s' would replace a directory",
				    what, orig);
	if (unlinkat(dfd, base, 0) < 0)
		return nb_error_sys(err, errno, "%s: replacing '%.200s'", what, orig);
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct unpack {
	const struct libs *lib;
	struct chain *c;
	struct archive *tar;
	int rootfd;
	enum layer_mode mode;
	const struct layer_limits *lim;
	const char *what;
	struct layer_stats *st;
	struct nb_error *err;
	char name[PATH_MAX + 8];
	char link[PATH_MAX + 8];
};

static int tar_error(struct unpack *u, const char *doing)
{
	if (u->c->cap_hit)
		return nb_error_set(u->err, NB_EFORMAT,
				    "%s: stream exceeds the size cap of %llu bytes", u->what,
				    (unsigned long long)u->lim->max_bytes);
	if (u->c->io_errno)
		return nb_error_sys(u->err, u->c->io_errno, "%s: reading", u->what);
	const char *m = u->lib->archive_error_string(u->tar);
	if (u->c->rawmsg[0])
		m = u->c->rawmsg;
	return nb_error_set(u->err, NB_EFORMAT, "%s: %s: %s", u->what, doing,
			    m ? m : "corrupt or truncated archive");
}

static void set_times(const struct libs *lib, int dfd, const char *base, struct archive_entry *e)
{
	if (!lib->archive_entry_mtime_is_set(e))
		return;
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = lib->archive_entry_mtime(e);
	ts[0].tv_nsec = ts[1].tv_nsec = lib->archive_entry_mtime_nsec(e);
	if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999)
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
	(void)utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
}

static int do_regular(struct unpack *u, struct archive_entry *e, int dfd, const char *base,
		      const char *orig, mode_t perm)
{
	const struct libs *lib = u->lib;
	la_int64_t size = lib->archive_entry_size_is_set(e) ? lib->archive_entry_size(e) : 0;
	uint64_t room = u->lim->max_bytes - u->st->unpacked_bytes;
	if (size < 0 || (uint64_t)size > room)
		return nb_error_set(u->err, NB_EFORMAT,
				    "%s: entry '%.200s' claims %lld bytes, over the size cap of "
				    "%llu bytes",
				    u->what, orig, (long long)size,
				    (unsigned long long)u->lim->max_bytes);
	if (clear_slot(dfd, base, u->what, orig, u->err) < 0)
		return -1;
	int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return nb_error_sys(u->err, errno, "%s: creating '%.200s'", u->what, orig);
	int rc = -1;
	uint64_t written = 0;
	char *buf = malloc(CHUNK);
	if (!buf) {
		nb_error_set(u->err, NB_ERESOURCE, "%s: out of memory", u->what);
		goto out;
	}
	for (;;) {
		la_ssize_t n = lib->archive_read_data(u->tar, buf, CHUNK);
		if (n < 0) {
			tar_error(u, "reading file data");
			goto out;
		}
		if (n == 0)
			break;
		written += (uint64_t)n;
		if (written > room) {
			nb_error_set(u->err, NB_EFORMAT,
				     "%s: entry '%.200s' exceeds the size cap of %llu bytes",
				     u->what, orig, (unsigned long long)u->lim->max_bytes);
			goto out;
		}
		int w = write_all(fd, buf, (size_t)n);
		if (w < 0) {
			nb_error_sys(u->err, -w, "%s: writing '%.200s'", u->what, orig);
			goto out;
		}
	}
	if (fchmod(fd, perm) < 0) {
		nb_error_sys(u->err, errno, "%s: chmod '%.200s'", u->what, orig);
		goto out;
	}
	u->st->unpacked_bytes += written;
	set_times(u->lib, dfd, base, e);
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

static int do_hardlink(struct unpack *u, int dfd, const char *base, const char *orig,
		       const char *target)
{
	int r = norm_name(u->what, "hardlink target", target, u->link, sizeof(u->link), u->err);
	if (r <= 0)
		return r < 0 ? -1
			     : nb_error_set(u->err, NB_EFORMAT,
					    "%s: hardlink '%.200s' points to the root", u->what,
					    orig);
	char norm_target[PATH_MAX + 8];
	snprintf(norm_target, sizeof(norm_target), "%s", u->link);
	const char *tbase;
	int tfd = open_parent(u->rootfd, u->what, target, u->link, 0, &tbase, u->err);
	if (tfd < 0) {
		if (u->err && u->err->code == NB_ENOENT)
			nb_error_set(
			    u->err, NB_EFORMAT,
			    "%s: hardlink '%.200s' points to '%.200s', which is not in the "
			    "archive before it",
			    u->what, orig, target);
		return -1;
	}
	int rc = -1;
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		nb_error_set(
		    u->err, NB_EFORMAT,
		    "%s: hardlink '%.200s' points to '%.200s', which is not in the archive "
		    "before it",
		    u->what, orig, target);
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
		nb_error_set(u->err, NB_EFORMAT,
			     "%s: hardlink '%.200s' points to '%.200s', which is not a file",
			     u->what, orig, target);
		goto out;
	}
	/* the same name twice: nothing to do */
	struct stat dst;
	if (fstatat(dfd, base, &dst, AT_SYMLINK_NOFOLLOW) == 0 && dst.st_dev == st.st_dev &&
	    dst.st_ino == st.st_ino) {
		rc = 0;
		goto out;
	}
	if (clear_slot(dfd, base, u->what, orig, u->err) < 0)
		goto out;
	if (linkat(tfd, tbase, dfd, base, 0) < 0) {
		nb_error_sys(u->err, errno, "%s: hardlink '%.200s' -> '%.200s'", u->what, orig,
			     norm_target);
		goto out;
	}
	rc = 0;
out:
	close(tfd);
	return rc;
}

static void note_skip(struct unpack *u, const char *orig)
{
	if (!u->st->skipped)
		snprintf(u->st->first_skipped, sizeof(u->st->first_skipped), "%s", orig);
	u->st->skipped++;
}

static int do_entry(struct unpack *u, struct archive_entry *e)
{
	const struct libs *lib = u->lib;
	const char *orig = lib->archive_entry_pathname(e);
	int r = norm_name(u->what, "entry", orig, u->name, sizeof(u->name), u->err);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0; /* "./": the root exists already */
	mode_t type = lib->archive_entry_filetype(e);
	const char *hl = lib->archive_entry_hardlink(e);
	if (!hl && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		/* overlayfs-style whiteout: a 0:0 character device */
		if (!(u->mode == LAYER_MODE_LAYER && type == AE_IFCHR &&
		      lib->archive_entry_rdevmajor(e) == 0 &&
		      lib->archive_entry_rdevminor(e) == 0)) {
			note_skip(u, orig);
			return 0;
		}
	}
	const char *base;
	int dfd = open_parent(u->rootfd, u->what, orig, u->name, 1, &base, u->err);
	if (dfd < 0)
		return -1;
	int rc = -1;
	/* strip setuid/setgid; keep the sticky bit on directories only */
	mode_t perm = lib->archive_entry_perm(e) & 0777;
	if (hl) {
		rc = do_hardlink(u, dfd, base, orig, hl);
	} else if (type == AE_IFREG) {
		rc = do_regular(u, e, dfd, base, orig, perm);
	} else if (type == AE_IFDIR) {
		struct stat st;
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		    unlinkat(dfd, base, 0) < 0) {
			nb_error_sys(u->err, errno, "%s: replacing '%.200s'", u->what, orig);
			goto out;
		}
		if (mkdirat(dfd, base, 0700) < 0 && errno != EEXIST) {
			nb_error_sys(u->err, errno, "%s: mkdir '%.200s'", u->what, orig);
			goto out;
		}
		mode_t dperm = lib->archive_entry_perm(e) & 01777;
		if (fchmodat(dfd, base, dperm, AT_SYMLINK_NOFOLLOW) < 0 &&
		    fchmodat(dfd, base, dperm, 0) < 0) {
			nb_error_sys(u->err, errno, "%s: chmod '%.200s'", u->what, orig);
			goto out;
		}
		rc = 0;
	} else if (type == AE_IFLNK) {
		const char *target = lib->archive_entry_symlink(e);
		if (!target || !*target || strlen(target) >= PATH_MAX) {
			nb_error_set(u->err, NB_EFORMAT,
				     "%s: symlink '%.200s' has an empty or over-long target",
				     u->what, orig);
			goto out;
		}
		if (clear_slot(dfd, base, u->what, orig, u->err) < 0)
			goto out;
		/* The target is stored verbatim: it is resolved inside the VM's
		 * root by the union filesystem, never on the host. */
		if (symlinkat(target, dfd, base) < 0) {
			nb_error_sys(u->err, errno, "%s: symlink '%.200s'", u->what, orig);
			goto out;
		}
		set_times(u->lib, dfd, base, e);
		rc = 0;
	} else { /* whiteout device -> .wh.NAME */
		char wh[NAME_MAX + 8];
		if (strlen(base) + 4 > NAME_MAX) {
			nb_error_set(u->err, NB_EFORMAT, "%s: whiteout name '%.200s' too long",
				     u->what, orig);
			goto out;
		}
		snprintf(wh, sizeof(wh), ".wh.%s", base);
		if (clear_slot(dfd, wh, u->what, orig, u->err) < 0)
			goto out;
		int fd =
		    openat(dfd, wh, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			nb_error_sys(u->err, errno, "%s: whiteout '%.200s'", u->what, orig);
			goto out;
		}
		close(fd);
		rc = 0;
	}
out:
	close(dfd);
	return rc;
}

int layer_enable_filters(const struct libs *lib, struct archive *a)
{
	/* ARCHIVE_WARN means "would run an external program": refused */
	if (lib->archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    lib->archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    lib->archive_read_support_filter_xz(a) != ARCHIVE_OK)
		return -1;
	return 0;
}

int layer_unpack(const struct libs *lib, int fd, int dirfd, enum layer_mode mode,
		 const struct layer_limits *lim, const char *what, struct layer_stats *st,
		 struct nb_error *err)
{
	int rc = -1;
	struct chain *c = calloc(1, sizeof(*c));
	struct archive *tar = NULL;
	memset(st, 0, sizeof(*st));
	if (!c)
		return nb_error_set(err, NB_ERESOURCE, "%s: out of memory", what);
	c->lib = lib;
	c->fd = fd;
	c->cap = lim->max_bytes;
	if (digest_init(&c->blob, lib) < 0 || digest_init(&c->tar, lib) < 0) {
		nb_error_set(err, NB_ERESOURCE, "%s: out of memory", what);
		goto out;
	}
	c->raw = lib->archive_read_new();
	tar = lib->archive_read_new();
	if (!c->raw || !tar) {
		nb_error_set(err, NB_ERESOURCE, "%s: out of memory", what);
		goto out;
	}
	if (layer_enable_filters(lib, c->raw) < 0) {
		nb_error_set(err, NB_EINTERNAL,
			     "%s: libarchive lacks built-in gzip/zstd/xz support", what);
		goto out;
	}
	lib->archive_read_support_format_raw(c->raw);
	lib->archive_read_support_format_tar(tar);
	if (lib->archive_read_open(c->raw, c, NULL, fd_read, NULL) != ARCHIVE_OK) {
		if (c->io_errno)
			nb_error_sys(err, c->io_errno, "%s: reading", what);
		else
			nb_error_set(err, NB_EFORMAT, "%s: %s", what,
				     lib->archive_error_string(c->raw)
					 ? lib->archive_error_string(c->raw)
					 : "unreadable stream");
		goto out;
	}
	struct archive_entry *re;
	int hr = lib->archive_read_next_header(c->raw, &re);
	if (hr == ARCHIVE_EOF) {
		nb_error_set(err, NB_EFORMAT, "%s: empty stream, not a tar archive", what);
		goto out;
	}
	if (hr < ARCHIVE_WARN) {
		nb_error_set(err, NB_EFORMAT, "%s: %s", what,
			     lib->archive_error_string(c->raw) ? lib->archive_error_string(c->raw)
							       : "unreadable stream");
		goto out;
	}
	struct unpack u = {.lib = lib,
			   .c = c,
			   .tar = tar,
			   .rootfd = dirfd,
			   .mode = mode,
			   .lim = lim,
			   .what = what,
			   .st = st,
			   .err = err};
	if (lib->archive_read_open(tar, c, NULL, raw_read, NULL) != ARCHIVE_OK) {
		tar_error(&u, "not a tar archive");
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = lib->archive_read_next_header(tar, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			tar_error(&u,
				  st->entries ? "reading an entry header" : "not a tar archive");
			goto out;
		}
		if (++st->entries > lim->max_entries) {
			nb_error_set(err, NB_EFORMAT, "%s: more than %llu entries", what,
				     (unsigned long long)lim->max_entries);
			goto out;
		}
		if (do_entry(&u, e) < 0)
			goto out;
	}
	/* Hash the rest of both streams (tar padding, trailing bytes) so the
	 * digests cover the whole blob. */
	for (;;) {
		const void *b;
		ssize_t n = raw_pull(c, &b);
		if (n < 0) {
			tar_error(&u, "reading the end of the stream");
			goto out;
		}
		if (n == 0)
			break;
	}
	for (;;) {
		const void *b;
		la_ssize_t n = fd_read(c->raw, c, &b);
		if (n < 0) {
			tar_error(&u, "reading the end of the stream");
			goto out;
		}
		if (n == 0)
			break;
	}
	st->blob_bytes = c->blob_bytes;
	st->tar_bytes = c->tar_bytes;
	digest_final(&c->blob, st->blob_hex);
	digest_final(&c->tar, st->diff_hex);
	rc = 0;
out:
	if (tar)
		lib->archive_read_free(tar);
	if (c->raw)
		lib->archive_read_free(c->raw);
	digest_release(&c->blob);
	digest_release(&c->tar);
	free(c);
	return rc;
}

/* ---- packing a plain directory ---- */

struct pack {
	const struct libs *lib;
	struct archive *a;
	const struct layer_limits *lim;
	uint64_t bytes;
	uint64_t entries;
	struct nb_error *err;
	char path[PATH_MAX + 8];
	char buf[CHUNK];
};

static int pack_error(struct pack *p, const char *doing)
{
	return nb_error_set(p->err, NB_EINTERNAL, "packing '%.200s': %s: %s", p->path, doing,
			    p->lib->archive_error_string(p->a) ? p->lib->archive_error_string(p->a)
							       : "failed");
}

static int pack_walk(struct pack *p, int dfd, size_t plen, int depth)
{
	const struct libs *lib = p->lib;
	if (depth > 256)
		return nb_error_set(p->err, NB_EINVAL, "'%.200s': directories nested too deep",
				    p->path);
	int dup_fd = dup(dfd);
	if (dup_fd < 0)
		return nb_error_sys(p->err, errno, "dup");
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return nb_error_sys(p->err, errno, "'%.200s'", p->path);
	}
	rewinddir(d);
	int rc = -1;
	struct archive_entry *e = lib->archive_entry_new();
	if (!e) {
		nb_error_set(p->err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		size_t nlen = strlen(de->d_name);
		if (plen + 1 + nlen + 2 > sizeof(p->path)) {
			nb_error_set(p->err, NB_EINVAL, "'%.200s/%.100s': path too long", p->path,
				     de->d_name);
			goto out;
		}
		p->path[plen] = '/';
		memcpy(p->path + plen + 1, de->d_name, nlen + 1);
		const char *rel = p->path + 2; /* skip "./" */
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			nb_error_sys(p->err, errno, "'%.200s'", rel);
			goto out;
		}
		if (++p->entries > p->lim->max_entries) {
			nb_error_set(p->err, NB_EINVAL, "more than %llu entries",
				     (unsigned long long)p->lim->max_entries);
			goto out;
		}
		lib->archive_entry_clear(e);
		lib->archive_entry_set_pathname(e, rel);
		lib->archive_entry_set_perm(e, st.st_mode & 01777);
		lib->archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		if (S_ISDIR(st.st_mode)) {
			lib->archive_entry_set_filetype(e, AE_IFDIR);
			if (lib->archive_write_header(p->a, e) != ARCHIVE_OK) {
				pack_error(p, "header");
				goto out;
			}
			int sub = openat(dfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				nb_error_sys(p->err, errno, "'%.200s'", rel);
				goto out;
			}
			int r = pack_walk(p, sub, plen + 1 + nlen, depth + 1);
			close(sub);
			if (r < 0)
				goto out;
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
			if (n < 0) {
				nb_error_sys(p->err, errno, "readlink '%.200s'", rel);
				goto out;
			}
			target[n] = '\0';
			lib->archive_entry_set_filetype(e, AE_IFLNK);
			lib->archive_entry_set_symlink(e, target);
			if (lib->archive_write_header(p->a, e) != ARCHIVE_OK) {
				pack_error(p, "header");
				goto out;
			}
		} else if (S_ISREG(st.st_mode)) {
			if ((uint64_t)st.st_size > p->lim->max_bytes - p->bytes) {
				nb_error_set(p->err, NB_EINVAL,
					     "'%.200s': the directory exceeds the size cap of %llu "
					     "bytes",
					     rel, (unsigned long long)p->lim->max_bytes);
				goto out;
			}
			int fd =
			    openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			struct stat fst;
			if (fd < 0 || fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode)) {
				if (fd >= 0)
					close(fd);
				nb_error_set(p->err, NB_EINVAL, "'%.200s' changed while being read",
					     rel);
				goto out;
			}
			lib->archive_entry_set_filetype(e, AE_IFREG);
			lib->archive_entry_set_size(e, st.st_size);
			if (lib->archive_write_header(p->a, e) != ARCHIVE_OK) {
				close(fd);
				pack_error(p, "header");
				goto out;
			}
			uint64_t left = (uint64_t)st.st_size;
			while (left) {
				ssize_t n =
				    read(fd, p->buf, left < sizeof(p->buf) ? left : sizeof(p->buf));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					int e2 = n < 0 ? errno : 0;
					close(fd);
					if (e2)
						nb_error_sys(p->err, e2, "reading '%.200s'", rel);
					else
						nb_error_set(p->err, NB_EINVAL,
							     "'%.200s' shrank while being read",
							     rel);
					goto out;
				}
				if (lib->archive_write_data(p->a, p->buf, (size_t)n) != n) {
					close(fd);
					pack_error(p, "data");
					goto out;
				}
				left -= (uint64_t)n;
			}
			close(fd);
			p->bytes += (uint64_t)st.st_size;
		} else {
			const char *kind = S_ISFIFO(st.st_mode)	  ? "a FIFO"
					   : S_ISSOCK(st.st_mode) ? "a socket"
					   : S_ISCHR(st.st_mode)  ? "a character device"
					   : S_ISBLK(st.st_mode)  ? "a block device"
								  : "a special file";
			nb_error_set(p->err, NB_EINVAL,
				     "'%.200s' is %s; a directory image may hold only files, "
				     "directories and symlinks",
				     rel, kind);
			goto out;
		}
		errno = 0;
	}
	if (errno) {
		nb_error_sys(p->err, errno, "reading directory '%.200s'", p->path);
		goto out;
	}
	rc = 0;
out:
	if (e)
		lib->archive_entry_free(e);
	closedir(d);
	return rc;
}

int layer_pack_dir(const struct libs *lib, const char *src_path, int out_fd,
		   const struct layer_limits *lim, struct nb_error *err)
{
	int rc = -1;
	struct pack *p = calloc(1, sizeof(*p));
	int dfd = -1;
	if (!p)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	p->lib = lib;
	p->lim = lim;
	p->err = err;
	p->a = lib->archive_write_new();
	if (!p->a || lib->archive_write_set_format_pax_restricted(p->a) != ARCHIVE_OK ||
	    lib->archive_write_add_filter_none(p->a) != ARCHIVE_OK ||
	    lib->archive_write_set_bytes_in_last_block(p->a, 1) != ARCHIVE_OK ||
	    lib->archive_write_open_fd(p->a, out_fd) != ARCHIVE_OK) {
		nb_error_set(err, NB_ERESOURCE, "cannot start a tar writer");
		goto out;
	}
	dfd = open(src_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		nb_error_sys(err, errno, "'%s'", src_path);
		goto out;
	}
	strcpy(p->path, ".");
	if (pack_walk(p, dfd, 1, 0) < 0)
		goto out;
	if (lib->archive_write_close(p->a) != ARCHIVE_OK) {
		pack_error(p, "close");
		goto out;
	}
	rc = 0;
out:
	if (dfd >= 0)
		close(dfd);
	if (p->a)
		lib->archive_write_free(p->a);
	free(p);
	return rc;
}
