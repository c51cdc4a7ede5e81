/* SPDX-License-Identifier: MIT */
#include "svcmon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/parse.h"
#include "../fnvm/fnvm.h"
#include "../svc/ctl.h"
#include "../svc/sandbox.h"
#include "../svc/svc.h"
#include "svcrun.h"

struct svcmon {
	struct svcstate_rec *rec;
	bool foreground;

	pthread_mutex_t mu; /* everything below, and state.json writes */
	pthread_cond_t cv;
	struct svc_vm *vm;
	bool alive; /* the guest runs (svc_wait has not returned) */
	bool ended; /* the helper threads are to end */
	bool paused;
	bool stopping;		  /* a stop was requested */
	int64_t kill_deadline_ms; /* SIGKILL at this time (0: none) */
	struct svcstate_state st;

	/* log pump */
	int out_rd, err_rd; /* read ends of the guest's stdout/stderr pipes */
	int sigfd;	    /* forwarded host signals */
	int log_fd;
	uint64_t log_size, log_max;
	bool tee_ok[2]; /* foreground: still copying to our stdout/stderr */
};

/* ---- state ------------------------------------------------------------- */

static void write_state_locked(struct svcmon *m)
{
	struct nb_error err;
	if (svcstate_write_state(m->rec, &m->st, &err) < 0)
		fprintf(stderr, "nubis: monitor %s: %s\n", m->rec->name, err.msg);
}

/* ---- control socket operations ------------------------------------------ */

static char *op_state(void *arg)
{
	struct svcmon *m = arg;
	pthread_mutex_lock(&m->mu);
	struct svcstate_rec tmp = *m->rec;
	tmp.st = m->st;
	json_t *j = svcstate_describe(&tmp, false);
	if (j)
		json_object_set_new(j, "stopping", json_boolean(m->stopping));
	pthread_mutex_unlock(&m->mu);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

static void resume_locked(struct svcmon *m)
{
	if (!m->paused)
		return;
	svc_resume(m->vm);
	m->paused = false;
	m->st.status = SVCSTATE_RUNNING;
	write_state_locked(m);
}

static int op_stop(void *arg, unsigned timeout_s)
{
	struct svcmon *m = arg;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	if (!m->alive) {
		rc = -ESRCH;
		goto out;
	}
	/* a paused guest could not run its SIGTERM handler */
	resume_locked(m);
	int64_t deadline = svcstate_now_ms() + (int64_t)timeout_s * 1000;
	if (!m->kill_deadline_ms || deadline < m->kill_deadline_ms)
		m->kill_deadline_ms = deadline;
	if (timeout_s == 0)
		svc_kill(m->vm, SIGKILL);
	else if (!m->stopping)
		svc_kill(m->vm, SIGTERM);
	m->stopping = true;
	pthread_cond_broadcast(&m->cv);
out:
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int op_kill(void *arg, int sig)
{
	struct svcmon *m = arg;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	if (!m->alive)
		rc = -ESRCH;
	else {
		if (sig == SIGKILL)
			resume_locked(m);
		svc_kill(m->vm, sig);
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int op_pause(void *arg)
{
	struct svcmon *m = arg;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	if (!m->alive || m->stopping)
		rc = -ESRCH;
	else if (m->paused)
		rc = -EALREADY;
	else {
		svc_pause(m->vm);
		m->paused = true;
		m->st.status = SVCSTATE_PAUSED;
		write_state_locked(m);
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int op_resume(void *arg)
{
	struct svcmon *m = arg;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	if (!m->alive)
		rc = -ESRCH;
	else if (!m->paused)
		rc = -EALREADY;
	else
		resume_locked(m);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static const struct ctl_ops svcmon_ctl_ops = {
    .state = op_state,
    .stop = op_stop,
    .kill = op_kill,
    .pause = op_pause,
    .resume = op_resume,
};

/* ---- the grace-period timer -------------------------------------------- */

static void *timer_thread(void *arg)
{
	struct svcmon *m = arg;
	pthread_mutex_lock(&m->mu);
	while (!m->ended) {
		if (!m->kill_deadline_ms || !m->alive) {
			pthread_cond_wait(&m->cv, &m->mu);
			continue;
		}
		int64_t now = svcstate_now_ms();
		if (now >= m->kill_deadline_ms) {
			resume_locked(m);
			svc_kill(m->vm, SIGKILL);
			m->kill_deadline_ms = 0;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t wait = m->kill_deadline_ms - now;
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* ---- log pump ------------------------------------------------------------ */

static int open_log(struct svcmon *m)
{
	int fd = openat(m->rec->dirfd, "log",
			O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	struct stat st;
	m->log_size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	m->log_fd = fd;
	return 0;
}

static void log_write(struct svcmon *m, const char *p, size_t n)
{
	if (m->log_fd >= 0 && m->log_size && m->log_size + n > m->log_max) {
		/* rotate: keep one old file */
		close(m->log_fd);
		m->log_fd = -1;
		renameat(m->rec->dirfd, "log", m->rec->dirfd, "log.1");
		int fd =
		    openat(m->rec->dirfd, "log",
			   O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		m->log_fd = fd;
		m->log_size = 0;
	}
	while (m->log_fd >= 0 && n) {
		ssize_t w = write(m->log_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* disk full: the guest keeps running, output is lost */
		p += w;
		n -= (size_t)w;
		m->log_size += (uint64_t)w;
	}
}

static void tee_write(struct svcmon *m, int which, const char *p, size_t n)
{
	int fd = which + 1;
	while (m->tee_ok[which] && n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			poll(&pfd, 1, 1000);
			continue;
		}
		if (w <= 0) {
			m->tee_ok[which] = false;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void forward_signal(struct svcmon *m, int sig)
{
	pthread_mutex_lock(&m->mu);
	if (m->alive)
		svc_kill(m->vm, sig);
	pthread_mutex_unlock(&m->mu);
}

/* Copies the guest's output into the log until both pipes reach EOF (every
 * guest fd closed: the VM was destroyed), and forwards host signals. */
static void *pump_thread(void *arg)
{
	struct svcmon *m = arg;
	char buf[65536];
	int fds[2] = {m->out_rd, m->err_rd};
	for (;;) {
		struct pollfd p[3];
		unsigned n = 0;
		int idx[3];
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0) {
				p[n] = (struct pollfd){.fd = fds[i], .events = POLLIN};
				idx[n++] = i;
			}
		if (!n)
			break;
		if (m->sigfd >= 0) {
			p[n] = (struct pollfd){.fd = m->sigfd, .events = POLLIN};
			idx[n++] = 2;
		}
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (unsigned k = 0; k < n; k++) {
			if (!p[k].revents)
				continue;
			if (idx[k] == 2) {
				struct signalfd_siginfo si;
				if (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					forward_signal(m, (int)si.ssi_signo);
				continue;
			}
			int i = idx[k];
			ssize_t r = read(fds[i], buf, sizeof(buf));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			log_write(m, buf, (size_t)r);
			if (m->foreground)
				tee_write(m, i, buf, (size_t)r);
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	m->out_rd = m->err_rd = -1;
	return NULL;
}

/* ---- building the VM ----------------------------------------------------- */

/* A JSON array of strings as a NULL-terminated vector pointing into @a. */
static char **strv_of(json_t *a)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s) {
			free(v);
			return NULL;
		}
		v[i] = (char *)(uintptr_t)s;
	}
	return v;
}

/* The VM of @m->rec, not started. */
static int build_vm(struct svcmon *m, struct kvmhost *kvm, int stdin_fd, int out_wr, int err_wr,
		    struct svcrun_opts *o, struct nb_error *err)
{
	json_t *cfg = m->rec->config;
	char **layers = NULL, **argv = NULL, **env = NULL;
	char upper[PATH_MAX];
	int rc = -1;
	if (svcrun_opts_from_json(o, json_object_get(cfg, "options"), err) < 0)
		goto out;
	layers = strv_of(json_object_get(cfg, "layers"));
	argv = strv_of(json_object_get(cfg, "argv"));
	env = strv_of(json_object_get(cfg, "env"));
	if (!layers || !argv || !env || !argv[0]) {
		nb_error_set(err, NB_EFORMAT, "%s/config.json: bad layers, argv or env",
			     m->rec->dir);
		goto out;
	}
	snprintf(upper, sizeof(upper), "%s/upper", m->rec->dir);
	struct svc_config *c = &o->svc.cfg;
	c->lower_dirs = (const char *const *)layers;
	for (c->nlower = 0; layers[c->nlower]; c->nlower++)
		;
	c->upper_dir = upper;
	c->argv = argv;
	c->envp = env;
	const char *wd = json_string_value(json_object_get(cfg, "workdir"));
	c->workdir = wd && *wd ? wd : "/";
	c->stdio[0] = stdin_fd;
	c->stdio[1] = out_wr;
	c->stdio[2] = err_wr;
	if (kvmhost_open(kvm, err) < 0)
		goto out;
	rc = svc_create(kvm, c, &m->vm, err); /* deep-copies the configuration */
out:
	free(layers);
	free(argv);
	free(env);
	return rc;
}

/* ---- the monitor's life ---------------------------------------------------- */

/* Take the container's lock: a second monitor of the same container fails.
 * A CLI's liveness probe holds it (shared) for microseconds: retry briefly. */
static int take_lock(struct svcstate_rec *r, struct nb_error *err)
{
	int fd = openat(r->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return nb_error_sys(err, errno, "%s/lock", r->dir);
	for (int i = 0; i < 200; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		usleep(5000);
	}
	close(fd);
	return nb_error_set(err, NB_EINVAL, "container %s is already running", r->name);
}

static void ready_write(int fd, const char *msg)
{
	if (fd < 0)
		return;
	size_t n = strlen(msg);
	while (n) {
		ssize_t w = write(fd, msg, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		msg += w;
		n -= (size_t)w;
	}
}

struct ctl_starter {
	struct svcmon *m;
	pthread_t thread;
	char sock[64];
	struct ctl *ctl; /* out: the server, or NULL with ->err */
	struct nb_error err;
};

static void *ctl_starter_main(void *arg)
{
	struct ctl_starter *cs = arg;
	if (ctl_start(cs->sock, &svcmon_ctl_ops, cs->m, &cs->ctl, &cs->err) < 0)
		cs->ctl = NULL;
	return NULL;
}

/* Stop the helper threads: the timer at once, the pump once the VM (and so
 * every guest copy of the pipes' write ends) is destroyed. */
static void end_threads(struct svcmon *m, pthread_t pump, bool pump_started, pthread_t timer,
			bool timer_started)
{
	pthread_mutex_lock(&m->mu);
	m->alive = false;
	m->ended = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (timer_started)
		pthread_join(timer, NULL);
	svc_destroy(m->vm); /* closes the guest's ends of the pipes */
	m->vm = NULL;
	if (pump_started)
		pthread_join(pump, NULL);
}

/* Run the container's VM to its end. @ready_fd (or -1) gets "ok\n" once the
 * guest runs or "error: ...\n". Returns the guest's status, or an exit
 * status of nubis if it could not start (the reason is in state.json and on
 * stderr). */
static int monitor_run(struct svcmon *m, int stdin_fd, int ready_fd)
{
	struct svcstate_rec *r = m->rec;
	struct nb_error err = {0};
	struct kvmhost kvm = {.fd = -1};
	struct ctl *ctl = NULL;
	struct svcrun_opts o;
	int lock_fd = -1, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, status = FNVM_STATUS_USAGE;
	pthread_t pump, timer;
	bool pump_started = false, timer_started = false;
	sigset_t fwd;

	svcrun_opts_init(&o);
	m->log_fd = m->sigfd = m->out_rd = m->err_rd = -1;
	m->tee_ok[0] = m->tee_ok[1] = true;
	json_int_t lm = json_integer_value(json_object_get(r->config, "log_max"));
	m->log_max = lm > 0 ? (uint64_t)lm : SVCMON_LOG_MAX_DEFAULT;

	/* host signals to the monitor are forwarded to the guest (by the pump
	 * thread, through a signalfd): blocked before any thread exists, so
	 * that every thread (the VM's, the HTTP server's) inherits the mask */
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGHUP);
	sigaddset(&fwd, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &fwd, NULL);

	if ((lock_fd = take_lock(r, &err)) < 0)
		goto fail_unlocked;
	/* re-read under the lock: state.json is ours from here on */
	if (svcstate_refresh(r, &err) < 0)
		goto fail;
	m->st = r->st;
	if (open_log(m) < 0) {
		nb_error_sys(&err, errno, "%s/log", r->dir);
		goto fail;
	}
	if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
		nb_error_sys(&err, errno, "pipe");
		goto fail;
	}
	m->out_rd = out_p[0];
	m->err_rd = err_p[0];
	/* the control socket (loading libmicrohttpd takes milliseconds) is set
	 * up by a helper thread while this one builds the VM */
	struct ctl_starter cs = {.m = m};
	svcstate_sock_path(r, cs.sock, sizeof(cs.sock));
	bool cs_thread = pthread_create(&cs.thread, NULL, ctl_starter_main, &cs) == 0;
	if (!cs_thread)
		ctl_starter_main(&cs);
	int vm_rc = build_vm(m, &kvm, stdin_fd, out_p[1], err_p[1], &o, &err);
	if (cs_thread)
		pthread_join(cs.thread, NULL);
	ctl = cs.ctl;
	if (vm_rc < 0)
		goto fail;
	/* the VM holds its own copies of the write ends: EOF on the read ends
	 * then means every guest fd of them is closed */
	close(out_p[1]);
	close(err_p[1]);
	out_p[1] = err_p[1] = -1;
	if (!ctl) {
		err = cs.err;
		goto fail;
	}
	if ((m->sigfd = signalfd(-1, &fwd, SFD_CLOEXEC)) < 0) {
		nb_error_sys(&err, errno, "signalfd");
		goto fail;
	}
	/* every thread of the monitor exists before the sandbox closes clone */
	if (pthread_create(&pump, NULL, pump_thread, m) == 0)
		pump_started = true;
	if (pthread_create(&timer, NULL, timer_thread, m) == 0)
		timer_started = true;
	if (!pump_started || !timer_started) {
		nb_error_set(&err, NB_ERESOURCE, "cannot start the monitor's threads");
		goto fail;
	}
	if (!getenv("NUBIS_NO_SANDBOX") && svc_sandbox_apply(&err) < 0)
		goto fail;

	pthread_mutex_lock(&m->mu);
	if (svc_start(m->vm, &err) < 0) {
		pthread_mutex_unlock(&m->mu);
		goto fail;
	}
	m->alive = true;
	m->st.status = SVCSTATE_RUNNING;
	m->st.pid = getpid();
	m->st.exit_code = -1;
	m->st.started_ms = svcstate_now_ms();
	m->st.finished_ms = 0;
	m->st.error[0] = 0;
	write_state_locked(m);
	pthread_mutex_unlock(&m->mu);

	ready_write(ready_fd, "ok\n");
	if (ready_fd >= 0)
		close(ready_fd);
	ready_fd = -1;

	status = svc_wait(m->vm);
	end_threads(m, pump, pump_started, timer, timer_started);
	pump_started = timer_started = false;

	pthread_mutex_lock(&m->mu);
	m->paused = false;
	m->st.status = SVCSTATE_EXITED;
	m->st.pid = 0;
	m->st.exit_code = status;
	m->st.finished_ms = svcstate_now_ms();
	write_state_locked(m);
	pthread_mutex_unlock(&m->mu);
	goto out;

fail:
	if (pump_started || timer_started || m->vm) {
		end_threads(m, pump, pump_started, timer, timer_started);
		pump_started = timer_started = false;
	}
	/* record why, so that ps/inspect can tell */
	m->st.status = m->st.started_ms ? SVCSTATE_EXITED : SVCSTATE_CREATED;
	m->st.pid = 0;
	snprintf(m->st.error, sizeof(m->st.error), "%.255s", err.msg);
	write_state_locked(m);
fail_unlocked:
	fprintf(stderr, "nubis: %s: %s\n", r->name, err.msg);
	if (ready_fd >= 0) {
		char line[600];
		snprintf(line, sizeof(line), "error: %s\n", err.msg);
		ready_write(ready_fd, line);
	}
	status = err.code == NB_EINVAL	  ? FNVM_STATUS_USAGE
		 : err.code == NB_ENOENT  ? FNVM_STATUS_NOT_FOUND
		 : err.code == NB_EFORMAT ? FNVM_STATUS_BAD_PROGRAM
					  : FNVM_STATUS_INTERNAL;
out:
	ctl_stop(ctl);
	if (m->sigfd >= 0)
		close(m->sigfd);
	m->sigfd = -1;
	/* the read ends belong to the pump once it ran (it closes them) */
	if (m->out_rd >= 0)
		close(m->out_rd);
	if (m->err_rd >= 0)
		close(m->err_rd);
	if (out_p[1] >= 0)
		close(out_p[1]);
	if (err_p[1] >= 0)
		close(err_p[1]);
	if (m->log_fd >= 0)
		close(m->log_fd);
	if (kvm.fd >= 0)
		kvmhost_close(&kvm);
	svcrun_opts_free(&o);
	if (lock_fd >= 0)
		close(lock_fd);
	if (ready_fd >= 0)
		close(ready_fd);
	return status;
}

static void svcmon_init(struct svcmon *m, struct svcstate_rec *r, bool foreground)
{
	memset(m, 0, sizeof(*m));
	m->rec = r;
	m->foreground = foreground;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
}

static void svcmon_fini(struct svcmon *m)
{
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
}

/* After the run: --rm deletes the container. */
static void auto_remove(const struct svcstate_store *s, struct svcstate_rec *r)
{
	if (!json_is_true(json_object_get(r->config, "auto_remove")))
		return;
	struct nb_error err;
	struct svcstate_store tmp = *s;
	if (svcstate_remove(&tmp, r, &err) < 0)
		fprintf(stderr, "nubis: --rm: %s\n", err.msg);
}

int svcmon_foreground(const struct svcstate_store *s, struct svcstate_rec *r)
{
	struct svcmon m;
	svcmon_init(&m, r, true);
	signal(SIGPIPE, SIG_IGN);
	int status = monitor_run(&m, 0, -1);
	svcmon_fini(&m);
	auto_remove(s, r);
	return status;
}

int svcmon_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"home", required_argument, NULL, 'H'},
						 {"ready-fd", required_argument, NULL, 'r'},
						 {0}};
	const char *home = NULL;
	int ready_fd = -1, c;
	uint64_t v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		if (c == 'H')
			home = optarg;
		else if (c == 'r' && nb_parse_u64(optarg, &v) == 0 && v > 2 && v < INT_MAX)
			ready_fd = (int)v;
		else {
			fprintf(stderr, "usage: nubis __monitor [--home DIR] [--ready-fd N] ID "
					"(internal)\n");
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr,
			"usage: nubis __monitor [--home DIR] [--ready-fd N] ID (internal)\n");
		return FNVM_STATUS_USAGE;
	}
	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	struct svcstate_store s;
	struct svcstate_rec *r = NULL;
	struct nb_error err;
	int status;
	if (svcstate_store_open(home, &s, &err) < 0 ||
	    svcstate_load(&s, argv[optind], &r, &err) < 0) {
		char line[600];
		snprintf(line, sizeof(line), "error: %s\n", err.msg);
		ready_write(ready_fd, line);
		fprintf(stderr, "nubis: %s\n", err.msg);
		if (s.dirfd >= 0)
			svcstate_store_close(&s);
		return FNVM_STATUS_USAGE;
	}
	struct svcmon m;
	svcmon_init(&m, r, false);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	status = monitor_run(&m, nullfd, ready_fd);
	if (nullfd >= 0)
		close(nullfd);
	svcmon_fini(&m);
	auto_remove(&s, r);
	svcstate_rec_free(r);
	svcstate_store_close(&s);
	return status;
}

int svcmon_spawn(const struct svcstate_store *s, const struct svcstate_rec *r, struct nb_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return nb_error_sys(err, errno, "pipe");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		close(p[0]);
		close(p[1]);
		return nb_error_sys(err, errno, "/proc/self/exe");
	}
	exe[n] = 0;
	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return nb_error_sys(err, e, "fork");
	}
	if (child == 0) {
		/* the middle process: a new session, then the monitor as a
		 * grandchild, so that it is nobody's child but init's */
		setsid();
		if (fork() != 0)
			_exit(0);
		/* keep no directory of the caller busy (all paths are absolute) */
		if (chdir("/") < 0)
			_exit(127);
		int null = open("/dev/null", O_RDWR);
		int mlog = openat(r->dirfd, "monitor.log",
				  O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
		if (null < 0 || mlog < 0 || dup2(null, 0) < 0 || dup2(mlog, 1) < 0 ||
		    dup2(mlog, 2) < 0 || dup2(p[1], 3) < 0)
			_exit(127);
		char *args[] = {exe,
				(char *)(uintptr_t) "__monitor",
				(char *)(uintptr_t) "--home",
				s->home,
				(char *)(uintptr_t) "--ready-fd",
				(char *)(uintptr_t) "3",
				(char *)(uintptr_t)r->id,
				NULL};
		/* fds above 3 are close-on-exec */
		execv(exe, args);
		_exit(127);
	}
	close(p[1]);
	int ws;
	while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
		;
	/* read the monitor's report */
	char buf[700];
	size_t got = 0;
	int64_t end = svcstate_now_ms() + SVCMON_READY_TIMEOUT_MS;
	for (;;) {
		int64_t left = end - svcstate_now_ms();
		if (left <= 0)
			break;
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		ssize_t rd = read(p[0], buf + got, sizeof(buf) - 1 - got);
		if (rd < 0 && errno == EINTR)
			continue;
		if (rd <= 0)
			break;
		got += (size_t)rd;
		if (got == sizeof(buf) - 1 || memchr(buf, '\n', got))
			break;
	}
	close(p[0]);
	buf[got] = 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	if (!strcmp(buf, "ok"))
		return 0;
	if (!strncmp(buf, "error: ", 7))
		return nb_error_set(err, NB_EINVAL, "%s", buf + 7);
	if (!got && !nl)
		return nb_error_set(err, NB_EINTERNAL,
				    "the monitor ended without reporting (see %s/monitor.log)",
				    r->dir);
	return nb_error_set(err, NB_EINTERNAL,
			    "the monitor did not report in time (see %s/monitor.log)", r->dir);
}
