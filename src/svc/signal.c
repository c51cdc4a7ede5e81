/* SPDX-License-Identifier: MIT */
/*
 * Signals of service VMs: actions, masks, pending sets, delivery to guest
 * handlers on an x86-64 rt_sigframe (as Linux builds it), rt_sigreturn,
 * sigaltstack, sigsuspend/sigtimedwait, kill/tgkill, and the timers that
 * raise signals (alarm, setitimer, timer_create).
 *
 * Standard and real-time signals coalesce per number (one pending instance
 * each). Stop signals are ignored; "core" actions terminate like "term".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "../common/log.h"
#include "svc_int.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1u << 31)
#endif
#define UC_FP_XSTATE	  1
#define MINSIGSTKSZ_K	  2048
#define FLAGS_USER	  0x240dd5ull /* CF PF AF ZF SF TF DF OF AC ID */
#define SIG_DFL_H	  0ull
#define SIG_IGN_H	  1ull
#define SI_TIMER_K	  (-2)
#define SI_TKILL_K	  (-6)
#define SIGEV_SIGNAL_K	  0
#define SIGEV_NONE_K	  1
#define SIGEV_THREAD_ID_K 4

struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate;
	uint64_t reserved[8];
};

struct k_ucontext {
	uint64_t flags, link;
	uint64_t ss_sp;
	int32_t ss_flags, pad;
	uint64_t ss_size;
	struct k_sigcontext mc;
	uint64_t sigmask;
};

_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct k_ucontext) == 304, "ucontext layout");
_Static_assert(sizeof(siginfo_t) == 128, "siginfo layout");

/* The frame at the handler's RSP: return address, ucontext, siginfo; the FPU
 * state follows at a 64-byte aligned address above. */
struct k_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	siginfo_t info;
};

static bool default_ignored(int sig)
{
	switch (sig) {
	case SIGCHLD:
	case SIGURG:
	case SIGWINCH:
	case SIGCONT:
	case SIGSTOP: /* stop and continue are not modelled: ignored */
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
		return true;
	default:
		return false;
	}
}

static bool ignored(struct svc_vm *vm, int sig)
{
	uint64_t h = vm->sigact[sig - 1].handler;
	return h == SIG_IGN_H || (h == SIG_DFL_H && default_ignored(sig));
}

void svc_signal_init(struct svc_vm *vm)
{
	memset(vm->sigact, 0, sizeof(vm->sigact));
	memset(&vm->sigq, 0, sizeof(vm->sigq));
}

static void q_add(struct svc_sigq *q, int sig, const siginfo_t *info)
{
	uint64_t b = SVC_SIGBIT(sig);
	if (q->pending & b)
		return; /* coalesced */
	q->info[sig - 1] = *info;
	__atomic_or_fetch(&q->pending, b, __ATOMIC_SEQ_CST);
}

static void q_del(struct svc_sigq *q, int sig)
{
	__atomic_and_fetch(&q->pending, ~SVC_SIGBIT(sig), __ATOMIC_SEQ_CST);
}

/* Caller holds vm->lock. */
static int raise_locked(struct svc_vm *vm, struct svc_thread *target, int sig,
			const siginfo_t *info)
{
	if (sig == SIGKILL) {
		pthread_mutex_unlock(&vm->lock);
		svc_vm_exit(vm, 128 + SIGKILL);
		pthread_mutex_lock(&vm->lock);
		return 0;
	}
	uint64_t b = SVC_SIGBIT(sig);
	if (!target) {
		/* a thread that does not block it, the main thread first */
		for (unsigned i = 0; i < vm->cfg.max_threads && !target; i++) {
			struct svc_thread *t = vm->threads[i];
			if (t && !t->exited && !(t->sigmask & b))
				target = t;
		}
		if (ignored(vm, sig) && target)
			return 0;
		q_add(&vm->sigq, sig, info);
	} else {
		if (ignored(vm, sig) && !(target->sigmask & b))
			return 0;
		q_add(&target->sigq, sig, info);
		if (target->sigmask & b)
			target = NULL;
	}
	if (target)
		svc_thread_kick(target);
	return 0;
}

int svc_signal_raise(struct svc_vm *vm, int tid, int sig, const siginfo_t *info)
{
	if (sig < 1 || sig > SVC_NSIG)
		return -EINVAL;
	siginfo_t si;
	if (info) {
		si = *info;
	} else {
		memset(&si, 0, sizeof(si));
		si.si_code = SI_USER;
	}
	si.si_signo = sig;
	pthread_mutex_lock(&vm->lock);
	struct svc_thread *t = NULL;
	int rc = 0;
	if (tid) {
		t = svc_thread_by_tid(vm, tid);
		if (!t)
			rc = -ESRCH;
	}
	if (!rc)
		rc = raise_locked(vm, t, sig, &si);
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

void svc_signal_thread(struct svc_thread *t, int sig)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_KERNEL;
	pthread_mutex_lock(&t->vm->lock);
	raise_locked(t->vm, t, sig, &si);
	pthread_mutex_unlock(&t->vm->lock);
}

bool svc_signal_interrupted(struct svc_thread *t)
{
	struct svc_vm *vm = t->vm;
	if (atomic_load(&vm->exiting) || t->exited)
		return true;
	uint64_t p = __atomic_load_n(&t->sigq.pending, __ATOMIC_SEQ_CST) |
		     __atomic_load_n(&vm->sigq.pending, __ATOMIC_SEQ_CST);
	return (p & ~__atomic_load_n(&t->sigmask, __ATOMIC_SEQ_CST)) != 0;
}

/* Take the next deliverable signal for @t (synchronous faults first).
 * Caller holds vm->lock. Returns the signal or 0. */
static int dequeue(struct svc_thread *t, uint64_t allow, siginfo_t *info)
{
	struct svc_vm *vm = t->vm;
	uint64_t tp = t->sigq.pending & allow, pp = vm->sigq.pending & allow;
	if (!(tp | pp))
		return 0;
	uint64_t pick = (tp & SVC_SYNC_SIGNALS) ? (tp & SVC_SYNC_SIGNALS) : (tp | pp);
	int sig = __builtin_ctzll(pick) + 1;
	struct svc_sigq *q = (tp & SVC_SIGBIT(sig)) ? &t->sigq : &vm->sigq;
	*info = q->info[sig - 1];
	q_del(q, sig);
	return sig;
}

static bool restartable(long nr)
{
	switch (nr) {
	case SYS_poll:
	case SYS_ppoll:
	case SYS_select:
	case SYS_pselect6:
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
	case SYS_nanosleep:
	case SYS_clock_nanosleep:
	case SYS_rt_sigsuspend:
	case SYS_rt_sigtimedwait:
	case SYS_pause:
	case SYS_io_getevents:
	case SYS_msgrcv:
	case SYS_msgsnd:
	case SYS_semop:
	case SYS_semtimedop:
		return false;
	default:
		return true;
	}
}

static const char *signame(int sig)
{
	const char *n = sigabbrev_np(sig);
	return n ? n : "?";
}

static void terminate(struct svc_thread *t, int sig, const char *why)
{
	if (why)
		nb_log(NB_LOG_ERROR, "service VM: thread %d killed by SIG%s: %s", t->tid,
		       signame(sig), why);
	svc_vm_exit(t->vm, 128 + sig);
}

/* Write the rt_sigframe for @sig with @act onto @t's stack and point ->u at
 * the handler. @oldmask goes into the frame. Returns 0 or -EFAULT. */
static int setup_frame(struct svc_thread *t, int sig, const struct svc_ksigaction *act,
		       const siginfo_t *info, uint64_t oldmask)
{
	struct svc_vm *vm = t->vm;
	struct kvm_regs *u = &t->u;
	bool on_alt = t->altstack_size && u->rsp > t->altstack_sp &&
		      u->rsp <= t->altstack_sp + t->altstack_size;
	uint64_t sp = u->rsp - 128; /* red zone */
	if ((act->flags & SA_ONSTACK) && t->altstack_size && !(t->altstack_flags & SS_DISABLE) &&
	    !on_alt) {
		sp = t->altstack_sp + t->altstack_size;
		on_alt = true;
	}
	/* FPU state: the vCPU's XSAVE image (or the legacy FPU state) */
	struct kvm_xsave xs;
	uint64_t fpsz;
	if (vm->kvm->has_xsave) {
		if (ioctl(t->cpu->fd, KVM_GET_XSAVE, &xs) < 0)
			return -EFAULT;
		fpsz = sizeof(xs.region);
	} else {
		struct kvm_fpu fpu;
		if (ioctl(t->cpu->fd, KVM_GET_FPU, &fpu) < 0)
			return -EFAULT;
		memcpy(xs.region, &fpu, sizeof(fpu));
		fpsz = 512;
	}
	if (sp < fpsz + sizeof(struct k_sigframe) + 64)
		return -EFAULT;
	sp = (sp - fpsz) & ~63ull;
	uint64_t fp_addr = sp;
	sp = ((sp - sizeof(struct k_sigframe)) & ~15ull) - 8;

	struct k_sigframe f;
	memset(&f, 0, sizeof(f));
	f.pretcode = act->restorer;
	f.uc.flags = vm->kvm->has_xsave ? UC_FP_XSTATE : 0;
	f.uc.ss_sp = t->altstack_sp;
	f.uc.ss_size = t->altstack_size;
	f.uc.ss_flags = !t->altstack_size ? SS_DISABLE : on_alt ? SS_ONSTACK : 0;
	struct k_sigcontext *mc = &f.uc.mc;
	mc->r8 = u->r8, mc->r9 = u->r9, mc->r10 = u->r10, mc->r11 = u->r11;
	mc->r12 = u->r12, mc->r13 = u->r13, mc->r14 = u->r14, mc->r15 = u->r15;
	mc->rdi = u->rdi, mc->rsi = u->rsi, mc->rbp = u->rbp, mc->rbx = u->rbx;
	mc->rdx = u->rdx, mc->rax = u->rax, mc->rcx = u->rcx, mc->rsp = u->rsp;
	mc->rip = u->rip, mc->eflags = u->rflags;
	mc->cs = 0x33; /* what Linux programs expect to see for user code */
	mc->ss = 0x2b;
	if (SVC_SIGBIT(sig) & SVC_SYNC_SIGNALS) {
		mc->err = t->f_err;
		mc->trapno = t->f_trapno;
		mc->cr2 = t->f_cr2;
	}
	mc->oldmask = oldmask;
	mc->fpstate = fp_addr;
	f.uc.sigmask = oldmask;
	f.info = *info;
	if (svc_copy_out(t, fp_addr, xs.region, fpsz) || svc_copy_out(t, sp, &f, sizeof(f)))
		return -EFAULT;
	u->rdi = (uint64_t)sig;
	u->rsi = sp + offsetof(struct k_sigframe, info);
	u->rdx = sp + offsetof(struct k_sigframe, uc);
	u->rax = 0;
	u->rsp = sp;
	u->rip = act->handler;
	u->rflags &= ~(0x100ull | 0x400ull | 0x40000ull); /* TF, DF, AC */
	if (t->altstack_flags & SS_AUTODISARM) {
		t->altstack_sp = t->altstack_size = 0;
		t->altstack_flags = SS_DISABLE;
	}
	return 0;
}

void svc_signal_deliver(struct svc_thread *t, long nr)
{
	struct svc_vm *vm = t->vm;
	bool interrupted = nr >= 0 && !t->no_retval && (long)t->u.rax == -EINTR;
	/* fast path, no lock: nothing pending and unblocked (a signal raised
	 * after this check kicks the thread out of its next KVM_RUN) */
	uint64_t p = __atomic_load_n(&t->sigq.pending, __ATOMIC_SEQ_CST) |
		     __atomic_load_n(&vm->sigq.pending, __ATOMIC_SEQ_CST);
	if (!(p & ~t->sigmask) && !t->restore_mask && !interrupted)
		return;
	for (;;) {
		pthread_mutex_lock(&vm->lock);
		if (atomic_load(&vm->exiting) || t->exited) {
			pthread_mutex_unlock(&vm->lock);
			return;
		}
		siginfo_t info;
		int sig = dequeue(t, ~t->sigmask, &info);
		if (!sig) {
			if (t->restore_mask) {
				t->sigmask = t->saved_mask;
				t->restore_mask = false;
			}
			pthread_mutex_unlock(&vm->lock);
			if (interrupted && restartable(nr)) {
				/* nothing to run: restart the call transparently */
				t->u.rax = (uint64_t)nr;
				t->u.rip -= 2;
			}
			return;
		}
		struct svc_ksigaction act = vm->sigact[sig - 1];
		if (act.handler == SIG_IGN_H ||
		    (act.handler == SIG_DFL_H && default_ignored(sig))) {
			pthread_mutex_unlock(&vm->lock);
			continue;
		}
		if (act.handler == SIG_DFL_H) {
			pthread_mutex_unlock(&vm->lock);
			terminate(t, sig, NULL);
			return;
		}
		uint64_t oldmask = t->restore_mask ? t->saved_mask : t->sigmask;
		t->restore_mask = false;
		t->sigmask =
		    (oldmask | act.mask | ((act.flags & SA_NODEFER) ? 0 : SVC_SIGBIT(sig))) &
		    ~SVC_UNBLOCKABLE;
		if (act.flags & SA_RESETHAND)
			vm->sigact[sig - 1].handler = SIG_DFL_H;
		pthread_mutex_unlock(&vm->lock);
		if (interrupted) {
			if ((act.flags & SA_RESTART) && restartable(nr)) {
				t->u.rax = (uint64_t)nr;
				t->u.rip -= 2;
			}
			interrupted = false;
		}
		if (setup_frame(t, sig, &act, &info, oldmask) < 0) {
			terminate(t, SIGSEGV, "cannot write the signal frame on the stack");
			return;
		}
		return;
	}
}

void svc_signal_fault(struct svc_thread *t, int sig, int code, uint64_t addr, int trapno,
		      uint64_t err)
{
	struct svc_vm *vm = t->vm;
	t->f_trapno = (uint64_t)trapno;
	t->f_err = err;
	t->f_cr2 = trapno == 14 ? addr : 0;
	pthread_mutex_lock(&vm->lock);
	uint64_t h = vm->sigact[sig - 1].handler;
	bool fatal = h == SIG_DFL_H || h == SIG_IGN_H || (t->sigmask & SVC_SIGBIT(sig));
	if (!fatal) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		si.si_signo = sig;
		si.si_code = code;
		si.si_addr = (void *)(uintptr_t)addr;
		q_add(&t->sigq, sig, &si);
	}
	pthread_mutex_unlock(&vm->lock);
	if (fatal) {
		char why[160];
		snprintf(why, sizeof(why), "%s at %#llx, rip=%#llx rsp=%#llx",
			 trapno == 14 ? "page fault" : "exception", (unsigned long long)addr,
			 (unsigned long long)t->u.rip, (unsigned long long)t->u.rsp);
		if (trapno != 14)
			snprintf(why, sizeof(why), "exception %d, rip=%#llx rsp=%#llx", trapno,
				 (unsigned long long)t->u.rip, (unsigned long long)t->u.rsp);
		terminate(t, sig, why);
	}
}

/* ------------------------------------------------------------ system calls */

static long sys_rt_sigaction(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	long sig = (long)a[0];
	if (a[3] != 8 || sig < 1 || sig > SVC_NSIG)
		return -EINVAL;
	struct svc_ksigaction nact, old;
	if (a[1]) {
		if (sig == SIGKILL || sig == SIGSTOP)
			return -EINVAL;
		if (svc_copy_in(t, &nact, a[1], sizeof(nact)))
			return -EFAULT;
		nact.mask &= ~SVC_UNBLOCKABLE;
	}
	pthread_mutex_lock(&vm->lock);
	old = vm->sigact[sig - 1];
	if (a[1]) {
		vm->sigact[sig - 1] = nact;
		if (ignored(vm, (int)sig)) {
			/* discard what is pending (POSIX) */
			q_del(&vm->sigq, (int)sig);
			for (unsigned i = 0; i < vm->cfg.max_threads; i++)
				if (vm->threads[i])
					q_del(&vm->threads[i]->sigq, (int)sig);
		}
	}
	pthread_mutex_unlock(&vm->lock);
	if (a[2] && svc_copy_out(t, a[2], &old, sizeof(old)))
		return -EFAULT;
	return 0;
}

static long sys_rt_sigprocmask(struct svc_thread *t, const uint64_t a[6])
{
	if (a[3] != 8)
		return -EINVAL;
	uint64_t set = 0;
	if (a[1] && svc_copy_in(t, &set, a[1], 8))
		return -EFAULT;
	set &= ~SVC_UNBLOCKABLE;
	pthread_mutex_lock(&t->vm->lock);
	uint64_t old = t->sigmask;
	long rc = 0;
	if (a[1]) {
		switch ((int)a[0]) {
		case SIG_BLOCK:
			t->sigmask |= set;
			break;
		case SIG_UNBLOCK:
			t->sigmask &= ~set;
			break;
		case SIG_SETMASK:
			t->sigmask = set;
			break;
		default:
			rc = -EINVAL;
		}
	}
	pthread_mutex_unlock(&t->vm->lock);
	if (!rc && a[2] && svc_copy_out(t, a[2], &old, 8))
		return -EFAULT;
	return rc;
}

static long sys_rt_sigpending(struct svc_thread *t, const uint64_t a[6])
{
	if (a[1] != 8)
		return -EINVAL;
	pthread_mutex_lock(&t->vm->lock);
	uint64_t p = (t->sigq.pending | t->vm->sigq.pending) & t->sigmask;
	pthread_mutex_unlock(&t->vm->lock);
	return svc_copy_out(t, a[0], &p, 8);
}

/* Wait with mask @mask until a signal is deliverable; always -EINTR. */
static long suspend(struct svc_thread *t, uint64_t mask)
{
	pthread_mutex_lock(&t->vm->lock);
	t->saved_mask = t->sigmask;
	t->restore_mask = true;
	t->sigmask = mask & ~SVC_UNBLOCKABLE;
	pthread_mutex_unlock(&t->vm->lock);
	while (svc_wait_fds(t, NULL, 0, -1) != -EINTR)
		;
	return -EINTR;
}

void svc_sigmask_swap(struct svc_thread *t, uint64_t set)
{
	pthread_mutex_lock(&t->vm->lock);
	if (!t->restore_mask) {
		t->saved_mask = t->sigmask;
		t->restore_mask = true;
	}
	t->sigmask = set & ~SVC_UNBLOCKABLE;
	pthread_mutex_unlock(&t->vm->lock);
}

static long sys_rt_sigsuspend(struct svc_thread *t, const uint64_t a[6])
{
	uint64_t mask;
	if (a[1] != 8)
		return -EINVAL;
	if (svc_copy_in(t, &mask, a[0], 8))
		return -EFAULT;
	return suspend(t, mask);
}

static long sys_pause(struct svc_thread *t, const uint64_t a[6])
{
	(void)a;
	return suspend(t, t->sigmask);
}

static long sys_rt_sigtimedwait(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	uint64_t set;
	if (a[3] != 8)
		return -EINVAL;
	if (svc_copy_in(t, &set, a[0], 8))
		return -EFAULT;
	set &= ~SVC_UNBLOCKABLE;
	int64_t timeout = -1;
	if (a[2]) {
		uint64_t ns;
		int rc = svc_get_timespec(t, a[2], &ns);
		if (rc)
			return rc;
		timeout = (int64_t)ns;
	}
	siginfo_t info;
	pthread_mutex_lock(&vm->lock);
	int sig = dequeue(t, set, &info);
	uint64_t real = t->sigmask;
	if (!sig && timeout != 0) {
		t->sigmask &= ~set; /* as Linux: the waited-for signals count as unblocked */
		pthread_mutex_unlock(&vm->lock);
		int r = svc_wait_fds(t, NULL, 0, timeout);
		pthread_mutex_lock(&vm->lock);
		t->sigmask = real;
		sig = dequeue(t, set, &info);
		if (!sig) {
			pthread_mutex_unlock(&vm->lock);
			return r == -EINTR ? -EINTR : -EAGAIN;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	if (!sig)
		return -EAGAIN;
	if (a[1] && svc_copy_out(t, a[1], &info, sizeof(info)))
		return -EFAULT;
	return sig;
}

static long sys_sigaltstack(struct svc_thread *t, const uint64_t a[6])
{
	struct {
		uint64_t sp;
		int32_t flags, pad;
		uint64_t size;
	} ss, old;
	bool on = t->altstack_size && t->u.rsp > t->altstack_sp &&
		  t->u.rsp <= t->altstack_sp + t->altstack_size;
	memset(&old, 0, sizeof(old));
	old.sp = t->altstack_sp;
	old.size = t->altstack_size;
	old.flags = on ? SS_ONSTACK : t->altstack_flags;
	if (a[0]) {
		if (svc_copy_in(t, &ss, a[0], sizeof(ss)))
			return -EFAULT;
		if (on)
			return -EPERM;
		int mode = ss.flags & ~(int32_t)SS_AUTODISARM;
		if (mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK)
			return -EINVAL;
		if (mode == SS_DISABLE) {
			t->altstack_sp = t->altstack_size = 0;
			t->altstack_flags = SS_DISABLE;
		} else {
			if (ss.size < MINSIGSTKSZ_K)
				return -ENOMEM;
			t->altstack_sp = ss.sp;
			t->altstack_size = ss.size;
			t->altstack_flags = ss.flags & (int32_t)SS_AUTODISARM;
		}
	}
	if (a[1] && svc_copy_out(t, a[1], &old, sizeof(old)))
		return -EFAULT;
	return 0;
}

static long sys_rt_sigreturn(struct svc_thread *t, const uint64_t a[6])
{
	(void)a;
	struct k_ucontext uc;
	t->no_retval = true;
	if (svc_copy_in(t, &uc, t->u.rsp, sizeof(uc))) {
		terminate(t, SIGSEGV, "rt_sigreturn with a bad frame");
		return 0;
	}
	const struct k_sigcontext *mc = &uc.mc;
	if (mc->rip >= (1ull << 47)) {
		terminate(t, SIGSEGV, "rt_sigreturn to a non-canonical address");
		return 0;
	}
	if (mc->fpstate) {
		struct kvm_xsave xs;
		memset(&xs, 0, sizeof(xs));
		int bad;
		if (t->vm->kvm->has_xsave)
			bad = svc_copy_in(t, xs.region, mc->fpstate, sizeof(xs.region)) ||
			      ioctl(t->cpu->fd, KVM_SET_XSAVE, &xs) < 0;
		else
			bad = svc_copy_in(t, xs.region, mc->fpstate, sizeof(struct kvm_fpu)) ||
			      ioctl(t->cpu->fd, KVM_SET_FPU, xs.region) < 0;
		if (bad) {
			terminate(t, SIGSEGV, "rt_sigreturn with a bad FPU state");
			return 0;
		}
	}
	struct kvm_regs *u = &t->u;
	u->r8 = mc->r8, u->r9 = mc->r9, u->r10 = mc->r10, u->r11 = mc->r11;
	u->r12 = mc->r12, u->r13 = mc->r13, u->r14 = mc->r14, u->r15 = mc->r15;
	u->rdi = mc->rdi, u->rsi = mc->rsi, u->rbp = mc->rbp, u->rbx = mc->rbx;
	u->rdx = mc->rdx, u->rax = mc->rax, u->rcx = mc->rcx, u->rsp = mc->rsp;
	u->rip = mc->rip;
	u->rflags = (u->rflags & ~FLAGS_USER) | (mc->eflags & FLAGS_USER);
	t->full_restore = true;
	pthread_mutex_lock(&t->vm->lock);
	t->sigmask = uc.sigmask & ~SVC_UNBLOCKABLE;
	pthread_mutex_unlock(&t->vm->lock);
	return 0;
}

static bool is_self(long pid)
{
	return pid == SVC_PID || pid == 0 || pid == -1 || pid == -SVC_PID;
}

static long sys_kill(struct svc_thread *t, const uint64_t a[6])
{
	long pid = (long)a[0];
	int sig = (int)a[1];
	if (sig < 0 || sig > SVC_NSIG)
		return -EINVAL;
	if (!is_self(pid))
		return -ESRCH;
	if (!sig)
		return 0;
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_code = SI_USER;
	si.si_pid = SVC_PID;
	(void)t;
	return svc_signal_raise(t->vm, 0, sig, &si);
}

static long tkill(struct svc_thread *t, long tid, int sig)
{
	if (sig < 0 || sig > SVC_NSIG || tid <= 0)
		return -EINVAL;
	if (!sig) {
		pthread_mutex_lock(&t->vm->lock);
		bool found = svc_thread_by_tid(t->vm, (int)tid) != NULL;
		pthread_mutex_unlock(&t->vm->lock);
		return found ? 0 : -ESRCH;
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_code = SI_TKILL_K;
	si.si_pid = SVC_PID;
	return svc_signal_raise(t->vm, (int)tid, sig, &si);
}

static long sys_tkill(struct svc_thread *t, const uint64_t a[6])
{
	return tkill(t, (long)a[0], (int)a[1]);
}

static long sys_tgkill(struct svc_thread *t, const uint64_t a[6])
{
	if ((long)a[0] <= 0)
		return -EINVAL;
	if ((long)a[0] != SVC_PID)
		return -ESRCH;
	return tkill(t, (long)a[1], (int)a[2]);
}

static long queueinfo(struct svc_thread *t, int tid, int sig, uint64_t ua)
{
	siginfo_t si;
	if (sig < 1 || sig > SVC_NSIG)
		return -EINVAL;
	if (svc_copy_in(t, &si, ua, sizeof(si)))
		return -EFAULT;
	if (si.si_code >= 0 || si.si_code == SI_TKILL_K)
		return -EPERM;
	return svc_signal_raise(t->vm, tid, sig, &si);
}

static long sys_rt_sigqueueinfo(struct svc_thread *t, const uint64_t a[6])
{
	if (!is_self((long)a[0]))
		return -ESRCH;
	return queueinfo(t, 0, (int)a[1], a[2]);
}

static long sys_rt_tgsigqueueinfo(struct svc_thread *t, const uint64_t a[6])
{
	if ((long)a[0] != SVC_PID)
		return -ESRCH;
	return queueinfo(t, (int)a[1], (int)a[2], a[3]);
}

/* ---------------------------------------------------------------- timers */

static void *timer_main(void *arg)
{
	struct svc_vm *vm = arg;
	struct {
		int sig, tid;
		siginfo_t si;
	} fire[SVC_MAX_TIMERS + 1];
	pthread_mutex_lock(&vm->timer_lock);
	while (!vm->timer_stop) {
		uint64_t now = nb_now_ns(), next = 0;
		int nf = 0;
		for (int i = 0; i <= SVC_MAX_TIMERS; i++) {
			struct svc_timer *tm = &vm->timers[i];
			if (!tm->used || !tm->next_ns)
				continue;
			if (tm->next_ns <= now) {
				int over = 0;
				if (tm->interval_ns) {
					uint64_t k = (now - tm->next_ns) / tm->interval_ns;
					over = k > INT32_MAX ? INT32_MAX : (int)k;
					tm->next_ns += (k + 1) * tm->interval_ns;
				} else {
					tm->next_ns = 0;
				}
				if (tm->notify != SIGEV_NONE_K) {
					memset(&fire[nf].si, 0, sizeof(siginfo_t));
					fire[nf].sig = tm->signo;
					fire[nf].tid =
					    tm->notify == SIGEV_THREAD_ID_K ? tm->tid : 0;
					fire[nf].si.si_signo = tm->signo;
					if (i == 0) {
						fire[nf].si.si_code = SI_KERNEL;
					} else {
						fire[nf].si.si_code = SI_TIMER_K;
						fire[nf].si.si_timerid = i - 1;
						fire[nf].si.si_overrun = over;
						fire[nf].si.si_value.sival_ptr =
						    (void *)(uintptr_t)tm->value;
					}
					nf++;
				}
				tm->overrun = over;
			}
			if (tm->next_ns && (!next || tm->next_ns < next))
				next = tm->next_ns;
		}
		if (nf) {
			pthread_mutex_unlock(&vm->timer_lock);
			for (int i = 0; i < nf; i++)
				if (svc_signal_raise(vm, fire[i].tid, fire[i].sig, &fire[i].si) ==
				    -ESRCH)
					svc_signal_raise(vm, 0, fire[i].sig, &fire[i].si);
			pthread_mutex_lock(&vm->timer_lock);
			continue;
		}
		if (!next) {
			pthread_cond_wait(&vm->timer_cond, &vm->timer_lock);
		} else {
			struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
					      .tv_nsec = (long)(next % 1000000000ull)};
			pthread_cond_timedwait(&vm->timer_cond, &vm->timer_lock, &ts);
		}
	}
	pthread_mutex_unlock(&vm->timer_lock);
	return NULL;
}

int svc_timers_start(struct svc_vm *vm)
{
	sigset_t ss, old;
	sigfillset(&ss);
	pthread_sigmask(SIG_BLOCK, &ss, &old);
	int rc = pthread_create(&vm->timer_thread, NULL, timer_main, vm);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	vm->timer_running = true;
	return 0;
}

void svc_timers_stop(struct svc_vm *vm)
{
	if (!vm->timer_running)
		return;
	pthread_mutex_lock(&vm->timer_lock);
	vm->timer_stop = true;
	pthread_cond_signal(&vm->timer_cond);
	pthread_mutex_unlock(&vm->timer_lock);
	pthread_join(vm->timer_thread, NULL);
	vm->timer_running = false;
}

/* Remaining time of timer @tm (monotonic deadline) in ns. Under timer_lock. */
static uint64_t remaining(const struct svc_timer *tm)
{
	uint64_t now = nb_now_ns();
	if (!tm->next_ns)
		return 0;
	return tm->next_ns > now ? tm->next_ns - now : 1;
}

static void ns_to_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

static void arm(struct svc_vm *vm, struct svc_timer *tm, uint64_t value_ns, uint64_t interval_ns)
{
	tm->next_ns = value_ns ? nb_now_ns() + value_ns : 0;
	tm->interval_ns = value_ns ? interval_ns : 0;
	pthread_cond_signal(&vm->timer_cond);
}

static long sys_alarm(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	pthread_mutex_lock(&vm->timer_lock);
	struct svc_timer *tm = &vm->timers[0];
	uint64_t left = remaining(tm);
	tm->used = true;
	tm->signo = SIGALRM;
	tm->notify = SIGEV_SIGNAL_K;
	uint64_t secs = (unsigned)a[0];
	arm(vm, tm, secs * 1000000000ull, 0);
	pthread_mutex_unlock(&vm->timer_lock);
	return (long)((left + 500000000ull) / 1000000000ull) + (left && left < 500000000ull);
}

struct k_itimerval {
	struct timeval interval, value;
};

static int tv_to_ns(const struct timeval *tv, uint64_t *ns)
{
	if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
		return -EINVAL;
	uint64_t s = (uint64_t)tv->tv_sec;
	if (s > 100ull * 365 * 86400)
		s = 100ull * 365 * 86400;
	*ns = s * 1000000000ull + (uint64_t)tv->tv_usec * 1000;
	return 0;
}

static void ns_to_tv(uint64_t ns, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ns / 1000000000ull);
	tv->tv_usec = (suseconds_t)((ns % 1000000000ull + 999) / 1000);
	if (tv->tv_usec >= 1000000) {
		tv->tv_sec++;
		tv->tv_usec -= 1000000;
	}
}

static long sys_getitimer(struct svc_thread *t, const uint64_t a[6])
{
	if (a[0] != ITIMER_REAL)
		return a[0] <= ITIMER_PROF ? -ENOSYS : -EINVAL;
	struct k_itimerval v;
	pthread_mutex_lock(&t->vm->timer_lock);
	ns_to_tv(remaining(&t->vm->timers[0]), &v.value);
	ns_to_tv(t->vm->timers[0].interval_ns, &v.interval);
	pthread_mutex_unlock(&t->vm->timer_lock);
	return svc_copy_out(t, a[1], &v, sizeof(v));
}

static long sys_setitimer(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	if (a[0] != ITIMER_REAL)
		return a[0] <= ITIMER_PROF ? -ENOSYS : -EINVAL;
	struct k_itimerval nv, ov;
	uint64_t val = 0, iv = 0;
	if (a[1]) {
		if (svc_copy_in(t, &nv, a[1], sizeof(nv)))
			return -EFAULT;
		if (tv_to_ns(&nv.value, &val) || tv_to_ns(&nv.interval, &iv))
			return -EINVAL;
	}
	pthread_mutex_lock(&vm->timer_lock);
	struct svc_timer *tm = &vm->timers[0];
	ns_to_tv(remaining(tm), &ov.value);
	ns_to_tv(tm->interval_ns, &ov.interval);
	if (a[1]) {
		tm->used = true;
		tm->signo = SIGALRM;
		tm->notify = SIGEV_SIGNAL_K;
		arm(vm, tm, val, iv);
	}
	pthread_mutex_unlock(&vm->timer_lock);
	if (a[2] && svc_copy_out(t, a[2], &ov, sizeof(ov)))
		return -EFAULT;
	return 0;
}

struct k_sigevent {
	uint64_t value;
	int32_t signo, notify;
	int32_t tid;
	int32_t pad[11];
};

static long sys_timer_create(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	long clk = (long)a[0];
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC && clk != CLOCK_BOOTTIME &&
	    clk != CLOCK_REALTIME_ALARM && clk != CLOCK_BOOTTIME_ALARM)
		return -EINVAL;
	struct k_sigevent ev = {.signo = SIGALRM, .notify = SIGEV_SIGNAL_K};
	bool have_ev = a[1] != 0;
	if (have_ev && svc_copy_in(t, &ev, a[1], sizeof(ev)))
		return -EFAULT;
	if (ev.notify != SIGEV_SIGNAL_K && ev.notify != SIGEV_NONE_K &&
	    ev.notify != SIGEV_THREAD_ID_K)
		return -EINVAL;
	if (ev.notify != SIGEV_NONE_K && (ev.signo < 1 || ev.signo > SVC_NSIG))
		return -EINVAL;
	if (ev.notify == SIGEV_THREAD_ID_K) {
		pthread_mutex_lock(&vm->lock);
		bool found = svc_thread_by_tid(vm, ev.tid) != NULL;
		pthread_mutex_unlock(&vm->lock);
		if (!found)
			return -EINVAL;
	}
	pthread_mutex_lock(&vm->timer_lock);
	int id = -1;
	for (int i = 1; i <= SVC_MAX_TIMERS && id < 0; i++)
		if (!vm->timers[i].used)
			id = i;
	if (id < 0) {
		pthread_mutex_unlock(&vm->timer_lock);
		return -EAGAIN;
	}
	struct svc_timer *tm = &vm->timers[id];
	memset(tm, 0, sizeof(*tm));
	tm->used = true;
	tm->clock = (int)clk;
	tm->notify = ev.notify;
	tm->signo = ev.signo;
	tm->tid = ev.tid;
	tm->value = have_ev ? ev.value : (uint64_t)(id - 1);
	pthread_mutex_unlock(&vm->timer_lock);
	int32_t gid = id - 1;
	if (svc_copy_out(t, a[2], &gid, 4)) {
		pthread_mutex_lock(&vm->timer_lock);
		tm->used = false;
		pthread_mutex_unlock(&vm->timer_lock);
		return -EFAULT;
	}
	return 0;
}

static struct svc_timer *timer_of(struct svc_vm *vm, uint64_t id)
{
	if ((int64_t)id < 0 || id >= SVC_MAX_TIMERS || !vm->timers[id + 1].used)
		return NULL;
	return &vm->timers[id + 1];
}

static long sys_timer_settime(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	struct {
		struct timespec interval, value;
	} nv, ov;
	if (svc_copy_in(t, &nv, a[2], sizeof(nv)))
		return -EFAULT;
	if (nv.value.tv_sec < 0 || nv.value.tv_nsec < 0 || nv.value.tv_nsec >= 1000000000L ||
	    nv.interval.tv_sec < 0 || nv.interval.tv_nsec < 0 || nv.interval.tv_nsec >= 1000000000L)
		return -EINVAL;
	if (a[1] & ~(uint64_t)TIMER_ABSTIME)
		return -EINVAL;
	uint64_t cap = 100ull * 365 * 86400;
	uint64_t val =
	    ((uint64_t)nv.value.tv_sec > cap ? cap : (uint64_t)nv.value.tv_sec) * 1000000000ull +
	    (uint64_t)nv.value.tv_nsec;
	uint64_t iv = ((uint64_t)nv.interval.tv_sec > cap ? cap : (uint64_t)nv.interval.tv_sec) *
			  1000000000ull +
		      (uint64_t)nv.interval.tv_nsec;
	pthread_mutex_lock(&vm->timer_lock);
	struct svc_timer *tm = timer_of(vm, a[0]);
	if (!tm) {
		pthread_mutex_unlock(&vm->timer_lock);
		return -EINVAL;
	}
	ns_to_ts(remaining(tm), &ov.value);
	ns_to_ts(tm->interval_ns, &ov.interval);
	if (val && (a[1] & TIMER_ABSTIME)) {
		clockid_t c = tm->clock == CLOCK_REALTIME_ALARM	  ? CLOCK_REALTIME
			      : tm->clock == CLOCK_BOOTTIME_ALARM ? CLOCK_BOOTTIME
								  : tm->clock;
		uint64_t now = svc_clock_ns(c);
		val = val > now ? val - now : 1;
	}
	arm(vm, tm, val, iv);
	pthread_mutex_unlock(&vm->timer_lock);
	if (a[3] && svc_copy_out(t, a[3], &ov, sizeof(ov)))
		return -EFAULT;
	return 0;
}

static long sys_timer_gettime(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_vm *vm = t->vm;
	struct {
		struct timespec interval, value;
	} ov;
	pthread_mutex_lock(&vm->timer_lock);
	struct svc_timer *tm = timer_of(vm, a[0]);
	if (tm) {
		ns_to_ts(remaining(tm), &ov.value);
		ns_to_ts(tm->interval_ns, &ov.interval);
	}
	pthread_mutex_unlock(&vm->timer_lock);
	if (!tm)
		return -EINVAL;
	return svc_copy_out(t, a[1], &ov, sizeof(ov));
}

static long sys_timer_getoverrun(struct svc_thread *t, const uint64_t a[6])
{
	pthread_mutex_lock(&t->vm->timer_lock);
	struct svc_timer *tm = timer_of(t->vm, a[0]);
	long r = tm ? tm->overrun : -EINVAL;
	pthread_mutex_unlock(&t->vm->timer_lock);
	return r;
}

static long sys_timer_delete(struct svc_thread *t, const uint64_t a[6])
{
	pthread_mutex_lock(&t->vm->timer_lock);
	struct svc_timer *tm = timer_of(t->vm, a[0]);
	if (tm)
		memset(tm, 0, sizeof(*tm));
	pthread_mutex_unlock(&t->vm->timer_lock);
	return tm ? 0 : -EINVAL;
}

svc_sys_fn svc_signal_handler(unsigned nr)
{
	switch (nr) {
	case SYS_rt_sigaction:
		return sys_rt_sigaction;
	case SYS_rt_sigprocmask:
		return sys_rt_sigprocmask;
	case SYS_rt_sigpending:
		return sys_rt_sigpending;
	case SYS_rt_sigsuspend:
		return sys_rt_sigsuspend;
	case SYS_pause:
		return sys_pause;
	case SYS_rt_sigtimedwait:
		return sys_rt_sigtimedwait;
	case SYS_sigaltstack:
		return sys_sigaltstack;
	case SYS_rt_sigreturn:
		return sys_rt_sigreturn;
	case SYS_kill:
		return sys_kill;
	case SYS_tkill:
		return sys_tkill;
	case SYS_tgkill:
		return sys_tgkill;
	case SYS_rt_sigqueueinfo:
		return sys_rt_sigqueueinfo;
	case SYS_rt_tgsigqueueinfo:
		return sys_rt_tgsigqueueinfo;
	case SYS_alarm:
		return sys_alarm;
	case SYS_getitimer:
		return sys_getitimer;
	case SYS_setitimer:
		return sys_setitimer;
	case SYS_timer_create:
		return sys_timer_create;
	case SYS_timer_settime:
		return sys_timer_settime;
	case SYS_timer_gettime:
		return sys_timer_gettime;
	case SYS_timer_getoverrun:
		return sys_timer_getoverrun;
	case SYS_timer_delete:
		return sys_timer_delete;
	default:
		return NULL;
	}
}
