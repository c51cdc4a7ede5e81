/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the image store (src/image/): digests, OCI/Docker JSON
 * parsing, secure tar unpacking (hostile entries, caps, a mutation loop)
 * and the public API on a temporary store.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "image/image.h"
#include "image/image_int.h"

/* ---- helpers ---- */

struct ent {
	const char *name;
	char kind;	  /* f file, d dir, l symlink, h hardlink, c chr, b blk, p fifo */
	const char *data; /* file data, or link target */
	int mode;
	int64_t size; /* header size for files when > 0 (data is zero padding) */
	unsigned maj, min;
};

/* A tar of @n entries in a memfd (rewound), compressed with @filter
 * ("gzip", "zstd" or NULL). */
static int mktar(const struct ent *e, size_t n, const char *filter)
{
	int fd = memfd_create("tar", MFD_CLOEXEC);
	assert_true(fd >= 0);
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	if (filter && !strcmp(filter, "gzip"))
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (filter && !strcmp(filter, "zstd"))
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	struct archive_entry *ae = archive_entry_new();
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_mtime(ae, 1700000000, 0);
		int mode = e[i].mode ? e[i].mode : (e[i].kind == 'd' ? 0755 : 0644);
		archive_entry_set_perm(ae, (mode_t)mode);
		size_t dlen = 0;
		switch (e[i].kind) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			dlen = e[i].data ? strlen(e[i].data) : 0;
			archive_entry_set_size(ae, e[i].size > 0 ? e[i].size : (int64_t)dlen);
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			archive_entry_set_size(ae, 0);
			break;
		case 'c':
		case 'b':
			archive_entry_set_filetype(ae, e[i].kind == 'c' ? AE_IFCHR : AE_IFBLK);
			archive_entry_set_rdevmajor(ae, e[i].maj);
			archive_entry_set_rdevminor(ae, e[i].min);
			break;
		case 'p':
			archive_entry_set_filetype(ae, AE_IFIFO);
			break;
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (dlen)
			assert_int_equal(archive_write_data(a, e[i].data, dlen), (la_ssize_t)dlen);
	}
	archive_entry_free(ae);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

struct sandbox {
	struct libs lib; /* dlopen()ed libarchive + libcrypto, as an import loads them */
	char top[64];
	char outside[96];
	int layerfd;
};

static void sb_init(struct sandbox *sb)
{
	struct nb_error err;
	assert_int_equal(libs_load(&sb->lib, &err), 0);
	snprintf(sb->top, sizeof(sb->top), "/tmp/nubis-image-test-XXXXXX");
	assert_non_null(mkdtemp(sb->top));
	snprintf(sb->outside, sizeof(sb->outside), "%s/outside", sb->top);
	assert_int_equal(mkdir(sb->outside, 0755), 0);
	char p[128];
	snprintf(p, sizeof(p), "%s/layer", sb->top);
	assert_int_equal(mkdir(p, 0755), 0);
	sb->layerfd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(sb->layerfd >= 0);
}

static int dir_empty(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", path);
	return system(cmd) == 0;
}

static void sb_reset(struct sandbox *sb)
{
	close(sb->layerfd);
	int top = open(sb->top, O_RDONLY | O_DIRECTORY);
	assert_int_equal(nb_rmtree_at(top, "layer"), 0);
	assert_int_equal(mkdirat(top, "layer", 0755), 0);
	sb->layerfd = openat(top, "layer", O_RDONLY | O_DIRECTORY);
	close(top);
}

static void sb_fini(struct sandbox *sb)
{
	close(sb->layerfd);
	assert_true(dir_empty(sb->outside));
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_int_equal(nb_rmtree_at(fd, sb->top + 5), 0);
	close(fd);
	libs_unload(&sb->lib);
}

static const struct layer_limits big = {.max_bytes = 64 << 20, .max_entries = 10000};

static int unpack(struct sandbox *sb, const struct ent *e, size_t n, const char *filter,
		  const struct layer_limits *lim, struct layer_stats *st, struct nb_error *err)
{
	int fd = mktar(e, n, filter);
	nb_error_clear(err);
	int rc = layer_unpack(&sb->lib, fd, sb->layerfd, LAYER_MODE_LAYER, lim, "t", st, err);
	close(fd);
	return rc;
}

/* ---- digests ---- */

static void test_digest(void **state)
{
	(void)state;
	char hex[65];
	struct libs lib;
	struct nb_error err;
	assert_int_equal(libs_load(&lib, &err), 0);
	assert_int_equal(digest_buf(&lib, "abc", 3, hex), 0);
	libs_unload(&lib);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	char in[80];
	snprintf(in, sizeof(in), "sha256:%s", hex);
	char out[65];
	assert_int_equal(digest_parse(in, out), 0);
	assert_string_equal(out, hex);
	static const char *const bad[] = {
	    "",
	    "sha256:",
	    "sha256:../../etc/passwd",
	    "sha512:abc",
	    "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
	    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
	    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
	    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(digest_parse(bad[i], out), -EINVAL);
	assert_int_equal(digest_parse(NULL, out), -EINVAL);
}

/* ---- loading libarchive and libcrypto ---- */

static int zeroed(const struct libs *l)
{
	static const struct libs zero;
	return memcmp(l, &zero, sizeof(zero)) == 0;
}

static void expect_load_failure(const char *archive_so, const char *crypto_so, const char *want)
{
	struct libs l;
	struct nb_error err;
	nb_error_clear(&err);
	memset(&l, 0xa5, sizeof(l));
	assert_int_equal(libs_load_names(&l, archive_so, crypto_so, &err), -1);
	assert_int_equal(err.code, NB_ERESOURCE);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not name '%s'", err.msg, want);
	assert_null(strchr(err.msg, '\n')); /* one line */
	assert_false(libs_loaded(&l));
	assert_true(zeroed(&l)); /* nothing half-loaded left behind */
	libs_unload(&l);	 /* and unloading it is harmless */
}

static void test_libs(void **state)
{
	(void)state;
	struct libs a, b;
	struct nb_error err;
	assert_int_equal(libs_load(&a, &err), 0);
	assert_true(libs_loaded(&a));
#define CHECK_SET(fn) assert_non_null(a.fn);
	LIBS_ARCHIVE_FNS(CHECK_SET)
	LIBS_CRYPTO_FNS(CHECK_SET)
#undef CHECK_SET
	/* this program links libarchive itself (to write the test archives):
	 * the table points at the very same functions */
	assert_true(a.archive_read_new == archive_read_new);
	assert_true(a.archive_entry_set_symlink == archive_entry_set_symlink);
	/* a second table holds its own references: unloading the first leaves
	 * it working */
	assert_int_equal(libs_load(&b, &err), 0);
	libs_unload(&a);
	assert_true(zeroed(&a));
	char hex[65];
	assert_int_equal(digest_buf(&b, "", 0, hex), 0);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	libs_unload(&b);
	libs_unload(&b); /* twice is fine: unload zeroes */

	/* a missing library or a missing call: a one-line NB_ERESOURCE naming it */
	expect_load_failure("libnubis-no-such.so.0", LIBS_CRYPTO_SONAME, "libnubis-no-such.so.0");
	expect_load_failure(LIBS_ARCHIVE_SONAME, "libnubis-no-such.so.0", "libnubis-no-such.so.0");
	expect_load_failure(LIBS_ARCHIVE_SONAME, "libc.so.6", "libc.so.6 lacks EVP_MD_CTX_new");
	expect_load_failure("libc.so.6", LIBS_CRYPTO_SONAME,
			    "libc.so.6 lacks archive_error_string");
}

static void test_time(void **state)
{
	(void)state;
	int64_t t;
	assert_int_equal(oci_parse_time("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(oci_parse_time("2024-01-02T03:04:05.123456789Z", &t), 0);
	assert_int_equal(t, 1704164645);
	assert_int_equal(oci_parse_time("2024-01-02T05:04:05+02:00", &t), 0);
	assert_int_equal(t, 1704164645);
	assert_int_equal(oci_parse_time("2024-13-02T03:04:05Z", &t), -EINVAL);
	assert_int_equal(oci_parse_time("2024-01-02 03:04:05", &t), -EINVAL);
	assert_int_equal(oci_parse_time("yesterday", &t), -EINVAL);
	assert_int_equal(oci_parse_time("2024-01-02T03:04:05Zjunk", &t), -EINVAL);
}

/* ---- JSON ---- */

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_oci_json(void **state)
{
	(void)state;
	struct nb_error err;
	struct oci_desc *d;
	size_t n;
	const char *idx =
	    "{\"schemaVersion\":2,\"manifests\":["
	    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:" H64
	    "\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
	    "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:" H64
	    "\",\"size\":7,\"annotations\":{\"org.opencontainers.image.ref.name\":\"x:1\"}}]}";
	assert_int_equal(oci_index_parse(idx, strlen(idx), &d, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_false(d[0].platform_ok);
	assert_true(d[1].platform_ok && d[1].is_index);
	assert_string_equal(d[1].ref_name, "x:1");
	assert_int_equal(d[1].size, 7);
	oci_descs_free(d, n);

	static const char *const bad_idx[] = {
	    "",
	    "{",
	    "[]",
	    "{\"manifests\":{}}",
	    "{\"schemaVersion\":1,\"manifests\":[]}",
	    "{\"manifests\":[{\"digest\":\"sha256:" H64 "\"}]}",
	    "{\"manifests\":[{\"digest\":\"sha256:" H64 "\",\"size\":1.5}]}",
	    "{\"manifests\":[{\"digest\":\"md5:abc\",\"size\":1}]}",
	    "{\"manifests\":[{\"digest\":\"sha256:" H64 "\",\"size\":1,\"mediaType\":5}]}",
	    "{\"manifests\":[7]}",
	};
	for (size_t i = 0; i < sizeof(bad_idx) / sizeof(bad_idx[0]); i++) {
		nb_error_clear(&err);
		assert_int_equal(oci_index_parse(bad_idx[i], strlen(bad_idx[i]), &d, &n, &err), -1);
		assert_int_equal(err.code, NB_EFORMAT);
		assert_true(err.msg[0] != '\0');
	}

	struct oci_desc cfg, *layers;
	const char *man = "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" H64
			  "\",\"size\":3},\"layers\":[{\"mediaType\":"
			  "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"sha256:" H64
			  "\",\"size\":99}]}";
	assert_int_equal(oci_manifest_parse(man, strlen(man), &cfg, &layers, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(layers[0].size, 99);
	oci_desc_clear(&cfg);
	oci_descs_free(layers, n);
	const char *badman = "{\"config\":{\"digest\":\"sha256:" H64
			     "\",\"size\":3},\"layers\":[{\"mediaType\":\"text/plain\",\"digest\":"
			     "\"sha256:" H64 "\",\"size\":99}]}";
	assert_int_equal(oci_manifest_parse(badman, strlen(badman), &cfg, &layers, &n, &err), -1);
	assert_non_null(strstr(err.msg, "text/plain"));

	struct oci_config c;
	const char *conf = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":"
			   "\"2024-01-02T03:04:05Z\",\"config\":{\"Entrypoint\":[\"/a\"],\"Cmd\":"
			   "null,\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\",\"ExposedPorts\":{\"80/"
			   "tcp\":{},\"81/udp\":{},\"82\":{}}},\"rootfs\":{\"type\":\"layers\","
			   "\"diff_ids\":[\"sha256:" H64 "\"]}}";
	assert_int_equal(oci_config_parse(conf, strlen(conf), &c, &err), 0);
	assert_string_equal(c.entrypoint[0], "/a");
	assert_null(c.entrypoint[1]);
	assert_null(c.cmd[0]);
	assert_string_equal(c.env[0], "A=1");
	assert_string_equal(c.workdir, "/w");
	assert_int_equal(c.nports, 2);
	assert_int_equal(c.ports[0] + c.ports[1], 80 + 82);
	assert_int_equal(c.ndiff, 1);
	assert_string_equal(c.diff_ids[0], H64);
	assert_int_equal(c.created, 1704164645);
	oci_config_release(&c);
	static const char *const bad_conf[] = {
	    "{}",
	    "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:x\"]}}",
	    "{\"rootfs\":{\"type\":\"other\",\"diff_ids\":[]}}",
	    "{\"config\":{\"Env\":[\"NOEQUALS\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}"
	    "}",
	    "{\"config\":{\"Cmd\":[1]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    "{\"config\":{\"WorkingDir\":\"rel\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}"
	    "}",
	    "{\"config\":{\"ExposedPorts\":{\"0/tcp\":{}}},\"rootfs\":{\"type\":\"layers\","
	    "\"diff_ids\":[]}}",
	    "{\"architecture\":\"arm64\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    "{\"created\":\"soon\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
	    "{\"config\":{\"Cmd\":[\"a\\u0000b\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}"
	    "}",
	};
	for (size_t i = 0; i < sizeof(bad_conf) / sizeof(bad_conf[0]); i++) {
		nb_error_clear(&err);
		assert_int_equal(oci_config_parse(bad_conf[i], strlen(bad_conf[i]), &c, &err), -1);
		assert_true(err.msg[0] != '\0');
	}

	struct docker_entry *de;
	const char *dj = "[{\"Config\":\"" H64 ".json\",\"RepoTags\":[\"a:b\"],\"Layers\":["
			 "\"x/layer.tar\",\"y/layer.tar\"]}]";
	assert_int_equal(oci_docker_parse(dj, strlen(dj), &de, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(de[0].nlayers, 2);
	assert_string_equal(de[0].repotags[0], "a:b");
	oci_docker_free(de, n);
	static const char *const bad_dj[] = {"{}",
					     "[]",
					     "[{}]",
					     "[{\"Config\":\"c\"}]",
					     "[{\"Config\":\"c\",\"Layers\":[1]}]",
					     "[{\"Config\":5,\"Layers\":[]}]"};
	for (size_t i = 0; i < sizeof(bad_dj) / sizeof(bad_dj[0]); i++)
		assert_int_equal(oci_docker_parse(bad_dj[i], strlen(bad_dj[i]), &de, &n, &err), -1);
}

/* ---- unpacking ---- */

static void test_unpack_ok(void **state)
{
	(void)state;
	struct sandbox sb;
	sb_init(&sb);
	const struct ent e[] = {
	    {"./", 'd', NULL, 0755, 0, 0, 0},
	    {"./etc/", 'd', NULL, 0755, 0, 0, 0},
	    {"./etc/msg", 'f', "hello", 0644, 0, 0, 0},
	    {"bin/su", 'f', "x", 04755, 0, 0, 0},
	    {"bin/sg", 'f', "y", 02711, 0, 0, 0},
	    {"tmp", 'd', NULL, 01777, 0, 0, 0},
	    {"etc/link", 'l', "/etc/msg", 0777, 0, 0, 0},
	    {"etc/hard", 'h', "etc/msg", 0, 0, 0, 0},
	    {"etc/.wh.gone", 'f', "", 0, 0, 0, 0},
	    {"etc/removed", 'c', NULL, 0, 0, 0, 0},
	    {"dev/null", 'c', NULL, 0666, 0, 1, 3},
	    {"dev/sda", 'b', NULL, 0660, 0, 8, 0},
	    {"dev/fifo", 'p', NULL, 0644, 0, 0, 0},
	};
	struct layer_stats st;
	struct nb_error err;
	const char *filters[] = {NULL, "gzip", "zstd"};
	for (size_t f = 0; f < 3; f++) {
		int fd = mktar(e, sizeof(e) / sizeof(e[0]), filters[f]);
		struct stat fst;
		fstat(fd, &fst);
		assert_int_equal(
		    layer_unpack(&sb.lib, fd, sb.layerfd, LAYER_MODE_LAYER, &big, "t", &st, &err),
		    0);
		assert_int_equal(st.blob_bytes, (uint64_t)fst.st_size);
		if (!filters[f]) { /* uncompressed: blob digest == diff_id */
			assert_string_equal(st.blob_hex, st.diff_hex);
			assert_int_equal(st.tar_bytes, st.blob_bytes);
		} else {
			assert_string_not_equal(st.blob_hex, st.diff_hex);
		}
		close(fd);
		assert_int_equal(st.entries, sizeof(e) / sizeof(e[0]));
		assert_int_equal(st.skipped, 3);
		assert_int_equal(st.unpacked_bytes, 7);
		struct stat s;
		assert_int_equal(fstatat(sb.layerfd, "bin/su", &s, 0), 0);
		assert_int_equal(s.st_mode & 07777, 0755);
		assert_int_equal(fstatat(sb.layerfd, "bin/sg", &s, 0), 0);
		assert_int_equal(s.st_mode & 07777, 0711);
		assert_int_equal(fstatat(sb.layerfd, "tmp", &s, 0), 0);
		assert_int_equal(s.st_mode & 07777, 01777);
		assert_int_equal(s.st_mode & S_IFMT, S_IFDIR);
		char buf[64];
		ssize_t n = readlinkat(sb.layerfd, "etc/link", buf, sizeof(buf));
		assert_int_equal(n, 8);
		struct stat a, b;
		assert_int_equal(fstatat(sb.layerfd, "etc/msg", &a, 0), 0);
		assert_int_equal(fstatat(sb.layerfd, "etc/hard", &b, 0), 0);
		assert_int_equal(a.st_ino, b.st_ino);
		assert_int_equal(a.st_mtime, 1700000000);
		assert_int_equal(fstatat(sb.layerfd, "etc/.wh.removed", &s, 0), 0);
		assert_int_equal(fstatat(sb.layerfd, "etc/removed", &s, AT_SYMLINK_NOFOLLOW), -1);
		assert_int_equal(fstatat(sb.layerfd, "dev/null", &s, AT_SYMLINK_NOFOLLOW), -1);
		assert_int_equal(fstatat(sb.layerfd, "dev/fifo", &s, AT_SYMLINK_NOFOLLOW), -1);
		sb_reset(&sb);
	}
	sb_fini(&sb);
}

static void test_unpack_hostile(void **state)
{
	(void)state;
	struct sandbox sb;
	sb_init(&sb);
	char abs_out[160], rel_out[64];
	snprintf(abs_out, sizeof(abs_out), "%s/x", sb.outside);
	snprintf(rel_out, sizeof(rel_out), "../outside/x");
	char longc[300];
	memset(longc, 'a', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	struct {
		struct ent e[3];
		size_t n;
		const char *msg;
	} cases[] = {
	    {{{rel_out, 'f', "x", 0, 0, 0, 0}}, 1, "'..'"},
	    {{{"a/../../x", 'f', "x", 0, 0, 0, 0}}, 1, "'..'"},
	    {{{abs_out, 'f', "x", 0, 0, 0, 0}}, 1, "absolute"},
	    {{{"a", 'l', sb.outside, 0, 0, 0, 0}, {"a/x", 'f', "x", 0, 0, 0, 0}}, 2, "symlink"},
	    {{{"a", 'l', "../outside", 0, 0, 0, 0}, {"a/x", 'f', "x", 0, 0, 0, 0}}, 2, "symlink"},
	    {{{"a", 'l', "../outside", 0, 0, 0, 0}, {"a/x", 'd', NULL, 0, 0, 0, 0}}, 2, "symlink"},
	    {{{"h", 'h', "/etc/passwd", 0, 0, 0, 0}}, 1, "absolute"},
	    {{{"h", 'h', "../outside/y", 0, 0, 0, 0}}, 1, "'..'"},
	    {{{"h", 'h', "later", 0, 0, 0, 0}, {"later", 'f', "x", 0, 0, 0, 0}}, 2, "before it"},
	    {{{"d", 'd', NULL, 0, 0, 0, 0}, {"h", 'h', "d", 0, 0, 0, 0}}, 2, "not a file"},
	    {{{"l", 'l', "/", 0, 0, 0, 0}, {"h", 'h', "l/etc/passwd", 0, 0, 0, 0}}, 2, "symlink"},
	    {{{"d", 'd', NULL, 0, 0, 0, 0},
	      {"d/x", 'f', "1", 0, 0, 0, 0},
	      {"d", 'f', "2", 0, 0, 0, 0}},
	     3,
	     "replace a directory"},
	    {{{longc, 'f', "x", 0, 0, 0, 0}}, 1, "component"},
	    {{{"f", 'f', NULL, 0, 2 << 20, 0, 0}}, 1, "claims"},
	};
	struct layer_limits lim = {.max_bytes = 1 << 20, .max_entries = 100};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct layer_stats st;
		struct nb_error err;
		assert_int_equal(unpack(&sb, cases[i].e, cases[i].n, "gzip", &lim, &st, &err), -1);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
		assert_int_equal(err.code, NB_EFORMAT);
		assert_true(dir_empty(sb.outside));
		sb_reset(&sb);
	}
	/* duplicates: a later file replaces an earlier file or symlink */
	const struct ent dup[] = {{"f", 'f', "first", 0, 0, 0, 0}, {"f", 'f', "second", 0, 0, 0, 0},
				  {"s", 'l', abs_out, 0, 0, 0, 0}, {"s", 'f', "mine", 0, 0, 0, 0},
				  {"d", 'd', NULL, 0, 0, 0, 0},	   {"d", 'd', NULL, 0700, 0, 0, 0}};
	struct layer_stats st;
	struct nb_error err;
	assert_int_equal(unpack(&sb, dup, 6, NULL, &big, &st, &err), 0);
	char buf[16] = {0};
	int fd = openat(sb.layerfd, "f", O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	close(fd);
	assert_string_equal(buf, "second");
	struct stat s;
	assert_int_equal(fstatat(sb.layerfd, "s", &s, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(s.st_mode));
	assert_true(dir_empty(sb.outside));
	sb_reset(&sb);
	/* entry cap */
	struct ent many[20];
	char names[20][8];
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "e%d", i);
		many[i] = (struct ent){names[i], 'd', NULL, 0, 0, 0, 0};
	}
	struct layer_limits few = {.max_bytes = 1 << 20, .max_entries = 10};
	assert_int_equal(unpack(&sb, many, 20, NULL, &few, &st, &err), -1);
	assert_non_null(strstr(err.msg, "more than 10 entries"));
	sb_reset(&sb);
	sb_fini(&sb);
}

/* A gzip bomb: the uncompressed stream stops at the cap. */
static void test_unpack_bomb(void **state)
{
	(void)state;
	struct sandbox sb;
	sb_init(&sb);
	/* one 32 MiB file of zeros, gzip'd to ~32 KiB */
	const struct ent e[] = {{"z", 'f', NULL, 0, 32 << 20, 0, 0}};
	int fd = mktar(e, 1, "gzip");
	struct stat fst;
	fstat(fd, &fst);
	assert_true(fst.st_size < (1 << 20));
	struct layer_limits lim = {.max_bytes = 4 << 20, .max_entries = 10};
	struct layer_stats st;
	struct nb_error err;
	/* the header claim is caught first ... */
	assert_int_equal(
	    layer_unpack(&sb.lib, fd, sb.layerfd, LAYER_MODE_LAYER, &lim, "bomb", &st, &err), -1);
	assert_non_null(strstr(err.msg, "cap"));
	close(fd);
	sb_reset(&sb);
	/* ... and many small files hit the stream cap */
	struct ent small[64];
	char names[64][8];
	for (int i = 0; i < 64; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		small[i] = (struct ent){names[i], 'f', NULL, 0, 1 << 20, 0, 0};
	}
	fd = mktar(small, 64, "gzip");
	lim.max_entries = 1000;
	assert_int_equal(
	    layer_unpack(&sb.lib, fd, sb.layerfd, LAYER_MODE_LAYER, &lim, "bomb", &st, &err), -1);
	assert_non_null(strstr(err.msg, "size cap"));
	close(fd);
	sb_reset(&sb);
	sb_fini(&sb);
}

/* Random byte flips and truncations of a valid layer: 0 or -1, never a
 * crash, never a write outside. */
static void test_unpack_mutations(void **state)
{
	(void)state;
	struct sandbox sb;
	sb_init(&sb);
	const struct ent e[] = {
	    {"d", 'd', NULL, 0, 0, 0, 0},	  {"d/f", 'f', "some data here", 0, 0, 0, 0},
	    {"d/l", 'l', "../d/f", 0, 0, 0, 0},	  {"d/h", 'h', "d/f", 0, 0, 0, 0},
	    {"e", 'f', "0123456789", 0, 0, 0, 0},
	};
	const char *filters[] = {NULL, "gzip"};
	uint32_t seed = 12345;
	for (size_t f = 0; f < 2; f++) {
		int fd = mktar(e, 5, filters[f]);
		struct stat fst;
		fstat(fd, &fst);
		size_t len = (size_t)fst.st_size;
		unsigned char *orig = malloc(len), *buf = malloc(len);
		assert_int_equal(pread(fd, orig, len, 0), (ssize_t)len);
		close(fd);
		for (int it = 0; it < 150; it++) {
			memcpy(buf, orig, len);
			size_t use = len;
			int flips = 1 + it % 4;
			for (int k = 0; k < flips; k++) {
				seed = seed * 1103515245 + 12345;
				size_t at = (seed >> 8) % (f ? len : 2048 < len ? 2048 : len);
				buf[at] ^= (unsigned char)(1 + (seed >> 3) % 255);
			}
			if (it % 5 == 4)
				use = (seed >> 4) % len;
			int mfd = memfd_create("m", MFD_CLOEXEC);
			assert_int_equal(write(mfd, buf, use), (ssize_t)use);
			lseek(mfd, 0, SEEK_SET);
			struct layer_stats st;
			struct nb_error err;
			int rc = layer_unpack(&sb.lib, mfd, sb.layerfd, LAYER_MODE_LAYER, &big, "m",
					      &st, &err);
			assert_true(rc == 0 || rc == -1);
			if (rc < 0)
				assert_true(err.msg[0] != '\0');
			close(mfd);
			assert_true(dir_empty(sb.outside));
			sb_reset(&sb);
		}
		free(orig);
		free(buf);
	}
	sb_fini(&sb);
}

/* ---- the public API ---- */

static void write_file(const char *dir, const char *name, const char *data)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void test_store_api(void **state)
{
	(void)state;
	struct sandbox sb;
	sb_init(&sb);
	char root[128], src[128], tarp[160];
	snprintf(root, sizeof(root), "%s/store", sb.top);
	snprintf(src, sizeof(src), "%s/src", sb.top);
	assert_int_equal(mkdir(src, 0755), 0);
	write_file(src, "hello", "world\n");
	struct image_store *s;
	struct nb_error err;
	assert_int_equal(image_store_open(root, &s, &err), 0);
	char id[65], id2[65];
	assert_int_equal(image_import(s, src, "web:v1", id, &err), 0);
	assert_true(digest_is_hex(id));

	/* a plain tarball of one file */
	const struct ent e[] = {{"bin/app", 'f', "#!", 0755, 0, 0, 0}};
	int fd = mktar(e, 1, "zstd");
	snprintf(tarp, sizeof(tarp), "%s/app.tar.zst", sb.top);
	int out = open(tarp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(out);
	close(fd);
	assert_int_equal(image_import(s, tarp, NULL, id2, &err), 0);
	assert_string_not_equal(id, id2);

	struct image_info info;
	assert_int_equal(image_lookup(s, "web:v1", &info, &err), 0);
	assert_string_equal(info.id, id);
	assert_string_equal(info.name, "web:v1");
	assert_int_equal(info.nlayers, 1);
	assert_string_equal(info.workdir, "/");
	assert_non_null(info.env[0]);
	assert_int_equal(info.size, 6);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/hello", info.layer_dirs[0]);
	assert_int_equal(access(p, R_OK), 0);
	assert_int_equal(
	    strncmp(info.layer_dirs[0], image_store_root(s), strlen(image_store_root(s))), 0);
	image_info_release(&info);
	image_info_release(&info); /* idempotent on a released struct */

	char pre[8];
	memcpy(pre, id2, 7);
	pre[7] = '\0';
	assert_int_equal(image_lookup(s, pre, &info, &err), 0);
	assert_string_equal(info.id, id2);
	assert_null(info.name);
	image_info_release(&info);
	assert_int_equal(image_lookup(s, "web", &info, &err), -1); /* web:latest */
	assert_int_equal(err.code, NB_ENOENT);
	assert_int_equal(image_lookup(s, "", &info, &err), -1);

	struct image_info *list;
	size_t cnt;
	assert_int_equal(image_list(s, &list, &cnt, &err), 0);
	assert_int_equal(cnt, 2);
	for (size_t i = 0; i < cnt; i++)
		image_info_release(&list[i]);
	free(list);

	/* a failing import (bad name, missing source, hostile layer) changes nothing */
	assert_int_equal(image_import(s, src, "BAD NAME", id2, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	assert_int_equal(image_import(s, "/nonexistent/x", NULL, id2, &err), -1);
	const struct ent bad[] = {{"ok", 'f', "1", 0, 0, 0, 0}, {"../x", 'f', "1", 0, 0, 0, 0}};
	fd = mktar(bad, 2, NULL);
	snprintf(tarp, sizeof(tarp), "%s/bad.tar", sb.top);
	out = open(tarp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(out);
	close(fd);
	assert_int_equal(image_import(s, tarp, "bad", id2, &err), -1);
	assert_non_null(strstr(err.msg, "'..'"));
	char tmpd[160];
	snprintf(tmpd, sizeof(tmpd), "%s/tmp", root);
	assert_true(dir_empty(tmpd));
	assert_int_equal(image_list(s, &list, &cnt, &err), 0);
	assert_int_equal(cnt, 2);
	for (size_t i = 0; i < cnt; i++)
		image_info_release(&list[i]);
	free(list);

	assert_int_equal(image_remove(s, "web:v1", &err), 0);
	assert_int_equal(image_remove(s, "web:v1", &err), -1);
	assert_int_equal(err.code, NB_ENOENT);
	assert_int_equal(image_remove(s, id2, &err), 0);
	char ld[160];
	snprintf(ld, sizeof(ld), "%s/layers/sha256", root);
	assert_true(dir_empty(ld));
	image_store_close(s);
	image_store_close(NULL);
	sb_fini(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest),	cmocka_unit_test(test_libs),
	    cmocka_unit_test(test_time),	cmocka_unit_test(test_oci_json),
	    cmocka_unit_test(test_unpack_ok),	cmocka_unit_test(test_unpack_hostile),
	    cmocka_unit_test(test_unpack_bomb), cmocka_unit_test(test_unpack_mutations),
	    cmocka_unit_test(test_store_api),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
