/* SPDX-License-Identifier: MIT */
/* Service-VM vDSO (vdso helper): the clock lines, steering, seqlock, and the
 * user mapping of the vDSO pages. No /dev/kvm needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/arch/x86/uvm.h"
#include "svc/vdso.h"

#define HZ  3000000000ull /* nominal TSC: 3 GHz */
#define SEC 1000000000ull

/* A simulated host: its TSC runs at @hz_true ticks per host-monotonic second. */
struct sim {
	uint64_t hz_true;
	uint64_t tsc0, mono0, real_off;
};

static struct svc_vclock_sample at(const struct sim *s, uint64_t mono)
{
	struct svc_vclock_sample x;
	x.mono = mono;
	x.raw = mono;
	x.tsc = s->tsc0 + (uint64_t)((unsigned __int128)(mono - s->mono0) * s->hz_true / SEC);
	x.real = mono + s->real_off;
	x.boot = mono + 5;
	x.tai = x.real + 37 * SEC;
	return x;
}

static uint64_t guest(const struct svc_vclock *c, long clk, uint64_t tsc)
{
	const struct svc_vvar *p = &c->page;
	uint64_t base = clk == 4 ? p->raw_base : p->mono_base;
	uint64_t mult = clk == 4 ? p->raw_mult : p->mono_mult;
	uint64_t v = svc_vvar_line(base, mult, p->shift, p->tsc_base, tsc);
	if (clk == 0)
		v += p->real_off;
	return v;
}

static void test_line_conversion(void **state)
{
	(void)state;
	struct svc_vclock c;
	svc_vclock_init(&c, HZ);
	struct sim s = {
	    .hz_true = HZ, .tsc0 = 1000000, .mono0 = 50 * SEC, .real_off = 1700000000ull * SEC};
	struct svc_vclock_sample x = at(&s, s.mono0);
	svc_vclock_update(&c, &x, x.tsc);
	assert_int_equal(c.page.version, SVC_VVAR_VERSION);
	assert_int_equal(c.page.shift, SVC_VDSO_SHIFT);
	/* one second of TSC is one second, to the nanosecond */
	uint64_t g = guest(&c, 1, x.tsc + HZ);
	assert_true(g >= 51 * SEC - 1 && g <= 51 * SEC + 1);
	assert_int_equal(guest(&c, 0, x.tsc), s.mono0 + s.real_off);
	/* a TSC below the anchor counts as the anchor */
	assert_int_equal(guest(&c, 1, x.tsc - 12345), 50 * SEC);
	/* a late refresh: an hour later the 128-bit product does not overflow
	 * (the slope's rounding, < 1e-9, is < 1 us in an hour) */
	g = guest(&c, 1, x.tsc + 3600 * HZ);
	assert_true(g >= 3650 * SEC - 1000 && g <= 3650 * SEC + 1000);
}

/* Refresh every 200 ms against a host whose TSC runs @ppm off the nominal
 * frequency; check the error and that no reading ever goes back. */
static void run_drift(long ppm, uint64_t *max_err_late)
{
	struct svc_vclock c;
	svc_vclock_init(&c, HZ);
	struct sim s = {.hz_true = (uint64_t)((int64_t)HZ + (int64_t)HZ / 1000000 * ppm),
			.tsc0 = 77,
			.mono0 = SEC};
	struct svc_vclock_sample x = at(&s, s.mono0);
	svc_vclock_update(&c, &x, x.tsc);
	uint64_t last = 0, maxe = 0;
	for (int i = 1; i <= 100; i++) {
		uint64_t mono = s.mono0 + (uint64_t)i * 200000000ull;
		/* guest readings between the refreshes, in order */
		for (int k = 0; k < 50; k++) {
			struct svc_vclock_sample y =
			    at(&s, mono - 200000000ull + (uint64_t)k * 4000000ull);
			uint64_t v = guest(&c, 1, y.tsc);
			assert_true(v >= last);
			last = v;
			int64_t e = (int64_t)(v - y.mono);
			if (i > 50 && (uint64_t)(e < 0 ? -e : e) > maxe)
				maxe = (uint64_t)(e < 0 ? -e : e);
		}
		x = at(&s, mono);
		uint64_t before = guest(&c, 1, x.tsc + 300);
		svc_vclock_update(&c, &x, x.tsc + 300); /* anchored a little after the sample */
		/* continuous at the new anchor */
		assert_int_equal(guest(&c, 1, x.tsc + 300), before);
	}
	*max_err_late = maxe;
}

static void test_steering(void **state)
{
	(void)state;
	uint64_t e;
	run_drift(0, &e);
	assert_true(e < 2000);
	run_drift(300, &e); /* 300 ppm fast TSC: found and followed */
	assert_true(e < 20000);
	run_drift(-500, &e);
	assert_true(e < 20000);
}

static void test_steps(void **state)
{
	(void)state;
	struct svc_vclock c;
	svc_vclock_init(&c, HZ);
	struct sim s = {.hz_true = HZ, .tsc0 = 5, .mono0 = SEC, .real_off = 1000 * SEC};
	struct svc_vclock_sample x = at(&s, s.mono0);
	svc_vclock_update(&c, &x, x.tsc);
	/* the host is 1 s ahead of the line (e.g. a long stop): step forward */
	x = at(&s, 2 * SEC);
	x.mono += SEC;
	uint64_t before = guest(&c, 1, x.tsc);
	svc_vclock_update(&c, &x, x.tsc);
	assert_true(guest(&c, 1, x.tsc) >= before);
	assert_true(guest(&c, 1, x.tsc) >= x.mono - 1000);
	/* the host is 50 ms behind the line: never back, slower slope */
	struct svc_vclock_sample y = at(&s, 3 * SEC);
	y.mono = guest(&c, 1, y.tsc) - 50000000ull;
	before = guest(&c, 1, y.tsc);
	uint64_t mult_before = c.page.mono_mult;
	svc_vclock_update(&c, &y, y.tsc);
	assert_int_equal(guest(&c, 1, y.tsc), before);
	assert_true(c.page.mono_mult < mult_before);
	/* REALTIME: a host step of 1 s is followed at once, 1 us of jitter is not */
	uint64_t off = c.page.real_off;
	struct svc_vclock_sample z = at(&s, 4 * SEC);
	z.mono = guest(&c, 1, z.tsc);
	z.real = z.mono + off + 1000;
	svc_vclock_update(&c, &z, z.tsc);
	assert_int_equal(c.page.real_off, off);
	z = at(&s, 4 * SEC + 200000000ull);
	z.mono = guest(&c, 1, z.tsc);
	z.real = z.mono + off - SEC;
	svc_vclock_update(&c, &z, z.tsc);
	assert_int_equal(c.page.real_off, off - SEC);
	/* an anchor TSC before the current one (another CPU) does not move it back */
	uint64_t tb = c.page.tsc_base;
	struct svc_vclock_sample w = z;
	w.tsc = tb - 100;
	svc_vclock_update(&c, &w, tb - 100);
	assert_int_equal(c.page.tsc_base, tb);
}

/* ---- seqlock: a writer changes every field; readers never see a mix ---- */

struct sl {
	struct svc_vvar page;
	atomic_bool stop;
	atomic_long torn, reads;
};

static uint64_t fake_tsc(void)
{
	return 0;
}

static void *writer(void *arg)
{
	struct sl *s = arg;
	struct svc_vvar d;
	memset(&d, 0, sizeof(d));
	d.flags = SVC_VVAR_F_TSC;
	d.shift = 32;
	for (uint64_t k = 1; !atomic_load(&s->stop); k++) {
		/* consistent pages have REALTIME == 12345 and RAW == MONO + 7 */
		d.mono_base = k * 1000;
		d.real_off = 12345 - k * 1000;
		d.raw_base = k * 1000 + 7;
		svc_vvar_write_begin(&s->page);
		svc_vvar_write_end(&s->page, &d);
	}
	return NULL;
}

static void *reader_thread(void *arg)
{
	struct sl *s = arg;
	while (!atomic_load(&s->stop)) {
		uint64_t r;
		if (svc_vvar_read(&s->page, 0, fake_tsc, &r) == 0) {
			if (r != 12345)
				atomic_fetch_add(&s->torn, 1);
			atomic_fetch_add(&s->reads, 1);
		}
	}
	return NULL;
}

static void test_seqlock(void **state)
{
	(void)state;
	struct sl *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pthread_t w, r[2];
	assert_int_equal(pthread_create(&w, NULL, writer, s), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&r[i], NULL, reader_thread, s), 0);
	struct timespec ts = {0, 300000000};
	nanosleep(&ts, NULL);
	atomic_store(&s->stop, true);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i], NULL);
	assert_true(atomic_load(&s->reads) > 0);
	assert_int_equal(atomic_load(&s->torn), 0);
	assert_int_equal(s->page.seq % 2, 0);
	free(s);
}

static void test_read_fallback(void **state)
{
	(void)state;
	struct svc_vvar p;
	memset(&p, 0, sizeof(p));
	uint64_t ns = 99;
	/* the all-zero page of a fresh guest: system call */
	assert_int_equal(svc_vvar_read(&p, 1, fake_tsc, &ns), -1);
	p.flags = SVC_VVAR_F_TSC;
	p.mono_base = 10;
	p.boot_off = 5;
	p.tai_off = 7;
	assert_int_equal(svc_vvar_read(&p, 1, fake_tsc, &ns), 0);
	assert_int_equal(ns, 10);
	assert_int_equal(svc_vvar_read(&p, 7, fake_tsc, &ns), 0);
	assert_int_equal(ns, 15);
	assert_int_equal(svc_vvar_read(&p, 11, fake_tsc, &ns), 0);
	assert_int_equal(ns, 17);
	/* CPU-time clocks and unknown ids are not served */
	assert_int_equal(svc_vvar_read(&p, 2, fake_tsc, &ns), -1);
	assert_int_equal(svc_vvar_read(&p, 3, fake_tsc, &ns), -1);
	assert_int_equal(svc_vvar_read(&p, 12, fake_tsc, &ns), -1);
	assert_int_equal(svc_vvar_read(&p, -1, fake_tsc, &ns), -1);
}

/* ---- the guest pages: where they go, what the tables say ---- */

static void test_map_user(void **state)
{
	(void)state;
	uint8_t *sys = calloc(1, UVM_SYS_END);
	assert_non_null(sys);
	assert_int_equal(x86_uvm_build(sys, 64ull << 20), 0);
	assert_int_equal(x86_uvm_map_user(sys, UVM_VVAR, 4096, 0), 0);
	assert_int_equal(x86_uvm_map_user(sys, UVM_VDSO, 8192, 1), 0);
	uint64_t pte;
	memcpy(&pte, sys + UVM_PT0 + 8 * (UVM_VVAR >> 12), 8);
	assert_true(pte == (UVM_VVAR | 0x5ull | (1ull << 63))); /* P, U/S, NX; not RW */
	memcpy(&pte, sys + UVM_PT0 + 8 * ((UVM_VDSO + 4096) >> 12), 8);
	assert_true(pte == ((UVM_VDSO + 4096) | 0x5ull)); /* P, U/S, executable */
	memcpy(&pte, sys + UVM_PT0 + 8 * ((UVM_VDSO + 8192) >> 12), 8);
	assert_true(pte == 0);
	/* nothing of the monitor's area, nothing of the program's, no odd sizes */
	assert_int_equal(x86_uvm_map_user(sys, UVM_GDT, 4096, 0), -EINVAL);
	assert_int_equal(x86_uvm_map_user(sys, UVM_USER_BASE - 4096, 8192, 0), -EINVAL);
	assert_int_equal(x86_uvm_map_user(sys, UVM_VVAR + 1, 4096, 0), -EINVAL);
	assert_int_equal(x86_uvm_map_user(sys, UVM_VVAR, 0, 0), -EINVAL);
	assert_int_equal(x86_uvm_map_user(sys, UVM_VVAR, UINT64_MAX - 4095, 0), -EINVAL);
	free(sys);
	/* the embedded image fits the reserved area and is an ELF file */
	assert_true(svc_vdso_image_len > 64 && svc_vdso_image_len <= UVM_VDSO_MAX);
	assert_memory_equal(svc_vdso_image, "\177ELF", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_conversion), cmocka_unit_test(test_steering),
	    cmocka_unit_test(test_steps),	    cmocka_unit_test(test_seqlock),
	    cmocka_unit_test(test_read_fallback),   cmocka_unit_test(test_map_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
