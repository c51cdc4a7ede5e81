/* SPDX-License-Identifier: MIT */
#include "svcrun.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/parse.h"
#include "../fnvm/fnvm.h"
#include "../image/image.h"
#include "cli.h"
#include "svcmon.h"
#include "svcstate.h"

/* getopt codes of the options services adds to `nubis run` */
enum {
	ROPT_NAME = 4000,
	ROPT_RM,
	ROPT_ROOTFS,
	ROPT_ENTRYPOINT,
	ROPT_LOG_SIZE,
};

#define RUN_OWN_LONGOPTS                                                                           \
	{"detach", no_argument, NULL, 'd'}, {"name", required_argument, NULL, ROPT_NAME},          \
	    {"rm", no_argument, NULL, ROPT_RM}, {"rootfs", required_argument, NULL, ROPT_ROOTFS},  \
	    {"entrypoint", required_argument, NULL, ROPT_ENTRYPOINT},                              \
	    {"workdir", required_argument, NULL, 'w'}, {"env", required_argument, NULL, 'e'},      \
	    {"log-size", required_argument, NULL, ROPT_LOG_SIZE},                                  \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

static const struct option svc_longopts[] = {SVC_LONGOPTS, {0}};

void svcrun_opts_init(struct svcrun_opts *o)
{
	memset(o, 0, sizeof(*o));
	svc_opts_init(&o->svc);
}

void svcrun_opts_free(struct svcrun_opts *o)
{
	svc_opts_free(&o->svc);
}

int svcrun_opts_from_json(struct svcrun_opts *o, json_t *pairs, struct nb_error *err)
{
	if (!pairs)
		return 0;
	if (!json_is_array(pairs))
		return nb_error_set(err, NB_EFORMAT, "config.json: \"options\" is not an array");
	for (size_t i = 0; i < json_array_size(pairs); i++) {
		json_t *p = json_array_get(pairs, i);
		const char *name = json_string_value(json_array_get(p, 0));
		const char *val = json_string_value(json_array_get(p, 1));
		if (!json_is_array(p) || json_array_size(p) != 2 || !name || !val)
			return nb_error_set(err, NB_EFORMAT,
					    "config.json: options[%zu] is not [name, value]", i);
		const struct option *opt = NULL;
		for (const struct option *q = svc_longopts; q->name && !opt; q++)
			if (!strcmp(q->name, name))
				opt = q;
		if (!opt)
			return nb_error_set(err, NB_EFORMAT, "config.json: unknown option --%s",
					    name);
		int r = svc_opts_handle(&o->svc, opt->val, val);
		if (r <= 0)
			return nb_error_set(err, NB_EINVAL, "bad option --%s %s", name, val);
	}
	return 0;
}

/* Does the store hold image @ref? Opens the store only if it exists. */
static bool image_exists(const char *ref)
{
	char home[PATH_MAX], images[PATH_MAX + 16];
	struct stat st;
	if (strchr(ref, '/') || svcstate_home(home, sizeof(home)) < 0)
		return false;
	snprintf(images, sizeof(images), "%s/images", home);
	if (stat(images, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	struct image_store *s = NULL;
	struct image_info info;
	bool found = false;
	if (image_store_open(NULL, &s, NULL) == 0) {
		memset(&info, 0, sizeof(info));
		if (image_lookup(s, ref, &info, NULL) == 0) {
			found = true;
			image_info_release(&info);
		}
		image_store_close(s);
	}
	return found;
}

bool svcrun_wanted(int argc, char **argv)
{
	static const struct option fn_longopts[] = {FN_LONGOPTS, {0}};
	static const struct option own[] = {RUN_OWN_LONGOPTS, {0}};
	const struct option *tables[] = {own, svc_longopts, fn_longopts};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			return i + 1 < argc && image_exists(argv[i + 1]);
		if (a[0] != '-' || !a[1])
			return image_exists(a);
		if (!strcmp(a, "-d") || !strcmp(a, "--detach") || !strcmp(a, "--rm") ||
		    !strcmp(a, "--name") || !strncmp(a, "--name=", 7))
			return true;
		if (a[1] != '-') {
			/* short options that take a value: -e K=V, -w DIR */
			if ((a[1] == 'e' || a[1] == 'w') && !a[2])
				i++;
			continue;
		}
		if (strchr(a, '='))
			continue;
		for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
			for (const struct option *o = tables[t]; o->name; o++)
				if (!strcmp(o->name, a + 2) && o->has_arg == required_argument) {
					i++;
					goto next;
				}
	next:;
	}
	return false;
}

void svcrun_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: nubis run [-d] [--name NAME] [--rm] [OPTIONS] IMAGE [CMD [ARGS...]]\n"
	    "       nubis run [-d] [--name NAME] [--rm] [OPTIONS] --rootfs DIR PROGRAM "
	    "[ARGS...]\n\n"
	    "Run a service VM: a long-running program whose root filesystem is an image of\n"
	    "the store (nubis image import) or a host directory (read-only), with a\n"
	    "writable layer of its own. IMAGE is a name[:tag] or an id (prefix); without\n"
	    "CMD the image's entrypoint and command run. Options after IMAGE are CMD's.\n"
	    "Without -d, the VM runs in the foreground with this terminal's stdio and its\n"
	    "exit status becomes nubis's; with -d, nubis prints the container id and\n"
	    "returns once the guest runs. Manage it with nubis ps/logs/stop/kill/pause/\n"
	    "resume/start/rm/inspect.\n\n"
	    "options:\n"
	    "  -d, --detach           run in the background, print the container id\n"
	    "  --name NAME            container name ([a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}, unique)\n"
	    "  --rm                   remove the container (and its writable layer) when it "
	    "exits\n"
	    "  --rootfs DIR           use host directory DIR as the read-only root instead of an "
	    "image\n"
	    "  --entrypoint PROG      replace the image's entrypoint\n"
	    "  -w, --workdir DIR      working directory in the guest (default: the image's)\n"
	    "  -e, --env K=V          set an environment variable (after the image's)\n"
	    "  --log-size SIZE        rotate the log at SIZE bytes (default 10M, min 4K)\n");
	svc_opts_usage(out);
}

/* Append the real path of --rootfs @dir to @layers; false (message printed)
 * if it is not a directory. */
static bool rootfs_layers(json_t *layers, const char *dir)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(dir, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "nubis run: --rootfs %s: not a directory\n", dir);
		return false;
	}
	return json_array_append_new(layers, json_string(real)) == 0;
}

/* Append "K=V" to @env, replacing an entry of the same K. */
static int env_set(json_t *env, const char *kv)
{
	size_t klen = (size_t)(strchr(kv, '=') - kv);
	for (size_t i = 0; i < json_array_size(env); i++) {
		const char *e = json_string_value(json_array_get(env, i));
		if (e && !strncmp(e, kv, klen) && e[klen] == '=')
			return json_array_set_new(env, i, json_string(kv));
	}
	return json_array_append_new(env, json_string(kv));
}

static void append_strv(json_t *a, char *const *v)
{
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
}

int svcrun_main(int argc, char **argv)
{
	static const struct option longopts[] = {RUN_OWN_LONGOPTS, SVC_LONGOPTS, {0}};
	int status = FNVM_STATUS_USAGE, c;
	bool detach = false, rm = false;
	const char *name = NULL, *rootfs = NULL, *entrypoint = NULL, *workdir = NULL;
	uint64_t log_max = SVCMON_LOG_MAX_DEFAULT;
	json_t *cfg = json_object(), *options = json_array(), *env_opt = json_array();
	json_t *layers_opt = json_array();
	struct svcrun_opts o;
	struct svcstate_store store = {.dirfd = -1};
	struct svcstate_rec *rec = NULL;
	struct image_store *images = NULL;
	struct image_info info;
	bool have_info = false;
	struct nb_error err;

	svcrun_opts_init(&o);
	memset(&info, 0, sizeof(info));
	if (!cfg || !options || !env_opt || !layers_opt)
		goto oom;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+de:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			svcrun_usage(stdout);
			status = 0;
			goto out;
		case 'd':
			detach = true;
			break;
		case ROPT_NAME:
			if (!svcstate_name_valid(optarg)) {
				fprintf(stderr,
					"nubis run: bad name '%s': need "
					"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}\n",
					optarg);
				goto out;
			}
			name = optarg;
			break;
		case ROPT_RM:
			rm = true;
			break;
		case ROPT_ROOTFS: /* repeatable: top layer first */
			if (!rootfs_layers(layers_opt, optarg))
				goto out;
			rootfs = optarg;
			break;
		case ROPT_ENTRYPOINT:
			entrypoint = optarg;
			break;
		case 'w':
			if (optarg[0] != '/') {
				fprintf(stderr, "nubis run: --workdir %s: need an absolute path\n",
					optarg);
				goto out;
			}
			workdir = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				fprintf(stderr, "nubis run: --env %s: expected K=V\n", optarg);
				goto out;
			}
			json_array_append_new(env_opt, json_string(optarg));
			break;
		case ROPT_LOG_SIZE:
			if (nb_parse_size(optarg, &log_max) || log_max < 4096 ||
			    log_max > (1ull << 40)) {
				fprintf(stderr,
					"nubis run: --log-size %s: need a size from 4K to 1T\n",
					optarg);
				goto out;
			}
			break;
		case '?':
			svcrun_usage(stderr);
			goto out;
		case SVCOPT_UPPER:
			fprintf(stderr,
				"nubis run: --upper: the writable layer of a container is its "
				"own (containers/ID/upper)\n");
			goto out;
		default: {
			/* a service option: validate now, keep for the monitor */
			const char *oname = NULL;
			for (const struct option *q = svc_longopts; q->name; q++)
				if (q->val == c)
					oname = q->name;
			if (!oname || svc_opts_handle(&o.svc, c, optarg ? optarg : "") <= 0)
				goto out;
			json_array_append_new(options,
					      json_pack("[ss]", oname, optarg ? optarg : ""));
		}
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis run: missing %s\n", rootfs ? "PROGRAM" : "IMAGE");
		svcrun_usage(stderr);
		goto out;
	}
	char **args = argv + optind + (rootfs ? 0 : 1);
	json_t *argv_j = json_array(), *env_j = json_array(), *layers = json_array();
	json_object_set_new(cfg, "argv", argv_j);
	json_object_set_new(cfg, "env", env_j);
	json_object_set_new(cfg, "layers", layers);
	if (!argv_j || !env_j || !layers)
		goto oom;
	if (rootfs) {
		json_array_extend(layers, layers_opt);
		json_object_set_new(cfg, "rootfs", json_copy(json_array_get(layers_opt, 0)));
		json_object_set_new(cfg, "image", json_null());
		json_object_set_new(cfg, "workdir", json_string(workdir ? workdir : "/"));
		if (entrypoint)
			json_array_append_new(argv_j, json_string(entrypoint));
	} else {
		const char *ref = argv[optind];
		if (image_store_open(NULL, &images, &err) < 0 ||
		    image_lookup(images, ref, &info, &err) < 0) {
			fprintf(stderr, "nubis run: %s\n", err.msg);
			status = 1;
			goto out;
		}
		have_info = true;
		for (size_t i = 0; i < info.nlayers; i++) {
			/* absolute: the monitor runs in "/" */
			char *abs = realpath(info.layer_dirs[i], NULL);
			json_array_append_new(layers, json_string(abs ? abs : info.layer_dirs[i]));
			free(abs);
		}
		json_object_set_new(cfg, "image",
				    json_pack("{s:s, s:s, s:s}", "ref", ref, "id", info.id, "name",
					      info.name ? info.name : ""));
		json_object_set_new(cfg, "workdir",
				    json_string(workdir	       ? workdir
						: info.workdir ? info.workdir
							       : "/"));
		for (size_t i = 0; info.env && info.env[i]; i++)
			if (strchr(info.env[i], '='))
				env_set(env_j, info.env[i]);
		if (entrypoint)
			json_array_append_new(argv_j, json_string(entrypoint));
		else
			append_strv(argv_j, info.entrypoint);
		if (!*args && !entrypoint)
			append_strv(argv_j, info.cmd);
	}
	for (size_t i = 0; args[i]; i++)
		json_array_append_new(argv_j, json_string(args[i]));
	for (size_t i = 0; i < json_array_size(env_opt); i++)
		env_set(env_j, json_string_value(json_array_get(env_opt, i)));
	bool has_path = false;
	for (size_t i = 0; i < json_array_size(env_j); i++)
		has_path |= !strncmp(json_string_value(json_array_get(env_j, i)), "PATH=", 5);
	if (!has_path) /* as for `nubis run --rootfs` (svc_opts_finish) */
		json_array_append_new(
		    env_j,
		    json_string(
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	if (!json_array_size(argv_j) || !json_string_value(json_array_get(argv_j, 0))[0]) {
		fprintf(stderr, "nubis run: %s has no command: give one after it\n",
			rootfs ? "--rootfs" : argv[optind]);
		goto out;
	}
	if (!json_array_size(layers)) {
		fprintf(stderr, "nubis run: %s has no layers\n", argv[optind]);
		goto out;
	}
	if (name)
		json_object_set_new(cfg, "name", json_string(name));
	json_object_set(cfg, "options", options);
	json_object_set_new(cfg, "auto_remove", json_boolean(rm));
	json_object_set_new(cfg, "log_max", json_integer((json_int_t)log_max));

	if (svcstate_store_open(NULL, &store, &err) < 0 ||
	    svcstate_create(&store, cfg, &rec, &err) < 0) {
		fprintf(stderr, "nubis run: %s\n", err.msg);
		status = err.code == NB_EINVAL ? FNVM_STATUS_USAGE : 1;
		goto out;
	}
	if (!detach) {
		status = svcmon_foreground(&store, rec);
		goto out;
	}
	if (svcmon_spawn(&store, rec, &err) < 0) {
		fprintf(stderr, "nubis run: %s\n", err.msg);
		if (rm) {
			struct nb_error e2;
			/* the monitor may still be removing it */
			svcstate_wait_exit(rec, 5000);
			if (faccessat(store.dirfd, rec->id, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
			    svcstate_remove(&store, rec, &e2) < 0)
				fprintf(stderr, "nubis run: %s\n", e2.msg);
		}
		status = FNVM_STATUS_USAGE;
		goto out;
	}
	printf("%s\n", rec->id);
	status = 0;
	goto out;
oom:
	fprintf(stderr, "nubis run: out of memory\n");
	status = FNVM_STATUS_INTERNAL;
out:
	svcstate_rec_free(rec);
	if (store.dirfd >= 0)
		svcstate_store_close(&store);
	if (have_info)
		image_info_release(&info);
	if (images)
		image_store_close(images);
	json_decref(cfg);
	json_decref(options);
	json_decref(env_opt);
	json_decref(layers_opt);
	svcrun_opts_free(&o);
	return status;
}
