/* SPDX-License-Identifier: MIT */
/*
 * Guest threads: one vCPU and one host thread each, the vCPU loop, clone,
 * thread exit, and the interruptible waits (svc_wait_fds, svc_sleep).
 *
 * Waking a thread ("kick"): bump its wseq word and FUTEX_WAKE it (futex and
 * sleep waits block on that word), write its eventfd if not yet written
 * (svc_wait_fds polls it), and if it is inside KVM_RUN send it the kick
 * signal, whose handler sets immediate_exit on the kvm_run of the thread it
 * lands on. The condition itself (a deliverable signal, exit, pause) is
 * always stored before the kick and checked after every wake-up.
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "svc_int.h"
#include "vdso.h"

#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define CR4_TSD	    (1ull << 2)

static __thread struct kvm_run *volatile tls_run;

static void kick_handler(int sig)
{
	(void)sig;
	struct kvm_run *r = tls_run;
	if (r)
		r->immediate_exit = 1;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static void kick_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sa.sa_flags = SA_RESTART; /* host calls of the monitor restart; KVM_RUN does not */
	sigemptyset(&sa.sa_mask);
	sigaction(SVC_KICK_SIGNAL, &sa, NULL);
}

void svc_thread_global_init(void)
{
	pthread_once(&kick_once, kick_install);
}

static long futex_host(atomic_uint *w, int op, unsigned val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op | FUTEX_PRIVATE_FLAG, val, ts, NULL, 0);
}

void svc_thread_kick(struct svc_thread *t)
{
	atomic_fetch_add(&t->wseq, 1);
	futex_host(&t->wseq, FUTEX_WAKE, 1, NULL);
	if (!atomic_exchange(&t->kick_armed, true)) {
		uint64_t one = 1;
		ssize_t r = write(t->kick_fd, &one, 8);
		(void)r;
	}
	if (atomic_load(&t->in_guest))
		pthread_kill(t->host, SVC_KICK_SIGNAL);
}

static void kick_drain(struct svc_thread *t)
{
	uint64_t v;
	ssize_t r = read(t->kick_fd, &v, 8);
	(void)r;
	atomic_store(&t->kick_armed, false);
}

int svc_thread_block(struct svc_thread *t, unsigned seq, uint64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;
	if (deadline_ns) {
		uint64_t now = nb_now_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		uint64_t d = deadline_ns - now;
		ts.tv_sec = (time_t)(d / 1000000000ull);
		ts.tv_nsec = (long)(d % 1000000000ull);
		tsp = &ts;
	}
	long r = futex_host(&t->wseq, FUTEX_WAIT, seq, tsp);
	if (r < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

/* svc_wait_fds() for a call the exitless server makes for @t: one poll,
 * never a wait (see exitless.c). */
static int wait_fds_fast(struct svc_thread *t, struct pollfd *fds, unsigned n, int64_t timeout_ns)
{
	struct timespec zero = {0, 0};
	int r = n ? ppoll(fds, n, &zero, NULL) : 0;
	if (r < 0)
		r = errno == EINTR ? 0 : -errno;
	if (r != 0 || timeout_ns == 0)
		return r;
	t->fast_wouldblock = true;
	return -EINTR;
}

int svc_wait_fds(struct svc_thread *t, struct pollfd *fds, unsigned n, int64_t timeout_ns)
{
	if (t->fast_call)
		return wait_fds_fast(t, fds, n, timeout_ns);
	struct pollfd small[17], *pf = small;
	if (n > 16) {
		pf = malloc((n + 1) * sizeof(*pf));
		if (!pf)
			return -ENOMEM;
	}
	if (n)
		memcpy(pf, fds, n * sizeof(*pf));
	pf[n] = (struct pollfd){.fd = t->kick_fd, .events = POLLIN};
	uint64_t deadline = 0;
	if (timeout_ns >= 0)
		deadline = nb_now_ns() + (uint64_t)timeout_ns;
	int ret;
	for (;;) {
		if (svc_signal_interrupted(t)) {
			ret = -EINTR;
			break;
		}
		struct timespec ts, *tsp = NULL;
		if (timeout_ns >= 0) {
			uint64_t now = nb_now_ns();
			uint64_t d = now >= deadline ? 0 : deadline - now;
			ts.tv_sec = (time_t)(d / 1000000000ull);
			ts.tv_nsec = (long)(d % 1000000000ull);
			tsp = &ts;
		}
		int r = ppoll(pf, n + 1, tsp, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pf[n].revents) {
			kick_drain(t);
			r--;
			pf[n].revents = 0;
			if (r == 0)
				continue; /* recheck why we were kicked */
		}
		if (r == 0 && timeout_ns >= 0 && nb_now_ns() < deadline)
			continue;
		for (unsigned i = 0; i < n; i++)
			fds[i].revents = pf[i].revents;
		ret = r;
		break;
	}
	if (pf != small)
		free(pf);
	return ret;
}

int svc_sleep(struct svc_thread *t, uint64_t ns, uint64_t *left)
{
	uint64_t start = nb_now_ns();
	if (ns > (uint64_t)INT64_MAX)
		ns = (uint64_t)INT64_MAX;
	int r = svc_wait_fds(t, NULL, 0, (int64_t)ns);
	if (r == -EINTR) {
		uint64_t el = nb_now_ns() - start;
		if (left)
			*left = el < ns ? ns - el : 0;
		return -EINTR;
	}
	if (left)
		*left = 0;
	return 0;
}

struct svc_thread *svc_thread_by_tid(struct svc_vm *vm, int tid)
{
	for (unsigned i = 0; i < vm->cfg.max_threads; i++)
		if (vm->threads[i] && vm->threads[i]->tid == tid && !vm->threads[i]->exited)
			return vm->threads[i];
	return NULL;
}

int svc_thread_set_segbase(struct svc_thread *t, int gs, uint64_t base)
{
	if (base >= (1ull << 47))
		return -EPERM;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = gs ? MSR_GS_BASE : MSR_FS_BASE;
	m.e.data = base;
	if (ioctl(t->cpu->fd, KVM_SET_MSRS, &m) != 1)
		return -EINVAL;
	if (gs)
		t->gs_base = base;
	else
		t->fs_base = base;
	/* exitless: a GS base of its own takes the thread off the fast stub */
	return gs ? svc_fast_vcpu(t) : 0;
}

void svc_vm_exit(struct svc_vm *vm, int status)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->status_set) {
		vm->status = status;
		vm->status_set = true;
	}
	atomic_store(&vm->exiting, true);
	for (unsigned i = 0; i < vm->cfg.max_threads; i++)
		if (vm->threads[i])
			svc_thread_kick(vm->threads[i]);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	pthread_mutex_lock(&vm->gate_lock);
	pthread_cond_broadcast(&vm->gate_cond);
	pthread_mutex_unlock(&vm->gate_lock);
}

/* ---- thread exit: robust list, clear_child_tid ---- */

#define ROBUST_LIMIT 2048

static void robust_one(struct svc_thread *t, uint64_t ua)
{
	uint32_t *w = svc_uptr(t, ua, 4);
	if (!w || (ua & 3))
		return;
	uint32_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);
	for (;;) {
		if ((v & FUTEX_TID_MASK) != (uint32_t)t->tid)
			return;
		uint32_t nv = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
		if (__atomic_compare_exchange_n(w, &v, nv, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
	}
	if (v & FUTEX_WAITERS)
		svc_futex_wake(t->vm, ua, 1, FUTEX_BITSET_MATCH_ANY);
}

static void robust_walk(struct svc_thread *t)
{
	struct {
		uint64_t next;
		int64_t off;
		uint64_t pending;
	} h;
	if (!t->robust_head || svc_copy_in(t, &h, t->robust_head, sizeof(h)))
		return;
	uint64_t e = h.next;
	for (int n = 0; n < ROBUST_LIMIT && e != t->robust_head; n++) {
		uint64_t next;
		if (svc_copy_in(t, &next, e & ~1ull, 8))
			break;
		if ((e & ~1ull) != (h.pending & ~1ull))
			robust_one(t, (e & ~1ull) + (uint64_t)h.off);
		e = next;
	}
	if (h.pending)
		robust_one(t, (h.pending & ~1ull) + (uint64_t)h.off);
}

void svc_thread_exit(struct svc_thread *t, int code)
{
	robust_walk(t);
	if (t->clear_child_tid) {
		uint32_t zero = 0;
		if (svc_copy_out(t, t->clear_child_tid, &zero, 4) == 0)
			svc_futex_wake(t->vm, t->clear_child_tid, 1, FUTEX_BITSET_MATCH_ANY);
	}
	pthread_mutex_lock(&t->vm->lock);
	t->exited = true;
	t->exit_code = code;
	pthread_mutex_unlock(&t->vm->lock);
}

/* ---- the vCPU loop ---- */

static const struct {
	int sig, code;
} exc_sig[32] = {
    [0] = {SIGFPE, FPE_INTDIV},	 [1] = {SIGTRAP, TRAP_TRACE},	[2] = {SIGSEGV, SI_KERNEL},
    [3] = {SIGTRAP, SI_KERNEL},	 [4] = {SIGSEGV, SI_KERNEL},	[5] = {SIGSEGV, SI_KERNEL},
    [6] = {SIGILL, ILL_ILLOPN},	 [7] = {SIGFPE, SI_KERNEL},	[8] = {SIGSEGV, SI_KERNEL},
    [10] = {SIGSEGV, SI_KERNEL}, [11] = {SIGBUS, SI_KERNEL},	[12] = {SIGBUS, SI_KERNEL},
    [13] = {SIGSEGV, SI_KERNEL}, [14] = {SIGSEGV, SEGV_MAPERR}, [16] = {SIGFPE, FPE_FLTINV},
    [17] = {SIGBUS, BUS_ADRALN}, [18] = {SIGBUS, SI_KERNEL},	[19] = {SIGFPE, FPE_FLTINV},
};

static void fatal(struct svc_thread *t, const char *what)
{
	const struct kvm_regs *r = &t->cpu->run->s.regs.regs;
	nb_log(NB_LOG_ERROR, "service VM: thread %d: %s at rip=%#llx rsp=%#llx", t->tid, what,
	       (unsigned long long)r->rip, (unsigned long long)r->rsp);
	svc_vm_exit(t->vm, 128 + SIGSEGV);
}

/* An exception stub ran hlt: decode its iret frame into ->u. */
static void on_exception(struct svc_thread *t, int vec)
{
	struct svc_vm *vm = t->vm;
	struct kvm_regs *r = &t->cpu->run->s.regs.regs;
	uint64_t frame[6] = {0};
	int has_err = x86_exc_has_error_code(vec);
	if (gmem_read(vm->mem, r->rsp, frame, sizeof(frame)) < 0) {
		fatal(t, "exception with a bad ring-0 stack");
		return;
	}
	uint64_t errcode = has_err ? frame[0] : 0, *f = frame + has_err;
	if ((f[1] & 3) != 3) {
		fatal(t, "exception in a monitor stub");
		return;
	}
	t->u = *r;
	t->u.rip = f[0];
	t->u.rflags = f[2];
	t->u.rsp = f[3];
	t->ctx = SVC_CTX_EXC;
	t->exc_frame = r->rsp + 8 * (uint64_t)has_err;
	uint8_t insn[3] = {0};
	if (vec == 13 && errcode == 0 && svc_copy_in(t, insn, f[0], 3) == 0 && insn[0] == 0x0f &&
	    (insn[1] == 0x31 || (insn[1] == 0x01 && insn[2] == 0xf9))) {
		/* rdtsc/rdtscp when the host forces CR4.TSD: the guest's TSC (as
		 * the vDSO's calibration sees it) */
		uint64_t tsc;
		if (svc_guest_tsc(t, &tsc) < 0)
			tsc = __builtin_ia32_rdtsc();
		t->u.rax = (uint32_t)tsc;
		t->u.rdx = tsc >> 32;
		if (insn[1] == 0x01)
			t->u.rcx = 0;
		t->u.rip += insn[1] == 0x31 ? 2 : 3;
		return;
	}
	int sig = exc_sig[vec].sig ? exc_sig[vec].sig : SIGSEGV;
	int code = exc_sig[vec].sig ? exc_sig[vec].code : SI_KERNEL;
	uint64_t addr = 0;
	if (vec == 14) {
		struct kvm_sregs sr;
		if (ioctl(t->cpu->fd, KVM_GET_SREGS, &sr) == 0)
			addr = sr.cr2;
		code = (errcode & 1) ? SEGV_ACCERR : SEGV_MAPERR;
	} else if (sig == SIGFPE || sig == SIGILL) {
		addr = f[0];
	}
	svc_signal_fault(t, sig, code, addr, vec, errcode);
}

/* Move ->u into the vCPU for the next KVM_RUN, according to ->ctx. */
static int commit(struct svc_thread *t)
{
	struct kvm_run *run = t->cpu->run;
	struct kvm_regs *r = &run->s.regs.regs;
	int cpl3 = t->vm->fv.syscall_cpl == 3;
	/* whatever the guest asked, ring 3 runs with IF set and IOPL 0 */
	t->u.rflags = (t->u.rflags & 0x240dd5ull) | 0x202ull;
	switch (t->ctx) {
	case SVC_CTX_STUB:
		return 0;
	case SVC_CTX_USER:
		*r = t->u;
		break;
	case SVC_CTX_SYSCALL:
		if (cpl3) {
			*r = t->u;
		} else if (t->full_restore) {
			/* VT-x/SVM: leave the stub's ring 0 without sysret, so
			 * RCX and R11 come back exactly */
			struct kvm_sregs sr;
			if (ioctl(t->cpu->fd, KVM_GET_SREGS, &sr) < 0)
				return -errno;
			sr.cs.selector = UVM_SEL_UCODE;
			sr.cs.dpl = 3;
			sr.ss.selector = UVM_SEL_UDATA;
			sr.ss.dpl = 3;
			if (ioctl(t->cpu->fd, KVM_SET_SREGS, &sr) < 0)
				return -errno;
			*r = t->u;
		} else {
			uint64_t rip = r->rip;
			*r = t->u;
			r->rip = rip;
			r->rcx = t->u.rip;
			r->r11 = t->u.rflags;
		}
		break;
	case SVC_CTX_EXC: {
		uint64_t rip = r->rip, rsp = r->rsp;
		uint64_t f[4];
		if (gmem_read(t->vm->mem, t->exc_frame, f, sizeof(f)) < 0)
			return -EFAULT;
		f[0] = t->u.rip;
		f[2] = t->u.rflags;
		f[3] = t->u.rsp;
		if (gmem_write(t->vm->mem, t->exc_frame, f, sizeof(f)) < 0)
			return -EFAULT;
		*r = t->u;
		r->rip = rip;
		r->rsp = rsp;
		break;
	}
	}
	run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	t->full_restore = false;
	return 0;
}

/* ---- --cpus: a gate in front of KVM_RUN ----
 * At most cfg.cpus threads run guest code at once, admitted in arrival
 * order (tickets). The guest gets no timer interrupts, so a thread spinning
 * in ring 3 would hold its slot forever (and a spin lock's owner could
 * never run): a waiter that has waited one time slice kicks the holder that
 * has run longest out of KVM_RUN; it releases its slot and queues again. */
#define GATE_SLICE_NS 10000000ull

static void gate_kick_oldest(struct svc_vm *vm)
{
	struct svc_thread *old = NULL;
	for (unsigned i = 0; i < UVM_MAX_VCPUS; i++) {
		struct svc_thread *h = vm->gate_holder[i];
		if (h && (!old || h->gate_since < old->gate_since))
			old = h;
	}
	if (old && nb_now_ns() - old->gate_since >= GATE_SLICE_NS)
		svc_thread_kick(old);
}

static bool gate_enter(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	if (!vm->cpu_gate)
		return true;
	pthread_mutex_lock(&vm->gate_lock);
	uint64_t my = vm->gate_tail++;
	bool ok = true;
	while (!(vm->gate_free > 0 && my == vm->gate_head)) {
		if (atomic_load(&vm->exiting)) {
			ok = false;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)GATE_SLICE_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&vm->gate_cond, &vm->gate_lock, &ts) == ETIMEDOUT &&
		    my == vm->gate_head)
			gate_kick_oldest(vm);
	}
	if (ok) {
		vm->gate_free--;
		vm->gate_head++;
		for (int i = 0; i < UVM_MAX_VCPUS; i++)
			if (!vm->gate_holder[i]) {
				vm->gate_holder[i] = t;
				t->gate_slot = i;
				break;
			}
		t->gate_since = nb_now_ns();
	} else {
		/* leave the queue in order: later tickets see exiting too */
		vm->gate_head++;
	}
	pthread_cond_broadcast(&vm->gate_cond);
	pthread_mutex_unlock(&vm->gate_lock);
	return ok;
}

static void gate_leave(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	if (!vm->cpu_gate || t->gate_slot < 0)
		return;
	pthread_mutex_lock(&vm->gate_lock);
	vm->gate_holder[t->gate_slot] = NULL;
	t->gate_slot = -1;
	vm->gate_free++;
	pthread_cond_broadcast(&vm->gate_cond);
	pthread_mutex_unlock(&vm->gate_lock);
}

static void park_if_paused(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	for (;;) {
		atomic_store(&t->in_guest, 1);
		if (!vm->paused || atomic_load(&vm->exiting))
			return;
		atomic_store(&t->in_guest, 0);
		pthread_mutex_lock(&vm->lock);
		while (vm->paused && !atomic_load(&vm->exiting))
			pthread_cond_wait(&vm->cond, &vm->lock);
		pthread_mutex_unlock(&vm->lock);
	}
}

static void run_loop(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	struct kvm_run *run = t->cpu->run;
	long nr = -1;
	for (;;) {
		if (atomic_load(&vm->exiting) || t->exited)
			break;
		if (t->ctx != SVC_CTX_STUB)
			svc_signal_deliver(t, nr);
		nr = -1;
		if (atomic_load(&vm->exiting) || t->exited)
			break;
		if (commit(t) < 0) {
			fatal(t, "cannot resume the thread");
			break;
		}
		if (!gate_enter(t))
			break;
		park_if_paused(t);
		if (atomic_load(&vm->exiting)) {
			atomic_store(&t->in_guest, 0);
			gate_leave(t);
			break;
		}
		int rc = ioctl(t->cpu->fd, KVM_RUN, 0);
		int e = errno;
		atomic_store(&t->in_guest, 0);
		gate_leave(t);
		run->kvm_dirty_regs = 0;
		struct kvm_regs *r = &run->s.regs.regs;
		if (rc < 0) {
			if (e != EINTR && e != EAGAIN) {
				nb_log(NB_LOG_ERROR, "service VM: KVM_RUN failed: %s", strerror(e));
				svc_vm_exit(vm, 128 + SIGKILL);
				break;
			}
			run->immediate_exit = 0;
			t->ctx = r->rip >= UVM_USER_BASE ? SVC_CTX_USER : SVC_CTX_STUB;
			if (t->ctx == SVC_CTX_USER)
				t->u = *r;
			continue;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			if (run->mmio.is_write &&
			    x86_uvm_is_syscall_exit(run->mmio.phys_addr, r->rip)) {
				t->u = *r;
				t->u.rip = r->rcx;
				t->u.rflags = r->r11;
				t->ctx = SVC_CTX_SYSCALL;
				nr = (long)t->u.rax;
				long fr;
				if (svc_fast_exit(t, t->u.rax, &fr)) {
					/* served by the exitless server; exit for a signal */
					t->u.rax = (uint64_t)fr;
					nr = -1;
					break;
				}
				svc_sys_dispatch(t);
				break;
			}
			/* a user access to the doorbell page other than the stub's */
			fatal(t, "access to the monitor's doorbell page");
			break;
		case KVM_EXIT_HLT: {
			int vec = x86_uvm_exc_vector(r->rip);
			if (vec < 0) {
				fatal(t, "unexpected halt");
				break;
			}
			on_exception(t, vec);
			break;
		}
		case KVM_EXIT_INTR:
			run->immediate_exit = 0;
			t->ctx = r->rip >= UVM_USER_BASE ? SVC_CTX_USER : SVC_CTX_STUB;
			if (t->ctx == SVC_CTX_USER)
				t->u = *r;
			break;
		case KVM_EXIT_IO:
			fatal(t, "port I/O");
			break;
		case KVM_EXIT_SHUTDOWN:
			fatal(t, "triple fault");
			break;
		default:
			fatal(t, "unexpected VM exit");
			break;
		}
	}
}

/* ---- thread creation ---- */

struct start {
	struct svc_thread *t;
	struct kvm_xsave *xsave; /* parent's FPU state, or NULL */
	bool main;
	int result;
	bool done;
};

static struct svc_thread *thread_new(struct svc_vm *vm)
{
	struct svc_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->vm = vm;
	t->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->kick_fd < 0) {
		free(t);
		return NULL;
	}
	t->altstack_flags = SS_DISABLE;
	t->gate_slot = -1;
	return t;
}

static void thread_free(struct svc_thread *t)
{
	if (!t)
		return;
	close(t->kick_fd);
	free(t);
}

/* Take an idle vCPU or make one. Caller holds vm->lock. */
static int cpu_get(struct svc_vm *vm, struct vcpu **out, bool *reused)
{
	*reused = vm->nidle > 0;
	if (vm->nidle) {
		*out = vm->idle_cpu[--vm->nidle];
		return 0;
	}
	if (vm->ncpus >= UVM_MAX_VCPUS)
		return -EAGAIN;
	int rc = vcpu_create(vm->fv.vm, (int)vm->ncpus, out);
	if (rc)
		return rc == -EINVAL ? -EAGAIN : rc;
	vm->ncpus++;
	svc_vdso_vcpu_added(vm->vdso, *out); /* vdso helper: same TSC as vCPU 0? */
	return 0;
}

/* Real time: rdtsc runs natively in every thread (the same guest TSC in
 * all of them) unless the host forces CR4.TSD, when on_exception emulates. */
static void tsc_native(struct vcpu *c)
{
	struct kvm_sregs sr;
	if (ioctl(c->fd, KVM_GET_SREGS, &sr) == 0) {
		sr.cr4 &= ~CR4_TSD;
		ioctl(c->fd, KVM_SET_SREGS, &sr);
	}
}

static int cpu_setup(struct svc_thread *t, const struct kvm_xsave *xs, bool reused)
{
	int rc = reused ? x86_uvm_vcpu_reset(t->cpu) : x86_uvm_vcpu_init(t->cpu);
	if (rc)
		return rc;
	tsc_native(t->cpu);
	if (t->fs_base && (rc = svc_thread_set_segbase(t, 0, t->fs_base)))
		return rc;
	if (t->gs_base && (rc = svc_thread_set_segbase(t, 1, t->gs_base)))
		return rc;
	if (xs && ioctl(t->cpu->fd, KVM_SET_XSAVE, xs) < 0)
		return -errno;
	return svc_fast_vcpu(t);
}

static void thread_finish(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	pthread_mutex_lock(&vm->lock);
	vm->threads[t->slot] = NULL;
	vm->nthreads--;
	if (t->cpu)
		vm->idle_cpu[vm->nidle++] = t->cpu;
	if (vm->nthreads == 0 && !vm->status_set) {
		vm->status = t->exit_code & 0xff;
		vm->status_set = true;
		atomic_store(&vm->exiting, true);
	}
	vm->nhost--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void *thread_main(void *arg)
{
	struct start *st = arg;
	struct svc_thread *t = st->t;
	struct svc_vm *vm = t->vm;
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SVC_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
	int rc = 0;
	if (!st->main) {
		bool reused;
		pthread_mutex_lock(&vm->lock);
		rc = cpu_get(vm, &t->cpu, &reused);
		pthread_mutex_unlock(&vm->lock);
		if (!rc)
			rc = cpu_setup(t, st->xsave, reused);
		if (rc)
			nb_log(NB_LOG_DEBUG, "service VM: new thread: vCPU setup: %s",
			       strerror(-rc));
	}
	tls_run = rc ? NULL : t->cpu->run;
	pthread_mutex_lock(&vm->lock);
	st->result = rc;
	st->done = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (rc) {
		/* the creator undoes the slot and frees t */
		return NULL;
	}
	/* st belongs to the creator from here on */
	svc_fast_attach(t, true);
	run_loop(t);
	svc_fast_attach(t, false);
	tls_run = NULL;
	if (!t->exited && !atomic_load(&vm->exiting))
		t->exit_code = 0;
	thread_finish(t);
	thread_free(t);
	return NULL;
}

/* Reserve a slot and a tid. Caller holds vm->lock. */
static int slot_take(struct svc_vm *vm, struct svc_thread *t)
{
	if (vm->nthreads >= vm->cfg.max_threads)
		return -EAGAIN;
	for (unsigned i = 0; i < vm->cfg.max_threads; i++)
		if (!vm->threads[i]) {
			vm->threads[i] = t;
			t->slot = (int)i;
			vm->nthreads++;
			vm->nhost++;
			int tid = vm->next_tid++;
			if (vm->next_tid >= 0x3fffffff)
				vm->next_tid = SVC_PID + 1;
			t->tid = tid;
			return 0;
		}
	return -EAGAIN;
}

static void slot_undo(struct svc_vm *vm, struct svc_thread *t)
{
	vm->threads[t->slot] = NULL;
	vm->nthreads--;
	vm->nhost--;
	if (t->cpu)
		vm->idle_cpu[vm->nidle++] = t->cpu;
	t->cpu = NULL;
	pthread_cond_broadcast(&vm->cond);
}

static int spawn(struct svc_thread *t, struct start *st)
{
	struct svc_vm *vm = t->vm;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 1u << 20);
	/* the kick signal stays blocked until the thread has its kvm_run */
	sigset_t ss, old;
	sigemptyset(&ss);
	sigaddset(&ss, SVC_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &ss, &old);
	pthread_mutex_lock(&vm->lock);
	int rc = pthread_create(&t->host, &a, thread_main, st);
	pthread_attr_destroy(&a);
	if (rc) {
		slot_undo(vm, t);
		pthread_mutex_unlock(&vm->lock);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return -rc;
	}
	while (!st->done)
		pthread_cond_wait(&vm->cond, &vm->lock);
	rc = st->result;
	if (rc)
		slot_undo(vm, t);
	pthread_mutex_unlock(&vm->lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int svc_thread_start_main(struct svc_vm *vm, struct nb_error *err)
{
	struct svc_thread *t = thread_new(vm);
	if (!t)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	pthread_mutex_lock(&vm->lock);
	int rc = slot_take(vm, t);
	pthread_mutex_unlock(&vm->lock);
	if (rc) {
		thread_free(t);
		return nb_error_set(err, NB_EINTERNAL, "no thread slot");
	}
	t->cpu = vm->fv.cpu;
	vm->fv.cpu = NULL; /* owned by the VM's vcpu table; reused through idle_cpu */
	if (ioctl(t->cpu->fd, KVM_GET_REGS, &t->u) < 0) {
		rc = -errno;
		goto fail;
	}
	tsc_native(t->cpu);
	rc = svc_fast_vcpu(t);
	if (rc)
		goto fail;
	t->ctx = SVC_CTX_USER;
	t->full_restore = true;
	struct start st = {.t = t, .main = true};
	rc = spawn(t, &st);
	if (rc) {
		thread_free(t);
		return nb_error_sys(err, -rc, "starting the main thread");
	}
	return 0;
fail:
	pthread_mutex_lock(&vm->lock);
	slot_undo(vm, t);
	pthread_mutex_unlock(&vm->lock);
	thread_free(t);
	return nb_error_sys(err, -rc, "starting the main thread");
}

#define CLONE_THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD)
#define CLONE_OK_FLAGS                                                                             \
	(CLONE_THREAD_FLAGS | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |                 \
	 CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | CLONE_DETACHED | 0xff /* exit signal */)

long svc_thread_clone(struct svc_thread *t, uint64_t flags, uint64_t newsp, uint64_t ptid,
		      uint64_t ctid, uint64_t tls)
{
	struct svc_vm *vm = t->vm;
	if ((flags & CLONE_THREAD_FLAGS) != CLONE_THREAD_FLAGS)
		return -ENOSYS; /* processes: fork, vfork, posix_spawn */
	if (flags & ~(uint64_t)CLONE_OK_FLAGS)
		return -EINVAL;
	if ((flags & CLONE_SETTLS) && tls >= (1ull << 47))
		return -EPERM;
	struct svc_thread *c = thread_new(vm);
	if (!c)
		return -ENOMEM;
	struct kvm_xsave *xs = malloc(sizeof(*xs));
	if (xs && (!vm->kvm->has_xsave || ioctl(t->cpu->fd, KVM_GET_XSAVE, xs) < 0)) {
		free(xs);
		xs = NULL;
	}
	pthread_mutex_lock(&vm->lock);
	int rc = slot_take(vm, c);
	c->sigmask = t->sigmask;
	pthread_mutex_unlock(&vm->lock);
	if (rc) {
		free(xs);
		thread_free(c);
		return rc;
	}
	c->u = t->u;
	c->u.rax = 0;
	if (newsp)
		c->u.rsp = newsp;
	c->ctx = SVC_CTX_USER;
	c->full_restore = true;
	c->fs_base = (flags & CLONE_SETTLS) ? tls : t->fs_base;
	c->gs_base = t->gs_base;
	c->clear_child_tid = (flags & CLONE_CHILD_CLEARTID) ? ctid : 0;
	uint32_t tid = (uint32_t)c->tid;
	if (((flags & CLONE_PARENT_SETTID) && svc_copy_out(t, ptid, &tid, 4)) ||
	    ((flags & CLONE_CHILD_SETTID) && svc_copy_out(t, ctid, &tid, 4))) {
		pthread_mutex_lock(&vm->lock);
		slot_undo(vm, c);
		pthread_mutex_unlock(&vm->lock);
		free(xs);
		thread_free(c);
		return -EFAULT;
	}
	struct start st = {.t = c, .xsave = xs};
	rc = spawn(c, &st);
	free(xs);
	if (rc) {
		thread_free(c);
		return rc == -ENOMEM ? -ENOMEM : -EAGAIN;
	}
	return (long)tid;
}
