/* SPDX-License-Identifier: MIT */
/* nubis stop / kill / pause / resume / start / rm / inspect: the life cycle
 * of service VMs, through their monitors' control sockets. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/parse.h"
#include "../svc/ctl.h"
#include "cli.h"
#include "svcmon.h"
#include "svcstate.h"

#define STOP_TIMEOUT_DEFAULT 10u
/* beyond the grace period: the monitor's SIGKILL, teardown and exit */
#define STOP_SLACK_MS 10000

/* One command over several containers. @fn returns 0 or 1 (message printed). */
typedef int (*each_fn)(struct svcstate_store *s, struct svcstate_rec *r, const void *arg);

static int for_each(const char *cmd, char **names, int n, each_fn fn, const void *arg)
{
	struct svcstate_store s;
	struct nb_error err;
	int status = 0;
	if (svcstate_store_open(NULL, &s, &err) < 0) {
		fprintf(stderr, "nubis %s: %s\n", cmd, err.msg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct svcstate_rec *r;
		if (svcstate_find(&s, names[i], &r, &err) < 0) {
			fprintf(stderr, "nubis %s: %s\n", cmd, err.msg);
			status = 1;
			continue;
		}
		if (fn(&s, r, arg))
			status = 1;
		svcstate_rec_free(r);
	}
	svcstate_store_close(&s);
	return status;
}

static bool is_live(const struct svcstate_rec *r)
{
	return r->st.status == SVCSTATE_RUNNING || r->st.status == SVCSTATE_PAUSED;
}

/* PUT @path; 0 on 2xx, else 1 with a message "nubis CMD: NAME: ...". */
static int put(const char *cmd, const struct svcstate_rec *r, const char *path)
{
	struct nb_error err;
	char *body = NULL, msg[512];
	long st = svcstate_ctl(r, "PUT", path, &body, &err);
	int rc = 0;
	if (st < 0) {
		fprintf(stderr, "nubis %s: %s\n", cmd, err.msg);
		rc = 1;
	} else if (st < 200 || st > 299) {
		fprintf(stderr, "nubis %s: %s: %s\n", cmd, r->name,
			svcstate_ctl_message(body, msg, sizeof(msg)));
		rc = 1;
	}
	free(body);
	return rc;
}

/* A monitor that does not answer on its socket: signal its process (its
 * pid is in state.json; the lock proves it is still that monitor). */
static void signal_monitor(const struct svcstate_rec *r, int sig)
{
	if (r->st.pid > 0 && svcstate_monitor_alive(r))
		kill(r->st.pid, sig);
}

/* ---- stop ------------------------------------------------------------------ */

void cmd_stop_usage(FILE *out)
{
	fprintf(out, "usage: nubis stop [-t SECONDS] NAME...\n\n"
		     "Stop service VMs: SIGTERM to the guest, SIGKILL after the grace period.\n"
		     "Waits until each VM has ended; the writable layer stays (nubis start).\n\n"
		     "options:\n"
		     "  -t, --time SECONDS   grace period (default 10; 0 kills at once)\n");
}

/* Ask @r's monitor to stop (SIGTERM now, SIGKILL after @t seconds). Returns
 * true if there is something to wait for. */
static bool stop_request(const struct svcstate_rec *r, unsigned t)
{
	if (!is_live(r))
		return false; /* already stopped: nothing to do */
	char path[64];
	snprintf(path, sizeof(path), "/stop?timeout=%u", t);
	struct nb_error err;
	if (svcstate_ctl(r, "PUT", path, NULL, &err) < 0)
		/* the socket does not answer: SIGTERM to the monitor, which
		 * forwards it; SIGKILL follows in stop_wait() */
		signal_monitor(r, SIGTERM);
	return true;
}

/* Wait for @r's monitor to end; 0 or 1 (message printed). */
static int stop_wait(const struct svcstate_rec *r, unsigned t, int64_t start_ms)
{
	int64_t grace_end = start_ms + (int64_t)t * 1000;
	int64_t left = grace_end - svcstate_now_ms();
	if (svcstate_wait_exit(r, left > 0 ? left : 0) < 0) {
		/* a monitor that answers kills the guest itself at the deadline;
		 * one that did not answer gets SIGKILL now (ends it and its VM) */
		left = grace_end + STOP_SLACK_MS - svcstate_now_ms();
		if (svcstate_wait_exit(r, left > 2000 ? 2000 : 0) < 0)
			signal_monitor(r, SIGKILL);
		left = grace_end + STOP_SLACK_MS - svcstate_now_ms();
		if (svcstate_wait_exit(r, left > 0 ? left : 0) < 0) {
			fprintf(stderr, "nubis stop: %s: did not stop within %u s\n", r->name,
				t + STOP_SLACK_MS / 1000);
			return 1;
		}
	}
	return 0;
}

int cmd_stop_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"time", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
	unsigned t = STOP_TIMEOUT_DEFAULT;
	uint64_t v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:h", longopts, NULL)) != -1) {
		if (c == 't') {
			if (nb_parse_u64(optarg, &v) || v > 86400) {
				fprintf(stderr,
					"nubis stop: -t %s: need whole seconds from 0 to 86400\n",
					optarg);
				return FNVM_STATUS_USAGE;
			}
			t = (unsigned)v;
		} else if (c == 'h') {
			cmd_stop_usage(stdout);
			return 0;
		} else {
			cmd_stop_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis stop: missing NAME\n");
		return FNVM_STATUS_USAGE;
	}
	/* every VM is asked first, then waited for: N VMs stop within one
	 * grace period, not N */
	struct svcstate_store s;
	struct nb_error err;
	int n = argc - optind, status = 0;
	if (svcstate_store_open(NULL, &s, &err) < 0) {
		fprintf(stderr, "nubis stop: %s\n", err.msg);
		return 1;
	}
	struct svcstate_rec **recs = calloc((size_t)n, sizeof(*recs));
	bool *pending = calloc((size_t)n, sizeof(*pending));
	if (!recs || !pending) {
		fprintf(stderr, "nubis stop: out of memory\n");
		status = 1;
		goto out;
	}
	int64_t start = svcstate_now_ms();
	for (int i = 0; i < n; i++) {
		if (svcstate_find(&s, argv[optind + i], &recs[i], &err) < 0) {
			fprintf(stderr, "nubis stop: %s\n", err.msg);
			recs[i] = NULL;
			status = 1;
			continue;
		}
		pending[i] = stop_request(recs[i], t);
	}
	for (int i = 0; i < n; i++) {
		if (!recs[i])
			continue;
		if (pending[i] && stop_wait(recs[i], t, start)) {
			status = 1;
			continue;
		}
		printf("%s\n", recs[i]->name);
	}
out:
	for (int i = 0; recs && i < n; i++)
		svcstate_rec_free(recs[i]);
	free(recs);
	free(pending);
	svcstate_store_close(&s);
	return status;
}

/* ---- kill ------------------------------------------------------------------ */

void cmd_kill_usage(FILE *out)
{
	fprintf(out, "usage: nubis kill [-s SIGNAL] NAME...\n\n"
		     "Send a signal to the program of running service VMs (default SIGKILL).\n\n"
		     "options:\n"
		     "  -s, --signal SIG   a name (TERM, SIGUSR1) or a number 1..64\n");
}

static int do_kill(struct svcstate_store *s, struct svcstate_rec *r, const void *arg)
{
	(void)s;
	int sig = *(const int *)arg;
	if (!is_live(r)) {
		fprintf(stderr, "nubis kill: %s: not running\n", r->name);
		return 1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/kill?signal=%d", sig);
	if (put("kill", r, path))
		return 1;
	printf("%s\n", r->name);
	return 0;
}

int cmd_kill_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"signal", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {0}};
	int sig = SIGKILL, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		if (c == 's') {
			if ((sig = ctl_signal_parse(optarg)) < 0) {
				fprintf(stderr, "nubis kill: -s %s: unknown signal\n", optarg);
				return FNVM_STATUS_USAGE;
			}
		} else if (c == 'h') {
			cmd_kill_usage(stdout);
			return 0;
		} else {
			cmd_kill_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis kill: missing NAME\n");
		return FNVM_STATUS_USAGE;
	}
	return for_each("kill", argv + optind, argc - optind, do_kill, &sig);
}

/* ---- pause / resume ------------------------------------------------------------ */

void cmd_pause_usage(FILE *out)
{
	fprintf(out, "usage: nubis pause NAME...\n\n"
		     "Stop every vCPU of running service VMs (memory and open files stay).\n");
}

void cmd_resume_usage(FILE *out)
{
	fprintf(out, "usage: nubis resume NAME...\n\nLet paused service VMs run again.\n");
}

static int do_pause_resume(struct svcstate_store *s, struct svcstate_rec *r, const void *arg)
{
	(void)s;
	const char *what = arg;
	if (!is_live(r)) {
		fprintf(stderr, "nubis %s: %s: not running\n", what, r->name);
		return 1;
	}
	char path[32];
	snprintf(path, sizeof(path), "/%s", what);
	if (put(what, r, path))
		return 1;
	printf("%s\n", r->name);
	return 0;
}

static int simple_main(const char *cmd, void (*usage)(FILE *), int argc, char **argv, each_fn fn,
		       const void *arg)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return FNVM_STATUS_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis %s: missing NAME\n", cmd);
		return FNVM_STATUS_USAGE;
	}
	return for_each(cmd, argv + optind, argc - optind, fn, arg);
}

int cmd_pause_main(int argc, char **argv)
{
	return simple_main("pause", cmd_pause_usage, argc, argv, do_pause_resume, "pause");
}

int cmd_resume_main(int argc, char **argv)
{
	return simple_main("resume", cmd_resume_usage, argc, argv, do_pause_resume, "resume");
}

/* ---- start ------------------------------------------------------------------- */

void cmd_start_usage(FILE *out)
{
	fprintf(out, "usage: nubis start NAME...\n\n"
		     "Start stopped service VMs again, detached, with the same configuration and\n"
		     "writable layer. A running one is left alone.\n");
}

static int do_start(struct svcstate_store *s, struct svcstate_rec *r, const void *arg)
{
	(void)arg;
	struct nb_error err;
	/* a concurrent start that won the race is a success too */
	if (!svcstate_monitor_alive(r) && svcmon_spawn(s, r, &err) < 0 &&
	    !svcstate_monitor_alive(r)) {
		fprintf(stderr, "nubis start: %s: %s\n", r->name, err.msg);
		return 1;
	}
	printf("%s\n", r->name);
	return 0;
}

int cmd_start_main(int argc, char **argv)
{
	return simple_main("start", cmd_start_usage, argc, argv, do_start, NULL);
}

/* ---- rm ------------------------------------------------------------------------ */

void cmd_rm_usage(FILE *out)
{
	fprintf(out, "usage: nubis rm [-f] NAME...\n\n"
		     "Remove service VMs: their directory, writable layer and logs. A running one\n"
		     "is refused unless -f, which kills it first.\n\n"
		     "options:\n"
		     "  -f, --force   kill a running VM (SIGKILL) and remove it\n");
}

static int do_rm(struct svcstate_store *s, struct svcstate_rec *r, const void *arg)
{
	bool force = *(const bool *)arg;
	struct nb_error err;
	if (svcstate_monitor_alive(r)) {
		if (!force) {
			fprintf(stderr,
				"nubis rm: %s: the VM is running: stop it first or use -f\n",
				r->name);
			return 1;
		}
		if (svcstate_ctl(r, "PUT", "/kill?signal=KILL", NULL, &err) < 0 ||
		    svcstate_wait_exit(r, 5000) < 0) {
			svcstate_refresh(r, &err);
			signal_monitor(r, SIGKILL);
		}
		if (svcstate_wait_exit(r, 5000) < 0) {
			fprintf(stderr, "nubis rm: %s: the VM does not end\n", r->name);
			return 1;
		}
	}
	/* a --rm monitor may have removed it already */
	if (faccessat(s->dirfd, r->id, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	    svcstate_remove(s, r, &err) < 0) {
		fprintf(stderr, "nubis rm: %s\n", err.msg);
		return 1;
	}
	printf("%s\n", r->name);
	return 0;
}

int cmd_rm_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
	bool force = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else if (c == 'h') {
			cmd_rm_usage(stdout);
			return 0;
		} else {
			cmd_rm_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis rm: missing NAME\n");
		return FNVM_STATUS_USAGE;
	}
	struct svcstate_store s;
	struct nb_error err;
	int status = 0;
	if (svcstate_store_open(NULL, &s, &err) < 0) {
		fprintf(stderr, "nubis rm: %s\n", err.msg);
		return 1;
	}
	for (int i = optind; i < argc; i++) {
		struct svcstate_rec *r;
		char id[65];
		if (svcstate_find(&s, argv[i], &r, &err) == 0) {
			status |= do_rm(&s, r, &force);
			svcstate_rec_free(r);
		} else if (err.code == NB_ENOENT &&
			   svcstate_remove_broken(&s, argv[i], id, &err) == 0) {
			printf("%s\n", id); /* a record nobody could read */
		} else {
			fprintf(stderr, "nubis rm: %s\n", err.msg);
			status = 1;
		}
	}
	svcstate_store_close(&s);
	return status;
}

/* ---- inspect ------------------------------------------------------------------- */

void cmd_inspect_usage(FILE *out)
{
	fprintf(out,
		"usage: nubis inspect NAME...\n\n"
		"Print a JSON array with each service VM's state and resolved configuration.\n");
}

static int do_inspect(struct svcstate_store *s, struct svcstate_rec *r, const void *arg)
{
	(void)s;
	json_t *arr = (json_t *)(uintptr_t)arg;
	return json_array_append_new(arr, svcstate_describe(r, true)) < 0;
}

int cmd_inspect_main(int argc, char **argv)
{
	json_t *arr = json_array();
	if (!arr)
		return 1;
	int status = simple_main("inspect", cmd_inspect_usage, argc, argv, do_inspect, arr);
	if (optind < argc && (json_array_size(arr) || status == 0)) {
		char *out = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", out ? out : "[]");
		free(out);
	}
	json_decref(arr);
	return status;
}
