/* SPDX-License-Identifier: MIT */
/*
 * The union root filesystem of a service VM, served in user space by the
 * monitor (no kernel overlay mount, no KVM): read-only lower layers (OCI
 * image layers, top first, which may hold OCI whiteouts ".wh.NAME" and
 * opaque markers ".wh..wh..opq"), one writable upper layer (same on-disk
 * conventions, so it can become a layer), and volumes (host directories
 * mounted at guest paths, read-only or read-write). A synthetic /dev
 * (null, zero, full, random, urandom, stdin/stdout/stderr/fd links) and a
 * minimal /proc are provided by the vfs itself.
 *
 * Confinement: every guest path is resolved here, one component at a time,
 * from the root directory fd of a layer or volume, each step an
 * openat(parent, name, O_PATH|O_NOFOLLOW). Symbolic links are read and
 * resolved by this code inside the guest's namespace ("/" is the VM root,
 * ".." stops at it, 40 links -> ELOOP). No host path derived from a guest
 * path is ever handed to the kernel, so no guest path, symlink or race can
 * name a host file outside the layers and volumes. Final operations act on
 * (parent fd, name) pairs with *at() calls that never follow symlinks.
 *
 * Guest names beginning with ".wh." can be neither seen nor created.
 *
 * All paths given to this API are absolute guest paths (the caller joins
 * relative paths with the cwd or a directory fd's path); components are
 * limited to NAME_MAX bytes and the whole path to VFS_PATH_MAX - 1.
 *
 * Thread safety: every function may be called from several threads at once
 * for one struct vfs (the quota counter has its own lock). Concurrent
 * changes to the same names by the guest give some interleaving of the
 * operations, never an access outside the root.
 *
 * Errors: 0 or a negative errno, as the guest should see it.
 */
#ifndef NUBIS_SVC_VFS_H
#define NUBIS_SVC_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>

#include "../common/error.h"

#define VFS_MAX_LAYERS 128 /* lower layers + upper */
#define VFS_PATH_MAX   4096
#define VFS_MAX_LINKS  40
/* With a quota, the writable layer may hold at most quota / VFS_ENTRY_BYTES
 * names (at least 1024): files, directories, links, whiteouts. */
#define VFS_ENTRY_BYTES 512

struct vfs_volume {
	const char *host_dir;  /* host directory */
	const char *guest_dir; /* absolute guest path */
	bool readonly;
};

struct vfs_config {
	const char *const *lower_dirs; /* top first */
	size_t nlower;
	const char *upper_dir; /* created if missing; NULL: read-only root */
	uint64_t quota;	       /* bytes the upper layer may hold; 0 = no limit */
	const struct vfs_volume *volumes;
	size_t nvolumes;
};

struct vfs;

/* Open the layers and volumes of @cfg (not kept), create the upper directory
 * (mode 0700) and volume mount points in it, and compute the upper layer's
 * usage. Returns 0, or -1 with @err naming the directory at fault. */
int vfs_create(const struct vfs_config *cfg, struct vfs **out, struct nb_error *err);
/* Close everything. NULL is a no-op. */
void vfs_destroy(struct vfs *v);

/* ---- open files ---- */

enum vfs_file_type {
	VFS_FT_REG,   /* regular file of a layer or volume */
	VFS_FT_DIR,   /* directory (merged across layers) */
	VFS_FT_DEV,   /* one of the synthetic /dev character devices */
	VFS_FT_SYNTH, /* generated read-only content (/proc files), a memfd */
	VFS_FT_PATH,  /* O_PATH descriptor */
};

/* What vfs_open() returns besides the host fd; owned by the open file
 * (svc_file.priv in fs.c), freed with vfs_file_destroy(). */
struct vfs_file {
	enum vfs_file_type type;
	bool upper;		/* lives in the upper layer: writes count against the quota */
	char *path;		/* canonical guest path */
	unsigned mnt;		/* mount index (union 0, volumes 1..) */
	struct vfs_dents *ents; /* VFS_FT_DIR: merged listing, built on first read */
	int synth;		/* internal: which synthetic directory (/dev, /proc), or 0 */
	bool tmpfile;		/* O_TMPFILE: unnamed; its blocks leave the quota at close */
};

/* Open @path like openat(2) with @flags (O_CREAT, O_EXCL, O_TRUNC,
 * O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_SYNC, O_DSYNC, access mode),
 * creating with @mode (already masked by the umask). Copies a lower file up
 * first when opened for writing. Returns a host fd (O_CLOEXEC|O_NONBLOCK,
 * owned by the caller) and *@out, or -errno: ENOENT, EEXIST, EISDIR,
 * ENOTDIR, ELOOP, EACCES (device node, FIFO), ENXIO (socket), EROFS,
 * ENOSPC, EINVAL (".wh." name), ENAMETOOLONG. */
int vfs_open(struct vfs *v, const char *path, int flags, mode_t mode, struct vfs_file **out);
void vfs_file_destroy(struct vfs_file *f);
/* O_TMPFILE in directory @dir: an unnamed regular file (@flags: access
 * mode, O_APPEND, O_SYNC...) in the directory's writable layer or volume.
 * Returns the host fd and *@out like vfs_open(), or -errno (ENOTDIR,
 * EROFS, EINVAL for O_RDONLY, EOPNOTSUPP where the host cannot). */
int vfs_open_tmpfile(struct vfs *v, const char *dir, int flags, mode_t mode, struct vfs_file **out);
/* Before the last close of host fd @fd of @f: an O_TMPFILE file gives its
 * blocks back to the quota. */
void vfs_file_closing(struct vfs *v, struct vfs_file *f, int fd);

/* Fill @buf (@len bytes) with struct linux_dirent64 records of directory
 * @f from position *@pos (0 = start; d_off cookies are stable for the life
 * of the listing, which is rebuilt when *@pos is 0). Returns the bytes
 * written (0 at the end), -EINVAL if one record does not fit, or -errno. */
long vfs_getdents(struct vfs *v, struct vfs_file *f, uint64_t *pos, void *buf, size_t len);
/* Validate a directory seek to @pos: 0 or -EINVAL. */
int vfs_dir_seek(struct vfs_file *f, uint64_t pos);

/* ---- path operations (AT_SYMLINK_NOFOLLOW in @flags where noted) ---- */

int vfs_stat(struct vfs *v, const char *path, int flags, struct stat *st);
int vfs_statx(struct vfs *v, const char *path, int flags, unsigned mask, void *statx_buf);
/* faccessat2: @mode F_OK/R_OK/W_OK/X_OK for uid 0 (EROFS on a read-only
 * mount, X_OK needs an x bit); @flags AT_SYMLINK_NOFOLLOW. */
int vfs_access(struct vfs *v, const char *path, int mode, int flags);
int vfs_mkdir(struct vfs *v, const char *path, mode_t mode);
int vfs_rmdir(struct vfs *v, const char *path);
int vfs_unlink(struct vfs *v, const char *path);
/* renameat2 with @flags RENAME_NOREPLACE / RENAME_EXCHANGE. Directories
 * that exist in a lower layer cannot be renamed (EXDEV, as overlayfs). */
int vfs_rename(struct vfs *v, const char *from, const char *to, unsigned flags);
/* linkat: @flags AT_SYMLINK_FOLLOW. */
int vfs_link(struct vfs *v, const char *from, const char *to, int flags);
int vfs_symlink(struct vfs *v, const char *target, const char *path);
/* The link text (not NUL-terminated) or -EINVAL if not a symlink. */
long vfs_readlink(struct vfs *v, const char *path, char *buf, size_t len);
int vfs_chmod(struct vfs *v, const char *path, mode_t mode, int flags);
/* chown family: checks existence and writability; owners are not stored. */
int vfs_chown(struct vfs *v, const char *path, int flags);
/* utimensat: @ts may be NULL (now); UTIME_NOW / UTIME_OMIT honoured. */
int vfs_utimens(struct vfs *v, const char *path, const struct timespec *ts, int flags);
int vfs_truncate(struct vfs *v, const char *path, uint64_t len);
/* Resolve directory @path (following links) into its canonical guest path
 * in @out (VFS_PATH_MAX bytes). -ENOTDIR if it is not a directory. */
int vfs_realdir(struct vfs *v, const char *path, char *out);
int vfs_statfs(struct vfs *v, const char *path, struct statfs *st);
void vfs_statfs_fd(struct vfs *v, const struct vfs_file *f, struct statfs *st);
/* sync(2)/syncfs(2): flush the upper layer's and writable volumes' file systems. */
int vfs_sync(struct vfs *v);
/* Open @path for execution (following links): a host O_RDONLY|O_CLOEXEC fd
 * of a regular file, or -errno (EACCES if not regular or no x bit). */
int vfs_open_exec(struct vfs *v, const char *path);

/* AF_UNIX socket path @path: *@dirfd (O_PATH, the caller closes) is the host
 * directory holding the last component, copied up for @create (bind: the
 * name must not exist, -EADDRINUSE); for !@create (connect) the name must be
 * a socket (-ECONNREFUSED). @name receives the last component. 0 or -errno. */
int vfs_sock_path(struct vfs *v, const char *path, bool create, int *dirfd, char *name, size_t cap);

/* ---- quota (writes to files of the upper layer) ---- */

/* Whether writes to @f must go through vfs_quota_begin/end. */
bool vfs_quota_applies(const struct vfs *v, const struct vfs_file *f);
/* Before growing host file @fd by writing [off, off + *len): takes the
 * quota lock and shortens *len to what fits. Returns 0 (lock held, *len > 0
 * or the request was 0), or -ENOSPC / -errno (lock not held). Always pair a
 * 0 return with vfs_quota_end(), which accounts the change in the file's
 * allocation and releases the lock. */
int vfs_quota_begin(struct vfs *v, int fd, uint64_t off, uint64_t *len, uint64_t *token);
void vfs_quota_end(struct vfs *v, int fd, uint64_t token);
/* Bytes the upper layer holds by this vfs's count. */
uint64_t vfs_quota_used(struct vfs *v);

/* ---- synthetic /proc hooks (set by fs.c; may stay NULL) ---- */

struct vfs_proc_ops {
	void *ctx;
	/* Link text of /proc/self/fd/N into @buf (@len), length or -EBADF. */
	long (*fd_link)(void *ctx, int fd, char *buf, size_t len);
	/* Open guest fds, ascending, into @fds (@max); returns the count. */
	size_t (*fd_list)(void *ctx, int *fds, size_t max);
	/* Content of /proc/self/NAME (stat, status, cmdline, ...) into a
	 * malloc'd buffer; 0 or -ENOENT. */
	int (*self_file)(void *ctx, const char *name, char **data, size_t *len);
	/* Content of /proc/NAME (cpuinfo, meminfo, ...) the same way, or
	 * -ENOENT to get the vfs's generic one. May be NULL. */
	int (*proc_file)(void *ctx, const char *name, char **data, size_t *len);
	/* Link text of /proc/self/cwd into @buf (@len): length. May be NULL. */
	long (*cwd)(void *ctx, char *buf, size_t len);
	/* Guest path of the running program (/proc/self/exe). */
	const char *exe;
};
void vfs_set_proc_ops(struct vfs *v, const struct vfs_proc_ops *ops);

#endif
