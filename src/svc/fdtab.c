/* SPDX-License-Identifier: MIT */
/*
 * The per-VM file-descriptor table: guest fd -> struct svc_file (shared by
 * dup'ed descriptors, reference-counted) plus the close-on-exec flag.
 * One mutex guards the table; files are used outside it by reference.
 */
#include <errno.h>
#include <linux/close_range.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

struct svc_fdtab {
	pthread_mutex_t lock;
	unsigned max;  /* cap: fds are < max */
	unsigned size; /* slots allocated */
	struct svc_file **f;
	uint8_t *cloexec;
};

struct svc_file *svc_file_new(enum svc_file_kind kind, int host_fd, int accmode, int status_flags)
{
	struct svc_file *f = calloc(1, sizeof(*f));
	if (!f) {
		if (host_fd >= 0)
			close(host_fd);
		return NULL;
	}
	f->kind = kind;
	f->host_fd = host_fd;
	f->accmode = accmode;
	f->status_flags = status_flags;
	atomic_store((_Atomic unsigned *)&f->refs, 1);
	return f;
}

void svc_file_get(struct svc_file *f)
{
	atomic_fetch_add((_Atomic unsigned *)&f->refs, 1);
}

void svc_file_put(struct svc_file *f)
{
	if (!f || atomic_fetch_sub((_Atomic unsigned *)&f->refs, 1) != 1)
		return;
	if (f->release)
		f->release(f);
	if (f->host_fd >= 0)
		close(f->host_fd);
	free(f->path);
	free(f);
}

struct svc_fdtab *svc_fdtab_create(unsigned max)
{
	struct svc_fdtab *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->max = max ? max : SVC_MAX_FDS_DEFAULT;
	return t;
}

void svc_fdtab_destroy(struct svc_fdtab *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->size; i++)
		svc_file_put(t->f[i]);
	free(t->f);
	free(t->cloexec);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Make slots [0, n) exist (n <= max). Lock held. */
static int grow(struct svc_fdtab *t, unsigned n)
{
	if (n <= t->size)
		return 0;
	unsigned ns = t->size ? t->size : 16;
	while (ns < n)
		ns *= 2;
	if (ns > t->max)
		ns = t->max;
	struct svc_file **nf = realloc(t->f, ns * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	t->f = nf;
	uint8_t *nc = realloc(t->cloexec, ns);
	if (!nc)
		return -ENOMEM;
	t->cloexec = nc;
	memset(t->f + t->size, 0, (ns - t->size) * sizeof(*nf));
	memset(t->cloexec + t->size, 0, ns - t->size);
	t->size = ns;
	return 0;
}

int svc_fd_install(struct svc_vm *vm, struct svc_file *f, int min, bool cloexec)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	int fd = -EMFILE;
	if (min < 0)
		min = 0;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = (unsigned)min; i < t->max; i++) {
		if (i < t->size && t->f[i])
			continue;
		if (grow(t, i + 1) < 0) {
			fd = -ENOMEM;
			break;
		}
		t->f[i] = f;
		t->cloexec[i] = cloexec;
		fd = (int)i;
		break;
	}
	pthread_mutex_unlock(&t->lock);
	if (fd < 0)
		svc_file_put(f);
	return fd;
}

struct svc_file *svc_fd_get(struct svc_vm *vm, long fd)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	struct svc_file *f = NULL;
	if (!t || fd < 0)
		return NULL;
	pthread_mutex_lock(&t->lock);
	if ((unsigned long)fd < t->size && (f = t->f[fd]))
		svc_file_get(f);
	pthread_mutex_unlock(&t->lock);
	return f;
}

int svc_fdtab_close(struct svc_vm *vm, int fd)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	struct svc_file *f = NULL;
	if (fd < 0)
		return -EBADF;
	pthread_mutex_lock(&t->lock);
	if ((unsigned)fd < t->size) {
		f = t->f[fd];
		t->f[fd] = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (!f)
		return -EBADF;
	svc_file_put(f);
	return 0;
}

int svc_fdtab_close_range(struct svc_vm *vm, unsigned lo, unsigned hi, unsigned flags)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	if (lo > hi || (flags & ~(unsigned)(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)))
		return -EINVAL;
	for (;;) {
		struct svc_file *f = NULL;
		pthread_mutex_lock(&t->lock);
		for (unsigned i = lo; i < t->size && i <= hi; i++) {
			if (!t->f[i])
				continue;
			if (flags & CLOSE_RANGE_CLOEXEC) {
				t->cloexec[i] = 1;
				continue;
			}
			f = t->f[i];
			t->f[i] = NULL;
			lo = i + 1;
			break;
		}
		pthread_mutex_unlock(&t->lock);
		if (!f)
			return 0;
		svc_file_put(f); /* outside the lock: release may block briefly */
		if (lo == 0)
			return 0; /* wrapped past UINT_MAX */
	}
}

int svc_fdtab_replace(struct svc_vm *vm, struct svc_file *f, int newfd, bool cloexec)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	if (newfd < 0 || (unsigned)newfd >= t->max) {
		svc_file_put(f);
		return -EBADF;
	}
	pthread_mutex_lock(&t->lock);
	int err = grow(t, (unsigned)newfd + 1);
	struct svc_file *old = NULL;
	if (!err) {
		old = t->f[newfd];
		t->f[newfd] = f;
		t->cloexec[newfd] = cloexec;
	}
	pthread_mutex_unlock(&t->lock);
	if (err) {
		svc_file_put(f);
		return err;
	}
	svc_file_put(old);
	return newfd;
}

int svc_fdtab_cloexec(struct svc_vm *vm, int fd, int set)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	int r = -EBADF;
	if (fd < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	if ((unsigned)fd < t->size && t->f[fd]) {
		if (set >= 0)
			t->cloexec[fd] = set != 0;
		r = t->cloexec[fd];
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

size_t svc_fdtab_list(struct svc_vm *vm, int *fds, size_t max)
{
	struct svc_fdtab *t = svc_vm_fdtab(vm);
	size_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->size && n < max; i++)
		if (t->f[i])
			fds[n++] = (int)i;
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned svc_fdtab_max(struct svc_vm *vm)
{
	return svc_vm_fdtab(vm)->max;
}
