/* SPDX-License-Identifier: MIT */
/*
 * The image store: import (OCI layout dir/tar, docker save tar, plain
 * directory, plain tarball), lookup, list and remove. See image.h for the
 * layout on disk and docs/IMAGES.md for the formats and the checks.
 *
 * Every import works in a private directory under tmp/ (taken under the
 * store's lock file): sources that are archives are unpacked there, layers
 * are unpacked there, and only when every digest and size has checked out
 * are the new layers renamed into layers/sha256/ and the image record into
 * images/. A failure removes the temporary directory; a crash leaves it for
 * the next writer to sweep.
 */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../common/log.h"
#include "image_int.h"

#define DEFAULT_LAYER_MAX   (8ull << 30)
#define DEFAULT_IMAGE_MAX   (32ull << 30)
#define DEFAULT_ENTRIES_MAX 1000000ull
#define INDEX_DEPTH_MAX	    4
#define RECORD_MAX	    (8u << 20) /* images/<id>.json */
#define DEFAULT_PATH	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct image_store {
	char *root;
	int rootfd;
	uint64_t layer_max;
	uint64_t image_max;
	uint64_t entries_max;
	/* libarchive and libcrypto: zeroed until the first import loads them
	 * (lookup, list and remove never do). Written only by image_import()
	 * with the store lock held (an flock on a file opened per call, so it
	 * excludes threads too), read-only once loaded; released by
	 * image_store_close(). */
	struct libs libs;
};

/* ---- small helpers ---- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Open @path inside the directory @dirfd, resolving every component (and
 * symlinks) as if @dirfd were the root: nothing outside it can be named. */
static int open_in(int dirfd, const char *path, int flags)
{
	struct open_how how = {
	    /* O_NONBLOCK: a FIFO planted in a layout must not block the open;
	     * callers check for a regular file (where it has no effect) */
	    .flags = (uint64_t)(flags | O_CLOEXEC | O_NONBLOCK),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return (int)fd;
}

/* Read a whole regular file (at most @max bytes) opened with open_in(). */
static int read_small(int dirfd, const char *path, size_t max, char **out, size_t *len,
		      struct nb_error *err)
{
	*out = NULL;
	*len = 0;
	int fd = open_in(dirfd, path, O_RDONLY);
	if (fd < 0)
		return nb_error_sys(err, errno, "'%.200s'", path);
	int rc = -1;
	char *buf = NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		nb_error_sys(err, errno, "'%.200s'", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		nb_error_set(err, NB_EFORMAT, "'%.200s' is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		nb_error_set(err, NB_EFORMAT, "'%.200s' is %lld bytes, over the %zu-byte limit",
			     path, (long long)st.st_size, max);
		goto out;
	}
	size_t cap = (size_t)st.st_size;
	buf = malloc(cap + 1);
	if (!buf) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			nb_error_sys(err, errno, "reading '%.200s'", path);
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

static int write_file_at(int dirfd, const char *tmpname, const char *name, const void *data,
			 size_t len, struct nb_error *err)
{
	int fd =
	    openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return nb_error_sys(err, errno, "creating '%s'", tmpname);
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			unlinkat(dirfd, tmpname, 0);
			return nb_error_sys(err, e, "writing '%s'", tmpname);
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		int e = errno;
		unlinkat(dirfd, tmpname, 0);
		return nb_error_sys(err, e, "writing '%s'", tmpname);
	}
	if (renameat(dirfd, tmpname, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmpname, 0);
		return nb_error_sys(err, e, "renaming '%s' to '%s'", tmpname, name);
	}
	return 0;
}

/* ---- names ---- */

/* Validate "name[:tag]" and write the canonical "name:tag" (tag defaults to
 * latest) to @out. Returns 0 or -1 with @err. */
static int norm_ref_name(const char *in, char *out, size_t outsz, struct nb_error *err)
{
	size_t len = strlen(in);
	if (len == 0 || len > 255)
		return nb_error_set(err, NB_EINVAL,
				    "image name '%.64s' must be 1 to 255 characters", in);
	const char *slash = strrchr(in, '/');
	const char *colon = strrchr(in, ':');
	if (colon && slash && colon < slash)
		colon = NULL;
	size_t nlen = colon ? (size_t)(colon - in) : len;
	if (nlen == 0 || in[0] == '/' || in[nlen - 1] == '/')
		return nb_error_set(err, NB_EINVAL, "image name '%.255s' is not NAME[:TAG]", in);
	for (size_t i = 0; i < nlen; i++) {
		char c = in[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/' ||
			 c == ':';
		if (!ok || (c == '/' && in[i + 1] == '/') || (c == '.' && in[i + 1] == '.'))
			return nb_error_set(err, NB_EINVAL,
					    "image name '%.255s': character '%c' not allowed "
					    "(letters, digits, . _ - / and one :TAG)",
					    in, c);
	}
	const char *tag = colon ? colon + 1 : "latest";
	size_t tlen = strlen(tag);
	if (tlen == 0 || tlen > 128)
		return nb_error_set(err, NB_EINVAL, "image name '%.255s': empty or long tag", in);
	for (size_t i = 0; i < tlen; i++) {
		char c = tag[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' || (i > 0 && (c == '.' || c == '-'));
		if (!ok)
			return nb_error_set(err, NB_EINVAL,
					    "image name '%.255s': tag character '%c' not allowed",
					    in, c);
	}
	if ((size_t)snprintf(out, outsz, "%.*s:%s", (int)nlen, in, tag) >= outsz)
		return nb_error_set(err, NB_EINVAL, "image name '%.255s' too long", in);
	return 0;
}

/* ---- store ---- */

static const char *default_root(char *buf, size_t sz)
{
	const char *h = getenv("NUBIS_HOME");
	if (h && *h)
		return h;
	if (geteuid() == 0)
		return "/var/lib/nubis";
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	snprintf(buf, sz, "%s/.local/share/nubis", home);
	return buf;
}

int image_store_open(const char *root, struct image_store **out, struct nb_error *err)
{
	char buf[PATH_MAX];
	*out = NULL;
	if (!root)
		root = default_root(buf, sizeof(buf));
	if (!root)
		return nb_error_set(err, NB_EINVAL, "no image store root: set NUBIS_HOME");
	if (strlen(root) > PATH_MAX - 200)
		return nb_error_set(err, NB_EINVAL, "image store root is too long");
	static const char *const sub[] = {"images", "layers/sha256", "blobs/sha256", "tmp"};
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", root, sub[i]);
		int r = mkdir_p(p, 0700);
		if (r < 0)
			return nb_error_sys(err, -r, "creating the image store '%s'", p);
	}
	struct image_store *s = calloc(1, sizeof(*s));
	if (!s)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->root = realpath(root, NULL);
	if (s->rootfd < 0 || !s->root) {
		int e = errno;
		image_store_close(s);
		return nb_error_sys(err, e, "opening the image store '%s'", root);
	}
	s->layer_max = DEFAULT_LAYER_MAX;
	s->image_max = DEFAULT_IMAGE_MAX;
	s->entries_max = DEFAULT_ENTRIES_MAX;
	*out = s;
	return 0;
}

void image_store_close(struct image_store *s)
{
	if (!s)
		return;
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s->root);
	libs_unload(&s->libs);
	free(s);
}

const char *image_store_root(const struct image_store *s)
{
	return s->root;
}

void image_store_set_limits(struct image_store *s, uint64_t max_layer_bytes,
			    uint64_t max_image_bytes, uint64_t max_layer_entries)
{
	if (max_layer_bytes)
		s->layer_max = max_layer_bytes;
	if (max_image_bytes)
		s->image_max = max_image_bytes;
	if (max_layer_entries)
		s->entries_max = max_layer_entries;
}

static int store_lock(struct image_store *s, struct nb_error *err)
{
	int fd = openat(s->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return nb_error_sys(err, errno, "opening the store lock");
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return nb_error_sys(err, e, "locking the store");
		}
	}
	return fd;
}

static void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* Remove leftovers of crashed writers (called with the lock held). */
static void sweep_tmp(struct image_store *s)
{
	DIR *d = nb_opendir_at(s->rootfd, "tmp", O_NOFOLLOW);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			nb_rmtree_at(dirfd(d), de->d_name);
	closedir(d);
}

/* ---- image records (images/<id>.json) ---- */

struct layer_rec {
	char diff[65];
	uint64_t size;
};

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int record_write(struct image_store *s, const char *id, const char *name,
			const struct layer_rec *layers, size_t n, const struct oci_config *cfg,
			uint64_t size, const char *source, struct nb_error *err)
{
	json_t *ls = json_array(), *ports = json_array();
	for (size_t i = 0; ls && i < n; i++)
		json_array_append_new(ls, json_pack("{s:s, s:I}", "diff_id", layers[i].diff, "size",
						    (json_int_t)layers[i].size));
	for (size_t i = 0; ports && i < cfg->nports; i++)
		json_array_append_new(ports, json_integer(cfg->ports[i]));
	json_t *o = json_pack(
	    "{s:s, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:s, s:o, s:s}", "id", id, "name",
	    name ? json_string(name) : json_null(), "created", (json_int_t)cfg->created, "size",
	    (json_int_t)size, "layers", ls, "entrypoint", strv_json(cfg->entrypoint), "cmd",
	    strv_json(cfg->cmd), "env", strv_json(cfg->env), "workdir",
	    cfg->workdir ? cfg->workdir : "/", "exposed_tcp", ports, "source", source);
	if (!o)
		return nb_error_set(err, NB_ERESOURCE, "building the image record failed");
	char *text = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	char tmpn[128], fin[128];
	snprintf(tmpn, sizeof(tmpn), "images/.%s.tmp", id);
	snprintf(fin, sizeof(fin), "images/%s.json", id);
	int rc = write_file_at(s->rootfd, tmpn, fin, text, strlen(text), err);
	free(text);
	return rc;
}

/* Strings of a JSON array into a NULL-terminated vector (record fields). */
static char **strv_dup(json_t *a)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(a, i);
		if (json_is_string(x) && !(v[k++] = strdup(json_string_value(x)))) {
			oci_strv_free(v);
			return NULL;
		}
	}
	return v;
}

/* Load images/<id>.json into @info. */
static int record_read(struct image_store *s, const char *id, struct image_info *info,
		       struct nb_error *err)
{
	memset(info, 0, sizeof(*info));
	char path[128];
	snprintf(path, sizeof(path), "images/%s.json", id);
	char *text = NULL;
	size_t len;
	int fd = openat(s->rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return nb_error_sys(err, errno, "image record %s", id);
	close(fd);
	/* records live in the store; open_in keeps a corrupt store from
	 * naming a host path anyway */
	if (read_small(s->rootfd, path, RECORD_MAX, &text, &len, err) < 0)
		return -1;
	json_error_t je;
	json_t *o = json_loadb(text, len, 0, &je);
	free(text);
	int rc = -1;
	if (!json_is_object(o)) {
		nb_error_set(err, NB_EFORMAT, "image record %s is corrupt", id);
		goto out;
	}
	snprintf(info->id, sizeof(info->id), "%s", id);
	json_t *nm = json_object_get(o, "name");
	if (json_is_string(nm) && !(info->name = strdup(json_string_value(nm))))
		goto oom;
	json_t *ls = json_object_get(o, "layers");
	size_t n = json_is_array(ls) ? json_array_size(ls) : 0;
	if (n > OCI_MAX_LAYERS) {
		nb_error_set(err, NB_EFORMAT, "image record %s is corrupt (layers)", id);
		goto out;
	}
	info->layer_dirs = calloc(n + 1, sizeof(char *));
	if (!info->layer_dirs)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const char *d =
		    json_string_value(json_object_get(json_array_get(ls, i), "diff_id"));
		if (!d || !digest_is_hex(d)) {
			nb_error_set(err, NB_EFORMAT, "image record %s is corrupt (layer %zu)", id,
				     i);
			goto out;
		}
		/* records list layers bottom first; layer_dirs is top first */
		char *p;
		if (asprintf(&p, "%s/layers/sha256/%s", s->root, d) < 0)
			goto oom;
		info->layer_dirs[n - 1 - i] = p;
		info->nlayers = info->nlayers + 1;
	}
	if (!(info->entrypoint = strv_dup(json_object_get(o, "entrypoint"))) ||
	    !(info->cmd = strv_dup(json_object_get(o, "cmd"))) ||
	    !(info->env = strv_dup(json_object_get(o, "env"))))
		goto oom;
	const char *wd = json_string_value(json_object_get(o, "workdir"));
	if (!(info->workdir = strdup(wd && *wd ? wd : "/")))
		goto oom;
	json_t *ports = json_object_get(o, "exposed_tcp");
	size_t np = json_is_array(ports) ? json_array_size(ports) : 0;
	info->exposed_tcp = calloc(np ? np : 1, sizeof(uint16_t));
	if (!info->exposed_tcp)
		goto oom;
	for (size_t i = 0; i < np; i++) {
		json_int_t v = json_integer_value(json_array_get(ports, i));
		if (v > 0 && v <= 65535)
			info->exposed_tcp[info->nexposed++] = (uint16_t)v;
	}
	info->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	info->created = (int64_t)json_integer_value(json_object_get(o, "created"));
	rc = 0;
	goto out;
oom:
	nb_error_set(err, NB_ERESOURCE, "out of memory");
out:
	json_decref(o);
	if (rc < 0)
		image_info_release(info);
	return rc;
}

void image_info_release(struct image_info *info)
{
	if (!info)
		return;
	free(info->name);
	for (size_t i = 0; info->layer_dirs && i < info->nlayers; i++)
		free(info->layer_dirs[i]);
	free(info->layer_dirs);
	oci_strv_free(info->entrypoint);
	oci_strv_free(info->cmd);
	oci_strv_free(info->env);
	free(info->workdir);
	free(info->exposed_tcp);
	memset(info, 0, sizeof(*info));
}

/* Ids of all records, in *@ids (64 hex + NUL each). */
static int record_ids(struct image_store *s, char (**ids)[65], size_t *n, struct nb_error *err)
{
	*ids = NULL;
	*n = 0;
	DIR *d = nb_opendir_at(s->rootfd, "images", O_NOFOLLOW);
	if (!d)
		return nb_error_sys(err, errno, "opening %s/images", s->root);
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l != 69 || strcmp(de->d_name + 64, ".json"))
			continue;
		char hex[65];
		memcpy(hex, de->d_name, 64);
		hex[64] = '\0';
		if (!digest_is_hex(hex))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			void *p = realloc(*ids, cap * sizeof(**ids));
			if (!p) {
				rc = nb_error_set(err, NB_ERESOURCE, "out of memory");
				break;
			}
			*ids = p;
		}
		memcpy((*ids)[(*n)++], hex, 65);
	}
	closedir(d);
	if (rc < 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

static int info_cmp(const void *a, const void *b)
{
	const struct image_info *x = a, *y = b;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

int image_list(struct image_store *s, struct image_info **out, size_t *n, struct nb_error *err)
{
	*out = NULL;
	*n = 0;
	char(*ids)[65];
	size_t nids;
	if (record_ids(s, &ids, &nids, err) < 0)
		return -1;
	struct image_info *v = calloc(nids ? nids : 1, sizeof(*v));
	if (!v) {
		free(ids);
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < nids; i++) {
		struct nb_error e2;
		if (record_read(s, ids[i], &v[k], &e2) == 0)
			k++;
		else if (e2.code != NB_ENOENT) /* removed meanwhile: fine */
			nb_log(NB_LOG_WARN, "skipping image %.12s: %s", ids[i], e2.msg);
	}
	free(ids);
	qsort(v, k, sizeof(*v), info_cmp);
	*out = v;
	*n = k;
	return 0;
}

/* Resolve @ref to an image id. */
static int resolve_ref(struct image_store *s, const char *ref, char id[65], struct nb_error *err)
{
	if (!ref || !*ref)
		return nb_error_set(err, NB_EINVAL, "empty image reference");
	const char *r = ref;
	if (!strncmp(r, "sha256:", 7))
		r += 7;
	size_t rl = strlen(r);
	int hexish = rl >= 4 && rl <= 64;
	for (size_t i = 0; hexish && i < rl; i++)
		hexish = (r[i] >= '0' && r[i] <= '9') || (r[i] >= 'a' && r[i] <= 'f');
	char(*ids)[65];
	size_t n;
	if (record_ids(s, &ids, &n, err) < 0)
		return -1;
	int rc = -1;
	if (hexish && rl == 64) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(ids[i], r)) {
				memcpy(id, r, 65);
				rc = 0;
				goto out;
			}
	}
	char want[300];
	struct nb_error e2;
	if (norm_ref_name(ref, want, sizeof(want), &e2) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct image_info info;
			if (record_read(s, ids[i], &info, &e2) < 0)
				continue;
			int match = info.name && !strcmp(info.name, want);
			image_info_release(&info);
			if (match) {
				memcpy(id, ids[i], 65);
				rc = 0;
				goto out;
			}
		}
	}
	if (hexish) {
		size_t found = 0;
		for (size_t i = 0; i < n; i++)
			if (!strncmp(ids[i], r, rl)) {
				if (!found)
					memcpy(id, ids[i], 65);
				found++;
			}
		if (found == 1) {
			rc = 0;
			goto out;
		}
		if (found > 1) {
			nb_error_set(err, NB_EINVAL,
				     "image id prefix '%s' is ambiguous (%zu images)", r, found);
			goto out;
		}
	}
	nb_error_set(err, NB_ENOENT, "no image '%.255s'", ref);
out:
	free(ids);
	return rc;
}

int image_lookup(struct image_store *s, const char *ref, struct image_info *out,
		 struct nb_error *err)
{
	memset(out, 0, sizeof(*out));
	char id[65];
	if (resolve_ref(s, ref, id, err) < 0)
		return -1;
	if (record_read(s, id, out, err) < 0)
		return -1;
	for (size_t i = 0; i < out->nlayers; i++) {
		struct stat st;
		if (stat(out->layer_dirs[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			nb_error_set(err, NB_EFORMAT, "image %.12s: layer directory %s is missing",
				     id, out->layer_dirs[i]);
			image_info_release(out);
			return -1;
		}
	}
	return 0;
}

/* Drop @name from every image other than @keep_id (a name names one image). */
static int untag_others(struct image_store *s, const char *name, const char *keep_id,
			struct nb_error *err)
{
	char(*ids)[65];
	size_t n;
	if (record_ids(s, &ids, &n, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!strcmp(ids[i], keep_id))
			continue;
		char path[128];
		snprintf(path, sizeof(path), "images/%s.json", ids[i]);
		char *text;
		size_t len;
		struct nb_error e2;
		if (read_small(s->rootfd, path, RECORD_MAX, &text, &len, &e2) < 0)
			continue;
		json_t *o = json_loadb(text, len, 0, NULL);
		free(text);
		const char *nm = json_string_value(json_object_get(o, "name"));
		if (nm && !strcmp(nm, name)) {
			json_object_set_new(o, "name", json_null());
			char *out = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
			char tmpn[128];
			snprintf(tmpn, sizeof(tmpn), "images/.%s.tmp", ids[i]);
			rc = out ? write_file_at(s->rootfd, tmpn, path, out, strlen(out), err)
				 : nb_error_set(err, NB_ERESOURCE, "out of memory");
			free(out);
		}
		json_decref(o);
	}
	free(ids);
	return rc;
}

/* ---- import ---- */

struct import {
	struct image_store *s;
	const char *src;
	struct nb_error *err;
	int tmpfd; /* tmp/<import dir> */
	char tmpname[64];
	int srcfd; /* root of the layout being read (a dir, or the unpacked archive) */
	int layersfd;
	struct layer_rec *layers;
	size_t nlayers;
	char (*tmp_layers)[16]; /* name under tmpfd, or "" when the layer existed */
	uint64_t image_bytes;
	char *config;
	size_t config_len;
	char config_hex[65];
	char src_name[300];    /* name recorded in the source, canonical, or "" */
	const char *want_name; /* canonical --name, or NULL */
	const char *source;    /* "oci-layout", "docker-save", "directory", "tarball" */
	uint64_t skipped;
	char first_skipped[256];
};

/* An OCI ref.name that is a bare tag ("3.19", as `skopeo copy ...
 * oci:alpine:3.19` writes) names the image after the source: the basename
 * of the layout directory or archive, lowercased, without .tar/.gz/.zst. */
static int name_from_tag(const struct import *im, const char *tag, char *out, size_t outsz)
{
	if (strchr(tag, ':') || strchr(tag, '/'))
		return 0;
	const char *b = strrchr(im->src, '/');
	b = b ? b + 1 : im->src;
	char base[128];
	size_t n = 0;
	for (; *b && n + 1 < sizeof(base); b++) {
		char c = *b;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			c = '-';
		base[n++] = c;
	}
	base[n] = '\0';
	static const char *const ext[] = {".gz", ".zst", ".tgz", ".tar", ".oci"};
	for (int again = 1; again;) {
		again = 0;
		for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
			size_t l = strlen(base), el = strlen(ext[i]);
			if (l > el && !strcmp(base + l - el, ext[i])) {
				base[l - el] = '\0';
				again = 1;
			}
		}
	}
	while (n && (base[0] == '.' || base[0] == '-'))
		memmove(base, base + 1, n--);
	if (!base[0])
		return 0;
	snprintf(out, outsz, "%s:%s", base, tag);
	return 1;
}

static void set_src_name(struct import *im, const char *name, int oci)
{
	struct nb_error e2;
	char full[300];
	if (!name || im->src_name[0])
		return;
	if (oci && name_from_tag(im, name, full, sizeof(full)))
		name = full;
	if (norm_ref_name(name, im->src_name, sizeof(im->src_name), &e2) < 0) {
		im->src_name[0] = '\0';
		nb_log(NB_LOG_WARN, "%s: ignoring the recorded name: %s", im->src, e2.msg);
	}
}

static int layer_present(struct import *im, const char *diff)
{
	struct stat st;
	if (fstatat(im->layersfd, diff, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return 1;
	for (size_t i = 0; i < im->nlayers; i++)
		if (!strcmp(im->layers[i].diff, diff))
			return 1;
	return 0;
}

static uint64_t present_size(struct import *im, const char *diff)
{
	for (size_t i = 0; i < im->nlayers; i++)
		if (!strcmp(im->layers[i].diff, diff))
			return im->layers[i].size;
	char name[80], *text;
	size_t len;
	struct nb_error e2;
	snprintf(name, sizeof(name), "%s.size", diff);
	if (read_small(im->layersfd, name, 64, &text, &len, &e2) < 0)
		return 0;
	uint64_t v = strtoull(text, NULL, 10);
	free(text);
	return v;
}

/* Hash a whole file (a blob of a layer that is already unpacked). */
static int hash_fd(const struct libs *lib, int fd, char hex[65], uint64_t *bytes)
{
	struct digest d;
	if (digest_init(&d, lib) < 0)
		return -ENOMEM;
	char *buf = malloc(1 << 17);
	if (!buf) {
		digest_release(&d);
		return -ENOMEM;
	}
	*bytes = 0;
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 17);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			digest_release(&d);
			return -e;
		}
		if (n == 0)
			break;
		digest_update(&d, buf, (size_t)n);
		*bytes += (uint64_t)n;
	}
	free(buf);
	digest_final(&d, hex);
	return 0;
}

/*
 * Add layer @idx (bottom first) from the open stream @fd. @diff is the
 * expected diff_id (from the config) or NULL (plain tarball: whatever it
 * is); @blob_hex/@blob_size the expected raw digest and size, or NULL/-1.
 */
static int add_layer(struct import *im, int fd, size_t idx, size_t total, const char *diff,
		     const char *blob_hex, int64_t blob_size, const char *label)
{
	char what[400];
	snprintf(what, sizeof(what), "layer %zu of %zu (%.200s)", idx + 1, total, label);
	struct layer_rec *rec = &im->layers[im->nlayers];
	if (diff && layer_present(im, diff)) {
		/* already unpacked and verified: check the blob only */
		if (blob_hex) {
			char got[65];
			uint64_t bytes;
			int r = hash_fd(&im->s->libs, fd, got, &bytes);
			if (r < 0)
				return nb_error_sys(im->err, -r, "%s: reading", what);
			if (blob_size >= 0 && bytes != (uint64_t)blob_size)
				return nb_error_set(im->err, NB_EFORMAT,
						    "%s: blob is %llu bytes, manifest says %lld",
						    what, (unsigned long long)bytes,
						    (long long)blob_size);
			if (strcmp(got, blob_hex))
				return nb_error_set(im->err, NB_EFORMAT,
						    "%s: digest mismatch: blob sha256:%s, manifest "
						    "says sha256:%s",
						    what, got, blob_hex);
		}
		snprintf(rec->diff, sizeof(rec->diff), "%s", diff);
		rec->size = present_size(im, diff);
		im->tmp_layers[im->nlayers][0] = '\0';
		im->nlayers++;
		im->image_bytes += rec->size;
		return 0;
	}
	if (im->image_bytes >= im->s->image_max)
		return nb_error_set(im->err, NB_EFORMAT,
				    "%s: the image exceeds the size cap of %llu bytes", what,
				    (unsigned long long)im->s->image_max);
	struct layer_limits lim = {.max_bytes = im->s->layer_max,
				   .max_entries = im->s->entries_max};
	uint64_t left = im->s->image_max - im->image_bytes;
	if (left < lim.max_bytes)
		lim.max_bytes = left;
	char tname[16];
	snprintf(tname, sizeof(tname), "L%zu", im->nlayers);
	if (mkdirat(im->tmpfd, tname, 0755) < 0)
		return nb_error_sys(im->err, errno, "creating a temporary layer directory");
	int dfd = openat(im->tmpfd, tname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return nb_error_sys(im->err, errno, "opening a temporary layer directory");
	struct layer_stats st;
	int r = layer_unpack(&im->s->libs, fd, dfd, LAYER_MODE_LAYER, &lim, what, &st, im->err);
	close(dfd);
	if (r < 0) {
		size_t ml = strlen(im->err->msg);
		if (lim.max_bytes < im->s->layer_max && strstr(im->err->msg, "size cap"))
			snprintf(im->err->msg + ml, sizeof(im->err->msg) - ml,
				 " (what the image size cap of %llu bytes leaves for this layer)",
				 (unsigned long long)im->s->image_max);
		goto fail;
	}
	if (blob_size >= 0 && st.blob_bytes != (uint64_t)blob_size) {
		nb_error_set(im->err, NB_EFORMAT, "%s: blob is %llu bytes, manifest says %lld",
			     what, (unsigned long long)st.blob_bytes, (long long)blob_size);
		goto fail;
	}
	if (blob_hex && strcmp(st.blob_hex, blob_hex)) {
		nb_error_set(im->err, NB_EFORMAT,
			     "%s: digest mismatch: blob sha256:%s, manifest says sha256:%s", what,
			     st.blob_hex, blob_hex);
		goto fail;
	}
	if (diff && strcmp(st.diff_hex, diff)) {
		nb_error_set(im->err, NB_EFORMAT,
			     "%s: diff_id mismatch: uncompressed sha256:%s, config says sha256:%s",
			     what, st.diff_hex, diff);
		goto fail;
	}
	if (!diff && layer_present(im, st.diff_hex)) {
		nb_rmtree_at(im->tmpfd, tname);
		tname[0] = '\0';
		rec->size = present_size(im, st.diff_hex);
	} else {
		rec->size = st.unpacked_bytes;
	}
	if (st.skipped) {
		if (!im->skipped)
			snprintf(im->first_skipped, sizeof(im->first_skipped), "%s",
				 st.first_skipped);
		im->skipped += st.skipped;
	}
	snprintf(rec->diff, sizeof(rec->diff), "%s", st.diff_hex);
	snprintf(im->tmp_layers[im->nlayers], sizeof(im->tmp_layers[0]), "%s", tname);
	im->nlayers++;
	im->image_bytes += rec->size;
	return 0;
fail:
	nb_rmtree_at(im->tmpfd, tname);
	return -1;
}

static int alloc_layers(struct import *im, size_t n)
{
	im->layers = calloc(n ? n : 1, sizeof(*im->layers));
	im->tmp_layers = calloc(n ? n : 1, sizeof(*im->tmp_layers));
	if (!im->layers || !im->tmp_layers)
		return nb_error_set(im->err, NB_ERESOURCE, "out of memory");
	return 0;
}

/* Read and verify a JSON blob blobs/sha256/<hex> of the layout. */
static int read_blob(struct import *im, const struct oci_desc *d, const char *kind, char **out,
		     size_t *len)
{
	char path[96];
	snprintf(path, sizeof(path), "blobs/sha256/%s", d->hex);
	if (d->size > OCI_JSON_MAX)
		return nb_error_set(im->err, NB_EFORMAT,
				    "%s sha256:%.12s: size %llu over the %u-byte limit", kind,
				    d->hex, (unsigned long long)d->size, OCI_JSON_MAX);
	struct nb_error e2;
	if (read_small(im->srcfd, path, OCI_JSON_MAX, out, len, &e2) < 0)
		return nb_error_set(im->err, e2.code == NB_ENOENT ? NB_EFORMAT : e2.code,
				    "%s sha256:%s: blob missing or unreadable (%s)", kind, d->hex,
				    e2.msg);
	char got[65];
	if (*len != d->size || digest_buf(&im->s->libs, *out, *len, got) < 0 ||
	    strcmp(got, d->hex)) {
		nb_error_set(im->err, NB_EFORMAT,
			     "%s blob sha256:%s: %s (file has %zu bytes, descriptor says %llu)",
			     kind, d->hex, *len != d->size ? "size mismatch" : "digest mismatch",
			     *len, (unsigned long long)d->size);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int parse_config(struct import *im, struct oci_config *cfg)
{
	struct nb_error e2;
	if (oci_config_parse(im->config, im->config_len, cfg, &e2) < 0)
		return nb_error_set(im->err, e2.code, "image config sha256:%.12s: %s",
				    im->config_hex, e2.msg);
	return 0;
}

/* Choose a manifest in an index (recursively), linux/amd64. */
static int pick_manifest(struct import *im, const char *json, size_t len, int depth,
			 struct oci_desc *chosen)
{
	if (depth > INDEX_DEPTH_MAX)
		return nb_error_set(im->err, NB_EFORMAT, "index nesting deeper than %d",
				    INDEX_DEPTH_MAX);
	struct oci_desc *d;
	size_t n;
	if (oci_index_parse(json, len, &d, &n, im->err) < 0)
		return -1;
	int rc = -1;
	size_t pick = n;
	for (size_t i = 0; i < n; i++) {
		if (!d[i].platform_ok)
			continue;
		const char *mt = d[i].media_type;
		if (mt && !d[i].is_index &&
		    strcmp(mt, "application/vnd.oci.image.manifest.v1+json") &&
		    strcmp(mt, "application/vnd.docker.distribution.manifest.v2+json"))
			continue;
		if (pick == n)
			pick = i;
		/* with --name, prefer the manifest annotated with that name */
		char c[300];
		struct nb_error e2;
		if (im->want_name && d[i].ref_name &&
		    norm_ref_name(d[i].ref_name, c, sizeof(c), &e2) == 0 &&
		    !strcmp(c, im->want_name)) {
			pick = i;
			break;
		}
	}
	if (pick == n) {
		nb_error_set(im->err, NB_EFORMAT, "index lists %zu manifests, none for linux/amd64",
			     n);
		goto out;
	}
	if (d[pick].is_index) {
		char *sub;
		size_t sublen;
		if (read_blob(im, &d[pick], "nested index", &sub, &sublen) < 0)
			goto out;
		if (d[pick].ref_name)
			set_src_name(im, d[pick].ref_name, 1);
		rc = pick_manifest(im, sub, sublen, depth + 1, chosen);
		free(sub);
		goto out;
	}
	*chosen = d[pick];
	memset(&d[pick], 0, sizeof(d[pick]));
	rc = 0;
out:
	oci_descs_free(d, n);
	return rc;
}

static int import_oci(struct import *im, struct oci_config *cfg)
{
	char *text = NULL, *mtext = NULL;
	size_t len, mlen;
	struct oci_desc man = {0}, cdesc = {0}, *layers = NULL;
	size_t nl = 0;
	int rc = -1;
	struct nb_error e2;
	if (read_small(im->srcfd, "oci-layout", 4096, &text, &len, &e2) < 0) {
		nb_error_set(im->err, NB_EFORMAT, "%s: oci-layout: %s", im->src, e2.msg);
		goto out;
	}
	json_t *ol = json_loadb(text, len, 0, NULL);
	const char *ver = json_string_value(json_object_get(ol, "imageLayoutVersion"));
	int ver_ok = ver && !strncmp(ver, "1.", 2);
	json_decref(ol);
	free(text);
	text = NULL;
	if (!ver_ok) {
		nb_error_set(im->err, NB_EFORMAT, "%s: oci-layout has no imageLayoutVersion 1.x",
			     im->src);
		goto out;
	}
	if (read_small(im->srcfd, "index.json", OCI_JSON_MAX, &text, &len, &e2) < 0) {
		nb_error_set(im->err, NB_EFORMAT, "%s: index.json: %s", im->src, e2.msg);
		goto out;
	}
	if (pick_manifest(im, text, len, 0, &man) < 0)
		goto out;
	if (man.ref_name)
		set_src_name(im, man.ref_name, 1);
	if (read_blob(im, &man, "manifest", &mtext, &mlen) < 0)
		goto out;
	if (oci_manifest_parse(mtext, mlen, &cdesc, &layers, &nl, im->err) < 0)
		goto out;
	if (read_blob(im, &cdesc, "config", &im->config, &im->config_len) < 0)
		goto out;
	memcpy(im->config_hex, cdesc.hex, 65);
	if (parse_config(im, cfg) < 0)
		goto out;
	if (cfg->ndiff != nl) {
		nb_error_set(im->err, NB_EFORMAT,
			     "manifest lists %zu layers but the config has %zu diff_ids", nl,
			     cfg->ndiff);
		goto out;
	}
	if (alloc_layers(im, nl) < 0)
		goto out;
	for (size_t i = 0; i < nl; i++) {
		char path[96], label[96];
		snprintf(path, sizeof(path), "blobs/sha256/%s", layers[i].hex);
		snprintf(label, sizeof(label), "sha256:%s", layers[i].hex);
		int fd = open_in(im->srcfd, path, O_RDONLY);
		if (fd < 0) {
			nb_error_sys(im->err, errno, "layer %zu of %zu: blob sha256:%s", i + 1, nl,
				     layers[i].hex);
			im->err->code = NB_EFORMAT;
			goto out;
		}
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			nb_error_set(im->err, NB_EFORMAT, "layer blob sha256:%s is not a file",
				     layers[i].hex);
			goto out;
		}
		int r = add_layer(im, fd, i, nl, cfg->diff_ids[i], layers[i].hex,
				  (int64_t)layers[i].size, label);
		close(fd);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	free(text);
	free(mtext);
	oci_desc_clear(&man);
	oci_desc_clear(&cdesc);
	oci_descs_free(layers, nl);
	return rc;
}

/* The hex digest named by a docker archive path "blobs/sha256/<hex>" or
 * "<hex>.json" / "<hex>/layer.tar", if any. */
static int path_hex(const char *path, char hex[65])
{
	const char *b = path;
	if (!strncmp(b, "blobs/sha256/", 13) && digest_is_hex(b + 13)) {
		memcpy(hex, b + 13, 65);
		return 1;
	}
	if (strlen(b) == 69 && !strcmp(b + 64, ".json")) {
		memcpy(hex, b, 64);
		hex[64] = '\0';
		return digest_is_hex(hex);
	}
	return 0;
}

static int import_docker(struct import *im, struct oci_config *cfg)
{
	char *text = NULL;
	size_t len, n = 0;
	struct docker_entry *e = NULL;
	int rc = -1;
	struct nb_error e2;
	if (read_small(im->srcfd, "manifest.json", OCI_JSON_MAX, &text, &len, &e2) < 0) {
		nb_error_set(im->err, NB_EFORMAT, "%s: manifest.json: %s", im->src, e2.msg);
		goto out;
	}
	if (oci_docker_parse(text, len, &e, &n, im->err) < 0)
		goto out;
	size_t pick = 0;
	for (size_t i = 0; im->want_name && i < n; i++)
		for (char **t = e[i].repotags; *t; t++) {
			char c[300];
			if (norm_ref_name(*t, c, sizeof(c), &e2) == 0 && !strcmp(c, im->want_name))
				pick = i;
		}
	if (n > 1)
		nb_log(NB_LOG_WARN, "%s holds %zu images; importing entry %zu", im->src, n,
		       pick + 1);
	struct docker_entry *de = &e[pick];
	if (de->repotags[0])
		set_src_name(im, de->repotags[0], 0);
	if (read_small(im->srcfd, de->config, OCI_JSON_MAX, &im->config, &im->config_len, &e2) <
	    0) {
		nb_error_set(im->err, NB_EFORMAT, "config '%.200s': %s", de->config, e2.msg);
		goto out;
	}
	if (digest_buf(&im->s->libs, im->config, im->config_len, im->config_hex) < 0) {
		nb_error_set(im->err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	char want[65];
	if (path_hex(de->config, want) && strcmp(want, im->config_hex)) {
		nb_error_set(im->err, NB_EFORMAT,
			     "config '%.200s': digest mismatch: content is sha256:%s", de->config,
			     im->config_hex);
		goto out;
	}
	if (parse_config(im, cfg) < 0)
		goto out;
	if (cfg->ndiff != de->nlayers) {
		nb_error_set(im->err, NB_EFORMAT,
			     "manifest.json lists %zu layers but the config has %zu diff_ids",
			     de->nlayers, cfg->ndiff);
		goto out;
	}
	if (alloc_layers(im, de->nlayers) < 0)
		goto out;
	for (size_t i = 0; i < de->nlayers; i++) {
		const char *p = de->layers[i];
		int fd = open_in(im->srcfd, p, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			nb_error_set(im->err, NB_EFORMAT,
				     "layer %zu of %zu: '%.200s' is missing or not a file", i + 1,
				     de->nlayers, p);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		char hex[65];
		int has = path_hex(p, hex);
		int r =
		    add_layer(im, fd, i, de->nlayers, cfg->diff_ids[i], has ? hex : NULL, -1, p);
		close(fd);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	free(text);
	oci_docker_free(e, n);
	return rc;
}

/* A single-layer image from a tar stream on @fd (plain tarball or packed dir). */
static int import_single(struct import *im, int fd, struct oci_config *cfg, const char *label)
{
	if (alloc_layers(im, 1) < 0)
		return -1;
	if (add_layer(im, fd, 0, 1, NULL, NULL, -1, label) < 0)
		return -1;
	/* a synthesized config: the id is its digest */
	time_t now = time(NULL);
	struct tm tm;
	char ts[40];
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char diff[80];
	snprintf(diff, sizeof(diff), "sha256:%s", im->layers[0].diff);
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:[s], s:s}, s:{s:s, s:[s]}}", "created", ts,
			      "architecture", "amd64", "os", "linux", "config", "Env", DEFAULT_PATH,
			      "WorkingDir", "/", "rootfs", "type", "layers", "diff_ids", diff);
	if (!o)
		return nb_error_set(im->err, NB_ERESOURCE, "out of memory");
	im->config = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!im->config)
		return nb_error_set(im->err, NB_ERESOURCE, "out of memory");
	im->config_len = strlen(im->config);
	if (digest_buf(&im->s->libs, im->config, im->config_len, im->config_hex) < 0)
		return nb_error_set(im->err, NB_ERESOURCE, "out of memory");
	return parse_config(im, cfg);
}

/* Which kind of layout sits in directory @fd. */
static const char *layout_kind(int fd)
{
	if (faccessat(fd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	    faccessat(fd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* newer `docker save` writes both; manifest.json carries RepoTags */
		if (faccessat(fd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return "docker-save";
		return "oci-layout";
	}
	if (faccessat(fd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return "docker-save";
	return NULL;
}

/* Scan a tar's entry names for a layout marker. Returns 1 (layout), 0 (plain
 * tarball) or -1 (not a readable archive). */
static int sniff_tar(struct import *im, const char *path)
{
	const struct libs *lib = &im->s->libs;
	struct archive *a = lib->archive_read_new();
	if (!a)
		return nb_error_set(im->err, NB_ERESOURCE, "out of memory");
	int rc = 0;
	if (layer_enable_filters(lib, a) < 0) {
		rc = nb_error_set(im->err, NB_EINTERNAL,
				  "libarchive lacks built-in gzip/zstd/xz support");
		goto out;
	}
	lib->archive_read_support_format_tar(a);
	if (lib->archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		rc =
		    nb_error_set(im->err, NB_EFORMAT, "%s: not a tar archive: %s", path,
				 lib->archive_error_string(a) ? lib->archive_error_string(a) : "?");
		goto out;
	}
	uint64_t n = 0;
	int oci = 0, docker = 0;
	for (;;) {
		struct archive_entry *e;
		int r = lib->archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = nb_error_set(
			    im->err, NB_EFORMAT, "%s: %s: %s", path,
			    n ? "corrupt or truncated archive" : "not a tar archive",
			    lib->archive_error_string(a) ? lib->archive_error_string(a) : "?");
			goto out;
		}
		const char *p = lib->archive_entry_pathname(e);
		while (p && p[0] == '.' && p[1] == '/')
			p += 2;
		if (p && !strcmp(p, "oci-layout"))
			oci = 1;
		if (p && !strcmp(p, "manifest.json"))
			docker = 1;
		if (++n > im->s->entries_max) {
			rc = nb_error_set(im->err, NB_EFORMAT, "%s: more than %llu entries", path,
					  (unsigned long long)im->s->entries_max);
			goto out;
		}
	}
	rc = oci || docker;
out:
	lib->archive_read_free(a);
	return rc;
}

static int import_run(struct import *im, struct oci_config *cfg)
{
	struct stat st;
	if (stat(im->src, &st) < 0)
		return nb_error_sys(im->err, errno, "%s", im->src);
	if (S_ISDIR(st.st_mode)) {
		im->srcfd = open(im->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (im->srcfd < 0)
			return nb_error_sys(im->err, errno, "%s", im->src);
		const char *k = layout_kind(im->srcfd);
		if (k) {
			im->source = k;
			return !strcmp(k, "oci-layout") ? import_oci(im, cfg)
							: import_docker(im, cfg);
		}
		im->source = "directory";
		struct layer_limits lim = {.max_bytes = im->s->layer_max < im->s->image_max
							    ? im->s->layer_max
							    : im->s->image_max,
					   .max_entries = im->s->entries_max};
		int fd = openat(im->tmpfd, "dir.tar", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return nb_error_sys(im->err, errno, "creating a temporary tar");
		int r = layer_pack_dir(&im->s->libs, im->src, fd, &lim, im->err);
		if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
			r = nb_error_sys(im->err, errno, "seek");
		if (r == 0)
			r = import_single(im, fd, cfg, im->src);
		close(fd);
		unlinkat(im->tmpfd, "dir.tar", 0);
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return nb_error_set(im->err, NB_EINVAL,
				    "%s: not a directory, an OCI/docker archive or a tarball",
				    im->src);
	int kind = sniff_tar(im, im->src);
	if (kind < 0)
		return -1;
	int fd = open(im->src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nb_error_sys(im->err, errno, "%s", im->src);
	if (kind == 0) {
		im->source = "tarball";
		int r = import_single(im, fd, cfg, im->src);
		close(fd);
		return r;
	}
	/* an OCI layout or docker save archive: unpack it privately first */
	if (mkdirat(im->tmpfd, "src", 0700) < 0) {
		close(fd);
		return nb_error_sys(im->err, errno, "creating a temporary directory");
	}
	int dfd = openat(im->tmpfd, "src", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		close(fd);
		return nb_error_sys(im->err, errno, "opening a temporary directory");
	}
	struct layer_limits lim = {.max_bytes = im->s->image_max,
				   .max_entries = im->s->entries_max};
	struct layer_stats ls;
	char what[PATH_MAX + 16];
	snprintf(what, sizeof(what), "archive %s", im->src);
	int r = layer_unpack(&im->s->libs, fd, dfd, LAYER_MODE_SOURCE, &lim, what, &ls, im->err);
	close(fd);
	if (r < 0) {
		close(dfd);
		return -1;
	}
	im->srcfd = dfd;
	const char *k = layout_kind(dfd);
	if (!k)
		return nb_error_set(im->err, NB_EFORMAT,
				    "%s: no oci-layout/index.json or manifest.json", im->src);
	im->source = !strcmp(k, "oci-layout") ? "oci-archive" : "docker-save";
	return !strcmp(k, "oci-layout") ? import_oci(im, cfg) : import_docker(im, cfg);
}

/* Move the verified layers and config into place and write the record. */
static int import_commit(struct import *im, const struct oci_config *cfg, const char *name)
{
	for (size_t i = 0; i < im->nlayers; i++) {
		const char *t = im->tmp_layers[i];
		if (!t[0])
			continue;
		const char *diff = im->layers[i].diff;
		char num[32], sname[80], tname[80];
		int nl =
		    snprintf(num, sizeof(num), "%llu\n", (unsigned long long)im->layers[i].size);
		snprintf(sname, sizeof(sname), "%s.size", diff);
		snprintf(tname, sizeof(tname), ".%s.size.tmp", diff);
		if (write_file_at(im->layersfd, tname, sname, num, (size_t)nl, im->err) < 0)
			return -1;
		if (renameat(im->tmpfd, t, im->layersfd, diff) < 0) {
			if (errno != EEXIST && errno != ENOTEMPTY)
				return nb_error_sys(im->err, errno, "moving layer %.12s into place",
						    diff);
			/* present already (same digest, same content) */
		}
	}
	int bfd = openat(im->s->rootfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return nb_error_sys(im->err, errno, "opening blobs/sha256");
	char tname[80];
	snprintf(tname, sizeof(tname), ".%s.tmp", im->config_hex);
	int r = write_file_at(bfd, tname, im->config_hex, im->config, im->config_len, im->err);
	close(bfd);
	if (r < 0)
		return -1;
	const char *keep = name;
	struct image_info old;
	struct nb_error e2;
	int have_old = !keep && record_read(im->s, im->config_hex, &old, &e2) == 0;
	/* re-import without a name keeps the existing name */
	r = record_write(im->s, im->config_hex, have_old ? old.name : keep, im->layers, im->nlayers,
			 cfg, im->image_bytes, im->source, im->err);
	if (have_old)
		image_info_release(&old);
	if (r < 0)
		return -1;
	/* the record is in place: now move the name off any other image */
	if (name && untag_others(im->s, name, im->config_hex, &e2) < 0)
		nb_log(NB_LOG_WARN, "image %.12s imported, but another image keeps the name %s: %s",
		       im->config_hex, name, e2.msg);
	return 0;
}

int image_import(struct image_store *s, const char *src, const char *name, char id_out[65],
		 struct nb_error *err)
{
	char want[300];
	if (name && norm_ref_name(name, want, sizeof(want), err) < 0)
		return -1;
	if (!src || !*src)
		return nb_error_set(err, NB_EINVAL, "no source to import");
	struct import im = {.s = s,
			    .src = src,
			    .err = err,
			    .tmpfd = -1,
			    .srcfd = -1,
			    .layersfd = -1,
			    .want_name = name ? want : NULL};
	struct oci_config cfg = {0};
	int rc = -1;
	int lock = store_lock(s, err);
	if (lock < 0)
		return -1;
	/* the first import through this store loads the libraries */
	if (!libs_loaded(&s->libs) && libs_load(&s->libs, err) < 0)
		goto out;
	sweep_tmp(s);
	snprintf(im.tmpname, sizeof(im.tmpname), "tmp/import-%d", (int)getpid());
	if (mkdirat(s->rootfd, im.tmpname, 0700) < 0) {
		nb_error_sys(err, errno, "creating %s/%s", s->root, im.tmpname);
		goto out;
	}
	im.tmpfd = openat(s->rootfd, im.tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	im.layersfd = openat(s->rootfd, "layers/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im.tmpfd < 0 || im.layersfd < 0) {
		nb_error_sys(err, errno, "opening the store");
		goto out;
	}
	if (import_run(&im, &cfg) < 0)
		goto out;
	if (im.skipped)
		nb_log(NB_LOG_WARN, "%s: skipped %llu device node(s)/FIFO(s)/socket(s) (first: %s)",
		       src, (unsigned long long)im.skipped, im.first_skipped);
	const char *final_name = name ? want : (im.src_name[0] ? im.src_name : NULL);
	if (import_commit(&im, &cfg, final_name) < 0)
		goto out;
	memcpy(id_out, im.config_hex, 65);
	rc = 0;
out:
	if (im.srcfd >= 0)
		close(im.srcfd);
	if (im.layersfd >= 0)
		close(im.layersfd);
	if (im.tmpfd >= 0)
		close(im.tmpfd);
	nb_rmtree_at(s->rootfd, im.tmpname);
	oci_config_release(&cfg);
	free(im.layers);
	free(im.tmp_layers);
	free(im.config);
	store_unlock(lock);
	return rc;
}

/* ---- remove ---- */

/* Best effort: a service under $root/containers/ naming the image. */
static int image_in_use(struct image_store *s, const char *id, char *who, size_t whosz)
{
	DIR *d = nb_opendir_at(s->rootfd, "containers", O_NOFOLLOW);
	if (!d)
		return 0;
	int used = 0;
	struct dirent *de;
	static const char *const files[] = {"image", "image-id", "config.json", "state.json"};
	while (!used && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		for (size_t i = 0; !used && i < sizeof(files) / sizeof(files[0]); i++) {
			char p[NAME_MAX + 32], *text;
			size_t len;
			struct nb_error e2;
			snprintf(p, sizeof(p), "%s/%s", de->d_name, files[i]);
			if (read_small(dirfd(d), p, 1 << 20, &text, &len, &e2) < 0)
				continue;
			if (strstr(text, id)) {
				used = 1;
				/* the services' config.json carries the VM's name */
				json_t *o = json_loadb(text, len, 0, NULL);
				const char *nm = json_string_value(json_object_get(o, "name"));
				snprintf(who, whosz, "%.64s", nm && *nm ? nm : de->d_name);
				json_decref(o);
			}
			free(text);
		}
	}
	closedir(d);
	return used;
}

/* Remove layer dirs and config blobs that no record names any more. */
static void gc(struct image_store *s)
{
	char(*ids)[65];
	size_t n;
	struct nb_error e2;
	if (record_ids(s, &ids, &n, &e2) < 0)
		return;
	char(*keep)[65] = NULL;
	size_t nkeep = 0, cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct image_info info;
		if (record_read(s, ids[i], &info, &e2) < 0) {
			/* an unreadable record: keep everything to be safe */
			free(ids);
			free(keep);
			return;
		}
		for (size_t j = 0; j <= info.nlayers; j++) {
			const char *h =
			    j < info.nlayers ? strrchr(info.layer_dirs[j], '/') + 1 : ids[i];
			if (nkeep == cap) {
				cap = cap ? cap * 2 : 64;
				void *p = realloc(keep, cap * sizeof(*keep));
				if (!p) {
					image_info_release(&info);
					free(ids);
					free(keep);
					return;
				}
				keep = p;
			}
			memcpy(keep[nkeep++], h, 65);
		}
		image_info_release(&info);
	}
	free(ids);
	static const char *const dirs[] = {"layers/sha256", "blobs/sha256"};
	for (size_t k = 0; k < 2; k++) {
		DIR *d = nb_opendir_at(s->rootfd, dirs[k], 0);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			char hex[65];
			if (strlen(de->d_name) < 64)
				continue;
			memcpy(hex, de->d_name, 64);
			hex[64] = '\0';
			if (!digest_is_hex(hex) ||
			    (de->d_name[64] && strcmp(de->d_name + 64, ".size")))
				continue;
			int used = 0;
			for (size_t i = 0; i < nkeep && !used; i++)
				used = !strcmp(keep[i], hex);
			if (used)
				continue;
			/* rename away first so no half-deleted layer is visible */
			char t[96];
			snprintf(t, sizeof(t), "../../tmp/gc-%s%s", hex, de->d_name + 64);
			if (renameat(dirfd(d), de->d_name, dirfd(d), t) == 0)
				nb_rmtree_at(s->rootfd, t + 6);
			else
				nb_rmtree_at(dirfd(d), de->d_name);
		}
		closedir(d);
	}
	free(keep);
}

int image_remove(struct image_store *s, const char *ref, struct nb_error *err)
{
	int lock = store_lock(s, err);
	if (lock < 0)
		return -1;
	int rc = -1;
	char id[65], who[NAME_MAX + 1];
	if (resolve_ref(s, ref, id, err) < 0)
		goto out;
	if (image_in_use(s, id, who, sizeof(who))) {
		nb_error_set(err, NB_EINVAL, "image %.12s is used by service '%s'; remove it first",
			     id, who);
		goto out;
	}
	char path[128];
	snprintf(path, sizeof(path), "images/%s.json", id);
	if (unlinkat(s->rootfd, path, 0) < 0) {
		nb_error_sys(err, errno, "removing image %.12s", id);
		goto out;
	}
	gc(s);
	rc = 0;
out:
	store_unlock(lock);
	return rc;
}
