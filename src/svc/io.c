/* SPDX-License-Identifier: MIT */
/*
 * Reading and writing for service VMs: the read/write family, lseek, ioctl,
 * pipes, poll/ppoll/select/pselect6, epoll, eventfd, timerfd, sendfile and
 * copy_file_range. Every host fd is non-blocking (except a standard stream
 * shared with the caller, see struct svc_stdio); a guest call that should
 * block waits in svc_wait_fds(), so signals and stop interrupt it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"

#define IOV_MAX_GUEST 1024
#define RW_MAX	      0x7ffff000ul /* Linux's MAX_RW_COUNT */
#define COPY_CHUNK    65536
#define KTERMIOS_SIZE 36 /* struct termios of the kernel (TCGETS) */
#define EPOLL_EV_SIZE 12 /* struct epoll_event, packed on x86-64 */

static struct svc_vm *tvm(struct svc_thread *t)
{
	return svc_thread_vm(t);
}

/* Kinds whose host operations may say EAGAIN (waited for in the monitor). */
static bool can_block(const struct svc_file *f)
{
	return f->kind == SVC_F_STDIO || f->kind == SVC_F_PIPE || f->kind == SVC_F_SOCKET ||
	       f->kind == SVC_F_EVENTFD || f->kind == SVC_F_TIMERFD;
}

static int64_t ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		return -2;
	if (ts->tv_sec > INT64_MAX / 1000000000 - 1)
		return -1;
	return ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int wait_one(struct svc_thread *t, int fd, short ev, int64_t timeout_ns)
{
	struct pollfd p = {fd, ev, 0};
	return svc_wait_fds(t, &p, 1, timeout_ns);
}

/* ---------------------------------------------------------- read/write */

static uint64_t iov_total(const struct iovec *iov, int n)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += iov[i].iov_len;
	return s;
}

/* Drop @n bytes from the front of (*iov, *cnt). */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0 && n) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

/* Cut (iov, cnt) to @max bytes; returns the new count. */
static int iov_cut(struct iovec *iov, int cnt, uint64_t max)
{
	uint64_t s = 0;
	for (int i = 0; i < cnt; i++) {
		if (s + iov[i].iov_len >= max) {
			iov[i].iov_len = max - s;
			return i + 1;
		}
		s += iov[i].iov_len;
	}
	return cnt;
}

static long host_rw(struct svc_file *f, bool wr, struct iovec *iov, int cnt, int64_t off)
{
	ssize_t n;
	const struct svc_stdio *sp = f->kind == SVC_F_STDIO ? f->priv : NULL;
	if ((sp && sp->sock) || f->kind == SVC_F_SOCKET) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		n = wr ? sendmsg(f->host_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL)
		       : recvmsg(f->host_fd, &m, MSG_DONTWAIT);
	} else if (off >= 0) {
		n = wr ? pwritev(f->host_fd, iov, cnt, off) : preadv(f->host_fd, iov, cnt, off);
	} else {
		n = wr ? writev(f->host_fd, iov, cnt) : readv(f->host_fd, iov, cnt);
	}
	return n < 0 ? -errno : n;
}

/* Read or write for the guest; @iov holds host pointers (validated). */
static long rw_iov(struct svc_thread *t, struct svc_file *f, bool wr, struct iovec *iov, int cnt,
		   int64_t off)
{
	if (f->accmode == O_PATH)
		return -EBADF;
	if (wr ? f->accmode == O_RDONLY : f->accmode == O_WRONLY)
		return -EBADF;
	if (f->kind == SVC_F_DIR)
		return wr ? -EBADF : -EISDIR;
	if (f->kind == SVC_F_EPOLL)
		return -EINVAL;
	uint64_t total = iov_total(iov, cnt);
	if (total > RW_MAX)
		cnt = iov_cut(iov, cnt, total = RW_MAX);
	if (off >= 0 && can_block(f))
		return -ESPIPE;
	if (!can_block(f)) {
		struct vfs *v = svc_vm_fs(tvm(t))->vfs;
		struct vfs_file *vf = svc_fsfile_vf(f);
		if (!(wr && vf && vfs_quota_applies(v, vf)) || total == 0)
			return host_rw(f, wr, iov, cnt, off);
		uint64_t start = (uint64_t)off, tok, len = total;
		if (off < 0) {
			struct stat st;
			off_t cur = lseek(f->host_fd, 0, SEEK_CUR);
			if (cur < 0 || fstat(f->host_fd, &st) < 0)
				return -errno;
			start = (f->status_flags & O_APPEND) ? (uint64_t)st.st_size : (uint64_t)cur;
		}
		int err = vfs_quota_begin(v, f->host_fd, start, &len, &tok);
		if (err)
			return err;
		cnt = iov_cut(iov, cnt, len);
		long n = host_rw(f, wr, iov, cnt, off);
		vfs_quota_end(v, f->host_fd, tok);
		return n;
	}
	const struct svc_stdio *sp = f->kind == SVC_F_STDIO ? f->priv : NULL;
	bool nonblock = f->status_flags & O_NONBLOCK;
	short ev = wr ? POLLOUT : POLLIN;
	long done = 0;
	for (;;) {
		long n;
		if (sp && sp->host_blocking && !sp->sock) {
			/* shared blocking description: only call when poll says ready */
			int w = wait_one(t, f->host_fd, ev, nonblock ? 0 : -1);
			if (w < 0)
				return done ? done : w;
			if (w == 0)
				return done ? done : -EAGAIN;
		}
		n = host_rw(f, wr, iov, cnt, -1);
		if (n >= 0) {
			done += n;
			/* a blocking write (pipe, socket) goes on until all is written */
			if (!wr || nonblock || n == 0 || (uint64_t)done >= total)
				return done;
			iov_advance(&iov, &cnt, (size_t)n);
			continue;
		}
		if (n == -EPIPE && wr) {
			svc_signal_thread(t, SIGPIPE);
			return done ? done : n;
		}
		if (n != -EAGAIN || nonblock)
			return done ? done : n;
		int w = wait_one(t, f->host_fd, ev, -1);
		if (w < 0)
			return done ? done : w;
	}
}

long svc_io_read(struct svc_thread *t, struct svc_file *f, void *buf, size_t len, int64_t off)
{
	struct iovec iov = {buf, len};
	return rw_iov(t, f, false, &iov, 1, off);
}

long svc_io_write(struct svc_thread *t, struct svc_file *f, const void *buf, size_t len,
		  int64_t off)
{
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	return rw_iov(t, f, true, &iov, 1, off);
}

static long do_rw(struct svc_thread *t, int fd, bool wr, uint64_t gbuf, uint64_t len, int64_t off)
{
	struct svc_file *f = svc_fd_get(tvm(t), fd);
	if (!f)
		return -EBADF;
	if (len > RW_MAX)
		len = RW_MAX;
	void *p = len ? svc_uptr(t, gbuf, len) : NULL;
	long r;
	if (len && !p)
		r = -EFAULT;
	else
		r = wr ? svc_io_write(t, f, p, len, off) : svc_io_read(t, f, p, len, off);
	svc_file_put(f);
	return r;
}

static long sys_read(struct svc_thread *t, const uint64_t a[6])
{
	return do_rw(t, (int)a[0], false, a[1], a[2], -1);
}

static long sys_write(struct svc_thread *t, const uint64_t a[6])
{
	return do_rw(t, (int)a[0], true, a[1], a[2], -1);
}

static long sys_pread64(struct svc_thread *t, const uint64_t a[6])
{
	if ((int64_t)a[3] < 0)
		return -EINVAL;
	return do_rw(t, (int)a[0], false, a[1], a[2], (int64_t)a[3]);
}

static long sys_pwrite64(struct svc_thread *t, const uint64_t a[6])
{
	if ((int64_t)a[3] < 0)
		return -EINVAL;
	return do_rw(t, (int)a[0], true, a[1], a[2], (int64_t)a[3]);
}

/* Guest iovec array -> host iovecs. */
static int iov_in(struct svc_thread *t, uint64_t giov, uint64_t cnt, struct iovec *out)
{
	if (cnt > IOV_MAX_GUEST)
		return -EINVAL;
	if (cnt == 0)
		return 0;
	struct {
		uint64_t base, len;
	} g[IOV_MAX_GUEST];
	int err = svc_copy_in(t, g, giov, cnt * sizeof(g[0]));
	if (err)
		return err;
	uint64_t total = 0;
	for (uint64_t i = 0; i < cnt; i++) {
		if (g[i].len > (uint64_t)SSIZE_MAX ||
		    __builtin_add_overflow(total, g[i].len, &total) || total > (uint64_t)SSIZE_MAX)
			return -EINVAL;
		out[i].iov_len = g[i].len;
		out[i].iov_base = g[i].len ? svc_uptr(t, g[i].base, g[i].len) : NULL;
		if (g[i].len && !out[i].iov_base)
			return -EFAULT;
	}
	return (int)cnt;
}

static long do_rwv(struct svc_thread *t, int fd, bool wr, uint64_t giov, uint64_t cnt, int64_t off)
{
	struct iovec iov[IOV_MAX_GUEST];
	int n = iov_in(t, giov, cnt, iov);
	if (n < 0)
		return n;
	struct svc_file *f = svc_fd_get(tvm(t), fd);
	if (!f)
		return -EBADF;
	long r = rw_iov(t, f, wr, iov, n, off);
	svc_file_put(f);
	return r;
}

static long sys_readv(struct svc_thread *t, const uint64_t a[6])
{
	return do_rwv(t, (int)a[0], false, a[1], a[2], -1);
}

static long sys_writev(struct svc_thread *t, const uint64_t a[6])
{
	return do_rwv(t, (int)a[0], true, a[1], a[2], -1);
}

static long sys_preadv(struct svc_thread *t, const uint64_t a[6])
{
	if ((int64_t)a[3] < 0)
		return -EINVAL;
	return do_rwv(t, (int)a[0], false, a[1], a[2], (int64_t)a[3]);
}

static long sys_pwritev(struct svc_thread *t, const uint64_t a[6])
{
	if ((int64_t)a[3] < 0)
		return -EINVAL;
	return do_rwv(t, (int)a[0], true, a[1], a[2], (int64_t)a[3]);
}

static long sys_preadv2(struct svc_thread *t, const uint64_t a[6])
{
	if ((int64_t)a[3] < -1 || (a[5] & ~(uint64_t)(RWF_HIPRI | RWF_DSYNC | RWF_SYNC)))
		return (a[5] & RWF_NOWAIT) ? -EOPNOTSUPP : -EINVAL;
	return do_rwv(t, (int)a[0], false, a[1], a[2], (int64_t)a[3]);
}

static long sys_pwritev2(struct svc_thread *t, const uint64_t a[6])
{
	if ((int64_t)a[3] < -1 || (a[5] & ~(uint64_t)(RWF_HIPRI | RWF_DSYNC | RWF_SYNC)))
		return (a[5] & RWF_NOWAIT) ? -EOPNOTSUPP : -EINVAL;
	return do_rwv(t, (int)a[0], true, a[1], a[2], (int64_t)a[3]);
}

static long sys_lseek(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f = svc_fd_get(tvm(t), (int)a[0]);
	if (!f)
		return -EBADF;
	long r;
	int whence = (int)a[2];
	if (f->accmode == O_PATH)
		r = -EBADF;
	else if (f->kind == SVC_F_DIR)
		r = svc_fs_dir_seek(f, (int64_t)a[1], whence);
	else if (f->kind != SVC_F_FILE && f->kind != SVC_F_STDIO)
		r = -ESPIPE;
	else if (whence < SEEK_SET || whence > SEEK_HOLE)
		r = -EINVAL;
	else {
		off_t o = lseek(f->host_fd, (off_t)a[1], whence);
		r = o < 0 ? -errno : (long)o;
	}
	svc_file_put(f);
	return r;
}

/* ---------------------------------------------------------- ioctl */

static long sys_ioctl(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = tvm(t);
	int fd = (int)a[0];
	unsigned long req = (unsigned)a[1];
	struct svc_file *f = svc_fd_get(vm, fd);
	if (!f)
		return -EBADF;
	long r = -ENOTTY;
	int v;
	bool tty = f->kind == SVC_F_STDIO && isatty(f->host_fd);
	if (f->accmode == O_PATH) {
		r = -EBADF;
		goto out;
	}
	switch (req) {
	case FIONBIO:
		if ((r = svc_copy_in(t, &v, a[2], sizeof(v))))
			break;
		if (v)
			__atomic_or_fetch(&f->status_flags, O_NONBLOCK, __ATOMIC_RELAXED);
		else
			__atomic_and_fetch(&f->status_flags, ~O_NONBLOCK, __ATOMIC_RELAXED);
		r = 0;
		break;
	case FIOCLEX:
	case FIONCLEX:
		r = svc_fdtab_cloexec(vm, fd, req == FIOCLEX);
		r = r < 0 ? r : 0;
		break;
	case FIONREAD: {
		struct vfs_file *vf = svc_fsfile_vf(f);
		if (f->kind == SVC_F_DIR) {
			r = -EINVAL;
			break;
		}
		if (vf && vf->type != VFS_FT_DEV) {
			struct stat st;
			off_t pos = lseek(f->host_fd, 0, SEEK_CUR);
			if (pos < 0 || fstat(f->host_fd, &st) < 0) {
				r = -errno;
				break;
			}
			v = st.st_size > pos
				? (int)(st.st_size - pos > INT_MAX ? INT_MAX : st.st_size - pos)
				: 0;
		} else if (ioctl(f->host_fd, FIONREAD, &v) < 0) {
			r = -errno;
			break;
		}
		r = svc_copy_out(t, a[2], &v, sizeof(v));
		break;
	}
	case TCGETS: {
		uint8_t kt[64];
		if (!tty)
			break;
		if (ioctl(f->host_fd, TCGETS, kt) < 0) {
			r = -errno;
			break;
		}
		r = svc_copy_out(t, a[2], kt, KTERMIOS_SIZE);
		break;
	}
	case TCSETS:
	case TCSETSW:
	case TCSETSF: {
		uint8_t kt[64] = {0};
		if (!tty)
			break;
		if ((r = svc_copy_in(t, kt, a[2], KTERMIOS_SIZE)))
			break;
		r = ioctl(f->host_fd, req, kt) < 0 ? -errno : 0;
		break;
	}
	case TIOCGWINSZ: {
		struct winsize ws;
		if (!tty)
			break;
		if (ioctl(f->host_fd, TIOCGWINSZ, &ws) < 0) {
			r = -errno;
			break;
		}
		r = svc_copy_out(t, a[2], &ws, sizeof(ws));
		break;
	}
	case SIOCATMARK:
		if (f->kind != SVC_F_SOCKET)
			break;
		if (ioctl(f->host_fd, SIOCATMARK, &v) < 0) {
			r = -errno;
			break;
		}
		r = svc_copy_out(t, a[2], &v, sizeof(v));
		break;
	case TIOCGPGRP:
		if (!tty)
			break;
		v = 1;
		r = svc_copy_out(t, a[2], &v, sizeof(v));
		break;
	default:
		break;
	}
out:
	svc_file_put(f);
	return r;
}

/* ---------------------------------------------------------- pipes */

static long sys_pipe2(struct svc_thread *t, const uint64_t a[6])
{
	int flags = (int)a[1];
	if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT))
		return -EINVAL;
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK | (flags & O_DIRECT)) < 0)
		return -errno;
	struct svc_vm *vm = tvm(t);
	int st = flags & O_NONBLOCK;
	struct svc_file *r = svc_file_new(SVC_F_PIPE, p[0], O_RDONLY, st);
	struct svc_file *w = svc_file_new(SVC_F_PIPE, p[1], O_WRONLY, st);
	if (!r || !w) {
		svc_file_put(r);
		svc_file_put(w);
		return -ENOMEM;
	}
	int fds[2];
	fds[0] = svc_fd_install(vm, r, 0, flags & O_CLOEXEC);
	if (fds[0] < 0) {
		svc_file_put(w);
		return fds[0];
	}
	fds[1] = svc_fd_install(vm, w, 0, flags & O_CLOEXEC);
	if (fds[1] < 0) {
		svc_fdtab_close(vm, fds[0]);
		return fds[1];
	}
	int err = svc_copy_out(t, a[0], fds, sizeof(fds));
	if (err) {
		svc_fdtab_close(vm, fds[0]);
		svc_fdtab_close(vm, fds[1]);
	}
	return err;
}

static long sys_pipe(struct svc_thread *t, const uint64_t a[6])
{
	const uint64_t b[6] = {a[0], 0};
	return sys_pipe2(t, b);
}

/* ---------------------------------------------------------- poll */

/* Poll guest @gfds (n entries, guest fds) with @timeout_ns; writes revents
 * back into @gp. Returns the number of entries with events, or -errno. */
static long poll_fds(struct svc_thread *t, struct pollfd *gp, unsigned n, int64_t timeout_ns)
{
	struct svc_vm *vm = tvm(t);
	struct pollfd *hp = calloc(n ? n : 1, sizeof(*hp));
	struct svc_file **fs = calloc(n ? n : 1, sizeof(*fs));
	long r;
	unsigned nval = 0;
	if (!hp || !fs) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		hp[i].fd = -1;
		gp[i].revents = 0;
		if (gp[i].fd < 0)
			continue;
		fs[i] = svc_fd_get(vm, gp[i].fd);
		if (!fs[i] || fs[i]->accmode == O_PATH) {
			gp[i].revents = POLLNVAL;
			nval++;
			continue;
		}
		hp[i].fd = fs[i]->host_fd;
		hp[i].events = gp[i].events;
	}
	r = svc_wait_fds(t, hp, n, nval ? 0 : timeout_ns);
	if (r < 0)
		goto out;
	r = 0;
	for (unsigned i = 0; i < n; i++) {
		if (hp[i].fd >= 0)
			gp[i].revents = hp[i].revents;
		if (gp[i].revents)
			r++;
	}
out:
	for (unsigned i = 0; fs && i < n; i++)
		svc_file_put(fs[i]);
	free(hp);
	free(fs);
	return r;
}

static long do_poll(struct svc_thread *t, uint64_t gfds, uint64_t n, int64_t timeout_ns)
{
	if (n > svc_fdtab_max(tvm(t)))
		return -EINVAL;
	struct pollfd *p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	long r = n ? svc_copy_in(t, p, gfds, n * sizeof(*p)) : 0;
	if (!r) {
		r = poll_fds(t, p, (unsigned)n, timeout_ns);
		if (r >= 0 && n) {
			int e = svc_copy_out(t, gfds, p, n * sizeof(*p));
			if (e)
				r = e;
		}
	}
	free(p);
	return r;
}

static long sys_poll(struct svc_thread *t, const uint64_t a[6])
{
	int ms = (int)a[2];
	return do_poll(t, a[0], a[1], ms < 0 ? -1 : (int64_t)ms * 1000000);
}

/* The signal mask argument of ppoll/pselect6/epoll_pwait: the guest's mask
 * for the rest of the call (core restores it). 0 or -errno. */
static int swap_mask(struct svc_thread *t, uint64_t gset, uint64_t size)
{
	if (!gset)
		return 0;
	if (size != sizeof(uint64_t))
		return -EINVAL;
	uint64_t set;
	int err = svc_copy_in(t, &set, gset, sizeof(set));
	if (err)
		return err;
	svc_sigmask_swap(t, set);
	return 0;
}

static long sys_ppoll(struct svc_thread *t, const uint64_t a[6])
{
	int64_t ns = -1;
	if (a[2]) {
		struct timespec ts;
		int err = svc_copy_in(t, &ts, a[2], sizeof(ts));
		if (err)
			return err;
		ns = ts_ns(&ts);
		if (ns == -2)
			return -EINVAL;
	}
	int err = swap_mask(t, a[3], a[4]);
	if (err)
		return err;
	return do_poll(t, a[0], a[1], ns);
}

static long do_select(struct svc_thread *t, int n, const uint64_t g[3], int64_t ns)
{
	if (n < 0)
		return -EINVAL;
	if ((unsigned)n > svc_fdtab_max(tvm(t)))
		n = (int)svc_fdtab_max(tvm(t));
	size_t words = ((size_t)n + 63) / 64;
	uint64_t set[3][SVC_MAX_FDS_DEFAULT / 64 * 64];
	if (words > sizeof(set[0]) / sizeof(set[0][0]))
		return -EINVAL;
	for (int k = 0; k < 3; k++) {
		memset(set[k], 0, words * 8);
		if (g[k] && words) {
			int err = svc_copy_in(t, set[k], g[k], words * 8);
			if (err)
				return err;
		}
	}
	unsigned cnt = 0;
	for (int fd = 0; fd < n; fd++)
		for (int k = 0; k < 3; k++)
			if (set[k][fd / 64] >> (fd % 64) & 1) {
				cnt++;
				break;
			}
	struct pollfd *p = calloc(cnt ? cnt : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	unsigned i = 0;
	for (int fd = 0; fd < n; fd++) {
		short ev = 0;
		if (set[0][fd / 64] >> (fd % 64) & 1)
			ev |= POLLIN;
		if (set[1][fd / 64] >> (fd % 64) & 1)
			ev |= POLLOUT;
		if (set[2][fd / 64] >> (fd % 64) & 1)
			ev |= POLLPRI;
		if (ev)
			p[i++] = (struct pollfd){fd, ev, 0};
	}
	long r = poll_fds(t, p, cnt, ns);
	if (r >= 0) {
		for (i = 0; i < cnt; i++)
			if (p[i].revents & POLLNVAL) {
				r = -EBADF;
				break;
			}
	}
	if (r >= 0) {
		r = 0;
		for (int k = 0; k < 3; k++)
			memset(set[k], 0, words * 8);
		for (i = 0; i < cnt; i++) {
			int fd = p[i].fd;
			short re = p[i].revents;
			uint64_t bit = 1ull << (fd % 64);
			if ((p[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
				set[0][fd / 64] |= bit;
				r++;
			}
			if ((p[i].events & POLLOUT) && (re & (POLLOUT | POLLERR))) {
				set[1][fd / 64] |= bit;
				r++;
			}
			if ((p[i].events & POLLPRI) && (re & POLLPRI)) {
				set[2][fd / 64] |= bit;
				r++;
			}
		}
		for (int k = 0; k < 3 && r >= 0; k++)
			if (g[k] && words) {
				int err = svc_copy_out(t, g[k], set[k], words * 8);
				if (err)
					r = err;
			}
	}
	free(p);
	return r;
}

static long sys_select(struct svc_thread *t, const uint64_t a[6])
{
	int64_t ns = -1;
	if (a[4]) {
		struct timeval tv;
		int err = svc_copy_in(t, &tv, a[4], sizeof(tv));
		if (err)
			return err;
		if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
			return -EINVAL;
		struct timespec ts = {tv.tv_sec, tv.tv_usec * 1000};
		ns = ts_ns(&ts);
	}
	const uint64_t g[3] = {a[1], a[2], a[3]};
	long r = do_select(t, (int)a[0], g, ns);
	if (r == 0 && a[4]) {
		struct timeval z = {0, 0};
		svc_copy_out(t, a[4], &z, sizeof(z));
	}
	return r;
}

static long sys_pselect6(struct svc_thread *t, const uint64_t a[6])
{
	int64_t ns = -1;
	if (a[4]) {
		struct timespec ts;
		int err = svc_copy_in(t, &ts, a[4], sizeof(ts));
		if (err)
			return err;
		ns = ts_ns(&ts);
		if (ns == -2)
			return -EINVAL;
	}
	if (a[5]) {
		uint64_t sm[2]; /* { const sigset_t *ss; size_t ss_len; } */
		int err = svc_copy_in(t, sm, a[5], sizeof(sm));
		if (!err)
			err = swap_mask(t, sm[0], sm[1]);
		if (err)
			return err;
	}
	const uint64_t g[3] = {a[1], a[2], a[3]};
	return do_select(t, (int)a[0], g, ns);
}

/* ---------------------------------------------------------- epoll */

static long new_file(struct svc_thread *t, enum svc_file_kind kind, int hfd, int acc, int st,
		     bool cloexec)
{
	if (hfd < 0)
		return -errno;
	struct svc_file *f = svc_file_new(kind, hfd, acc, st);
	if (!f)
		return -ENOMEM;
	return svc_fd_install(tvm(t), f, 0, cloexec);
}

static long sys_epoll_create1(struct svc_thread *t, const uint64_t a[6])
{
	int flags = (int)a[0];
	if (flags & ~EPOLL_CLOEXEC)
		return -EINVAL;
	return new_file(t, SVC_F_EPOLL, epoll_create1(EPOLL_CLOEXEC), O_RDWR, 0,
			flags & EPOLL_CLOEXEC);
}

static long sys_epoll_create(struct svc_thread *t, const uint64_t a[6])
{
	if ((int)a[0] <= 0)
		return -EINVAL;
	return new_file(t, SVC_F_EPOLL, epoll_create1(EPOLL_CLOEXEC), O_RDWR, 0, false);
}

static long sys_epoll_ctl(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = tvm(t);
	int op = (int)a[1];
	struct epoll_event ev = {0};
	if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL)
		return -EINVAL;
	if (op != EPOLL_CTL_DEL) {
		int err = svc_copy_in(t, &ev, a[3], EPOLL_EV_SIZE);
		if (err)
			return err;
		ev.events &= ~(uint32_t)EPOLLWAKEUP;
	}
	struct svc_file *ep = svc_fd_get(vm, (int)a[0]);
	struct svc_file *f = svc_fd_get(vm, (int)a[2]);
	long r = 0;
	if (!ep || !f)
		r = -EBADF;
	else if (ep->kind != SVC_F_EPOLL || ep == f)
		r = -EINVAL;
	else if (f->accmode == O_PATH)
		r = -EBADF;
	else if (epoll_ctl(ep->host_fd, op, f->host_fd, &ev) < 0)
		r = -errno;
	if (ep)
		svc_file_put(ep);
	if (f)
		svc_file_put(f);
	return r;
}

static long do_epoll_wait(struct svc_thread *t, int epfd, uint64_t gev, int max, int64_t ns)
{
	if (max <= 0 || (uint64_t)max > INT_MAX / EPOLL_EV_SIZE)
		return -EINVAL;
	void *evs = svc_uptr(t, gev, (uint64_t)max * EPOLL_EV_SIZE);
	if (!evs)
		return -EFAULT;
	struct svc_file *ep = svc_fd_get(tvm(t), epfd);
	if (!ep)
		return -EBADF;
	long r;
	if (ep->kind != SVC_F_EPOLL) {
		r = -EINVAL;
		goto out;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t deadline = ns < 0 ? -1 : ts_ns(&now) + ns;
	for (;;) {
		r = epoll_wait(ep->host_fd, evs, max, 0);
		if (r != 0 || ns == 0) {
			r = r < 0 ? -errno : r;
			break;
		}
		int64_t left = -1;
		if (deadline >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = deadline - ts_ns(&now);
			if (left <= 0) {
				r = 0;
				break;
			}
		}
		int w = wait_one(t, ep->host_fd, POLLIN, left);
		if (w < 0) {
			r = w;
			break;
		}
	}
out:
	svc_file_put(ep);
	return r;
}

static long sys_epoll_wait(struct svc_thread *t, const uint64_t a[6])
{
	int ms = (int)a[3];
	return do_epoll_wait(t, (int)a[0], a[1], (int)a[2], ms < 0 ? -1 : (int64_t)ms * 1000000);
}

static long sys_epoll_pwait(struct svc_thread *t, const uint64_t a[6])
{
	int err = swap_mask(t, a[4], a[5]);
	return err ? err : sys_epoll_wait(t, a);
}

static long sys_epoll_pwait2(struct svc_thread *t, const uint64_t a[6])
{
	int err = swap_mask(t, a[4], a[5]);
	if (err)
		return err;
	int64_t ns = -1;
	if (a[3]) {
		struct timespec ts;
		err = svc_copy_in(t, &ts, a[3], sizeof(ts));
		if (err)
			return err;
		ns = ts_ns(&ts);
		if (ns == -2)
			return -EINVAL;
	}
	return do_epoll_wait(t, (int)a[0], a[1], (int)a[2], ns);
}

/* ---------------------------------------------------------- eventfd */

static long sys_eventfd2(struct svc_thread *t, const uint64_t a[6])
{
	int flags = (int)a[1];
	if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE))
		return -EINVAL;
	return new_file(
	    t, SVC_F_EVENTFD,
	    eventfd((unsigned)a[0], EFD_CLOEXEC | EFD_NONBLOCK | (flags & EFD_SEMAPHORE)), O_RDWR,
	    flags & EFD_NONBLOCK ? O_NONBLOCK : 0, flags & EFD_CLOEXEC);
}

static long sys_eventfd(struct svc_thread *t, const uint64_t a[6])
{
	const uint64_t b[6] = {a[0], 0};
	return sys_eventfd2(t, b);
}

/* ---------------------------------------------------------- timerfd */

static long sys_timerfd_create(struct svc_thread *t, const uint64_t a[6])
{
	int clk = (int)a[0], flags = (int)a[1];
	if (flags & ~(TFD_CLOEXEC | TFD_NONBLOCK))
		return -EINVAL;
	if (clk == CLOCK_REALTIME_ALARM || clk == CLOCK_BOOTTIME_ALARM)
		return -EPERM;
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC && clk != CLOCK_BOOTTIME)
		return -EINVAL;
	return new_file(t, SVC_F_TIMERFD, timerfd_create(clk, TFD_CLOEXEC | TFD_NONBLOCK), O_RDWR,
			flags & TFD_NONBLOCK ? O_NONBLOCK : 0, flags & TFD_CLOEXEC);
}

static struct svc_file *timerfd_get(struct svc_thread *t, int fd, long *err)
{
	struct svc_file *f = svc_fd_get(tvm(t), fd);
	*err = -EBADF;
	if (f && f->kind != SVC_F_TIMERFD) {
		svc_file_put(f);
		*err = -EINVAL;
		return NULL;
	}
	return f;
}

static long sys_timerfd_settime(struct svc_thread *t, const uint64_t a[6])
{
	long err;
	int flags = (int)a[1];
	if (flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET))
		return -EINVAL;
	struct itimerspec nv, ov;
	if ((err = svc_copy_in(t, &nv, a[2], sizeof(nv))))
		return err;
	if (ts_ns(&nv.it_value) == -2 || ts_ns(&nv.it_interval) == -2)
		return -EINVAL;
	struct svc_file *f = timerfd_get(t, (int)a[0], &err);
	if (!f)
		return err;
	err = timerfd_settime(f->host_fd, flags, &nv, &ov) < 0 ? -errno : 0;
	svc_file_put(f);
	if (!err && a[3])
		err = svc_copy_out(t, a[3], &ov, sizeof(ov));
	return err;
}

static long sys_timerfd_gettime(struct svc_thread *t, const uint64_t a[6])
{
	long err;
	struct itimerspec cv;
	struct svc_file *f = timerfd_get(t, (int)a[0], &err);
	if (!f)
		return err;
	err = timerfd_gettime(f->host_fd, &cv) < 0 ? -errno : 0;
	svc_file_put(f);
	return err ? err : svc_copy_out(t, a[1], &cv, sizeof(cv));
}

/* ---------------------------------------------------------- copies */

/* Copy up to @len bytes from @in (regular file, at *@inoff or its position
 * when @inoff is NULL) to @out (at @outoff, or its position if < 0). */
static long copy_files(struct svc_thread *t, struct svc_file *in, int64_t *inoff,
		       struct svc_file *out, int64_t outoff, uint64_t len)
{
	struct vfs_file *ivf = svc_fsfile_vf(in);
	if (in->accmode == O_WRONLY || in->accmode == O_PATH || out->accmode == O_RDONLY ||
	    out->accmode == O_PATH)
		return -EBADF;
	if (!ivf || ivf->type == VFS_FT_DIR)
		return -EINVAL;
	if (len > RW_MAX)
		len = RW_MAX;
	char *buf = malloc(COPY_CHUNK);
	if (!buf)
		return -ENOMEM;
	long done = 0;
	while ((uint64_t)done < len) {
		size_t want = len - (uint64_t)done < COPY_CHUNK ? len - (uint64_t)done : COPY_CHUNK;
		ssize_t n =
		    inoff ? pread(in->host_fd, buf, want, *inoff) : read(in->host_fd, buf, want);
		if (n < 0) {
			if (!done)
				done = -errno;
			break;
		}
		if (n == 0)
			break;
		long w = svc_io_write(t, out, buf, (size_t)n, outoff);
		if (w > 0 && outoff >= 0)
			outoff += w;
		if (w < 0 || w < n) {
			/* give back what was read but not written */
			long used = w < 0 ? 0 : w;
			if (!inoff)
				lseek(in->host_fd, used - n, SEEK_CUR);
			else
				*inoff += used;
			done += used;
			if (w < 0 && done == 0)
				done = w;
			break;
		}
		if (inoff)
			*inoff += n;
		done += n;
	}
	free(buf);
	return done;
}

static long sys_sendfile(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = tvm(t);
	int64_t off = 0;
	if (a[2]) {
		int err = svc_copy_in(t, &off, a[2], sizeof(off));
		if (err)
			return err;
		if (off < 0)
			return -EINVAL;
	}
	struct svc_file *out = svc_fd_get(vm, (int)a[0]);
	struct svc_file *in = svc_fd_get(vm, (int)a[1]);
	long r = !out || !in ? -EBADF : copy_files(t, in, a[2] ? &off : NULL, out, -1, a[3]);
	if (out)
		svc_file_put(out);
	if (in)
		svc_file_put(in);
	if (r >= 0 && a[2]) {
		int err = svc_copy_out(t, a[2], &off, sizeof(off));
		if (err)
			return err;
	}
	return r;
}

static long sys_copy_file_range(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = tvm(t);
	if (a[5])
		return -EINVAL;
	int64_t ioff = 0, ooff = -1;
	int err;
	if (a[1] && (err = svc_copy_in(t, &ioff, a[1], sizeof(ioff))))
		return err;
	if (a[3] && (err = svc_copy_in(t, &ooff, a[3], sizeof(ooff))))
		return err;
	if ((a[1] && ioff < 0) || (a[3] && ooff < 0))
		return -EINVAL;
	struct svc_file *in = svc_fd_get(vm, (int)a[0]);
	struct svc_file *out = svc_fd_get(vm, (int)a[2]);
	long r;
	struct vfs_file *ovf = out ? svc_fsfile_vf(out) : NULL;
	if (!in || !out)
		r = -EBADF;
	else if (!ovf || ovf->type != VFS_FT_REG)
		r = -EINVAL;
	else if (out->status_flags & O_APPEND)
		r = -EBADF;
	else
		r = copy_files(t, in, a[1] ? &ioff : NULL, out, a[3] ? ooff : -1, a[4]);
	if (in)
		svc_file_put(in);
	if (out)
		svc_file_put(out);
	if (r > 0 && a[1] && (err = svc_copy_out(t, a[1], &ioff, sizeof(ioff))))
		return err;
	if (r > 0 && a[3]) {
		ooff += r;
		if ((err = svc_copy_out(t, a[3], &ooff, sizeof(ooff))))
			return err;
	}
	return r;
}

/* ---------------------------------------------------------- table */

static const svc_sys_fn io_table[] = {
    [SYS_read] = sys_read,
    [SYS_write] = sys_write,
    [SYS_pread64] = sys_pread64,
    [SYS_pwrite64] = sys_pwrite64,
    [SYS_readv] = sys_readv,
    [SYS_writev] = sys_writev,
    [SYS_preadv] = sys_preadv,
    [SYS_pwritev] = sys_pwritev,
    [SYS_preadv2] = sys_preadv2,
    [SYS_pwritev2] = sys_pwritev2,
    [SYS_lseek] = sys_lseek,
    [SYS_ioctl] = sys_ioctl,
    [SYS_pipe] = sys_pipe,
    [SYS_pipe2] = sys_pipe2,
    [SYS_poll] = sys_poll,
    [SYS_ppoll] = sys_ppoll,
    [SYS_select] = sys_select,
    [SYS_pselect6] = sys_pselect6,
    [SYS_epoll_create] = sys_epoll_create,
    [SYS_epoll_create1] = sys_epoll_create1,
    [SYS_epoll_ctl] = sys_epoll_ctl,
    [SYS_epoll_wait] = sys_epoll_wait,
    [SYS_epoll_pwait] = sys_epoll_pwait,
    [SYS_epoll_pwait2] = sys_epoll_pwait2,
    [SYS_eventfd] = sys_eventfd,
    [SYS_eventfd2] = sys_eventfd2,
    [SYS_timerfd_create] = sys_timerfd_create,
    [SYS_timerfd_settime] = sys_timerfd_settime,
    [SYS_timerfd_gettime] = sys_timerfd_gettime,
    [SYS_sendfile] = sys_sendfile,
    [SYS_copy_file_range] = sys_copy_file_range,
};

svc_sys_fn svc_io_handler(unsigned nr)
{
	if (nr < sizeof(io_table) / sizeof(io_table[0]))
		return io_table[nr];
	return NULL;
}
