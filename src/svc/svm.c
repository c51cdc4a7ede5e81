/* SPDX-License-Identifier: MIT */
/* Service VMs: life cycle (create, start, wait, kill, pause, resume, destroy). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "svc_int.h"
#include "vdso.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void svc_config_defaults(struct svc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = 256ull << 20;
	cfg->max_threads = SVC_MAX_THREADS_DEFAULT;
	cfg->max_fds = SVC_MAX_FDS_DEFAULT;
	cfg->workdir = "/";
	cfg->stdio[0] = 0;
	cfg->stdio[1] = 1;
	cfg->stdio[2] = 2;
}

/* ---- deep copy of the configuration ---- */

struct store {
	void **p;
	size_t n, cap;
};

static void *keep(struct store *s, void *p)
{
	if (!p)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		void **np = realloc(s->p, cap * sizeof(*np));
		if (!np) {
			free(p);
			return NULL;
		}
		s->p = np;
		s->cap = cap;
	}
	s->p[s->n++] = p;
	return p;
}

static void store_free(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->p[i]);
	free(s->p);
	free(s);
}

static char *kstr(struct store *s, const char *str, bool *oom)
{
	if (!str)
		return NULL;
	char *c = keep(s, strdup(str));
	if (!c)
		*oom = true;
	return c;
}

static char **kstrv(struct store *s, char *const *v, bool *oom)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **c = keep(s, calloc(n + 1, sizeof(*c)));
	if (!c) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		c[i] = kstr(s, v[i], oom);
	return c;
}

static void *kmem(struct store *s, const void *src, size_t n, bool *oom)
{
	if (!n)
		return NULL;
	void *c = keep(s, malloc(n));
	if (!c) {
		*oom = true;
		return NULL;
	}
	memcpy(c, src, n);
	return c;
}

static int copy_config(struct svc_vm *vm, const struct svc_config *in)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	vm->cfg_store = s;
	bool oom = false;
	struct svc_config *c = &vm->cfg;
	*c = *in;
	const char **lower = keep(s, calloc(in->nlower + 1, sizeof(*lower)));
	oom |= !lower;
	for (size_t i = 0; lower && i < in->nlower; i++)
		lower[i] = kstr(s, in->lower_dirs[i], &oom);
	c->lower_dirs = lower;
	c->upper_dir = kstr(s, in->upper_dir, &oom);
	struct svc_volume *vol = kmem(s, in->volumes, in->nvolumes * sizeof(*vol), &oom);
	for (size_t i = 0; vol && i < in->nvolumes; i++) {
		vol[i].host_dir = kstr(s, in->volumes[i].host_dir, &oom);
		vol[i].guest_dir = kstr(s, in->volumes[i].guest_dir, &oom);
	}
	c->volumes = vol;
	c->publish = kmem(s, in->publish, in->npublish * sizeof(*in->publish), &oom);
	c->allow = kmem(s, in->allow, in->nallow * sizeof(*in->allow), &oom);
	c->argv = kstrv(s, in->argv, &oom);
	c->envp = kstrv(s, in->envp, &oom);
	c->workdir = kstr(s, in->workdir ? in->workdir : "/", &oom);
	for (int i = 0; i < 3; i++)
		c->stdio[i] = -1;
	for (int i = 0; i < 3; i++) {
		if (in->stdio[i] < 0)
			continue;
		c->stdio[i] = fcntl(in->stdio[i], F_DUPFD_CLOEXEC, 3);
		if (c->stdio[i] < 0)
			return -errno;
	}
	return oom ? -ENOMEM : 0;
}

/* ---- accessors ---- */

struct svc_fs *svc_vm_fs(struct svc_vm *vm)
{
	return vm->fs;
}
void svc_vm_set_fs(struct svc_vm *vm, struct svc_fs *fs)
{
	vm->fs = fs;
}
struct svc_net *svc_vm_net(struct svc_vm *vm)
{
	return vm->net;
}
void svc_vm_set_net(struct svc_vm *vm, struct svc_net *net)
{
	vm->net = net;
}
struct svc_fdtab *svc_vm_fdtab(struct svc_vm *vm)
{
	return vm->fdtab;
}
void svc_vm_set_fdtab(struct svc_vm *vm, struct svc_fdtab *fds)
{
	vm->fdtab = fds;
}
const struct svc_config *svc_vm_config(struct svc_vm *vm)
{
	return &vm->cfg;
}
struct svc_vm *svc_thread_vm(struct svc_thread *t)
{
	return t->vm;
}
int svc_thread_tid(struct svc_thread *t)
{
	return t->tid;
}

/* ---- program lookup ---- */

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/* Open argv[0] like execvp: a name with a slash as is, otherwise each
 * directory of PATH in turn. Returns the fd and the path in @path. */
static int open_program(struct svc_vm *vm, char *path, size_t cap)
{
	const char *name = vm->cfg.argv[0];
	if (!*name)
		return -ENOENT;
	if (strchr(name, '/')) {
		if (strlen(name) >= cap)
			return -ENAMETOOLONG;
		strcpy(path, name);
		return svc_fs_open_exec(vm, path);
	}
	const char *p = env_get(vm->cfg.envp, "PATH");
	if (!p)
		p = DEFAULT_PATH;
	int best = -ENOENT;
	while (*p) {
		const char *e = strchr(p, ':');
		size_t dl = e ? (size_t)(e - p) : strlen(p);
		if (dl == 0) /* empty entry: the working directory */
			snprintf(path, cap, "%s/%s", vm->cfg.workdir, name);
		else
			snprintf(path, cap, "%.*s/%s", (int)dl, p, name);
		int fd = svc_fs_open_exec(vm, path);
		if (fd >= 0)
			return fd;
		if (fd != -ENOENT && fd != -ENOTDIR)
			best = fd; /* e.g. EACCES: reported if nothing else is found */
		if (!e)
			break;
		p = e + 1;
	}
	return best;
}

/* ---- life cycle ---- */

int svc_create(const struct kvmhost *kvm, const struct svc_config *cfg, struct svc_vm **out,
	       struct nb_error *err)
{
	*out = NULL;
	if (!cfg->argv || !cfg->argv[0])
		return nb_error_set(err, NB_EINVAL, "no program given");
	if (cfg->mem_size % UVM_PAGE_2M || cfg->mem_size < (8ull << 20) ||
	    cfg->mem_size > UVM_MAX_MEM)
		return nb_error_set(err, NB_EINVAL,
				    "memory size %llu: must be a multiple of 2 MiB between 8 MiB "
				    "and %llu GiB",
				    (unsigned long long)cfg->mem_size, UVM_MAX_GIB);
	unsigned maxt = cfg->max_threads ? cfg->max_threads : SVC_MAX_THREADS_DEFAULT;
	unsigned kmax = kvm->max_vcpus > 0 ? (unsigned)kvm->max_vcpus : 1;
	if (maxt > UVM_MAX_VCPUS || maxt > kmax)
		return nb_error_set(err, NB_EINVAL, "--max-threads %u: at most %u here", maxt,
				    kmax < UVM_MAX_VCPUS ? kmax : UVM_MAX_VCPUS);
	if (cfg->workdir && cfg->workdir[0] != '/')
		return nb_error_set(err, NB_EINVAL, "working directory %s is not absolute",
				    cfg->workdir);
	svc_thread_global_init();

	struct svc_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	vm->kvm = kvm;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->mm_lock, NULL);
	pthread_mutex_init(&vm->futex_lock, NULL);
	pthread_mutex_init(&vm->timer_lock, NULL);
	pthread_mutex_init(&vm->log_lock, NULL);
	pthread_mutex_init(&vm->gate_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->cond, &ca);
	pthread_cond_init(&vm->timer_cond, &ca);
	pthread_cond_init(&vm->gate_cond, &ca);
	pthread_condattr_destroy(&ca);
	vm->next_tid = SVC_PID;
	vm->enosys_rl = (struct nb_ratelimit)NB_RATELIMIT_INIT(10, 5000000000ull);
	bool fs_up = false, net_up = false;
	int rc = copy_config(vm, cfg);
	if (rc) {
		nb_error_sys(err, -rc, "copying the configuration");
		goto fail;
	}
	vm->cfg.max_threads = maxt;
	if (vm->cfg.cpus && vm->cfg.cpus < maxt) {
		vm->cpu_gate = true;
		vm->gate_free = vm->cfg.cpus;
	}
	if (!vm->cfg.max_fds)
		vm->cfg.max_fds = SVC_MAX_FDS_DEFAULT;
	vm->threads = calloc(maxt, sizeof(*vm->threads));
	if (!vm->threads) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}

	if (svc_fs_init(vm, &vm->cfg, err) < 0)
		goto fail;
	fs_up = true;
	if (svc_net_init(vm, &vm->cfg, err) < 0)
		goto fail;
	net_up = true;

	char path[4096];
	int fd = open_program(vm, path, sizeof(path));
	if (fd < 0) {
		nb_error_set(err, fd == -ENOENT || fd == -ENOTDIR ? NB_ENOENT : NB_EFORMAT,
			     "%s: %s", vm->cfg.argv[0], strerror(-fd));
		goto fail;
	}
	struct fnvm_config fc;
	fnvm_config_defaults(&fc);
	fc.mem_size = vm->cfg.mem_size;
	fc.argv = vm->cfg.argv;
	fc.envp = vm->cfg.envp;
	if (getenv("NUBIS_NO_VDSO")) /* as --vdso off */
		vm->cfg.vdso_mode = SVC_VDSO_OFF;
	if (vm->cfg.vdso_mode != SVC_VDSO_OFF) { /* vdso helper */
		fc.vdso_image = svc_vdso_image;
		fc.vdso_len = svc_vdso_image_len;
	}
	if (getrandom(&fc.seed, sizeof(fc.seed), 0) != sizeof(fc.seed))
		fc.seed = nb_now_ns();
	struct nb_error perr;
	if (fnvm_program_create_fd(kvm, fd, path, &fc, 0, &vm->prog, &perr) < 0) {
		nb_error_set(err, perr.code, "%s: %s", path, perr.msg);
		goto fail;
	}
	rc = fnvm_vm_prepare(vm->prog, &vm->fv);
	if (rc) {
		nb_error_set(err, rc == -ENOENT || rc == -EACCES ? NB_EKVM : NB_ERESOURCE,
			     "cannot create a VM: %s", strerror(-rc));
		goto fail;
	}
	vm->mem = &vm->fv.vm->mem;
	vm->ncpus = 1;
	if (vm->cfg.vdso_mode != SVC_VDSO_OFF) { /* vdso helper */
		void *page = gmem_ptr(vm->mem, UVM_VVAR, SVC_PAGE);
		rc = page ? svc_vdso_create(vm->fv.cpu, page, (enum svc_vdso_mode)vm->cfg.vdso_mode,
					    &vm->vdso)
			  : -EFAULT;
		if (rc) {
			nb_error_set(err, NB_ERESOURCE, "vDSO clock page: %s", strerror(-rc));
			goto fail;
		}
	}
	rc = svc_mm_init(vm);
	if (rc) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	svc_signal_init(vm);
	rc = svc_fast_init(vm);
	if (rc)
		nb_log(NB_LOG_WARN, "service VM: exitless system calls off: %s", strerror(-rc));
	*out = vm;
	return 0;
fail:
	if (net_up)
		svc_net_fini(vm);
	if (fs_up)
		svc_fs_fini(vm);
	vm->started = false;
	svc_destroy(vm);
	return -1;
}

int svc_start(struct svc_vm *vm, struct nb_error *err)
{
	if (vm->started)
		return nb_error_set(err, NB_EINVAL, "the service VM was started already");
	vm->started = true;
	if (svc_timers_start(vm) < 0)
		return nb_error_set(err, NB_ERESOURCE, "cannot start the timer thread");
	if (svc_fast_start(vm) < 0)
		return nb_error_set(err, NB_ERESOURCE, "cannot start the exitless server thread");
	return svc_thread_start_main(vm, err);
}

int svc_wait(struct svc_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	while (vm->nhost > 0)
		pthread_cond_wait(&vm->cond, &vm->lock);
	int st = vm->status;
	pthread_mutex_unlock(&vm->lock);
	return st;
}

void svc_kill(struct svc_vm *vm, int sig)
{
	if (sig == SIGKILL) {
		svc_vm_exit(vm, 128 + SIGKILL);
		return;
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_USER;
	svc_signal_raise(vm, 0, sig, &si);
}

void svc_pause(struct svc_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->paused = true;
	for (unsigned i = 0; i < vm->cfg.max_threads; i++)
		if (vm->threads[i])
			svc_thread_kick(vm->threads[i]);
	/* wait until no thread runs guest code (bounded: a thread stuck in a
	 * host call parks as soon as the call returns) */
	for (int tries = 0; tries < 20000; tries++) {
		bool busy = false;
		for (unsigned i = 0; i < vm->cfg.max_threads; i++)
			if (vm->threads[i] && atomic_load(&vm->threads[i]->in_guest))
				busy = true;
		if (!busy)
			break;
		pthread_mutex_unlock(&vm->lock);
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&vm->lock);
	}
	pthread_mutex_unlock(&vm->lock);
}

void svc_resume(struct svc_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->paused = false;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void svc_destroy(struct svc_vm *vm)
{
	if (!vm)
		return;
	if (vm->started) {
		pthread_mutex_lock(&vm->lock);
		bool running = vm->nhost > 0;
		pthread_mutex_unlock(&vm->lock);
		if (running) {
			svc_vm_exit(vm, 128 + SIGKILL);
			svc_resume(vm);
			svc_wait(vm);
		}
		svc_fast_fini(vm); /* before the fds its handlers use go */
		svc_timers_stop(vm);
		svc_net_fini(vm);
		svc_fs_fini(vm);
	}
	svc_fast_fini(vm);
	svc_vdso_destroy(vm->vdso); /* before the memory it writes goes */
	fnvm_vm_release(&vm->fv);
	fnvm_program_destroy(vm->prog);
	svc_mm_fini(vm);
	free(vm->threads);
	for (int i = 0; i < 3; i++)
		if (vm->cfg_store && vm->cfg.stdio[i] >= 0)
			close(vm->cfg.stdio[i]);
	store_free(vm->cfg_store);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->mm_lock);
	pthread_mutex_destroy(&vm->futex_lock);
	pthread_mutex_destroy(&vm->timer_lock);
	pthread_mutex_destroy(&vm->log_lock);
	pthread_mutex_destroy(&vm->gate_lock);
	pthread_cond_destroy(&vm->gate_cond);
	pthread_cond_destroy(&vm->cond);
	pthread_cond_destroy(&vm->timer_cond);
	free(vm);
}
