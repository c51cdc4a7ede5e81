/* SPDX-License-Identifier: MIT */
/*
 * Exitless system calls: the fast SYSCALL stub and the per-VM server
 * thread (protocol in exitless.h).
 *
 * The server serves a whitelist of calls through the ordinary handlers in
 * non-blocking form: while it runs a handler for thread t, t->fast_call is
 * set and svc_wait_fds() polls once instead of waiting; if it would have
 * to wait, it sets t->fast_wouldblock and the request is answered DEFER,
 * so the vCPU thread makes the real (blocking, interruptible) call.
 *
 * The slot is guest-writable: the server claims it with a compare-and-swap,
 * copies it once, and uses only the copy. Garbage in it makes the server
 * answer DEFER or ignore the slot; it never waits on the guest.
 */
#include "exitless.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "svc_int.h"

#define MSR_LSTAR   0xc0000082u
#define MSR_GS_BASE 0xc0000101u

#define FAST_IDLE_NS_DEFAULT 200000ull /* server sleeps after this much idle time */
#define FAST_SPIN_DEFAULT    300u /* stub pause iterations (~50 ns each here) before it gives up */
#define FAST_SLEEP_CHECK_NS  50000000L /* sleeping server re-checks exit/stop */
/* --syscall-mode auto turns the fast path on with at least this many host CPUs */
#define SVC_FAST_AUTO_MIN_CPUS 2

struct svc_fast {
	struct svc_vm *vm;
	uint32_t *awake;  /* guest control page: the stub reads it */
	uint8_t *slots;	  /* guest slots, UVM_MAX_VCPUS * SVC_FAST_SLOT_SZ */
	atomic_uint wake; /* futex word: set by a doorbell exit while asleep */
	atomic_bool stop;
	pthread_t thr;
	bool running;
	uint64_t idle_ns;
	int cpu;	      /* host CPU of the server, or -1 (not pinned) */
	bool pin_vcpus;	      /* vCPU threads keep off fx->cpu */
	pthread_mutex_t lock; /* owner[] and serving (thread lifetime) */
	struct svc_thread *owner[UVM_MAX_VCPUS];
	atomic_uint_fast64_t served, deferred, exits, missed, sleeps, done_exit;
};

/* ---- whitelist ---- */

bool svc_fast_allowed(uint64_t nr, const uint64_t a[6])
{
	switch (nr) {
	case SYS_read:
	case SYS_write:
	case SYS_readv:
	case SYS_writev:
	case SYS_pread64:
	case SYS_pwrite64:
	case SYS_recvfrom:
	case SYS_sendto:
	case SYS_recvmsg:
	case SYS_sendmsg:
	case SYS_accept4:
	case SYS_epoll_wait:
	case SYS_poll:
		return true;
	case SYS_epoll_pwait:
		return a[4] == 0; /* a signal mask: the vCPU thread swaps and restores it */
	case SYS_ppoll:
		return a[3] == 0;
	default:
		return false;
	}
}

/* ---- stub ---- */

/* Machine code of the fast stub (assembled from bench/exitless-stub.S with
 * `as --64`; rel32 targets of "slow" (the doorbell stub) and the spin count
 * patched in svc_fast_init). Runs at UVM_FAST_STUB, in ring 3 (kvm_pvm) or
 * ring 0 (VT-x/SVM), with GS = this vCPU's slot; uses no stack and no
 * register but RAX until the return tail. */
static const uint8_t fast_stub[] = {
    0x48, 0x3d, 0xff, 0x01, 0x00, 0x00, 0x0f, 0x87, 0x00, 0x00, 0x00, 0x00, 0x0f, 0xa3, 0x04, 0x25,
    0x40, 0x00, 0x06, 0x00, 0x0f, 0x83, 0x00, 0x00, 0x00, 0x00, 0x83, 0x3c, 0x25, 0x00, 0x00, 0x06,
    0x00, 0x00, 0x0f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x65, 0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x00,
    0x00, 0x65, 0x48, 0x89, 0x3c, 0x25, 0x10, 0x00, 0x00, 0x00, 0x65, 0x48, 0x89, 0x34, 0x25, 0x18,
    0x00, 0x00, 0x00, 0x65, 0x48, 0x89, 0x14, 0x25, 0x20, 0x00, 0x00, 0x00, 0x65, 0x4c, 0x89, 0x14,
    0x25, 0x28, 0x00, 0x00, 0x00, 0x65, 0x4c, 0x89, 0x04, 0x25, 0x30, 0x00, 0x00, 0x00, 0x65, 0x4c,
    0x89, 0x0c, 0x25, 0x38, 0x00, 0x00, 0x00, 0x65, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0xb8, 0x44, 0x33, 0x22, 0x11, 0xf3, 0x90, 0x65, 0x83, 0x3c, 0x25, 0x00, 0x00,
    0x00, 0x00, 0x03, 0x0f, 0x84, 0x8d, 0x00, 0x00, 0x00, 0x65, 0x83, 0x3c, 0x25, 0x00, 0x00, 0x00,
    0x00, 0x04, 0x74, 0x68, 0x65, 0x83, 0x3c, 0x25, 0x00, 0x00, 0x00, 0x00, 0x05, 0x74, 0x47, 0xff,
    0xc8, 0x75, 0xd5, 0x31, 0xc0, 0x65, 0x87, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x83, 0xf8, 0x03,
    0x74, 0x64, 0x83, 0xf8, 0x04, 0x74, 0x45, 0x83, 0xf8, 0x05, 0x74, 0x2a, 0x83, 0xf8, 0x02, 0x75,
    0x47, 0xf3, 0x90, 0x65, 0x83, 0x3c, 0x25, 0x00, 0x00, 0x00, 0x00, 0x03, 0x74, 0x48, 0x65, 0x83,
    0x3c, 0x25, 0x00, 0x00, 0x00, 0x00, 0x04, 0x74, 0x23, 0x65, 0x83, 0x3c, 0x25, 0x00, 0x00, 0x00,
    0x00, 0x05, 0x74, 0x02, 0xeb, 0xdb, 0x65, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xb8, 0x01, 0x00, 0x42, 0x4e, 0xe9, 0x00, 0x00, 0x00, 0x00, 0x65, 0xc7, 0x04, 0x25,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x65, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00,
    0x00, 0xe9, 0x00, 0x00, 0x00, 0x00, 0x65, 0x48, 0x8b, 0x04, 0x25, 0x40, 0x00, 0x00, 0x00, 0x65,
    0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
#define STUB_TAIL 0x12b
/* ring 3 (kvm_pvm): lea -128(%rsp),%rsp; push %r11; popfq; lea 128(%rsp),%rsp;
 * jmp *%rcx (below the red zone; RFLAGS from R11 as sysret would) */
static const uint8_t tail_ring3[] = {0x48, 0x8d, 0x64, 0x24, 0x80, 0x41, 0x53, 0x9d, 0x48,
				     0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00, 0xff, 0xe1};
static const uint8_t tail_ring0[] = {0x48, 0x0f, 0x07}; /* sysretq */

_Static_assert(sizeof(fast_stub) == STUB_TAIL, "fast stub layout");

static void put_rel32(uint8_t *code, unsigned at, uint64_t target)
{
	int32_t rel = (int32_t)((int64_t)target - (int64_t)(UVM_FAST_STUB + at + 4));
	memcpy(code + at, &rel, 4);
}

static uint64_t env_u64(const char *name, uint64_t def, uint64_t lo, uint64_t hi)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v < lo || v > hi)
		return def;
	return v;
}

static bool mode_enabled(const struct svc_vm *vm)
{
	const char *e = getenv("NUBIS_SVC_EXITLESS");
	if (e && *e)
		return strcmp(e, "0") != 0;
	switch (vm->cfg.syscall_mode) {
	case SVC_SYSCALL_POLL:
		return true;
	case SVC_SYSCALL_EXIT:
		return false;
	default:
		/* auto: a server thread needs a host CPU of its own */
		return sysconf(_SC_NPROCESSORS_ONLN) >= SVC_FAST_AUTO_MIN_CPUS;
	}
}

/* The host CPU the server runs on (NUBIS_SVC_POLL_CPU, default the last
 * one allowed; -1 or a single allowed CPU: no pinning). Pinned, a futex
 * wake-up from a vCPU thread cannot pull the server onto the waker's CPU
 * (wake-affine), where the two would take turns instead of running side by
 * side; the vCPU threads in turn keep off that CPU (svc_fast_attach). */
static int pick_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) < 2)
		return -1;
	const char *e = getenv("NUBIS_SVC_POLL_CPU");
	long want = e && *e ? strtol(e, NULL, 10) : -2;
	if (want == -1)
		return -1;
	int cpu = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && (want < 0 || c == want))
			cpu = c;
	return cpu;
}

/* Keep the calling thread on (@only) or off the server's CPU. */
static void pin(const struct svc_fast *fx, bool only)
{
	cpu_set_t set;
	if (fx->cpu < 0 || sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	if (only) {
		CPU_ZERO(&set);
		CPU_SET(fx->cpu, &set);
	} else {
		CPU_CLR(fx->cpu, &set);
		if (CPU_COUNT(&set) == 0)
			return;
	}
	sched_setaffinity(0, sizeof(set), &set);
}

int svc_fast_init(struct svc_vm *vm)
{
	if (!mode_enabled(vm))
		return 0;
	struct svc_fast *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -ENOMEM;
	fx->vm = vm;
	fx->awake = gmem_ptr(vm->mem, UVM_FAST_CTRL, 4096);
	fx->slots = gmem_ptr(vm->mem, UVM_FAST_SLOTS, UVM_MAX_VCPUS * SVC_FAST_SLOT_SZ);
	uint8_t *code = gmem_ptr(vm->mem, UVM_FAST_STUB, 0x200);
	if (!fx->awake || !fx->slots || !code) {
		free(fx);
		return -EFAULT;
	}
	fx->idle_ns =
	    env_u64("NUBIS_SVC_POLL_IDLE_US", FAST_IDLE_NS_DEFAULT / 1000, 1, 1000000) * 1000;
	uint32_t spin = (uint32_t)env_u64("NUBIS_SVC_POLL_SPIN", FAST_SPIN_DEFAULT, 1, 10000000);
	fx->cpu = pick_cpu();
	fx->pin_vcpus = !getenv("NUBIS_SVC_POLL_VCPU_ANY");
	pthread_mutex_init(&fx->lock, NULL);
	memset(fx->slots, 0, UVM_MAX_VCPUS * SVC_FAST_SLOT_SZ);
	__atomic_store_n(fx->awake, 0, __ATOMIC_SEQ_CST);
	memcpy(code, fast_stub, sizeof(fast_stub));
	static const unsigned rel_slow[] = {0x08, 0x16, 0x24, 0xf8, 0x112};
	for (size_t i = 0; i < sizeof(rel_slow) / sizeof(rel_slow[0]); i++)
		put_rel32(code, rel_slow[i], UVM_SYSCALL_STUB);
	memcpy(code + 0x74, &spin, 4);
	/* the stub offers only whitelisted numbers (the server checks again) */
	uint8_t *bitmap = (uint8_t *)fx->awake + 64;
	uint64_t zero[6] = {0};
	for (unsigned nr = 0; nr < 512; nr++)
		if (svc_fast_allowed(nr, zero))
			bitmap[nr / 8] |= (uint8_t)(1u << (nr % 8));
	if (vm->fv.syscall_cpl == 3)
		memcpy(code + STUB_TAIL, tail_ring3, sizeof(tail_ring3));
	else
		memcpy(code + STUB_TAIL, tail_ring0, sizeof(tail_ring0));
	vm->fast = fx;
	return 0;
}

/* ---- per-vCPU setup ---- */

int svc_fast_vcpu(struct svc_thread *t)
{
	struct svc_fast *fx = t->vm->fast;
	if (!fx)
		return 0;
	int id = t->cpu->id;
	if (id < 0 || id >= UVM_MAX_VCPUS)
		return -EINVAL;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 2;
	bool own_gs = t->gs_base != 0;
	m.e[0].index = MSR_LSTAR;
	m.e[0].data = own_gs ? UVM_SYSCALL_STUB : UVM_FAST_STUB;
	m.e[1].index = MSR_GS_BASE;
	m.e[1].data = own_gs ? t->gs_base : UVM_FAST_SLOTS + SVC_FAST_SLOT_SZ * (uint64_t)id;
	if (ioctl(t->cpu->fd, KVM_SET_MSRS, &m) != 2)
		return -EIO;
	return 0;
}

void svc_fast_attach(struct svc_thread *t, bool on)
{
	struct svc_fast *fx = t->vm->fast;
	if (!fx || !t->cpu || t->cpu->id < 0 || t->cpu->id >= UVM_MAX_VCPUS)
		return;
	int id = t->cpu->id;
	if (on && fx->pin_vcpus)
		pin(fx, false); /* on the vCPU thread itself */
	pthread_mutex_lock(&fx->lock);
	fx->owner[id] = on ? t : NULL;
	/* a request left by a previous thread on this vCPU is void */
	__atomic_store_n((uint32_t *)(fx->slots + SVC_FAST_SLOT_SZ * (size_t)id), SVC_FAST_IDLE,
			 __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&fx->lock);
}

static long futex_word(atomic_uint *w, int op, unsigned val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op | FUTEX_PRIVATE_FLAG, val, ts, NULL, 0);
}

bool svc_fast_exit(struct svc_thread *t, uint64_t nr, long *ret)
{
	struct svc_fast *fx = t->vm->fast;
	if (!fx)
		return false;
	atomic_fetch_add_explicit(&fx->exits, 1, memory_order_relaxed);
	if (!__atomic_load_n(fx->awake, __ATOMIC_RELAXED) && !atomic_load(&fx->wake)) {
		atomic_store(&fx->wake, 1);
		futex_word(&fx->wake, FUTEX_WAKE, 1, NULL);
	}
	if (nr != SVC_NR_FASTRET) {
		const uint64_t a[6] = {t->u.rdi, t->u.rsi, t->u.rdx, t->u.r10, t->u.r8, t->u.r9};
		if (svc_fast_allowed(nr, a))
			atomic_fetch_add_explicit(&fx->missed, 1, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&fx->done_exit, 1, memory_order_relaxed);
	uint64_t r;
	const uint8_t *s = fx->slots + SVC_FAST_SLOT_SZ * (size_t)t->cpu->id;
	memcpy(&r, s + offsetof(struct svc_fast_slot, result), 8);
	*ret = (long)r;
	return true;
}

/* ---- the server ---- */

static void answer(uint32_t *state, uint64_t *result, uint32_t st, long r)
{
	if (result)
		__atomic_store_n(result, (uint64_t)r, __ATOMIC_RELAXED);
	__atomic_store_n(state, st, __ATOMIC_RELEASE);
}

/* Serve slot @id, already claimed (BUSY). */
static void serve(struct svc_fast *fx, int id)
{
	struct svc_vm *vm = fx->vm;
	uint8_t *raw = fx->slots + SVC_FAST_SLOT_SZ * (size_t)id;
	uint32_t *state = (uint32_t *)raw;
	uint64_t *result = (uint64_t *)(raw + offsetof(struct svc_fast_slot, result));
	struct svc_fast_slot req;
	memcpy(&req, raw, sizeof(req)); /* the one read of the guest's request */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);

	pthread_mutex_lock(&fx->lock);
	struct svc_thread *t = fx->owner[id];
	svc_sys_fn f = NULL;
	if (t && !t->exited && !__atomic_load_n(&vm->paused, __ATOMIC_ACQUIRE) &&
	    !svc_signal_interrupted(t) && svc_fast_allowed(req.nr, req.a))
		f = svc_sys_lookup((unsigned)req.nr);
	if (!f) {
		pthread_mutex_unlock(&fx->lock);
		atomic_fetch_add_explicit(&fx->deferred, 1, memory_order_relaxed);
		answer(state, NULL, SVC_FAST_DEFER, 0);
		return;
	}
	t->fast_wouldblock = false;
	t->fast_call = true;
	long r = f(t, req.a);
	t->fast_call = false;
	if (t->fast_wouldblock && r < 0) {
		pthread_mutex_unlock(&fx->lock);
		atomic_fetch_add_explicit(&fx->deferred, 1, memory_order_relaxed);
		answer(state, NULL, SVC_FAST_DEFER, 0);
		return;
	}
	bool sig = svc_signal_interrupted(t);
	pthread_mutex_unlock(&fx->lock);
	atomic_fetch_add_explicit(&vm->counts[req.nr], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&fx->served, 1, memory_order_relaxed);
	answer(state, result, sig ? SVC_FAST_DONE_EXIT : SVC_FAST_DONE, r);
}

static int scan(struct svc_fast *fx)
{
	int n = 0;
	for (int i = 0; i < UVM_MAX_VCPUS; i++) {
		uint32_t *st = (uint32_t *)(fx->slots + SVC_FAST_SLOT_SZ * (size_t)i);
		uint32_t want = SVC_FAST_REQ;
		if (__atomic_load_n(st, __ATOMIC_RELAXED) != SVC_FAST_REQ ||
		    !__atomic_compare_exchange_n(st, &want, SVC_FAST_BUSY, false, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		serve(fx, i);
		n++;
	}
	return n;
}

static bool should_stop(struct svc_fast *fx)
{
	return atomic_load(&fx->stop) || atomic_load(&fx->vm->exiting);
}

static void *server_main(void *arg)
{
	struct svc_fast *fx = arg;
	pin(fx, true);
	uint64_t last = nb_now_ns();
	__atomic_store_n(fx->awake, 1, __ATOMIC_SEQ_CST);
	unsigned spins = 0;
	while (!should_stop(fx)) {
		bool paused = __atomic_load_n(&fx->vm->paused, __ATOMIC_ACQUIRE);
		if (!paused && scan(fx) > 0) {
			last = nb_now_ns();
			spins = 0;
			continue;
		}
		__builtin_ia32_pause();
		if (!paused && (++spins & 63))
			continue;
		if (!paused && nb_now_ns() - last < fx->idle_ns)
			continue;
		/* idle (or paused): sleep until a doorbell exit wakes us */
		atomic_store(&fx->wake, 0);
		__atomic_store_n(fx->awake, 0, __ATOMIC_SEQ_CST);
		if (!paused && scan(fx) > 0) {
			/* a request posted before the flag went down */
			__atomic_store_n(fx->awake, 1, __ATOMIC_SEQ_CST);
			last = nb_now_ns();
			continue;
		}
		atomic_fetch_add_explicit(&fx->sleeps, 1, memory_order_relaxed);
		struct timespec ts = {0, FAST_SLEEP_CHECK_NS};
		while (!atomic_load(&fx->wake) && !should_stop(fx))
			futex_word(&fx->wake, FUTEX_WAIT, 0, &ts);
		if (__atomic_load_n(&fx->vm->paused, __ATOMIC_ACQUIRE))
			continue; /* stays asleep: the flag stays down while paused */
		__atomic_store_n(fx->awake, 1, __ATOMIC_SEQ_CST);
		last = nb_now_ns();
		spins = 0;
	}
	__atomic_store_n(fx->awake, 0, __ATOMIC_SEQ_CST);
	return NULL;
}

int svc_fast_start(struct svc_vm *vm)
{
	struct svc_fast *fx = vm->fast;
	if (!fx)
		return 0;
	int rc = pthread_create(&fx->thr, NULL, server_main, fx);
	if (rc)
		return -rc;
	fx->running = true;
	return 0;
}

void svc_fast_fini(struct svc_vm *vm)
{
	struct svc_fast *fx = vm->fast;
	if (!fx)
		return;
	if (fx->running) {
		atomic_store(&fx->stop, true);
		atomic_store(&fx->wake, 1);
		futex_word(&fx->wake, FUTEX_WAKE, 1, NULL);
		pthread_join(fx->thr, NULL);
	}
	pthread_mutex_destroy(&fx->lock);
	free(fx);
	vm->fast = NULL;
}

void svc_fast_report(struct svc_vm *vm, FILE *f)
{
	struct svc_fast *fx = vm->fast;
	if (!fx) {
		fprintf(f, "exitless: off (every system call is a VM exit)\n");
		return;
	}
	fprintf(f,
		"exitless: %llu served without an exit, %llu deferred, %llu doorbell exits "
		"(%llu of them fast-path calls: server asleep, busy or deferred), server slept "
		"%llu times, %llu done-exit (served, then an exit for a signal)\n",
		(unsigned long long)atomic_load(&fx->served),
		(unsigned long long)atomic_load(&fx->deferred),
		(unsigned long long)atomic_load(&fx->exits),
		(unsigned long long)atomic_load(&fx->missed),
		(unsigned long long)atomic_load(&fx->sleeps),
		(unsigned long long)atomic_load(&fx->done_exit));
}
