/* SPDX-License-Identifier: MIT */
/*
 * fs-test: one static program with one subcommand per family of the
 * service-VM file-system calls (root filesystem, descriptors, pipes,
 * poll/epoll, eventfd, timerfd, locks) plus helpers the e2e tests use to
 * look at the union from inside (cat, write, rm, ls, ...). Built with musl
 * and glibc (tests/guest/meson.build), driven by tests/e2e/test_svc_fs.py.
 *
 * Family subcommands check results against what Linux does and print
 * "fail: ..." lines; the last line is "fs-test NAME: ok" (exit 0) or
 * "fs-test NAME: N failures" (exit 1).
 */
#define _GNU_SOURCE
/* messages are cut to their buffers on purpose */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE	 (1 << 1)
#endif
#ifndef F_OFD_GETLK
#define F_OFD_GETLK  36
#define F_OFD_SETLK  37
#define F_OFD_SETLKW 38
#endif
#ifndef O_PATH
#define O_PATH 010000000
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failures++;                                                                \
			char m_[512];                                                              \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                                     \
			say("fail: %s:%d: %s (%s) errno=%d %s", __func__, __LINE__, #cond, m_,     \
			    errno, strerror(errno));                                               \
		}                                                                                  \
	} while (0)

/* Expect a system call to fail with @e. */
#define ERR(call, e)                                                                               \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		CHECK(r_ == -1 && errno == (e), "%s = %ld, want errno %d", #call, r_, (e));        \
	} while (0)

static long xstatx(int dfd, const char *p, int flags, unsigned mask, uint64_t *size, uint32_t *mode)
{
	/* struct statx: stx_mask@0 u32, stx_mode@28 u16, stx_size@40 u64 (256 bytes) */
	unsigned char b[256];
	long r = syscall(SYS_statx, dfd, p, flags, mask, b);
	if (r == 0) {
		uint16_t m;
		memcpy(size, b + 40, 8);
		memcpy(&m, b + 28, 2);
		*mode = m;
	}
	return r;
}

static void put(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "create %s", path);
	if (fd < 0)
		return;
	CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data), "write %s", path);
	close(fd);
}

static int get(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	int e = errno;
	close(fd);
	if (r < 0)
		return -e;
	buf[r] = 0;
	return (int)r;
}

/* ------------------------------------------------------------ files */

static int t_files(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char buf[256];
	mkdir("/tmp", 0777);
	ERR(open("/tmp/nope", O_RDONLY), ENOENT);
	int fd = open("/tmp/f1", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	CHECK(fd >= 0, "open O_CREAT|O_EXCL");
	ERR(open("/tmp/f1", O_RDWR | O_CREAT | O_EXCL, 0640), EEXIST);
	CHECK(write(fd, "hello world", 11) == 11, "write");
	CHECK(lseek(fd, 0, SEEK_CUR) == 11, "lseek cur");
	CHECK(lseek(fd, 6, SEEK_SET) == 6, "lseek set");
	CHECK(read(fd, buf, 5) == 5 && !memcmp(buf, "world", 5), "read after seek");
	CHECK(read(fd, buf, 5) == 0, "read at eof");
	CHECK(pwrite(fd, "HELLO", 5, 0) == 5, "pwrite");
	CHECK(pread(fd, buf, 11, 0) == 11 && !memcmp(buf, "HELLO world", 11), "pread");
	CHECK(lseek(fd, 0, SEEK_END) == 11, "lseek end");
	struct iovec iov[3] = {{(void *)"ab", 2}, {(void *)"", 0}, {(void *)"cd", 2}};
	CHECK(writev(fd, iov, 3) == 4, "writev");
	char b1[3] = {0}, b2[4] = {0};
	struct iovec riov[2] = {{b1, 2}, {b2, 3}};
	CHECK(preadv(fd, riov, 2, 9) == 5 && !memcmp(b1, "ld", 2) && !memcmp(b2, "abc", 3),
	      "preadv %s %s", b1, b2);
	struct iovec wiov[1] = {{(void *)"ZZ", 2}};
	CHECK(pwritev(fd, wiov, 1, 0) == 2, "pwritev");
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == 15 && S_ISREG(st.st_mode) &&
		  (st.st_mode & 0777) == 0640,
	      "fstat size %ld mode %o", (long)st.st_size, st.st_mode);
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "F_GETFD cloexec");
	CHECK(fcntl(fd, F_SETFD, 0) == 0 && fcntl(fd, F_GETFD) == 0, "F_SETFD");
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "F_GETFL accmode");
	CHECK(fcntl(fd, F_SETFL, O_APPEND) == 0 && (fcntl(fd, F_GETFL) & O_APPEND), "F_SETFL");
	CHECK(pwrite(fd, "", 0, 0) == 0, "zero write");
	CHECK(lseek(fd, 0, SEEK_SET) == 0 && write(fd, "!", 1) == 1 && lseek(fd, 0, SEEK_CUR) == 16,
	      "O_APPEND write goes to the end");
	CHECK(ftruncate(fd, 4) == 0 && fstat(fd, &st) == 0 && st.st_size == 4, "ftruncate");
	ERR(ftruncate(fd, -1), EINVAL);
	CHECK(fsync(fd) == 0 && fdatasync(fd) == 0, "fsync");
	CHECK(fallocate(fd, 0, 0, 65536) == 0 && fstat(fd, &st) == 0 && st.st_size == 65536,
	      "fallocate");
	/* dup family */
	int d = dup(fd);
	CHECK(d > fd, "dup");
	CHECK(dup2(fd, 100) == 100, "dup2");
	CHECK(fcntl(100, F_GETFD) == 0, "dup2 clears cloexec");
	CHECK(dup3(fd, 101, O_CLOEXEC) == 101 && fcntl(101, F_GETFD) == FD_CLOEXEC, "dup3");
	ERR(dup3(fd, fd, 0), EINVAL);
	CHECK(dup2(fd, fd) == fd, "dup2 same");
	CHECK(fcntl(fd, F_DUPFD, 200) == 200, "F_DUPFD");
	CHECK(fcntl(fd, F_DUPFD_CLOEXEC, 200) == 201, "F_DUPFD_CLOEXEC lowest >= 200");
	CHECK(lseek(d, 1, SEEK_SET) == 1 && lseek(fd, 0, SEEK_CUR) == 1, "dup shares offset");
	CHECK(syscall(SYS_close_range, 100, 201, 0) == 0, "close_range");
	ERR(fcntl(100, F_GETFD), EBADF);
	ERR(fcntl(201, F_GETFD), EBADF);
	close(d);
	ERR(close(d), EBADF);
	ERR(read(-1, buf, 1), EBADF);
	ERR(write(12345, buf, 1), EBADF);
	void *volatile bad = (void *)16; /* not guest memory */
	ERR(read(fd, bad, 10), EFAULT);
	close(fd);
	/* O_TRUNC, O_WRONLY, O_RDONLY checks */
	fd = open("/tmp/f1", O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "O_TRUNC");
	ERR(read(fd, buf, 1), EBADF);
	close(fd);
	fd = open("/tmp/f1", O_RDONLY);
	ERR(write(fd, "x", 1), EBADF);
	close(fd);
	/* O_DIRECTORY, O_NOFOLLOW, O_PATH, creat */
	ERR(open("/tmp/f1", O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(open("/tmp", O_WRONLY), EISDIR);
	CHECK(symlink("/tmp/f1", "/tmp/l1") == 0, "symlink");
	ERR(open("/tmp/l1", O_RDONLY | O_NOFOLLOW), ELOOP);
	fd = open("/tmp/l1", O_PATH | O_NOFOLLOW);
	CHECK(fd >= 0, "O_PATH|O_NOFOLLOW");
	ERR(read(fd, buf, 1), EBADF);
	close(fd);
	fd = creat("/tmp/f2", 0600);
	CHECK(fd >= 0, "creat");
	CHECK(write(fd, "0123456789", 10) == 10, "write f2");
	close(fd);
	/* sendfile and copy_file_range */
	int in = open("/tmp/f2", O_RDONLY), out = open("/tmp/f3", O_WRONLY | O_CREAT, 0644);
	off_t off = 2;
	CHECK(sendfile(out, in, &off, 5) == 5 && off == 7, "sendfile off %ld", (long)off);
	CHECK(lseek(in, 0, SEEK_CUR) == 0, "sendfile with offset keeps position");
	CHECK(sendfile(out, in, NULL, 3) == 3 && lseek(in, 0, SEEK_CUR) == 3, "sendfile pos");
	close(out);
	CHECK(get("/tmp/f3", buf, sizeof(buf)) == 8 && !strcmp(buf, "23456012"), "f3=%s", buf);
	out = open("/tmp/f4", O_WRONLY | O_CREAT, 0644);
	loff_t io = 5, oo = 1;
	CHECK(syscall(SYS_copy_file_range, in, &io, out, &oo, 3, 0) == 3 && io == 8 && oo == 4,
	      "copy_file_range io=%ld oo=%ld", (long)io, (long)oo);
	close(in);
	close(out);
	CHECK(get("/tmp/f4", buf, sizeof(buf)) == 4 && !memcmp(buf,
							       "\x00"
							       "567",
							       4),
	      "f4");
	/* fd cap */
	int n = 0, last = 0;
	for (int i = 0; i < 5000; i++) {
		int x = open("/tmp/f2", O_RDONLY);
		if (x < 0) {
			last = errno;
			break;
		}
		n++;
	}
	CHECK(last == EMFILE, "fd cap: %d opened, errno %d", n, last);
	say("max_open=%d", n);
	syscall(SYS_close_range, 3, ~0u, 0);
	return 0;
}

/* ------------------------------------------------------------ dirs */

static void sorted_ls(const char *path, char *out, size_t n)
{
	DIR *d = opendir(path);
	out[0] = 0;
	CHECK(d != NULL, "opendir %s", path);
	if (!d)
		return;
	char *names[512];
	int nn = 0;
	struct dirent *e;
	while ((e = readdir(d)) && nn < 512)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			names[nn++] = strdup(e->d_name);
	closedir(d);
	for (int i = 0; i < nn; i++)
		for (int j = i + 1; j < nn; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	for (int i = 0; i < nn; i++) {
		if (i)
			strncat(out, ",", n - strlen(out) - 1);
		strncat(out, names[i], n - strlen(out) - 1);
		free(names[i]);
	}
}

static int t_dirs(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char buf[4096];
	struct stat st;
	mkdir("/tmp", 0777);
	CHECK(mkdir("/tmp/d", 0755) == 0, "mkdir");
	ERR(mkdir("/tmp/d", 0755), EEXIST);
	ERR(mkdir("/tmp/nope/x", 0755), ENOENT);
	int dfd = open("/tmp/d", O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0, "open dir");
	CHECK(mkdirat(dfd, "sub", 0700) == 0, "mkdirat");
	int fd = openat(dfd, "sub/file", O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0, "openat relative to dirfd");
	close(fd);
	CHECK(fstatat(dfd, "sub/file", &st, 0) == 0 && S_ISREG(st.st_mode), "fstatat");
	CHECK(fstatat(dfd, "", &st, AT_EMPTY_PATH) == 0 && S_ISDIR(st.st_mode), "AT_EMPTY_PATH");
	ERR(read(dfd, buf, 10), EISDIR);
	/* getdents over many entries, several calls */
	for (int i = 0; i < 300; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/tmp/d/e%03d", i);
		put(p, "x");
	}
	DIR *d = opendir("/tmp/d");
	int cnt = 0, dots = 0;
	struct dirent *e;
	long pos100 = -1;
	char name100[256] = "";
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			dots++;
		else
			cnt++;
		if (cnt == 100 && pos100 < 0) {
			pos100 = telldir(d);
			e = readdir(d);
			if (e) {
				snprintf(name100, sizeof(name100), "%s", e->d_name);
				cnt++;
			}
		}
	}
	CHECK(cnt == 301 && dots == 2, "readdir count %d dots %d", cnt, dots);
	seekdir(d, pos100);
	e = readdir(d);
	CHECK(e && !strcmp(e->d_name, name100), "seekdir/telldir: %s vs %s", e ? e->d_name : "-",
	      name100);
	rewinddir(d);
	cnt = 0;
	while ((e = readdir(d)))
		cnt++;
	CHECK(cnt == 303, "after rewinddir %d", cnt);
	closedir(d);
	/* cwd */
	CHECK(chdir("/tmp/d/sub") == 0, "chdir");
	CHECK(getcwd(buf, sizeof(buf)) && !strcmp(buf, "/tmp/d/sub"), "getcwd %s", buf);
	CHECK(access("file", R_OK | W_OK) == 0, "relative access");
	CHECK(chdir("../..") == 0 && getcwd(buf, sizeof(buf)) && !strcmp(buf, "/tmp"), "chdir ..");
	CHECK(fchdir(dfd) == 0 && getcwd(buf, sizeof(buf)) && !strcmp(buf, "/tmp/d"), "fchdir");
	ERR(chdir("/tmp/d/e000"), ENOTDIR);
	ERR(syscall(SYS_getcwd, buf, 3), ERANGE);
	chdir("/");
	/* names */
	CHECK(rename("/tmp/d/e000", "/tmp/d/r0") == 0, "rename");
	ERR(stat("/tmp/d/e000", &st), ENOENT);
	ERR(syscall(SYS_renameat2, AT_FDCWD, "/tmp/d/r0", AT_FDCWD, "/tmp/d/e001",
		    RENAME_NOREPLACE),
	    EEXIST);
	put("/tmp/d/e001", "one");
	put("/tmp/d/r0", "zero");
	CHECK(syscall(SYS_renameat2, AT_FDCWD, "/tmp/d/r0", AT_FDCWD, "/tmp/d/e001",
		      RENAME_EXCHANGE) == 0,
	      "RENAME_EXCHANGE");
	CHECK(get("/tmp/d/e001", buf, sizeof(buf)) == 4 && !strcmp(buf, "zero"), "exchanged");
	CHECK(renameat(dfd, "r0", dfd, "r1") == 0, "renameat");
	ERR(rename("/tmp/d", "/tmp/d/sub/x"), EINVAL);
	CHECK(link("/tmp/d/r1", "/tmp/d/hard") == 0, "link");
	CHECK(stat("/tmp/d/hard", &st) == 0 && st.st_nlink == 2, "nlink %ld", (long)st.st_nlink);
	CHECK(linkat(dfd, "hard", dfd, "hard2", 0) == 0, "linkat");
	ERR(link("/tmp/d/sub", "/tmp/d/dirlink"), EPERM);
	CHECK(symlink("sub/file", "/tmp/d/sl") == 0, "symlink");
	CHECK(symlinkat("/tmp/d/r1", dfd, "sl2") == 0, "symlinkat");
	ssize_t n = readlink("/tmp/d/sl", buf, sizeof(buf));
	CHECK(n == 8 && !memcmp(buf, "sub/file", 8), "readlink");
	n = readlinkat(dfd, "sl2", buf, 4);
	CHECK(n == 4 && !memcmp(buf, "/tmp", 4), "readlinkat truncates");
	ERR(readlink("/tmp/d/r1", buf, sizeof(buf)), EINVAL);
	CHECK(lstat("/tmp/d/sl", &st) == 0 && S_ISLNK(st.st_mode), "lstat");
	CHECK(stat("/tmp/d/sl", &st) == 0 && S_ISREG(st.st_mode), "stat follows");
	uint64_t sz = 0;
	uint32_t mode = 0;
	CHECK(xstatx(AT_FDCWD, "/tmp/d/e001", 0, 0x7ff, &sz, &mode) == 0 && sz == 4 &&
		  (mode & S_IFMT) == S_IFREG,
	      "statx size %lu", (unsigned long)sz);
	CHECK(xstatx(dfd, "", AT_EMPTY_PATH, 0x7ff, &sz, &mode) == 0 && (mode & S_IFMT) == S_IFDIR,
	      "statx AT_EMPTY_PATH");
	CHECK(unlink("/tmp/d/hard2") == 0, "unlink");
	CHECK(unlinkat(dfd, "hard", 0) == 0, "unlinkat");
	ERR(unlink("/tmp/d/sub"), EISDIR);
	ERR(rmdir("/tmp/d/sub"), ENOTEMPTY);
	CHECK(unlinkat(dfd, "sub/file", 0) == 0 && unlinkat(dfd, "sub", AT_REMOVEDIR) == 0,
	      "unlinkat AT_REMOVEDIR");
	ERR(rmdir("/tmp/d/e002"), ENOTDIR);
	/* metadata */
	CHECK(chmod("/tmp/d/e002", 0600) == 0 && stat("/tmp/d/e002", &st) == 0 &&
		  (st.st_mode & 0777) == 0600,
	      "chmod");
	CHECK(fchmodat(dfd, "e002", 0644, 0) == 0, "fchmodat");
	fd = open("/tmp/d/e002", O_RDWR);
	CHECK(fchmod(fd, 0604) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0604,
	      "fchmod");
	struct timespec ts[2] = {{1000, 0}, {2000, 500}};
	CHECK(futimens(fd, ts) == 0 && fstat(fd, &st) == 0 && st.st_mtim.tv_sec == 2000,
	      "futimens");
	close(fd);
	struct timespec ts2[2] = {{0, UTIME_OMIT}, {3000, 0}};
	CHECK(utimensat(AT_FDCWD, "/tmp/d/e002", ts2, 0) == 0 && stat("/tmp/d/e002", &st) == 0 &&
		  st.st_mtim.tv_sec == 3000 && st.st_atim.tv_sec == 1000,
	      "utimensat");
	CHECK(chown("/tmp/d/e002", 0, 0) == 0 && lchown("/tmp/d/sl", 0, 0) == 0, "chown");
	CHECK(truncate("/tmp/d/e002", 100) == 0 && stat("/tmp/d/e002", &st) == 0 &&
		  st.st_size == 100,
	      "truncate");
	mode_t old = umask(077);
	CHECK(old == 022, "umask was %o", old);
	fd = open("/tmp/d/um", O_CREAT | O_WRONLY, 0666);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600, "umask applied %o",
	      st.st_mode & 0777);
	close(fd);
	umask(old);
	CHECK(access("/tmp/d/e002", F_OK) == 0, "access F_OK");
	ERR(access("/tmp/d/nope", F_OK), ENOENT);
	ERR(access("/tmp/d/e002", X_OK), EACCES);
	CHECK(syscall(SYS_faccessat2, dfd, "sl", R_OK, AT_SYMLINK_NOFOLLOW) == 0, "faccessat2");
	struct statfs sf;
	CHECK(statfs("/", &sf) == 0 && sf.f_bsize > 0, "statfs");
	CHECK(fstatfs(dfd, &sf) == 0, "fstatfs");
	/* hidden names */
	ERR(open("/tmp/.wh.x", O_CREAT | O_WRONLY, 0644), EINVAL);
	ERR(mkdir("/.wh..wh..opq", 0755), EINVAL);
	/* mknod: regular files only */
	CHECK(mknod("/tmp/d/node", S_IFREG | 0644, 0) == 0, "mknod regular");
	ERR(mknod("/tmp/d/fifo", S_IFIFO | 0644, 0), EPERM);
	ERR(mknod("/tmp/d/dev", S_IFCHR | 0644, 0x103), EPERM);
	ERR(open("/tmp/d", O_RDONLY | O_TMPFILE, 0600), EINVAL);
	fd = open("/tmp/d", O_RDWR | O_TMPFILE, 0600);
	CHECK(fd >= 0 && write(fd, "anon", 4) == 4 && pread(fd, buf, 4, 0) == 4 &&
		  fstat(fd, &st) == 0 && st.st_nlink == 0 && S_ISREG(st.st_mode),
	      "O_TMPFILE");
	close(fd);
	ERR(open("/tmp/d/e001", O_RDWR | O_TMPFILE, 0600), ENOTDIR);
	close(dfd);
	char ls[8192];
	sorted_ls("/tmp/d", ls, sizeof(ls));
	CHECK(strstr(ls, "e001,e002") && strstr(ls, "r1,sl,sl2,um") && !strstr(ls, "hard"),
	      "listing %.200s", ls);
	return 0;
}

/* ------------------------------------------------------------ pipes etc */

static volatile sig_atomic_t got_pipe;
static void on_pipe(int s)
{
	(void)s;
	got_pipe = 1;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int s)
{
	(void)s;
	got_usr1 = 1;
}

static void *kill_thread(void *arg)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

static void *writer_thread(void *arg)
{
	int fd = *(int *)arg;
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	ssize_t r = write(fd, "late", 4);
	(void)r;
	return NULL;
}

static int t_pipes(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char buf[65536];
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2");
	CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC, "pipe2 O_CLOEXEC");
	CHECK(write(p[1], "abc", 3) == 3, "pipe write");
	int avail = -1;
	CHECK(ioctl(p[0], FIONREAD, &avail) == 0 && avail == 3, "FIONREAD %d", avail);
	CHECK(read(p[0], buf, sizeof(buf)) == 3 && !memcmp(buf, "abc", 3), "pipe read");
	ERR(lseek(p[0], 0, SEEK_SET), ESPIPE);
	ERR(pread(p[0], buf, 1, 0), ESPIPE);
	/* blocking read woken by another thread */
	pthread_t th;
	pthread_create(&th, NULL, writer_thread, &p[1]);
	CHECK(read(p[0], buf, 10) == 4 && !memcmp(buf, "late", 4), "blocking read");
	pthread_join(th, NULL);
	/* non-blocking */
	int on = 1;
	CHECK(ioctl(p[0], FIONBIO, &on) == 0, "FIONBIO");
	ERR(read(p[0], buf, 1), EAGAIN);
	CHECK(fcntl(p[0], F_SETFL, 0) == 0 && !(fcntl(p[0], F_GETFL) & O_NONBLOCK), "clear nb");
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	long total = 0;
	for (;;) {
		ssize_t w = write(p[1], buf, sizeof(buf));
		if (w < 0) {
			CHECK(errno == EAGAIN, "full pipe errno");
			break;
		}
		total += w;
	}
	CHECK(total >= 4096, "pipe capacity %ld", total);
	/* poll / select on it */
	struct pollfd pf[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {999, POLLIN, 0}};
	CHECK(poll(pf, 3, 0) == 2 && (pf[0].revents & POLLIN) && !(pf[1].revents & POLLOUT) &&
		  pf[2].revents == POLLNVAL,
	      "poll %x %x %x", pf[0].revents, pf[1].revents, pf[2].revents);
	while (total > 0) {
		ssize_t r = read(p[0], buf, sizeof(buf));
		if (r <= 0)
			break;
		total -= r;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct pollfd one = {p[0], POLLIN, 0};
	CHECK(poll(&one, 1, 100) == 0, "poll timeout");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(ms >= 90 && ms < 2000, "poll waited %ld ms", ms);
	struct timespec pts = {0, 20 * 1000 * 1000};
	CHECK(ppoll(&one, 1, &pts, NULL) == 0, "ppoll timeout");
	fd_set rs, ws;
	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_SET(p[0], &rs);
	FD_SET(p[1], &ws);
	struct timeval tv = {1, 0};
	CHECK(select(p[1] + 1, &rs, &ws, NULL, &tv) == 1 && !FD_ISSET(p[0], &rs) &&
		  FD_ISSET(p[1], &ws),
	      "select");
	write(p[1], "x", 1);
	FD_ZERO(&rs);
	FD_SET(p[0], &rs);
	struct timespec sts = {1, 0};
	CHECK(pselect(p[0] + 1, &rs, NULL, NULL, &sts, NULL) == 1 && FD_ISSET(p[0], &rs),
	      "pselect");
	read(p[0], buf, 1);
	FD_ZERO(&rs);
	FD_SET(77, &rs);
	tv.tv_sec = 0;
	ERR(select(78, &rs, NULL, NULL, &tv), EBADF);
	/* ppoll's mask is the mask during the wait */
	sigset_t blk, old, empty;
	sigemptyset(&blk);
	sigemptyset(&empty);
	sigaddset(&blk, SIGUSR1);
	signal(SIGUSR1, on_usr1);
	sigprocmask(SIG_BLOCK, &blk, &old);
	pthread_t me = pthread_self();
	pthread_create(&th, NULL, kill_thread, &me);
	struct timespec five = {5, 0};
	ERR(ppoll(&one, 1, &five, &empty), EINTR);
	CHECK(got_usr1, "SIGUSR1 delivered during ppoll");
	pthread_join(th, NULL);
	got_usr1 = 0;
	pthread_create(&th, NULL, kill_thread, &me);
	struct timespec quarter = {0, 250 * 1000 * 1000};
	CHECK(ppoll(&one, 1, &quarter, &blk) == 0, "ppoll with SIGUSR1 blocked times out");
	pthread_join(th, NULL);
	CHECK(!got_usr1, "SIGUSR1 stays pending while blocked");
	sigprocmask(SIG_SETMASK, &old, NULL);
	CHECK(got_usr1, "pending SIGUSR1 delivered on unblock");
	/* EPIPE + SIGPIPE */
	signal(SIGPIPE, on_pipe);
	close(p[0]);
	ERR(write(p[1], "x", 1), EPIPE);
	for (int i = 0; i < 100 && !got_pipe; i++)
		usleep(1000);
	CHECK(got_pipe, "SIGPIPE delivered");
	close(p[1]);
	CHECK(pipe(p) == 0, "pipe");
	/* epoll */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0, "epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ull};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "epoll_ctl add");
	ERR(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
	ERR(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
	struct epoll_event out[4];
	CHECK(epoll_wait(ep, out, 4, 0) == 0, "epoll_wait empty");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(epoll_wait(ep, out, 4, 50) == 0, "epoll_wait timeout");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(ms >= 40, "epoll_wait waited %ld ms", ms);
	pthread_create(&th, NULL, writer_thread, &p[1]);
	int n = epoll_wait(ep, out, 4, 5000);
	CHECK(n == 1 && out[0].data.u64 == 0x1122334455667788ull && (out[0].events & EPOLLIN),
	      "epoll_wait woken n=%d", n);
	pthread_join(th, NULL);
	ev.events = EPOLLIN | EPOLLET;
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0, "epoll_ctl mod");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == 0, "epoll_ctl del");
	CHECK(epoll_pwait(ep, out, 4, 0, NULL) == 0, "epoll_pwait");
	/* eventfd */
	int efd = eventfd(5, EFD_NONBLOCK);
	CHECK(efd >= 0, "eventfd");
	uint64_t v = 0;
	CHECK(read(efd, &v, 8) == 8 && v == 5, "eventfd read %lu", (unsigned long)v);
	ERR(read(efd, &v, 8), EAGAIN);
	ERR(read(efd, &v, 4), EINVAL);
	v = 3;
	CHECK(write(efd, &v, 8) == 8, "eventfd write");
	ev.events = EPOLLIN;
	ev.data.fd = efd;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0 && epoll_wait(ep, out, 4, 100) == 1 &&
		  out[0].data.fd == efd,
	      "epoll on eventfd");
	int sem = eventfd(2, EFD_SEMAPHORE);
	CHECK(read(sem, &v, 8) == 8 && v == 1, "semaphore");
	/* timerfd */
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	CHECK(tfd >= 0, "timerfd_create");
	struct itimerspec its = {{0, 10 * 1000 * 1000}, {0, 20 * 1000 * 1000}}, cur;
	CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime");
	CHECK(timerfd_gettime(tfd, &cur) == 0 && cur.it_interval.tv_nsec == 10000000,
	      "timerfd_gettime");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t exp = 0;
	CHECK(read(tfd, &exp, 8) == 8 && exp >= 1, "timerfd read (blocking)");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(ms >= 10, "timerfd waited %ld ms", ms);
	ERR(timerfd_create(CLOCK_MONOTONIC, 0x1234), EINVAL);
	ERR(timerfd_settime(efd, 0, &its, NULL), EINVAL);
	/* stdio is not a terminal here */
	struct termios tio;
	ERR(tcgetattr(0, &tio), ENOTTY);
	ERR(ioctl(p[0], TCGETS, &tio), ENOTTY);
	ERR(ioctl(p[0], 0x8914 /* SIOCSIFFLAGS */, buf), ENOTTY);
	close(ep);
	close(efd);
	close(sem);
	close(tfd);
	close(p[0]);
	close(p[1]);
	return 0;
}

/* ------------------------------------------------------------ locks */

static int t_locks(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	mkdir("/tmp", 0777);
	int fd = open("/tmp/lockf", O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "open");
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	CHECK(fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK");
	CHECK(fcntl(fd, F_SETLKW, &fl) == 0, "F_SETLKW (own lock)");
	fl.l_type = F_WRLCK;
	CHECK(fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK, "F_GETLK own -> unlocked");
	fl.l_type = F_UNLCK;
	CHECK(fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK unlock");
	/* OFD locks conflict between two open file descriptions */
	int a = open("/tmp/lockf", O_RDWR), b = open("/tmp/lockf", O_RDWR);
	struct flock ol = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	CHECK(fcntl(a, F_OFD_SETLK, &ol) == 0, "OFD lock a");
	ol.l_pid = 0;
	ERR(fcntl(b, F_OFD_SETLK, &ol), EAGAIN);
	ol.l_pid = 0;
	CHECK(fcntl(b, F_OFD_GETLK, &ol) == 0 && ol.l_type == F_WRLCK, "OFD GETLK sees it");
	ol.l_type = F_UNLCK;
	ol.l_pid = 0;
	CHECK(fcntl(a, F_OFD_SETLK, &ol) == 0, "OFD unlock");
	ol.l_type = F_WRLCK;
	CHECK(fcntl(b, F_OFD_SETLKW, &ol) == 0, "OFD lock b");
	/* flock */
	CHECK(flock(a, LOCK_EX | LOCK_NB) == 0, "flock a");
	ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	CHECK(flock(a, LOCK_UN) == 0 && flock(b, LOCK_SH) == 0, "flock b after unlock");
	ERR(flock(a, 77), EINVAL);
	int ro = open("/tmp/lockf", O_RDONLY);
	fl.l_type = F_WRLCK;
	ERR(fcntl(ro, F_SETLK, &fl), EBADF);
	close(ro);
	close(a);
	close(b);
	close(fd);
	return 0;
}

/* ------------------------------------------------------------ /dev, /proc */

static int t_dev(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char buf[4096];
	int fd = open("/dev/null", O_RDWR);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1 && read(fd, buf, 1) == 0, "/dev/null");
	close(fd);
	fd = open("/dev/zero", O_RDONLY);
	memset(buf, 1, 16);
	CHECK(fd >= 0 && read(fd, buf, 16) == 16 && buf[0] == 0 && buf[15] == 0, "/dev/zero");
	close(fd);
	fd = open("/dev/urandom", O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, 32) == 32, "/dev/urandom");
	close(fd);
	fd = open("/dev/full", O_WRONLY);
	ERR(write(fd, "x", 1), ENOSPC);
	close(fd);
	struct stat st;
	CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "stat /dev/null");
	ERR(open("/dev/sda", O_RDONLY), ENOENT);
	ERR(mkdir("/dev/x", 0755), EACCES);
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	CHECK(n > 0, "readlink /proc/self/exe");
	if (n > 0) {
		buf[n] = 0;
		say("exe=%s", buf);
	}
	mkdir("/tmp", 0777);
	fd = open("/tmp/procf", O_CREAT | O_RDWR, 0644);
	char lp[64];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", fd);
	n = readlink(lp, buf, sizeof(buf) - 1);
	CHECK(n == 10 && !memcmp(buf, "/tmp/procf", 10), "readlink %s", lp);
	DIR *d = opendir("/proc/self/fd");
	int cnt = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			cnt++;
	if (d)
		closedir(d);
	CHECK(cnt >= 4, "/proc/self/fd entries %d", cnt);
	CHECK(write(fd, "procdata", 8) == 8, "write procf");
	int again = open(lp, O_RDONLY);
	CHECK(again >= 0 && again != fd && read(again, buf, 8) == 8 && !memcmp(buf, "procdata", 8),
	      "open %s: a new description from offset 0", lp);
	close(again);
	close(fd);
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	snprintf(lp, sizeof(lp), "/dev/fd/%d", p[1]);
	int w = open(lp, O_WRONLY);
	CHECK(w >= 0 && write(w, "viafd", 5) == 5 && read(p[0], buf, 5) == 5 &&
		  !memcmp(buf, "viafd", 5),
	      "open %s of a pipe", lp);
	ERR(open(lp, O_RDONLY), EACCES);
	close(w);
	close(p[0]);
	close(p[1]);
	w = open("/dev/stdout", O_WRONLY);
	CHECK(w > 2, "open /dev/stdout");
	close(w);
	ERR(open("/proc/self/fd/999", O_RDONLY), ENOENT);
	ERR(open("/dev/tty", O_RDWR), ENXIO); /* stdio is not a terminal in the tests */
	chdir("/tmp");
	n = readlink("/proc/self/cwd", buf, sizeof(buf));
	CHECK(n == 4 && !memcmp(buf, "/tmp", 4), "/proc/self/cwd");
	CHECK(get("/proc/self/cwd/procf", buf, sizeof(buf)) == 8, "through /proc/self/cwd");
	chdir("/");
	CHECK(get("/proc/self/stat", buf, sizeof(buf)) > 10 && !strncmp(buf, "1 (", 3),
	      "/proc/self/stat %.40s", buf);
	CHECK(get("/proc/cpuinfo", buf, sizeof(buf)) > 0 && strstr(buf, "processor"), "cpuinfo");
	CHECK(get("/proc/meminfo", buf, sizeof(buf)) > 0 && strstr(buf, "MemTotal"), "meminfo");
	ERR(open("/proc/self/stat", O_WRONLY), EACCES);
	return 0;
}

/* ------------------------------------------------------------ confinement */

static atomic_bool stop_swap;

/* Swap /esc/r between a directory and a symlink to "/" and "../../.." */
static void *swapper(void *arg)
{
	(void)arg;
	unsigned i = 0;
	while (!atomic_load(&stop_swap)) {
		syscall(SYS_renameat2, AT_FDCWD, "/esc/r", AT_FDCWD, "/esc/l", RENAME_EXCHANGE);
		if (++i % 50 == 0) {
			unlink("/esc/l2");
			symlink(i % 100 ? "/" : "../../../../..", "/esc/l2");
			struct stat st;
			if (lstat("/esc/l", &st) == 0 && S_ISLNK(st.st_mode))
				rename("/esc/l2", "/esc/l");
		}
	}
	return NULL;
}

static int t_escape(int argc, char **argv)
{
	/* argv: the host file to reach and its content; must never be read */
	const char *secret = argc > 0 ? argv[0] : "/etc/hostname";
	char buf[4096];
	const char *tries[] = {"/../../../../../../etc/passwd", "/etc/../../../etc/passwd",
			       "/proc/self/root/etc/passwd", "/proc/1/root/../etc/passwd",
			       "/dev/../../etc/passwd"};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		int r = get(tries[i], buf, sizeof(buf));
		CHECK(r < 0 || !strcmp(buf, "GUEST\n"), "%s gave %.40s", tries[i], buf);
	}
	int r = get(secret, buf, sizeof(buf));
	CHECK(r < 0 || strstr(buf, "HOSTSECRET") == NULL, "%s reached", secret);
	mkdir("/esc", 0755);
	symlink("/", "/esc/root");
	symlink("../../../../../../../../..", "/esc/up");
	char p[512];
	snprintf(p, sizeof(p), "/esc/root/../..%s", secret);
	r = get(p, buf, sizeof(buf));
	CHECK(r < 0 || !strstr(buf, "HOSTSECRET"), "%s reached", p);
	snprintf(p, sizeof(p), "/esc/up%s", secret);
	r = get(p, buf, sizeof(buf));
	CHECK(r < 0 || !strstr(buf, "HOSTSECRET"), "%s reached", p);
	r = get("/esc/up/etc/passwd", buf, sizeof(buf));
	CHECK(r > 0 && !strcmp(buf, "GUEST\n"), "/esc/up/etc/passwd = %.40s", buf);
	chdir("/esc");
	for (int i = 0; i < 20; i++)
		chdir("..");
	CHECK(getcwd(buf, sizeof(buf)) && !strcmp(buf, "/"), "cwd %s", buf);
	/* race: another guest thread swaps a directory for a symlink */
	mkdir("/esc/r", 0755);
	put("/esc/r/passwd", "GUEST\n");
	symlink("/etc", "/esc/l");
	pthread_t th;
	pthread_create(&th, NULL, swapper, NULL);
	int ok = 0, bad = 0;
	for (int i = 0; i < 2000; i++) {
		snprintf(p, sizeof(p), i % 2 ? "/esc/r/passwd" : "/esc/r/../r/../../etc/passwd");
		r = get(p, buf, sizeof(buf));
		if (r >= 0) {
			if (strcmp(buf, "GUEST\n"))
				bad++;
			else
				ok++;
		}
		snprintf(p, sizeof(p), "/esc/r/../..%s", secret);
		r = get(p, buf, sizeof(buf));
		if (r >= 0 && strstr(buf, "HOSTSECRET"))
			bad++;
	}
	atomic_store(&stop_swap, true);
	pthread_join(th, NULL);
	CHECK(bad == 0, "race: %d bad reads", bad);
	say("race_ok=%d", ok);
	return 0;
}

/* ------------------------------------------------------------ quota */

static int t_quota(int argc, char **argv)
{
	const char *path = argc > 0 ? argv[0] : "/big";
	char *buf = malloc(1 << 20);
	memset(buf, 'q', 1 << 20);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0, "open %s", path);
	long total = 0;
	int err = 0;
	for (int i = 0; i < 4096; i++) {
		ssize_t w = write(fd, buf, 1 << 20);
		if (w < 0) {
			err = errno;
			break;
		}
		total += w;
	}
	say("written=%ld", total);
	say("errno=%d", err);
	CHECK(err == ENOSPC, "quota errno %d", err);
	ERR(fallocate(fd, 0, total, 64 << 20), ENOSPC);
	ERR(ftruncate(fd, (off_t)total + (1 << 30)), ENOSPC);
	close(fd);
	struct statfs sf;
	if (statfs("/", &sf) == 0)
		say("statfs_total=%llu", (unsigned long long)sf.f_blocks * sf.f_bsize);
	CHECK(unlink(path) == 0, "unlink");
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, buf, 4096) == 4096, "write after unlink frees room");
	close(fd);
	free(buf);
	/* empty files: the number of names is capped too */
	mkdir("/names", 0755);
	int names = 0;
	err = 0;
	for (int i = 0; i < 100000; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/names/%d", i);
		int f = open(p, O_CREAT | O_WRONLY, 0644);
		if (f < 0) {
			err = errno;
			break;
		}
		close(f);
		names++;
	}
	say("names=%d", names);
	CHECK(err == ENOSPC, "names errno %d", err);
	CHECK(unlink("/names/0") == 0 && close(open("/names/again", O_CREAT | O_WRONLY, 0644)) == 0,
	      "a name again after unlink");
	return 0;
}

/* ------------------------------------------------------------ fuzz */

/* A hostile guest: the file-system calls with random, often invalid,
 * arguments (bad pointers, fds, flags, paths). A SIGALRM every 20 ms ends
 * any call that blocks. Passes when the program itself survives; the e2e
 * test checks the monitor (normal and ASan) for crashes and reports. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void on_alarm(int s)
{
	(void)s;
}

/* 64 KiB of data at the start of a 4 MiB area: pointers that run off the
 * end of the data (and lengths up to 1 MiB) stay inside the area. */
static char fz_area[4 << 20];
static char *const fz_buf = fz_area;
#define FZ_BUF 65536
static char fz_long[8192];

static uint64_t fz_ptr(void)
{
	switch (rnd() % 8) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return 0x7ffffffff000ull;
	case 3:
		return (uint64_t)(uintptr_t)(fz_buf + FZ_BUF - 8); /* runs off the end */
	case 4:
		return ~0ull - 64;
	default:
		return (uint64_t)(uintptr_t)fz_buf;
	}
}

static const char *const fz_paths[] = {
    "/fz/a",
    "/fz/b",
    "/fz/d",
    "/fz/d/x",
    "/fz/l",
    "/fz",
    "/",
    "..",
    "/fz/../../..",
    "",
    "/proc/self/fd/3",
    "/proc/self/exe",
    "/dev/null",
    "/dev/zero",
    "/proc/self/stat",
    "/fz/.wh.x",
    "/fz/a/",
    "/fz/l/../../etc",
    "a",
    "d/../../../x",
};

static uint64_t fz_path(void)
{
	unsigned k = (unsigned)(rnd() % 24);
	if (k < sizeof(fz_paths) / sizeof(fz_paths[0]))
		return (uint64_t)(uintptr_t)fz_paths[k];
	if (k == 20)
		return (uint64_t)(uintptr_t)fz_long; /* no NUL within the limit */
	return fz_ptr();
}

static long fz_fd(void)
{
	static const long v[] = {-1, 0, 1,  2,	3,  4,	5,    6,       7,
				 8,  9, 10, 11, 12, 13, 1000, 1 << 30, -100 /* AT_FDCWD */};
	return v[rnd() % (sizeof(v) / sizeof(v[0]))];
}

/* fds that may be closed or replaced: never the standard streams */
static long fz_fd3(void)
{
	long fd = fz_fd();
	return fd >= 0 && fd < 3 ? fd + 3 : fd;
}

static uint64_t fz_len(void)
{
	static const uint64_t v[] = {0, 1, 7, 16, 100, 4096, 65536, 1ull << 31, ~0ull, 1ull << 40};
	return v[rnd() % (sizeof(v) / sizeof(v[0]))];
}

static uint64_t fz_flags(void)
{
	switch (rnd() % 4) {
	case 0:
		return 0;
	case 1:
		return rnd() & 0xffffffff;
	case 2:
		return rnd() & 0x7ff;
	default:
		return (O_CREAT | O_RDWR) ^ (rnd() & (O_TRUNC | O_APPEND | O_EXCL | O_DIRECTORY |
						      O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
	}
}

static int t_fuzz(int argc, char **argv)
{
	long n = argc > 0 ? atol(argv[0]) : 2000;
	rng_state =
	    argc > 1 ? strtoull(argv[1], NULL, 0) * 2654435761ull + 1 : 88172645463325252ull;
	memset(fz_long, 'a', sizeof(fz_long));
	for (size_t i = 0; i < FZ_BUF; i++)
		fz_buf[i] = (char)rnd();
	mkdir("/fz", 0755);
	mkdir("/fz/d", 0755);
	put("/fz/a", "fuzz");
	symlink("/fz/d", "/fz/l");
	chdir("/fz");
	struct sigaction sa = {0};
	sa.sa_handler = on_alarm; /* no SA_RESTART: blocked calls return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct itimerval it = {{0, 20000}, {0, 20000}};
	setitimer(ITIMER_REAL, &it, NULL);
	static const long calls[] = {
	    SYS_read,
	    SYS_write,
	    SYS_pread64,
	    SYS_pwrite64,
	    SYS_readv,
	    SYS_writev,
	    SYS_lseek,
	    SYS_openat,
	    SYS_open,
	    SYS_close,
	    SYS_dup,
	    SYS_dup2,
	    SYS_dup3,
	    SYS_fcntl,
	    SYS_ioctl,
	    SYS_pipe2,
	    SYS_poll,
	    SYS_ppoll,
	    SYS_select,
	    SYS_epoll_create1,
	    SYS_epoll_ctl,
	    SYS_epoll_wait,
	    SYS_eventfd2,
	    SYS_timerfd_create,
	    SYS_timerfd_settime,
	    SYS_timerfd_gettime,
	    SYS_getdents64,
	    SYS_mkdirat,
	    SYS_unlinkat,
	    SYS_renameat2,
	    SYS_linkat,
	    SYS_symlinkat,
	    SYS_readlinkat,
	    SYS_newfstatat,
	    SYS_statx,
	    SYS_faccessat2,
	    SYS_fchdir,
	    SYS_chdir,
	    SYS_getcwd,
	    SYS_ftruncate,
	    SYS_fallocate,
	    SYS_fsync,
	    SYS_utimensat,
	    SYS_fchmodat,
	    SYS_fchownat,
	    SYS_umask,
	    SYS_flock,
	    SYS_statfs,
	    SYS_fstatfs,
	    SYS_sendfile,
	    SYS_copy_file_range,
	    SYS_close_range,
	    SYS_mknodat,
	    SYS_fstat,
	    SYS_truncate,
	    SYS_preadv2,
	    SYS_pwritev2,
	    SYS_pselect6,
	    SYS_epoll_pwait,
	};
	long ok = 0, errs = 0;
	for (long i = 0; i < n; i++) {
		long nr = calls[rnd() % (sizeof(calls) / sizeof(calls[0]))];
		uint64_t a[6] = {(uint64_t)fz_fd(), fz_ptr(), fz_len(), fz_flags(), fz_len(), 0};
		switch (nr) {
		case SYS_open:
		case SYS_chdir:
		case SYS_statfs:
		case SYS_truncate:
			a[0] = fz_path();
			a[1] = nr == SYS_open ? fz_flags() : a[1];
			a[2] = rnd() & 07777;
			break;
		case SYS_openat:
		case SYS_mkdirat:
		case SYS_unlinkat:
		case SYS_readlinkat:
		case SYS_newfstatat:
		case SYS_statx:
		case SYS_faccessat2:
		case SYS_utimensat:
		case SYS_fchmodat:
		case SYS_fchownat:
		case SYS_mknodat:
			a[1] = fz_path();
			a[2] =
			    nr == SYS_openat ? fz_flags() : (rnd() % 2 ? rnd() & 0x1fff : fz_len());
			a[3] = rnd() % 3 ? (uint64_t)(uintptr_t)fz_buf : fz_ptr();
			if (nr == SYS_statx || nr == SYS_readlinkat)
				a[3] = rnd() % 2 ? 0xfff : fz_len();
			if (nr == SYS_statx || nr == SYS_newfstatat)
				a[4] = (uint64_t)(uintptr_t)fz_buf;
			if (nr == SYS_mknodat)
				a[2] = rnd() % 2 ? (S_IFREG | 0644) : rnd();
			break;
		case SYS_renameat2:
		case SYS_linkat:
			a[1] = fz_path();
			a[2] = (uint64_t)fz_fd();
			a[3] = fz_path();
			a[4] = rnd() % 3;
			break;
		case SYS_symlinkat:
			a[0] = fz_path();
			a[1] = (uint64_t)fz_fd();
			a[2] = fz_path();
			break;
		case SYS_close:
		case SYS_dup2:
		case SYS_dup3:
			a[0] = (uint64_t)fz_fd();
			a[1] = (uint64_t)fz_fd3();
			if (nr == SYS_close)
				a[0] = (uint64_t)fz_fd3();
			a[2] = rnd() % 2 ? O_CLOEXEC : fz_flags();
			break;
		case SYS_close_range:
			a[0] = 3 + rnd() % 20;
			a[1] = a[0] + rnd() % 5;
			a[2] = rnd() % 8;
			break;
		case SYS_fcntl:
			a[1] = rnd() % 1100;
			a[2] = rnd() % 2 ? fz_ptr() : rnd() % 64;
			break;
		case SYS_ioctl:
			a[1] = rnd() % 2 ? 0x5400 + rnd() % 0x40 : rnd() & 0xffffffff;
			a[2] = fz_ptr();
			break;
		case SYS_poll:
		case SYS_ppoll:
		case SYS_epoll_wait:
		case SYS_epoll_pwait:
			a[1] = rnd() % 2 ? (uint64_t)(uintptr_t)fz_buf : fz_ptr();
			a[2] = rnd() % 20;
			a[3] = rnd() % 3 ? rnd() % 30 : (uint64_t)-1;
			a[4] = 0;
			if (nr == SYS_ppoll)
				a[2] = 0;
			break;
		case SYS_select:
		case SYS_pselect6:
			a[0] = rnd() % 2000;
			a[1] = a[2] = a[3] = rnd() % 2 ? (uint64_t)(uintptr_t)fz_buf : fz_ptr();
			a[4] = 0;
			a[5] = 0;
			memset(fz_buf + 32768, 0, 64);
			if (rnd() % 2)
				a[4] = (uint64_t)(uintptr_t)(fz_buf + 32768);
			break;
		case SYS_fallocate:
			a[1] = rnd() % 4;
			a[2] = rnd() % 100000;
			a[3] = rnd() % 3 ? rnd() % 200000 : fz_len();
			break;
		case SYS_ftruncate:
			a[1] = rnd() % 2 ? rnd() % 100000 : fz_len();
			break;
		case SYS_sendfile:
		case SYS_copy_file_range:
			a[1] = (uint64_t)fz_fd();
			a[2] = rnd() % 2 ? 0 : (uint64_t)(uintptr_t)(fz_buf + 40000);
			a[3] = nr == SYS_sendfile ? fz_len() % 100000 : (uint64_t)fz_fd();
			a[4] = fz_len() % 100000;
			memset(fz_buf + 40000, 0, 8);
			break;
		case SYS_read:
		case SYS_write:
		case SYS_pread64:
		case SYS_pwrite64:
			a[1] = rnd() % 3 ? (uint64_t)(uintptr_t)fz_buf : fz_ptr();
			a[2] = rnd() % 3 ? rnd() % 65536 : fz_len();
			a[3] = rnd() % 100000;
			break;
		default:
			break;
		}
		/* keep the standard output readable */
		if (nr == SYS_write || nr == SYS_pwrite64 || nr == SYS_writev ||
		    nr == SYS_pwritev2 || nr == SYS_sendfile)
			a[0] = (uint64_t)fz_fd3();
		if (nr == SYS_copy_file_range)
			a[2] = (uint64_t)fz_fd3();
		long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r < 0)
			errs++;
		else
			ok++;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	say("fuzz_calls=%ld ok=%ld errors=%ld", n, ok, errs);
	failures = 0; /* random calls may scribble on the program's own memory */
	return 0;
}

/* ------------------------------------------------------------ bench */

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Per-call cost of common file operations in directory argv[0] (run it
 * natively on the host too, for the ratio). Prints NAME_us=... lines. */
static int t_bench(int argc, char **argv)
{
	const char *dir = argc > 0 ? argv[0] : "/tmp";
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	char p[512], buf[4096];
	memset(buf, 'b', sizeof(buf));
	snprintf(p, sizeof(p), "%s/bench.dat", dir);
	int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0644);
	CHECK(fd >= 0, "open %s", p);
	if (fd < 0)
		return 1;
	struct stat st;
	double t0 = now_us();
	for (int i = 0; i < n; i++)
		syscall(SYS_getppid);
	say("getppid_us=%.2f", (now_us() - t0) / n);
	t0 = now_us();
	for (int i = 0; i < n; i++)
		fstat(fd, &st);
	say("fstat_us=%.2f", (now_us() - t0) / n);
	t0 = now_us();
	for (int i = 0; i < n; i++)
		stat(p, &st);
	say("stat_us=%.2f", (now_us() - t0) / n);
	t0 = now_us();
	for (int i = 0; i < n; i++)
		close(open(p, O_RDONLY));
	say("open_close_us=%.2f", (now_us() - t0) / n);
	t0 = now_us();
	for (int i = 0; i < n; i++)
		CHECK(pwrite(fd, buf, sizeof(buf), (off_t)(i % 256) * 4096) == 4096, "pwrite");
	say("pwrite4k_us=%.2f", (now_us() - t0) / n);
	t0 = now_us();
	for (int i = 0; i < n; i++)
		CHECK(pread(fd, buf, sizeof(buf), (off_t)(i % 256) * 4096) == 4096, "pread");
	say("pread4k_us=%.2f", (now_us() - t0) / n);
	int pp[2];
	CHECK(pipe(pp) == 0, "pipe");
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		CHECK(write(pp[1], buf, 64) == 64, "write");
		CHECK(read(pp[0], buf, 64) == 64, "read");
	}
	say("pipe_rw64_us=%.2f", (now_us() - t0) / n / 2);
	t0 = now_us();
	for (int i = 0; i < n / 10; i++) {
		DIR *d = opendir(dir);
		while (d && readdir(d))
			;
		if (d)
			closedir(d);
	}
	say("readdir_us=%.2f", (now_us() - t0) / (n / 10));
	close(fd);
	unlink(p);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static int h_cat(int argc, char **argv)
{
	char buf[65536];
	for (int i = 0; i < argc; i++) {
		int r = get(argv[i], buf, sizeof(buf));
		if (r < 0) {
			say("%s: error %s", argv[i], strerror(-r));
			continue;
		}
		say("%s=%s", argv[i], buf);
	}
	return 0;
}

static int h_write(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int fd = open(argv[0], O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0) {
		say("error=%s", strerror(errno));
		return 1;
	}
	ssize_t w = write(fd, argv[1], strlen(argv[1]));
	fsync(fd);
	close(fd);
	say("wrote=%zd", w);
	return w == (ssize_t)strlen(argv[1]) ? 0 : 1;
}

static int h_rm(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		struct stat st;
		int r = lstat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? rmdir(argv[i])
									: unlink(argv[i]);
		say("%s=%s", argv[i], r ? strerror(errno) : "removed");
	}
	return 0;
}

static int h_ls(int argc, char **argv)
{
	char out[16384];
	for (int i = 0; i < argc; i++) {
		sorted_ls(argv[i], out, sizeof(out));
		say("%s=%s", argv[i], out);
	}
	return failures ? 1 : 0;
}

static int h_mkdir(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		say("%s=%s", argv[i], mkdir(argv[i], 0755) ? strerror(errno) : "created");
	return 0;
}

/* ------------------------------------------------------------ mmap */

/* File mappings: MAP_SHARED stores reach the file and other mappings of it,
 * file writes show in the mapping, MAP_PRIVATE copies stay private, msync,
 * munmap/MAP_FIXED/mremap over shared mappings, access modes, truncation.
 * Argument: a writable directory. */
static int t_mmap(int argc, char **argv)
{
	const char *dir = argc > 0 ? argv[0] : "/tmp";
	char path[256], c;
	const size_t pg = 4096, len = 3 * 4096;
	snprintf(path, sizeof(path), "%s/mapped", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "create %s", path);
	if (fd < 0)
		return 1;
	char buf[3 * 4096];
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	CHECK(write(fd, buf, len) == (ssize_t)len, "fill");

	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap shared");
	if (p == MAP_FAILED)
		return 1;
	CHECK(!memcmp(p, buf, len), "mapping shows the file");
	/* guest store -> file */
	memcpy(p + 10, "STORE", 5);
	CHECK(pread(fd, &c, 1, 12) == 1 && c == 'O', "store reached the file: %c", c);
	/* file write -> mapping */
	CHECK(pwrite(fd, "W", 1, pg + 7) == 1, "pwrite");
	CHECK(p[pg + 7] == 'W', "file write shows in the mapping: %c", p[pg + 7]);
	/* a second shared mapping (at an offset) shares the pages */
	char *q = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)pg);
	CHECK(q != MAP_FAILED && q != p, "second mapping");
	if (q != MAP_FAILED) {
		CHECK(q[7] == 'W', "second mapping sees the write: %c", q[7]);
		q[100] = 'Q';
		CHECK(p[pg + 100] == 'Q', "stores shared between mappings: %c", p[pg + 100]);
		p[2 * pg + 1] = 'P';
		CHECK(q[pg + 1] == 'P', "and back: %c", q[pg + 1]);
	}
	/* MAP_PRIVATE: a copy on write */
	char *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(r != MAP_FAILED, "mmap private");
	if (r != MAP_FAILED) {
		CHECK(!memcmp(r + 10, "STORE", 5), "private mapping shows the file");
		r[10] = 'x';
		CHECK(p[10] == 'S', "private store stays private: %c", p[10]);
		CHECK(pread(fd, &c, 1, 10) == 1 && c == 'S', "private store not in the file");
		CHECK(munmap(r, len) == 0, "munmap private");
	}
	CHECK(msync(p, len, MS_SYNC) == 0, "msync");
	CHECK(msync(p, len, MS_ASYNC | MS_INVALIDATE) == 0, "msync async");
	ERR(msync(p + 1, pg, MS_SYNC), EINVAL);
	ERR(msync(p, pg, MS_SYNC | MS_ASYNC), EINVAL);
	/* anonymous memory MAP_FIXED over the first page: no longer the file */
	char *a = mmap(p, pg, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(a == p, "MAP_FIXED anonymous over a shared mapping");
	CHECK(p[10] == 0, "fresh anonymous page: %d", p[10]);
	p[10] = 'A';
	CHECK(pread(fd, &c, 1, 10) == 1 && c == 'S', "anonymous store not in the file: %c", c);
	CHECK(p[pg + 100] == 'Q', "rest of the mapping still shared");
	/* munmap of the middle page; the last one stays shared */
	CHECK(munmap(p + pg, pg) == 0, "munmap middle");
	CHECK(pwrite(fd, "T", 1, 2 * pg + 2) == 1, "pwrite");
	CHECK(p[2 * pg + 2] == 'T', "tail mapping still shared: %c", p[2 * pg + 2]);
	if (q != MAP_FAILED) {
		CHECK(q[100] == 'Q', "munmap of one mapping leaves the other");
		/* shrink in place */
		CHECK(mremap(q, 2 * pg, pg, 0) == q, "mremap shrink");
		CHECK(munmap(q, pg) == 0, "munmap second");
	}
	munmap(p, len);
	/* access modes */
	int ro = open(path, O_RDONLY);
	CHECK(ro >= 0, "open ro");
	ERR(mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), EACCES);
	char *s = mmap(NULL, pg, PROT_READ, MAP_SHARED, ro, 0);
	CHECK(s != MAP_FAILED, "read-only shared mapping");
	if (s != MAP_FAILED) {
		CHECK(pwrite(fd, "R", 1, 3) == 1, "pwrite");
		CHECK(s[3] == 'R', "read-only mapping follows the file: %c", s[3]);
		munmap(s, pg);
	}
	int wo = open(path, O_WRONLY);
	ERR(mmap(NULL, pg, PROT_READ, MAP_SHARED, wo, 0), EACCES);
	ERR(mmap(NULL, pg, PROT_READ, MAP_SHARED, 12345, 0), EBADF);
	ERR(mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 100), EINVAL);
	close(wo);
	close(ro);
	/* truncation under a mapping: the monitor must not fault on the pages
	 * now past EOF (Linux: EFAULT; nubis: anonymous zeros) */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap again");
	if (p != MAP_FAILED) {
		CHECK(ftruncate(fd, (off_t)pg) == 0, "ftruncate");
		int nul = open("/dev/null", O_WRONLY);
		ssize_t w = write(nul, p + pg, pg);
		CHECK(w == (ssize_t)pg || (w < 0 && errno == EFAULT), "write from past EOF: %zd", w);
		close(nul);
		p[5] = '5';
		CHECK(pread(fd, &c, 1, 5) == 1 && c == '5', "first page still shared");
		munmap(p, len);
	}
	/* the file as the host sees it afterwards (the e2e test checks) */
	CHECK(pwrite(fd, "HOST-CHECK", 10, 0) == 10, "marker");
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		memcpy(p + 10, "-VIA-MMAP", 9);
		munmap(p, pg);
	}
	close(fd);
	return 0;
}

struct cmd {
	const char *name;
	int (*fn)(int, char **);
	bool family; /* print the ok / failures summary */
};

static const struct cmd cmds[] = {
    {"files", t_files, true}, {"dirs", t_dirs, true},	 {"pipes", t_pipes, true},
    {"locks", t_locks, true}, {"dev", t_dev, true},	 {"escape", t_escape, true},
    {"quota", t_quota, true}, {"fuzz", t_fuzz, true},	 {"bench", t_bench, true},
    {"mmap", t_mmap, true},
    {"cat", h_cat, false},    {"write", h_write, false}, {"rm", h_rm, false},
    {"ls", h_ls, false},      {"mkdir", h_mkdir, false},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		say("usage: fs-test COMMAND [ARGS]");
		return 2;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		int r = cmds[i].fn(argc - 2, argv + 2);
		if (!cmds[i].family)
			return r;
		if (failures) {
			say("fs-test %s: %d failures", argv[1], failures);
			return 1;
		}
		say("fs-test %s: ok", argv[1]);
		return r;
	}
	say("unknown command %s", argv[1]);
	return 2;
}
