/* SPDX-License-Identifier: MIT */
/* nubis image: import, ls, rm, inspect (the image store, src/image/). */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../common/parse.h"
#include "../image/image.h"
#include "cli.h"

void cmd_image_usage(FILE *out)
{
	fprintf(out,
		"usage: nubis image import SRC [--name NAME[:TAG]] [--max-layer-size SIZE]\n"
		"                          [--max-image-size SIZE] [--max-entries N]\n"
		"       nubis image ls [--json]\n"
		"       nubis image rm REF\n"
		"       nubis image inspect REF\n\n"
		"Manage the image store ($NUBIS_HOME, else /var/lib/nubis for root, else\n"
		"~/.local/share/nubis). SRC is an OCI image layout directory or tar, a\n"
		"`docker save` tar, a plain directory (one layer) or a plain tarball (one\n"
		"layer; gzip, zstd, xz or uncompressed). Every blob digest and size and every\n"
		"layer diff_id is verified; nothing is recorded on any error.\n"
		"REF is NAME[:TAG] (tag defaults to latest), a full image id or a unique id\n"
		"prefix of at least 4 hex digits.\n"
		"  --name NAME[:TAG]      name the image (default: the name in SRC, if any)\n"
		"  --max-layer-size SIZE  cap per layer, e.g. 512M (default 8G)\n"
		"  --max-image-size SIZE  cap per image (default 32G)\n"
		"  --max-entries N        cap on entries per layer (default 1000000)\n"
		"  --json                 ls: print a JSON array\n");
}

static void fmt_size(uint64_t b, char *buf, size_t sz)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	size_t i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, sz, "%" PRIu64 " B", b);
	else
		snprintf(buf, sz, "%.1f %s", v, u[i]);
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *info_json(const struct image_info *in, int full)
{
	json_t *o = json_pack("{s:s, s:o, s:I, s:I}", "id", in->id, "name",
			      in->name ? json_string(in->name) : json_null(), "size",
			      (json_int_t)in->size, "created", (json_int_t)in->created);
	if (!o || !full)
		return o;
	json_t *ports = json_array();
	for (size_t i = 0; ports && i < in->nexposed; i++)
		json_array_append_new(ports, json_integer(in->exposed_tcp[i]));
	json_t *layers = json_array();
	for (size_t i = 0; layers && i < in->nlayers; i++)
		json_array_append_new(layers, json_string(in->layer_dirs[i]));
	json_object_set_new(o, "layer_dirs", layers);
	json_object_set_new(o, "entrypoint", strv_json(in->entrypoint));
	json_object_set_new(o, "cmd", strv_json(in->cmd));
	json_object_set_new(o, "env", strv_json(in->env));
	json_object_set_new(o, "workdir", json_string(in->workdir ? in->workdir : "/"));
	json_object_set_new(o, "exposed_tcp", ports);
	return o;
}

static int print_json(json_t *o)
{
	if (!o) {
		fprintf(stderr, "nubis image: out of memory\n");
		return FNVM_STATUS_INTERNAL;
	}
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (!s)
		return FNVM_STATUS_INTERNAL;
	printf("%s\n", s);
	free(s);
	return 0;
}

static int status_for(const struct nb_error *err)
{
	switch (err->code) {
	case NB_ENOENT:
		return FNVM_STATUS_NOT_FOUND;
	case NB_EINVAL:
		return FNVM_STATUS_USAGE;
	case NB_EFORMAT:
		return FNVM_STATUS_BAD_PROGRAM;
	default:
		return FNVM_STATUS_INTERNAL;
	}
}

static int do_import(struct image_store *s, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"max-layer-size", required_argument, NULL, 'L'},
	    {"max-image-size", required_argument, NULL, 'I'},
	    {"max-entries", required_argument, NULL, 'E'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *name = NULL;
	uint64_t lmax = 0, imax = 0, emax = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'L':
		case 'I':
			if (nb_parse_size(optarg, c == 'L' ? &lmax : &imax) < 0 ||
			    (c == 'L' ? lmax : imax) == 0) {
				fprintf(stderr, "nubis image import: bad size '%s'\n", optarg);
				return FNVM_STATUS_USAGE;
			}
			break;
		case 'E':
			if (nb_parse_u64(optarg, &emax) < 0 || emax == 0) {
				fprintf(stderr, "nubis image import: bad count '%s'\n", optarg);
				return FNVM_STATUS_USAGE;
			}
			break;
		case 'h':
			cmd_image_usage(stdout);
			return 0;
		default:
			cmd_image_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "nubis image import: expected one SRC\n");
		return FNVM_STATUS_USAGE;
	}
	image_store_set_limits(s, lmax, imax, emax);
	char id[65];
	struct nb_error err;
	nb_error_clear(&err);
	if (image_import(s, argv[optind], name, id, &err) < 0) {
		fprintf(stderr, "nubis image import: %s\n", err.msg);
		return status_for(&err);
	}
	printf("%s\n", id);
	return 0;
}

static int do_ls(struct image_store *s, int argc, char **argv)
{
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else {
			fprintf(stderr, "nubis image ls: unknown argument '%s'\n", argv[i]);
			return FNVM_STATUS_USAGE;
		}
	}
	struct image_info *v;
	size_t n;
	struct nb_error err;
	if (image_list(s, &v, &n, &err) < 0) {
		fprintf(stderr, "nubis image ls: %s\n", err.msg);
		return status_for(&err);
	}
	int rc = 0;
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < n; i++) {
			json_t *o = info_json(&v[i], 1);
			if (o) {
				json_object_set_new(o, "layers",
						    json_integer((json_int_t)v[i].nlayers));
				json_array_append_new(a, o);
			}
		}
		rc = print_json(a);
	} else {
		printf("%-40s %-12s %10s  %s\n", "NAME", "ID", "SIZE", "CREATED");
		for (size_t i = 0; i < n; i++) {
			char sz[32], when[32] = "-";
			fmt_size(v[i].size, sz, sizeof(sz));
			time_t t = (time_t)v[i].created;
			struct tm tm;
			if (v[i].created && gmtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			printf("%-40s %-12.12s %10s  %s\n", v[i].name ? v[i].name : "<none>",
			       v[i].id, sz, when);
		}
	}
	for (size_t i = 0; i < n; i++)
		image_info_release(&v[i]);
	free(v);
	return rc;
}

int cmd_image_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		cmd_image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? FNVM_STATUS_USAGE : 0;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "import") && strcmp(sub, "ls") && strcmp(sub, "rm") &&
	    strcmp(sub, "inspect")) {
		fprintf(stderr, "nubis image: unknown subcommand '%s'\n", sub);
		cmd_image_usage(stderr);
		return FNVM_STATUS_USAGE;
	}
	struct image_store *s;
	struct nb_error err;
	nb_error_clear(&err);
	if (image_store_open(NULL, &s, &err) < 0) {
		fprintf(stderr, "nubis image: %s\n", err.msg);
		return FNVM_STATUS_INTERNAL;
	}
	int rc;
	if (!strcmp(sub, "import")) {
		rc = do_import(s, argc - 1, argv + 1);
	} else if (!strcmp(sub, "ls")) {
		rc = do_ls(s, argc - 1, argv + 1);
	} else if (argc != 3) {
		fprintf(stderr, "nubis image %s: expected one REF\n", sub);
		rc = FNVM_STATUS_USAGE;
	} else if (!strcmp(sub, "rm")) {
		rc = 0;
		if (image_remove(s, argv[2], &err) < 0) {
			fprintf(stderr, "nubis image rm: %s\n", err.msg);
			rc = status_for(&err);
		}
	} else {
		struct image_info info;
		if (image_lookup(s, argv[2], &info, &err) < 0) {
			fprintf(stderr, "nubis image inspect: %s\n", err.msg);
			rc = status_for(&err);
		} else {
			rc = print_json(info_json(&info, 1));
			image_info_release(&info);
		}
	}
	image_store_close(s);
	return rc;
}
