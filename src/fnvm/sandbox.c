/* SPDX-License-Identifier: MIT */
#include "sandbox.h"

#ifdef NUBIS_NO_SECCOMP

int fnvm_sandbox_apply(enum fnvm_sandbox_kind kind, struct nb_error *err)
{
	(void)kind;
	(void)err;
	return 0;
}

#else

#include <errno.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

/* Calls every monitor thread makes once it runs guests. */
static const int common_calls[] = {
    SCMP_SYS(read),	      /* stdin, read channels, eventfds */
    SCMP_SYS(write),	      /* stdout/stderr, write channels, eventfds */
    SCMP_SYS(pread64),	      /* seekable read channels */
    SCMP_SYS(pwrite64),	      /* seekable write channels */
    SCMP_SYS(fstat),	      /* channel size for stat and SEEK_END */
    SCMP_SYS(newfstatat),     /* the same through glibc */
    SCMP_SYS(ftruncate),      /* O_TRUNC on a write channel */
    SCMP_SYS(madvise),	      /* munmap/madvise of guest memory: drop pages */
    SCMP_SYS(brk),	      /* malloc */
    SCMP_SYS(munmap),	      /* free, VM teardown */
    SCMP_SYS(mremap),	      /* realloc of output buffers */
    SCMP_SYS(close),	      /* VM teardown */
    SCMP_SYS(futex),	      /* locks, condition variables */
    SCMP_SYS(timer_settime),  /* the per-request timeout */
    SCMP_SYS(timer_delete),   /* runner teardown */
    SCMP_SYS(rt_sigreturn),   /* return from the timeout signal's handler */
    SCMP_SYS(rt_sigprocmask), /* glibc around abort() */
    SCMP_SYS(getpid),	      /* abort() */
    SCMP_SYS(gettid),	      /* abort() */
    SCMP_SYS(tgkill),	      /* abort() on a failed assertion */
    SCMP_SYS(clock_gettime),  /* when the vDSO is not used */
    SCMP_SYS(restart_syscall),
    SCMP_SYS(rseq),	       /* a thread started just before the filter registers */
    SCMP_SYS(set_robust_list), /* ... and sets up its robust futex list */
#ifdef __SANITIZE_ADDRESS__
    SCMP_SYS(sigaltstack),     /* AddressSanitizer's per-thread signal stacks */
#endif
    SCMP_SYS(exit),	       /* thread exit */
    SCMP_SYS(exit_group),
};

/* A server also makes VMs, answers HTTP and waits for its stop signal. */
static const int serve_calls[] = {
    SCMP_SYS(epoll_wait),			   /* libmicrohttpd's event loop */
    SCMP_SYS(epoll_ctl),       SCMP_SYS(accept4),  /* new connections */
    SCMP_SYS(accept),	       SCMP_SYS(recvfrom), /* requests */
    SCMP_SYS(recvmsg),	       SCMP_SYS(sendto),   /* responses */
    SCMP_SYS(sendmsg),	       SCMP_SYS(writev),
    SCMP_SYS(shutdown),	       SCMP_SYS(setsockopt), /* per-connection socket options */
    SCMP_SYS(getsockopt),      SCMP_SYS(getsockname),
    SCMP_SYS(fcntl),	       /* non-blocking connections */
    SCMP_SYS(mprotect),	       /* malloc arenas of worker threads (no PROT_EXEC: below) */
    SCMP_SYS(rt_sigtimedwait), /* sigwait for SIGINT/SIGTERM */
    SCMP_SYS(unlink),	       /* remove the Unix socket at stop */
    SCMP_SYS(sched_yield),
};

/* ioctl requests the monitor makes after setup. */
static const unsigned long run_ioctls[] = {KVM_RUN, KVM_SET_MSRS, KVM_GET_SREGS};
static const unsigned long serve_ioctls[] = {
    KVM_CREATE_VM,   KVM_SET_USER_MEMORY_REGION,
    KVM_CREATE_VCPU, KVM_SET_CPUID2,
    KVM_SET_SREGS,   KVM_SET_REGS,
    KVM_SET_XCRS,
};

int fnvm_sandbox_apply(enum fnvm_sandbox_kind kind, struct nb_error *err)
{
	/* Load the time zone now: libmicrohttpd's Date header would open
	 * /etc/localtime on the first request. */
	tzset();
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return nb_error_set(err, NB_EINTERNAL, "seccomp_init failed");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; !rc && i < sizeof(common_calls) / sizeof(common_calls[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, common_calls[i], 0);
	for (size_t i = 0; !rc && i < sizeof(run_ioctls) / sizeof(run_ioctls[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, run_ioctls[i]));
	/* Opening files fails (EACCES) rather than kills: glibc's malloc reads
	 * /proc/sys/vm/overcommit_memory when it first trims a thread's arena and
	 * copes without it. Nothing is opened after setup. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
	/* a thread started just before the filter names itself (libmicrohttpd) */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				      SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	/* anonymous or file mappings for malloc, never executable */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (kind == FNVM_SANDBOX_SERVE) {
		for (size_t i = 0; !rc && i < sizeof(serve_calls) / sizeof(serve_calls[0]); i++) {
			if (serve_calls[i] == SCMP_SYS(mprotect))
				rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, serve_calls[i], 1,
						      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
			else
				rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, serve_calls[i], 0);
		}
		for (size_t i = 0; !rc && i < sizeof(serve_ioctls) / sizeof(serve_ioctls[0]); i++)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					      SCMP_A1(SCMP_CMP_EQ, serve_ioctls[i]));
	}
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc)
		return nb_error_set(err, NB_EINTERNAL, "installing the seccomp filter failed: %s",
				    strerror(-rc));
	return 0;
}

#endif
