/* SPDX-License-Identifier: MIT */
/* fnvm_sandbox_apply: in a child process, allowed calls work and the rest
 * kill it with SIGSYS (or, for open/openat, fail with EACCES). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fnvm/sandbox.h"

/* Run @fn in a child under the sandbox; return its wait status. */
static int in_child(enum fnvm_sandbox_kind kind, int (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct nb_error err;
		if (fnvm_sandbox_apply(kind, &err) < 0)
			_exit(100);
		_exit(fn()); /* _exit: no atexit work (sanitizer reports) under the filter */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static int do_write(void)
{
	return write(-1, "x", 1) == -1 && errno == EBADF ? 7 : 1;
}

static int do_socket(void)
{
	socket(AF_INET, SOCK_STREAM, 0);
	return 0; /* not reached */
}

static int do_open(void)
{
	int fd = open("/etc/hostname", O_RDONLY);
	return fd < 0 && errno == EACCES ? 7 : 1;
}

static int do_exec_mapping(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0; /* not reached */
}

static int do_plain_mapping(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p != MAP_FAILED ? 7 : 1;
}

static int do_other_ioctl(void)
{
	ioctl(0, FIONREAD, &(int){0});
	return 0; /* not reached */
}

static int do_kvm_run_ioctl(void)
{
	/* KVM_RUN is allowed; on a non-KVM fd it fails with an error, not SIGSYS */
	return ioctl(-1, KVM_RUN, 0) == -1 && errno == EBADF ? 7 : 1;
}

static int do_create_vm(void)
{
	ioctl(-1, KVM_CREATE_VM, 0);
	return 7;
}

static void exits_with(int st, int code)
{
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), code);
}

static void killed_by_sigsys(int st)
{
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_run_filter(void **state)
{
	(void)state;
	exits_with(in_child(FNVM_SANDBOX_RUN, do_write), 7);
	exits_with(in_child(FNVM_SANDBOX_RUN, do_open), 7);
	exits_with(in_child(FNVM_SANDBOX_RUN, do_plain_mapping), 7);
	exits_with(in_child(FNVM_SANDBOX_RUN, do_kvm_run_ioctl), 7);
	killed_by_sigsys(in_child(FNVM_SANDBOX_RUN, do_socket));
	killed_by_sigsys(in_child(FNVM_SANDBOX_RUN, do_exec_mapping));
	killed_by_sigsys(in_child(FNVM_SANDBOX_RUN, do_other_ioctl));
	killed_by_sigsys(in_child(FNVM_SANDBOX_RUN, do_create_vm));
}

static void test_serve_filter(void **state)
{
	(void)state;
	exits_with(in_child(FNVM_SANDBOX_SERVE, do_create_vm), 7);
	exits_with(in_child(FNVM_SANDBOX_SERVE, do_write), 7);
	killed_by_sigsys(in_child(FNVM_SANDBOX_SERVE, do_socket));
	killed_by_sigsys(in_child(FNVM_SANDBOX_SERVE, do_exec_mapping));
	killed_by_sigsys(in_child(FNVM_SANDBOX_SERVE, do_other_ioctl));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_filter),
	    cmocka_unit_test(test_serve_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
