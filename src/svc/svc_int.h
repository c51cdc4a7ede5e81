/* SPDX-License-Identifier: MIT */
/*
 * Service-VM core internals shared by svm.c, thread.c, sys.c, signal.c and
 * futex.c. The fs and net modules use only svc.h.
 *
 * Locking (outer to inner): vm->lock (threads, signals, pause, exit state)
 * → vm->mm_lock (memory map) and vm->futex_lock (wait queues). A thread's
 * own fields marked "own" are touched only by its host thread.
 */
#ifndef NUBIS_SVC_INT_H
#define NUBIS_SVC_INT_H

#include <signal.h>
#include <stdatomic.h>

#include "../fnvm/fnvm_int.h"
#include "exitless.h"
#include "svc.h"

#define SVC_PAGE	4096ull
#define SVC_PID		1 /* the main thread's tid */
#define SVC_MAX_VMAS	8192
#define SVC_NSYSCALLS	512 /* per-number call counts; the last slot counts larger ones */
#define SVC_MAX_TIMERS	32
#define SVC_KICK_SIGNAL (SIGRTMIN + 2) /* host signal that takes a vCPU out of KVM_RUN */
#define SVC_SIGBIT(sig) (1ull << ((sig)-1))
#define SVC_UNBLOCKABLE (SVC_SIGBIT(SIGKILL) | SVC_SIGBIT(SIGSTOP))
#define SVC_SYNC_SIGNALS                                                                           \
	(SVC_SIGBIT(SIGSEGV) | SVC_SIGBIT(SIGBUS) | SVC_SIGBIT(SIGFPE) | SVC_SIGBIT(SIGILL) |      \
	 SVC_SIGBIT(SIGTRAP))

/* The kernel's struct sigaction for x86-64 (rt_sigaction). */
struct svc_ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* One pending signal (standard and real-time signals coalesce per number). */
struct svc_sigq {
	uint64_t pending;
	siginfo_t info[SVC_NSIG];
};

/* What a thread was doing when it left the guest: how to resume it. */
enum svc_ctx_kind {
	SVC_CTX_USER,	 /* stopped at a user instruction (KVM_RUN interrupted) */
	SVC_CTX_SYSCALL, /* at the SYSCALL stub's doorbell */
	SVC_CTX_EXC,	 /* at an exception stub's hlt (ring 0, iret frame on its stack) */
	SVC_CTX_STUB,	 /* interrupted inside a stub: resume as is, no delivery */
};

struct svc_thread {
	struct svc_vm *vm;
	struct vcpu *cpu;
	int tid;
	int slot; /* index in vm->threads */
	pthread_t host;

	/* own: the user-visible register state while out of the guest */
	struct kvm_regs u;
	enum svc_ctx_kind ctx;
	uint64_t exc_frame; /* SVC_CTX_EXC: guest address of the iret frame (rip) */
	bool full_restore;  /* the whole of ->u must reach the guest (sigreturn, signal) */
	bool no_retval;	    /* the handler set ->u itself (rt_sigreturn) */
	uint64_t fs_base, gs_base;

	/* signals: under vm->lock (mask also read lock-free by its own thread) */
	uint64_t sigmask;
	uint64_t saved_mask; /* sigsuspend/pselect: restored after delivery */
	bool restore_mask;
	struct svc_sigq sigq; /* thread-directed */
	uint64_t altstack_sp, altstack_size;
	int altstack_flags;

	uint64_t f_trapno, f_err, f_cr2; /* the last fault, for the signal frame */

	uint64_t clear_child_tid;
	uint64_t robust_head, robust_len;

	/* waking: see svc_thread_kick() */
	atomic_uint wseq;	/* incremented (and futex-woken) on every kick */
	atomic_int in_guest;	/* inside KVM_RUN (or about to enter) */
	int kick_fd;		/* eventfd polled by svc_wait_fds() */
	atomic_bool kick_armed; /* kick_fd holds a count */

	/* futex wait queue entry (under vm->futex_lock) */
	struct svc_thread *fnext;
	uint64_t fkey;
	uint32_t fbitset;
	bool fqueued;

	int gate_slot;	     /* --cpus: index in vm->gate_holder, or -1 */
	uint64_t gate_since; /* when it got the slot */

	/* exitless.c: set while the server thread runs a handler for this
	 * thread; svc_wait_fds() then polls once and sets fast_wouldblock
	 * instead of waiting */
	bool fast_call, fast_wouldblock;

	bool exited; /* under vm->lock */
	int exit_code;
};

struct svc_timer {
	bool used;
	int clock;  /* CLOCK_REALTIME or CLOCK_MONOTONIC (as the guest asked) */
	int notify; /* SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID */
	int signo;
	int tid;	  /* SIGEV_THREAD_ID */
	uint64_t value;	  /* sigev_value */
	uint64_t next_ns; /* CLOCK_MONOTONIC deadline, 0 = disarmed */
	uint64_t interval_ns;
	int overrun;
};

/* A guest range backed by a host file mapping (mmap of a file fd with
 * MAP_SHARED): [start, end) of guest memory is the host mapping of @fd at
 * @off. Anonymous memory is put back on munmap/MAP_FIXED/truncation. */
struct svc_fmap {
	uint64_t start, end, off;
	int fd; /* own dup of the host fd: fstat on truncation */
};
#define SVC_MAX_FMAPS 256

struct svc_vm {
	const struct kvmhost *kvm;
	struct svc_config cfg; /* deep copy (see svm.c) */
	void *cfg_store;       /* strings and arrays of cfg */
	struct fnvm_program *prog;
	struct fnvm_vm fv;     /* KVM VM, vCPU 0, guest memory mapping */
	struct svc_vdso *vdso; /* the clock page's refresher (vdso helper); may be NULL */
	struct gmem *mem;

	struct svc_fs *fs;
	struct svc_net *net;
	struct svc_fdtab *fdtab;

	pthread_mutex_t lock;
	pthread_cond_t cond;	     /* thread ended, pause state changed, vCPU ready */
	struct svc_thread **threads; /* cfg.max_threads slots */
	unsigned nthreads;	     /* live guest threads */
	unsigned nhost;		     /* host threads still running (thread loops) */
	int next_tid;
	struct vcpu *idle_cpu[UVM_MAX_VCPUS]; /* vCPUs of ended threads, for reuse */
	unsigned nidle;
	unsigned ncpus; /* vCPUs created so far */
	bool started;

	/* process-wide signal state (under lock) */
	struct svc_ksigaction sigact[SVC_NSIG];
	struct svc_sigq sigq;

	/* exit */
	atomic_bool exiting; /* exit_group or a fatal signal: every thread stops */
	int status;	     /* shell-style status once exiting */
	bool status_set;

	/* pause */
	bool paused;
	unsigned nrunning; /* threads between "not parked" and "parked" (under lock) */

	/* memory map (mm_lock) */
	pthread_mutex_t mm_lock;
	uint64_t brk_cur;
	struct fnvm_vma *vmas; /* sorted, disjoint (src/fnvm/vmas.h) */
	unsigned nvmas;
	struct svc_fmap *fmaps; /* SVC_MAX_FMAPS, sorted by start, disjoint */
	unsigned nfmaps;

	/* futexes */
	pthread_mutex_t futex_lock;
	struct svc_thread *fwaiters; /* all waiting threads, one list */

	/* timers: itimer (slot 0, ITIMER_REAL) and timer_create timers (1..) */
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
	struct svc_timer timers[SVC_MAX_TIMERS + 1];
	pthread_t timer_thread;
	bool timer_running, timer_stop;

	/* --cpus: at most cfg.cpus threads in KVM_RUN at once (thread.c) */
	bool cpu_gate;
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	unsigned gate_free;
	uint64_t gate_head, gate_tail; /* tickets: granted in arrival order */
	struct svc_thread *gate_holder[UVM_MAX_VCPUS];

	struct svc_fast *fast; /* exitless system calls (exitless.c), or NULL */

	atomic_uint_fast64_t counts[SVC_NSYSCALLS];
	struct nb_ratelimit enosys_rl;
	pthread_mutex_t log_lock;
};

/* ---- thread.c ---- */
/* Create the guest's main thread (vCPU 0) and start it. */
int svc_thread_start_main(struct svc_vm *vm, struct nb_error *err);
/* clone() of a thread sharing everything: a new vCPU and host thread. */
long svc_thread_clone(struct svc_thread *t, uint64_t flags, uint64_t newsp, uint64_t ptid,
		      uint64_t ctid, uint64_t tls);
/* End thread @t (exit()): clear_child_tid, robust list; the host thread
 * leaves its loop after the current call. */
void svc_thread_exit(struct svc_thread *t, int code);
/* End the whole VM with shell status @status (first caller wins); kicks every thread. */
void svc_vm_exit(struct svc_vm *vm, int status);
/* Wake @t from whatever it waits on (KVM_RUN, svc_wait_fds, futex, sleep). */
void svc_thread_kick(struct svc_thread *t);
/* The thread with guest tid @tid, or NULL. Caller holds vm->lock. */
struct svc_thread *svc_thread_by_tid(struct svc_vm *vm, int tid);
/* Set the FS or GS base of @t's vCPU. 0 or -errno. */
int svc_thread_set_segbase(struct svc_thread *t, int gs, uint64_t base);
/* One-time process setup of the kick signal handler. */
void svc_thread_global_init(void);

/* ---- signal.c ---- */
/* A signal for the process (@tid 0) or thread @tid; @info may be NULL (SI_USER
 * from ourselves). Returns 0 or -errno (-ESRCH, -EINVAL). */
int svc_signal_raise(struct svc_vm *vm, int tid, int sig, const siginfo_t *info);
/* True if a signal is deliverable to @t now, or the VM is exiting. */
bool svc_signal_interrupted(struct svc_thread *t);
/* Before re-entering the guest: deliver one pending unblocked signal to
 * @t (build a frame on the guest stack and point ->u at the handler), or
 * act on it (terminate, ignore). @nr: the system call just served (its
 * result in ->u.rax; -EINTR is restarted per SA_RESTART), or -1. */
void svc_signal_deliver(struct svc_thread *t, long nr);
/* A synchronous fault (SIGSEGV, ...) in @t at user context ->u. */
void svc_signal_fault(struct svc_thread *t, int sig, int code, uint64_t addr, int trapno,
		      uint64_t err);
svc_sys_fn svc_signal_handler(unsigned nr);
void svc_signal_init(struct svc_vm *vm);

/* ---- timers (signal.c) ---- */
int svc_timers_start(struct svc_vm *vm);
void svc_timers_stop(struct svc_vm *vm);

/* ---- futex.c ---- */
svc_sys_fn svc_futex_handler(unsigned nr);
/* Wake up to @n waiters on guest address @uaddr (thread exit, robust list). */
int svc_futex_wake(struct svc_vm *vm, uint64_t uaddr, int n, uint32_t bitset);
/* Wait on own wseq until woken or @deadline_ns (CLOCK_MONOTONIC, 0 =
 * forever). Returns 0 (kicked), -ETIMEDOUT. */
int svc_thread_block(struct svc_thread *t, unsigned seq, uint64_t deadline_ns);

/* ---- sys.c ---- */
/* Serve the call in ->u (rax = number); sets ->u.rax unless ->no_retval. */
void svc_sys_dispatch(struct svc_thread *t);
/* The handler of call @nr (core, then fs, then net), or NULL. */
svc_sys_fn svc_sys_lookup(unsigned nr);
int svc_mm_init(struct svc_vm *vm);
void svc_mm_fini(struct svc_vm *vm);
/* Read guest timespec at @a into ns; -EFAULT/-EINVAL. */
int svc_get_timespec(struct svc_thread *t, uint64_t a, uint64_t *ns);
uint64_t svc_clock_ns(clockid_t c);
/* The guest TSC of @t's vCPU (its own thread, not running). 0 or -EIO. */
int svc_guest_tsc(struct svc_thread *t, uint64_t *tsc);

#endif
