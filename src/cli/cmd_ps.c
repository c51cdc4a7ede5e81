/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "svcstate.h"

void cmd_ps_usage(FILE *out)
{
	fprintf(out,
		"usage: nubis ps [-a] [--json] [-q]\n\n"
		"List service VMs: running and paused ones, with -a also created and exited\n"
		"ones. A VM whose monitor died without recording an exit shows as\n"
		"\"exited (monitor died)\".\n\n"
		"options:\n"
		"  -a, --all     include containers that are not running\n"
		"  --json        one JSON array of objects (id, name, image, command, created,\n"
		"                status, pid, exit_code, started_at, finished_at, error)\n"
		"  -q, --quiet   ids only\n");
}

/* "5s", "3m", "2h", "4d" */
static void age(int64_t ms, char *buf, size_t cap)
{
	int64_t s = ms / 1000;
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, cap, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, cap, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, cap, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, cap, "%lldd", (long long)(s / 86400));
}

static void status_text(const struct svcstate_rec *r, int64_t now, char *buf, size_t cap)
{
	char a[32];
	switch (r->st.status) {
	case SVCSTATE_RUNNING:
		age(now - r->st.started_ms, a, sizeof(a));
		snprintf(buf, cap, "running %s", a);
		break;
	case SVCSTATE_EXITED:
		age(now - r->st.finished_ms, a, sizeof(a));
		snprintf(buf, cap, "exited (%d) %s ago", r->st.exit_code, a);
		break;
	default:
		snprintf(buf, cap, "%s", svcstate_status_name(r->st.status));
	}
}

/* @s shortened to @w characters ("..." at the end). */
static void clip(const char *s, size_t w, char *buf, size_t cap)
{
	if (strlen(s) <= w)
		snprintf(buf, cap, "%s", s);
	else
		snprintf(buf, cap, "%.*s...", (int)(w - 3), s);
}

int cmd_ps_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
						 {"json", no_argument, NULL, 'j'},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {0}};
	bool all = false, json = false, quiet = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "aqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			cmd_ps_usage(stdout);
			return 0;
		default:
			cmd_ps_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "nubis ps: unexpected argument '%s'\n", argv[optind]);
		return FNVM_STATUS_USAGE;
	}
	struct svcstate_store s;
	struct svcstate_rec **v = NULL;
	size_t n = 0;
	struct nb_error err;
	if (svcstate_store_open(NULL, &s, &err) < 0 || svcstate_list(&s, &v, &n, &err) < 0) {
		fprintf(stderr, "nubis ps: %s\n", err.msg);
		if (s.dirfd >= 0)
			svcstate_store_close(&s);
		return 1;
	}
	json_t *arr = json ? json_array() : NULL;
	int64_t now = svcstate_now_ms();
	if (!json && !quiet)
		printf("%-12s  %-20s  %-24s  %-24s  %-8s  %-24s  %s\n", "CONTAINER ID", "NAME",
		       "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS");
	for (size_t i = 0; i < n; i++) {
		struct svcstate_rec *r = v[i];
		bool live = r->st.status == SVCSTATE_RUNNING || r->st.status == SVCSTATE_PAUSED;
		if (!all && !live)
			continue;
		if (json) {
			json_array_append_new(arr, svcstate_describe(r, false));
			continue;
		}
		if (quiet) {
			printf("%s\n", r->id);
			continue;
		}
		json_t *img = json_object_get(r->config, "image");
		const char *image = json_string_value(json_object_get(img, "ref"));
		if (!image)
			image = json_string_value(json_object_get(r->config, "rootfs"));
		char cmd[256] = "", tmp[260], created[32], st[96], nm[32], im[32], cm[32];
		json_t *a = json_object_get(r->config, "argv");
		size_t off = 0;
		for (size_t k = 0; k < json_array_size(a) && off + 2 < sizeof(cmd); k++) {
			int w = snprintf(cmd + off, sizeof(cmd) - off, "%s%s", k ? " " : "",
					 json_string_value(json_array_get(a, k)));
			if (w < 0)
				break;
			off += (size_t)w;
		}
		snprintf(tmp, sizeof(tmp), "\"%s\"", cmd);
		clip(tmp, 24, cm, sizeof(cm));
		clip(r->name, 20, nm, sizeof(nm));
		clip(image ? image : "-", 24, im, sizeof(im));
		age(now - json_integer_value(json_object_get(r->config, "created_ms")), created,
		    sizeof(created));
		status_text(r, now, st, sizeof(st));
		char ports[256] = "";
		json_t *d = svcstate_describe(r, false);
		json_t *pa = json_object_get(d, "ports");
		for (size_t k = 0, po = 0; k < json_array_size(pa) && po + 2 < sizeof(ports); k++) {
			int w = snprintf(ports + po, sizeof(ports) - po, "%s%s", k ? ", " : "",
					 json_string_value(json_array_get(pa, k)));
			if (w < 0)
				break;
			po += (size_t)w;
		}
		json_decref(d);
		printf("%.12s  %-20s  %-24s  %-24s  %-8s  %-24s  %s\n", r->id, nm, im, cm, created,
		       st, ports);
	}
	if (json) {
		char *out = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", out ? out : "[]");
		free(out);
		json_decref(arr);
	}
	for (size_t i = 0; i < n; i++)
		svcstate_rec_free(v[i]);
	free(v);
	svcstate_store_close(&s);
	return 0;
}
