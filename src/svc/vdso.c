/* SPDX-License-Identifier: MIT */
/* Service-VM vDSO, monitor side: the clock page and its refresh thread. */
#include "vdso.h"

#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "../common/log.h"
#include "../core/vm.h"

#define MSR_IA32_TSC 0x10u
#define NSEC	     1000000000ull
/* An offset (REALTIME - MONOTONIC ...) that moved by more than this was
 * stepped on the host; smaller moves are sampling jitter. */
#define OFF_JITTER_NS 2000
/* Steering limits of the slope (relative): +1 %, -10 %. */
#define SLEW_UP_NS   (SVC_VDSO_HORIZON_NS / 100)
#define SLEW_DOWN_NS (SVC_VDSO_HORIZON_NS / 10)

struct svc_vdso {
	volatile struct svc_vvar *page;
	struct svc_vclock clk;
	uint64_t tsc_off; /* guest TSC = host TSC + tsc_off (mod 2^64) */
	uint64_t tsc_tol; /* uncertainty of tsc_off, ticks */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_up, stop;
	atomic_bool fallback; /* for good: the page says "system call" */
};

/* ---------------------------------------------------------------- lines */

static uint64_t mult_for(uint64_t ns, uint64_t ticks)
{
	if (!ticks)
		return 0;
	return (uint64_t)(((unsigned __int128)ns << SVC_VDSO_SHIFT) / ticks);
}

void svc_vclock_init(struct svc_vclock *c, uint64_t tsc_hz)
{
	memset(c, 0, sizeof(*c));
	c->tsc_hz = tsc_hz;
	c->mono_mult0 = c->raw_mult0 = mult_for(NSEC, tsc_hz);
	c->page.version = SVC_VVAR_VERSION;
	c->page.shift = SVC_VDSO_SHIFT;
}

/* Refined slope from the anchor to @s, if the interval is long enough and
 * the result within 1 % of the nominal one (else the nominal one). */
static uint64_t refine(uint64_t nominal, uint64_t tsc_hz, uint64_t dns, uint64_t dticks)
{
	if (dticks < tsc_hz || !dns)
		return nominal;
	uint64_t m = mult_for(dns, dticks);
	uint64_t lim = nominal / 100;
	return m > nominal + lim || m + lim < nominal ? nominal : m;
}

/* Move one line (base, mult) to the new anchor @tsc: continuous there,
 * steered by the error against @host measured at @stsc. */
static void steer(uint64_t *base, uint64_t *mult, uint64_t mult0, uint64_t old_tsc, uint64_t stsc,
		  uint64_t host, uint64_t tsc)
{
	uint64_t cont = svc_vvar_line(*base, *mult, SVC_VDSO_SHIFT, old_tsc, tsc);
	int64_t err = (int64_t)(host - svc_vvar_line(*base, *mult, SVC_VDSO_SHIFT, old_tsc, stsc));
	if (err > SVC_VDSO_STEP_NS) {
		/* far behind the host (a late refresh after a stop, a bad
		 * slope): a forward step keeps the clock monotonic */
		uint64_t h = svc_vvar_line(host, mult0, SVC_VDSO_SHIFT, stsc, tsc);
		*base = h > cont ? h : cont;
		*mult = mult0;
		return;
	}
	if (err > (int64_t)SLEW_UP_NS)
		err = (int64_t)SLEW_UP_NS;
	if (err < -(int64_t)SLEW_DOWN_NS)
		err = -(int64_t)SLEW_DOWN_NS;
	*base = cont;
	*mult = (uint64_t)((unsigned __int128)mult0 *
			   (uint64_t)((int64_t)SVC_VDSO_HORIZON_NS + err) / SVC_VDSO_HORIZON_NS);
}

static void follow_offset(uint64_t *off, uint64_t now)
{
	int64_t d = (int64_t)(now - *off);
	if (d > OFF_JITTER_NS || d < -OFF_JITTER_NS)
		*off = now;
}

void svc_vclock_update(struct svc_vclock *c, const struct svc_vclock_sample *s, uint64_t tsc)
{
	struct svc_vvar *p = &c->page;
	if (!c->started) {
		c->started = true;
		c->anchor = *s;
		p->tsc_base = s->tsc;
		p->mono_base = s->mono;
		p->raw_base = s->raw;
		p->mono_mult = c->mono_mult0;
		p->raw_mult = c->raw_mult0;
		p->real_off = s->real - s->mono;
		p->boot_off = s->boot - s->mono;
		p->tai_off = s->tai - s->mono;
		return;
	}
	if (s->tsc > c->anchor.tsc) {
		uint64_t dt = s->tsc - c->anchor.tsc, nominal = mult_for(NSEC, c->tsc_hz);
		c->mono_mult0 = refine(nominal, c->tsc_hz, s->mono - c->anchor.mono, dt);
		c->raw_mult0 = refine(nominal, c->tsc_hz, s->raw - c->anchor.raw, dt);
	}
	uint64_t old_tsc = p->tsc_base;
	/* never move the anchor back (a reading on a CPU whose TSC lags) */
	if (tsc < old_tsc)
		tsc = old_tsc;
	steer(&p->mono_base, &p->mono_mult, c->mono_mult0, old_tsc, s->tsc, s->mono, tsc);
	steer(&p->raw_base, &p->raw_mult, c->raw_mult0, old_tsc, s->tsc, s->raw, tsc);
	p->tsc_base = tsc;
	follow_offset(&p->real_off, s->real - s->mono);
	follow_offset(&p->boot_off, s->boot - s->mono);
	follow_offset(&p->tai_off, s->tai - s->mono);
}

/* -------------------------------------------------------------- seqlock */

void svc_vvar_write_begin(volatile struct svc_vvar *v)
{
	uint32_t s = v->seq;
	v->seq = s | 1u;
	/* the odd seq is visible before the TSC is read (mfence), and the
	 * TSC is read after it (lfence in tsc_host) */
	atomic_thread_fence(memory_order_seq_cst);
}

void svc_vvar_write_end(volatile struct svc_vvar *v, const struct svc_vvar *d)
{
	uint32_t s = v->seq;
	v->flags = d->flags;
	v->version = d->version;
	v->shift = d->shift;
	v->tsc_base = d->tsc_base;
	v->mono_base = d->mono_base;
	v->mono_mult = d->mono_mult;
	v->raw_base = d->raw_base;
	v->raw_mult = d->raw_mult;
	v->real_off = d->real_off;
	v->boot_off = d->boot_off;
	v->tai_off = d->tai_off;
	atomic_thread_fence(memory_order_release);
	v->seq = (s | 1u) + 1u;
}

/* ----------------------------------------------------------------- host */

static uint64_t tsc_host(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static uint64_t host_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* @id minus CLOCK_MONOTONIC at one instant (retried when preempted between
 * the readings, which would look like a step of the wall clock). */
static uint64_t host_off(clockid_t id)
{
	uint64_t off = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t a = host_ns(CLOCK_MONOTONIC), x = host_ns(id),
			 b = host_ns(CLOCK_MONOTONIC);
		off = x - (a + (b - a) / 2);
		if (b - a < OFF_JITTER_NS)
			break;
	}
	return off;
}

/* The TSC beside the host clocks; retried when the thread was preempted
 * between the readings. */
static void sample(struct svc_vdso *v, struct svc_vclock_sample *s)
{
	for (int i = 0; i < 4; i++) {
		uint64_t r1 = host_ns(CLOCK_MONOTONIC_RAW), m1 = host_ns(CLOCK_MONOTONIC);
		s->tsc = tsc_host() + v->tsc_off;
		uint64_t m2 = host_ns(CLOCK_MONOTONIC), r2 = host_ns(CLOCK_MONOTONIC_RAW);
		s->mono = m1 + (m2 - m1) / 2;
		s->raw = r1 + (r2 - r1) / 2;
		if (r2 - r1 < 20000)
			break;
	}
	s->real = s->mono + host_off(CLOCK_REALTIME);
	s->boot = s->mono + host_off(CLOCK_BOOTTIME);
	s->tai = s->mono + host_off(CLOCK_TAI);
}

/* Sample outside the seqlock section; inside, only the TSC is read (after
 * seq went odd: see vvar.h) and the lines are moved there, so readers wait
 * a few hundred nanoseconds at most. */
static void refresh(struct svc_vdso *v)
{
	struct svc_vclock_sample s;
	sample(v, &s);
	svc_vvar_write_begin(v->page);
	svc_vclock_update(&v->clk, &s, tsc_host() + v->tsc_off);
	v->clk.page.flags = atomic_load(&v->fallback) ? 0 : SVC_VVAR_F_TSC;
	svc_vvar_write_end(v->page, &v->clk.page);
}

static void *refresher(void *arg)
{
	struct svc_vdso *v = arg;
	pthread_mutex_lock(&v->lock);
	while (!v->stop && !atomic_load(&v->fallback)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t t = (uint64_t)ts.tv_nsec + SVC_VDSO_PERIOD_NS;
		ts.tv_sec += (time_t)(t / NSEC);
		ts.tv_nsec = (long)(t % NSEC);
		pthread_cond_timedwait(&v->cond, &v->lock, &ts);
		if (!v->stop && !atomic_load(&v->fallback))
			refresh(v);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* Why the TSC cannot serve as the guest's clock here, or NULL. */
static const char *tsc_unusable(void)
{
	unsigned a, b, c, d;
	bool invariant = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
	if (!invariant) {
		/* nested hosts may hide the leaf; the kernel's flags say the same */
		FILE *f = fopen("/proc/cpuinfo", "re");
		char line[16384]; /* the flags line is long */
		bool cst = false, nst = false;
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "flags", 5)) {
				cst = strstr(line, " constant_tsc") != NULL;
				nst = strstr(line, " nonstop_tsc") != NULL;
				break;
			}
		if (f)
			fclose(f);
		if (!cst || !nst)
			return "the host TSC is not invariant";
	}
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
	char cs[64] = "";
	if (f) {
		if (!fgets(cs, sizeof(cs), f))
			cs[0] = 0;
		fclose(f);
	}
	if (strcmp(cs, "tsc\n"))
		return "the host kernel does not use the TSC as its clocksource";
	return NULL;
}

/* Guest TSC of @c (not running) bracketed by two host readings. */
static int guest_tsc(struct vcpu *c, uint64_t *h1, uint64_t *g, uint64_t *h2)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = MSR_IA32_TSC;
	*h1 = tsc_host();
	int n = ioctl(c->fd, KVM_GET_MSRS, &m);
	*h2 = tsc_host();
	if (n != 1)
		return n < 0 ? -errno : -EIO;
	*g = m.e.data;
	return 0;
}

static void fall_back(struct svc_vdso *v, const char *why)
{
	if (atomic_exchange(&v->fallback, true))
		return;
	nb_log(NB_LOG_INFO, "vdso: clocks by system call: %s", why);
	pthread_mutex_lock(&v->lock);
	v->clk.page.flags = 0;
	svc_vvar_write_begin(v->page);
	svc_vvar_write_end(v->page, &v->clk.page);
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

int svc_vdso_create(struct vcpu *cpu0, void *page, enum svc_vdso_mode mode, struct svc_vdso **out)
{
	*out = NULL;
	struct svc_vdso *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->page = page;
	pthread_mutex_init(&v->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&v->fallback, false);

	const char *why = mode == SVC_VDSO_SYSCALL ? "--vdso syscall" : tsc_unusable();
	int khz = why ? 0 : ioctl(cpu0->fd, KVM_GET_TSC_KHZ, 0);
	if (!why && khz <= 0)
		why = "KVM does not tell the guest TSC frequency";
	/* the narrowest of a few host brackets around KVM's reading of the
	 * guest TSC; a guest TSC inside it is taken as the host's (kvm_pvm) */
	uint64_t h1 = 0, g = 0, h2 = 0;
	for (int i = 0; !why && i < 5; i++) {
		uint64_t a, x, b;
		if (guest_tsc(cpu0, &a, &x, &b) < 0)
			why = "KVM does not tell the guest TSC";
		else if (i == 0 || b - a < h2 - h1)
			h1 = a, g = x, h2 = b;
	}
	svc_vclock_init(&v->clk, (uint64_t)(khz > 0 ? khz : 1) * 1000);
	if (why) {
		/* the page stays as built: all zero, "system call" */
		atomic_store(&v->fallback, true);
		if (mode != SVC_VDSO_SYSCALL)
			nb_log(NB_LOG_INFO, "vdso: clocks by system call: %s", why);
		*out = v;
		return 0;
	}
	if (g >= h1 && g <= h2) {
		v->tsc_off = 0;
		v->tsc_tol = h2 - h1 + 1;
	} else {
		v->tsc_off = g - (h1 + (h2 - h1) / 2);
		v->tsc_tol = (h2 - h1) / 2 + 1;
	}
	refresh(v);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 << 10); /* it calls clock_gettime only */
	int rc = pthread_create(&v->thread, &at, refresher, v);
	pthread_attr_destroy(&at);
	if (rc) {
		svc_vdso_destroy(v);
		return -rc;
	}
	v->thread_up = true;
	*out = v;
	return 0;
}

void svc_vdso_vcpu_added(struct svc_vdso *v, struct vcpu *c)
{
	if (!v || atomic_load(&v->fallback))
		return;
	uint64_t h1, g, h2;
	if (guest_tsc(c, &h1, &g, &h2) < 0) {
		fall_back(v, "cannot read the TSC of a new vCPU");
		return;
	}
	/* g - off must lie in [h1, h2], widened by the first measurement's
	 * uncertainty and a little for the two CPUs' readings */
	uint64_t host = g - v->tsc_off, slack = v->tsc_tol + 2000;
	if ((int64_t)(host - h1) < -(int64_t)slack || (int64_t)(host - h2) > (int64_t)slack) {
		char why[96];
		snprintf(why, sizeof(why), "vCPU %d's TSC differs by %lld ticks", c->id,
			 (long long)(host - (h1 + (h2 - h1) / 2)));
		fall_back(v, why);
	}
}

int svc_vdso_clock(struct svc_vdso *v, long clk, uint64_t *ns)
{
	if (!v || atomic_load(&v->fallback) || !svc_vvar_clock_ok(clk))
		return -1;
	/* the monitor's copy, under the lock the refresher holds while it
	 * moves the lines; the TSC is read once the copy is stable */
	pthread_mutex_lock(&v->lock);
	const struct svc_vvar *p = &v->clk.page;
	int rc = -1;
	if (p->flags & SVC_VVAR_F_TSC) {
		bool raw = clk == SVC_VVAR_CLOCK_MONOTONIC_RAW;
		uint64_t add = 0;
		if (clk == SVC_VVAR_CLOCK_REALTIME || clk == SVC_VVAR_CLOCK_REALTIME_COARSE)
			add = p->real_off;
		else if (clk == SVC_VVAR_CLOCK_BOOTTIME)
			add = p->boot_off;
		else if (clk == SVC_VVAR_CLOCK_TAI)
			add = p->tai_off;
		uint64_t t = tsc_host() + v->tsc_off;
		*ns = svc_vvar_line(raw ? p->raw_base : p->mono_base,
				    raw ? p->raw_mult : p->mono_mult, p->shift, p->tsc_base, t) +
		      add;
		rc = 0;
	}
	pthread_mutex_unlock(&v->lock);
	return rc;
}

bool svc_vdso_active(const struct svc_vdso *v)
{
	return v && !atomic_load(&v->fallback);
}

void svc_vdso_destroy(struct svc_vdso *v)
{
	if (!v)
		return;
	if (v->thread_up) {
		pthread_mutex_lock(&v->lock);
		v->stop = true;
		pthread_cond_broadcast(&v->cond);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->thread, NULL);
	}
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
}
