/* SPDX-License-Identifier: MIT */
/*
 * Service-VM system calls: the dispatcher (core, then fs, then net), guest
 * memory access, the memory map, and process, time, random and misc calls.
 */
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "svc_int.h"
#include "vdso.h"

#define PAGE_UP(x) (((x) + SVC_PAGE - 1) & ~(SVC_PAGE - 1))

/* ---------------------------------------------------------- guest memory */

void *svc_uptr(struct svc_thread *t, uint64_t gva, uint64_t len)
{
	if (gva < UVM_USER_BASE)
		return NULL;
	return gmem_ptr(t->vm->mem, gva, len);
}

int svc_copy_in(struct svc_thread *t, void *dst, uint64_t gva, uint64_t len)
{
	const void *s = svc_uptr(t, gva, len);
	if (!s)
		return -EFAULT;
	memcpy(dst, s, len);
	return 0;
}

int svc_copy_out(struct svc_thread *t, uint64_t gva, const void *src, uint64_t len)
{
	void *d = svc_uptr(t, gva, len);
	if (!d)
		return -EFAULT;
	memcpy(d, src, len);
	return 0;
}

int svc_copy_str(struct svc_thread *t, uint64_t gva, char *buf, size_t cap)
{
	if (gva < UVM_USER_BASE || cap == 0)
		return -EFAULT;
	long n = gmem_strnlen(t->vm->mem, gva, cap - 1);
	if (n < 0)
		return (int)n;
	memcpy(buf, gmem_ptr(t->vm->mem, gva, (uint64_t)n), (size_t)n);
	buf[n] = 0;
	return 0;
}

/* ------------------------------------------------------------ memory map */

int svc_mm_init(struct svc_vm *vm)
{
	vm->vmas = malloc(SVC_MAX_VMAS * sizeof(*vm->vmas));
	vm->fmaps = malloc(SVC_MAX_FMAPS * sizeof(*vm->fmaps));
	if (!vm->vmas || !vm->fmaps) {
		svc_mm_fini(vm);
		return -ENOMEM;
	}
	vm->nfmaps = 0;
	vm->brk_cur = vm->prog->brk_start;
	return 0;
}

void svc_mm_fini(struct svc_vm *vm)
{
	/* the host mappings went with guest memory; the fds are ours */
	for (unsigned i = 0; vm->fmaps && i < vm->nfmaps; i++)
		close(vm->fmaps[i].fd);
	vm->nfmaps = 0;
	free(vm->fmaps);
	vm->fmaps = NULL;
	free(vm->vmas);
	vm->vmas = NULL;
}

static uint64_t mmap_top(struct svc_vm *vm)
{
	return vm->prog->mmap_top;
}

/* Give pages back: the next touch sees zeros. */
static void zero_range(struct svc_vm *vm, uint64_t a, uint64_t len)
{
	uint64_t ext = vm->prog->img_extent;
	if (a < ext) {
		uint64_t n = (a + len < ext ? a + len : ext) - a;
		void *h = gmem_ptr(vm->mem, a, n);
		if (h)
			memset(h, 0, n);
		len -= n;
		a += n;
	}
	if (len) {
		void *h = gmem_ptr(vm->mem, a, len);
		if (h)
			madvise(h, len, MADV_DONTNEED);
	}
}

static int vma_overlaps(const struct svc_vm *vm, uint64_t a, uint64_t e)
{
	return vmas_overlaps(vm->vmas, vm->nvmas, a, e);
}

static int vma_covers(const struct svc_vm *vm, uint64_t a, uint64_t e)
{
	return vmas_covers(vm->vmas, vm->nvmas, a, e);
}

static int vma_remove(struct svc_vm *vm, uint64_t a, uint64_t e)
{
	return vmas_remove(vm->vmas, &vm->nvmas, SVC_MAX_VMAS, a, e);
}

static int vma_insert(struct svc_vm *vm, uint64_t a, uint64_t e)
{
	return vmas_insert(vm->vmas, &vm->nvmas, SVC_MAX_VMAS, a, e);
}

static uint64_t vma_find(const struct svc_vm *vm, uint64_t len)
{
	uint64_t lo = PAGE_UP(vm->brk_cur), hi = mmap_top((struct svc_vm *)(uintptr_t)vm);
	for (unsigned i = vm->nvmas + 1; i-- > 0;) {
		uint64_t gap_lo = i == 0 ? lo : vm->vmas[i - 1].end;
		uint64_t gap_hi = i == vm->nvmas ? hi : vm->vmas[i].start;
		if (gap_lo < lo)
			gap_lo = lo;
		if (gap_hi > hi)
			gap_hi = hi;
		if (gap_hi > gap_lo && gap_hi - gap_lo >= len)
			return gap_hi - len;
	}
	return 0;
}

/* ---- file mappings (MAP_SHARED of a file) ----
 *
 * Guest memory is one anonymous host mapping registered as a KVM memory
 * slot; KVM follows changes of the host mapping (MMU notifiers). A shared
 * file mapping of the guest is the host file mmap()ed with MAP_FIXED over
 * its guest range, so guest stores reach the file's pages directly and two
 * guest mappings of one file (or the guest and a host process) share them.
 * munmap, MAP_FIXED over it and truncation of the file put anonymous
 * memory back. Only whole pages inside the file are mapped: the rest of the
 * range stays anonymous (zeros), so no access past EOF can raise SIGBUS in
 * the monitor or fail in KVM, and mappings never grow the file (the disk
 * quota sees only write/ftruncate/fallocate growth). */

/* Anonymous memory over guest [a, e) (zeros). */
static int anon_back(struct svc_vm *vm, uint64_t a, uint64_t e)
{
	void *h = gmem_ptr(vm->mem, a, e - a);
	if (!h)
		return -EFAULT;
	if (mmap(h, e - a, PROT_READ | PROT_WRITE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
		int e2 = errno;
		nb_log(NB_LOG_ERROR, "svc: restoring anonymous guest memory at %#llx: %s",
		       (unsigned long long)a, strerror(e2));
		return -e2;
	}
	return 0;
}

static bool fmap_overlaps(const struct svc_vm *vm, uint64_t a, uint64_t e)
{
	for (unsigned i = 0; i < vm->nfmaps; i++)
		if (vm->fmaps[i].start < e && a < vm->fmaps[i].end)
			return true;
	return false;
}

/* End the file mappings in guest [a, e): anonymous memory there. -ENOMEM
 * (nothing changed) if splitting one would exceed SVC_MAX_FMAPS. */
static int fmap_unmap(struct svc_vm *vm, uint64_t a, uint64_t e)
{
	for (unsigned i = 0; i < vm->nfmaps; i++)
		if (vm->fmaps[i].start < a && e < vm->fmaps[i].end && vm->nfmaps == SVC_MAX_FMAPS)
			return -ENOMEM;
	for (unsigned i = 0; i < vm->nfmaps; i++) {
		struct svc_fmap *m = &vm->fmaps[i];
		uint64_t lo = m->start > a ? m->start : a, hi = m->end < e ? m->end : e;
		if (lo >= hi)
			continue;
		anon_back(vm, lo, hi);
		if (lo == m->start && hi == m->end) {
			close(m->fd);
			memmove(m, m + 1, (vm->nfmaps - i - 1) * sizeof(*m));
			vm->nfmaps--;
			i--;
		} else if (lo == m->start) {
			m->off += hi - m->start;
			m->start = hi;
		} else if (hi == m->end) {
			m->end = lo;
		} else {
			int fd2 = fcntl(m->fd, F_DUPFD_CLOEXEC, 3);
			if (fd2 < 0) { /* cannot keep the tail's record: end it too */
				anon_back(vm, hi, m->end);
				m->end = lo;
				continue;
			}
			memmove(m + 2, m + 1, (vm->nfmaps - i - 1) * sizeof(*m));
			m[1] = (struct svc_fmap){hi, m->end, m->off + (hi - m->start), fd2};
			m->end = lo;
			vm->nfmaps++;
			i++;
		}
	}
	return 0;
}

/* Map guest [addr, addr+len) onto the file of guest @fd at @off (MAP_SHARED;
 * @prot the guest's). The range is anonymous and recorded as a vma. */
static long fmap_map(struct svc_vm *vm, uint64_t addr, uint64_t len, int fd, uint64_t off, int prot)
{
	struct svc_file *f = svc_fd_get(vm, fd);
	if (!f)
		return -EBADF;
	long rc = 0;
	int dfd = -1;
	struct stat st;
	uint64_t n = 0, end;
	if (f->kind != SVC_F_FILE) {
		rc = -ENODEV;
		goto out;
	}
	if (f->accmode == O_WRONLY || ((prot & PROT_WRITE) && f->accmode != O_RDWR)) {
		rc = -EACCES;
		goto out;
	}
	if (off > (uint64_t)INT64_MAX || __builtin_add_overflow(off, len, &end) ||
	    end > (uint64_t)INT64_MAX) {
		rc = -EOVERFLOW;
		goto out;
	}
	if (addr < vm->prog->img_extent) {
		rc = -ENOMEM;
		goto out;
	}
	if (fstat(f->host_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = -ENODEV;
		goto out;
	}
	if ((uint64_t)st.st_size > off)
		n = PAGE_UP((uint64_t)st.st_size - off) < len ? PAGE_UP((uint64_t)st.st_size - off)
							      : len;
	if (!n)
		goto out; /* wholly past EOF: zeros (Linux: SIGBUS on access) */
	if (vm->nfmaps == SVC_MAX_FMAPS) {
		rc = -ENOMEM;
		goto out;
	}
	if ((dfd = fcntl(f->host_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		rc = -errno;
		goto out;
	}
	void *h = gmem_ptr(vm->mem, addr, n);
	/* a guest fd open read-only cannot write the file: a private host
	 * mapping shows the file's pages (and keeps stray stores to itself) */
	int hflags = f->accmode == O_RDWR ? MAP_SHARED : MAP_PRIVATE;
	if (!h || mmap(h, n, PROT_READ | PROT_WRITE, MAP_FIXED | hflags, f->host_fd, (off_t)off) ==
		      MAP_FAILED) {
		rc = h ? (errno == EACCES || errno == EPERM ? -EACCES : -ENODEV) : -ENOMEM;
		if (h)
			anon_back(vm, addr, addr + n);
		close(dfd);
		goto out;
	}
	unsigned i = 0;
	while (i < vm->nfmaps && vm->fmaps[i].start < addr)
		i++;
	memmove(&vm->fmaps[i + 1], &vm->fmaps[i], (vm->nfmaps - i) * sizeof(vm->fmaps[0]));
	vm->fmaps[i] = (struct svc_fmap){addr, addr + n, off, dfd};
	vm->nfmaps++;
out:
	svc_file_put(f);
	return rc;
}

void svc_mm_files_check(struct svc_vm *vm)
{
	pthread_mutex_lock(&vm->mm_lock);
	for (unsigned i = vm->nfmaps; i-- > 0;) {
		struct svc_fmap *m = &vm->fmaps[i];
		struct stat st;
		if (fstat(m->fd, &st) < 0)
			continue;
		uint64_t size = (uint64_t)st.st_size, keep = 0;
		if (size > m->off)
			keep = PAGE_UP(size - m->off);
		if (keep < m->end - m->start) /* only entry i changes (tail) */
			fmap_unmap(vm, m->start + keep, m->end);
	}
	pthread_mutex_unlock(&vm->mm_lock);
}

static long sys_msync(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	uint64_t addr = a[0], len = PAGE_UP(a[1]), e;
	int flags = (int)a[2];
	if ((addr & (SVC_PAGE - 1)) || (flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) ||
	    ((flags & MS_ASYNC) && (flags & MS_SYNC)))
		return -EINVAL;
	if (addr < UVM_USER_BASE || __builtin_add_overflow(addr, len, &e) || e > gmem_end(vm->mem))
		return -ENOMEM;
	long rc = 0;
	pthread_mutex_lock(&vm->mm_lock);
	for (unsigned i = 0; i < vm->nfmaps && !rc; i++) {
		uint64_t lo = vm->fmaps[i].start > addr ? vm->fmaps[i].start : addr;
		uint64_t hi = vm->fmaps[i].end < e ? vm->fmaps[i].end : e;
		void *h = lo < hi ? gmem_ptr(vm->mem, lo, hi - lo) : NULL;
		if (h && msync(h, hi - lo, (flags & MS_SYNC) ? MS_SYNC : MS_ASYNC) < 0)
			rc = -errno;
	}
	pthread_mutex_unlock(&vm->mm_lock);
	return rc;
}

static int range_ok(struct svc_vm *vm, uint64_t a, uint64_t len)
{
	uint64_t e;
	return !(a & (SVC_PAGE - 1)) && a >= UVM_USER_BASE && !__builtin_add_overflow(a, len, &e) &&
	       e <= mmap_top(vm);
}

static long munmap_locked(struct svc_vm *vm, uint64_t addr, uint64_t len)
{
	if ((addr & (SVC_PAGE - 1)) || !len)
		return -EINVAL;
	len = PAGE_UP(len);
	uint64_t e;
	if (__builtin_add_overflow(addr, len, &e))
		return -EINVAL;
	uint64_t lo = addr < UVM_USER_BASE ? UVM_USER_BASE : addr;
	uint64_t hi = e > mmap_top(vm) ? mmap_top(vm) : e;
	if (lo >= hi)
		return 0;
	int r = fmap_unmap(vm, lo, hi);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < vm->nvmas; i++) {
		uint64_t a = vm->vmas[i].start > lo ? vm->vmas[i].start : lo;
		uint64_t b = vm->vmas[i].end < hi ? vm->vmas[i].end : hi;
		if (a < b)
			zero_range(vm, a, b - a);
	}
	return vma_remove(vm, lo, hi);
}

/* Fill [addr, addr+len) from a file (MAP_PRIVATE file mappings are copies). */
static long map_file(struct svc_thread *t, uint64_t addr, uint64_t len, int fd, uint64_t off)
{
	struct svc_file *f = svc_fd_get(t->vm, fd);
	if (!f)
		return -EBADF;
	long rc = 0;
	if (f->kind != SVC_F_FILE) {
		rc = -ENODEV;
		goto out;
	}
	uint8_t *h = gmem_ptr(t->vm->mem, addr, len);
	uint64_t done = 0;
	while (h && done < len) {
		ssize_t r = pread(f->host_fd, h + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break; /* past the end: zeros (already) */
		done += (uint64_t)r;
	}
out:
	svc_file_put(f);
	return rc;
}

static long sys_mmap(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	uint64_t addr = a[0], len = a[1];
	int flags = (int)a[3], fd = (int)a[4];
	uint64_t off = a[5];
	if (!len || len > (1ull << 46))
		return -EINVAL;
	len = PAGE_UP(len);
	int type = flags & MAP_TYPE;
	if (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE)
		return -EINVAL;
	if (off & (SVC_PAGE - 1))
		return -EINVAL;
	bool fshared = !(flags & MAP_ANONYMOUS) && type != MAP_PRIVATE;
	if (!(flags & MAP_ANONYMOUS)) {
		struct svc_file *f = svc_fd_get(vm, fd);
		if (!f)
			return -EBADF;
		svc_file_put(f);
	}
	pthread_mutex_lock(&vm->mm_lock);
	long rc;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (!range_ok(vm, addr, len) || addr < PAGE_UP(vm->brk_cur)) {
			rc = (flags & MAP_FIXED) ? -ENOMEM : -EEXIST;
			goto out;
		}
		if (vma_overlaps(vm, addr, addr + len)) {
			if ((flags & MAP_FIXED_NOREPLACE) && !(flags & MAP_FIXED)) {
				rc = -EEXIST;
				goto out;
			}
			if ((rc = fmap_unmap(vm, addr, addr + len)) < 0)
				goto out;
			vma_remove(vm, addr, addr + len);
		}
		zero_range(vm, addr, len);
	} else if (!(addr && range_ok(vm, addr, len) && addr >= PAGE_UP(vm->brk_cur) &&
		     !vma_overlaps(vm, addr, addr + len))) {
		addr = vma_find(vm, len);
		if (!addr) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (vma_insert(vm, addr, addr + len) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = (long)addr;
	if (fshared) {
		long r = fmap_map(vm, addr, len, fd, off, (int)a[2]);
		if (r < 0) {
			munmap_locked(vm, addr, len);
			rc = r;
		}
	} else if (!(flags & MAP_ANONYMOUS)) {
		long r = map_file(t, addr, len, fd, off);
		if (r < 0) {
			munmap_locked(vm, addr, len);
			rc = r;
		}
	}
out:
	pthread_mutex_unlock(&vm->mm_lock);
	return rc;
}

static long sys_munmap(struct svc_thread *t, const uint64_t a[6])
{
	pthread_mutex_lock(&t->vm->mm_lock);
	long rc = munmap_locked(t->vm, a[0], a[1]);
	pthread_mutex_unlock(&t->vm->mm_lock);
	return rc;
}

static long mremap_locked(struct svc_vm *vm, uint64_t old, uint64_t osz, uint64_t nsz, int flags,
			  uint64_t naddr)
{
	if ((old & (SVC_PAGE - 1)) || !nsz ||
	    (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)))
		return -EINVAL;
	if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && !(flags & MREMAP_MAYMOVE))
		return -EINVAL;
	if (flags & MREMAP_DONTUNMAP)
		return -EINVAL;
	osz = PAGE_UP(osz);
	nsz = PAGE_UP(nsz);
	if (!osz || nsz > (1ull << 46) || !range_ok(vm, old, osz) ||
	    !vma_covers(vm, old, old + osz))
		return -EFAULT;
	/* a file mapping may shrink in place; it is not moved or grown */
	if (fmap_overlaps(vm, old, old + osz) && (nsz > osz || (flags & MREMAP_FIXED)))
		return -EINVAL;
	if (flags & MREMAP_FIXED) {
		if (!range_ok(vm, naddr, nsz) || naddr < PAGE_UP(vm->brk_cur) ||
		    (naddr < old + osz && old < naddr + nsz))
			return -EINVAL;
		munmap_locked(vm, naddr, nsz);
		memmove(gmem_ptr(vm->mem, naddr, nsz), gmem_ptr(vm->mem, old, osz),
			osz < nsz ? osz : nsz);
		munmap_locked(vm, old, osz);
		if (vma_insert(vm, naddr, naddr + nsz) < 0)
			return -ENOMEM;
		return (long)naddr;
	}
	if (nsz <= osz) {
		if (nsz < osz)
			munmap_locked(vm, old + nsz, osz - nsz);
		return (long)old;
	}
	uint64_t grow_end = old + nsz;
	if (grow_end <= mmap_top(vm) && !vma_overlaps(vm, old + osz, grow_end)) {
		if (vma_insert(vm, old + osz, grow_end) < 0)
			return -ENOMEM;
		return (long)old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	uint64_t n = vma_find(vm, nsz);
	if (!n)
		return -ENOMEM;
	if (vma_insert(vm, n, n + nsz) < 0)
		return -ENOMEM;
	memcpy(gmem_ptr(vm->mem, n, osz), gmem_ptr(vm->mem, old, osz), osz);
	munmap_locked(vm, old, osz);
	return (long)n;
}

static long sys_mremap(struct svc_thread *t, const uint64_t a[6])
{
	pthread_mutex_lock(&t->vm->mm_lock);
	long rc = mremap_locked(t->vm, a[0], a[1], a[2], (int)a[3], a[4]);
	pthread_mutex_unlock(&t->vm->mm_lock);
	return rc;
}

static long sys_brk(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	uint64_t want = a[0];
	pthread_mutex_lock(&vm->mm_lock);
	uint64_t start = vm->prog->brk_start;
	if (want >= start) {
		uint64_t cur_pg = PAGE_UP(vm->brk_cur), new_pg = PAGE_UP(want);
		bool ok = true;
		if (new_pg > cur_pg) {
			if (new_pg > mmap_top(vm) || vma_overlaps(vm, cur_pg, new_pg))
				ok = false;
		} else if (new_pg < cur_pg) {
			zero_range(vm, new_pg, cur_pg - new_pg);
		}
		if (ok)
			vm->brk_cur = want;
	}
	long rc = (long)vm->brk_cur;
	pthread_mutex_unlock(&vm->mm_lock);
	return rc;
}

static long sys_madvise(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	uint64_t addr = a[0], len = PAGE_UP(a[1]), e;
	int advice = (int)a[2];
	if (addr & (SVC_PAGE - 1))
		return -EINVAL;
	if (!len)
		return 0;
	if (addr < UVM_USER_BASE || __builtin_add_overflow(addr, len, &e) || e > gmem_end(vm->mem))
		return -ENOMEM;
	if (advice == MADV_DONTNEED || advice == MADV_FREE) {
		pthread_mutex_lock(&vm->mm_lock);
		for (unsigned i = 0; i < vm->nvmas; i++) {
			uint64_t s = vm->vmas[i].start > addr ? vm->vmas[i].start : addr;
			uint64_t en = vm->vmas[i].end < e ? vm->vmas[i].end : e;
			if (s < en)
				zero_range(vm, s, en - s);
		}
		pthread_mutex_unlock(&vm->mm_lock);
	}
	return 0;
}

static long sys_mprotect(struct svc_thread *t, const uint64_t a[6])
{
	uint64_t addr = a[0], e;
	if (addr & (SVC_PAGE - 1))
		return -EINVAL;
	if (addr < UVM_USER_BASE || __builtin_add_overflow(addr, PAGE_UP(a[1]), &e) ||
	    e > gmem_end(t->vm->mem))
		return -ENOMEM;
	/* accepted; guest memory stays readable, writable and executable */
	return 0;
}

static long sys_zero(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 0;
}

static long sys_enosys(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -ENOSYS;
}

/* --------------------------------------------------------------- process */

static long sys_exit(struct svc_thread *t, const uint64_t a[6])
{
	svc_thread_exit(t, (int)a[0]);
	return 0;
}

static long sys_exit_group(struct svc_thread *t, const uint64_t a[6])
{
	svc_vm_exit(t->vm, (int)(a[0] & 0xff));
	return 0;
}

static long sys_clone(struct svc_thread *t, const uint64_t a[6])
{
	/* x86-64 order: flags, newsp, parent_tid, child_tid, tls */
	return svc_thread_clone(t, a[0], a[1], a[2], a[3], a[4]);
}

static long sys_getpid(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return SVC_PID;
}

static long sys_gettid(struct svc_thread *t, const uint64_t a[6])
{
	(void)a;
	return t->tid;
}

static long sys_wait4(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -ECHILD;
}

static long sys_set_tid_address(struct svc_thread *t, const uint64_t a[6])
{
	t->clear_child_tid = a[0];
	return t->tid;
}

static long sys_set_robust_list(struct svc_thread *t, const uint64_t a[6])
{
	if (a[1] != 24)
		return -EINVAL;
	t->robust_head = a[0];
	t->robust_len = a[1];
	return 0;
}

static long sys_get_robust_list(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_thread *o = t;
	struct svc_vm *vm = t->vm;
	uint64_t head = 0;
	pthread_mutex_lock(&vm->lock);
	if (a[0] && (int)a[0] != t->tid)
		o = svc_thread_by_tid(vm, (int)a[0]);
	if (o)
		head = o->robust_head;
	pthread_mutex_unlock(&vm->lock);
	if (!o)
		return -ESRCH;
	uint64_t len = 24;
	if (svc_copy_out(t, a[1], &head, 8) || svc_copy_out(t, a[2], &len, 8))
		return -EFAULT;
	return 0;
}

static long sys_arch_prctl(struct svc_thread *t, const uint64_t a[6])
{
	switch ((int)a[0]) {
	case ARCH_SET_FS:
		return svc_thread_set_segbase(t, 0, a[1]);
	case ARCH_SET_GS:
		return svc_thread_set_segbase(t, 1, a[1]);
	case ARCH_GET_FS:
		return svc_copy_out(t, a[1], &t->fs_base, 8);
	case ARCH_GET_GS:
		return svc_copy_out(t, a[1], &t->gs_base, 8);
	default:
		return -EINVAL;
	}
}

static long sys_prctl(struct svc_thread *t, const uint64_t a[6])
{
	switch ((int)a[0]) {
	case PR_SET_NAME:
	case PR_SET_DUMPABLE:
	case PR_SET_PDEATHSIG:
	case PR_SET_NO_NEW_PRIVS:
		return 0;
	case PR_GET_NAME: {
		static const char name[16] = "nubis-svc";
		return svc_copy_out(t, a[1], name, sizeof(name));
	}
	case PR_GET_DUMPABLE:
		return 0;
	default:
		return -EINVAL;
	}
}

static long sys_uname(struct svc_thread *t, const uint64_t a[6])
{
	struct utsname u;
	memset(&u, 0, sizeof(u));
	strcpy(u.sysname, "Linux");
	strcpy(u.nodename, "nubis");
	strcpy(u.release, "6.1.0-nubis");
	strcpy(u.version, "#1 SMP nubis service VM");
	strcpy(u.machine, "x86_64");
	strcpy(u.domainname, "(none)");
	return svc_copy_out(t, a[0], &u, sizeof(u));
}

static long rlimit_of(struct svc_thread *t, long res, struct rlimit *r)
{
	struct svc_vm *vm = t->vm;
	r->rlim_cur = r->rlim_max = RLIM_INFINITY;
	switch (res) {
	case RLIMIT_STACK:
		r->rlim_cur = r->rlim_max = vm->cfg.mem_size - vm->prog->stack_lo;
		break;
	case RLIMIT_NOFILE:
		r->rlim_cur = r->rlim_max = vm->cfg.max_fds;
		break;
	case RLIMIT_AS:
	case RLIMIT_DATA:
		r->rlim_cur = r->rlim_max = vm->cfg.mem_size;
		break;
	case RLIMIT_CORE:
		r->rlim_cur = r->rlim_max = 0;
		break;
	case RLIMIT_NPROC:
		r->rlim_cur = r->rlim_max = vm->cfg.max_threads;
		break;
	default:
		if (res < 0 || res >= RLIM_NLIMITS)
			return -EINVAL;
	}
	return 0;
}

static long svc_prlimit(struct svc_thread *t, long pid, long res, uint64_t new_a, uint64_t old_a)
{
	if (pid != 0 && pid != SVC_PID)
		return -ESRCH;
	struct rlimit r;
	long rc = rlimit_of(t, res, &r);
	if (rc)
		return rc;
	if (new_a) {
		struct rlimit n;
		if (svc_copy_in(t, &n, new_a, sizeof(n)))
			return -EFAULT;
		if (n.rlim_cur > n.rlim_max)
			return -EINVAL;
		if (n.rlim_max > r.rlim_max)
			return -EPERM;
		/* lowering is accepted, not applied: the monitor's caps stay */
	}
	return old_a ? svc_copy_out(t, old_a, &r, sizeof(r)) : 0;
}

static long sys_prlimit64(struct svc_thread *t, const uint64_t a[6])
{
	return svc_prlimit(t, (long)a[0], (long)a[1], a[2], a[3]);
}
static long sys_getrlimit(struct svc_thread *t, const uint64_t a[6])
{
	return svc_prlimit(t, 0, (long)a[0], 0, a[1]);
}
static long sys_setrlimit(struct svc_thread *t, const uint64_t a[6])
{
	return svc_prlimit(t, 0, (long)a[0], a[1], 0);
}

static long sys_sched_getaffinity(struct svc_thread *t, const uint64_t a[6])
{
	uint64_t len = a[1];
	if (len < 8 || (len & 7))
		return -EINVAL;
	unsigned n = t->vm->cfg.cpus;
	if (!n) {
		long h = sysconf(_SC_NPROCESSORS_ONLN);
		n = h > 0 ? (unsigned)h : 1;
	}
	if (n > 64)
		n = 64;
	uint64_t mask = n == 64 ? ~0ull : (1ull << n) - 1;
	return svc_copy_out(t, a[2], &mask, 8) ? -EFAULT : 8;
}

static long sys_getcpu(struct svc_thread *t, const uint64_t a[6])
{
	unsigned zero = 0;
	if (a[0] && svc_copy_out(t, a[0], &zero, 4))
		return -EFAULT;
	if (a[1] && svc_copy_out(t, a[1], &zero, 4))
		return -EFAULT;
	return 0;
}

static long sys_sched_yield(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	sched_yield();
	return 0;
}

static long sys_sysinfo(struct svc_thread *t, const uint64_t a[6])
{
	struct sysinfo si;
	memset(&si, 0, sizeof(si));
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	si.uptime = ts.tv_sec;
	si.totalram = t->vm->cfg.mem_size;
	si.freeram = t->vm->cfg.mem_size / 2;
	si.procs = (unsigned short)t->vm->nthreads;
	si.mem_unit = 1;
	return svc_copy_out(t, a[0], &si, sizeof(si));
}

static long sys_getrusage(struct svc_thread *t, const uint64_t a[6])
{
	int who = (int)a[0];
	if (who != RUSAGE_SELF && who != RUSAGE_CHILDREN && who != RUSAGE_THREAD)
		return -EINVAL;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	if (who != RUSAGE_CHILDREN) {
		struct rusage h;
		if (getrusage(who == RUSAGE_THREAD ? RUSAGE_THREAD : RUSAGE_SELF, &h) == 0) {
			ru.ru_utime = h.ru_utime;
			ru.ru_stime = h.ru_stime;
		}
	}
	return svc_copy_out(t, a[1], &ru, sizeof(ru));
}

static long sys_times(struct svc_thread *t, const uint64_t a[6])
{
	struct tms tm;
	clock_t c = times(&tm);
	tm.tms_cutime = tm.tms_cstime = 0;
	if (a[0] && svc_copy_out(t, a[0], &tm, sizeof(tm)))
		return -EFAULT;
	return (long)c;
}

/* ------------------------------------------------------------------ time */

static int clock_ok(long clk)
{
	switch (clk) {
	case CLOCK_REALTIME:
	case CLOCK_MONOTONIC:
	case CLOCK_PROCESS_CPUTIME_ID:
	case CLOCK_THREAD_CPUTIME_ID:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
	case CLOCK_TAI:
		return 1;
	case CLOCK_REALTIME_ALARM:
	case CLOCK_BOOTTIME_ALARM:
		return 2; /* as their plain clocks */
	default:
		return 0;
	}
}

uint64_t svc_clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static clockid_t host_clock(long clk)
{
	if (clk == CLOCK_REALTIME_ALARM)
		return CLOCK_REALTIME;
	if (clk == CLOCK_BOOTTIME_ALARM)
		return CLOCK_BOOTTIME;
	return (clockid_t)clk;
}

/* ---- clocks and the vDSO (vdso.c) ----
 * With the vDSO active, the system calls read the same TSC lines as the
 * vDSO (svc_vdso_clock), so the two paths agree and CLOCK_MONOTONIC never
 * goes back between them; otherwise the host's clocks. */
#define MSR_IA32_TSC 0x10u

int svc_guest_tsc(struct svc_thread *t, uint64_t *tsc)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = MSR_IA32_TSC;
	if (ioctl(t->cpu->fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*tsc = m.e.data;
	return 0;
}

/* Guest clock @clk (a clock_ok() id) in ns. */
static uint64_t guest_clock_ns(struct svc_vm *vm, long clk)
{
	uint64_t ns;
	if (svc_vdso_clock(vm->vdso, host_clock(clk), &ns) == 0)
		return ns;
	return svc_clock_ns(host_clock(clk));
}

static long sys_clock_gettime(struct svc_thread *t, const uint64_t a[6])
{
	long clk = (long)a[0];
	if (!clock_ok(clk))
		return -EINVAL;
	uint64_t ns = guest_clock_ns(t->vm, clk);
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};
	return svc_copy_out(t, a[1], &ts, sizeof(ts));
}

static long sys_clock_getres(struct svc_thread *t, const uint64_t a[6])
{
	if (!clock_ok((long)a[0]))
		return -EINVAL;
	struct timespec ts;
	clock_getres(host_clock((long)a[0]), &ts);
	return a[1] ? svc_copy_out(t, a[1], &ts, sizeof(ts)) : 0;
}

static long sys_gettimeofday(struct svc_thread *t, const uint64_t a[6])
{
	if (a[0]) {
		uint64_t ns = guest_clock_ns(t->vm, CLOCK_REALTIME);
		struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000u),
				     .tv_usec = (suseconds_t)(ns % 1000000000u / 1000u)};
		if (svc_copy_out(t, a[0], &tv, sizeof(tv)))
			return -EFAULT;
	}
	if (a[1]) {
		uint64_t tz = 0;
		if (svc_copy_out(t, a[1], &tz, 8))
			return -EFAULT;
	}
	return 0;
}

static long sys_time(struct svc_thread *t, const uint64_t a[6])
{
	int64_t s = (int64_t)(guest_clock_ns(t->vm, CLOCK_REALTIME) / 1000000000u);
	if (a[0] && svc_copy_out(t, a[0], &s, 8))
		return -EFAULT;
	return s;
}

int svc_get_timespec(struct svc_thread *t, uint64_t a, uint64_t *ns)
{
	struct timespec ts;
	if (svc_copy_in(t, &ts, a, sizeof(ts)))
		return -EFAULT;
	if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L)
		return -EINVAL;
	if ((uint64_t)ts.tv_sec > 100ull * 365 * 86400)
		ts.tv_sec = 100l * 365 * 86400;
	*ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return 0;
}

static long do_nanosleep(struct svc_thread *t, long clk, long flags, uint64_t req, uint64_t rem)
{
	int k = clock_ok(clk);
	if (!k || clk == CLOCK_THREAD_CPUTIME_ID || clk == CLOCK_PROCESS_CPUTIME_ID)
		return k ? -ENOTSUP : -EINVAL;
	uint64_t ns;
	int rc = svc_get_timespec(t, req, &ns);
	if (rc)
		return rc;
	if (flags & TIMER_ABSTIME) {
		uint64_t now = svc_clock_ns(host_clock(clk));
		ns = ns > now ? ns - now : 0;
	}
	uint64_t left = 0;
	rc = svc_sleep(t, ns, &left);
	if (rc == -EINTR && rem && !(flags & TIMER_ABSTIME)) {
		struct timespec ts = {.tv_sec = (time_t)(left / 1000000000ull),
				      .tv_nsec = (long)(left % 1000000000ull)};
		if (svc_copy_out(t, rem, &ts, sizeof(ts)))
			return -EFAULT;
	}
	return rc;
}

static long sys_nanosleep(struct svc_thread *t, const uint64_t a[6])
{
	return do_nanosleep(t, CLOCK_MONOTONIC, 0, a[0], a[1]);
}

static long sys_clock_nanosleep(struct svc_thread *t, const uint64_t a[6])
{
	return do_nanosleep(t, (long)a[0], (long)a[1], a[2], a[3]);
}

static long sys_getrandom(struct svc_thread *t, const uint64_t a[6])
{
	uint64_t n = a[1];
	if (a[2] & ~(uint64_t)(GRND_NONBLOCK | GRND_RANDOM | 4 /* GRND_INSECURE */))
		return -EINVAL;
	if (n > 33554431)
		n = 33554431;
	uint8_t *d = svc_uptr(t, a[0], n);
	if (!d)
		return -EFAULT;
	uint64_t done = 0;
	while (done < n) {
		ssize_t r = getrandom(d + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return done ? (long)done : -EIO;
		done += (uint64_t)r;
	}
	return (long)n;
}

/* --------------------------------------------------------------- ids */

static long sys_getuid(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 0;
}

static long sys_getppid(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 0;
}

static long sys_setid(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	/* root inside the VM may become anyone; the monitor does not track it */
	(void)a;
	return 0;
}

static long sys_getresuid(struct svc_thread *t, const uint64_t a[6])
{
	uint32_t z = 0;
	for (int i = 0; i < 3; i++)
		if (svc_copy_out(t, a[i], &z, 4))
			return -EFAULT;
	return 0;
}

static long sys_getgroups(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 0;
}

static long sys_setsid(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return -EPERM; /* already a session leader */
}

static long sys_getpriority(struct svc_thread *t, const uint64_t a[6])
{
	(void)t;
	(void)a;
	return 20; /* nice 0, as the kernel encodes it */
}

static long sys_sched_getparam(struct svc_thread *t, const uint64_t a[6])
{
	int zero = 0;
	return svc_copy_out(t, a[1], &zero, 4);
}

/* ------------------------------------------------------------ dispatch */

static svc_sys_fn core_handler(unsigned nr)
{
	switch (nr) {
	case SYS_brk:
		return sys_brk;
	case SYS_mmap:
		return sys_mmap;
	case SYS_munmap:
		return sys_munmap;
	case SYS_mremap:
		return sys_mremap;
	case SYS_mprotect:
		return sys_mprotect;
	case SYS_madvise:
		return sys_madvise;
	case SYS_msync:
		return sys_msync;
	case SYS_mlock:
	case SYS_munlock:
	case SYS_mlockall:
	case SYS_munlockall:
	case SYS_sched_setaffinity:
	case SYS_setpriority:
	case SYS_sched_setscheduler:
	case SYS_sched_setparam:
	case SYS_sched_getscheduler:
		return sys_zero;
	case SYS_exit:
		return sys_exit;
	case SYS_exit_group:
		return sys_exit_group;
	case SYS_clone:
		return sys_clone;
	case SYS_clone3: /* libc falls back to clone */
	case SYS_fork:
	case SYS_vfork:
	case SYS_execve:
	case SYS_execveat:
	case SYS_rseq:
		return sys_enosys;
	case SYS_wait4:
	case SYS_waitid:
		return sys_wait4;
	case SYS_getpid:
	case SYS_getpgrp:
	case SYS_getsid:
	case SYS_getpgid:
		return sys_getpid;
	case SYS_gettid:
		return sys_gettid;
	case SYS_getppid:
		return sys_getppid;
	case SYS_getuid:
	case SYS_geteuid:
	case SYS_getgid:
	case SYS_getegid:
		return sys_getuid;
	case SYS_setuid:
	case SYS_setgid:
	case SYS_setreuid:
	case SYS_setregid:
	case SYS_setresuid:
	case SYS_setresgid:
	case SYS_setgroups:
	case SYS_setpgid:
	case SYS_setfsuid:
	case SYS_setfsgid:
		return sys_setid;
	case SYS_getresuid:
	case SYS_getresgid:
		return sys_getresuid;
	case SYS_getgroups:
		return sys_getgroups;
	case SYS_setsid:
		return sys_setsid;
	case SYS_getpriority:
		return sys_getpriority;
	case SYS_sched_getparam:
		return sys_sched_getparam;
	case SYS_set_tid_address:
		return sys_set_tid_address;
	case SYS_set_robust_list:
		return sys_set_robust_list;
	case SYS_get_robust_list:
		return sys_get_robust_list;
	case SYS_arch_prctl:
		return sys_arch_prctl;
	case SYS_prctl:
		return sys_prctl;
	case SYS_uname:
		return sys_uname;
	case SYS_prlimit64:
		return sys_prlimit64;
	case SYS_getrlimit:
		return sys_getrlimit;
	case SYS_setrlimit:
		return sys_setrlimit;
	case SYS_sched_getaffinity:
		return sys_sched_getaffinity;
	case SYS_getcpu:
		return sys_getcpu;
	case SYS_sched_yield:
		return sys_sched_yield;
	case SYS_sysinfo:
		return sys_sysinfo;
	case SYS_getrusage:
		return sys_getrusage;
	case SYS_times:
		return sys_times;
	case SYS_clock_gettime:
		return sys_clock_gettime;
	case SYS_clock_getres:
		return sys_clock_getres;
	case SYS_gettimeofday:
		return sys_gettimeofday;
	case SYS_time:
		return sys_time;
	case SYS_nanosleep:
		return sys_nanosleep;
	case SYS_clock_nanosleep:
		return sys_clock_nanosleep;
	case SYS_getrandom:
		return sys_getrandom;
	default:
		break;
	}
	svc_sys_fn f = svc_signal_handler(nr);
	if (!f)
		f = svc_futex_handler(nr);
	return f;
}

uint64_t svc_syscall_count(struct svc_vm *vm, int nr)
{
	if (nr >= 0)
		return atomic_load(&vm->counts[nr < SVC_NSYSCALLS ? nr : SVC_NSYSCALLS - 1]);
	uint64_t sum = 0;
	for (unsigned i = 0; i < SVC_NSYSCALLS; i++)
		sum += atomic_load(&vm->counts[i]);
	return sum;
}

void svc_syscall_report(struct svc_vm *vm, FILE *f)
{
	fprintf(f, "nubis: trace: %llu system calls\n",
		(unsigned long long)svc_syscall_count(vm, -1));
	for (unsigned nr = 0; nr < SVC_NSYSCALLS; nr++) {
		uint64_t n = atomic_load(&vm->counts[nr]);
		if (!n)
			continue;
		const char *name =
		    nr == SVC_NSYSCALLS - 1 ? "numbers >= 511" : fnvm_syscall_name(nr);
		bool served = nr < SVC_NSYSCALLS - 1 &&
			      (core_handler(nr) || svc_fs_handler(nr) || svc_net_handler(nr));
		fprintf(f, "nubis: trace: %10llu  %s (%u)%s\n", (unsigned long long)n,
			name ? name : "?", nr, served ? "" : "  unsupported: ENOSYS");
	}
	svc_fast_report(vm, f);
}

svc_sys_fn svc_sys_lookup(unsigned nr)
{
	if (nr >= 1024)
		return NULL;
	svc_sys_fn f = core_handler(nr);
	if (!f)
		f = svc_fs_handler(nr);
	if (!f)
		f = svc_net_handler(nr);
	return f;
}

void svc_sys_dispatch(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	uint64_t nr = t->u.rax;
	const uint64_t a[6] = {t->u.rdi, t->u.rsi, t->u.rdx, t->u.r10, t->u.r8, t->u.r9};
	atomic_fetch_add_explicit(&vm->counts[nr < SVC_NSYSCALLS ? nr : SVC_NSYSCALLS - 1], 1,
				  memory_order_relaxed);
	svc_sys_fn f = NULL;
	if (nr < 1024) {
		f = core_handler((unsigned)nr);
		if (!f)
			f = svc_fs_handler((unsigned)nr);
		if (!f)
			f = svc_net_handler((unsigned)nr);
	}
	t->no_retval = false;
	long ret;
	if (f) {
		ret = f(t, a);
	} else {
		ret = -ENOSYS;
		pthread_mutex_lock(&vm->log_lock);
		int ok = nb_ratelimit_ok(&vm->enosys_rl);
		pthread_mutex_unlock(&vm->log_lock);
		if (ok) {
			const char *name = nr < 1024 ? fnvm_syscall_name((unsigned)nr) : NULL;
			nb_log(NB_LOG_WARN, "service VM: unsupported system call %s (%llu)",
			       name ? name : "?", (unsigned long long)nr);
		}
	}
	if (!t->no_retval)
		t->u.rax = (uint64_t)ret;
}
