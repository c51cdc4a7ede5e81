/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: the union root filesystem (src/svc/vfs.c), on real host
 * directories under a temporary directory, no KVM. Layers are built with
 * plain host calls, the vfs is driven with guest paths, and the results
 * are checked both through the vfs and directly on the host directories.
 *
 * Confinement: every layer holds /etc/passwd = "GUEST"; the host's files
 * (and a "SECRET" file beside the layers) must never be reached, whatever
 * the path, symlink or concurrent change on the host.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/vfs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE	 (1 << 1)
#endif

struct fx {
	char base[256];
	char lower1[300], lower2[300], upper[300], vol[300], outside[300];
	struct vfs *v;
};

static void hpath(char *out, size_t n, const char *dir, const char *rel)
{
	snprintf(out, n, "%s/%s", dir, rel);
}

static void hmkdir(const char *dir, const char *rel)
{
	char p[1024];
	hpath(p, sizeof(p), dir, rel);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void hwrite(const char *dir, const char *rel, const char *data)
{
	char p[1024];
	hpath(p, sizeof(p), dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail_msg("create %s: %s", p, strerror(errno));
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void hsymlink(const char *dir, const char *rel, const char *target)
{
	char p[1024];
	hpath(p, sizeof(p), dir, rel);
	unlink(p);
	if (symlink(target, p) < 0)
		fail_msg("symlink %s: %s", p, strerror(errno));
}

static bool hexists(const char *dir, const char *rel)
{
	char p[1024];
	struct stat st;
	hpath(p, sizeof(p), dir, rel);
	return lstat(p, &st) == 0;
}

static void rm_rf(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", path);
}

/* Layers:
 *   lower2 (bottom): /etc/passwd=GUEST, /a/x=x2, /a/y=y2, /d/old=o2, /gone=g2,
 *                    /opq/keep=k2, /deep/1/2/f=deep
 *   lower1 (top):    /a/x=x1, /a/.wh.y, /.wh.gone, /opq/.wh..wh..opq, /opq/new=n1,
 *                    /b/z=z1, /etc/passwd=GUEST, /lnk -> /a/x
 */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->base, sizeof(f->base), "/tmp/nubis-vfs-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	hpath(f->lower1, sizeof(f->lower1), f->base, "l1");
	hpath(f->lower2, sizeof(f->lower2), f->base, "l2");
	hpath(f->upper, sizeof(f->upper), f->base, "up");
	hpath(f->vol, sizeof(f->vol), f->base, "vol");
	hpath(f->outside, sizeof(f->outside), f->base, "outside");
	mkdir(f->lower1, 0755);
	mkdir(f->lower2, 0755);
	mkdir(f->vol, 0755);
	mkdir(f->outside, 0755);
	hwrite(f->outside, "secret", "SECRET");
	hmkdir(f->lower2, "etc");
	hwrite(f->lower2, "etc/passwd", "GUEST");
	hmkdir(f->lower2, "a");
	hwrite(f->lower2, "a/x", "x2");
	hwrite(f->lower2, "a/y", "y2");
	hmkdir(f->lower2, "d");
	hwrite(f->lower2, "d/old", "o2");
	hwrite(f->lower2, "gone", "g2");
	hmkdir(f->lower2, "opq");
	hwrite(f->lower2, "opq/keep", "k2");
	hmkdir(f->lower2, "deep");
	hmkdir(f->lower2, "deep/1");
	hmkdir(f->lower2, "deep/1/2");
	hwrite(f->lower2, "deep/1/2/f", "deep");
	hmkdir(f->lower1, "a");
	hwrite(f->lower1, "a/x", "x1");
	hwrite(f->lower1, "a/.wh.y", "");
	hwrite(f->lower1, ".wh.gone", "");
	hmkdir(f->lower1, "opq");
	hwrite(f->lower1, "opq/.wh..wh..opq", "");
	hwrite(f->lower1, "opq/new", "n1");
	hmkdir(f->lower1, "b");
	hwrite(f->lower1, "b/z", "z1");
	hmkdir(f->lower1, "etc");
	hwrite(f->lower1, "etc/passwd", "GUEST");
	hsymlink(f->lower1, "lnk", "/a/x");
	hwrite(f->vol, "v", "vol");

	const char *lowers[] = {f->lower1, f->lower2};
	struct vfs_volume vols[] = {{f->vol, "/mnt/data", false}};
	struct vfs_config cfg = {lowers, 2, f->upper, 0, vols, 1};
	struct nb_error err = {0};
	if (vfs_create(&cfg, &f->v, &err) < 0) {
		fprintf(stderr, "vfs_create: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vfs_destroy(f->v);
	rm_rf(f->base);
	free(f);
	return 0;
}

/* Read guest file @path into @buf (NUL-terminated); returns length or -errno. */
static long gread(struct vfs *v, const char *path, char *buf, size_t n)
{
	struct vfs_file *vf;
	int fd = vfs_open(v, path, O_RDONLY, 0, &vf);
	if (fd < 0)
		return fd;
	ssize_t r = pread(fd, buf, n - 1, 0);
	close(fd);
	vfs_file_destroy(vf);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	return r;
}

static void expect_content(struct vfs *v, const char *path, const char *want)
{
	char buf[256];
	long r = gread(v, path, buf, sizeof(buf));
	if (r < 0)
		fail_msg("read %s: %s", path, strerror((int)-r));
	if (strcmp(buf, want))
		fail_msg("read %s: \"%s\", want \"%s\"", path, buf, want);
}

static void expect_err(long got, int want, const char *what)
{
	if (got != -want)
		fail_msg("%s: got %ld (%s), want -%s", what, got,
			 got < 0 ? strerror((int)-got) : "ok", strerror(want));
}

static void gwrite(struct vfs *v, const char *path, int flags, const char *data)
{
	struct vfs_file *vf;
	int fd = vfs_open(v, path, O_WRONLY | flags, 0644, &vf);
	if (fd < 0)
		fail_msg("open %s for writing: %s", path, strerror(-fd));
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	vfs_file_destroy(vf);
}

/* Names in guest directory @path, sorted, joined by ',' (without . and ..). */
static void list(struct vfs *v, const char *path, char *out, size_t n)
{
	struct vfs_file *vf;
	int fd = vfs_open(v, path, O_RDONLY | O_DIRECTORY, 0, &vf);
	if (fd < 0)
		fail_msg("opendir %s: %s", path, strerror(-fd));
	char *names[256];
	size_t nn = 0;
	uint64_t pos = 0;
	char buf[512]; /* small on purpose: several calls */
	for (;;) {
		long r = vfs_getdents(v, vf, &pos, buf, sizeof(buf));
		assert_true(r >= 0);
		if (r == 0)
			break;
		for (long o = 0; o < r;) {
			uint16_t rl;
			memcpy(&rl, buf + o + 16, 2);
			const char *nm = buf + o + 19;
			if (strcmp(nm, ".") && strcmp(nm, "..") && nn < 256)
				names[nn++] = strdup(nm);
			o += rl;
		}
	}
	close(fd);
	vfs_file_destroy(vf);
	for (size_t i = 0; i < nn; i++)
		for (size_t j = i + 1; j < nn; j++)
			if (strcmp(names[i], names[j]) > 0) {
				char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	out[0] = 0;
	for (size_t i = 0; i < nn; i++) {
		if (i)
			strncat(out, ",", n - strlen(out) - 1);
		strncat(out, names[i], n - strlen(out) - 1);
		free(names[i]);
	}
}

static void expect_list(struct vfs *v, const char *path, const char *want)
{
	char got[2048];
	list(v, path, got, sizeof(got));
	if (strcmp(got, want))
		fail_msg("ls %s: \"%s\", want \"%s\"", path, got, want);
}

/* ------------------------------------------------------------------ */

static void test_lookup_layers(void **state)
{
	struct fx *f = *state;
	struct stat st;
	expect_content(f->v, "/a/x", "x1");			    /* top layer wins */
	expect_err(vfs_stat(f->v, "/a/y", 0, &st), ENOENT, "/a/y"); /* whiteout */
	expect_err(vfs_stat(f->v, "/gone", 0, &st), ENOENT, "/gone");
	expect_err(vfs_stat(f->v, "/opq/keep", 0, &st), ENOENT, "/opq/keep"); /* opaque */
	expect_content(f->v, "/opq/new", "n1");
	expect_content(f->v, "/d/old", "o2");
	expect_content(f->v, "/b/z", "z1");
	expect_content(f->v, "/lnk", "x1"); /* absolute symlink, resolved in the VM */
	expect_content(f->v, "/deep/1/../1/2/./f", "deep");
	expect_content(f->v, "/mnt/data/v", "vol");
	expect_err(vfs_stat(f->v, "/a/.wh.y", AT_SYMLINK_NOFOLLOW, &st), ENOENT, ".wh. name");
	expect_err(vfs_stat(f->v, "/opq/.wh..wh..opq", 0, &st), ENOENT, "opaque marker");
	expect_err(vfs_stat(f->v, "/a/x/", 0, &st), ENOTDIR, "file with /");
	assert_int_equal(vfs_stat(f->v, "/lnk", AT_SYMLINK_NOFOLLOW, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	char buf[64];
	long n = vfs_readlink(f->v, "/lnk", buf, sizeof(buf));
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "/a/x", 4);
	char real[VFS_PATH_MAX];
	assert_int_equal(vfs_realdir(f->v, "/deep/1/2/../..//", real), 0);
	assert_string_equal(real, "/deep");
}

static void test_listing(void **state)
{
	struct fx *f = *state;
	expect_list(f->v, "/a", "x");
	expect_list(f->v, "/opq", "new");
	expect_list(f->v, "/", "a,b,d,deep,dev,etc,lnk,mnt,opq,proc");
	expect_list(f->v, "/mnt", "data");
	expect_list(f->v, "/dev", "fd,full,null,random,stderr,stdin,stdout,urandom,zero");
	/* rewind gives the same listing; cookies are stable */
	struct vfs_file *vf;
	int fd = vfs_open(f->v, "/", O_RDONLY | O_DIRECTORY, 0, &vf);
	assert_true(fd >= 0);
	char b1[4096], b2[4096];
	uint64_t pos = 0;
	long r1 = vfs_getdents(f->v, vf, &pos, b1, sizeof(b1));
	assert_true(r1 > 0);
	assert_int_equal(vfs_dir_seek(vf, 3), 0);
	pos = 3;
	long r2 = vfs_getdents(f->v, vf, &pos, b2, sizeof(b2));
	assert_true(r2 > 0 && r2 < r1);
	/* the record after cookie 3 in the first read is the first of the second */
	long o = 0;
	for (int i = 0; i < 3; i++) {
		uint16_t rl;
		memcpy(&rl, b1 + o + 16, 2);
		o += rl;
	}
	assert_string_equal(b1 + o + 19, b2 + 19);
	assert_int_equal(vfs_getdents(f->v, vf, &pos, b2, 10), 0 /* at end */);
	pos = 0;
	expect_err(vfs_getdents(f->v, vf, &pos, b2, 10), EINVAL, "tiny buffer");
	expect_err(vfs_dir_seek(vf, 10000), EINVAL, "seek past end");
	close(fd);
	vfs_file_destroy(vf);
	/* an open directory that is removed lists . and .. only */
	fd = vfs_open(f->v, "/d", O_RDONLY | O_DIRECTORY, 0, &vf);
	assert_true(fd >= 0);
	assert_int_equal(vfs_unlink(f->v, "/d/old"), 0);
	assert_int_equal(vfs_rmdir(f->v, "/d"), 0);
	pos = 0;
	r1 = vfs_getdents(f->v, vf, &pos, b1, sizeof(b1));
	assert_int_equal(pos, 2);
	assert_true(r1 > 0);
	close(fd);
	vfs_file_destroy(vf);
}

static void test_copy_up(void **state)
{
	struct fx *f = *state;
	char p[1024];
	struct stat lst, st;
	hpath(p, sizeof(p), f->lower2, "d/old");
	struct timespec ts[2] = {{1000000, 0}, {2000000, 0}};
	utimensat(AT_FDCWD, p, ts, 0);
	chmod(p, 0640);
	stat(p, &lst);
	gwrite(f->v, "/d/old", O_APPEND, "+up");
	expect_content(f->v, "/d/old", "o2+up");
	assert_true(hexists(f->upper, "d/old"));
	hpath(p, sizeof(p), f->lower2, "d/old");
	char buf[64];
	int fd = open(p, O_RDONLY);
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 2); /* the lower layer is untouched */
	hpath(p, sizeof(p), f->upper, "d/old");
	stat(p, &st);
	assert_int_equal(st.st_mode & 07777, 0640);
	hpath(p, sizeof(p), f->upper, "d");
	stat(p, &st);
	assert_true(S_ISDIR(st.st_mode));
	/* O_TRUNC copy-up skips data */
	gwrite(f->v, "/a/x", O_TRUNC, "new");
	expect_content(f->v, "/a/x", "new");
	/* chmod, utimens, truncate copy up */
	assert_int_equal(vfs_chmod(f->v, "/b/z", 0600, 0), 0);
	assert_int_equal(vfs_stat(f->v, "/b/z", 0, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(hexists(f->upper, "b/z"));
	assert_int_equal(vfs_utimens(f->v, "/deep/1/2/f", ts, 0), 0);
	assert_int_equal(vfs_stat(f->v, "/deep/1/2/f", 0, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 2000000);
	assert_true(hexists(f->upper, "deep/1/2/f"));
	assert_int_equal(vfs_truncate(f->v, "/etc/passwd", 2), 0);
	expect_content(f->v, "/etc/passwd", "GU");
	/* set-user-ID bits never reach the host */
	assert_int_equal(vfs_chmod(f->v, "/b/z", 04755, 0), 0);
	hpath(p, sizeof(p), f->upper, "b/z");
	stat(p, &st);
	assert_int_equal(st.st_mode & 07777, 0755);
	/* new files go to upper and may not carry .wh. names */
	gwrite(f->v, "/newfile", O_CREAT | O_EXCL, "n");
	assert_true(hexists(f->upper, "newfile"));
	struct vfs_file *vf;
	expect_err(vfs_open(f->v, "/.wh.evil", O_CREAT | O_WRONLY, 0644, &vf), EINVAL, ".wh.");
	expect_err(vfs_mkdir(f->v, "/.wh..wh..opq", 0755), EINVAL, ".wh. mkdir");
	expect_err(vfs_open(f->v, "/newfile", O_CREAT | O_EXCL | O_WRONLY, 0644, &vf), EEXIST,
		   "O_EXCL");
	expect_err(vfs_open(f->v, "/a", O_WRONLY, 0, &vf), EISDIR, "dir for writing");
	expect_err(vfs_open(f->v, "/a/x", O_RDONLY | O_DIRECTORY, 0, &vf), ENOTDIR, "O_DIRECTORY");
	expect_err(vfs_open(f->v, "/lnk", O_RDONLY | O_NOFOLLOW, 0, &vf), ELOOP, "O_NOFOLLOW");
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct stat st;
	/* unlink of a lower file: whiteout in upper */
	assert_int_equal(vfs_unlink(f->v, "/d/old"), 0);
	expect_err(vfs_stat(f->v, "/d/old", 0, &st), ENOENT, "deleted");
	assert_true(hexists(f->upper, "d/.wh.old"));
	expect_list(f->v, "/d", "");
	/* recreate: whiteout removed */
	gwrite(f->v, "/d/old", O_CREAT, "again");
	expect_content(f->v, "/d/old", "again");
	assert_false(hexists(f->upper, "d/.wh.old"));
	/* rmdir of a non-empty dir fails; empty after unlinks works */
	expect_err(vfs_rmdir(f->v, "/a"), ENOTEMPTY, "rmdir /a");
	assert_int_equal(vfs_unlink(f->v, "/a/x"), 0);
	expect_list(f->v, "/a", "");
	assert_int_equal(vfs_rmdir(f->v, "/a"), 0);
	expect_err(vfs_stat(f->v, "/a", 0, &st), ENOENT, "rmdir'ed");
	assert_true(hexists(f->upper, ".wh.a"));
	/* mkdir over it: opaque, the lower contents stay hidden */
	assert_int_equal(vfs_mkdir(f->v, "/a", 0755), 0);
	expect_list(f->v, "/a", "");
	assert_true(hexists(f->upper, "a/.wh..wh..opq"));
	assert_false(hexists(f->upper, ".wh.a"));
	expect_err(vfs_stat(f->v, "/a/x", 0, &st), ENOENT, "under opaque");
	/* error cases */
	expect_err(vfs_rmdir(f->v, "/"), EBUSY, "rmdir /");
	expect_err(vfs_rmdir(f->v, "/mnt/data"), EBUSY, "rmdir volume");
	expect_err(vfs_unlink(f->v, "/b"), EISDIR, "unlink dir");
	expect_err(vfs_rmdir(f->v, "/b/z"), ENOTDIR, "rmdir file");
	expect_err(vfs_unlink(f->v, "/nothing"), ENOENT, "unlink missing");
	expect_err(vfs_unlink(f->v, "/dev/null"), EACCES, "unlink /dev/null");
}

static void test_rename_link(void **state)
{
	struct fx *f = *state;
	struct stat st;
	/* file from lower to a new name: copy-up + whiteout of the old name */
	assert_int_equal(vfs_rename(f->v, "/b/z", "/d/z2", 0), 0);
	expect_content(f->v, "/d/z2", "z1");
	expect_err(vfs_stat(f->v, "/b/z", 0, &st), ENOENT, "renamed away");
	assert_true(hexists(f->upper, "b/.wh.z"));
	/* over an existing lower file */
	gwrite(f->v, "/tmpf", O_CREAT, "T");
	assert_int_equal(vfs_rename(f->v, "/tmpf", "/etc/passwd", 0), 0);
	expect_content(f->v, "/etc/passwd", "T");
	expect_err(vfs_rename(f->v, "/d/z2", "/etc/passwd", RENAME_NOREPLACE), EEXIST, "NOREPLACE");
	assert_int_equal(vfs_rename(f->v, "/d/z2", "/etc/passwd", RENAME_EXCHANGE), 0);
	expect_content(f->v, "/etc/passwd", "z1");
	expect_content(f->v, "/d/z2", "T");
	/* lower directories: EXDEV like overlayfs; upper-only ones move */
	expect_err(vfs_rename(f->v, "/deep", "/deep2", 0), EXDEV, "lower dir");
	assert_int_equal(vfs_mkdir(f->v, "/newd", 0755), 0);
	gwrite(f->v, "/newd/f", O_CREAT, "in");
	assert_int_equal(vfs_rename(f->v, "/newd", "/movedd", 0), 0);
	expect_content(f->v, "/movedd/f", "in");
	expect_err(vfs_rename(f->v, "/movedd", "/movedd/sub", 0), EINVAL, "into itself");
	expect_err(vfs_rename(f->v, "/movedd/f", "/mnt/data/f", 0), EXDEV, "to a volume");
	expect_err(vfs_rename(f->v, "/", "/x", 0), EBUSY, "rename /");
	/* hard link of a lower file copies it up first */
	assert_int_equal(vfs_link(f->v, "/opq/new", "/opq/new2", 0), 0);
	assert_int_equal(vfs_stat(f->v, "/opq/new2", 0, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	expect_err(vfs_link(f->v, "/opq", "/opq3", 0), EPERM, "link dir");
	/* symlinks */
	assert_int_equal(vfs_symlink(f->v, "../etc/passwd", "/d/rel"), 0);
	expect_content(f->v, "/d/rel", "z1");
	expect_err(vfs_symlink(f->v, "x", "/d/rel"), EEXIST, "symlink exists");
	/* volume: plain host directory */
	gwrite(f->v, "/mnt/data/w", O_CREAT, "W");
	assert_true(hexists(f->vol, "w"));
	assert_int_equal(vfs_rename(f->v, "/mnt/data/w", "/mnt/data/w2", 0), 0);
	assert_true(hexists(f->vol, "w2"));
	assert_int_equal(vfs_unlink(f->v, "/mnt/data/w2"), 0);
	assert_false(hexists(f->vol, "w2"));
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	const char *lowers[] = {f->lower1, f->lower2};
	struct vfs_volume vols[] = {{f->vol, "/ro", true}};
	struct vfs_config cfg = {lowers, 2, NULL, 0, vols, 1};
	struct vfs *v;
	struct nb_error err = {0};
	assert_int_equal(vfs_create(&cfg, &v, &err), 0);
	struct vfs_file *vf;
	expect_err(vfs_open(v, "/a/x", O_WRONLY, 0, &vf), EROFS, "no upper");
	expect_err(vfs_mkdir(v, "/new", 0755), EROFS, "mkdir no upper");
	expect_err(vfs_open(v, "/ro/v", O_RDWR, 0, &vf), EROFS, "ro volume");
	expect_err(vfs_unlink(v, "/ro/v"), EROFS, "unlink ro volume");
	expect_err(vfs_access(v, "/ro/v", W_OK, 0), EROFS, "access W_OK");
	assert_int_equal(vfs_access(v, "/ro/v", R_OK, 0), 0);
	expect_content(v, "/ro/v", "vol");
	vfs_destroy(v);
	/* a volume below a symlink of the image is found through the link */
	hsymlink(f->lower1, "run", "/b");
	struct vfs_volume under[] = {{f->vol, "/run/v", false}};
	struct vfs_config c1 = {lowers, 2, f->upper, 0, under, 1};
	assert_int_equal(vfs_create(&c1, &v, &err), 0);
	expect_content(v, "/run/v/v", "vol");
	expect_content(v, "/b/v/v", "vol");
	vfs_destroy(v);
	/* bad configurations are errors with a message, not crashes */
	struct vfs_volume bad[] = {{f->vol, "relative", false}};
	struct vfs_config c2 = {lowers, 2, NULL, 0, bad, 1};
	assert_int_equal(vfs_create(&c2, &v, &err), -1);
	assert_non_null(strstr(err.msg, "relative"));
	struct vfs_volume dots[] = {{f->vol, "/a/../b", false}};
	c2.volumes = dots;
	assert_int_equal(vfs_create(&c2, &v, &err), -1);
	const char *missing[] = {"/nonexistent/layer"};
	struct vfs_config c3 = {missing, 1, NULL, 0, NULL, 0};
	assert_int_equal(vfs_create(&c3, &v, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/layer"));
}

static void test_quota(void **state)
{
	struct fx *f = *state;
	char up2[400];
	hpath(up2, sizeof(up2), f->base, "upq");
	const char *lowers[] = {f->lower1, f->lower2};
	struct vfs_config cfg = {lowers, 2, up2, 256 * 1024, NULL, 0};
	struct vfs *v;
	struct nb_error err = {0};
	assert_int_equal(vfs_create(&cfg, &v, &err), 0);
	struct vfs_file *vf;
	int fd = vfs_open(v, "/big", O_CREAT | O_WRONLY, 0644, &vf);
	assert_true(fd >= 0);
	assert_true(vfs_quota_applies(v, vf));
	char *buf = calloc(1, 64 * 1024);
	memset(buf, 'q', 64 * 1024);
	uint64_t total = 0;
	int last = 0;
	for (int i = 0; i < 16; i++) {
		uint64_t len = 64 * 1024, tok;
		int r = vfs_quota_begin(v, fd, total, &len, &tok);
		if (r) {
			last = r;
			break;
		}
		ssize_t w = pwrite(fd, buf, len, (off_t)total);
		vfs_quota_end(v, fd, tok);
		assert_true(w > 0);
		total += (uint64_t)w;
	}
	assert_int_equal(last, -ENOSPC);
	assert_true(total <= 256 * 1024);
	assert_true(total >= 192 * 1024);
	assert_true(vfs_quota_used(v) <= 256 * 1024 + 4096);
	/* a sparse file cannot be filled past the quota either */
	assert_int_equal(vfs_unlink(v, "/big"), 0);
	close(fd);
	vfs_file_destroy(vf);
	fd = vfs_open(v, "/sparse", O_CREAT | O_RDWR, 0644, &vf);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 200 * 1024), 0); /* no blocks yet */
	uint64_t filled = 0;
	last = 0;
	for (int i = 0; i < 16; i++) {
		uint64_t len = 64 * 1024, tok;
		/* back to front, so every write lands inside the file's size */
		uint64_t off = i < 3 ? (uint64_t)(2 - i) * 64 * 1024 : 0;
		int r = vfs_quota_begin(v, fd, off, &len, &tok);
		if (r) {
			last = r;
			break;
		}
		ssize_t w = pwrite(fd, buf, len, (off_t)off);
		vfs_quota_end(v, fd, tok);
		assert_true(w > 0);
		filled += (uint64_t)w;
		if (i >= 3) {
			/* now past the end: grows until the quota */
			uint64_t l2 = 64 * 1024;
			r = vfs_quota_begin(v, fd, 200 * 1024 + filled, &l2, &tok);
			if (r) {
				last = r;
				break;
			}
			w = pwrite(fd, buf, l2, (off_t)(200 * 1024 + filled));
			vfs_quota_end(v, fd, tok);
			filled += (uint64_t)(w > 0 ? w : 0);
		}
	}
	assert_int_equal(last, -ENOSPC);
	struct stat sst;
	fstat(fd, &sst);
	assert_true((uint64_t)sst.st_blocks * 512 <= 256 * 1024 + 8192);
	assert_true(vfs_quota_used(v) <= 256 * 1024 + 8192);
	close(fd);
	vfs_file_destroy(vf);
	assert_int_equal(vfs_unlink(v, "/sparse"), 0);
	/* fill 192 KiB of the 256 again */
	fd = vfs_open(v, "/big", O_CREAT | O_WRONLY, 0644, &vf);
	for (int i = 0; i < 3; i++) {
		uint64_t len = 64 * 1024, tok;
		assert_int_equal(vfs_quota_begin(v, fd, (uint64_t)i * len, &len, &tok), 0);
		assert_int_equal(pwrite(fd, buf, len, (off_t)i * 64 * 1024), 64 * 1024);
		vfs_quota_end(v, fd, tok);
	}
	close(fd);
	vfs_file_destroy(vf);
	/* copy-up of a file larger than the room left fails with ENOSPC */
	char p[1024];
	hpath(p, sizeof(p), f->lower2, "d/bigl");
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	for (int i = 0; i < 2; i++)
		assert_int_equal(write(fd, buf, 64 * 1024), 64 * 1024);
	fsync(fd);
	close(fd);
	expect_err(vfs_open(v, "/d/bigl", O_WRONLY, 0, &vf), ENOSPC, "copy-up over quota");
	expect_err(vfs_truncate(v, "/big", 10 * 1024 * 1024), ENOSPC, "truncate grow");
	/* deleting frees room; the count survives a re-creation (walk at init) */
	assert_int_equal(vfs_unlink(v, "/big"), 0);
	assert_true(vfs_quota_used(v) < 8192);
	fd = vfs_open(v, "/d/bigl", O_WRONLY, 0, &vf);
	assert_true(fd >= 0);
	close(fd);
	vfs_file_destroy(vf);
	uint64_t used = vfs_quota_used(v);
	assert_true(used >= 128 * 1024);
	vfs_destroy(v);
	char tmpf[600];
	snprintf(tmpf, sizeof(tmpf), "%s/.wh..wh..cu.77", up2); /* as after a crash */
	int tfd = open(tmpf, O_CREAT | O_WRONLY, 0600);
	assert_true(tfd >= 0);
	assert_int_equal(write(tfd, buf, 4096), 4096);
	close(tfd);
	assert_int_equal(vfs_create(&cfg, &v, &err), 0);
	assert_int_equal(vfs_quota_used(v), used);
	assert_true(access(tmpf, F_OK) < 0); /* removed by the walk */
	/* an O_TMPFILE file counts while open and gives its blocks back at close */
	uint64_t u0 = vfs_quota_used(v);
	fd = vfs_open_tmpfile(v, "/d", O_RDWR, 0600, &vf);
	assert_true(fd >= 0);
	assert_true(vf->upper && vf->tmpfile);
	uint64_t tl = 32 * 1024, ttok;
	assert_int_equal(vfs_quota_begin(v, fd, 0, &tl, &ttok), 0);
	assert_int_equal(pwrite(fd, buf, tl, 0), (ssize_t)tl);
	vfs_quota_end(v, fd, ttok);
	assert_true(vfs_quota_used(v) >= u0 + 32 * 1024);
	vfs_file_closing(v, vf, fd);
	close(fd);
	vfs_file_destroy(vf);
	assert_int_equal(vfs_quota_used(v), u0);
	expect_err(vfs_open_tmpfile(v, "/d", O_RDONLY, 0600, &vf), EINVAL, "O_TMPFILE read-only");
	expect_err(vfs_open_tmpfile(v, "/dev", O_RDWR, 0600, &vf), EOPNOTSUPP, "O_TMPFILE /dev");
	/* names are capped too (max(quota / VFS_ENTRY_BYTES, 1024)): no inode flood */
	int made = 0, lasterr = 0;
	assert_int_equal(vfs_mkdir(v, "/many", 0755), 0);
	for (int i = 0; i < 5000; i++) {
		char nm[64];
		snprintf(nm, sizeof(nm), i % 2 ? "/many/f%d" : "/many/s%d", i);
		int r;
		if (i % 2) {
			struct vfs_file *nf;
			r = vfs_open(v, nm, O_CREAT | O_WRONLY, 0644, &nf);
			if (r >= 0) {
				close(r);
				vfs_file_destroy(nf);
				r = 0;
			}
		} else {
			r = vfs_symlink(v, "x", nm);
		}
		if (r) {
			lasterr = r;
			break;
		}
		made++;
	}
	assert_int_equal(lasterr, -ENOSPC);
	assert_true(made > 900 && made < 1024);
	expect_err(vfs_mkdir(v, "/many/d", 0755), ENOSPC, "mkdir at the entry cap");
	assert_int_equal(vfs_unlink(v, "/many/s0"), 0);
	assert_int_equal(vfs_mkdir(v, "/many/d", 0755), 0);
	struct statfs sf;
	assert_int_equal(vfs_statfs(v, "/", &sf), 0);
	assert_int_equal((uint64_t)sf.f_blocks * (uint64_t)sf.f_bsize, 256 * 1024);
	vfs_destroy(v);
	free(buf);
	unlink(p);
}

/* Every way out: result must be the guest's file, or an error. */
static void test_escapes(void **state)
{
	struct fx *f = *state;
	char buf[256], target[512];
	struct vfs_file *vf;
	const char *guest_passwd[] = {
	    "/../../../../etc/passwd",	     "/etc/../../etc/passwd",
	    "/a/../../../etc/passwd",	     "/proc/self/root/etc/passwd",
	    "/proc/1/root/../../etc/passwd", "/dev/../../etc/passwd",
	    "/mnt/data/../../../etc/passwd",
	};
	for (size_t i = 0; i < sizeof(guest_passwd) / sizeof(guest_passwd[0]); i++)
		expect_content(f->v, guest_passwd[i], "GUEST");
	/* symlinks placed in a lower layer (image) and in upper (guest) */
	snprintf(target, sizeof(target), "%s/secret", f->outside);
	hsymlink(f->lower1, "abs_out", target); /* host absolute path: means a guest path */
	hsymlink(f->lower1, "rel_out", "../../../../../../../../etc/passwd");
	hsymlink(f->lower1, "root_link", "/");
	hsymlink(f->lower1, "self_root", "/proc/self/root");
	hsymlink(f->lower1, "loop1", "loop2");
	hsymlink(f->lower1, "loop2", "loop1");
	hsymlink(f->lower1, "dotdot", "..");
	expect_err(gread(f->v, "/abs_out", buf, sizeof(buf)), ENOENT, "abs_out");
	expect_content(f->v, "/rel_out", "GUEST");
	expect_content(f->v, "/root_link/../root_link/etc/passwd", "GUEST");
	expect_content(f->v, "/self_root/../../etc/passwd", "GUEST");
	expect_content(f->v, "/dotdot/dotdot/etc/passwd", "GUEST");
	expect_err(gread(f->v, "/loop1", buf, sizeof(buf)), ELOOP, "symlink loop");
	assert_int_equal(vfs_symlink(f->v, "/../../../../../../etc/passwd", "/up_out"), 0);
	expect_content(f->v, "/up_out", "GUEST");
	assert_int_equal(vfs_symlink(f->v, target, "/up_abs"), 0);
	expect_err(gread(f->v, "/up_abs", buf, sizeof(buf)), ENOENT, "up_abs");
	/* a symlink in a volume cannot leave it either */
	hsymlink(f->vol, "vout", "../../../../../outside/secret");
	expect_err(gread(f->v, "/mnt/data/vout", buf, sizeof(buf)), ENOENT, "volume symlink");
	/* 41 chained links -> ELOOP; 40 are fine */
	for (int i = 0; i < 41; i++) {
		char nm[32], tg[32];
		snprintf(nm, sizeof(nm), "c%d", i);
		snprintf(tg, sizeof(tg), i == 40 ? "/etc/passwd" : "c%d", i + 1);
		hsymlink(f->lower1, nm, tg);
	}
	expect_content(f->v, "/c1", "GUEST");
	expect_err(gread(f->v, "/c0", buf, sizeof(buf)), ELOOP, "41 links");
	/* device nodes and FIFOs in a layer are refused */
	char p[1024];
	hpath(p, sizeof(p), f->lower1, "fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	expect_err(vfs_open(f->v, "/fifo", O_RDONLY, 0, &vf), EACCES, "fifo");
	hpath(p, sizeof(p), f->lower1, "nulldev");
	if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0)
		expect_err(vfs_open(f->v, "/nulldev", O_RDWR, 0, &vf), EACCES, "device node");
	/* long names and paths */
	char longp[VFS_PATH_MAX + 10];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	expect_err(vfs_open(f->v, longp, O_RDONLY, 0, &vf), ENAMETOOLONG, "long path");
	expect_err(vfs_open(f->v, "", O_RDONLY, 0, &vf), ENOENT, "empty path");
	/* synthetic /dev works */
	int fd = vfs_open(f->v, "/dev/zero", O_RDONLY, 0, &vf);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, 8), 8);
	assert_int_equal(buf[3], 0);
	close(fd);
	vfs_file_destroy(vf);
	expect_err(vfs_open(f->v, "/dev/sda", O_RDONLY, 0, &vf), ENOENT, "/dev/sda");
}

struct race {
	struct fx *f;
	atomic_bool stop;
	unsigned swaps;
};

/* Swap upper /r between a real directory holding passwd=GUEST and symlinks
 * that point at the host's / (absolute and relative). */
static void *swapper(void *arg)
{
	struct race *r = arg;
	char dir[1024], lnk[1024], tmp[1024], p[1100];
	hpath(dir, sizeof(dir), r->f->upper, "rdir");
	hpath(lnk, sizeof(lnk), r->f->upper, "rlnk");
	hpath(tmp, sizeof(tmp), r->f->upper, "r");
	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/passwd", dir);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, "GUEST", 5) != 5)
			perror("write");
		close(fd);
	}
	rename(dir, tmp); /* "r" is the directory ... */
	if (symlink("/etc", lnk) < 0)
		perror("symlink");
	unsigned i = 0;
	while (!atomic_load(&r->stop)) {
		if (i % 64 == 0) { /* ... and "rlnk" a link to the host's /etc */
			char t[1100];
			snprintf(t, sizeof(t), "%s.new", lnk);
			unlink(t);
			if (symlink(i % 128 ? "/etc" : "../../../../../../../etc", t) == 0) {
				struct stat st;
				if (lstat(lnk, &st) == 0 && S_ISLNK(st.st_mode))
					rename(t, lnk);
				else if (lstat(tmp, &st) == 0 && S_ISLNK(st.st_mode))
					rename(t, tmp);
			}
		}
		renameat2(AT_FDCWD, tmp, AT_FDCWD, lnk, RENAME_EXCHANGE);
		i++;
	}
	r->swaps = i;
	return NULL;
}

static void test_race(void **state)
{
	struct fx *f = *state;
	struct race r = {.f = f};
	pthread_t th;
	/* /etc of the guest holds passwd = GUEST too, so both outcomes are fine */
	assert_int_equal(pthread_create(&th, NULL, swapper, &r), 0);
	unsigned ok = 0, err = 0;
	char buf[256];
	for (int i = 0; i < 3000; i++) {
		long n = gread(f->v, i % 2 ? "/r/passwd" : "/r/../r/passwd", buf, sizeof(buf));
		if (n >= 0) {
			if (strcmp(buf, "GUEST"))
				fail_msg("race: read \"%s\" through /r/passwd", buf);
			ok++;
		} else {
			err++;
		}
		struct stat st;
		if (vfs_stat(f->v, "/r/passwd", 0, &st) == 0 && st.st_size != 5)
			fail_msg("race: stat size %ld", (long)st.st_size);
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	fprintf(stderr, "race: %u reads ok, %u errors, %u swaps\n", ok, err, r.swaps);
	assert_true(ok + err == 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lookup_layers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_copy_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_link, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_race, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
