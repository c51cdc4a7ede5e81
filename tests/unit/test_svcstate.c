/* SPDX-License-Identifier: MIT */
/* Unit tests: the service-VM run directory (src/cli/svcstate.c): names, ids
 * and prefixes, uniqueness, atomic state, liveness through the lock, removal. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/svcstate.h"

struct fx {
	char home[64];
	struct svcstate_store s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->home, sizeof(f->home), "/tmp/nubis-svcstate-XXXXXX");
	if (!mkdtemp(f->home))
		return -1;
	struct nb_error err;
	if (svcstate_store_open(f->home, &f->s, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	svcstate_store_close(&f->s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->home);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static json_t *cfg(const char *name)
{
	json_t *c = json_pack("{s:[s], s:[], s:[s], s:s}", "argv", "/bin/x", "env", "layers",
			      "/tmp", "workdir", "/");
	if (name)
		json_object_set_new(c, "name", json_string(name));
	return c;
}

static struct svcstate_rec *create(struct fx *f, const char *name)
{
	struct nb_error err;
	struct svcstate_rec *r = NULL;
	json_t *c = cfg(name);
	if (svcstate_create(&f->s, c, &r, &err) < 0)
		fail_msg("create %s: %s", name ? name : "(generated)", err.msg);
	json_decref(c);
	return r;
}

static void test_names(void **state)
{
	(void)state;
	static const char *const good[] = {"a", "web", "Web-1", "a.b_c-d", "0", "x123456789"};
	static const char *const bad[] = {"",	 "-a", ".a",  "_a", "a b", "a/b",
					  "a:b", "ä",  "a\n", "..", "a$"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!svcstate_name_valid(good[i]))
			fail_msg("'%s' should be valid", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (svcstate_name_valid(bad[i]))
			fail_msg("'%s' should be invalid", bad[i]);
	char n64[65], n65[66];
	memset(n64, 'a', 64);
	n64[64] = 0;
	memset(n65, 'a', 65);
	n65[65] = 0;
	assert_true(svcstate_name_valid(n64));
	assert_false(svcstate_name_valid(n65));
}

static void test_create_find(void **state)
{
	struct fx *f = *state;
	struct nb_error err;
	struct svcstate_rec *a = create(f, "alpha"), *b, *r = NULL;
	usleep(5000); /* listings are oldest first, by creation time in ms */
	b = create(f, NULL);
	assert_int_equal(strlen(a->id), 64);
	assert_string_not_equal(a->id, b->id);
	assert_true(svcstate_name_valid(b->name));
	assert_int_equal(a->st.status, SVCSTATE_CREATED);
	assert_int_equal(a->st.exit_code, -1);

	/* name, full id, unique prefix */
	assert_int_equal(svcstate_find(&f->s, "alpha", &r, &err), 0);
	assert_string_equal(r->id, a->id);
	svcstate_rec_free(r);
	assert_int_equal(svcstate_find(&f->s, a->id, &r, &err), 0);
	assert_string_equal(r->name, "alpha");
	svcstate_rec_free(r);
	char pre[13];
	snprintf(pre, sizeof(pre), "%.12s", b->id);
	assert_int_equal(svcstate_find(&f->s, pre, &r, &err), 0);
	assert_string_equal(r->id, b->id);
	svcstate_rec_free(r);

	/* the empty prefix matches both: ambiguous; unknown: ENOENT */
	assert_int_equal(svcstate_find(&f->s, "", &r, &err), -1);
	assert_int_equal(svcstate_find(&f->s, "nosuch", &r, &err), -1);
	assert_int_equal(err.code, NB_ENOENT);

	/* duplicate name refused, nothing left behind */
	struct svcstate_rec **v;
	size_t n;
	json_t *c = cfg("alpha");
	assert_int_equal(svcstate_create(&f->s, c, &r, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	assert_non_null(strstr(err.msg, "already in use"));
	json_decref(c);
	c = cfg("bad name");
	assert_int_equal(svcstate_create(&f->s, c, &r, &err), -1);
	json_decref(c);
	assert_int_equal(svcstate_list(&f->s, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0]->id, a->id); /* oldest first */
	for (size_t i = 0; i < n; i++)
		svcstate_rec_free(v[i]);
	free(v);
	svcstate_rec_free(a);
	svcstate_rec_free(b);
}

static void test_ambiguous_prefix(void **state)
{
	struct fx *f = *state;
	struct nb_error err;
	struct svcstate_rec *r;
	/* create until two ids share a first hex digit (16 digits: at most 17) */
	struct svcstate_rec *v[17];
	int n = 0, x = -1, y = -1;
	for (; n < 17 && x < 0; n++) {
		v[n] = create(f, NULL);
		for (int i = 0; i < n; i++)
			if (v[i]->id[0] == v[n]->id[0]) {
				x = i;
				y = n;
			}
	}
	assert_true(x >= 0);
	char pre[2] = {v[x]->id[0], 0};
	assert_int_equal(svcstate_find(&f->s, pre, &r, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	assert_non_null(strstr(err.msg, "matches"));
	(void)y;
	for (int i = 0; i < n; i++)
		svcstate_rec_free(v[i]);
}

static void test_state_and_liveness(void **state)
{
	struct fx *f = *state;
	struct nb_error err;
	struct svcstate_rec *r = create(f, "live");
	/* "running" written by a monitor that is gone (no lock holder): dead */
	struct svcstate_state st = {.status = SVCSTATE_RUNNING,
				    .pid = 999999,
				    .exit_code = -1,
				    .started_ms = svcstate_now_ms()};
	assert_int_equal(svcstate_write_state(r, &st, &err), 0);
	assert_int_equal(svcstate_refresh(r, &err), 0);
	assert_int_equal(r->st.status, SVCSTATE_DEAD);
	assert_string_equal(svcstate_status_name(r->st.status), "exited (monitor died)");
	assert_false(svcstate_monitor_alive(r));

	/* a process holding the lock: alive, status kept */
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t child = fork();
	if (child == 0) {
		int fd = openat(r->dirfd, "lock", O_RDWR | O_CREAT, 0600);
		flock(fd, LOCK_EX);
		char c = 1;
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_true(svcstate_monitor_alive(r));
	assert_int_equal(svcstate_refresh(r, &err), 0);
	assert_int_equal(r->st.status, SVCSTATE_RUNNING);
	/* removal refused while it lives */
	assert_int_equal(svcstate_remove(&f->s, r, &err), -1);
	assert_non_null(strstr(err.msg, "running"));
	/* SIGKILL the "monitor": the kernel drops its lock */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(svcstate_wait_exit(r, 1000), 0);
	assert_int_equal(svcstate_refresh(r, &err), 0);
	assert_int_equal(r->st.status, SVCSTATE_DEAD);
	close(p[0]);
	close(p[1]);

	/* an exit recorded by the monitor stays exited */
	st = (struct svcstate_state){.status = SVCSTATE_EXITED, .exit_code = 143};
	assert_int_equal(svcstate_write_state(r, &st, &err), 0);
	assert_int_equal(svcstate_refresh(r, &err), 0);
	assert_int_equal(r->st.status, SVCSTATE_EXITED);
	assert_int_equal(r->st.exit_code, 143);
	json_t *d = svcstate_describe(r, true);
	assert_int_equal(json_integer_value(json_object_get(d, "exit_code")), 143);
	assert_string_equal(json_string_value(json_object_get(d, "status")), "exited");
	json_decref(d);
	svcstate_rec_free(r);
}

/* Hostile or broken files give errors, not crashes. */
static void test_corrupt(void **state)
{
	struct fx *f = *state;
	struct nb_error err;
	struct svcstate_rec *r = create(f, "corrupt"), *q;
	static const char *const bodies[] = {"",
					     "{",
					     "[]",
					     "{\"status\":\"flying\"}",
					     "{\"status\":\"running\",\"pid\":-5}",
					     "{\"status\":\"exited\",\"exit_code\":999}",
					     "{\"status\":7}",
					     "{\"status\":\"exited\",\"status\":\"running\"}"};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		int fd = openat(r->dirfd, "state.json", O_WRONLY | O_TRUNC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, bodies[i], strlen(bodies[i])),
				 (ssize_t)strlen(bodies[i]));
		close(fd);
		if (svcstate_refresh(r, &err) == 0)
			fail_msg("state.json '%s' accepted", bodies[i]);
		assert_int_equal(err.code, NB_EFORMAT);
	}
	/* a corrupt record is skipped by find/list, and removable by id */
	assert_int_equal(svcstate_find(&f->s, "corrupt", &q, &err), -1);
	assert_int_equal(svcstate_load(&f->s, "../../etc", &q, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	svcstate_rec_free(r);
}

static void test_remove(void **state)
{
	struct fx *f = *state;
	struct nb_error err;
	struct svcstate_rec *r = create(f, "gone"), *q;
	/* a writable layer with awkward content: deep dirs, a 000 dir, a
	 * symlink to outside (must not be followed) */
	char path[512], outside[128];
	snprintf(outside, sizeof(outside), "%s/outside", f->home);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(path, sizeof(path), "%s/outside/keep", f->home);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/upper/a/b/c", r->dir);
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s && touch %s/f && ln -s %s %s/upper/link && mkdir %s/upper/locked && "
		 "touch %s/upper/locked/x && chmod 000 %s/upper/locked",
		 path, path, outside, r->dir, r->dir, r->dir, r->dir);
	assert_int_equal(system(cmd), 0);
	char dir[512];
	snprintf(dir, sizeof(dir), "%s", r->dir);
	assert_int_equal(svcstate_remove(&f->s, r, &err), 0);
	struct stat st;
	assert_int_equal(stat(dir, &st), -1);
	snprintf(path, sizeof(path), "%s/outside/keep", f->home);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(svcstate_find(&f->s, "gone", &q, &err), -1);
	svcstate_rec_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test_setup_teardown(test_create_find, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ambiguous_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_and_liveness, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
