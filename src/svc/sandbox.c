/* SPDX-License-Identifier: MIT */
#include "sandbox.h"

#ifdef NUBIS_NO_SECCOMP

int svc_sandbox_apply(struct nb_error *err)
{
	(void)err;
	return 0;
}

#else

#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

/* Calls of the monitor itself and of the modules serving the guest. */
static const int allowed[] = {
    /* memory and threads of the monitor */
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),  /* malloc */
    SCMP_SYS(madvise), /* guest munmap/madvise: drop pages */
    SCMP_SYS(futex),   /* locks, condvars, guest futex waits */
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq), /* new host threads (vCPUs) */
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(sched_setaffinity), /* exitless: the server thread pins itself */
    SCMP_SYS(getrusage),
    SCMP_SYS(times),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(rt_sigreturn), /* the kick signal's handler */
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(tgkill), /* pthread_kill: kick a vCPU */
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(getrandom),
    SCMP_SYS(sysinfo),
    SCMP_SYS(rt_sigtimedwait),
    /* waiting */
    SCMP_SYS(ppoll),
    SCMP_SYS(poll),
    SCMP_SYS(pselect6),
    SCMP_SYS(select),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(eventfd2),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    /* files of the root filesystem (fs module; confined by its resolver) */
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    SCMP_SYS(lseek),
    SCMP_SYS(close),
    SCMP_SYS(dup),
    SCMP_SYS(dup3),
    SCMP_SYS(fcntl),
    SCMP_SYS(flock),
    SCMP_SYS(openat),
    SCMP_SYS(openat2),
    SCMP_SYS(open),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(fstatfs),
    SCMP_SYS(statfs),
    SCMP_SYS(getdents64),
    SCMP_SYS(mkdirat),
    SCMP_SYS(unlinkat),
    SCMP_SYS(renameat2),
    SCMP_SYS(renameat),
    SCMP_SYS(linkat),
    SCMP_SYS(symlinkat),
    SCMP_SYS(readlinkat),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(fchmod),
    SCMP_SYS(fchmodat),
    SCMP_SYS(fchown),
    SCMP_SYS(fchownat),
    SCMP_SYS(utimensat),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(sync_file_range),
    SCMP_SYS(fgetxattr),
    SCMP_SYS(flistxattr),
    SCMP_SYS(fsetxattr),
    SCMP_SYS(fremovexattr),
    SCMP_SYS(getxattr),
    SCMP_SYS(lgetxattr),
    SCMP_SYS(listxattr),
    SCMP_SYS(llistxattr),
    SCMP_SYS(mknodat),
    SCMP_SYS(pipe2),
    SCMP_SYS(splice),
    SCMP_SYS(sendfile),
    SCMP_SYS(copy_file_range),
    SCMP_SYS(umask),
    SCMP_SYS(fchdir),
    SCMP_SYS(getcwd),
    SCMP_SYS(memfd_create), /* fs: synthetic /proc files */
    SCMP_SYS(syncfs),	    /* fs: sync(2)/syncfs(2) of the writable layer */
    /* sockets (net module; confined by its policy) */
    SCMP_SYS(socket),
    SCMP_SYS(socketpair),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept),
    SCMP_SYS(accept4),
    SCMP_SYS(connect),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmmsg),
    SCMP_SYS(recvmmsg),
    SCMP_SYS(shutdown),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
};

/* ioctl requests: KVM (threads create vCPUs) and the terminal/socket ones
 * the fs and net modules pass on. */
static const unsigned long ioctls[] = {
    KVM_RUN,
    KVM_GET_MSRS, /* a vCPU's TSC: emulated rdtsc, the vDSO's check of new vCPUs */
    KVM_SET_MSRS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_XSAVE,
    KVM_SET_XSAVE,
    KVM_GET_FPU,
    KVM_SET_FPU,
    KVM_CREATE_VCPU,
    KVM_SET_CPUID2,
    KVM_SET_XCRS,
    0x541B /* FIONREAD */,
    0x5421 /* FIONBIO */,
    0x5401 /* TCGETS */,
    0x5413 /* TIOCGWINSZ */,
    0x8905 /* SIOCATMARK */,
    0x540F /* TIOCGPGRP */,
    0x5410 /* TIOCSPGRP */,
    0x5402 /* TCSETS */,
    0x5403 /* TCSETSW */,
    0x5404 /* TCSETSF */,
};

int svc_sandbox_apply(struct nb_error *err)
{
	tzset();
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return nb_error_set(err, NB_EINTERNAL, "seccomp_init failed");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; !rc && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	for (size_t i = 0; !rc && i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, ioctls[i]));
	/* host threads for new guest threads: only thread-style clones */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				      SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	/* memory for malloc and thread stacks, never executable */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* fs: fchmodat2 (Linux 6.6, newer than this libseccomp's table): by number */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, 452, 0);
	/* net (optional: SCM_RIGHTS matching) */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kcmp), 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc)
		return nb_error_set(err, NB_EINTERNAL, "installing the seccomp filter failed: %s",
				    strerror(-rc));
	return 0;
}

#endif
