/*
 * nubis-test: a static multi-call test program for nubis process VMs.
 *
 * The first argument selects a behaviour (see usage() below). Every
 * behaviour prints deterministic, line-oriented output so the e2e tests can
 * parse it; most lines are `key=value`.
 *
 * The program must stay an ordinary Linux program: it is built with musl
 * (musl-gcc -static) and glibc (gcc -static, gcc -static-pie -fPIE) and is
 * checked natively as well as inside a nubis VM, where system calls are
 * served by the monitor and files can be opened only at "channel" paths.
 * Hence: no /proc, no threads, no signal handlers, raw syscall() for
 * anything a libc might emulate or cache.
 *
 * Exit codes: 0 success, 1 a check failed (message on stderr; mmaptest
 * prints its failures on stdout), 2 cannot open a file (copy), 64 usage
 * error. Fault behaviours die by a signal.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MIB  (1024UL * 1024UL)
#define PAGE 4096UL

/* Stops the compiler from optimising away stores to (or loads from) p. */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

/* Symbolic errno name, e.g. "ENOENT"; "E<number>" for anything unlisted. */
/* clang-format off */
static const char *errno_name(int e)
{
#define E(x) {x, #x}
	static const struct {
		int num;
		const char *name;
	} names[] = {
		E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
		E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
		E(EFAULT), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR),
		E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY), E(ETXTBSY),
		E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE),
		E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK),
		E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENOTSOCK), E(EOPNOTSUPP),
		E(EAFNOSUPPORT), E(EADDRINUSE), E(ECONNREFUSED), E(ENETUNREACH),
		E(ETIMEDOUT), E(EOVERFLOW), E(EPROTONOSUPPORT),
	};
#undef E
	static char buf[24];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].num == e)
			return names[i].name;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}
/* clang-format on */

static void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

/* Parses a non-negative decimal argument or exits with a usage error. */
static unsigned long long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "nubis-test: bad %s '%s'\n", what, s);
		exit(64);
	}
	return v;
}

/* write() the whole buffer, retrying on short writes and EINTR. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Raw brk: libc wrappers differ (musl's sbrk(n != 0) always fails). */
static uintptr_t raw_brk(uintptr_t addr)
{
	return (uintptr_t)syscall(SYS_brk, addr);
}

/* ---------------------------------------------------------------------- */
/* simple behaviours                                                      */
/* ---------------------------------------------------------------------- */

static int do_hello(void)
{
	puts("hello from nubis");
	return 0;
}

static int do_args(int argc, char **argv)
{
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = environ; e && *e; e++)
		printf("env=%s\n", *e);
	return 0;
}

static int do_cat(void)
{
	static char buf[64 * 1024];
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read stdin");
		}
		if (write_all(1, buf, (size_t)n) < 0)
			die("write stdout");
	}
}

static int do_open(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		printf("errno=%s\n", errno_name(errno));
	} else {
		puts("ok");
		close(fd);
	}
	return 0;
}

static int do_bigwrite(unsigned long long n)
{
	char *buf = malloc(n ? (size_t)n : 1);
	if (!buf)
		die("malloc");
	memset(buf, 'x', (size_t)n);
	ssize_t r = write(1, buf, (size_t)n); /* deliberately one call */
	if (r < 0)
		die("write");
	if ((unsigned long long)r != n) {
		fprintf(stderr, "bigwrite: short write %zd of %llu\n", r, n);
		return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* det: everything a VM should make deterministic                         */
/* ---------------------------------------------------------------------- */

static int det_global = 42;

static void print_clock(const char *key, clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0)
		printf("%s=error:%s\n", key, errno_name(errno));
	else
		printf("%s=%lld.%09ld\n", key, (long long)ts.tv_sec, ts.tv_nsec);
}

static int do_det(void)
{
	struct timeval tv;

	print_clock("clock_realtime", CLOCK_REALTIME);
	print_clock("clock_monotonic", CLOCK_MONOTONIC);
	if (gettimeofday(&tv, NULL) != 0)
		printf("gettimeofday=error:%s\n", errno_name(errno));
	else
		printf("gettimeofday=%lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);
	printf("time=%lld\n", (long long)time(NULL));

	for (int i = 0; i < 4; i++) {
		uint64_t v;
		ssize_t n = getrandom(&v, sizeof v, 0);
		if (n != (ssize_t)sizeof v)
			printf("random%d=error:%s\n", i, n < 0 ? errno_name(errno) : "short");
		else
			printf("random%d=%016" PRIx64 "\n", i, v);
	}

	void *m = malloc(64);
	printf("malloc_addr=0x%" PRIxPTR "\n", (uintptr_t)m);
	void *mm = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mm == MAP_FAILED)
		printf("mmap_addr=error:%s\n", errno_name(errno));
	else
		printf("mmap_addr=0x%" PRIxPTR "\n", (uintptr_t)mm);
	volatile int stack_var = 0;
	printf("stack_addr=0x%" PRIxPTR "\n", (uintptr_t)&stack_var);
	printf("global_addr=0x%" PRIxPTR "\n", (uintptr_t)&det_global);
	printf("brk_addr=0x%" PRIxPTR "\n", raw_brk(0));

	const unsigned char *atr = (const unsigned char *)getauxval(AT_RANDOM);
	if (atr) {
		char h[33];
		hex(atr, 16, h);
		printf("at_random=%s\n", h);
	} else {
		printf("at_random=none\n");
	}

	printf("pid=%ld\n", (long)getpid());
	printf("ppid=%ld\n", (long)getppid());
	printf("uid=%ld\n", (long)getuid());
	printf("gid=%ld\n", (long)getgid());

	struct utsname u;
	if (uname(&u) != 0) {
		printf("uname=error:%s\n", errno_name(errno));
	} else {
		printf("uname.sysname=%s\n", u.sysname);
		printf("uname.nodename=%s\n", u.nodename);
		printf("uname.release=%s\n", u.release);
		printf("uname.version=%s\n", u.version);
		printf("uname.machine=%s\n", u.machine);
	}

	struct timespec t0, t1, req = {0, 1000000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = nanosleep(&req, NULL);
	int e = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r == 0)
		printf("nanosleep=0\n");
	else
		printf("nanosleep=error:%s\n", errno_name(e));
	long long ns =
	    (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("nanosleep_elapsed_ns=%lld\n", ns);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* copy IN OUT [append]                                                   */
/* ---------------------------------------------------------------------- */

static int do_copy(const char *in, const char *out, bool append)
{
	int ifd = open(in, O_RDONLY);
	if (ifd < 0) {
		fprintf(stderr, "open %s: %s\n", in, strerror(errno));
		return 2;
	}
	int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
	int ofd = open(out, flags, 0644);
	if (ofd < 0) {
		fprintf(stderr, "open %s: %s\n", out, strerror(errno));
		return 2;
	}

	struct stat st;
	if (fstat(ifd, &st) != 0)
		die("fstat IN");

	/* Seekable input: the end offset must equal st_size for a regular
	 * file, and we must be able to rewind. Pipes/channels may be unseekable
	 * (ESPIPE), which is fine. */
	bool seekable = false;
	off_t end = lseek(ifd, 0, SEEK_END);
	if (end >= 0) {
		seekable = true;
		if (S_ISREG(st.st_mode) && end != st.st_size) {
			fprintf(stderr, "copy: lseek END=%lld but st_size=%lld\n", (long long)end,
				(long long)st.st_size);
			return 1;
		}
		if (lseek(ifd, 0, SEEK_SET) != 0)
			die("lseek SET 0");
	} else if (errno != ESPIPE) {
		die("lseek END");
	}

	static char buf[64 * 1024];
	unsigned char first[64];
	size_t nfirst = 0;
	unsigned long long copied = 0;
	for (;;) {
		ssize_t n = read(ifd, buf, sizeof buf);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read IN");
		}
		if (copied == 0) {
			nfirst = (size_t)n < sizeof first ? (size_t)n : sizeof first;
			memcpy(first, buf, nfirst);
		}
		if (write_all(ofd, buf, (size_t)n) < 0)
			die("write OUT");
		copied += (unsigned long long)n;
	}

	if (seekable) {
		/* The read offset must have advanced by exactly what we read... */
		off_t cur = lseek(ifd, 0, SEEK_CUR);
		if (cur < 0 || (unsigned long long)cur != copied) {
			fprintf(stderr, "copy: lseek CUR=%lld after reading %llu\n", (long long)cur,
				copied);
			return 1;
		}
		/* ...pread at offset 0 must see the first bytes again... */
		if (nfirst > 0) {
			unsigned char again[sizeof first];
			ssize_t n = pread(ifd, again, nfirst, 0);
			if (n != (ssize_t)nfirst || memcmp(again, first, nfirst) != 0) {
				fprintf(stderr, "copy: pread(0) returned %zd / different data\n",
					n);
				return 1;
			}
		}
		/* ...and must not move the file offset. */
		if (lseek(ifd, 0, SEEK_CUR) != cur) {
			fprintf(stderr, "copy: pread moved the file offset\n");
			return 1;
		}
	}

	struct stat ost;
	if (fstat(ofd, &ost) != 0)
		die("fstat OUT");
	if (S_ISREG(ost.st_mode) && (append ? (unsigned long long)ost.st_size < copied
					    : (unsigned long long)ost.st_size != copied)) {
		fprintf(stderr, "copy: OUT st_size=%lld after writing %llu\n",
			(long long)ost.st_size, copied);
		return 1;
	}
	if (close(ofd) != 0)
		die("close OUT");
	close(ifd);
	printf("copied=%llu\n", copied);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* memhog MB                                                              */
/* ---------------------------------------------------------------------- */

static int do_memhog(unsigned long long limit_mb)
{
	unsigned long long got = 0;
	int failed = 0;
	while (got < limit_mb) {
		volatile char *p = malloc(MIB);
		if (!p) {
			failed = 1;
			break;
		}
		for (size_t off = 0; off < MIB; off += PAGE) /* touch every page */
			p[off] = (char)off;
		got++;
		/* The blocks are deliberately never freed. */
	}
	printf("allocated=%llu\n", got);
	printf("malloc_failed=%d\n", failed);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* mmaptest                                                               */
/* ---------------------------------------------------------------------- */

static int mmap_failures;

/* Reports one mmaptest failure on stdout; the run then exits 1. */
__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mmap FAIL: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	mmap_failures++;
}

static void *anon(size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* Returns the offset of the first non-zero byte, or -1 if all zero. */
static long first_nonzero(const void *p, size_t len)
{
	const volatile unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i])
			return (long)i;
	return -1;
}

/* Byte pattern that differs per offset and per seed. */
static unsigned char pat(size_t i, unsigned seed)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 12)) | 1u);
}

static void fill(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		c[i] = pat(i, seed);
	KEEP(p);
}

/* Returns the offset of the first byte not matching pat(), or -1. */
static long check(const void *p, size_t len, unsigned seed)
{
	const volatile unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != pat(i, seed))
			return (long)i;
	return -1;
}

/* mmap/zero-check/fill/verify/munmap, then map again and re-check zero
 * (a VM recycling freed guest memory must scrub it). */
static void mmap_size(size_t len, bool optional)
{
	void *p = anon(len);
	if (p == MAP_FAILED) {
		if (optional && errno == ENOMEM) {
			fprintf(stderr, "mmaptest: note: mmap(%zu) ENOMEM, skipped\n", len);
			return;
		}
		fail("mmap(%zu): %s", len, errno_name(errno));
		return;
	}
	if ((uintptr_t)p % PAGE)
		fail("mmap(%zu) returned unaligned %p", len, p);
	long off = first_nonzero(p, len);
	if (off >= 0)
		fail("mmap(%zu): fresh mapping has non-zero byte at %ld", len, off);
	fill(p, len, 1);
	if ((off = check(p, len, 1)) >= 0)
		fail("mmap(%zu): readback mismatch at %ld", len, off);
	if (munmap(p, len) != 0) {
		fail("munmap(%zu): %s", len, errno_name(errno));
		return;
	}
	void *q = anon(len);
	if (q == MAP_FAILED) {
		fail("re-mmap(%zu) after munmap: %s", len, errno_name(errno));
		return;
	}
	if ((off = first_nonzero(q, len)) >= 0)
		fail("re-mmap(%zu)%s: non-zero byte at %ld", len, q == p ? " (same address)" : "",
		     off);
	if (munmap(q, len) != 0)
		fail("munmap(%zu) #2: %s", len, errno_name(errno));
}

static void mmap_partial_unmap(void)
{
	/* Unmap the middle page of three; the outer pages must survive. */
	unsigned char *p = anon(3 * PAGE);
	if (p == MAP_FAILED) {
		fail("mmap(3 pages): %s", errno_name(errno));
		return;
	}
	fill(p, 3 * PAGE, 2);
	if (munmap(p + PAGE, PAGE) != 0)
		fail("munmap(middle page): %s", errno_name(errno));
	if (check(p, PAGE, 2) >= 0)
		fail("partial munmap: first page corrupted");
	if (p[2 * PAGE] != pat(2 * PAGE, 2) || p[3 * PAGE - 1] != pat(3 * PAGE - 1, 2))
		fail("partial munmap: last page corrupted");
	munmap(p, PAGE);
	munmap(p + 2 * PAGE, PAGE);
}

static void mmap_mremap(void)
{
	/* grow (may move) */
	size_t small = 2 * PAGE, big = 16 * PAGE;
	unsigned char *p = anon(small);
	if (p == MAP_FAILED) {
		fail("mmap(2 pages): %s", errno_name(errno));
		return;
	}
	fill(p, small, 3);
	unsigned char *g = mremap(p, small, big, MREMAP_MAYMOVE);
	if (g == MAP_FAILED) {
		fail("mremap grow: %s", errno_name(errno));
		munmap(p, small);
		return;
	}
	long off;
	if ((off = check(g, small, 3)) >= 0)
		fail("mremap grow: old contents lost at %ld", off);
	if ((off = first_nonzero(g + small, big - small)) >= 0)
		fail("mremap grow: new tail not zero at +%ld", off);
	fill(g, big, 4);

	/* shrink in place: address must not change */
	unsigned char *s = mremap(g, big, PAGE, 0);
	if (s == MAP_FAILED) {
		fail("mremap shrink: %s", errno_name(errno));
		munmap(g, big);
		return;
	}
	if (s != g)
		fail("mremap shrink moved the mapping (%p -> %p)", (void *)g, (void *)s);
	if ((off = check(s, PAGE, 4)) >= 0)
		fail("mremap shrink: contents lost at %ld", off);

	/* move to a fixed address we reserved ourselves */
	unsigned char *target = anon(4 * PAGE);
	if (target == MAP_FAILED) {
		fail("mmap(move target): %s", errno_name(errno));
		munmap(s, PAGE);
		return;
	}
	unsigned char *dst = target + PAGE;
	unsigned char *m = mremap(s, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (m == MAP_FAILED) {
		fail("mremap move (FIXED): %s", errno_name(errno));
		munmap(s, PAGE);
	} else {
		if (m != dst)
			fail("mremap move returned %p, wanted %p", (void *)m, (void *)dst);
		if ((off = check(m, PAGE, 4)) >= 0)
			fail("mremap move: contents lost at %ld", off);
		/* the neighbours in the reservation must be untouched and zero */
		if (first_nonzero(target, PAGE) >= 0 ||
		    first_nonzero(target + 2 * PAGE, 2 * PAGE) >= 0)
			fail("mremap move: clobbered neighbouring pages");
	}
	munmap(target, 4 * PAGE);
}

static void mmap_mprotect(void)
{
	unsigned char *p = anon(2 * PAGE);
	if (p == MAP_FAILED) {
		fail("mmap(mprotect): %s", errno_name(errno));
		return;
	}
	fill(p, 2 * PAGE, 5);
	if (mprotect(p, 2 * PAGE, PROT_READ) != 0)
		fail("mprotect(PROT_READ): %s", errno_name(errno));
	if (check(p, 2 * PAGE, 5) >= 0)
		fail("mprotect(PROT_READ): contents changed");
	if (mprotect(p, PAGE, PROT_NONE) != 0)
		fail("mprotect(PROT_NONE): %s", errno_name(errno));
	if (mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE) != 0)
		fail("mprotect(RW): %s", errno_name(errno));
	if (check(p, 2 * PAGE, 5) >= 0)
		fail("mprotect round trip: contents changed");
	fill(p, 2 * PAGE, 6); /* writable again */
	if (check(p, 2 * PAGE, 6) >= 0)
		fail("write after mprotect(RW) lost");
	munmap(p, 2 * PAGE);
}

static void mmap_madvise(void)
{
	size_t len = 8 * PAGE;
	unsigned char *p = anon(len);
	if (p == MAP_FAILED) {
		fail("mmap(madvise): %s", errno_name(errno));
		return;
	}
	fill(p, len, 7);
	if (madvise(p, len, MADV_WILLNEED) != 0)
		fail("madvise(WILLNEED): %s", errno_name(errno));
	if (check(p, len, 7) >= 0)
		fail("madvise(WILLNEED) changed contents");
	/* Linux semantics: private anonymous pages read back as zero after
	 * MADV_DONTNEED. Only the middle pages are dropped. */
	if (madvise(p + 2 * PAGE, 4 * PAGE, MADV_DONTNEED) != 0) {
		fail("madvise(DONTNEED): %s", errno_name(errno));
	} else {
		long off;
		if ((off = first_nonzero(p + 2 * PAGE, 4 * PAGE)) >= 0)
			fail("madvise(DONTNEED): page not zero at +%ld", off);
		if (check(p, 2 * PAGE, 7) >= 0 || p[6 * PAGE] != pat(6 * PAGE, 7) ||
		    p[len - 1] != pat(len - 1, 7))
			fail("madvise(DONTNEED) touched pages outside the range");
	}
	munmap(p, len);
}

static void mmap_brk(void)
{
	const uintptr_t inc = 16 * PAGE;
	uintptr_t cur = raw_brk(0);
	void *sb = sbrk(0);
	if ((uintptr_t)sb != cur)
		fail("sbrk(0)=%p but brk(0)=%#" PRIxPTR, sb, cur);
	/* The brk system call reports failure by returning the old break. */
	uintptr_t r = raw_brk(cur + inc);
	if (r != cur + inc) {
		fail("brk(%#" PRIxPTR ") grow returned %#" PRIxPTR, cur + inc, r);
		return;
	}
	/* The area brk hands out may start mid-page; only the whole pages past
	 * the old break are guaranteed fresh (the partial page may hold libc
	 * data), so check from the first page boundary. */
	unsigned char *base = (unsigned char *)((cur + PAGE - 1) & ~(PAGE - 1));
	size_t len = (size_t)(cur + inc - (uintptr_t)base);
	long off;
	if ((off = first_nonzero(base, len)) >= 0)
		fail("brk grow: fresh memory not zero at +%ld", off);
	fill(base, len, 8);
	if ((off = check(base, len, 8)) >= 0)
		fail("brk grow: readback mismatch at %ld", off);
	/* shrink back, grow again: the pages must come back zeroed */
	if (raw_brk(cur) != cur)
		fail("brk shrink back to %#" PRIxPTR " failed", cur);
	if ((r = raw_brk(cur + inc)) != cur + inc) {
		fail("brk regrow returned %#" PRIxPTR, r);
	} else {
		if ((off = first_nonzero(base, len)) >= 0)
			fail("brk regrow: memory not zero at +%ld", off);
	}
	if (raw_brk(cur) != cur) /* leave it as libc expects */
		fail("brk final shrink failed");
}

static int do_mmaptest(void)
{
	/* Give stdout a static buffer before the first fail(): otherwise glibc
	 * mallocs one, possibly via sbrk while mmap_brk() has moved the break
	 * behind libc's back. */
	static char outbuf[BUFSIZ];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

	mmap_size(PAGE, false);
	mmap_size(3 * PAGE + 1, false);
	mmap_size(MIB, false);
	mmap_size(64 * MIB, true); /* may exceed a small VM's memory limit */
	mmap_partial_unmap();
	mmap_mremap();
	mmap_mprotect();
	mmap_madvise();
	mmap_brk();
	if (mmap_failures) {
		fflush(stdout);
		return 1;
	}
	puts("mmap ok");
	return 0;
}

/* ---------------------------------------------------------------------- */
/* faults                                                                 */
/* ---------------------------------------------------------------------- */

static int do_jump(void)
{
	void (*volatile fp)(void) = (void (*)(void))(uintptr_t)0xdeadbeef000ULL;
	fp();
	return 1;
}

static int do_null(void)
{
	/* A volatile pointer, so the compiler cannot see it is NULL (GCC would
	 * otherwise replace a literal NULL store by ud2), to a volatile int, so
	 * the store is not dropped as dead (GCC does drop it otherwise). */
	volatile int *volatile p = NULL;
	*p = 42;
	return 1;
}

static int do_priv(void)
{
	__asm__ volatile("hlt");
	return 1;
}

static int do_ud2(void)
{
	__asm__ volatile("ud2");
	return 1;
}

static int do_div0(void)
{
	volatile int a = 1, b = 0;
	volatile int c = a / b;
	(void)c;
	return 1;
}

static int do_fault_after_output(void)
{
	puts("output before fault");
	fflush(stdout);
	return do_null();
}

/* ---------------------------------------------------------------------- */
/* endless loops                                                          */
/* ---------------------------------------------------------------------- */

static int do_flood(void)
{
	for (unsigned long long i = 0;; i++) {
		if (printf("flood line %llu: the quick brown fox jumps over the lazy dog\n", i) < 0)
			return 1; /* stdout gone: stop instead of spinning */
	}
}

__attribute__((noreturn)) static void do_spin(void)
{
	for (;;)
		__asm__ volatile("" ::: "memory");
}

__attribute__((noreturn)) static void do_sysflood(void)
{
	for (;;)
		syscall(SYS_getppid);
}

/* ---------------------------------------------------------------------- */
/* enosys: system calls a function VM should refuse                       */
/* ---------------------------------------------------------------------- */

static void report(const char *name, long r, int e)
{
	if (r < 0)
		printf("%s errno=%s\n", name, errno_name(e));
	else
		printf("%s ret=ok\n", name);
}

static int do_enosys(void)
{
	long r;
	fflush(stdout); /* a successful native fork must not duplicate output */

	errno = 0;
	r = syscall(SYS_fork);
	if (r == 0)
		_exit(0); /* native child */
	report("fork", r, errno);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);

	errno = 0;
	r = syscall(SYS_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
	report("socket", r, errno);
	if (r >= 0)
		close((int)r);

	errno = 0;
	r = syscall(SYS_kill, (long)getpid(), 0L); /* signal 0: existence check */
	report("kill", r, errno);

	errno = 0;
	char *const nargv[] = {(char *)"/nonexistent/nubis", NULL};
	r = syscall(SYS_execve, nargv[0], nargv, environ);
	report("execve", r, errno);

	errno = 0;
	r = syscall(SYS_ptrace, 2L /* PTRACE_PEEKDATA */, 1L, 0L, 0L);
	report("ptrace", r, errno);

	errno = 0;
	r = syscall(999L); /* no such system call anywhere */
	report("nr999", r, errno);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* leak-write / leak-read: no state may cross between fresh VMs           */
/* ---------------------------------------------------------------------- */

/* The needle "NUBIS-SECRET" is stored XOR-ed so that its plain bytes never
 * sit in the memory leak-read scans (its own .data or stack). */
#define NEEDLE_LEN 12
static const unsigned char needle_x[NEEDLE_LEN] = {
    'N' ^ 0x5a, 'U' ^ 0x5a, 'B' ^ 0x5a, 'I' ^ 0x5a, 'S' ^ 0x5a, '-' ^ 0x5a,
    'S' ^ 0x5a, 'E' ^ 0x5a, 'C' ^ 0x5a, 'R' ^ 0x5a, 'E' ^ 0x5a, 'T' ^ 0x5a,
};

static char leak_static[256];		    /* .bss */
static char leak_data[256] = "placeholder"; /* .data */

/* Builds the marker into out (at least 64 bytes). */
static void make_marker(char *out, size_t size)
{
	char needle[NEEDLE_LEN + 1];
	for (int i = 0; i < NEEDLE_LEN; i++)
		needle[i] = (char)(needle_x[i] ^ 0x5a);
	needle[NEEDLE_LEN] = '\0';
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		rnd = (uint64_t)time(NULL);
	snprintf(out, size, "%s-%ld-%016" PRIx64, needle, (long)getpid(), rnd);
}

/* Fills a large stack frame with copies of the marker, then returns; the
 * bytes stay behind in the now-unused stack below the caller. */
__attribute__((noinline)) static void leak_stack(const char *marker)
{
	volatile char frame[8192];
	size_t len = strlen(marker);
	for (size_t at = 0; at + len <= sizeof frame; at += 512)
		for (size_t i = 0; i < len; i++)
			frame[at + i] = marker[i];
	KEEP(frame);
}

/* Leaves the marker in .bss, .data, the heap, an mmap and the stack. */
static void leak_write_marker(void)
{
	char marker[64];
	make_marker(marker, sizeof marker);
	size_t len = strlen(marker) + 1;

	memcpy(leak_static, marker, len);
	memcpy(leak_data, marker, len);
	KEEP(leak_static);
	KEEP(leak_data);

	char *heap = malloc(len); /* brk heap with glibc, mmap with musl */
	if (heap) {
		memcpy(heap, marker, len);
		KEEP(heap);
	}

	size_t mlen = 4 * MIB;
	char *m = anon(mlen);
	if (m != MAP_FAILED) {
		for (size_t off = 0; off < mlen; off += PAGE) /* one per page */
			memcpy(m + off + 100, marker, len);
		KEEP(m);
	}

	leak_stack(marker);
	memset(marker, 0, sizeof marker);
	KEEP(marker);
}

static int do_leak_write(void)
{
	leak_write_marker();
	puts("wrote");
	return 0;
}

/* Scans [p, p+len) for the needle; returns the offset or -1. Reads
 * through a volatile pointer: this memory is not ours in the C sense. */
__attribute__((noinline)) static long scan(const void *p, size_t len)
{
	const volatile unsigned char *c = p;
	if (len < NEEDLE_LEN)
		return -1;
	for (size_t i = 0; i <= len - NEEDLE_LEN; i++) {
		if (c[i] != (needle_x[0] ^ 0x5a))
			continue;
		size_t j = 1;
		while (j < NEEDLE_LEN && c[i + j] == (needle_x[j] ^ 0x5a))
			j++;
		if (j == NEEDLE_LEN)
			return (long)i;
	}
	return -1;
}

struct scan_state {
	int found;
};

static void report_hit(struct scan_state *st, const char *region, const void *base, long off)
{
	if (off < 0)
		return;
	st->found = 1;
	fprintf(stderr, "leak-read: marker in %s at %p+%ld\n", region, base, off);
}

/* dl_iterate_phdr callback: scan every writable PT_LOAD segment of the
 * executable (.data, .bss, GOT, ...). Works in static binaries of both
 * libcs (they use AT_PHDR from the aux vector). */
static int scan_phdr(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct scan_state *st = arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		const unsigned char *start = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		report_hit(st, "data/bss", start, scan(start, ph->p_memsz));
	}
	return 0;
}

/* Stack below the current frame: the part a previous occupant of the same
 * memory would have left behind. */
__attribute__((noinline)) static long scan_stack_below(const unsigned char **base)
{
	volatile unsigned char here = 0;
	/* skip a little so scan()'s own frame (just below us) is not read
	 * while it is live; it holds no needle bytes anyway */
	uintptr_t top = (uintptr_t)&here - 512; /* integer maths: not an object */
	*base = (const unsigned char *)(top - 64 * 1024);
	return scan(*base, 64 * 1024);
}

static int leak_read_into(struct scan_state *st)
{
	dl_iterate_phdr(scan_phdr, st);

	size_t mlen = 16 * MIB;
	unsigned char *m = anon(mlen);
	if (m != MAP_FAILED) {
		report_hit(st, "mmap", m, scan(m, mlen));
		munmap(m, mlen);
	} else {
		fprintf(stderr, "leak-read: mmap 16 MiB: %s\n", strerror(errno));
	}

	/* fresh heap memory from brk (where glibc's malloc puts small blocks) */
	uintptr_t cur = raw_brk(0);
	if (cur && raw_brk(cur + MIB) == cur + MIB) {
		long off = scan((void *)cur, MIB);
		raw_brk(cur); /* restore before stdio might touch the heap */
		report_hit(st, "brk", (void *)cur, off);
	}

	const unsigned char *sbase;
	long soff = scan_stack_below(&sbase);
	report_hit(st, "stack", sbase, soff);
	return st->found;
}

static int do_leak_read(void)
{
	struct scan_state st = {0};
	leak_read_into(&st);
	printf("found=%d\n", st.found);
	return 0;
}

/* Positive control: write and read in one process, so found must be 1.
 * Proves the scanner would see a leak if there were one. */
static int do_leak_selftest(void)
{
	leak_write_marker();
	return do_leak_read();
}

/* ---------------------------------------------------------------------- */

/* Wrappers for behaviours that take arguments; argv[2] is the first. */
static int run_args(int argc, char **argv)
{
	return do_args(argc, argv);
}

static int run_exit(int argc, char **argv)
{
	(void)argc;
	exit((int)(parse_num(argv[2], "status") & 0xff));
}

static int run_copy(int argc, char **argv)
{
	bool append = argc > 4 && strcmp(argv[4], "append") == 0;
	return do_copy(argv[2], argv[3], append);
}

static int run_open(int argc, char **argv)
{
	(void)argc;
	return do_open(argv[2]);
}

static int run_memhog(int argc, char **argv)
{
	(void)argc;
	return do_memhog(parse_num(argv[2], "MB"));
}

static int run_bigwrite(int argc, char **argv)
{
	(void)argc;
	return do_bigwrite(parse_num(argv[2], "N"));
}

static int run_spin(void)
{
	do_spin();
}

static int run_sysflood(void)
{
	do_sysflood();
}

/*
 * sysfuzz N SEED: N system calls with random numbers and hostile arguments
 * (small and huge integers, pointers into a scratch buffer, into the
 * monitor's pages, unmapped or non-canonical). Calls that would end the
 * program or pull memory away from under it are skipped, so the run lasts:
 * the point is that the monitor answers every one with an error or a
 * result and stays up. Prints "sysfuzz done calls=N".
 */
static unsigned char fuzz_scratch[65536];

static uint64_t fuzz_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static long fuzz_arg(uint64_t *s)
{
	switch (fuzz_next(s) % 10) {
	case 0: return 0;
	case 1: return (long)(fuzz_next(s) % 16);
	case 2: return -(long)(fuzz_next(s) % 4096);
	case 3: return (long)fuzz_next(s);
	case 4: return (long)(fuzz_scratch + fuzz_next(s) % sizeof(fuzz_scratch));
	case 5: return (long)(fuzz_scratch + sizeof(fuzz_scratch) - fuzz_next(s) % 64);
	case 6: return (long)(0x1000 + fuzz_next(s) % 0x100000); /* monitor pages / NULL area */
	case 7: return (long)0x800000000000ull; /* non-canonical */
	case 8: return (long)(fuzz_next(s) % 0x40000000ull);
	default: return (long)(fuzz_next(s) % 65536);
	}
}

static int run_sysfuzz(int argc, char **argv)
{
	(void)argc;
	unsigned long long n = parse_num(argv[2], "N");
	uint64_t s = parse_num(argv[3], "SEED") * 2654435761u + 1;
	unsigned long long calls = 0;
	for (unsigned long long i = 0; i < n; i++) {
		long nr = (long)(fuzz_next(&s) % 460);
		switch (nr) {
		case SYS_exit: case SYS_exit_group: case SYS_kill: case SYS_tkill: case SYS_tgkill:
		case SYS_munmap: case SYS_mremap: case SYS_madvise: case SYS_mmap: case SYS_brk:
		case SYS_read: case SYS_pread64: case SYS_readv: case SYS_preadv:
		case SYS_arch_prctl: case SYS_futex: case SYS_rt_sigreturn: case SYS_rt_sigprocmask:
		case SYS_rt_sigaction: case SYS_close: case SYS_dup2: case SYS_dup3: case SYS_vfork:
		case SYS_fork: case SYS_clone: case SYS_clone3: case SYS_execve: case SYS_execveat:
		case SYS_pause: case SYS_rt_sigsuspend: case SYS_set_tid_address: case SYS_mprotect:
			continue;
		}
		long a[6];
		for (int k = 0; k < 6; k++)
			a[k] = fuzz_arg(&s);
		if (nr == SYS_write || nr == SYS_writev || nr == SYS_pwrite64 || nr == SYS_pwritev)
			a[0] = 100 + (long)(fuzz_next(&s) % 8); /* no output: nonexistent fds */
		syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		calls++;
	}
	printf("sysfuzz done calls=%llu\n", calls);
	return 0;
}

static const struct behaviour {
	const char *name;
	int nargs;			    /* arguments required after the name */
	int (*run0)(void);		    /* either this ... */
	int (*runv)(int argc, char **argv); /* ... or this */
} behaviours[] = {
    {"hello", 0, do_hello, NULL},
    {"args", 0, NULL, run_args},
    {"exit", 1, NULL, run_exit},
    {"det", 0, do_det, NULL},
    {"cat", 0, do_cat, NULL},
    {"copy", 2, NULL, run_copy},
    {"open", 1, NULL, run_open},
    {"memhog", 1, NULL, run_memhog},
    {"mmaptest", 0, do_mmaptest, NULL},
    {"bigwrite", 1, NULL, run_bigwrite},
    {"jump", 0, do_jump, NULL},
    {"null", 0, do_null, NULL},
    {"priv", 0, do_priv, NULL},
    {"ud2", 0, do_ud2, NULL},
    {"div0", 0, do_div0, NULL},
    {"fault-after-output", 0, do_fault_after_output, NULL},
    {"flood", 0, do_flood, NULL},
    {"spin", 0, run_spin, NULL},
    {"sysflood", 0, run_sysflood, NULL},
    {"enosys", 0, do_enosys, NULL},
    {"leak-write", 0, do_leak_write, NULL},
    {"leak-read", 0, do_leak_read, NULL},
    {"leak-selftest", 0, do_leak_selftest, NULL},
    {"sysfuzz", 2, NULL, run_sysfuzz},
};

static void usage(void)
{
	fputs("usage: nubis-test BEHAVIOUR [ARGS]\n"
	      "  hello | args ... | exit N | det | cat | copy IN OUT [append]\n"
	      "  open PATH | memhog MB | mmaptest | bigwrite N\n"
	      "  jump | null | priv | ud2 | div0 | fault-after-output\n"
	      "  flood | spin | sysflood | enosys\n"
	      "  leak-write | leak-read | leak-selftest | sysfuzz N SEED\n",
	      stderr);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 64;
	}
	for (size_t i = 0; i < sizeof behaviours / sizeof behaviours[0]; i++) {
		const struct behaviour *b = &behaviours[i];
		if (strcmp(argv[1], b->name) != 0)
			continue;
		if (argc < b->nargs + 2) {
			usage();
			return 64;
		}
		return b->run0 ? b->run0() : b->runv(argc, argv);
	}
	fprintf(stderr, "nubis-test: unknown behaviour '%s'\n", argv[1]);
	usage();
	return 64;
}
