/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: the per-VM fd table (src/svc/fdtab.c) without KVM. The core's
 * two accessors of struct svc_vm are given here over a test struct.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/fs.h"

struct svc_vm {
	struct svc_fdtab *tab;
};

struct svc_fdtab *svc_vm_fdtab(struct svc_vm *vm)
{
	return vm->tab;
}

void svc_vm_set_fdtab(struct svc_vm *vm, struct svc_fdtab *fds)
{
	vm->tab = fds;
}

static int released;
static void count_release(struct svc_file *f)
{
	(void)f;
	__atomic_add_fetch(&released, 1, __ATOMIC_RELAXED);
}

static struct svc_file *newfile(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct svc_file *f = svc_file_new(SVC_F_FILE, fd, O_RDONLY, 0);
	assert_non_null(f);
	f->release = count_release;
	return f;
}

static void test_install_lowest(void **state)
{
	(void)state;
	struct svc_vm vm = {svc_fdtab_create(8)};
	released = 0;
	for (int i = 0; i < 8; i++)
		assert_int_equal(svc_fd_install(&vm, newfile(), 0, false), i);
	assert_int_equal(svc_fd_install(&vm, newfile(), 0, false), -EMFILE);
	assert_int_equal(released, 1); /* the refused file was dropped */
	assert_int_equal(svc_fdtab_close(&vm, 3), 0);
	assert_int_equal(svc_fdtab_close(&vm, 3), -EBADF);
	assert_int_equal(svc_fdtab_close(&vm, -1), -EBADF);
	assert_int_equal(svc_fdtab_close(&vm, 100), -EBADF);
	assert_int_equal(svc_fd_install(&vm, newfile(), 0, true), 3);
	assert_int_equal(svc_fdtab_cloexec(&vm, 3, -1), 1);
	assert_int_equal(svc_fdtab_cloexec(&vm, 3, 0), 0);
	assert_null(svc_fd_get(&vm, 42));
	assert_null(svc_fd_get(&vm, -5));
	int fds[16];
	assert_int_equal(svc_fdtab_list(&vm, fds, 16), 8);
	svc_fdtab_destroy(vm.tab);
	assert_int_equal(released, 9 + 1);
}

static void test_dup_refs(void **state)
{
	(void)state;
	struct svc_vm vm = {svc_fdtab_create(64)};
	released = 0;
	int a = svc_fd_install(&vm, newfile(), 0, false);
	struct svc_file *f = svc_fd_get(&vm, a);
	assert_non_null(f);
	int b = svc_fd_install(&vm, f, 10, false); /* dup: reference taken over */
	assert_int_equal(b, 10);
	assert_int_equal(svc_fdtab_close(&vm, a), 0);
	assert_int_equal(released, 0); /* still open at 10 */
	/* replace: dup2 over an open fd closes the old file */
	int c = svc_fd_install(&vm, newfile(), 0, false);
	struct svc_file *g = svc_fd_get(&vm, c);
	assert_int_equal(svc_fdtab_replace(&vm, g, 10, true), 10);
	assert_int_equal(released, 1);
	assert_int_equal(svc_fdtab_cloexec(&vm, 10, -1), 1);
	struct svc_file *h = svc_fd_get(&vm, c);
	assert_int_equal(svc_fdtab_replace(&vm, h, 64, false), -EBADF); /* past the cap */
	assert_int_equal(svc_fdtab_replace(&vm, svc_fd_get(&vm, c), -1, false), -EBADF);
	/* close_range: CLOEXEC marks, plain closes */
	for (int i = 0; i < 5; i++)
		svc_fd_install(&vm, newfile(), 20, false);
	assert_int_equal(svc_fdtab_close_range(&vm, 20, 22, CLOSE_RANGE_CLOEXEC), 0);
	assert_int_equal(svc_fdtab_cloexec(&vm, 21, -1), 1);
	assert_int_equal(svc_fdtab_cloexec(&vm, 23, -1), 0);
	int before = released;
	assert_int_equal(svc_fdtab_close_range(&vm, 21, ~0u, 0), 0);
	assert_int_equal(released, before + 4);
	assert_int_equal(svc_fdtab_close_range(&vm, 5, 4, 0), -EINVAL);
	assert_int_equal(svc_fdtab_close_range(&vm, 0, 1, 0x80), -EINVAL);
	svc_fdtab_destroy(vm.tab);
	svc_fdtab_destroy(NULL);
}

struct churn {
	struct svc_vm *vm;
	int n;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	for (int i = 0; i < c->n; i++) {
		int fd = svc_fd_install(c->vm, newfile(), 0, false);
		if (fd < 0)
			continue;
		struct svc_file *f = svc_fd_get(c->vm, fd);
		if (f) {
			int d = svc_fd_install(c->vm, f, 0, false);
			if (d >= 0)
				svc_fdtab_close(c->vm, d);
		}
		svc_fdtab_close(c->vm, fd);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct svc_vm vm = {svc_fdtab_create(256)};
	released = 0;
	struct churn c = {&vm, 2000};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, churn_main, &c);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	int fds[256];
	assert_int_equal(svc_fdtab_list(&vm, fds, 256), 0); /* every fd closed */
	assert_int_equal(released, 8000);		    /* every file freed once */
	svc_fdtab_destroy(vm.tab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_install_lowest),
	    cmocka_unit_test(test_dup_refs),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
