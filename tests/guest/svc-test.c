/* SPDX-License-Identifier: MIT */
/*
 * svc-test: one static program with one subcommand per service-VM core test
 * (threads, futexes, signals). Built with musl and glibc (tests/guest/meson.build)
 * and driven by tests/e2e/test_svc_core.py. Each subcommand prints key=value
 * lines with write(2) (no stdio buffering across threads) and exits 0 when
 * its own checks hold, non-zero with a "fail=" line otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

/* futex constants (musl has no <linux/futex.h>) */
#define FUTEX_WAIT		  0
#define FUTEX_WAKE_OP		  5
#define FUTEX_CMP_REQUEUE	  4
#define FUTEX_WAIT_BITSET	  9
#define FUTEX_PRIVATE_FLAG	  128
#define FUTEX_CLOCK_REALTIME	  256
#define FUTEX_BITSET_MATCH_ANY	  0xffffffff
#define FUTEX_WAKE		  1
#define FUTEX_WAIT_PRIVATE	  (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE	  (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_OP_PRIVATE	  (FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG)
#define FUTEX_CMP_REQUEUE_PRIVATE (FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAIT_BITSET_PRIVATE (FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG)
#define FUTEX_OP_ADD		  1
#define FUTEX_OP_CMP_EQ		  0
#define FUTEX_OP(op, oparg, cmp, cmparg)                                                           \
	((((op)&0xf) << 28) | (((cmp)&0xf) << 24) | (((oparg)&0xfff) << 12) | ((cmparg)&0xfff))

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			say("fail=%s line %d errno=%d", #cond, __LINE__, errno);                   \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long futex(void *a, int op, int val, const struct timespec *ts, void *a2, int v3)
{
	return syscall(SYS_futex, a, op, val, ts, a2, v3);
}

/* ------------------------------------------------------------ threads */

static atomic_int counter;

static void *inc_thread(void *arg)
{
	(void)arg;
	atomic_fetch_add(&counter, 1);
	return (void *)(uintptr_t)pthread_self();
}

/* threads TOTAL BATCH: create and join TOTAL threads, BATCH at a time */
static int t_threads(int argc, char **argv)
{
	int total = argc > 0 ? atoi(argv[0]) : 100, batch = argc > 1 ? atoi(argv[1]) : 8;
	pthread_t th[64];
	CHECK(batch > 0 && batch <= 64);
	for (int done = 0; done < total;) {
		int n = total - done < batch ? total - done : batch;
		for (int i = 0; i < n; i++)
			CHECK(pthread_create(&th[i], NULL, inc_thread, NULL) == 0);
		for (int i = 0; i < n; i++) {
			void *r;
			CHECK(pthread_join(th[i], &r) == 0);
			CHECK(r == (void *)(uintptr_t)th[i]);
		}
		done += n;
	}
	say("threads=%d", atomic_load(&counter));
	CHECK(atomic_load(&counter) == total);
	return 0;
}

/* -------------------------------------------------- mutex / condvar */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long shared;
static int iters;

static void *mutex_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < iters; i++) {
		pthread_mutex_lock(&mu);
		long v = shared;
		if (i % 64 == 0)
			sched_yield(); /* hold the lock across a trip to the monitor */
		shared = v + 1;
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

/* bounded queue, producers and consumers on condition variables */
#define QCAP 4
static int q[QCAP], qn, qhead;
static pthread_cond_t notfull = PTHREAD_COND_INITIALIZER, notempty = PTHREAD_COND_INITIALIZER;
static long consumed_sum;

static void *producer(void *arg)
{
	int base = (int)(intptr_t)arg;
	for (int i = 1; i <= iters; i++) {
		pthread_mutex_lock(&mu);
		while (qn == QCAP)
			pthread_cond_wait(&notfull, &mu);
		q[(qhead + qn++) % QCAP] = base + i;
		pthread_cond_signal(&notempty);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&mu);
		while (qn == 0)
			pthread_cond_wait(&notempty, &mu);
		consumed_sum += q[qhead];
		qhead = (qhead + 1) % QCAP;
		qn--;
		pthread_cond_signal(&notfull);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

/* mutex THREADS ITERS */
static int t_mutex(int argc, char **argv)
{
	int nt = argc > 0 ? atoi(argv[0]) : 4;
	iters = argc > 1 ? atoi(argv[1]) : 1000;
	pthread_t th[32];
	CHECK(nt > 0 && nt <= 16);
	uint64_t t0 = now_ns();
	for (int i = 0; i < nt; i++)
		CHECK(pthread_create(&th[i], NULL, mutex_thread, NULL) == 0);
	for (int i = 0; i < nt; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	say("counter=%ld", shared);
	CHECK(shared == (long)nt * iters);
	/* producers/consumers: nt producers, 2 consumers */
	long expect = 0;
	for (int p = 0; p < nt; p++)
		for (int i = 1; i <= iters; i++)
			expect += p * 100000 + i;
	int total = nt * iters;
	CHECK(pthread_create(&th[nt], NULL, consumer, (void *)(intptr_t)(total / 2)) == 0);
	CHECK(pthread_create(&th[nt + 1], NULL, consumer,
			     (void *)(intptr_t)(total - total / 2)) == 0);
	for (int p = 0; p < nt; p++)
		CHECK(pthread_create(&th[p], NULL, producer, (void *)(intptr_t)(p * 100000)) == 0);
	for (int i = 0; i < nt + 2; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	say("consumed=%ld", consumed_sum);
	say("expect=%ld", expect);
	CHECK(consumed_sum == expect);
	say("ms=%llu", (unsigned long long)((now_ns() - t0) / 1000000));
	return 0;
}

/* ------------------------------------------------------ futex timeouts */

static int t_futex_timeout(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	/* FUTEX_WAIT, relative 100 ms */
	uint32_t w = 0;
	struct timespec rel = {0, 100000000};
	uint64_t t0 = now_ns();
	long r = futex(&w, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
	uint64_t el = (now_ns() - t0) / 1000000;
	say("wait=%ld errno=%d ms=%llu", r, errno, (unsigned long long)el);
	CHECK(r == -1 && errno == ETIMEDOUT && el >= 95 && el < 2000);
	/* value mismatch */
	CHECK(futex(&w, FUTEX_WAIT_PRIVATE, 1, &rel, NULL, 0) == -1 && errno == EAGAIN);
	/* FUTEX_WAIT_BITSET, absolute CLOCK_REALTIME, 80 ms from now */
	struct timespec abs;
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_nsec += 80000000;
	if (abs.tv_nsec >= 1000000000) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000;
	}
	t0 = now_ns();
	r = futex(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &abs, NULL,
		  FUTEX_BITSET_MATCH_ANY);
	el = (now_ns() - t0) / 1000000;
	say("bitset=%ld errno=%d ms=%llu", r, errno, (unsigned long long)el);
	CHECK(r == -1 && errno == ETIMEDOUT && el >= 75 && el < 2000);
	/* condvar timed wait (glibc/musl: WAIT_BITSET absolute on CLOCK_REALTIME/MONOTONIC) */
	pthread_mutex_lock(&mu);
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_sec += 0;
	abs.tv_nsec += 120000000;
	if (abs.tv_nsec >= 1000000000) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000;
	}
	t0 = now_ns();
	int e = pthread_cond_timedwait(&cv, &mu, &abs);
	el = (now_ns() - t0) / 1000000;
	pthread_mutex_unlock(&mu);
	say("condwait=%d ms=%llu", e, (unsigned long long)el);
	CHECK(e == ETIMEDOUT && el >= 110 && el < 2000);
	say("ok=1");
	return 0;
}

/* ---------------------------------------------------- futex requeue/wake_op */

static uint32_t fw1, fw2;
static atomic_int woke;

static void *fwaiter(void *arg)
{
	(void)arg;
	while (__atomic_load_n(&fw1, __ATOMIC_SEQ_CST) == 0) {
		long r = futex(&fw1, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		(void)r;
		if (__atomic_load_n(&fw2, __ATOMIC_SEQ_CST))
			break;
	}
	atomic_fetch_add(&woke, 1);
	return NULL;
}

static int t_futex_ops(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, fwaiter, NULL) == 0);
	sleep_ms(100); /* all four wait on fw1 */
	/* CMP_REQUEUE: wake 1, move up to 10 to fw2 */
	long r = futex(&fw1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)(uintptr_t)10, &fw2, 0);
	say("requeue=%ld", r);
	CHECK(r == 4);
	sleep_ms(50);
	/* the woken one loops and waits on fw1 again; the others wait on fw2 */
	__atomic_store_n(&fw2, 1, __ATOMIC_SEQ_CST);
	/* WAKE_OP: fw2 += 0 (op ADD, oparg 0), wake 1 on fw1, then up to 10 on fw2 if fw2 == 1 */
	int op = FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 1);
	r = futex(&fw1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)(uintptr_t)10, &fw2, op);
	say("wake_op=%ld", r);
	CHECK(r == 4);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK(atomic_load(&woke) == 4);
	say("ok=1");
	return 0;
}

/* ----------------------------------------------------------- thread cap */

static pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;

static void *blocked_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hold);
	pthread_mutex_unlock(&hold);
	return NULL;
}

static int t_thread_cap(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pthread_t th[80];
	int n = 0, e = 0;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	pthread_mutex_lock(&hold);
	while (n < 80) {
		e = pthread_create(&th[n], &a, blocked_thread, NULL);
		if (e)
			break;
		n++;
	}
	say("created=%d error=%d", n, e);
	pthread_mutex_unlock(&hold);
	for (int i = 0; i < n; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK(e == EAGAIN);
	/* capacity comes back once threads ended */
	CHECK(pthread_create(&th[0], &a, blocked_thread, NULL) == 0);
	CHECK(pthread_join(th[0], NULL) == 0);
	say("ok=1");
	return 0;
}

/* ---------------------------------------------------------- robust mutex */

static pthread_mutex_t rmu;

static void *robust_owner(void *arg)
{
	(void)arg;
	CHECK(pthread_mutex_lock(&rmu) == 0);
	return NULL; /* dies holding it */
}

static int t_robust(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	CHECK(pthread_mutex_init(&rmu, &ma) == 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, robust_owner, NULL) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	int e = pthread_mutex_lock(&rmu);
	say("lock=%d", e);
	CHECK(e == EOWNERDEAD);
	CHECK(pthread_mutex_consistent(&rmu) == 0);
	CHECK(pthread_mutex_unlock(&rmu) == 0);
	CHECK(pthread_mutex_lock(&rmu) == 0);
	CHECK(pthread_mutex_unlock(&rmu) == 0);
	/* a waiter blocked while the owner dies is woken */
	pthread_t th2;
	CHECK(pthread_create(&th2, NULL, robust_owner, NULL) == 0);
	CHECK(pthread_join(th2, NULL) == 0);
	e = pthread_mutex_lock(&rmu);
	CHECK(e == EOWNERDEAD);
	say("ok=1");
	return 0;
}

/* ------------------------------------------------------------- signals */

static volatile sig_atomic_t hits, last_code, last_sig;
static volatile uintptr_t last_value, handler_sp;

static void count_handler(int sig)
{
	last_sig = sig;
	hits = hits + 1;
}

static void info_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	last_sig = sig;
	last_code = si->si_code;
	last_value = (uintptr_t)si->si_value.sival_ptr;
	int local;
	handler_sp = (uintptr_t)&local;
	hits = hits + 1;
}

static void set_handler(int sig, void (*h)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0);
}

static void set_info_handler(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0);
}

static int t_sigalrm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	/* setitimer: 10 ms interval, wait for 5 */
	set_handler(SIGALRM, count_handler, SA_RESTART);
	struct itimerval it = {{0, 10000}, {0, 10000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	uint64_t t0 = now_ns();
	volatile unsigned long spin = 0;
	while (hits < 3 && now_ns() - t0 < 5000000000ull)
		spin++; /* a busy loop: delivery must interrupt running code */
	while (hits < 5 && now_ns() - t0 < 5000000000ull)
		sleep_ms(1);
	struct itimerval off = {{0, 0}, {0, 0}};
	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	say("itimer_hits=%d", (int)hits);
	CHECK(hits >= 5);
	/* timer_create with SIGEV_SIGNAL and a value */
	hits = 0;
	set_info_handler(SIGALRM, 0);
	timer_t tid;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	sev.sigev_value.sival_ptr = (void *)(uintptr_t)0x1234;
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &tid) == 0);
	struct itimerspec its = {{0, 0}, {0, 30000000}};
	CHECK(timer_settime(tid, 0, &its, NULL) == 0);
	t0 = now_ns();
	while (!hits && now_ns() - t0 < 5000000000ull)
		sleep_ms(1);
	say("timer_hits=%d code=%d value=%#lx", (int)hits, (int)last_code,
	    (unsigned long)last_value);
	CHECK(hits == 1 && last_code == SI_TIMER && last_value == 0x1234);
	CHECK(timer_delete(tid) == 0);
	/* alarm(): one SIGALRM */
	hits = 0;
	set_handler(SIGALRM, count_handler, 0);
	alarm(1);
	pause();
	say("alarm_hits=%d", (int)hits);
	CHECK(hits == 1);
	say("ok=1");
	return 0;
}

static int t_sigusr1(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	set_info_handler(SIGUSR1, 0);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	/* delivered on the way back from kill() */
	say("hits=%d code=%d", (int)hits, (int)last_code);
	CHECK(hits == 1 && last_sig == SIGUSR1 && last_code == SI_USER);
	CHECK(raise(SIGUSR1) == 0);
	CHECK(hits == 2);
	say("ok=1");
	return 0;
}

static char altstack[65536];

static int t_altstack(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
	CHECK(sigaltstack(&ss, NULL) == 0);
	set_info_handler(SIGUSR2, SA_ONSTACK);
	CHECK(raise(SIGUSR2) == 0);
	uintptr_t lo = (uintptr_t)altstack, hi = lo + sizeof(altstack);
	say("handler_sp=%#lx alt=%#lx-%#lx", (unsigned long)handler_sp, (unsigned long)lo,
	    (unsigned long)hi);
	CHECK(hits == 1 && handler_sp >= lo && handler_sp < hi);
	/* without SA_ONSTACK: the normal stack */
	set_info_handler(SIGUSR2, 0);
	CHECK(raise(SIGUSR2) == 0);
	CHECK(hits == 2 && !(handler_sp >= lo && handler_sp < hi));
	stack_t old;
	CHECK(sigaltstack(NULL, &old) == 0 && old.ss_sp == altstack);
	say("ok=1");
	return 0;
}

/* SA_RESTART vs EINTR on a blocking read of an empty pipe */
static int pfd[2];

static void *late_writer(void *arg)
{
	(void)arg;
	sleep_ms(300);
	ssize_t r = write(pfd[1], "x", 1);
	(void)r;
	return NULL;
}

static int t_restart(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	CHECK(pipe(pfd) == 0);
	/* with SA_RESTART: the read continues and gets the byte */
	set_handler(SIGALRM, count_handler, SA_RESTART);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, late_writer, NULL) == 0);
	struct itimerval it = {{0, 0}, {0, 50000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	char c = 0;
	ssize_t r = read(pfd[0], &c, 1);
	say("restart_read=%zd hits=%d", r, (int)hits);
	CHECK(r == 1 && c == 'x' && hits == 1);
	CHECK(pthread_join(th, NULL) == 0);
	/* without: EINTR */
	set_handler(SIGALRM, count_handler, 0);
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	r = read(pfd[0], &c, 1);
	say("eintr_read=%zd errno=%d hits=%d", r, errno, (int)hits);
	CHECK(r == -1 && errno == EINTR && hits == 2);
	say("ok=1");
	return 0;
}

static pthread_t main_thread;

static void *poke_main(void *arg)
{
	sleep_ms(50);
	pthread_kill(main_thread, (int)(intptr_t)arg);
	return NULL;
}

static int t_sigsuspend(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	set_handler(SIGUSR1, count_handler, 0);
	sigset_t block, old, empty;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	CHECK(sigprocmask(SIG_BLOCK, &block, &old) == 0);
	main_thread = pthread_self();
	pthread_t th;
	CHECK(pthread_create(&th, NULL, poke_main, (void *)(intptr_t)SIGUSR1) == 0);
	sigemptyset(&empty);
	int r = sigsuspend(&empty);
	say("sigsuspend=%d errno=%d hits=%d", r, errno, (int)hits);
	CHECK(r == -1 && errno == EINTR && hits == 1);
	/* the old mask (SIGUSR1 blocked) is back */
	sigset_t cur;
	CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, SIGUSR1));
	CHECK(pthread_join(th, NULL) == 0);
	/* sigtimedwait takes a blocked signal without running the handler */
	CHECK(pthread_create(&th, NULL, poke_main, (void *)(intptr_t)SIGUSR1) == 0);
	siginfo_t si;
	struct timespec to = {5, 0};
	int s = sigtimedwait(&block, &si, &to);
	say("sigtimedwait=%d code=%d hits=%d", s, si.si_code, (int)hits);
	/* glibc reports SI_TKILL as SI_USER */
	CHECK(s == SIGUSR1 && (si.si_code == SI_TKILL || si.si_code == SI_USER) && hits == 1);
	CHECK(pthread_join(th, NULL) == 0);
	struct timespec zero = {0, 20000000};
	CHECK(sigtimedwait(&block, &si, &zero) == -1 && errno == EAGAIN);
	say("ok=1");
	return 0;
}

static int t_pending(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	set_handler(SIGUSR1, count_handler, 0);
	sigset_t block, pend;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	CHECK(kill(getpid(), SIGUSR1) == 0); /* coalesces */
	CHECK(hits == 0);
	CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGUSR1));
	CHECK(sigprocmask(SIG_UNBLOCK, &block, NULL) == 0);
	say("hits=%d", (int)hits);
	CHECK(hits == 1);
	CHECK(sigpending(&pend) == 0 && !sigismember(&pend, SIGUSR1));
	/* ignored signals vanish */
	set_handler(SIGUSR1, SIG_IGN, 0);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	CHECK(hits == 1);
	say("ok=1");
	return 0;
}

static sigjmp_buf jb;
static volatile uintptr_t fault_addr;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	last_sig = sig;
	last_code = si->si_code;
	fault_addr = (uintptr_t)si->si_addr;
	siglongjmp(jb, 1);
}

static int t_segv(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
	CHECK(sigaction(SIGFPE, &sa, NULL) == 0);
	volatile int *bad = (volatile int *)(uintptr_t)0x10;
	int caught = 0;
	for (int round = 0; round < 3; round++) {
		if (sigsetjmp(jb, 1) == 0) {
			*bad = 1;
			say("fail=no fault");
			return 1;
		}
		caught++;
		CHECK(last_sig == SIGSEGV && fault_addr == 0x10);
	}
	say("caught=%d addr=%#lx code=%d", caught, (unsigned long)fault_addr, (int)last_code);
	/* an address beyond guest memory */
	if (sigsetjmp(jb, 1) == 0) {
		*(volatile int *)(uintptr_t)0x7f0000000000ull = 1;
		say("fail=no fault beyond memory");
		return 1;
	}
	CHECK(last_sig == SIGSEGV && fault_addr == 0x7f0000000000ull);
	/* divide by zero: SIGFPE */
	volatile int z = 0;
	if (sigsetjmp(jb, 1) == 0) {
		volatile int num = 7;
		volatile int q2 = num / z;
		(void)q2;
		say("fail=no SIGFPE");
		return 1;
	}
	CHECK(last_sig == SIGFPE);
	/* SIGSEGV in a second thread is that thread's */
	say("ok=1");
	return 0;
}

static int t_badreturn(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	say("before=1");
	/* rt_sigreturn with RSP at garbage: the monitor must kill us, not crash */
	long junk[64];
	for (int i = 0; i < 64; i++)
		junk[i] = (long)(0xdeadbeefcafebabeull * (unsigned long)(i + 1));
	__asm__ volatile("mov %0, %%rsp\n\tmov $15, %%eax\n\tsyscall\n\tud2" ::"r"(junk + 8)
			 : "memory", "rax");
	say("fail=survived");
	return 1;
}

static int t_badreturn2(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	say("before=1");
	__asm__ volatile("mov $0x10, %%rsp\n\tmov $15, %%eax\n\tsyscall\n\tud2" ::: "memory", "rax");
	return 1;
}

static void term_handler(int sig)
{
	(void)sig;
	say("got=SIGTERM");
	_exit(42);
}

static int t_sigterm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	set_handler(SIGTERM, term_handler, 0);
	say("ready=1");
	for (;;)
		pause();
	return 0;
}

static int t_sigterm_default(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	say("ready=1");
	for (;;)
		pause();
	return 0;
}

static void *exiter(void *arg)
{
	(void)arg;
	sleep_ms(50);
	exit(7);
}

static int t_exit_thread(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, exiter, NULL) == 0);
	pthread_create(&th, NULL, blocked_thread, NULL);
	pthread_mutex_lock(&hold); /* blocked thread stays blocked */
	pthread_t th2;
	pthread_create(&th2, NULL, blocked_thread, NULL);
	pthread_join(th2, NULL); /* waits forever: exit(7) ends everything */
	say("fail=join returned");
	return 1;
}

/* ------------------------------------------------------------- hammer */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Pointers given to the calls point into the first 8 KiB of a buffer large
 * enough that no clamped length (getrandom caps at 32 MiB) runs past it
 * into the test's own heap, stacks or locks. */
static char scratch[48 << 20];

static int excluded(long nr)
{
	/* calls that legitimately end or hang this test with random arguments */
	static const long ex[] = {
	    0,	 3,   7,   9,	11,  12,  13,  15,  17,	 19,  22,  23,	25,  28,  32,
	    33,	 34,  35,  37,	38,  41,  43,  45,  47,	 53,  56,  57,	58,  60,  61,
	    62,	 72,  73,  101, 128, 129, 130, 158, 200, 202, 218, 222, 223, 230, 231,
	    232, 234, 247, 270, 271, 281, 282, 283, 284, 288, 289, 290, 292, 293, 295,
	    297, 299, 310, 311, 322, 425, 426, 427, 435, 436, 441, 449,
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
		if (ex[i] == nr)
			return 1;
	return 0;
}

static uint64_t rarg(void)
{
	switch (rnd() % 5) {
	case 0:
		return rnd() % 16;
	case 1:
		return (uint64_t)(uintptr_t)(scratch + rnd() % 8192);
	case 2:
		return rnd();
	case 3:
		return (uint64_t)-(int64_t)(rnd() % 4096);
	default:
		/* 32 random bits, but never an address inside guest memory: the
		 * test must not corrupt its own heap, stack or locks */
		return (rnd() & 0xffffffffull) | 0x100000000ull;
	}
}

static atomic_long calls;

static void *hammer_thread(void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++) {
		/* mostly real numbers, sometimes anything (always unsupported) */
		long nr = (long)(rnd() % 3 == 0 ? rnd() : rnd() % 460);
		if (excluded(nr))
			continue;
		syscall(nr, rarg(), rarg(), rarg(), rarg(), rarg(), rarg());
		atomic_fetch_add(&calls, 1);
	}
	return NULL;
}

static int t_hammer(int argc, char **argv)
{
	rng_state = argc > 0 ? strtoull(argv[0], NULL, 0) : 1;
	if (!rng_state)
		rng_state = 1;
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, hammer_thread, (void *)(intptr_t)n) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	say("calls=%ld", atomic_load(&calls));
	say("ok=1");
	return 0;
}

static void *tsc_thread(void *arg)
{
	*(uint64_t *)arg = __builtin_ia32_rdtsc();
	return NULL;
}

static int t_info(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	/* one TSC for all threads: main, another vCPU, main again */
	uint64_t t1 = __builtin_ia32_rdtsc(), t2 = 0;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, tsc_thread, &t2) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	uint64_t t3 = __builtin_ia32_rdtsc();
	say("tsc_order=%d", t1 < t2 && t2 < t3);
	CHECK(t1 < t2 && t2 < t3);
	cpu_set_t cs;
	CHECK(sched_getaffinity(0, sizeof(cs), &cs) == 0);
	say("pid=%d tid=%ld cpus=%d", getpid(), (long)syscall(SYS_gettid), CPU_COUNT(&cs));
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	say("realtime=%lld", (long long)rt.tv_sec);
	unsigned char r1[16], r2[16];
	CHECK(getrandom(r1, 16, 0) == 16 && getrandom(r2, 16, 0) == 16);
	CHECK(memcmp(r1, r2, 16) != 0);
	CHECK(syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS);
	CHECK(syscall(SYS_fork) == -1 && errno == ENOSYS);
	say("ok=1");
	return 0;
}

/* tick N MS: print tick=i every MS milliseconds (busy between prints) */
static int t_tick(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 20, ms = argc > 1 ? atoi(argv[1]) : 50;
	say("ready=1");
	for (int i = 1; i <= n; i++) {
		uint64_t t0 = now_ns();
		volatile unsigned long spin = 0;
		while (now_ns() - t0 < (uint64_t)ms * 1000000ull)
			spin++;
		struct timespec rt;
		clock_gettime(CLOCK_MONOTONIC, &rt);
		say("tick=%d t=%lld", i, (long long)rt.tv_sec * 1000 + rt.tv_nsec / 1000000);
	}
	return 0;
}

/* sigstorm: producers/consumers on a mutex and condition variables while
 * another thread throws SIGUSR1 at them (SA_RESTART handler) and at the
 * process: no wake-up may be lost, no item lost or doubled. */
static atomic_int storm_hits;
static atomic_int storm_stop;

static void storm_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&storm_hits, 1);
}

static void *storm_thrower(void *arg)
{
	pthread_t *targets = arg;
	unsigned x = 12345;
	int sent = 0;
	while (!atomic_load(&storm_stop)) {
		x = x * 1103515245u + 12345u;
		if (x % 5 == 0)
			kill(getpid(), SIGUSR1);
		else
			pthread_kill(targets[(x >> 8) % 4], SIGUSR1);
		sent++;
		if (sent % 16 == 0)
			sched_yield();
	}
	say("sent=%d", sent);
	return NULL;
}

static int t_sigstorm(int argc, char **argv)
{
	iters = argc > 0 ? atoi(argv[0]) : 2000;
	set_handler(SIGUSR1, storm_handler, SA_RESTART);
	pthread_t th[4], thrower;
	long expect = 0;
	for (int p = 0; p < 2; p++)
		for (int i = 1; i <= iters; i++)
			expect += p * 100000 + i;
	CHECK(pthread_create(&th[0], NULL, consumer, (void *)(intptr_t)iters) == 0);
	CHECK(pthread_create(&th[1], NULL, consumer, (void *)(intptr_t)iters) == 0);
	CHECK(pthread_create(&th[2], NULL, producer, (void *)(intptr_t)0) == 0);
	CHECK(pthread_create(&th[3], NULL, producer, (void *)(intptr_t)100000) == 0);
	CHECK(pthread_create(&thrower, NULL, storm_thrower, th) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	atomic_store(&storm_stop, 1);
	CHECK(pthread_join(thrower, NULL) == 0);
	say("hits=%d", atomic_load(&storm_hits));
	say("consumed=%ld", consumed_sum);
	say("expect=%ld", expect);
	CHECK(consumed_sum == expect);
	CHECK(atomic_load(&storm_hits) > 0);
	say("ok=1");
	return 0;
}

/* segv-threads: four threads take page faults at once, each catching its
 * own with siglongjmp; each vCPU has its own ring-0 stack and CR2. */
static __thread sigjmp_buf tjb;
static __thread volatile uintptr_t tfault;

static void tsegv_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	tfault = (uintptr_t)si->si_addr;
	siglongjmp(tjb, 1);
}

static void *segv_worker(void *arg)
{
	uintptr_t addr = 0x1000 * ((uintptr_t)arg + 1) + 8 * (uintptr_t)arg;
	volatile int n = 0;
	for (volatile int i = 0; i < 200; i++) {
		if (sigsetjmp(tjb, 1) == 0) {
			*(volatile int *)addr = i;
			return (void *)(intptr_t)-1;
		}
		if (tfault != addr)
			return (void *)(intptr_t)-2;
		n++;
	}
	return (void *)(intptr_t)n;
}

static int t_segv_threads(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = tsegv_handler;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, segv_worker, (void *)(intptr_t)i) == 0);
	int total = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		CHECK(pthread_join(th[i], &r) == 0);
		say("thread%d=%ld", i, (long)(intptr_t)r);
		CHECK((intptr_t)r == 200);
		total += (int)(intptr_t)r;
	}
	say("faults=%d", total);
	say("ok=1");
	return 0;
}

/* mm: the memory map calls */
static int t_mm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	size_t big = 64u << 20;
	unsigned char *a = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(a != MAP_FAILED);
	for (size_t i = 0; i < big; i += 4096)
		a[i] = 0x5a;
	CHECK(munmap(a, big) == 0);
	unsigned char *b = mmap(a, big, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(b == a);
	for (size_t i = 0; i < big; i += 4096)
		CHECK(b[i] == 0); /* fresh pages read as zeros */
	CHECK(mmap(a, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
		  MAP_FAILED &&
	      errno == EEXIST);
	memset(b, 7, 8192);
	unsigned char *c = mremap(b, 8192, 1u << 20, MREMAP_MAYMOVE);
	CHECK(c != MAP_FAILED && c[0] == 7 && c[8191] == 7);
	CHECK(munmap(c, 1u << 20) == 0);
	CHECK(munmap(b + (1u << 20), big - (1u << 20)) == 0 || 1);
	/* madvise(DONTNEED) drops contents */
	unsigned char *d = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(d != MAP_FAILED);
	d[100] = 1;
	CHECK(madvise(d, 65536, MADV_DONTNEED) == 0 && d[100] == 0);
	/* brk (the system call: musl's sbrk only reads it) */
	uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
	CHECK((uintptr_t)syscall(SYS_brk, cur + (1 << 20)) == cur + (1 << 20));
	memset((void *)cur, 1, 1 << 20);
	CHECK((uintptr_t)syscall(SYS_brk, cur) == cur);
	CHECK((uintptr_t)syscall(SYS_brk, cur + 4096) == cur + 4096);
	CHECK(*(volatile unsigned char *)cur == 0); /* shrunk pages came back as zeros */
	CHECK((uintptr_t)syscall(SYS_brk, cur) == cur);
	/* a private file mapping is the file's contents */
	int fd = open("/proc/self/exe", O_RDONLY);
	CHECK(fd >= 0);
	unsigned char *e = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(e != MAP_FAILED && e[0] == 0x7f && e[1] == 'E' && e[2] == 'L' && e[3] == 'F');
	/* a shared one too (a host file mapping; fs-test mmap tests sharing);
	 * writable only through an O_RDWR fd */
	unsigned char *sh = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(sh != MAP_FAILED && sh[0] == 0x7f && sh[1] == 'E' && munmap(sh, 4096) == 0);
	CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED &&
	      errno == EACCES);
	close(fd);
	/* more than the guest has: ENOMEM, not a crash */
	CHECK(mmap(NULL, 1ull << 40, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED &&
	      errno == ENOMEM);
	say("ok=1");
	return 0;
}

/* clock: CLOCK_MONOTONIC never goes back, within a thread and across
 * threads (each read is >= the largest value any thread saw before it);
 * REALTIME, gettimeofday and time agree; prints ns per call. */
static _Atomic uint64_t clock_max;
static atomic_int clock_bad;
static int clock_iters;

static void *clock_thread(void *arg)
{
	(void)arg;
	uint64_t last = 0;
	for (int i = 0; i < clock_iters; i++) {
		uint64_t seen = atomic_load(&clock_max);
		uint64_t t = now_ns();
		if (t < last || t < seen)
			atomic_fetch_add(&clock_bad, 1);
		last = t;
		uint64_t m = atomic_load(&clock_max);
		while (t > m && !atomic_compare_exchange_weak(&clock_max, &m, t))
			;
		if (i % 4096 == 0)
			sched_yield(); /* a system call now and then: new samples */
	}
	return NULL;
}

static int t_clock(int argc, char **argv)
{
	clock_iters = argc > 0 ? atoi(argv[0]) : 200000;
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&th[i], NULL, clock_thread, NULL) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	say("backwards=%d", atomic_load(&clock_bad));
	CHECK(atomic_load(&clock_bad) == 0);
	uint64_t t0 = now_ns();
	for (int i = 0; i < 10000; i++)
		now_ns();
	say("clock_ns=%llu", (unsigned long long)((now_ns() - t0) / 10000));
	struct timespec rt;
	struct timeval tv;
	CHECK(clock_gettime(CLOCK_REALTIME, &rt) == 0);
	CHECK(gettimeofday(&tv, NULL) == 0);
	time_t tt = time(NULL);
	long long d1 = (long long)tv.tv_sec * 1000000 + tv.tv_usec -
		       ((long long)rt.tv_sec * 1000000 + rt.tv_nsec / 1000);
	say("tod_minus_rt_us=%lld time_minus_rt_s=%lld", d1, (long long)(tt - rt.tv_sec));
	CHECK(d1 >= 0 && d1 < 1000000 && tt - rt.tv_sec >= 0 && tt - rt.tv_sec <= 1);
	/* elapsed time matches a real sleep */
	t0 = now_ns();
	sleep_ms(200);
	uint64_t el = (now_ns() - t0) / 1000000;
	say("sleep200_ms=%llu", (unsigned long long)el);
	CHECK(el >= 195 && el < 2000);
	say("ok=1");
	return 0;
}

/* spinpair: A spins (no system calls) until B, which also only computes,
 * sets a flag: with --cpus 1 this needs the monitor to time-slice vCPUs. */
static atomic_int spin_flag;

static void *spin_waiter(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&spin_flag, memory_order_relaxed))
		__asm__ volatile("pause");
	return NULL;
}

static void *spin_setter(void *arg)
{
	(void)arg;
	volatile unsigned long x = 0;
	for (unsigned long i = 0; i < 20000000ul; i++)
		x += i;
	atomic_store(&spin_flag, 1);
	return NULL;
}

static int t_spinpair(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pthread_t a, b;
	uint64_t t0 = now_ns();
	CHECK(pthread_create(&a, NULL, spin_waiter, NULL) == 0);
	CHECK(pthread_create(&b, NULL, spin_setter, NULL) == 0);
	CHECK(pthread_join(a, NULL) == 0);
	CHECK(pthread_join(b, NULL) == 0);
	say("ms=%llu", (unsigned long long)((now_ns() - t0) / 1000000));
	say("ok=1");
	return 0;
}

/* bench: per-operation costs of the core paths, in microseconds */
static uint32_t pp_word;

static void *pp_thread(void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++) {
		while (__atomic_load_n(&pp_word, __ATOMIC_SEQ_CST) != 1)
			futex(&pp_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		__atomic_store_n(&pp_word, 0, __ATOMIC_SEQ_CST);
		futex(&pp_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
	return NULL;
}

static int t_bench(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 200;
	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++)
		syscall(SYS_getppid);
	say("syscall_us=%.2f", (double)(now_ns() - t0) / 1e3 / n);
	t0 = now_ns();
	for (int i = 0; i < n / 4; i++) {
		pthread_t th;
		CHECK(pthread_create(&th, NULL, inc_thread, NULL) == 0);
		CHECK(pthread_join(th, NULL) == 0);
	}
	say("thread_create_join_us=%.1f", (double)(now_ns() - t0) / 1e3 / (n / 4));
	pthread_t th;
	CHECK(pthread_create(&th, NULL, pp_thread, (void *)(intptr_t)n) == 0);
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		__atomic_store_n(&pp_word, 1, __ATOMIC_SEQ_CST);
		futex(&pp_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		while (__atomic_load_n(&pp_word, __ATOMIC_SEQ_CST) != 0)
			futex(&pp_word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	}
	say("futex_roundtrip_us=%.1f", (double)(now_ns() - t0) / 1e3 / n);
	CHECK(pthread_join(th, NULL) == 0);
	set_handler(SIGUSR1, count_handler, 0);
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		raise(SIGUSR1);
	say("signal_us=%.1f", (double)(now_ns() - t0) / 1e3 / n);
	CHECK(hits == n);
	say("ok=1");
	return 0;
}

/* ---- exitless system calls (docs/SERVICE-VMS.md): a hostile guest ---- */
#define FAST_CTRL  0x60000ul
#define FAST_SLOTS 0x61000ul
static atomic_int hostile_stop;

static uint64_t xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Garbage into the slots of vCPUs no thread uses (8..63; a thread that
 * scribbles over a live thread's slot only changes that thread's own calls,
 * up to exit_group with a random status), the awake flag and the call
 * bitmap, while making calls itself. */
static void *hostile_writer(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	volatile uint32_t *ctrl = (volatile uint32_t *)FAST_CTRL;
	char junk[16];
	while (!atomic_load(&hostile_stop)) {
		for (int i = 8; i < 64; i++) {
			volatile uint64_t *sl = (volatile uint64_t *)(FAST_SLOTS + 128ul * i);
			uint64_t r = xrand(&s);
			sl[1] = r % 4 ? r % 600 : r;		   /* nr, sometimes huge */
			sl[2] = 50 + xrand(&s) % 100;		   /* a closed fd */
			sl[3] = xrand(&s) % 2 ? (uintptr_t)junk : xrand(&s); /* buffer */
			sl[4] = xrand(&s) % 3 ? 16 : xrand(&s);		      /* length */
			for (int k = 5; k < 9; k++)
				sl[k] = xrand(&s);
			sl[8] = xrand(&s); /* result */
			*(volatile uint32_t *)sl = (uint32_t)(xrand(&s) % 8); /* state */
		}
		ctrl[0] = (uint32_t)(xrand(&s) % 2);
		for (int k = 16; k < 32; k++)
			ctrl[k] = (uint32_t)xrand(&s);
		CHECK(write(-1, junk, 1) == -1 && errno == EBADF);
		syscall(SYS_getppid);
	}
	return NULL;
}

static int t_exitless_hostile(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 3000;
	bool spin = argc > 1 && !strcmp(argv[1], "spin");
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&th[i], NULL, hostile_writer, (void *)(uintptr_t)(i + 1)) == 0);
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	for (int i = 0; i < n; i++) {
		char b[8] = {0}, c[8] = {0};
		memcpy(b, &i, sizeof(i));
		CHECK(write(pfd[1], b, 8) == 8);
		CHECK(read(pfd[0], c, 8) == 8);
		CHECK(memcmp(b, c, 8) == 0);
		CHECK(syscall(SYS_getppid) == 0);
	}
	say("calls=%d", n);
	if (spin) {
		say("ready=1");
		for (;;)
			; /* stopped from outside */
	}
	atomic_store(&hostile_stop, 1);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	say("ok=1");
	return 0;
}

/* What the guest sees of the exitless control page (debugging aid). */
static int t_exitless_peek(int argc, char **argv)
{
	(void)argc, (void)argv;
	volatile uint32_t *ctrl = (volatile uint32_t *)FAST_CTRL;
	for (int i = 0; i < 5; i++) {
		say("awake=%u bitmap0=%#x bitmap1=%#x", ctrl[0], ctrl[16], ctrl[17]);
		sleep_ms(1);
	}
	say("ok=1");
	return 0;
}

/* SIGPIPE from a write to a closed pipe runs its handler before write()
 * returns, as on Linux (on the fast path: the server answers DONE_EXIT). */
static atomic_int pipe_hits;
static void on_pipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&pipe_hits, 1);
}

static int t_sigpipe_now(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 300;
	signal(SIGPIPE, on_pipe);
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	for (int i = 0; i < n; i++) {
		CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE);
		CHECK(atomic_load(&pipe_hits) == i + 1);
	}
	say("sigpipe=%d", (int)atomic_load(&pipe_hits));
	say("ok=1");
	return 0;
}

/* A blocking read of stdin (a pipe nobody writes): stopped from outside. */
static int t_block_read(int argc, char **argv)
{
	(void)argc, (void)argv;
	char c;
	say("ready=1");
	ssize_t r = read(0, &c, 1);
	say("read=%zd errno=%d", r, errno);
	return 3;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} cmds[] = {
    {"exitless-hostile", t_exitless_hostile},
    {"block-read", t_block_read},
    {"exitless-peek", t_exitless_peek},
    {"sigpipe-now", t_sigpipe_now},
    {"threads", t_threads},
    {"mutex", t_mutex},
    {"futex-timeout", t_futex_timeout},
    {"futex-ops", t_futex_ops},
    {"thread-cap", t_thread_cap},
    {"robust", t_robust},
    {"sigalrm", t_sigalrm},
    {"sigusr1", t_sigusr1},
    {"altstack", t_altstack},
    {"restart", t_restart},
    {"sigsuspend", t_sigsuspend},
    {"pending", t_pending},
    {"segv", t_segv},
    {"badreturn", t_badreturn},
    {"badreturn2", t_badreturn2},
    {"sigterm", t_sigterm},
    {"sigterm-default", t_sigterm_default},
    {"exit-thread", t_exit_thread},
    {"hammer", t_hammer},
    {"info", t_info},
    {"tick", t_tick},
    {"bench", t_bench},
    {"spinpair", t_spinpair},
    {"clock", t_clock},
    {"sigstorm", t_sigstorm},
    {"segv-threads", t_segv_threads},
    {"mm", t_mm},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		say("usage: svc-test COMMAND [ARGS]");
		return 2;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 2, argv + 2);
	say("unknown command %s", argv[1]);
	return 2;
}
