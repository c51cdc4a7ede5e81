/* SPDX-License-Identifier: MIT */
/*
 * The system-call server: what a static Linux program asks of a kernel,
 * answered by the monitor. Every guest pointer goes through uptr() (guest
 * user memory only, bounds-checked by gmem_ptr). The only host system calls
 * made with guest-chosen arguments are reads and writes on declared
 * channels and the request's standard streams.
 */
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/stat.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "fnvm_int.h"
#include "path.h"

#define PAGE_UP(x) (((x) + FNVM_PAGE - 1) & ~(FNVM_PAGE - 1))

/* ---------------------------------------------------------------- memory */

/* Host pointer for guest user range [a, a+len), or NULL. */
static void *uptr(struct fnvm_proc *p, uint64_t a, uint64_t len)
{
	if (a < UVM_USER_BASE)
		return NULL;
	return gmem_ptr(p->mem, a, len);
}

static int copy_in(struct fnvm_proc *p, void *dst, uint64_t a, uint64_t len)
{
	const void *s = uptr(p, a, len);
	if (!s)
		return -EFAULT;
	memcpy(dst, s, len);
	return 0;
}

static int copy_out(struct fnvm_proc *p, uint64_t a, const void *src, uint64_t len)
{
	void *d = uptr(p, a, len);
	if (!d)
		return -EFAULT;
	memcpy(d, src, len);
	return 0;
}

/* Copy a guest path into @buf (FNVM_PATH_MAX + 1 bytes). */
static int copy_path(struct fnvm_proc *p, uint64_t a, char *buf)
{
	if (a < UVM_USER_BASE)
		return -EFAULT;
	long n = gmem_strnlen(p->mem, a, FNVM_PATH_MAX);
	if (n < 0)
		return (int)n;
	memcpy(buf, gmem_ptr(p->mem, a, (uint64_t)n), (size_t)n);
	buf[n] = 0;
	return n == 0 ? -ENOENT : 0;
}

/* Give pages back: the next touch sees zeros. Only anonymous memory (above
 * the image) is dropped; lower pages are zeroed in place. */
static void zero_range(struct fnvm_proc *p, uint64_t a, uint64_t len)
{
	uint64_t ext = p->prog->img_extent;
	if (a < ext) {
		uint64_t n = (a + len < ext ? a + len : ext) - a;
		void *h = gmem_ptr(p->mem, a, n);
		if (h)
			memset(h, 0, n);
		len -= n;
		a += n;
	}
	if (len) {
		void *h = gmem_ptr(p->mem, a, len);
		if (h)
			madvise(h, len, MADV_DONTNEED);
	}
}

static int vma_overlaps(const struct fnvm_proc *p, uint64_t a, uint64_t e)
{
	return vmas_overlaps(p->vmas, p->nvmas, a, e);
}

/* Remove [a, e) from the mapping list (splitting as needed). */
static int vma_remove(struct fnvm_proc *p, uint64_t a, uint64_t e)
{
	return vmas_remove(p->vmas, &p->nvmas, FNVM_MAX_VMAS, a, e);
}

/* Insert [a, e), which must not overlap, keeping the list sorted and merged. */
static int vma_insert(struct fnvm_proc *p, uint64_t a, uint64_t e)
{
	return vmas_insert(p->vmas, &p->nvmas, FNVM_MAX_VMAS, a, e);
}

/* Highest free range of @len bytes in [brk_cur, mmap_top). 0 if none. */
static uint64_t vma_find(const struct fnvm_proc *p, uint64_t len)
{
	uint64_t lo = PAGE_UP(p->brk_cur), hi = p->prog->mmap_top;
	for (unsigned i = p->nvmas + 1; i-- > 0;) {
		uint64_t gap_lo = i == 0 ? lo : p->vmas[i - 1].end;
		uint64_t gap_hi = i == p->nvmas ? hi : p->vmas[i].start;
		if (gap_lo < lo)
			gap_lo = lo;
		if (gap_hi > hi)
			gap_hi = hi;
		if (gap_hi > gap_lo && gap_hi - gap_lo >= len)
			return gap_hi - len;
	}
	return 0;
}

static int range_ok(const struct fnvm_proc *p, uint64_t a, uint64_t len)
{
	uint64_t e;
	return !(a & (FNVM_PAGE - 1)) && a >= UVM_USER_BASE &&
	       !__builtin_add_overflow(a, len, &e) && e <= p->prog->mmap_top;
}

static long sys_mmap(struct fnvm_proc *p, uint64_t addr, uint64_t len, int prot, int flags, int fd,
		     uint64_t off)
{
	(void)prot;
	(void)fd;
	if (!len || len > (1ull << 46))
		return -EINVAL;
	len = PAGE_UP(len);
	if (!(flags & MAP_ANONYMOUS))
		return -ENODEV; /* no file mappings: channels are streams */
	int type = flags & MAP_TYPE;
	if (type != MAP_PRIVATE && type != MAP_SHARED)
		return -EINVAL;
	if (off & (FNVM_PAGE - 1))
		return -EINVAL;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (!range_ok(p, addr, len) || addr < PAGE_UP(p->brk_cur))
			return (flags & MAP_FIXED) ? -ENOMEM : -EEXIST;
		if (vma_overlaps(p, addr, addr + len)) {
			if (flags & MAP_FIXED_NOREPLACE && !(flags & MAP_FIXED))
				return -EEXIST;
			vma_remove(p, addr, addr + len);
		}
		zero_range(p, addr, len);
	} else if (!(addr && range_ok(p, addr, len) && addr >= PAGE_UP(p->brk_cur) &&
		     !vma_overlaps(p, addr, addr + len))) {
		addr = vma_find(p, len);
		if (!addr)
			return -ENOMEM;
	}
	if (vma_insert(p, addr, addr + len) < 0)
		return -ENOMEM;
	return (long)addr;
}

static long sys_munmap(struct fnvm_proc *p, uint64_t addr, uint64_t len)
{
	if ((addr & (FNVM_PAGE - 1)) || !len)
		return -EINVAL;
	len = PAGE_UP(len);
	uint64_t e;
	if (__builtin_add_overflow(addr, len, &e))
		return -EINVAL;
	/* clip to the mapping area; unmapping nothing is not an error */
	uint64_t lo = addr, hi = e;
	if (lo < UVM_USER_BASE)
		lo = UVM_USER_BASE;
	if (hi > p->prog->mmap_top)
		hi = p->prog->mmap_top;
	if (lo >= hi)
		return 0;
	for (unsigned i = 0; i < p->nvmas; i++) {
		uint64_t a = p->vmas[i].start > lo ? p->vmas[i].start : lo;
		uint64_t b = p->vmas[i].end < hi ? p->vmas[i].end : hi;
		if (a < b)
			zero_range(p, a, b - a);
	}
	return vma_remove(p, lo, hi);
}

static int vma_covers(const struct fnvm_proc *p, uint64_t a, uint64_t e)
{
	return vmas_covers(p->vmas, p->nvmas, a, e);
}

static long sys_mremap(struct fnvm_proc *p, uint64_t old, uint64_t osz, uint64_t nsz, int flags,
		       uint64_t naddr)
{
	if ((old & (FNVM_PAGE - 1)) || !nsz || (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)))
		return -EINVAL;
	if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE))
		return -EINVAL;
	osz = PAGE_UP(osz);
	nsz = PAGE_UP(nsz);
	if (!osz || nsz > (1ull << 46) || !range_ok(p, old, osz) || !vma_covers(p, old, old + osz))
		return -EFAULT;
	if (flags & MREMAP_FIXED) {
		if (!range_ok(p, naddr, nsz) || naddr < PAGE_UP(p->brk_cur) ||
		    (naddr < old + osz && old < naddr + nsz))
			return -EINVAL;
		sys_munmap(p, naddr, nsz);
		memmove(gmem_ptr(p->mem, naddr, nsz), gmem_ptr(p->mem, old, osz),
			osz < nsz ? osz : nsz);
		sys_munmap(p, old, osz);
		vma_insert(p, naddr, naddr + nsz);
		return (long)naddr;
	}
	if (nsz <= osz) {
		if (nsz < osz)
			sys_munmap(p, old + nsz, osz - nsz);
		return (long)old;
	}
	uint64_t grow_end = old + nsz;
	if (grow_end <= p->prog->mmap_top && !vma_overlaps(p, old + osz, grow_end)) {
		vma_insert(p, old + osz, grow_end);
		return (long)old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	uint64_t n = vma_find(p, nsz);
	if (!n)
		return -ENOMEM;
	if (vma_insert(p, n, n + nsz) < 0)
		return -ENOMEM;
	memcpy(gmem_ptr(p->mem, n, osz), gmem_ptr(p->mem, old, osz), osz);
	sys_munmap(p, old, osz);
	return (long)n;
}

static long sys_brk(struct fnvm_proc *p, uint64_t want)
{
	uint64_t start = p->prog->brk_start;
	if (want < start)
		return (long)p->brk_cur;
	uint64_t cur_pg = PAGE_UP(p->brk_cur), new_pg = PAGE_UP(want);
	if (new_pg > cur_pg) {
		if (new_pg > p->prog->mmap_top || vma_overlaps(p, cur_pg, new_pg))
			return (long)p->brk_cur;
	} else if (new_pg < cur_pg) {
		zero_range(p, new_pg, cur_pg - new_pg);
	}
	p->brk_cur = want;
	return (long)want;
}

static long sys_madvise(struct fnvm_proc *p, uint64_t a, uint64_t len, int advice)
{
	if (a & (FNVM_PAGE - 1))
		return -EINVAL;
	len = PAGE_UP(len);
	if (!len)
		return 0;
	if (!range_ok(p, a, len) && !(a >= UVM_USER_BASE && a + len <= gmem_end(p->mem)))
		return -ENOMEM;
	if (advice == MADV_DONTNEED || advice == MADV_FREE) {
		/* only mapped anonymous memory is dropped */
		for (unsigned i = 0; i < p->nvmas; i++) {
			uint64_t s = p->vmas[i].start > a ? p->vmas[i].start : a;
			uint64_t e = p->vmas[i].end < a + len ? p->vmas[i].end : a + len;
			if (s < e)
				zero_range(p, s, e - s);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ file table */

static int fd_get(struct fnvm_proc *p, long fd, struct fnvm_ofile **of)
{
	if (fd < 0 || fd >= FNVM_MAX_FDS || p->fd_of[fd] < 0)
		return -EBADF;
	*of = &p->ofiles[p->fd_of[fd]];
	return 0;
}

static int fd_alloc(struct fnvm_proc *p, int from)
{
	for (int fd = from < 0 ? 0 : from; fd < FNVM_MAX_FDS; fd++)
		if (p->fd_of[fd] < 0)
			return fd;
	return -EMFILE;
}

static int of_alloc(struct fnvm_proc *p)
{
	for (int i = 0; i < FNVM_MAX_FDS; i++)
		if (!p->ofiles[i].refs)
			return i;
	return -ENFILE;
}

static void fd_close(struct fnvm_proc *p, int fd)
{
	struct fnvm_ofile *of = &p->ofiles[p->fd_of[fd]];
	if (--of->refs == 0)
		memset(of, 0, sizeof(*of));
	p->fd_of[fd] = -1;
	p->fd_cloexec[fd] = 0;
}

static long sink_write(struct fnvm_proc *p, int which, struct fnvm_sink *s, const void *d, size_t n)
{
	uint64_t lim = p->prog->cfg.output_limit;
	int over = 0;
	if (lim && p->out_bytes[which] + n > lim) {
		n = lim - p->out_bytes[which];
		over = 1;
	}
	if (s->fd >= 0) {
		size_t done = 0;
		while (done < n) {
			ssize_t r = write(s->fd, (const char *)d + done, n - done);
			if (r < 0 && errno == EINTR && !fnvm_proc_check_timeout(p))
				continue;
			if (r < 0) {
				if (!done)
					return -errno;
				break;
			}
			done += (size_t)r;
		}
		n = done;
	} else if (n) {
		if (s->len + n > s->cap) {
			size_t cap = s->cap ? s->cap : 4096;
			while (cap < s->len + n)
				cap *= 2;
			char *b = realloc(s->buf, cap);
			if (!b)
				return -ENOMEM;
			s->buf = b;
			s->cap = cap;
		}
		memcpy(s->buf + s->len, d, n);
		s->len += n;
	}
	p->out_bytes[which] += n;
	if (over)
		fnvm_proc_end(p, FNVM_OUTPUT_LIMIT, FNVM_STATUS_OUTPUT_LIMIT,
			      "output limit of %llu bytes reached on %s", (unsigned long long)lim,
			      which == 0   ? "stdout"
			      : which == 1 ? "stderr"
					   : "a channel");
	return (long)n;
}

/* One read or write of @n bytes at host pointer @buf on open file @of.
 * @pos: explicit offset (pread/pwrite) or -1 for the file position. */
static long of_io(struct fnvm_proc *p, struct fnvm_ofile *of, int wr, void *buf, size_t n,
		  int64_t pos)
{
	struct fnvm_stdio *io = p->io;
	if (wr ? of->accmode == O_RDONLY : of->accmode == O_WRONLY)
		return -EBADF;
	switch (of->kind) {
	case OF_STDIN: {
		if (pos >= 0)
			return -ESPIPE;
		if (io->in_fd >= 0) {
			ssize_t r;
			do
				r = read(io->in_fd, buf, n);
			while (r < 0 && errno == EINTR && !fnvm_proc_check_timeout(p));
			return r < 0 ? -errno : r;
		}
		size_t left = io->in_len - p->in_pos;
		if (n > left)
			n = left;
		if (n)
			memcpy(buf, (const char *)io->in_buf + p->in_pos, n);
		p->in_pos += n;
		return (long)n;
	}
	case OF_STDOUT:
	case OF_STDERR:
		if (pos >= 0)
			return -ESPIPE;
		return sink_write(p, of->kind == OF_STDOUT ? 0 : 1,
				  of->kind == OF_STDOUT ? &io->out : &io->err, buf, n);
	case OF_CHAN: {
		struct fnvm_chan *c = &p->prog->chans[of->chan];
		if (pos >= 0 && !c->seekable)
			return -ESPIPE;
		uint64_t lim = p->prog->cfg.output_limit;
		int over = 0;
		if (wr && lim && p->chan_written[of->chan] + n > lim) {
			n = lim - p->chan_written[of->chan];
			over = 1;
		}
		ssize_t r;
		uint64_t off = pos >= 0 ? (uint64_t)pos : of->off;
		do {
			if (c->seekable)
				r = wr ? pwrite(c->fd, buf, n, (off_t)off)
				       : pread(c->fd, buf, n, (off_t)off);
			else
				r = wr ? write(c->fd, buf, n) : read(c->fd, buf, n);
		} while (r < 0 && errno == EINTR && !fnvm_proc_check_timeout(p));
		if (r < 0)
			return -errno;
		if (pos < 0)
			of->off += (uint64_t)r;
		if (wr)
			p->chan_written[of->chan] += (uint64_t)r;
		if (over)
			fnvm_proc_end(p, FNVM_OUTPUT_LIMIT, FNVM_STATUS_OUTPUT_LIMIT,
				      "output limit of %llu bytes reached on channel %s",
				      (unsigned long long)lim, c->guest_path);
		return r;
	}
	default:
		return -EBADF;
	}
}

static long sys_rw(struct fnvm_proc *p, int wr, long fd, uint64_t a, uint64_t n, int64_t pos)
{
	struct fnvm_ofile *of;
	int rc = fd_get(p, fd, &of);
	if (rc)
		return rc;
	if (n > 0x7ffff000)
		n = 0x7ffff000;
	void *buf = uptr(p, a, n);
	if (!buf)
		return -EFAULT;
	return of_io(p, of, wr, buf, n, pos);
}

static long sys_rwv(struct fnvm_proc *p, int wr, long fd, uint64_t iov_a, long cnt, int64_t pos)
{
	struct fnvm_ofile *of;
	int rc = fd_get(p, fd, &of);
	if (rc)
		return rc;
	if (cnt < 0 || cnt > 1024)
		return -EINVAL;
	struct iovec iov[1024];
	if (cnt && copy_in(p, iov, iov_a, (uint64_t)cnt * sizeof(iov[0])))
		return -EFAULT;
	long total = 0;
	for (long i = 0; i < cnt; i++) {
		uint64_t len = iov[i].iov_len;
		if (!len)
			continue;
		void *buf = uptr(p, (uint64_t)(uintptr_t)iov[i].iov_base, len);
		if (!buf)
			return total ? total : -EFAULT;
		long r = of_io(p, of, wr, buf, len, pos >= 0 ? pos + total : -1);
		if (r < 0)
			return total ? total : r;
		total += r;
		if ((uint64_t)r < len || p->done)
			break;
	}
	return total;
}

enum lookup_kind { LK_NONE, LK_ROOT, LK_DIR, LK_STD, LK_CHAN };

/* What a guest path names: "/", "/dev", a standard stream or a channel. */
static enum lookup_kind path_lookup(struct fnvm_proc *p, int dirfd, const char *path, int *idx,
				    int *err)
{
	char norm[FNVM_PATH_MAX + 1];
	*err = 0;
	if (path[0] != '/' && dirfd != AT_FDCWD) {
		struct fnvm_ofile *of;
		*err = fd_get(p, dirfd, &of) ? -EBADF : -ENOTDIR;
		return LK_NONE;
	}
	if (fnvm_path_norm(p->cwd, path, norm, sizeof(norm)) < 0) {
		*err = -ENAMETOOLONG;
		return LK_NONE;
	}
	if (!strcmp(norm, "/"))
		return LK_ROOT;
	if (!strcmp(norm, "/dev"))
		return LK_DIR;
	static const char *const std[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
	for (int i = 0; i < 3; i++)
		if (!strcmp(norm, std[i])) {
			*idx = i;
			return LK_STD;
		}
	for (size_t i = 0; i < p->prog->nchans; i++)
		if (!strcmp(norm, p->prog->chans[i].guest_path)) {
			*idx = (int)i;
			return LK_CHAN;
		}
	*err = -ENOENT;
	return LK_NONE;
}

static long sys_openat(struct fnvm_proc *p, long dirfd, uint64_t path_a, long flags)
{
	char path[FNVM_PATH_MAX + 1];
	int rc = copy_path(p, path_a, path);
	if (rc)
		return rc;
	int idx = 0, err;
	enum lookup_kind k = path_lookup(p, (int)dirfd, path, &idx, &err);
	int acc = (int)(flags & O_ACCMODE);
	if (k == LK_NONE)
		return (flags & O_CREAT) && err == -ENOENT ? -EACCES : err;
	if (k == LK_ROOT || k == LK_DIR)
		return acc == O_RDONLY ? -ENOENT : -EISDIR; /* no directory streams */
	if (flags & O_DIRECTORY)
		return -ENOTDIR;
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		return -EEXIST;
	if (k == LK_STD) {
		/* a new open of the stream's open file */
		int src = p->fd_of[idx];
		if (src < 0)
			return -ENOENT;
		int fd = fd_alloc(p, 0);
		if (fd < 0)
			return fd;
		p->fd_of[fd] = src;
		p->ofiles[src].refs++;
		p->fd_cloexec[fd] = !!(flags & O_CLOEXEC);
		return fd;
	}
	struct fnvm_chan *c = &p->prog->chans[idx];
	if (c->mode == FNVM_CHAN_READ ? acc != O_RDONLY : acc != O_WRONLY)
		return -EACCES;
	int fd = fd_alloc(p, 0), o = of_alloc(p);
	if (fd < 0)
		return fd;
	if (o < 0)
		return o;
	if ((flags & O_TRUNC) && c->mode == FNVM_CHAN_WRITE && c->seekable) {
		if (ftruncate(c->fd, 0) < 0)
			return -errno;
	}
	p->ofiles[o] = (struct fnvm_ofile){.kind = OF_CHAN,
					   .chan = idx,
					   .accmode = acc,
					   .status_flags = (int)(flags & (O_APPEND | O_NONBLOCK)),
					   .refs = 1};
	p->fd_of[fd] = o;
	p->fd_cloexec[fd] = !!(flags & O_CLOEXEC);
	return fd;
}

static long sys_dup3(struct fnvm_proc *p, long old, long nfd, long flags, int mode)
{
	struct fnvm_ofile *of;
	int rc = fd_get(p, old, &of);
	if (rc)
		return rc;
	if (mode == 0) { /* dup / F_DUPFD: lowest >= nfd */
		if (nfd < 0 || nfd >= FNVM_MAX_FDS)
			return -EINVAL;
		nfd = fd_alloc(p, (int)nfd);
		if (nfd < 0)
			return nfd;
	} else {
		if (nfd < 0 || nfd >= FNVM_MAX_FDS)
			return -EBADF;
		if (old == nfd)
			return mode == 3 ? -EINVAL : nfd; /* dup3 refuses, dup2 is a no-op */
		if (p->fd_of[nfd] >= 0)
			fd_close(p, (int)nfd);
	}
	p->fd_of[nfd] = p->fd_of[old];
	of->refs++;
	p->fd_cloexec[nfd] = !!(flags & O_CLOEXEC);
	return nfd;
}

static void fill_stat(struct fnvm_proc *p, enum lookup_kind k, int idx, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = 1;
	st->st_nlink = 1;
	st->st_uid = FNVM_UID;
	st->st_gid = FNVM_GID;
	st->st_blksize = 4096;
	st->st_mtim.tv_sec = st->st_atim.tv_sec = st->st_ctim.tv_sec = (time_t)FNVM_EPOCH_S;
	switch (k) {
	case LK_ROOT:
	case LK_DIR:
		st->st_ino = k == LK_ROOT ? 2 : 3;
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case LK_STD:
		st->st_ino = 10 + (ino_t)idx;
		st->st_mode = S_IFIFO | 0600;
		break;
	case LK_CHAN: {
		struct fnvm_chan *c = &p->prog->chans[idx];
		st->st_ino = 100 + (ino_t)idx;
		st->st_mode = (c->seekable || c->mode == FNVM_CHAN_APPEND ? S_IFREG : S_IFIFO) |
			      (c->mode == FNVM_CHAN_READ ? 0444 : 0200);
		struct stat hs;
		if (c->seekable && fstat(c->fd, &hs) == 0)
			st->st_size = hs.st_size;
		else if (c->mode == FNVM_CHAN_APPEND)
			st->st_size = (off_t)p->chan_written[idx];
		st->st_blocks = (st->st_size + 511) / 512;
		break;
	}
	default:
		break;
	}
}

static int fd_kind(struct fnvm_proc *p, long fd, enum lookup_kind *k, int *idx)
{
	struct fnvm_ofile *of;
	int rc = fd_get(p, fd, &of);
	if (rc)
		return rc;
	if (of->kind == OF_CHAN) {
		*k = LK_CHAN;
		*idx = of->chan;
	} else {
		*k = LK_STD;
		*idx = of->kind == OF_STDIN ? 0 : of->kind == OF_STDOUT ? 1 : 2;
	}
	return 0;
}

/* stat family: fd (path_a == 0 or AT_EMPTY_PATH with "") or path. */
static int stat_target(struct fnvm_proc *p, long dirfd, uint64_t path_a, long flags,
		       enum lookup_kind *k, int *idx)
{
	char path[FNVM_PATH_MAX + 1];
	if (path_a) {
		int rc = copy_path(p, path_a, path);
		if (rc == -ENOENT && (flags & AT_EMPTY_PATH))
			return fd_kind(p, dirfd, k, idx);
		if (rc)
			return rc;
		int err;
		*k = path_lookup(p, (int)dirfd, path, idx, &err);
		return *k == LK_NONE ? err : 0;
	}
	return fd_kind(p, dirfd, k, idx);
}

/* The synthesized stat of what (dirfd, path or fd) names. */
static int stat_of(struct fnvm_proc *p, long dirfd, uint64_t path_a, long flags, struct stat *st)
{
	enum lookup_kind k;
	int idx = 0;
	int rc = stat_target(p, dirfd, path_a, flags, &k, &idx);
	if (!rc)
		fill_stat(p, k, idx, st);
	return rc;
}

static long sys_stat(struct fnvm_proc *p, long dirfd, uint64_t path_a, uint64_t buf, long flags)
{
	struct stat st;
	int rc = stat_of(p, dirfd, path_a, flags, &st);
	return rc ? rc : copy_out(p, buf, &st, sizeof(st));
}

static long sys_statx(struct fnvm_proc *p, long dirfd, uint64_t path_a, long flags, uint64_t buf)
{
	struct stat st;
	int rc = stat_of(p, dirfd, path_a, flags, &st);
	if (rc)
		return rc;
	struct statx sx;
	memset(&sx, 0, sizeof(sx));
	sx.stx_mask = STATX_BASIC_STATS;
	sx.stx_blksize = (uint32_t)st.st_blksize;
	sx.stx_nlink = (uint32_t)st.st_nlink;
	sx.stx_uid = st.st_uid;
	sx.stx_gid = st.st_gid;
	sx.stx_mode = (uint16_t)st.st_mode;
	sx.stx_ino = st.st_ino;
	sx.stx_size = (uint64_t)st.st_size;
	sx.stx_blocks = (uint64_t)st.st_blocks;
	sx.stx_atime.tv_sec = sx.stx_mtime.tv_sec = sx.stx_ctime.tv_sec = (int64_t)FNVM_EPOCH_S;
	sx.stx_dev_minor = 1;
	return copy_out(p, buf, &sx, sizeof(sx));
}

static long sys_access(struct fnvm_proc *p, long dirfd, uint64_t path_a, long mode)
{
	char path[FNVM_PATH_MAX + 1];
	int rc = copy_path(p, path_a, path);
	if (rc)
		return rc;
	int idx = 0, err;
	enum lookup_kind k = path_lookup(p, (int)dirfd, path, &idx, &err);
	if (k == LK_NONE)
		return err;
	if (mode & ~7)
		return -EINVAL;
	if (k == LK_CHAN) {
		const struct fnvm_chan *c = &p->prog->chans[idx];
		if ((mode & X_OK) || ((mode & W_OK) && c->mode == FNVM_CHAN_READ) ||
		    ((mode & R_OK) && c->mode != FNVM_CHAN_READ))
			return -EACCES;
	} else if ((k == LK_ROOT || k == LK_DIR) && (mode & W_OK)) {
		return -EACCES;
	}
	return 0;
}

static long sys_lseek(struct fnvm_proc *p, long fd, int64_t off, long whence)
{
	struct fnvm_ofile *of;
	int rc = fd_get(p, fd, &of);
	if (rc)
		return rc;
	if (of->kind != OF_CHAN || !p->prog->chans[of->chan].seekable)
		return -ESPIPE;
	int64_t base;
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = (int64_t)of->off;
		break;
	case SEEK_END: {
		struct stat hs;
		if (fstat(p->prog->chans[of->chan].fd, &hs) < 0)
			return -errno;
		base = hs.st_size;
		break;
	}
	default:
		return -EINVAL;
	}
	int64_t r;
	if (__builtin_add_overflow(base, off, &r) || r < 0)
		return -EINVAL;
	of->off = (uint64_t)r;
	return r;
}

static long sys_fcntl(struct fnvm_proc *p, long fd, long cmd, uint64_t arg)
{
	struct fnvm_ofile *of;
	int rc = fd_get(p, fd, &of);
	if (rc)
		return rc;
	switch (cmd) {
	case F_DUPFD:
		return sys_dup3(p, fd, (long)arg, 0, 0);
	case F_DUPFD_CLOEXEC:
		return sys_dup3(p, fd, (long)arg, O_CLOEXEC, 0);
	case F_GETFD:
		return p->fd_cloexec[fd] ? FD_CLOEXEC : 0;
	case F_SETFD:
		p->fd_cloexec[fd] = !!(arg & FD_CLOEXEC);
		return 0;
	case F_GETFL:
		return of->accmode | of->status_flags;
	case F_SETFL:
		of->status_flags = (int)(arg & (O_APPEND | O_NONBLOCK));
		return 0;
	case F_GETLK: {
		struct flock fl;
		if (copy_in(p, &fl, arg, sizeof(fl)))
			return -EFAULT;
		fl.l_type = F_UNLCK; /* one process: nobody else holds a lock */
		return copy_out(p, arg, &fl, sizeof(fl));
	}
	case F_SETLK:
	case F_SETLKW:
		return 0;
	default:
		return -EINVAL;
	}
}

/* ------------------------------------------------------------------ time */

static int clock_kind(long clk)
{
	switch (clk) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_REALTIME_ALARM:
	case CLOCK_TAI:
		return 1;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
	case CLOCK_BOOTTIME_ALARM:
	case CLOCK_PROCESS_CPUTIME_ID:
	case CLOCK_THREAD_CPUTIME_ID:
		return 0;
	default:
		return -1;
	}
}

static uint64_t clock_ns(struct fnvm_proc *p, int realtime)
{
	return p->vclock_ns + (realtime ? FNVM_EPOCH_S * 1000000000ull : 0);
}

static long sys_clock_gettime(struct fnvm_proc *p, long clk, uint64_t tsa)
{
	int k = clock_kind(clk);
	if (k < 0)
		return -EINVAL;
	uint64_t ns = clock_ns(p, k);
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};
	return copy_out(p, tsa, &ts, sizeof(ts));
}

static int get_timespec(struct fnvm_proc *p, uint64_t a, uint64_t *ns)
{
	struct timespec ts;
	if (copy_in(p, &ts, a, sizeof(ts)))
		return -EFAULT;
	if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L)
		return -EINVAL;
	if ((uint64_t)ts.tv_sec > 100ull * 365 * 86400)
		ts.tv_sec = 100l * 365 * 86400; /* a century is forever enough */
	*ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return 0;
}

static long sys_clock_nanosleep(struct fnvm_proc *p, long clk, long flags, uint64_t req)
{
	int k = clock_kind(clk);
	if (k < 0 || clk == CLOCK_THREAD_CPUTIME_ID)
		return -EINVAL;
	uint64_t ns;
	int rc = get_timespec(p, req, &ns);
	if (rc)
		return rc;
	if (flags & TIMER_ABSTIME) {
		uint64_t now = clock_ns(p, k);
		if (ns > now)
			p->vclock_ns += ns - now;
	} else {
		p->vclock_ns += ns;
	}
	return 0;
}

/* ---------------------------------------------------------------- misc */

static long sys_uname(struct fnvm_proc *p, uint64_t a)
{
	struct utsname u;
	memset(&u, 0, sizeof(u));
	strcpy(u.sysname, "Linux");
	strcpy(u.nodename, "nubis");
	strcpy(u.release, "6.1.0-nubis");
	strcpy(u.version, "#1 SMP nubis function VM");
	strcpy(u.machine, "x86_64");
	strcpy(u.domainname, "(none)");
	return copy_out(p, a, &u, sizeof(u));
}

static long rlimit_of(struct fnvm_proc *p, long res, struct rlimit *r)
{
	r->rlim_cur = r->rlim_max = RLIM_INFINITY;
	switch (res) {
	case RLIMIT_STACK:
		r->rlim_cur = r->rlim_max = p->prog->cfg.mem_size - p->prog->stack_lo;
		break;
	case RLIMIT_NOFILE:
		r->rlim_cur = r->rlim_max = FNVM_MAX_FDS;
		break;
	case RLIMIT_AS:
	case RLIMIT_DATA:
		r->rlim_cur = r->rlim_max = p->prog->cfg.mem_size;
		break;
	case RLIMIT_CORE:
		r->rlim_cur = r->rlim_max = 0;
		break;
	case RLIMIT_NPROC:
		r->rlim_cur = r->rlim_max = 1;
		break;
	default:
		if (res < 0 || res >= RLIM_NLIMITS)
			return -EINVAL;
	}
	return 0;
}

static long sys_prlimit(struct fnvm_proc *p, long pid, long res, uint64_t new_a, uint64_t old_a)
{
	if (pid != 0 && pid != FNVM_PID)
		return -ESRCH;
	struct rlimit r;
	long rc = rlimit_of(p, res, &r);
	if (rc)
		return rc;
	if (new_a) {
		struct rlimit n;
		if (copy_in(p, &n, new_a, sizeof(n)))
			return -EFAULT;
		if (n.rlim_cur > n.rlim_max)
			return -EINVAL;
		/* accepted, not applied: the monitor's limits are fixed per request */
	}
	return old_a ? copy_out(p, old_a, &r, sizeof(r)) : 0;
}

#define SIGBIT(sig) (1ull << ((sig)-1))

static uint64_t sig_handler(const struct fnvm_proc *p, int sig)
{
	uint64_t h;
	memcpy(&h, p->sigact[sig - 1], 8);
	return h;
}

/* Act on signal @sig for the program: ignore it, or end the run. Function
 * VMs do not run signal handlers (service VMs do). */
static void sig_act(struct fnvm_proc *p, int sig)
{
	uint64_t h = sig_handler(p, sig);
	if (sig != SIGKILL && sig != SIGSTOP && h == (uint64_t)(uintptr_t)SIG_IGN)
		return;
	if (h == (uint64_t)(uintptr_t)SIG_DFL) {
		switch (sig) {
		case SIGCHLD:
		case SIGURG:
		case SIGWINCH:
		case SIGCONT:
			return; /* default action: ignore */
		}
		fnvm_proc_end(p, FNVM_SIGNALED, sig, "killed by signal %d (%s) it raised itself",
			      sig, strsignal(sig));
		return;
	}
	fnvm_proc_end(p, FNVM_SIGNALED, sig,
		      "killed by signal %d (%s): it has a handler, but function VMs do not run "
		      "signal handlers",
		      sig, strsignal(sig));
}

/* Deliver the lowest pending signal that is no longer blocked. */
static void sig_deliver_pending(struct fnvm_proc *p)
{
	uint64_t ready = p->sigpending & ~p->sigmask;
	if (!ready)
		return;
	int sig = __builtin_ctzll(ready) + 1;
	p->sigpending &= ~SIGBIT(sig);
	sig_act(p, sig);
}

static long sys_kill_self(struct fnvm_proc *p, long sig)
{
	if (sig < 0 || sig > 64)
		return -EINVAL;
	if (sig == 0)
		return 0;
	if (sig != SIGKILL && sig != SIGSTOP && (p->sigmask & SIGBIT(sig))) {
		if (sig_handler(p, (int)sig) != (uint64_t)(uintptr_t)SIG_IGN)
			p->sigpending |= SIGBIT(sig); /* delivered when unblocked */
		return 0;
	}
	sig_act(p, (int)sig);
	return 0;
}

static long sys_futex(struct fnvm_proc *p, uint64_t ua, long op, uint32_t val, uint64_t ts_a)
{
	int cmd = (int)(op & FUTEX_CMD_MASK);
	switch (cmd) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET: {
		uint32_t cur;
		if (ua & 3)
			return -EINVAL;
		if (copy_in(p, &cur, ua, 4))
			return -EFAULT;
		if (cur != val)
			return -EAGAIN;
		if (ts_a) {
			uint64_t ns;
			int rc = get_timespec(p, ts_a, &ns);
			if (rc)
				return rc;
			if (cmd == FUTEX_WAIT_BITSET) {
				uint64_t now = clock_ns(p, !!(op & FUTEX_CLOCK_REALTIME));
				if (ns > now)
					p->vclock_ns += ns - now;
			} else {
				p->vclock_ns += ns;
			}
			return -ETIMEDOUT;
		}
		fnvm_proc_end(p, FNVM_DEADLOCK, FNVM_STATUS_DEADLOCK,
			      "deadlock: futex wait at %#llx with no other thread to wake it",
			      (unsigned long long)ua);
		return -EDEADLK;
	}
	case FUTEX_WAKE:
	case FUTEX_WAKE_BITSET:
	case FUTEX_REQUEUE:
	case FUTEX_CMP_REQUEUE:
	case FUTEX_WAKE_OP:
		return 0;
	default:
		return -ENOSYS;
	}
}

static int set_seg_base(struct fnvm_proc *p, uint32_t msr, uint64_t base)
{
	if (base >= (1ull << 47))
		return -EPERM;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = msr;
	m.e.data = base;
	if (ioctl(p->vmh->cpu->fd, KVM_SET_MSRS, &m) != 1)
		return -EINVAL;
	return 0;
}

static long sys_arch_prctl(struct fnvm_proc *p, long code, uint64_t addr)
{
	switch (code) {
	case ARCH_SET_FS: {
		int rc = set_seg_base(p, 0xc0000100u, addr);
		if (!rc)
			p->fs_base = addr;
		return rc;
	}
	case ARCH_GET_FS:
		return copy_out(p, addr, &p->fs_base, 8);
	case ARCH_SET_GS:
		return set_seg_base(p, 0xc0000101u, addr);
	default:
		return -EINVAL;
	}
}

static long sys_getrandom(struct fnvm_proc *p, uint64_t a, uint64_t n, long flags)
{
	if (flags & ~(long)(GRND_NONBLOCK | GRND_RANDOM | 4 /* GRND_INSECURE */))
		return -EINVAL;
	if (n > 33554431)
		n = 33554431;
	uint8_t *d = uptr(p, a, n);
	if (!d)
		return -EFAULT;
	for (uint64_t i = 0; i < n; i += 8) {
		uint64_t r = fnvm_rng_next(p->rng);
		memcpy(d + i, &r, n - i < 8 ? n - i : 8);
	}
	return (long)n;
}

static long sys_sigaction(struct fnvm_proc *p, long sig, uint64_t act, uint64_t oact, long setsize)
{
	if (setsize != 8 || sig < 1 || sig > 64)
		return -EINVAL;
	if (act && (sig == SIGKILL || sig == SIGSTOP))
		return -EINVAL;
	uint8_t old[32];
	memcpy(old, p->sigact[sig - 1], sizeof(old));
	if (act) {
		if (copy_in(p, p->sigact[sig - 1], act, 32))
			return -EFAULT;
		if (sig_handler(p, (int)sig) == (uint64_t)(uintptr_t)SIG_IGN)
			p->sigpending &= ~SIGBIT(sig);
	}
	return oact ? copy_out(p, oact, old, sizeof(old)) : 0;
}

static long sys_sigprocmask(struct fnvm_proc *p, long how, uint64_t set_a, uint64_t old_a,
			    long setsize)
{
	if (setsize != 8)
		return -EINVAL;
	uint64_t old = p->sigmask;
	if (set_a) {
		uint64_t set;
		if (copy_in(p, &set, set_a, 8))
			return -EFAULT;
		set &= ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
		switch (how) {
		case SIG_BLOCK:
			p->sigmask |= set;
			break;
		case SIG_UNBLOCK:
			p->sigmask &= ~set;
			break;
		case SIG_SETMASK:
			p->sigmask = set;
			break;
		default:
			return -EINVAL;
		}
	}
	if (old_a && copy_out(p, old_a, &old, 8))
		return -EFAULT;
	sig_deliver_pending(p);
	return 0;
}

/* ------------------------------------------------------------- dispatch */

void fnvm_proc_end(struct fnvm_proc *p, enum fnvm_outcome o, int code, const char *fmt, ...)
{
	if (p->done)
		return;
	p->done = 1;
	struct fnvm_result *r = p->res;
	r->outcome = o;
	r->message[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->message, sizeof(r->message), fmt, ap);
		va_end(ap);
	}
	switch (o) {
	case FNVM_EXITED:
		r->exit_code = code & 0xff;
		r->status = r->exit_code;
		break;
	case FNVM_SIGNALED:
		r->signal = code;
		r->status = 128 + code;
		break;
	default:
		r->status = code;
		break;
	}
}

int fnvm_proc_init(struct fnvm_proc *p, struct fnvm_program *prog, struct fnvm_vm *vmh,
		   struct fnvm_stdio *io, struct fnvm_result *res)
{
	memset(p, 0, sizeof(*p));
	p->prog = prog;
	p->vmh = vmh;
	p->mem = &vmh->vm->mem;
	p->io = io;
	p->res = res;
	p->vmas = malloc(FNVM_MAX_VMAS * sizeof(*p->vmas));
	p->chan_written = calloc(prog->nchans + 1, sizeof(uint64_t));
	if (!p->vmas || !p->chan_written) {
		fnvm_proc_fini(p);
		return -ENOMEM;
	}
	for (int i = 0; i < FNVM_MAX_FDS; i++)
		p->fd_of[i] = -1;
	static const enum fnvm_ofile_kind std[3] = {OF_STDIN, OF_STDOUT, OF_STDERR};
	for (int i = 0; i < 3; i++) {
		p->ofiles[i] = (struct fnvm_ofile){
		    .kind = std[i], .accmode = i ? O_WRONLY : O_RDONLY, .refs = 1};
		p->fd_of[i] = i;
	}
	p->brk_cur = prog->brk_start;
	strcpy(p->cwd, "/");
	fnvm_rng_seed(p->rng, prog->cfg.seed);
	return 0;
}

void fnvm_proc_fini(struct fnvm_proc *p)
{
	free(p->vmas);
	free(p->chan_written);
	p->vmas = NULL;
	p->chan_written = NULL;
}

static long dispatch(struct fnvm_proc *p, uint64_t nr, const struct kvm_regs *r)
{
	uint64_t a0 = r->rdi, a1 = r->rsi, a2 = r->rdx, a3 = r->r10, a4 = r->r8, a5 = r->r9;
	long i0 = (long)a0, i1 = (long)a1, i2 = (long)a2, i3 = (long)a3;
	switch (nr) {
	case SYS_read:
		return sys_rw(p, 0, i0, a1, a2, -1);
	case SYS_write:
		return sys_rw(p, 1, i0, a1, a2, -1);
	case SYS_pread64:
		return i3 < 0 ? -EINVAL : sys_rw(p, 0, i0, a1, a2, i3);
	case SYS_pwrite64:
		return i3 < 0 ? -EINVAL : sys_rw(p, 1, i0, a1, a2, i3);
	case SYS_readv:
		return sys_rwv(p, 0, i0, a1, i2, -1);
	case SYS_writev:
		return sys_rwv(p, 1, i0, a1, i2, -1);
	case SYS_preadv:
		return i3 < 0 ? -EINVAL : sys_rwv(p, 0, i0, a1, i2, i3);
	case SYS_pwritev:
		return i3 < 0 ? -EINVAL : sys_rwv(p, 1, i0, a1, i2, i3);
	case SYS_open:
		return sys_openat(p, AT_FDCWD, a0, i1);
	case SYS_openat:
		return sys_openat(p, i0, a1, i2);
	case SYS_creat:
		return sys_openat(p, AT_FDCWD, a0, O_CREAT | O_WRONLY | O_TRUNC);
	case SYS_close: {
		struct fnvm_ofile *of;
		int rc = fd_get(p, i0, &of);
		if (!rc)
			fd_close(p, (int)i0);
		return rc;
	}
	case SYS_dup:
		return sys_dup3(p, i0, 0, 0, 0);
	case SYS_dup2:
		return sys_dup3(p, i0, i1, 0, 2);
	case SYS_dup3:
		return (i2 & ~O_CLOEXEC) ? -EINVAL : sys_dup3(p, i0, i1, i2, 3);
	case SYS_fcntl:
		return sys_fcntl(p, i0, i1, a2);
	case SYS_lseek:
		return sys_lseek(p, i0, (int64_t)a1, i2);
	case SYS_fstat:
		return sys_stat(p, i0, 0, a1, 0);
	case SYS_stat:
	case SYS_lstat:
		return sys_stat(p, AT_FDCWD, a0, a1, 0);
	case SYS_newfstatat:
		return sys_stat(p, i0, a1, a2, i3);
	case SYS_statx:
		return sys_statx(p, i0, a1, i2, a4);
	case SYS_access:
		return sys_access(p, AT_FDCWD, a0, i1);
	case SYS_faccessat:
	case SYS_faccessat2:
		return sys_access(p, i0, a1, i2);
	case SYS_ioctl: {
		struct fnvm_ofile *of;
		int rc = fd_get(p, i0, &of);
		return rc ? rc : -ENOTTY;
	}
	case SYS_getcwd: {
		uint64_t len = strlen(p->cwd) + 1;
		if (a1 < len)
			return -ERANGE;
		return copy_out(p, a0, p->cwd, len) ? -EFAULT : (long)len;
	}
	case SYS_chdir: {
		char path[FNVM_PATH_MAX + 1];
		int idx, err, rc = copy_path(p, a0, path);
		if (rc)
			return rc;
		enum lookup_kind k = path_lookup(p, AT_FDCWD, path, &idx, &err);
		if (k == LK_ROOT || k == LK_DIR) {
			strcpy(p->cwd, k == LK_ROOT ? "/" : "/dev");
			return 0;
		}
		return k == LK_NONE ? err : -ENOTDIR;
	}
	case SYS_fchdir: {
		struct fnvm_ofile *of;
		return fd_get(p, i0, &of) ? -EBADF : -ENOTDIR;
	}
	case SYS_readlink:
	case SYS_readlinkat:
		return -ENOENT;
	case SYS_umask:
		return 022;

	case SYS_brk:
		return sys_brk(p, a0);
	case SYS_mmap:
		return sys_mmap(p, a0, a1, (int)a2, (int)a3, (int)a4, a5);
	case SYS_munmap:
		return sys_munmap(p, a0, a1);
	case SYS_mremap:
		return sys_mremap(p, a0, a1, a2, (int)a3, a4);
	case SYS_mprotect:
		if (a0 & (FNVM_PAGE - 1))
			return -EINVAL;
		return (a0 >= UVM_USER_BASE && a0 + PAGE_UP(a1) >= a0 &&
			a0 + PAGE_UP(a1) <= gmem_end(p->mem))
			   ? 0
			   : -ENOMEM;
	case SYS_madvise:
		return sys_madvise(p, a0, a1, i2);
	case SYS_mlock:
	case SYS_munlock:
	case SYS_mlockall:
	case SYS_munlockall:
		return 0;

	case SYS_exit:
	case SYS_exit_group:
		fnvm_proc_end(p, FNVM_EXITED, (int)a0, NULL);
		return 0;
	case SYS_arch_prctl:
		return sys_arch_prctl(p, i0, a1);
	case SYS_set_tid_address:
		p->tid_address = a0;
		return FNVM_PID;
	case SYS_set_robust_list:
		return a1 == 24 ? 0 : -EINVAL;
	case SYS_getpid:
	case SYS_gettid:
	case SYS_getpgrp:
	case SYS_getsid:
	case SYS_getpgid:
		return FNVM_PID;
	case SYS_getppid:
		return FNVM_PPID;
	case SYS_getuid:
	case SYS_geteuid:
		return FNVM_UID;
	case SYS_getgid:
	case SYS_getegid:
		return FNVM_GID;
	case SYS_uname:
		return sys_uname(p, a0);
	case SYS_prlimit64:
		return sys_prlimit(p, i0, i1, a2, a3);
	case SYS_getrlimit:
		return sys_prlimit(p, 0, i0, 0, a1);
	case SYS_setrlimit:
		return sys_prlimit(p, 0, i0, a1, 0);
	case SYS_rt_sigaction:
		return sys_sigaction(p, i0, a1, a2, i3);
	case SYS_rt_sigprocmask:
		return sys_sigprocmask(p, i0, a1, a2, i3);
	case SYS_sigaltstack:
		if (a1) {
			stack_t ss = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
			return copy_out(p, a1, &ss, sizeof(ss));
		}
		return 0;
	case SYS_kill:
		return (i0 == FNVM_PID || i0 == 0 || i0 == -1) ? sys_kill_self(p, i1) : -ESRCH;
	case SYS_tkill:
		return i0 == FNVM_PID ? sys_kill_self(p, i1) : -ESRCH;
	case SYS_tgkill:
		return (i0 == FNVM_PID && i1 == FNVM_PID) ? sys_kill_self(p, i2) : -ESRCH;
	case SYS_sched_yield:
		return 0;
	case SYS_sched_getaffinity: {
		if (a1 < 8 || (a1 & 7))
			return -EINVAL;
		uint64_t mask = 1;
		return copy_out(p, a2, &mask, 8) ? -EFAULT : 8;
	}
	case SYS_futex:
		return sys_futex(p, a0, i1, (uint32_t)a2, a3);

	case SYS_clock_gettime:
		return sys_clock_gettime(p, i0, a1);
	case SYS_clock_getres: {
		if (clock_kind(i0) < 0)
			return -EINVAL;
		struct timespec ts = {0, 1};
		return a1 ? copy_out(p, a1, &ts, sizeof(ts)) : 0;
	}
	case SYS_gettimeofday: {
		if (a0) {
			uint64_t ns = clock_ns(p, 1);
			struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000ull),
					     .tv_usec = (suseconds_t)(ns % 1000000000ull / 1000)};
			if (copy_out(p, a0, &tv, sizeof(tv)))
				return -EFAULT;
		}
		if (a1) {
			uint64_t tz = 0;
			if (copy_out(p, a1, &tz, 8))
				return -EFAULT;
		}
		return 0;
	}
	case SYS_time: {
		int64_t t = (int64_t)(clock_ns(p, 1) / 1000000000ull);
		if (a0 && copy_out(p, a0, &t, 8))
			return -EFAULT;
		return t;
	}
	case SYS_nanosleep:
		return sys_clock_nanosleep(p, CLOCK_MONOTONIC, 0, a0);
	case SYS_clock_nanosleep:
		return sys_clock_nanosleep(p, i0, i1, a2);
	case SYS_getrandom:
		return sys_getrandom(p, a0, a1, i2);
	case SYS_rseq:
	default:
		return -ENOSYS;
	}
}

void fnvm_syscall(struct fnvm_proc *p, struct kvm_regs *regs)
{
	uint64_t nr = regs->rax;
	p->vclock_ns += FNVM_TICK_NS;
	long ret = dispatch(p, nr, regs);
	struct fnvm_result *res = p->res;
	if (res->counts) {
		uint64_t slot = nr < FNVM_NSYSCALLS ? nr : FNVM_NSYSCALLS - 1;
		res->counts[slot]++;
		if (ret == -ENOSYS)
			res->enosys[slot]++;
	}
	regs->rax = (uint64_t)ret;
}
