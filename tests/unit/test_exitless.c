/* SPDX-License-Identifier: MIT */
/* Exitless system calls: which copied requests the server may serve, and
 * the slot layout the stub's machine code depends on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include <cmocka.h>

#include "../../src/svc/exitless.h"

static void whitelist(void **state)
{
	(void)state;
	const uint64_t z[6] = {0};
	const long ok[] = {SYS_read,	 SYS_write,	 SYS_readv,  SYS_writev,      SYS_pread64,
			   SYS_pwrite64, SYS_recvfrom,	 SYS_sendto, SYS_recvmsg,     SYS_sendmsg,
			   SYS_accept4,	 SYS_epoll_wait, SYS_poll,   SYS_epoll_pwait, SYS_ppoll};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(svc_fast_allowed((uint64_t)ok[i], z));
	/* calls that need the vCPU thread or may block in other ways */
	const long no[] = {SYS_clone,	   SYS_rt_sigreturn, SYS_exit,	  SYS_exit_group,
			   SYS_futex,	   SYS_nanosleep,    SYS_getppid, SYS_rt_sigprocmask,
			   SYS_arch_prctl, SYS_mmap,	     SYS_connect, SYS_accept,
			   SYS_pselect6,   SYS_epoll_pwait2, SYS_clone3,  SYS_execve};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(svc_fast_allowed((uint64_t)no[i], z));
}

static void hostile_numbers(void **state)
{
	(void)state;
	uint64_t a[6] = {0};
	assert_false(svc_fast_allowed(SVC_NR_FASTRET, a));
	assert_false(svc_fast_allowed(~0ull, a));
	assert_false(svc_fast_allowed(1ull << 32 | SYS_read, a)); /* no truncation to 32 bits */
	assert_false(svc_fast_allowed(512, a));
	/* a signal mask: the vCPU thread swaps it and restores it after delivery */
	a[4] = 0x7fff0000;
	assert_false(svc_fast_allowed(SYS_epoll_pwait, a));
	a[4] = 0;
	a[3] = 1;
	assert_false(svc_fast_allowed(SYS_ppoll, a));
	/* garbage in other arguments is the handlers' business (EFAULT, EBADF) */
	for (int i = 0; i < 6; i++)
		a[i] = ~0ull;
	assert_true(svc_fast_allowed(SYS_read, a));
}

static void slot_layout(void **state)
{
	(void)state;
	/* offsets used by the stub: state %gs:0, nr %gs:8, args %gs:16.., result %gs:64 */
	assert_int_equal(offsetof(struct svc_fast_slot, state), 0);
	assert_int_equal(offsetof(struct svc_fast_slot, nr), 8);
	assert_int_equal(offsetof(struct svc_fast_slot, a), 16);
	assert_int_equal(offsetof(struct svc_fast_slot, result), 64);
	assert_true(sizeof(struct svc_fast_slot) <= SVC_FAST_SLOT_SZ);
	assert_int_equal(SVC_FAST_DONE, 3);
	assert_int_equal(SVC_FAST_DEFER, 4);
	assert_int_equal(SVC_FAST_DONE_EXIT, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(whitelist),
	    cmocka_unit_test(hostile_numbers),
	    cmocka_unit_test(slot_layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
