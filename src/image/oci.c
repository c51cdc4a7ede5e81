/* SPDX-License-Identifier: MIT */
/*
 * OCI image index / manifest / config and `docker save` manifest.json
 * parsing (jansson). Every document is untrusted: each field is checked for
 * type and range, arrays are capped, digests must be sha256:<64 hex>.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "image_int.h"

#define MAX_STRV 65536	    /* entries of Env/Cmd/Entrypoint/RepoTags */
#define MAX_STR	 (1u << 20) /* one string */

static json_t *load(const char *json, size_t len, const char *what, struct nb_error *err)
{
	if (len > OCI_JSON_MAX) {
		nb_error_set(err, NB_EFORMAT, "%s: %zu bytes, over the %u-byte limit", what, len,
			     OCI_JSON_MAX);
		return NULL;
	}
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		nb_error_set(err, NB_EFORMAT, "%s: invalid JSON at line %d: %s", what, je.line,
			     je.text);
	return root;
}

void oci_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* A JSON array of strings (or null / absent: an empty vector). */
static int strv_from(json_t *a, const char *what, const char *field, char ***out,
		     struct nb_error *err)
{
	*out = NULL;
	size_t n = 0;
	if (a && !json_is_null(a)) {
		if (!json_is_array(a))
			return nb_error_set(err, NB_EFORMAT, "%s: '%s' is not an array", what,
					    field);
		n = json_array_size(a);
		if (n > MAX_STRV)
			return nb_error_set(err, NB_EFORMAT, "%s: '%s' has %zu entries (limit %d)",
					    what, field, n, MAX_STRV);
	}
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s) || json_string_length(s) > MAX_STR ||
		    strlen(json_string_value(s)) != json_string_length(s)) {
			oci_strv_free(v);
			return nb_error_set(err, NB_EFORMAT,
					    "%s: '%s'[%zu] is not a string (or has a NUL byte)",
					    what, field, i);
		}
		v[i] = strdup(json_string_value(s));
		if (!v[i]) {
			oci_strv_free(v);
			return nb_error_set(err, NB_ERESOURCE, "out of memory");
		}
	}
	*out = v;
	return 0;
}

static const char *opt_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

void oci_desc_clear(struct oci_desc *d)
{
	if (!d)
		return;
	free(d->media_type);
	free(d->ref_name);
	memset(d, 0, sizeof(*d));
}

void oci_descs_free(struct oci_desc *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++)
		oci_desc_clear(&d[i]);
	free(d);
}

static int parse_desc(json_t *o, const char *what, const char *field, struct oci_desc *d,
		      struct nb_error *err)
{
	memset(d, 0, sizeof(*d));
	if (!json_is_object(o))
		return nb_error_set(err, NB_EFORMAT, "%s: %s is not an object", what, field);
	json_t *dg = json_object_get(o, "digest");
	if (!json_is_string(dg))
		return nb_error_set(err, NB_EFORMAT, "%s: %s has no string 'digest'", what, field);
	if (digest_parse(json_string_value(dg), d->hex) < 0)
		return nb_error_set(err, NB_EFORMAT,
				    "%s: %s digest '%.100s' is not sha256:<64 lowercase hex>", what,
				    field, json_string_value(dg));
	json_t *sz = json_object_get(o, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return nb_error_set(err, NB_EFORMAT, "%s: %s has no non-negative integer 'size'",
				    what, field);
	d->size = (uint64_t)json_integer_value(sz);
	json_t *mt = json_object_get(o, "mediaType");
	if (mt && !json_is_string(mt))
		return nb_error_set(err, NB_EFORMAT, "%s: %s 'mediaType' is not a string", what,
				    field);
	if (mt && !(d->media_type = strdup(json_string_value(mt))))
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	const char *m = d->media_type ? d->media_type : "";
	d->is_index = !strcmp(m, "application/vnd.oci.image.index.v1+json") ||
		      !strcmp(m, "application/vnd.docker.distribution.manifest.list.v2+json");
	d->platform_ok = 1;
	json_t *pl = json_object_get(o, "platform");
	if (json_is_object(pl)) {
		const char *os = opt_str(pl, "os"), *arch = opt_str(pl, "architecture");
		d->platform_ok = os && arch && !strcmp(os, "linux") && !strcmp(arch, "amd64");
	}
	json_t *an = json_object_get(o, "annotations");
	if (json_is_object(an)) {
		const char *name = opt_str(an, "io.containerd.image.name");
		if (!name)
			name = opt_str(an, "org.opencontainers.image.ref.name");
		if (name && strlen(name) < 512 && !(d->ref_name = strdup(name))) {
			oci_desc_clear(d);
			return nb_error_set(err, NB_ERESOURCE, "out of memory");
		}
	}
	return 0;
}

static int parse_desc_array(json_t *a, const char *what, const char *field, size_t max,
			    struct oci_desc **out, size_t *n, struct nb_error *err)
{
	*out = NULL;
	*n = 0;
	if (!json_is_array(a))
		return nb_error_set(err, NB_EFORMAT, "%s: '%s' is missing or not an array", what,
				    field);
	size_t cnt = json_array_size(a);
	if (cnt > max)
		return nb_error_set(err, NB_EFORMAT, "%s: '%s' has %zu entries (limit %zu)", what,
				    field, cnt, max);
	struct oci_desc *d = calloc(cnt ? cnt : 1, sizeof(*d));
	if (!d)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		char f[64];
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		if (parse_desc(json_array_get(a, i), what, f, &d[i], err) < 0) {
			oci_descs_free(d, i);
			return -1;
		}
	}
	*out = d;
	*n = cnt;
	return 0;
}

static int check_schema(json_t *root, const char *what, struct nb_error *err)
{
	json_t *sv = json_object_get(root, "schemaVersion");
	if (sv && (!json_is_integer(sv) || json_integer_value(sv) != 2))
		return nb_error_set(err, NB_EFORMAT, "%s: schemaVersion is not 2", what);
	return 0;
}

int oci_index_parse(const char *json, size_t len, struct oci_desc **out, size_t *n,
		    struct nb_error *err)
{
	json_t *root = load(json, len, "index", err);
	if (!root)
		return -1;
	int rc = -1;
	if (!json_is_object(root)) {
		nb_error_set(err, NB_EFORMAT, "index: not a JSON object");
		goto out;
	}
	if (check_schema(root, "index", err) < 0)
		goto out;
	rc = parse_desc_array(json_object_get(root, "manifests"), "index", "manifests",
			      OCI_MAX_MANIFESTS, out, n, err);
out:
	json_decref(root);
	return rc;
}

int oci_layer_media_ok(const char *mt)
{
	static const char *const ok[] = {
	    "application/vnd.oci.image.layer.v1.tar",
	    "application/vnd.oci.image.layer.v1.tar+gzip",
	    "application/vnd.oci.image.layer.v1.tar+zstd",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	    "application/vnd.docker.image.rootfs.diff.tar",
	    "application/vnd.docker.image.rootfs.diff.tar.gzip",
	    "application/vnd.docker.image.rootfs.diff.tar.zstd",
	    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	};
	if (!mt)
		return 1; /* absent: sniffed from the content */
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(mt, ok[i]))
			return 1;
	return 0;
}

int oci_manifest_parse(const char *json, size_t len, struct oci_desc *config,
		       struct oci_desc **layers, size_t *nlayers, struct nb_error *err)
{
	memset(config, 0, sizeof(*config));
	*layers = NULL;
	*nlayers = 0;
	json_t *root = load(json, len, "manifest", err);
	if (!root)
		return -1;
	int rc = -1;
	if (!json_is_object(root)) {
		nb_error_set(err, NB_EFORMAT, "manifest: not a JSON object");
		goto out;
	}
	if (check_schema(root, "manifest", err) < 0)
		goto out;
	if (parse_desc(json_object_get(root, "config"), "manifest", "config", config, err) < 0)
		goto out;
	if (parse_desc_array(json_object_get(root, "layers"), "manifest", "layers", OCI_MAX_LAYERS,
			     layers, nlayers, err) < 0) {
		oci_desc_clear(config);
		goto out;
	}
	for (size_t i = 0; i < *nlayers; i++)
		if (!oci_layer_media_ok((*layers)[i].media_type)) {
			nb_error_set(err, NB_EFORMAT,
				     "manifest: layers[%zu] has media type '%.200s'", i,
				     (*layers)[i].media_type);
			oci_descs_free(*layers, *nlayers);
			*layers = NULL;
			*nlayers = 0;
			oci_desc_clear(config);
			goto out;
		}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void oci_config_release(struct oci_config *c)
{
	if (!c)
		return;
	oci_strv_free(c->entrypoint);
	oci_strv_free(c->cmd);
	oci_strv_free(c->env);
	free(c->workdir);
	free(c->ports);
	free(c->diff_ids);
	memset(c, 0, sizeof(*c));
}

static int days_from_civil(int64_t y, unsigned m, unsigned d, int64_t *out)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	*out = era * 146097 + (int64_t)doe - 719468;
	return 0;
}

int oci_parse_time(const char *s, int64_t *out)
{
	int Y, M, D, h, m, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 ||
	    n != 19)
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 0 || h < 0 ||
	    m < 0 || sec < 0)
		return -EINVAL;
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
			return -EINVAL;
		off = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	int64_t days;
	days_from_civil(Y, (unsigned)M, (unsigned)D, &days);
	*out = days * 86400 + h * 3600 + m * 60 + sec - off;
	return 0;
}

int oci_config_parse(const char *json, size_t len, struct oci_config *out, struct nb_error *err)
{
	memset(out, 0, sizeof(*out));
	json_t *root = load(json, len, "config", err);
	if (!root)
		return -1;
	int rc = -1;
	if (!json_is_object(root)) {
		nb_error_set(err, NB_EFORMAT, "config: not a JSON object");
		goto out;
	}
	const char *arch = opt_str(root, "architecture"), *os = opt_str(root, "os");
	if ((arch && strcmp(arch, "amd64")) || (os && strcmp(os, "linux"))) {
		nb_error_set(err, NB_EFORMAT,
			     "config: image is for %.40s/%.40s; nubis runs linux/amd64 images",
			     os ? os : "?", arch ? arch : "?");
		goto out;
	}
	json_t *cr = json_object_get(root, "created");
	if (json_is_string(cr) && oci_parse_time(json_string_value(cr), &out->created) < 0) {
		nb_error_set(err, NB_EFORMAT, "config: 'created' is not an RFC 3339 time: '%.64s'",
			     json_string_value(cr));
		goto out;
	}
	json_t *cfg = json_object_get(root, "config");
	if (cfg && !json_is_null(cfg) && !json_is_object(cfg)) {
		nb_error_set(err, NB_EFORMAT, "config: 'config' is not an object");
		goto out;
	}
	if (!json_is_object(cfg))
		cfg = NULL;
	if (strv_from(cfg ? json_object_get(cfg, "Entrypoint") : NULL, "config", "Entrypoint",
		      &out->entrypoint, err) < 0 ||
	    strv_from(cfg ? json_object_get(cfg, "Cmd") : NULL, "config", "Cmd", &out->cmd, err) <
		0 ||
	    strv_from(cfg ? json_object_get(cfg, "Env") : NULL, "config", "Env", &out->env, err) <
		0)
		goto out;
	for (char **e = out->env; *e; e++)
		if (!strchr(*e, '=')) {
			nb_error_set(err, NB_EFORMAT, "config: Env entry '%.100s' has no '='", *e);
			goto out;
		}
	json_t *wd = cfg ? json_object_get(cfg, "WorkingDir") : NULL;
	if (wd && !json_is_null(wd) && !json_is_string(wd)) {
		nb_error_set(err, NB_EFORMAT, "config: 'WorkingDir' is not a string");
		goto out;
	}
	const char *w = json_is_string(wd) ? json_string_value(wd) : "";
	if (*w && *w != '/') {
		nb_error_set(err, NB_EFORMAT, "config: WorkingDir '%.100s' is not absolute", w);
		goto out;
	}
	if (strlen(w) >= 4096) {
		nb_error_set(err, NB_EFORMAT, "config: WorkingDir is too long");
		goto out;
	}
	if (!(out->workdir = strdup(*w ? w : "/"))) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	json_t *ep = cfg ? json_object_get(cfg, "ExposedPorts") : NULL;
	if (ep && !json_is_null(ep)) {
		if (!json_is_object(ep)) {
			nb_error_set(err, NB_EFORMAT, "config: 'ExposedPorts' is not an object");
			goto out;
		}
		size_t cnt = json_object_size(ep);
		if (cnt > MAX_STRV) {
			nb_error_set(err, NB_EFORMAT, "config: too many ExposedPorts (%zu)", cnt);
			goto out;
		}
		out->ports = calloc(cnt ? cnt : 1, sizeof(*out->ports));
		if (!out->ports) {
			nb_error_set(err, NB_ERESOURCE, "out of memory");
			goto out;
		}
		const char *key;
		json_t *val;
		json_object_foreach(ep, key, val)
		{
			char *end;
			errno = 0;
			unsigned long port = strtoul(key, &end, 10);
			if (end == key || errno || port == 0 || port > 65535 ||
			    (*end && strcmp(end, "/tcp") && strcmp(end, "/udp"))) {
				nb_error_set(
				    err, NB_EFORMAT,
				    "config: ExposedPorts key '%.40s' is not PORT[/tcp|/udp]", key);
				goto out;
			}
			if (!strcmp(end, "/udp"))
				continue;
			int dup = 0;
			for (size_t i = 0; i < out->nports; i++)
				dup |= out->ports[i] == port;
			if (!dup)
				out->ports[out->nports++] = (uint16_t)port;
		}
	}
	json_t *rootfs = json_object_get(root, "rootfs");
	if (!json_is_object(rootfs)) {
		nb_error_set(err, NB_EFORMAT, "config: 'rootfs' is missing or not an object");
		goto out;
	}
	const char *type = opt_str(rootfs, "type");
	if (!type || strcmp(type, "layers")) {
		nb_error_set(err, NB_EFORMAT, "config: rootfs.type is not \"layers\"");
		goto out;
	}
	json_t *ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids)) {
		nb_error_set(err, NB_EFORMAT, "config: rootfs.diff_ids is missing or not an array");
		goto out;
	}
	size_t nd = json_array_size(ids);
	if (nd > OCI_MAX_LAYERS) {
		nb_error_set(err, NB_EFORMAT, "config: %zu diff_ids (limit %d)", nd,
			     OCI_MAX_LAYERS);
		goto out;
	}
	out->diff_ids = calloc(nd ? nd : 1, sizeof(*out->diff_ids));
	if (!out->diff_ids) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nd; i++) {
		json_t *s = json_array_get(ids, i);
		if (!json_is_string(s) ||
		    digest_parse(json_string_value(s), out->diff_ids[i]) < 0) {
			nb_error_set(
			    err, NB_EFORMAT,
			    "config: rootfs.diff_ids[%zu] is not sha256:<64 lowercase hex>", i);
			goto out;
		}
	}
	out->ndiff = nd;
	rc = 0;
out:
	if (rc < 0)
		oci_config_release(out);
	json_decref(root);
	return rc;
}

void oci_docker_free(struct docker_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].config);
		oci_strv_free(e[i].repotags);
		oci_strv_free(e[i].layers);
	}
	free(e);
}

int oci_docker_parse(const char *json, size_t len, struct docker_entry **out, size_t *n,
		     struct nb_error *err)
{
	*out = NULL;
	*n = 0;
	json_t *root = load(json, len, "manifest.json", err);
	if (!root)
		return -1;
	int rc = -1;
	struct docker_entry *v = NULL;
	size_t cnt = 0;
	if (!json_is_array(root)) {
		nb_error_set(err, NB_EFORMAT, "manifest.json: not a JSON array");
		goto out;
	}
	cnt = json_array_size(root);
	if (cnt == 0 || cnt > OCI_MAX_MANIFESTS) {
		nb_error_set(err, NB_EFORMAT, "manifest.json: %zu images (expected 1 to %d)", cnt,
			     OCI_MAX_MANIFESTS);
		goto out;
	}
	v = calloc(cnt, sizeof(*v));
	if (!v) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		json_t *o = json_array_get(root, i);
		char what[64];
		snprintf(what, sizeof(what), "manifest.json[%zu]", i);
		if (!json_is_object(o)) {
			nb_error_set(err, NB_EFORMAT, "%s: not an object", what);
			goto out;
		}
		const char *cfg = opt_str(o, "Config");
		if (!cfg || !*cfg || strlen(cfg) >= 4096) {
			nb_error_set(err, NB_EFORMAT, "%s: 'Config' is missing or not a string",
				     what);
			goto out;
		}
		if (!(v[i].config = strdup(cfg))) {
			nb_error_set(err, NB_ERESOURCE, "out of memory");
			goto out;
		}
		if (strv_from(json_object_get(o, "RepoTags"), what, "RepoTags", &v[i].repotags,
			      err) < 0)
			goto out;
		json_t *ls = json_object_get(o, "Layers");
		if (!json_is_array(ls)) {
			nb_error_set(err, NB_EFORMAT, "%s: 'Layers' is missing or not an array",
				     what);
			goto out;
		}
		if (json_array_size(ls) > OCI_MAX_LAYERS) {
			nb_error_set(err, NB_EFORMAT, "%s: %zu layers (limit %d)", what,
				     json_array_size(ls), OCI_MAX_LAYERS);
			goto out;
		}
		if (strv_from(ls, what, "Layers", &v[i].layers, err) < 0)
			goto out;
		v[i].nlayers = json_array_size(ls);
	}
	*out = v;
	*n = cnt;
	v = NULL;
	rc = 0;
out:
	oci_docker_free(v, cnt);
	json_decref(root);
	return rc;
}
