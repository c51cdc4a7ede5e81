/* SPDX-License-Identifier: MIT */
/*
 * Internals of the file-system part of service VMs, shared by fdtab.c,
 * fs.c and io.c (not by core or net, which use svc.h only).
 */
#ifndef NUBIS_SVC_FS_H
#define NUBIS_SVC_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "svc.h"
#include "vfs.h"

/* Per-VM state of the file-system part (svc_vm_fs()). */
struct svc_fs {
	struct vfs *vfs;
	pthread_mutex_t lock; /* cwd, umask */
	char cwd[VFS_PATH_MAX];
	mode_t umask;
	char *exe; /* guest path of the program (/proc/self/exe) */
	struct svc_vm *vm;
};

/* svc_file.priv of SVC_F_FILE / SVC_F_DIR files. */
struct svc_fsfile {
	struct vfs_file *vf;
	struct vfs *vfs;
	pthread_mutex_t lock; /* dpos and the listing */
	uint64_t dpos;	      /* directory position (getdents64 cookie) */
};

/* The vfs file of an SVC_F_FILE / SVC_F_DIR file, else NULL. */
static inline struct vfs_file *svc_fsfile_vf(const struct svc_file *f)
{
	if (f->kind != SVC_F_FILE && f->kind != SVC_F_DIR)
		return NULL;
	const struct svc_fsfile *ff = f->priv;
	return ff ? ff->vf : NULL;
}

/* svc_file.priv of SVC_F_STDIO files. */
struct svc_stdio {
	bool host_blocking; /* host fd shares the caller's description: not O_NONBLOCK */
	bool sock;	    /* a socket: use MSG_DONTWAIT */
};

/* ---- fdtab.c ---- */

/* An empty table of at most @max descriptors. NULL on ENOMEM. */
struct svc_fdtab *svc_fdtab_create(unsigned max);
/* Drop every file (reference) and free. NULL is a no-op. */
void svc_fdtab_destroy(struct svc_fdtab *t);
/* Close guest @fd: 0 or -EBADF. */
int svc_fdtab_close(struct svc_vm *vm, int fd);
/* Close [lo, hi] (or mark close-on-exec with CLOSE_RANGE_CLOEXEC). */
int svc_fdtab_close_range(struct svc_vm *vm, unsigned lo, unsigned hi, unsigned flags);
/* dup2/dup3: put @f (reference taken over) at @newfd, closing what was
 * there. Returns @newfd, -EBADF (newfd out of range; reference dropped). */
int svc_fdtab_replace(struct svc_vm *vm, struct svc_file *f, int newfd, bool cloexec);
/* Close-on-exec flag of @fd: 0/1, or -EBADF; set with @set >= 0. */
int svc_fdtab_cloexec(struct svc_vm *vm, int fd, int set);
/* Open fds ascending into @fds (at most @max); returns how many. */
size_t svc_fdtab_list(struct svc_vm *vm, int *fds, size_t max);
/* The table's cap (max_fds). */
unsigned svc_fdtab_max(struct svc_vm *vm);

/* ---- fs.c ---- */

/* Absolute guest path for (@dirfd, guest string at @gva) into @out
 * (VFS_PATH_MAX). With AT_EMPTY_PATH in @flags an empty string returns 1
 * (operate on @dirfd itself); otherwise 0 or -errno. */
int svc_fs_path(struct svc_thread *t, int dirfd, uint64_t gva, int flags, char *out);

/* lseek of a directory (SVC_F_DIR): SEEK_SET/SEEK_CUR to a getdents64
 * cookie; the new position or -EINVAL. */
long svc_fs_dir_seek(struct svc_file *f, int64_t off, int whence);

/* ---- io.c ---- */

svc_sys_fn svc_io_handler(unsigned nr);
/* Read/write @f for the guest (blocking through svc_wait_fds unless the
 * file is O_NONBLOCK); @off < 0: at the file position. */
long svc_io_read(struct svc_thread *t, struct svc_file *f, void *buf, size_t len, int64_t off);
long svc_io_write(struct svc_thread *t, struct svc_file *f, const void *buf, size_t len,
		  int64_t off);

#endif
