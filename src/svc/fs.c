/* SPDX-License-Identifier: MIT */
/*
 * File-system system calls of service VMs: paths (openat, stat family,
 * mkdir, unlink, rename, links, chmod, utimensat, truncate, chdir/getcwd,
 * statfs), descriptors (close, dup, fcntl with locks, flock, fstat,
 * getdents64, fsync, fallocate) and the per-VM state (root filesystem,
 * fd table, standard streams). Paths are resolved by vfs.c inside the VM's
 * root; the guest's cwd and directory fds are kept as canonical guest paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../fnvm/path.h"
#include "fs.h"

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif
#ifndef F_OFD_GETLK
#define F_OFD_GETLK  36
#define F_OFD_SETLK  37
#define F_OFD_SETLKW 38
#endif

#define LOCK_POLL_MIN_NS 1000000ull  /* F_SETLKW / flock retry: 1 ms ... */
#define LOCK_POLL_MAX_NS 50000000ull /* ... backing off to 50 ms */
#define SETTABLE_FL	 (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

static struct svc_fs *tfs(struct svc_thread *t)
{
	return svc_vm_fs(svc_thread_vm(t));
}

static struct vfs *tvfs(struct svc_thread *t)
{
	return tfs(t)->vfs;
}

/* ---------------------------------------------------------- paths */

int svc_fs_path(struct svc_thread *t, int dirfd, uint64_t gva, int flags, char *out)
{
	char rel[VFS_PATH_MAX];
	if (!gva && (flags & AT_EMPTY_PATH))
		return 1;
	int err = svc_copy_str(t, gva, rel, sizeof(rel));
	if (err)
		return err;
	if (!rel[0]) {
		if (flags & AT_EMPTY_PATH)
			return 1;
		return -ENOENT;
	}
	if (rel[0] == '/') {
		memcpy(out, rel, strlen(rel) + 1);
		return 0;
	}
	struct svc_fs *fs = tfs(t);
	char base[VFS_PATH_MAX];
	if (dirfd == AT_FDCWD) {
		pthread_mutex_lock(&fs->lock);
		memcpy(base, fs->cwd, strlen(fs->cwd) + 1);
		pthread_mutex_unlock(&fs->lock);
	} else {
		struct svc_file *f = svc_fd_get(svc_thread_vm(t), dirfd);
		if (!f)
			return -EBADF;
		struct vfs_file *vf = svc_fsfile_vf(f);
		if (!vf || !(vf->type == VFS_FT_DIR || vf->type == VFS_FT_PATH))
			err = -ENOTDIR;
		else
			memcpy(base, vf->path, strlen(vf->path) + 1);
		svc_file_put(f);
		if (err)
			return err;
	}
	size_t bl = strlen(base), rl = strlen(rel);
	if (bl + 1 + rl >= VFS_PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(out, base, bl);
	out[bl] = '/';
	memcpy(out + bl + 1, rel, rl + 1);
	return 0;
}

/* ---------------------------------------------------------- open/close */

static void fsfile_release(struct svc_file *f)
{
	struct svc_fsfile *ff = f->priv;
	if (!ff)
		return;
	vfs_file_closing(ff->vfs, ff->vf, f->host_fd);
	vfs_file_destroy(ff->vf);
	pthread_mutex_destroy(&ff->lock);
	free(ff);
	f->priv = NULL;
}

/* Wrap an open vfs file into a guest fd. Takes over @hostfd and @vf. */
static long install_vfs(struct svc_thread *t, int hostfd, struct vfs_file *vf, int flags)
{
	struct svc_fsfile *ff = calloc(1, sizeof(*ff));
	char *path = strdup(vf->path);
	int acc = (flags & O_PATH) ? O_PATH : flags & O_ACCMODE;
	struct svc_file *f = NULL;
	if (ff && path)
		f = svc_file_new(vf->type == VFS_FT_DIR ? SVC_F_DIR : SVC_F_FILE, hostfd, acc,
				 flags & (SETTABLE_FL | O_SYNC | O_DSYNC | O_LARGEFILE));
	else
		close(hostfd);
	if (!f) {
		free(ff);
		free(path);
		vfs_file_destroy(vf);
		return -ENOMEM;
	}
	pthread_mutex_init(&ff->lock, NULL);
	ff->vf = vf;
	ff->vfs = svc_vm_fs(svc_thread_vm(t))->vfs;
	f->priv = ff;
	f->release = fsfile_release;
	f->path = path;
	return svc_fd_install(svc_thread_vm(t), f, 0, flags & O_CLOEXEC);
}

/* The guest fd named by @path if it is (lexically) /proc/self/fd/N,
 * /proc/PID/fd/N, /dev/fd/N or /dev/std{in,out,err}; -2 for /dev/tty;
 * else -1. */
static int magic_fd(const char *path)
{
	char n[VFS_PATH_MAX];
	if (fnvm_path_norm("/", path, n, sizeof(n)) < 0)
		return -1;
	if (!strcmp(n, "/dev/stdin"))
		return 0;
	if (!strcmp(n, "/dev/stdout"))
		return 1;
	if (!strcmp(n, "/dev/stderr"))
		return 2;
	if (!strcmp(n, "/dev/tty"))
		return -2;
	const char *p;
	if (!strncmp(n, "/dev/fd/", 8)) {
		p = n + 8;
	} else if (!strncmp(n, "/proc/", 6)) {
		p = n + 6;
		if (!strncmp(p, "self/", 5))
			p += 5;
		else {
			while (*p >= '0' && *p <= '9')
				p++;
			if (*p != '/' || p == n + 6)
				return -1;
			p++;
		}
		if (strncmp(p, "fd/", 3))
			return -1;
		p += 3;
	} else {
		return -1;
	}
	if (!*p || strlen(p) > 9)
		return -1;
	for (const char *c = p; *c; c++)
		if (*c < '0' || *c > '9')
			return -1;
	return atoi(p);
}

/* open() of a magic link to guest fd @fd: files and directories are opened
 * again by their guest path (a new open file description, as Linux);
 * pipes, sockets, standard streams... share the open file (as dup). */
static long open_magic(struct svc_thread *t, int fd, int flags, mode_t mode)
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), fd);
	if (!f)
		return -ENOENT;
	struct vfs_file *vf = svc_fsfile_vf(f);
	long r;
	if (vf && vf->type != VFS_FT_DEV && vf->type != VFS_FT_SYNTH) {
		char path[VFS_PATH_MAX];
		memcpy(path, vf->path, strlen(vf->path) + 1);
		svc_file_put(f);
		struct vfs_file *nvf;
		int hostfd = vfs_open(tvfs(t), path, flags & ~(O_CREAT | O_EXCL), mode, &nvf);
		if (hostfd < 0)
			return hostfd;
		return install_vfs(t, hostfd, nvf, flags);
	}
	int acc = flags & O_ACCMODE;
	if ((flags & O_DIRECTORY) || f->accmode == O_PATH)
		r = f->accmode == O_PATH ? -ENXIO : -ENOTDIR;
	else if ((acc != O_WRONLY && f->accmode == O_WRONLY) ||
		 (acc != O_RDONLY && f->accmode == O_RDONLY))
		r = -EACCES;
	else
		return svc_fd_install(svc_thread_vm(t), f, 0, flags & O_CLOEXEC);
	svc_file_put(f);
	return r;
}

static long do_open(struct svc_thread *t, int dirfd, uint64_t gpath, int flags, mode_t mode)
{
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, 0, path);
	if (err)
		return err;
	if ((flags & O_TMPFILE) == O_TMPFILE) {
		struct svc_fs *tfsp = tfs(t);
		pthread_mutex_lock(&tfsp->lock);
		mode &= ~tfsp->umask;
		pthread_mutex_unlock(&tfsp->lock);
		struct vfs_file *tvf;
		int hfd = vfs_open_tmpfile(tfsp->vfs, path, flags, mode & 07777, &tvf);
		if (hfd < 0)
			return hfd;
		return install_vfs(t, hfd, tvf, flags & ~O_TMPFILE);
	}
	if (flags & O_PATH)
		flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int mfd = (flags & (O_PATH | O_NOFOLLOW)) ? -1 : magic_fd(path);
	if (mfd == -2) { /* /dev/tty: the standard stream that is a terminal */
		for (int i = 0; i < 3 && mfd < 0; i++) {
			struct svc_file *f = svc_fd_get(svc_thread_vm(t), i);
			if (f && f->kind == SVC_F_STDIO && f->accmode == O_RDWR &&
			    isatty(f->host_fd))
				mfd = i;
			if (f)
				svc_file_put(f);
		}
		if (mfd < 0)
			return -ENXIO; /* no controlling terminal */
	}
	if (mfd >= 0)
		return open_magic(t, mfd, flags, mode & 07777);
	struct svc_fs *fs = tfs(t);
	if (flags & O_CREAT) {
		pthread_mutex_lock(&fs->lock);
		mode &= ~fs->umask;
		pthread_mutex_unlock(&fs->lock);
	}
	struct vfs_file *vf;
	int hostfd = vfs_open(fs->vfs, path, flags, mode & 07777, &vf);
	if (hostfd < 0)
		return hostfd;
	return install_vfs(t, hostfd, vf, flags);
}

static long sys_open(struct svc_thread *t, const uint64_t a[6])
{
	return do_open(t, AT_FDCWD, a[0], (int)a[1], (mode_t)a[2]);
}

static long sys_openat(struct svc_thread *t, const uint64_t a[6])
{
	return do_open(t, (int)a[0], a[1], (int)a[2], (mode_t)a[3]);
}

static long sys_creat(struct svc_thread *t, const uint64_t a[6])
{
	return do_open(t, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, (mode_t)a[1]);
}

static long sys_close(struct svc_thread *t, const uint64_t a[6])
{
	return svc_fdtab_close(svc_thread_vm(t), (int)a[0]);
}

static long sys_close_range(struct svc_thread *t, const uint64_t a[6])
{
	return svc_fdtab_close_range(svc_thread_vm(t), (unsigned)a[0], (unsigned)a[1],
				     (unsigned)a[2]);
}

/* ---------------------------------------------------------- stat */

/* stat of an open file. */
static int file_stat(struct svc_thread *t, struct svc_file *f, struct stat *st)
{
	struct vfs_file *vf = svc_fsfile_vf(f);
	if (vf && (vf->synth || vf->type == VFS_FT_SYNTH))
		return vfs_stat(tvfs(t), vf->path, AT_SYMLINK_NOFOLLOW, st);
	return fstat(f->host_fd, st) < 0 ? -errno : 0;
}

static long do_fstatat(struct svc_thread *t, int dirfd, uint64_t gpath, uint64_t gst, int flags)
{
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT))
		return -EINVAL;
	char path[VFS_PATH_MAX];
	struct stat st;
	int err = svc_fs_path(t, dirfd, gpath, flags, path);
	if (err < 0)
		return err;
	if (err == 1) {
		struct svc_file *f = dirfd == AT_FDCWD ? NULL : svc_fd_get(svc_thread_vm(t), dirfd);
		if (dirfd == AT_FDCWD) {
			struct svc_fs *fs = tfs(t);
			pthread_mutex_lock(&fs->lock);
			memcpy(path, fs->cwd, strlen(fs->cwd) + 1);
			pthread_mutex_unlock(&fs->lock);
			err = vfs_stat(fs->vfs, path, 0, &st);
		} else if (!f) {
			return -EBADF;
		} else {
			err = file_stat(t, f, &st);
			svc_file_put(f);
		}
	} else {
		err = vfs_stat(tvfs(t), path, flags & AT_SYMLINK_NOFOLLOW, &st);
	}
	if (err)
		return err;
	return svc_copy_out(t, gst, &st, sizeof(st));
}

static long sys_stat(struct svc_thread *t, const uint64_t a[6])
{
	return do_fstatat(t, AT_FDCWD, a[0], a[1], 0);
}

static long sys_lstat(struct svc_thread *t, const uint64_t a[6])
{
	return do_fstatat(t, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW);
}

static long sys_newfstatat(struct svc_thread *t, const uint64_t a[6])
{
	return do_fstatat(t, (int)a[0], a[1], a[2], (int)a[3]);
}

static long sys_fstat(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (long)(int)a[0]);
	if (!f)
		return -EBADF;
	struct stat st;
	int err = file_stat(t, f, &st);
	svc_file_put(f);
	if (err)
		return err;
	return svc_copy_out(t, a[1], &st, sizeof(st));
}

static long sys_statx(struct svc_thread *t, const uint64_t a[6])
{
	int dirfd = (int)a[0], flags = (int)a[2];
	unsigned mask = (unsigned)a[3];
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE))
		return -EINVAL;
	char path[VFS_PATH_MAX];
	struct statx sx;
	int err = svc_fs_path(t, dirfd, a[1], flags, path);
	if (err < 0)
		return err;
	if (err == 1) {
		if (dirfd == AT_FDCWD) {
			struct svc_fs *fs = tfs(t);
			pthread_mutex_lock(&fs->lock);
			memcpy(path, fs->cwd, strlen(fs->cwd) + 1);
			pthread_mutex_unlock(&fs->lock);
			err = vfs_statx(fs->vfs, path, 0, mask, &sx);
		} else {
			struct svc_file *f = svc_fd_get(svc_thread_vm(t), dirfd);
			if (!f)
				return -EBADF;
			struct vfs_file *vf = svc_fsfile_vf(f);
			err = 0;
			if (vf && (vf->synth || vf->type == VFS_FT_SYNTH))
				err = vfs_statx(tvfs(t), vf->path, AT_SYMLINK_NOFOLLOW, mask, &sx);
			else if (statx(f->host_fd, "", AT_EMPTY_PATH, mask, &sx) < 0)
				err = -errno;
			svc_file_put(f);
		}
	} else {
		err = vfs_statx(tvfs(t), path, flags & AT_SYMLINK_NOFOLLOW, mask, &sx);
	}
	if (err)
		return err;
	return svc_copy_out(t, a[4], &sx, sizeof(sx));
}

static long do_access(struct svc_thread *t, int dirfd, uint64_t gpath, int mode, int flags)
{
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH))
		return -EINVAL;
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, flags, path);
	if (err == 1) {
		struct svc_file *f = svc_fd_get(svc_thread_vm(t), dirfd);
		if (!f)
			return -EBADF;
		struct vfs_file *vf = svc_fsfile_vf(f);
		err = vf ? 0 : -EBADF;
		if (vf)
			memcpy(path, vf->path, strlen(vf->path) + 1);
		svc_file_put(f);
	}
	if (err)
		return err;
	return vfs_access(tvfs(t), path, mode, flags & AT_SYMLINK_NOFOLLOW);
}

static long sys_access(struct svc_thread *t, const uint64_t a[6])
{
	return do_access(t, AT_FDCWD, a[0], (int)a[1], 0);
}

static long sys_faccessat(struct svc_thread *t, const uint64_t a[6])
{
	return do_access(t, (int)a[0], a[1], (int)a[2], 0);
}

static long sys_faccessat2(struct svc_thread *t, const uint64_t a[6])
{
	return do_access(t, (int)a[0], a[1], (int)a[2], (int)a[3]);
}

/* ---------------------------------------------------------- names */

static long do_mkdir(struct svc_thread *t, int dirfd, uint64_t gpath, mode_t mode)
{
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, 0, path);
	if (err)
		return err;
	struct svc_fs *fs = tfs(t);
	pthread_mutex_lock(&fs->lock);
	mode &= ~fs->umask;
	pthread_mutex_unlock(&fs->lock);
	return vfs_mkdir(fs->vfs, path, mode & 01777);
}

static long sys_mkdir(struct svc_thread *t, const uint64_t a[6])
{
	return do_mkdir(t, AT_FDCWD, a[0], (mode_t)a[1]);
}

static long sys_mkdirat(struct svc_thread *t, const uint64_t a[6])
{
	return do_mkdir(t, (int)a[0], a[1], (mode_t)a[2]);
}

static long do_mknod(struct svc_thread *t, int dirfd, uint64_t gpath, mode_t mode)
{
	mode_t type = mode & S_IFMT;
	if (type != 0 && type != S_IFREG)
		return -EPERM; /* no device nodes, FIFOs or sockets in the layers */
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, 0, path);
	if (err)
		return err;
	struct svc_fs *fs = tfs(t);
	pthread_mutex_lock(&fs->lock);
	mode &= ~fs->umask;
	pthread_mutex_unlock(&fs->lock);
	struct vfs_file *vf;
	int fd = vfs_open(fs->vfs, path, O_CREAT | O_EXCL | O_WRONLY, mode & 07777, &vf);
	if (fd < 0)
		return fd;
	close(fd);
	vfs_file_destroy(vf);
	return 0;
}

static long sys_mknod(struct svc_thread *t, const uint64_t a[6])
{
	return do_mknod(t, AT_FDCWD, a[0], (mode_t)a[1]);
}

static long sys_mknodat(struct svc_thread *t, const uint64_t a[6])
{
	return do_mknod(t, (int)a[0], a[1], (mode_t)a[2]);
}

static long do_unlink(struct svc_thread *t, int dirfd, uint64_t gpath, int flags)
{
	if (flags & ~AT_REMOVEDIR)
		return -EINVAL;
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, 0, path);
	if (err)
		return err;
	return (flags & AT_REMOVEDIR) ? vfs_rmdir(tvfs(t), path) : vfs_unlink(tvfs(t), path);
}

static long sys_unlink(struct svc_thread *t, const uint64_t a[6])
{
	return do_unlink(t, AT_FDCWD, a[0], 0);
}

static long sys_rmdir(struct svc_thread *t, const uint64_t a[6])
{
	return do_unlink(t, AT_FDCWD, a[0], AT_REMOVEDIR);
}

static long sys_unlinkat(struct svc_thread *t, const uint64_t a[6])
{
	return do_unlink(t, (int)a[0], a[1], (int)a[2]);
}

static long do_rename(struct svc_thread *t, int ofd, uint64_t op, int nfd, uint64_t np,
		      unsigned flags)
{
	char from[VFS_PATH_MAX], to[VFS_PATH_MAX];
	int err = svc_fs_path(t, ofd, op, 0, from);
	if (!err)
		err = svc_fs_path(t, nfd, np, 0, to);
	if (err)
		return err;
	return vfs_rename(tvfs(t), from, to, flags);
}

static long sys_rename(struct svc_thread *t, const uint64_t a[6])
{
	return do_rename(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
}

static long sys_renameat(struct svc_thread *t, const uint64_t a[6])
{
	return do_rename(t, (int)a[0], a[1], (int)a[2], a[3], 0);
}

static long sys_renameat2(struct svc_thread *t, const uint64_t a[6])
{
	return do_rename(t, (int)a[0], a[1], (int)a[2], a[3], (unsigned)a[4]);
}

static long do_link(struct svc_thread *t, int ofd, uint64_t op, int nfd, uint64_t np, int flags)
{
	if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	char from[VFS_PATH_MAX], to[VFS_PATH_MAX];
	int err = svc_fs_path(t, ofd, op, 0, from);
	if (!err)
		err = svc_fs_path(t, nfd, np, 0, to);
	if (err)
		return err;
	return vfs_link(tvfs(t), from, to, flags & AT_SYMLINK_FOLLOW);
}

static long sys_link(struct svc_thread *t, const uint64_t a[6])
{
	return do_link(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
}

static long sys_linkat(struct svc_thread *t, const uint64_t a[6])
{
	return do_link(t, (int)a[0], a[1], (int)a[2], a[3], (int)a[4]);
}

static long do_symlink(struct svc_thread *t, uint64_t gtarget, int dirfd, uint64_t gpath)
{
	char target[VFS_PATH_MAX], path[VFS_PATH_MAX];
	int err = svc_copy_str(t, gtarget, target, sizeof(target));
	if (err)
		return err;
	if (!target[0])
		return -ENOENT;
	err = svc_fs_path(t, dirfd, gpath, 0, path);
	if (err)
		return err;
	return vfs_symlink(tvfs(t), target, path);
}

static long sys_symlink(struct svc_thread *t, const uint64_t a[6])
{
	return do_symlink(t, a[0], AT_FDCWD, a[1]);
}

static long sys_symlinkat(struct svc_thread *t, const uint64_t a[6])
{
	return do_symlink(t, a[0], (int)a[1], a[2]);
}

static long do_readlink(struct svc_thread *t, int dirfd, uint64_t gpath, uint64_t gbuf,
			uint64_t len)
{
	if ((int64_t)len <= 0)
		return -EINVAL;
	char path[VFS_PATH_MAX], buf[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, 0, path);
	if (err)
		return err;
	long n = vfs_readlink(tvfs(t), path, buf, sizeof(buf));
	if (n < 0)
		return n;
	if ((uint64_t)n > len)
		n = (long)len;
	err = svc_copy_out(t, gbuf, buf, (uint64_t)n);
	return err ? err : n;
}

static long sys_readlink(struct svc_thread *t, const uint64_t a[6])
{
	return do_readlink(t, AT_FDCWD, a[0], a[1], a[2]);
}

static long sys_readlinkat(struct svc_thread *t, const uint64_t a[6])
{
	return do_readlink(t, (int)a[0], a[1], a[2], a[3]);
}

/* ---------------------------------------------------------- metadata */

/* Path for an fd-based metadata call (fchmod, fchown, futimens...). */
static int fd_path(struct svc_thread *t, int fd, char *path, struct svc_file **fout)
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), fd);
	if (!f)
		return -EBADF;
	struct vfs_file *vf = svc_fsfile_vf(f);
	if (!vf) {
		svc_file_put(f);
		return -EPERM; /* pipes, sockets...: nothing to change that the guest sees */
	}
	memcpy(path, vf->path, strlen(vf->path) + 1);
	*fout = f;
	return 0;
}

static long do_chmod(struct svc_thread *t, int dirfd, uint64_t gpath, mode_t mode, int flags)
{
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, flags, path);
	if (err == 1) {
		struct svc_file *f;
		if ((err = fd_path(t, dirfd, path, &f)))
			return err;
		svc_file_put(f);
	}
	if (err)
		return err;
	return vfs_chmod(tvfs(t), path, mode & 07777, flags & AT_SYMLINK_NOFOLLOW);
}

static long sys_chmod(struct svc_thread *t, const uint64_t a[6])
{
	return do_chmod(t, AT_FDCWD, a[0], (mode_t)a[1], 0);
}

static long sys_fchmodat(struct svc_thread *t, const uint64_t a[6])
{
	return do_chmod(t, (int)a[0], a[1], (mode_t)a[2], 0);
}

static long sys_fchmod(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	char path[VFS_PATH_MAX];
	int err = fd_path(t, (int)a[0], path, &f);
	if (err)
		return err;
	struct vfs_file *vf = svc_fsfile_vf(f);
	if (vf->upper) /* the host fd is the file itself: works after unlink too */
		err = fchmod(f->host_fd, (mode_t)a[1] & 01777) < 0 ? -errno : 0;
	else
		err = vfs_chmod(tvfs(t), path, (mode_t)a[1] & 07777, 0);
	svc_file_put(f);
	return err;
}

static long do_chown(struct svc_thread *t, int dirfd, uint64_t gpath, int flags)
{
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, dirfd, gpath, flags, path);
	if (err == 1) {
		struct svc_file *f;
		if ((err = fd_path(t, dirfd, path, &f)))
			return err;
		svc_file_put(f);
	}
	if (err)
		return err;
	return vfs_chown(tvfs(t), path, flags & AT_SYMLINK_NOFOLLOW);
}

static long sys_chown(struct svc_thread *t, const uint64_t a[6])
{
	return do_chown(t, AT_FDCWD, a[0], 0);
}

static long sys_lchown(struct svc_thread *t, const uint64_t a[6])
{
	return do_chown(t, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW);
}

static long sys_fchownat(struct svc_thread *t, const uint64_t a[6])
{
	return do_chown(t, (int)a[0], a[1], (int)a[4]);
}

static long sys_fchown(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	svc_file_put(f);
	return 0; /* owners are not stored (docs/SERVICE-VMS.md) */
}

static long sys_utimensat(struct svc_thread *t, const uint64_t a[6])
{
	int dirfd = (int)a[0], flags = (int)a[3];
	if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
		return -EINVAL;
	struct timespec ts[2], *tsp = NULL;
	if (a[2]) {
		int err = svc_copy_in(t, ts, a[2], sizeof(ts));
		if (err)
			return err;
		for (int i = 0; i < 2; i++)
			if (ts[i].tv_nsec != UTIME_NOW && ts[i].tv_nsec != UTIME_OMIT &&
			    (ts[i].tv_nsec < 0 || ts[i].tv_nsec >= 1000000000))
				return -EINVAL;
		tsp = ts;
	}
	char path[VFS_PATH_MAX];
	int err = a[1] ? svc_fs_path(t, dirfd, a[1], flags, path) : 1;
	if (err == 1) {
		if (dirfd == AT_FDCWD && a[1])
			return -ENOENT;
		struct svc_file *f;
		if ((err = fd_path(t, dirfd, path, &f)))
			return err;
		struct vfs_file *vf = svc_fsfile_vf(f);
		if (vf->upper)
			err = futimens(f->host_fd, tsp) < 0 ? -errno : 0;
		else
			err = vfs_utimens(tvfs(t), path, tsp, 0);
		svc_file_put(f);
		return err;
	}
	if (err)
		return err;
	return vfs_utimens(tvfs(t), path, tsp, flags & AT_SYMLINK_NOFOLLOW);
}

static long sys_truncate(struct svc_thread *t, const uint64_t a[6])
{
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, AT_FDCWD, a[0], 0, path);
	if (err)
		return err;
	if ((int64_t)a[1] < 0)
		return -EINVAL;
	return vfs_truncate(tvfs(t), path, a[1]);
}

/* A regular file open for writing, or -EBADF / -EINVAL. */
static struct svc_file *writable_file(struct svc_thread *t, int fd, long *err)
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), fd);
	*err = -EBADF;
	if (!f)
		return NULL;
	struct vfs_file *vf = svc_fsfile_vf(f);
	if (f->accmode != O_WRONLY && f->accmode != O_RDWR) {
		*err = f->accmode == O_PATH ? -EBADF : -EINVAL;
	} else if (!vf || vf->type != VFS_FT_REG) {
		*err = -EINVAL;
	} else {
		*err = 0;
		return f;
	}
	svc_file_put(f);
	return NULL;
}

static long sys_ftruncate(struct svc_thread *t, const uint64_t a[6])
{
	long err;
	if ((int64_t)a[1] < 0)
		return -EINVAL;
	struct svc_file *f = writable_file(t, (int)a[0], &err);
	if (!f)
		return err;
	struct vfs *v = tvfs(t);
	struct vfs_file *vf = svc_fsfile_vf(f);
	bool acct = vfs_quota_applies(v, vf);
	uint64_t tok = 0;
	struct stat st;
	if (fstat(f->host_fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	uint64_t len = a[1], grow = len > (uint64_t)st.st_size ? len - (uint64_t)st.st_size : 0;
	uint64_t want = grow;
	if (acct && (err = vfs_quota_begin(v, f->host_fd, (uint64_t)st.st_size, &want, &tok)))
		goto out;
	if (acct && want < grow)
		err = -ENOSPC;
	else
		err = ftruncate(f->host_fd, (off_t)len) < 0 ? -errno : 0;
	if (acct)
		vfs_quota_end(v, f->host_fd, tok);
out:
	svc_file_put(f);
	return err;
}

static long sys_fallocate(struct svc_thread *t, const uint64_t a[6])
{
	long err;
	int mode = (int)a[1];
	int64_t off = (int64_t)a[2], len = (int64_t)a[3];
	if (off < 0 || len <= 0)
		return -EINVAL;
	struct svc_file *f = writable_file(t, (int)a[0], &err);
	if (!f)
		return err;
	struct vfs *v = tvfs(t);
	bool acct = vfs_quota_applies(v, svc_fsfile_vf(f)) && !(mode & FALLOC_FL_PUNCH_HOLE);
	uint64_t tok = 0, want = (uint64_t)len;
	if (acct && (err = vfs_quota_begin(v, f->host_fd, (uint64_t)off, &want, &tok)))
		goto out;
	if (acct && want < (uint64_t)len)
		err = -ENOSPC;
	else
		err = fallocate(f->host_fd, mode, off, len) < 0 ? -errno : 0;
	if (acct)
		vfs_quota_end(v, f->host_fd, tok);
out:
	svc_file_put(f);
	return err;
}

static long do_fsync(struct svc_thread *t, int fd, bool data)
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), fd);
	if (!f)
		return -EBADF;
	long err = 0;
	if (f->accmode == O_PATH)
		err = -EBADF;
	else if ((data ? fdatasync(f->host_fd) : fsync(f->host_fd)) < 0)
		err = -errno;
	svc_file_put(f);
	return err;
}

static long sys_fsync(struct svc_thread *t, const uint64_t a[6])
{
	return do_fsync(t, (int)a[0], false);
}

static long sys_fdatasync(struct svc_thread *t, const uint64_t a[6])
{
	return do_fsync(t, (int)a[0], true);
}

static long sys_sync(struct svc_thread *t, const uint64_t a[6])
{
	(void)a;
	vfs_sync(tvfs(t));
	return 0;
}

static long sys_syncfs(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	svc_file_put(f);
	return vfs_sync(tvfs(t));
}

static long sys_umask(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_fs *fs = tfs(t);
	pthread_mutex_lock(&fs->lock);
	mode_t old = fs->umask;
	fs->umask = (mode_t)a[0] & 0777;
	pthread_mutex_unlock(&fs->lock);
	return old;
}

static long do_statfs(struct svc_thread *t, struct statfs *st, uint64_t gbuf)
{
	return svc_copy_out(t, gbuf, st, sizeof(*st));
}

static long sys_statfs(struct svc_thread *t, const uint64_t a[6])
{
	char path[VFS_PATH_MAX];
	struct statfs st;
	int err = svc_fs_path(t, AT_FDCWD, a[0], 0, path);
	if (!err)
		err = vfs_statfs(tvfs(t), path, &st);
	return err ? err : do_statfs(t, &st, a[1]);
}

static long sys_fstatfs(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	struct statfs st;
	struct vfs_file *vf = svc_fsfile_vf(f);
	long err = 0;
	if (vf)
		vfs_statfs_fd(tvfs(t), vf, &st);
	else if (fstatfs(f->host_fd, &st) < 0)
		err = -errno;
	svc_file_put(f);
	return err ? err : do_statfs(t, &st, a[1]);
}

/* ---------------------------------------------------------- cwd */

static long sys_getcwd(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_fs *fs = tfs(t);
	char cwd[VFS_PATH_MAX];
	pthread_mutex_lock(&fs->lock);
	size_t l = strlen(fs->cwd);
	memcpy(cwd, fs->cwd, l + 1);
	pthread_mutex_unlock(&fs->lock);
	if (a[1] < l + 1)
		return -ERANGE;
	int err = svc_copy_out(t, a[0], cwd, l + 1);
	return err ? err : (long)(l + 1);
}

static int set_cwd(struct svc_thread *t, const char *path)
{
	char canon[VFS_PATH_MAX];
	struct svc_fs *fs = tfs(t);
	int err = vfs_realdir(fs->vfs, path, canon);
	if (!err)
		err = vfs_access(fs->vfs, canon, X_OK, 0);
	if (err)
		return err;
	pthread_mutex_lock(&fs->lock);
	memcpy(fs->cwd, canon, strlen(canon) + 1);
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

static long sys_chdir(struct svc_thread *t, const uint64_t a[6])
{
	char path[VFS_PATH_MAX];
	int err = svc_fs_path(t, AT_FDCWD, a[0], 0, path);
	return err ? err : set_cwd(t, path);
}

static long sys_fchdir(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	struct vfs_file *vf = svc_fsfile_vf(f);
	char path[VFS_PATH_MAX];
	long err = 0;
	if (!vf || !(vf->type == VFS_FT_DIR || vf->type == VFS_FT_PATH))
		err = -ENOTDIR;
	else
		memcpy(path, vf->path, strlen(vf->path) + 1);
	svc_file_put(f);
	return err ? err : set_cwd(t, path);
}

/* ---------------------------------------------------------- getdents */

static long sys_getdents64(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	long r;
	struct vfs_file *vf = svc_fsfile_vf(f);
	uint64_t len = a[2] > (1u << 20) ? (1u << 20) : a[2];
	void *buf = len ? svc_uptr(t, a[1], len) : NULL;
	if (f->accmode == O_PATH) {
		r = -EBADF;
	} else if (!vf || vf->type != VFS_FT_DIR) {
		r = -ENOTDIR;
	} else if (!buf) {
		r = len ? -EFAULT : -EINVAL;
	} else {
		struct svc_fsfile *ff = f->priv;
		pthread_mutex_lock(&ff->lock);
		r = vfs_getdents(tvfs(t), vf, &ff->dpos, buf, len);
		pthread_mutex_unlock(&ff->lock);
	}
	svc_file_put(f);
	return r;
}

long svc_fs_dir_seek(struct svc_file *f, int64_t off, int whence)
{
	struct svc_fsfile *ff = f->priv;
	struct vfs_file *vf = svc_fsfile_vf(f);
	if (!vf)
		return -EBADF;
	pthread_mutex_lock(&ff->lock);
	long r;
	int64_t pos = whence == SEEK_SET ? off : whence == SEEK_CUR ? (int64_t)ff->dpos + off : -1;
	if (whence != SEEK_SET && whence != SEEK_CUR)
		r = -EINVAL;
	else if (pos < 0 || (r = vfs_dir_seek(vf, (uint64_t)pos)) != 0)
		r = -EINVAL;
	else
		r = (long)(ff->dpos = (uint64_t)pos);
	pthread_mutex_unlock(&ff->lock);
	return r;
}

/* ---------------------------------------------------------- dup, fcntl */

static long sys_dup(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = svc_thread_vm(t);
	struct svc_file *f = svc_fd_get(vm, (int)a[0]);
	if (!f)
		return -EBADF;
	return svc_fd_install(vm, f, 0, false);
}

static long do_dup3(struct svc_thread *t, int oldfd, int newfd, int flags)
{
	struct svc_vm *vm = svc_thread_vm(t);
	if (flags & ~O_CLOEXEC)
		return -EINVAL;
	struct svc_file *f = svc_fd_get(vm, oldfd);
	if (!f)
		return -EBADF;
	return svc_fdtab_replace(vm, f, newfd, flags & O_CLOEXEC);
}

static long sys_dup2(struct svc_thread *t, const uint64_t a[6])
{
	int oldfd = (int)a[0], newfd = (int)a[1];
	if (oldfd == newfd) {
		struct svc_file *f = svc_fd_get(svc_thread_vm(t), oldfd);
		if (!f)
			return -EBADF;
		svc_file_put(f);
		return newfd;
	}
	return do_dup3(t, oldfd, newfd, 0);
}

static long sys_dup3(struct svc_thread *t, const uint64_t a[6])
{
	if ((int)a[0] == (int)a[1])
		return -EINVAL;
	return do_dup3(t, (int)a[0], (int)a[1], (int)a[2]);
}

/* F_SETLKW / flock without LOCK_NB: poll the non-blocking form, sleeping
 * interruptibly in between, so signals and stop end the wait. */
static long lock_wait(struct svc_thread *t, int fd, int cmd, struct flock *fl, int flock_op)
{
	uint64_t ns = LOCK_POLL_MIN_NS;
	for (;;) {
		int r = flock_op ? flock(fd, flock_op | LOCK_NB) : fcntl(fd, cmd, fl);
		if (r == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EWOULDBLOCK)
			return -errno;
		uint64_t left;
		int w = svc_sleep(t, ns, &left);
		if (w < 0)
			return -EINTR;
		ns = ns * 2 > LOCK_POLL_MAX_NS ? LOCK_POLL_MAX_NS : ns * 2;
	}
}

static long fcntl_lock(struct svc_thread *t, struct svc_file *f, int cmd, uint64_t garg)
{
	struct flock fl;
	int err = svc_copy_in(t, &fl, garg, sizeof(fl));
	if (err)
		return err;
	if (f->kind != SVC_F_FILE || f->accmode == O_PATH)
		return f->accmode == O_PATH ? -EBADF : -EINVAL;
	if (fl.l_type != F_RDLCK && fl.l_type != F_WRLCK && fl.l_type != F_UNLCK)
		return -EINVAL;
	if (cmd != F_GETLK && cmd != F_OFD_GETLK) {
		if (fl.l_type == F_RDLCK && f->accmode == O_WRONLY)
			return -EBADF;
		if (fl.l_type == F_WRLCK && f->accmode == O_RDONLY)
			return -EBADF;
	}
	if (cmd == F_SETLKW || cmd == F_OFD_SETLKW)
		return lock_wait(t, f->host_fd, cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK, &fl, 0);
	if (fcntl(f->host_fd, cmd, &fl) < 0)
		return -errno;
	if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
		if (fl.l_type != F_UNLCK && cmd == F_GETLK)
			fl.l_pid = -1; /* a holder outside this VM: no guest pid */
		return svc_copy_out(t, garg, &fl, sizeof(fl));
	}
	return 0;
}

static long sys_fcntl(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = svc_thread_vm(t);
	int fd = (int)a[0], cmd = (int)a[1];
	struct svc_file *f = svc_fd_get(vm, fd);
	if (!f)
		return -EBADF;
	long r;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if ((int64_t)(int)a[2] < 0 || (unsigned)(int)a[2] >= svc_fdtab_max(vm)) {
			r = -EINVAL;
			break;
		}
		svc_file_get(f);
		r = svc_fd_install(vm, f, (int)a[2], cmd == F_DUPFD_CLOEXEC);
		break;
	case F_GETFD:
		r = svc_fdtab_cloexec(vm, fd, -1);
		r = r < 0 ? r : (r ? FD_CLOEXEC : 0);
		break;
	case F_SETFD:
		r = svc_fdtab_cloexec(vm, fd, (int)a[2] & FD_CLOEXEC);
		r = r < 0 ? r : 0;
		break;
	case F_GETFL:
		r = (f->accmode == O_PATH ? O_PATH : f->accmode) | f->status_flags;
		break;
	case F_SETFL: {
		if (f->accmode == O_PATH) {
			r = -EBADF;
			break;
		}
		int nf = (int)a[2] & SETTABLE_FL;
		int changed = (f->status_flags ^ nf) & SETTABLE_FL;
		r = 0;
		if (changed & (O_APPEND | O_DIRECT)) {
			/* mirror on the host; O_NONBLOCK stays set there */
			int hf = fcntl(f->host_fd, F_GETFL);
			if (hf < 0 ||
			    fcntl(f->host_fd, F_SETFL,
				  (hf & ~(O_APPEND | O_DIRECT)) | (nf & (O_APPEND | O_DIRECT))) < 0)
				r = -errno;
		}
		if (!r)
			__atomic_store_n(&f->status_flags, (f->status_flags & ~SETTABLE_FL) | nf,
					 __ATOMIC_RELAXED);
		break;
	}
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		r = fcntl_lock(t, f, cmd, a[2]);
		break;
	case F_GETPIPE_SZ:
	case F_SETPIPE_SZ:
		if (f->kind != SVC_F_PIPE) {
			r = -EBADF;
			break;
		}
		r = fcntl(f->host_fd, cmd, (int)a[2]);
		r = r < 0 ? -errno : r;
		break;
	case F_GETOWN:
	case F_SETOWN:
	case F_SETSIG:
	case F_GETSIG:
		r = 0;
		break;
	case F_GETLEASE:
		r = F_UNLCK;
		break;
	default:
		r = -EINVAL;
	}
	svc_file_put(f);
	return r;
}

static long sys_flock(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	int op = (int)a[1];
	long r;
	int kind = op & ~LOCK_NB;
	if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN)
		r = -EINVAL;
	else if (f->accmode == O_PATH)
		r = -EBADF;
	else if ((op & LOCK_NB) || kind == LOCK_UN)
		r = flock(f->host_fd, op | LOCK_NB) < 0 ? -errno : 0;
	else
		r = lock_wait(t, f->host_fd, 0, NULL, kind);
	svc_file_put(f);
	return r;
}

/* ---------------------------------------------------------- table */

static const svc_sys_fn fs_table[] = {
    [SYS_open] = sys_open,
    [SYS_openat] = sys_openat,
    [SYS_creat] = sys_creat,
    [SYS_close] = sys_close,
    [SYS_close_range] = sys_close_range,
    [SYS_stat] = sys_stat,
    [SYS_lstat] = sys_lstat,
    [SYS_fstat] = sys_fstat,
    [SYS_newfstatat] = sys_newfstatat,
    [SYS_statx] = sys_statx,
    [SYS_access] = sys_access,
    [SYS_faccessat] = sys_faccessat,
    [SYS_faccessat2] = sys_faccessat2,
    [SYS_mkdir] = sys_mkdir,
    [SYS_mkdirat] = sys_mkdirat,
    [SYS_mknod] = sys_mknod,
    [SYS_mknodat] = sys_mknodat,
    [SYS_rmdir] = sys_rmdir,
    [SYS_unlink] = sys_unlink,
    [SYS_unlinkat] = sys_unlinkat,
    [SYS_rename] = sys_rename,
    [SYS_renameat] = sys_renameat,
    [SYS_renameat2] = sys_renameat2,
    [SYS_link] = sys_link,
    [SYS_linkat] = sys_linkat,
    [SYS_symlink] = sys_symlink,
    [SYS_symlinkat] = sys_symlinkat,
    [SYS_readlink] = sys_readlink,
    [SYS_readlinkat] = sys_readlinkat,
    [SYS_chmod] = sys_chmod,
    [SYS_fchmod] = sys_fchmod,
    [SYS_fchmodat] = sys_fchmodat,
    [SYS_chown] = sys_chown,
    [SYS_lchown] = sys_lchown,
    [SYS_fchown] = sys_fchown,
    [SYS_fchownat] = sys_fchownat,
    [SYS_utimensat] = sys_utimensat,
    [SYS_truncate] = sys_truncate,
    [SYS_ftruncate] = sys_ftruncate,
    [SYS_fallocate] = sys_fallocate,
    [SYS_fsync] = sys_fsync,
    [SYS_fdatasync] = sys_fdatasync,
    [SYS_sync] = sys_sync,
    [SYS_syncfs] = sys_syncfs,
    [SYS_umask] = sys_umask,
    [SYS_statfs] = sys_statfs,
    [SYS_fstatfs] = sys_fstatfs,
    [SYS_getcwd] = sys_getcwd,
    [SYS_chdir] = sys_chdir,
    [SYS_fchdir] = sys_fchdir,
    [SYS_getdents64] = sys_getdents64,
    [SYS_dup] = sys_dup,
    [SYS_dup2] = sys_dup2,
    [SYS_dup3] = sys_dup3,
    [SYS_fcntl] = sys_fcntl,
    [SYS_flock] = sys_flock,
};

svc_sys_fn svc_fs_handler(unsigned nr)
{
	if (nr < sizeof(fs_table) / sizeof(fs_table[0]) && fs_table[nr])
		return fs_table[nr];
	return svc_io_handler(nr);
}

/* ---------------------------------------------------------- /proc hooks */

static long proc_fd_link(void *ctx, int fd, char *buf, size_t len)
{
	struct svc_fs *fs = ctx;
	struct svc_file *f = svc_fd_get(fs->vm, fd);
	if (!f)
		return -EBADF;
	char tmp[VFS_PATH_MAX];
	struct stat st;
	int n;
	if (f->path) {
		n = snprintf(tmp, sizeof(tmp), "%s", f->path);
	} else if (fstat(f->host_fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		n = snprintf(tmp, sizeof(tmp), "%s:[%lu]", S_ISFIFO(st.st_mode) ? "pipe" : "socket",
			     (unsigned long)st.st_ino);
	} else {
		const char *k = f->kind == SVC_F_EPOLL	   ? "[eventpoll]"
				: f->kind == SVC_F_EVENTFD ? "[eventfd]"
				: f->kind == SVC_F_TIMERFD ? "[timerfd]"
				: f->kind == SVC_F_STDIO   ? "/dev/console"
							   : "[unknown]";
		n = snprintf(tmp, sizeof(tmp), "%s%s", k[0] == '[' ? "anon_inode:" : "", k);
	}
	svc_file_put(f);
	if (n < 0)
		return -EINVAL;
	size_t l = (size_t)n < len ? (size_t)n : len;
	memcpy(buf, tmp, l);
	return (long)l;
}

static long proc_cwd(void *ctx, char *buf, size_t len)
{
	struct svc_fs *fs = ctx;
	pthread_mutex_lock(&fs->lock);
	size_t l = strlen(fs->cwd);
	if (l > len)
		l = len;
	memcpy(buf, fs->cwd, l);
	pthread_mutex_unlock(&fs->lock);
	return (long)l;
}

static size_t proc_fd_list(void *ctx, int *fds, size_t max)
{
	struct svc_fs *fs = ctx;
	return svc_fdtab_list(fs->vm, fds, max);
}

static int proc_self_file(void *ctx, const char *name, char **data, size_t *len)
{
	struct svc_fs *fs = ctx;
	const struct svc_config *cfg = svc_vm_config(fs->vm);
	size_t cap = 4096, l = 0;
	char *b = calloc(1, cap);
	if (!b)
		return -ENOMEM;
	const char *comm = fs->exe ? strrchr(fs->exe, '/') : NULL;
	comm = comm ? comm + 1 : "?";
	int n = 0;
	if (!strcmp(name, "stat")) {
		/* pid (comm) state ppid pgrp session tty tpgid flags ... (man 5 proc) */
		n = snprintf(b, cap,
			     "1 (%.15s) R 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 0 %llu 0 "
			     "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
			     comm, (unsigned long long)(cfg ? cfg->mem_size : 0));
	} else if (!strcmp(name, "statm")) {
		n = snprintf(b, cap, "0 0 0 0 0 0 0\n");
	} else if (!strcmp(name, "status")) {
		n = snprintf(b, cap,
			     "Name:\t%.15s\nState:\tR (running)\nTgid:\t1\nPid:\t1\nPPid:\t0\n"
			     "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmRSS:\t0 kB\nThreads:\t1\n",
			     comm);
	} else if (!strcmp(name, "cmdline") || !strcmp(name, "environ")) {
		char *const *v = cfg ? (!strcmp(name, "cmdline") ? cfg->argv : cfg->envp) : NULL;
		for (size_t i = 0; v && v[i]; i++) {
			size_t sl = strlen(v[i]) + 1;
			if (l + sl > cap) {
				size_t nc = (l + sl) * 2;
				char *nb = realloc(b, nc);
				if (!nb) {
					free(b);
					return -ENOMEM;
				}
				b = nb;
				cap = nc;
			}
			memcpy(b + l, v[i], sl);
			l += sl;
		}
		*data = b;
		*len = l;
		return 0;
	} else if (!strcmp(name, "limits")) {
		n = snprintf(b, cap,
			     "Limit                     Soft Limit           Hard Limit           "
			     "Units     \nMax open files            %-20u %-20u files     \n",
			     svc_fdtab_max(fs->vm), svc_fdtab_max(fs->vm));
	} else if (!strcmp(name, "mounts")) {
		n = snprintf(b, cap,
			     "nubis / nubis rw 0 0\nproc /proc proc ro 0 0\n"
			     "devtmpfs /dev devtmpfs ro 0 0\n");
	} else if (!strcmp(name, "maps")) {
		n = 0;
	} else {
		free(b);
		return -ENOENT;
	}
	if (n < 0 || (size_t)n >= cap) {
		free(b);
		return -EINVAL;
	}
	*data = b;
	*len = (size_t)n;
	return 0;
}

/* /proc/cpuinfo and /proc/meminfo from the VM's configuration. */
static int proc_file(void *ctx, const char *name, char **data, size_t *len)
{
	struct svc_fs *fs = ctx;
	const struct svc_config *cfg = svc_vm_config(fs->vm);
	if (!cfg)
		return -ENOENT;
	size_t cap = 16384;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	size_t l = 0;
	if (!strcmp(name, "meminfo")) {
		unsigned long long kb = (unsigned long long)(cfg->mem_size / 1024);
		int n = snprintf(b, cap,
				 "MemTotal:       %llu kB\nMemFree:        %llu kB\n"
				 "MemAvailable:   %llu kB\nBuffers:               0 kB\n"
				 "Cached:                0 kB\nSwapTotal:             0 kB\n"
				 "SwapFree:              0 kB\n",
				 kb, kb / 2, kb / 2);
		l = n > 0 ? (size_t)n : 0;
	} else if (!strcmp(name, "cpuinfo")) {
		unsigned cpus = cfg->cpus ? cfg->cpus : 1;
		for (unsigned i = 0; i < cpus && i < 256; i++) {
			int n = snprintf(b + l, cap - l,
					 "processor\t: %u\nvendor_id\t: GenuineIntel\n"
					 "model name\t: nubis virtual CPU\ncpu cores\t: %u\n"
					 "flags\t\t: fpu sse sse2\n\n",
					 i, cpus);
			if (n < 0 || (size_t)n >= cap - l)
				break;
			l += (size_t)n;
		}
	} else {
		free(b);
		return -ENOENT;
	}
	*data = b;
	*len = l;
	return 0;
}

/* ---------------------------------------------------------- life cycle */

/* The /proc hooks of the vfs (again when fs->exe changes, before the guest runs). */
static void set_proc_ops(struct svc_fs *fs)
{
	struct vfs_proc_ops ops = {
	    .ctx = fs,
	    .fd_link = proc_fd_link,
	    .fd_list = proc_fd_list,
	    .self_file = proc_self_file,
	    .proc_file = proc_file,
	    .cwd = proc_cwd,
	    .exe = fs->exe,
	};
	vfs_set_proc_ops(fs->vfs, &ops);
}

static void stdio_release(struct svc_file *f)
{
	free(f->priv);
	f->priv = NULL;
}

/* Guest fd @gfd over host fd @hfd: a new open file description (reopened
 * through /proc/self/fd, so O_NONBLOCK does not leak into the caller's
 * terminal or pipe) where possible, else a dup used with poll first. */
static int stdio_install(struct svc_vm *vm, int hfd, int gfd)
{
	struct stat st;
	if (hfd < 0 || fstat(hfd, &st) < 0)
		return 0; /* left closed */
	int fl = fcntl(hfd, F_GETFL);
	if (fl < 0)
		return -errno;
	int acc = fl & O_ACCMODE;
	struct svc_stdio *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	int nfd = -1;
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", hfd);
		nfd = open(p, acc | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	}
	if (nfd < 0) {
		nfd = fcntl(hfd, F_DUPFD_CLOEXEC, 3);
		if (nfd < 0) {
			free(sp);
			return -errno;
		}
		sp->host_blocking =
		    !(fl & O_NONBLOCK) && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
		sp->sock = S_ISSOCK(st.st_mode);
	}
	struct svc_file *f = svc_file_new(SVC_F_STDIO, nfd, acc, fl & O_APPEND);
	if (!f) {
		free(sp);
		return -ENOMEM;
	}
	f->priv = sp;
	f->release = stdio_release;
	int r = svc_fdtab_replace(vm, f, gfd, false);
	return r < 0 ? r : 0;
}

int svc_fs_init(struct svc_vm *vm, const struct svc_config *cfg, struct nb_error *err)
{
	struct svc_fs *fs = calloc(1, sizeof(*fs));
	struct vfs_volume *vols = NULL;
	if (!fs)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	pthread_mutex_init(&fs->lock, NULL);
	fs->vm = vm;
	fs->umask = 022;
	svc_vm_set_fs(vm, fs);
	if (cfg->nvolumes) {
		vols = calloc(cfg->nvolumes, sizeof(*vols));
		if (!vols) {
			nb_error_set(err, NB_ERESOURCE, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < cfg->nvolumes; i++)
			vols[i] =
			    (struct vfs_volume){cfg->volumes[i].host_dir, cfg->volumes[i].guest_dir,
						cfg->volumes[i].readonly};
	}
	struct vfs_config vc = {
	    .lower_dirs = cfg->lower_dirs,
	    .nlower = cfg->nlower,
	    .upper_dir = cfg->upper_dir,
	    .quota = cfg->disk_quota,
	    .volumes = vols,
	    .nvolumes = cfg->nvolumes,
	};
	if (vfs_create(&vc, &fs->vfs, err) < 0)
		goto fail;
	free(vols);
	vols = NULL;
	unsigned maxfds = cfg->max_fds ? cfg->max_fds : SVC_MAX_FDS_DEFAULT;
	/* Each guest fd is one host fd: make room (soft limit up to the hard one). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)maxfds + 256 &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct svc_fdtab *tab = svc_fdtab_create(maxfds);
	if (!tab) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	svc_vm_set_fdtab(vm, tab);
	if (cfg->argv && cfg->argv[0] && !(fs->exe = strdup(cfg->argv[0]))) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	set_proc_ops(fs);
	const char *wd = cfg->workdir && cfg->workdir[0] ? cfg->workdir : "/";
	if (wd[0] != '/') {
		nb_error_set(err, NB_EINVAL, "working directory %s: not an absolute path", wd);
		goto fail;
	}
	int r = vfs_realdir(fs->vfs, wd, fs->cwd);
	if (r < 0) {
		nb_error_sys(err, -r, "working directory %s in the root filesystem", wd);
		goto fail;
	}
	for (int i = 0; i < 3; i++) {
		r = stdio_install(vm, cfg->stdio[i], i);
		if (r < 0) {
			nb_error_sys(err, -r, "standard stream %d (host fd %d)", i, cfg->stdio[i]);
			goto fail;
		}
	}
	return 0;
fail:
	free(vols);
	svc_fs_fini(vm);
	return -1;
}

void svc_fs_fini(struct svc_vm *vm)
{
	struct svc_fs *fs = svc_vm_fs(vm);
	struct svc_fdtab *tab = svc_vm_fdtab(vm);
	if (tab) {
		svc_vm_set_fdtab(vm, NULL);
		svc_fdtab_destroy(tab);
	}
	if (!fs)
		return;
	svc_vm_set_fs(vm, NULL);
	vfs_destroy(fs->vfs);
	free(fs->exe);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

/* The program opened for execution is what /proc/self/exe names (core
 * resolves a bare argv[0] through PATH, so argv[0] may not be a path). */
static void remember_exe(struct svc_fs *fs, const char *abs)
{
	char *e = strdup(abs);
	if (!e)
		return;
	free(fs->exe);
	fs->exe = e;
	set_proc_ops(fs);
}

int svc_fs_open_exec(struct svc_vm *vm, const char *path)
{
	struct svc_fs *fs = svc_vm_fs(vm);
	if (!fs || !path || !path[0])
		return -ENOENT;
	char abs[VFS_PATH_MAX];
	int n;
	if (path[0] == '/') {
		n = snprintf(abs, sizeof(abs), "%s", path);
	} else {
		pthread_mutex_lock(&fs->lock);
		n = snprintf(abs, sizeof(abs), "%s/%s", fs->cwd, path);
		pthread_mutex_unlock(&fs->lock);
	}
	if (n < 0 || (size_t)n >= sizeof(abs))
		return -ENAMETOOLONG;
	int fd = vfs_open_exec(fs->vfs, abs);
	if (fd >= 0)
		remember_exe(fs, abs);
	return fd;
}

int svc_fs_sock_path(struct svc_vm *vm, const char *path, bool create, int *dirfd, char *name,
		     size_t cap)
{
	struct svc_fs *fs = svc_vm_fs(vm);
	char abs[VFS_PATH_MAX];
	if (!fs || !path || !path[0])
		return -ENOENT;
	if (path[0] == '/') {
		if (strlen(path) >= sizeof(abs))
			return -ENAMETOOLONG;
		memcpy(abs, path, strlen(path) + 1);
	} else {
		pthread_mutex_lock(&fs->lock);
		int n = snprintf(abs, sizeof(abs), "%s/%s", fs->cwd, path);
		pthread_mutex_unlock(&fs->lock);
		if (n < 0 || (size_t)n >= sizeof(abs))
			return -ENAMETOOLONG;
	}
	return vfs_sock_path(fs->vfs, abs, create, dirfd, name, cap);
}
