/* SPDX-License-Identifier: MIT */
/*
 * Service VMs without a daemon: the run directory and the control client.
 *
 * Layout under $NUBIS_HOME (default /var/lib/nubis for root, else
 * ~/.local/share/nubis):
 *
 *   containers/.lock            flock()ed while a container is created or
 *                               removed (keeps names unique)
 *   containers/<id>/            one service VM (id: 64 random hex digits)
 *     config.json               the resolved run configuration (written once)
 *     state.json                status, monitor pid, exit code, times
 *                               (written atomically by the monitor)
 *     lock                      flock()ed LOCK_EX by the live monitor: the
 *                               liveness test (no pid-reuse races; a killed
 *                               monitor releases it)
 *     upper/                    the writable layer (kept across stop/start)
 *     log, log.1                guest stdout+stderr, rotated at a size cap
 *     monitor.log               the monitor's own messages
 *     ctl.sock                  HTTP+JSON control socket (src/svc/ctl.h)
 *
 * Every function here is for the CLI side (nubis ps/logs/stop/...) and the
 * monitor; none keeps global state. Errors: 0 / -1 with a struct nb_error.
 */
#ifndef NUBIS_CLI_SVCSTATE_H
#define NUBIS_CLI_SVCSTATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

#define SVCSTATE_CONFIG_VERSION 1
#define SVCSTATE_NAME_MAX	64

enum svcstate_status {
	SVCSTATE_CREATED, /* record written, never started */
	SVCSTATE_RUNNING,
	SVCSTATE_PAUSED,
	SVCSTATE_EXITED, /* the monitor recorded the guest's exit */
	SVCSTATE_DEAD,	 /* the monitor died without recording an exit */
};

/* state.json */
struct svcstate_state {
	enum svcstate_status status;
	pid_t pid;	    /* the monitor's pid while it lives, else 0 */
	int exit_code;	    /* shell-style status, -1 if unknown */
	int64_t started_ms; /* unix ms, 0 if never */
	int64_t finished_ms;
	char error[256]; /* why the last start failed, or "" */
};

/* The run directory of one user. */
struct svcstate_store {
	char *home; /* $NUBIS_HOME */
	char *dir;  /* home/containers */
	int dirfd;  /* O_DIRECTORY of ->dir */
};

/* One container. */
struct svcstate_rec {
	char id[65];
	char *name;
	char *dir;		  /* absolute path of containers/<id> */
	int dirfd;		  /* O_DIRECTORY|O_PATH of ->dir */
	json_t *config;		  /* parsed config.json (owned) */
	struct svcstate_state st; /* with liveness applied (RUNNING -> DEAD) */
};

/* $NUBIS_HOME, else the default for this user, into @buf. 0 or -ENAMETOOLONG. */
int svcstate_home(char *buf, size_t cap);

/* Open (creating the directories as needed) the run directory under @home,
 * or svcstate_home() when NULL. Close with svcstate_store_close(). */
int svcstate_store_open(const char *home, struct svcstate_store *s, struct nb_error *err);
void svcstate_store_close(struct svcstate_store *s);

/* true if @name matches [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}. */
bool svcstate_name_valid(const char *name);

/* Create a container from @config (a JSON object; "name" may be absent, a
 * name is then generated; "id" and "created_ms" are set here). Refuses a
 * name in use. Writes config.json, state.json (created) and upper/. The
 * record is returned in *@out (free with svcstate_rec_free). @config is not
 * stolen. */
int svcstate_create(struct svcstate_store *s, json_t *config, struct svcstate_rec **out,
		    struct nb_error *err);

/* Find a container by exact name, full id, or unique id prefix. NB_ENOENT if
 * none, NB_EINVAL if the prefix is ambiguous. */
int svcstate_find(struct svcstate_store *s, const char *ref, struct svcstate_rec **out,
		  struct nb_error *err);
/* Load containers/<id>. */
int svcstate_load(struct svcstate_store *s, const char *id, struct svcstate_rec **out,
		  struct nb_error *err);
/* All containers, oldest first; entries that cannot be read are skipped.
 * Free each with svcstate_rec_free, then the array. */
int svcstate_list(struct svcstate_store *s, struct svcstate_rec ***out, size_t *n,
		  struct nb_error *err);
void svcstate_rec_free(struct svcstate_rec *r);

/* Re-read state.json of @r and apply the liveness test. */
int svcstate_refresh(struct svcstate_rec *r, struct nb_error *err);
/* true if a monitor holds the container's lock. */
bool svcstate_monitor_alive(const struct svcstate_rec *r);
/* Write state.json atomically (temporary file + rename). */
int svcstate_write_state(const struct svcstate_rec *r, const struct svcstate_state *st,
			 struct nb_error *err);
/* Delete the container's directory (its writable layer included). Refuses
 * while a monitor lives (NB_EINVAL). */
int svcstate_remove(struct svcstate_store *s, struct svcstate_rec *r, struct nb_error *err);

/* Remove a container directory whose record cannot be read (corrupt or
 * half-written config.json/state.json), named by full id or unique id
 * prefix (>= 4 hex digits). Refuses while a monitor holds its lock.
 * Writes the id to @id_out. NB_ENOENT if no such unreadable directory. */
int svcstate_remove_broken(struct svcstate_store *s, const char *ref, char id_out[65],
			   struct nb_error *err);

/* "created", "running", "paused", "exited", "exited (monitor died)". */
const char *svcstate_status_name(enum svcstate_status st);
/* JSON summary (ps --json, inspect): id, name, image, command, created,
 * status, pid, exit_code, started_at, finished_at, error; with @full also
 * "config" and "dir". New reference. */
json_t *svcstate_describe(const struct svcstate_rec *r, bool full);
/* Unix ms as "2026-11-25T14:00:00.123Z" into @buf (>= 32 bytes); "" for 0. */
void svcstate_iso_time(int64_t ms, char *buf, size_t cap);
int64_t svcstate_now_ms(void);

/* Path of the control socket usable by this process: a short
 * /proc/self/fd/<dirfd>/ctl.sock (sun_path holds 108 bytes; the run
 * directory may be deeper). */
void svcstate_sock_path(const struct svcstate_rec *r, char *buf, size_t cap);

/* One request to the container's control socket. *@body (may be NULL) gets
 * the response body (malloc'd, NUL-terminated). Returns the HTTP status, or
 * -1 with @err when nobody answers. */
long svcstate_ctl(const struct svcstate_rec *r, const char *method, const char *path, char **body,
		  struct nb_error *err);
/* The "message" of a JSON error body, or the body itself. Points into @body
 * or a static string; valid while @body lives. */
const char *svcstate_ctl_message(const char *body, char *buf, size_t cap);

/* Wait up to @timeout_ms for the container's monitor to exit. 0, or -ETIMEDOUT. */
int svcstate_wait_exit(const struct svcstate_rec *r, int64_t timeout_ms);

#endif
