/* SPDX-License-Identifier: MIT */
#include "svcstate.h"

#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/dir.h"

/* config.json and state.json are small; anything larger is corrupt */
#define SVCSTATE_JSON_MAX (1u << 20)

int svcstate_home(char *buf, size_t cap)
{
	const char *h = getenv("NUBIS_HOME");
	int n;
	if (h && *h)
		n = snprintf(buf, cap, "%s", h);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "/var/lib/nubis");
	else {
		const char *home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(geteuid());
			home = pw ? pw->pw_dir : "/tmp";
		}
		n = snprintf(buf, cap, "%s/.local/share/nubis", home);
	}
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

/* mkdir -p of an absolute or relative path */
static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int svcstate_store_open(const char *home, struct svcstate_store *s, struct nb_error *err)
{
	char hbuf[PATH_MAX];
	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
	if (!home) {
		if (svcstate_home(hbuf, sizeof(hbuf)) < 0)
			return nb_error_set(err, NB_EINVAL, "NUBIS_HOME is too long");
		home = hbuf;
	}
	if (asprintf(&s->dir, "%s/containers", home) < 0) {
		s->dir = NULL;
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	}
	s->home = strdup(home);
	int r = mkdir_p(s->dir, 0700);
	if (r < 0) {
		nb_error_sys(err, -r, "%s", s->dir);
		goto fail;
	}
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		nb_error_sys(err, errno, "%s", s->dir);
		goto fail;
	}
	/* absolute from here on: monitors run in "/" */
	char *abs_home = realpath(home, NULL), *abs_dir = realpath(s->dir, NULL);
	if (abs_home && abs_dir) {
		free(s->home);
		free(s->dir);
		s->home = abs_home;
		s->dir = abs_dir;
	} else {
		free(abs_home);
		free(abs_dir);
	}
	if (!s->home) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	return 0;
fail:
	svcstate_store_close(s);
	return -1;
}

void svcstate_store_close(struct svcstate_store *s)
{
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s->home);
	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
}

bool svcstate_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SVCSTATE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

static bool is_id(const char *s)
{
	size_t n = strlen(s);
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int64_t svcstate_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void svcstate_iso_time(int64_t ms, char *buf, size_t cap)
{
	if (ms <= 0) {
		snprintf(buf, cap, "%s", "");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[32];
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%03dZ", s, (int)(ms % 1000));
}

const char *svcstate_status_name(enum svcstate_status st)
{
	switch (st) {
	case SVCSTATE_CREATED:
		return "created";
	case SVCSTATE_RUNNING:
		return "running";
	case SVCSTATE_PAUSED:
		return "paused";
	case SVCSTATE_EXITED:
		return "exited";
	case SVCSTATE_DEAD:
		return "exited (monitor died)";
	}
	return "unknown";
}

static int status_parse(const char *s, enum svcstate_status *out)
{
	static const char *const names[] = {"created", "running", "paused", "exited", "dead"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*out = (enum svcstate_status)i;
			return 0;
		}
	return -EINVAL;
}

/* Read a small JSON file at @dirfd/@name. */
static json_t *read_json(int dirfd, const char *name, const char *dir, struct nb_error *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		nb_error_sys(err, errno, "%s/%s", dir, name);
		return NULL;
	}
	struct stat st;
	json_t *j = NULL;
	char *buf = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SVCSTATE_JSON_MAX) {
		nb_error_set(err, NB_EFORMAT, "%s/%s: not a regular file of at most %u bytes", dir,
			     name, SVCSTATE_JSON_MAX);
		goto out;
	}
	size_t len = (size_t)st.st_size, got = 0;
	buf = malloc(len + 1);
	if (!buf) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	json_error_t je;
	j = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		nb_error_set(err, NB_EFORMAT, "%s/%s: line %d: %s", dir, name, je.line, je.text);
	else if (!json_is_object(j)) {
		nb_error_set(err, NB_EFORMAT, "%s/%s: not a JSON object", dir, name);
		json_decref(j);
		j = NULL;
	}
out:
	free(buf);
	close(fd);
	return j;
}

/* Write @j to @dirfd/@name atomically. */
static int write_json(int dirfd, const char *name, const char *dir, json_t *j, struct nb_error *err)
{
	char tmp[96];
	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid());
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!s)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		free(s);
		return nb_error_sys(err, e, "%s/%s", dir, tmp);
	}
	size_t len = strlen(s), off = 0;
	int e = 0;
	while (off < len) {
		ssize_t w = write(fd, s + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			e = errno;
			break;
		}
		off += (size_t)w;
	}
	if (!e && write(fd, "\n", 1) != 1)
		e = errno ? errno : EIO;
	if (close(fd) < 0 && !e)
		e = errno;
	free(s);
	if (!e && renameat(dirfd, tmp, dirfd, name) < 0)
		e = errno;
	if (e) {
		unlinkat(dirfd, tmp, 0);
		return nb_error_sys(err, e, "%s/%s", dir, name);
	}
	return 0;
}

static json_t *state_to_json(const struct svcstate_state *st)
{
	static const char *const names[] = {"created", "running", "paused", "exited", "dead"};
	return json_pack("{s:s, s:i, s:i, s:I, s:I, s:s}", "status", names[st->status], "pid",
			 (int)st->pid, "exit_code", st->exit_code, "started_ms",
			 (json_int_t)st->started_ms, "finished_ms", (json_int_t)st->finished_ms,
			 "error", st->error);
}

static int state_from_json(json_t *j, struct svcstate_state *st, const char *dir,
			   struct nb_error *err)
{
	const char *status = NULL, *error = "";
	int pid = 0, code = -1;
	json_int_t started = 0, finished = 0;
	json_error_t je;
	memset(st, 0, sizeof(*st));
	if (json_unpack_ex(j, &je, 0, "{s:s, s?:i, s?:i, s?:I, s?:I, s?:s}", "status", &status,
			   "pid", &pid, "exit_code", &code, "started_ms", &started, "finished_ms",
			   &finished, "error", &error) < 0 ||
	    status_parse(status, &st->status) < 0 || pid < 0 || code < -1 || code > 255)
		return nb_error_set(err, NB_EFORMAT, "%s/state.json: bad content (%s)", dir,
				    je.text[0] ? je.text : "a field is out of range");
	st->pid = pid;
	st->exit_code = code;
	st->started_ms = started;
	st->finished_ms = finished;
	snprintf(st->error, sizeof(st->error), "%s", error);
	return 0;
}

int svcstate_write_state(const struct svcstate_rec *r, const struct svcstate_state *st,
			 struct nb_error *err)
{
	json_t *j = state_to_json(st);
	if (!j)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	int rc = write_json(r->dirfd, "state.json", r->dir, j, err);
	json_decref(j);
	return rc;
}

bool svcstate_monitor_alive(const struct svcstate_rec *r)
{
	int fd = openat(r->dirfd, "lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	bool alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd); /* drops our shared lock if we got it */
	return alive;
}

int svcstate_refresh(struct svcstate_rec *r, struct nb_error *err)
{
	json_t *j = read_json(r->dirfd, "state.json", r->dir, err);
	if (!j)
		return -1;
	int rc = state_from_json(j, &r->st, r->dir, err);
	json_decref(j);
	if (rc < 0)
		return rc;
	/* a live status written by a monitor that no longer holds the lock:
	 * the monitor died (killed, crashed) without recording an exit */
	if ((r->st.status == SVCSTATE_RUNNING || r->st.status == SVCSTATE_PAUSED) &&
	    !svcstate_monitor_alive(r)) {
		/* re-read: the monitor may have recorded the exit and ended
		 * between our read and the lock test */
		json_t *j2 = read_json(r->dirfd, "state.json", r->dir, NULL);
		struct svcstate_state st2;
		if (j2 && state_from_json(j2, &st2, r->dir, NULL) == 0)
			r->st = st2;
		json_decref(j2);
		if (r->st.status == SVCSTATE_RUNNING || r->st.status == SVCSTATE_PAUSED) {
			r->st.status = SVCSTATE_DEAD;
			r->st.pid = 0;
		}
	}
	return 0;
}

void svcstate_rec_free(struct svcstate_rec *r)
{
	if (!r)
		return;
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r->name);
	free(r->dir);
	json_decref(r->config);
	free(r);
}

int svcstate_load(struct svcstate_store *s, const char *id, struct svcstate_rec **out,
		  struct nb_error *err)
{
	if (!is_id(id))
		return nb_error_set(err, NB_EINVAL, "'%s' is not a container id", id);
	struct svcstate_rec *r = calloc(1, sizeof(*r));
	if (!r)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	r->dirfd = -1;
	snprintf(r->id, sizeof(r->id), "%s", id);
	if (asprintf(&r->dir, "%s/%s", s->dir, id) < 0) {
		r->dir = NULL;
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	r->dirfd = openat(s->dirfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (r->dirfd < 0) {
		if (errno == ENOENT)
			nb_error_set(err, NB_ENOENT, "no such container: %s", id);
		else
			nb_error_sys(err, errno, "%s", r->dir);
		goto fail;
	}
	if (!(r->config = read_json(r->dirfd, "config.json", r->dir, err)))
		goto fail;
	const char *name = json_string_value(json_object_get(r->config, "name"));
	const char *cid = json_string_value(json_object_get(r->config, "id"));
	if (!name || !svcstate_name_valid(name) || !cid || strcmp(cid, id)) {
		nb_error_set(err, NB_EFORMAT, "%s/config.json: bad name or id", r->dir);
		goto fail;
	}
	if (!(r->name = strdup(name))) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	if (svcstate_refresh(r, err) < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	svcstate_rec_free(r);
	return -1;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct svcstate_rec *x = *(struct svcstate_rec *const *)a;
	const struct svcstate_rec *y = *(struct svcstate_rec *const *)b;
	json_int_t cx = json_integer_value(json_object_get(x->config, "created_ms"));
	json_int_t cy = json_integer_value(json_object_get(y->config, "created_ms"));
	return cx < cy ? -1 : cx > cy ? 1 : strcmp(x->id, y->id);
}

int svcstate_list(struct svcstate_store *s, struct svcstate_rec ***out, size_t *n,
		  struct nb_error *err)
{
	DIR *d = nb_opendir_at(s->dirfd, ".", 0);
	if (!d)
		return nb_error_sys(err, errno, "%s", s->dir);
	struct svcstate_rec **v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!is_id(de->d_name))
			continue;
		struct svcstate_rec *r;
		if (svcstate_load(s, de->d_name, &r, NULL) < 0)
			continue; /* being created or removed, or corrupt */
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct svcstate_rec **nv = realloc(v, ncap * sizeof(*nv));
			if (!nv) {
				svcstate_rec_free(r);
				for (size_t i = 0; i < cnt; i++)
					svcstate_rec_free(v[i]);
				free(v);
				closedir(d);
				return nb_error_set(err, NB_ERESOURCE, "out of memory");
			}
			v = nv;
			cap = ncap;
		}
		v[cnt++] = r;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), rec_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

int svcstate_find(struct svcstate_store *s, const char *ref, struct svcstate_rec **out,
		  struct nb_error *err)
{
	struct svcstate_rec **v;
	size_t n;
	if (!*ref)
		return nb_error_set(err, NB_EINVAL, "empty container name");
	if (is_id(ref) && svcstate_load(s, ref, out, NULL) == 0)
		return 0;
	if (svcstate_list(s, &v, &n, err) < 0)
		return -1;
	struct svcstate_rec *hit = NULL;
	size_t nprefix = 0, reflen = strlen(ref);
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i]->name, ref)) {
			hit = v[i];
			nprefix = 1;
			break;
		}
	if (!hit)
		for (size_t i = 0; i < n; i++)
			if (!strncmp(v[i]->id, ref, reflen)) {
				hit = v[i];
				nprefix++;
			}
	if (!hit)
		rc = nb_error_set(err, NB_ENOENT, "no such container: %s", ref);
	else if (nprefix > 1)
		rc = nb_error_set(err, NB_EINVAL,
				  "'%s' matches %zu containers; give more of the id", ref, nprefix);
	for (size_t i = 0; i < n; i++)
		if (v[i] != hit || rc < 0)
			svcstate_rec_free(v[i]);
	free(v);
	if (rc == 0)
		*out = hit;
	return rc;
}

/* The store's lock (creation and removal). Returns the fd to close, or -1. */
static int store_lock(struct svcstate_store *s, struct nb_error *err)
{
	int fd = openat(s->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return nb_error_sys(err, errno, "%s/.lock", s->dir);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return nb_error_sys(err, e, "%s/.lock", s->dir);
		}
	}
	return fd;
}

static void random_id(char out[65])
{
	uint8_t b[32];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
		if (r > 0)
			got += (size_t)r;
		else if (errno != EINTR)
			break;
	}
	if (got < sizeof(b)) { /* no getrandom: time and pid, still unique enough */
		uint64_t x =
		    (uint64_t)svcstate_now_ms() * 6364136223846793005ull ^ (uint64_t)getpid();
		for (size_t i = got; i < sizeof(b); i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			b[i] = (uint8_t)(x >> 56);
		}
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* A generated name: adjective_noun_NNNN (avoids a list of real names). */
static void random_name(const char id[65], char out[32])
{
	static const char *const a[] = {"calm", "quick", "brave", "quiet", "bold",  "eager",
					"keen", "merry", "proud", "witty", "sharp", "lucid"};
	static const char *const b[] = {"falcon", "otter", "lynx",  "heron", "badger", "marten",
					"raven",  "ibex",  "gecko", "orca",  "tapir",  "wren"};
	unsigned x = (unsigned)strtoul(
	    (char[9]){id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], 0}, NULL, 16);
	snprintf(out, 32, "%s_%s_%04u", a[x % 12], b[(x / 12) % 12], (x / 144) % 10000);
}

int svcstate_create(struct svcstate_store *s, json_t *config, struct svcstate_rec **out,
		    struct nb_error *err)
{
	const char *want = json_string_value(json_object_get(config, "name"));
	if (want && !svcstate_name_valid(want))
		return nb_error_set(err, NB_EINVAL,
				    "bad name '%s': need [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}", want);
	int lk = store_lock(s, err);
	if (lk < 0)
		return -1;
	int rc = -1;
	struct svcstate_rec **v = NULL;
	size_t n = 0;
	json_t *cfg = NULL;
	char id[65], gen[32], *dir = NULL;
	bool made = false;
	if (svcstate_list(s, &v, &n, err) < 0)
		goto out;
	for (int attempt = 0; attempt < 16; attempt++) {
		random_id(id);
		if (faccessat(s->dirfd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (!want)
			random_name(id, gen);
		const char *name = want ? want : gen;
		bool taken = false;
		for (size_t i = 0; i < n && !taken; i++)
			taken = !strcmp(v[i]->name, name);
		if (!taken)
			goto unique;
		if (want) {
			for (size_t i = 0; i < n; i++)
				if (!strcmp(v[i]->name, want))
					nb_error_set(err, NB_EINVAL,
						     "the name '%s' is already in use by container "
						     "%.12s",
						     want, v[i]->id);
			goto out;
		}
	}
	nb_error_set(err, NB_EINTERNAL, "cannot generate a unique container id/name");
	goto out;
unique:
	cfg = json_deep_copy(config);
	if (!cfg || json_object_set_new(cfg, "id", json_string(id)) < 0 ||
	    json_object_set_new(cfg, "name", json_string(want ? want : gen)) < 0 ||
	    json_object_set_new(cfg, "version", json_integer(SVCSTATE_CONFIG_VERSION)) < 0) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	if (!json_object_get(cfg, "created_ms"))
		json_object_set_new(cfg, "created_ms", json_integer(svcstate_now_ms()));
	if (mkdirat(s->dirfd, id, 0700) < 0) {
		nb_error_sys(err, errno, "%s/%s", s->dir, id);
		goto out;
	}
	made = true;
	if (asprintf(&dir, "%s/%s", s->dir, id) < 0) {
		dir = NULL;
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto out;
	}
	int dfd = openat(s->dirfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		nb_error_sys(err, errno, "%s", dir);
		goto out;
	}
	struct svcstate_rec tmp = {.dirfd = dfd, .dir = dir};
	struct svcstate_state st = {.status = SVCSTATE_CREATED, .exit_code = -1};
	int w = (mkdirat(dfd, "upper", 0755) < 0 && errno != EEXIST)
		    ? nb_error_sys(err, errno, "%s/upper", dir)
		    : 0;
	if (!w)
		w = svcstate_write_state(&tmp, &st, err);
	/* config.json last: a directory without it is skipped by list/find */
	if (!w)
		w = write_json(dfd, "config.json", dir, cfg, err);
	close(dfd);
	if (w < 0)
		goto out;
	rc = svcstate_load(s, id, out, err);
out:
	if (rc < 0 && made)
		nb_rmtree_at(s->dirfd, id);
	for (size_t i = 0; i < n; i++)
		svcstate_rec_free(v[i]);
	free(v);
	free(dir);
	json_decref(cfg);
	close(lk);
	return rc;
}

int svcstate_remove(struct svcstate_store *s, struct svcstate_rec *r, struct nb_error *err)
{
	int lk = store_lock(s, err);
	if (lk < 0)
		return -1;
	int rc = 0;
	/* hold the container's own lock while deleting, so that no monitor
	 * starts on a half-deleted directory */
	int cl = openat(r->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (cl < 0 || flock(cl, LOCK_EX | LOCK_NB) < 0) {
		if (cl >= 0 && errno == EWOULDBLOCK)
			rc = nb_error_set(err, NB_EINVAL, "container %s is running", r->name);
		else
			rc = nb_error_sys(err, errno, "%s/lock", r->dir);
		goto out;
	}
	/* rename first: the id disappears from listings at once, even if a
	 * huge writable layer takes a while to delete */
	char gone[80];
	snprintf(gone, sizeof(gone), ".rm-%s", r->id);
	int where = s->dirfd;
	const char *victim = r->id;
	if (renameat(s->dirfd, r->id, s->dirfd, gone) == 0)
		victim = gone;
	int e = nb_rmtree_at(where, victim);
	if (e < 0)
		rc = nb_error_sys(err, -e, "removing %s", r->dir);
out:
	if (cl >= 0)
		close(cl);
	close(lk);
	return rc;
}

int svcstate_remove_broken(struct svcstate_store *s, const char *ref, char id_out[65],
			   struct nb_error *err)
{
	size_t reflen = strlen(ref);
	if (reflen < 4 || reflen > 64 || strspn(ref, "0123456789abcdef") != reflen)
		return nb_error_set(err, NB_ENOENT, "no such container: %s", ref);
	DIR *d = nb_opendir_at(s->dirfd, ".", 0);
	if (!d)
		return nb_error_sys(err, errno, "%s", s->dir);
	char hit[65] = "";
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!is_id(de->d_name) || strncmp(de->d_name, ref, reflen))
			continue;
		struct svcstate_rec *r;
		if (svcstate_load(s, de->d_name, &r, NULL) == 0) {
			svcstate_rec_free(r); /* readable: not for this function */
			continue;
		}
		snprintf(hit, sizeof(hit), "%.64s", de->d_name);
		n++;
	}
	closedir(d);
	if (n != 1)
		return nb_error_set(
		    err, n ? NB_EINVAL : NB_ENOENT,
		    n ? "'%s' matches %d unreadable containers" : "no such container: %s", ref, n);
	struct svcstate_rec tmp = {.dirfd = -1};
	snprintf(tmp.id, sizeof(tmp.id), "%s", hit);
	tmp.name = hit;
	if (asprintf(&tmp.dir, "%s/%s", s->dir, hit) < 0)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	tmp.dirfd = openat(s->dirfd, hit, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	int rc =
	    tmp.dirfd < 0 ? nb_error_sys(err, errno, "%s", tmp.dir) : svcstate_remove(s, &tmp, err);
	if (tmp.dirfd >= 0)
		close(tmp.dirfd);
	free(tmp.dir);
	if (rc == 0)
		snprintf(id_out, 65, "%s", hit);
	return rc;
}

json_t *svcstate_describe(const struct svcstate_rec *r, bool full)
{
	char created[40], started[40], finished[40];
	json_t *cfg = r->config;
	svcstate_iso_time(json_integer_value(json_object_get(cfg, "created_ms")), created,
			  sizeof(created));
	svcstate_iso_time(r->st.started_ms, started, sizeof(started));
	svcstate_iso_time(r->st.finished_ms, finished, sizeof(finished));
	json_t *image = json_object_get(cfg, "image");
	json_t *argv = json_object_get(cfg, "argv");
	json_t *j = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s, s:i, s:s, s:s, s:s}", "id", r->id,
			      "name", r->name, "image", image ? image : json_null(), "command",
			      argv ? argv : json_array(), "created", created, "status",
			      svcstate_status_name(r->st.status), "pid", (int)r->st.pid,
			      "started_at", started, "finished_at", finished, "error", r->st.error);
	if (!j)
		return NULL;
	json_object_set_new(j, "exit_code",
			    r->st.exit_code >= 0 ? json_integer(r->st.exit_code) : json_null());
	/* --publish values, as given */
	json_t *ports = json_array(), *opts = json_object_get(cfg, "options");
	for (size_t i = 0; i < json_array_size(opts); i++) {
		json_t *p = json_array_get(opts, i);
		const char *k = json_string_value(json_array_get(p, 0));
		if (k && !strcmp(k, "publish") && json_is_string(json_array_get(p, 1)))
			json_array_append(ports, json_array_get(p, 1));
	}
	json_object_set_new(j, "ports", ports);
	if (full) {
		json_object_set_new(j, "dir", json_string(r->dir));
		json_object_set(j, "config", cfg);
	}
	return j;
}

void svcstate_sock_path(const struct svcstate_rec *r, char *buf, size_t cap)
{
	snprintf(buf, cap, "/proc/self/fd/%d/ctl.sock", r->dirfd);
}

struct membuf {
	char *p;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct membuf *b = arg;
	size_t n = size * nmemb;
	if (b->len + n > SVCSTATE_JSON_MAX)
		return 0; /* a monitor never sends this much */
	char *p = realloc(b->p, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, n);
	b->p = p;
	b->len += n;
	p[b->len] = 0;
	return n;
}

/* libcurl, loaded with dlopen() by the commands that talk to a monitor
 * rather than linked: its dependencies (TLS, Kerberos, LDAP, ...) would
 * otherwise cost every nubis start several milliseconds. Never unloaded
 * (RTLD_NODELETE): TLS libraries register exit handlers. */
struct curl_api {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
};

static int curl_api_load(struct curl_api *a, struct nb_error *err)
{
	static const char *const names[] = {"libcurl.so.4", "libcurl.so"};
	void *so = NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !so; i++)
		so = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!so)
		return nb_error_set(err, NB_ERESOURCE, "cannot load libcurl: %s", dlerror());
#define CURL_SYM(field, name)                                                                      \
	if (!(*(void **)&a->field = dlsym(so, #name)))                                             \
		return nb_error_set(err, NB_ERESOURCE, "libcurl lacks %s", #name);
	CURL_SYM(easy_init, curl_easy_init)
	CURL_SYM(easy_setopt, curl_easy_setopt)
	CURL_SYM(easy_perform, curl_easy_perform)
	CURL_SYM(easy_getinfo, curl_easy_getinfo)
	CURL_SYM(easy_cleanup, curl_easy_cleanup)
	CURL_SYM(easy_strerror, curl_easy_strerror)
#undef CURL_SYM
	return 0;
}

long svcstate_ctl(const struct svcstate_rec *r, const char *method, const char *path, char **body,
		  struct nb_error *err)
{
	char sock[64], url[256];
	struct curl_api api = {0};
	if (curl_api_load(&api, err) < 0)
		return -1;
	svcstate_sock_path(r, sock, sizeof(sock));
	snprintf(url, sizeof(url), "http://localhost%s", path);
	struct membuf b = {0};
	long status = -1;
	CURL *c = api.easy_init();
	if (!c)
		return nb_error_set(err, NB_ERESOURCE, "cannot initialize libcurl");
	api.easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	api.easy_setopt(c, CURLOPT_URL, url);
	api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "PUT") || !strcmp(method, "POST")) {
		api.easy_setopt(c, CURLOPT_POSTFIELDS, "");
		api.easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	api.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	api.easy_setopt(c, CURLOPT_WRITEDATA, &b);
	api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	api.easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	CURLcode cr = api.easy_perform(c);
	if (cr != CURLE_OK) {
		nb_error_set(err, NB_EINVAL, "container %s: control socket: %s", r->name,
			     api.easy_strerror(cr));
		goto out;
	}
	api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (body) {
		*body = b.p ? b.p : strdup("");
		b.p = NULL;
	}
out:
	free(b.p);
	api.easy_cleanup(c);
	return status;
}

const char *svcstate_ctl_message(const char *body, char *buf, size_t cap)
{
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	snprintf(buf, cap, "%s", m ? m : body && *body ? body : "no details");
	json_decref(j);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	return buf;
}

int svcstate_wait_exit(const struct svcstate_rec *r, int64_t timeout_ms)
{
	int64_t end = svcstate_now_ms() + timeout_ms;
	unsigned us = 1000;
	while (svcstate_monitor_alive(r)) {
		if (svcstate_now_ms() >= end)
			return -ETIMEDOUT;
		usleep(us);
		if (us < 20000)
			us *= 2;
	}
	return 0;
}
