/* SPDX-License-Identifier: MIT */
/*
 * futex(2) for service VMs: the monitor's own wait queue, keyed by guest
 * address (one address space per VM, so private and shared futexes are the
 * same). A waiter queues itself under vm->futex_lock after checking the
 * guest word under that lock, then sleeps on its own wseq word (see
 * thread.c). Wakers dequeue it and bump wseq; signals, stop and pause bump
 * wseq too, and the waiter then dequeues itself. Because a waiter is either
 * still queued (interrupted: -EINTR/-ETIMEDOUT) or was dequeued by a waker
 * (0), a wake-up is never lost to a racing signal, which a host futex on
 * the guest word could not tell apart.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>

#include "../common/log.h"
#include "svc_int.h"

static uint32_t *word(struct svc_thread *t, uint64_t ua)
{
	if (ua & 3)
		return NULL;
	return svc_uptr(t, ua, 4);
}

static void wake_one(struct svc_thread *w)
{
	w->fqueued = false;
	atomic_fetch_add(&w->wseq, 1);
	syscall(SYS_futex, &w->wseq, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

/* Wake up to @n waiters on @key matching @bitset. Caller holds futex_lock. */
static int wake_locked(struct svc_vm *vm, uint64_t key, int n, uint32_t bitset)
{
	int woken = 0;
	struct svc_thread **pp = &vm->fwaiters;
	while (*pp && woken < n) {
		struct svc_thread *w = *pp;
		if (w->fkey == key && (w->fbitset & bitset)) {
			*pp = w->fnext;
			wake_one(w);
			woken++;
		} else {
			pp = &w->fnext;
		}
	}
	return woken;
}

int svc_futex_wake(struct svc_vm *vm, uint64_t uaddr, int n, uint32_t bitset)
{
	pthread_mutex_lock(&vm->futex_lock);
	int r = wake_locked(vm, uaddr, n, bitset);
	pthread_mutex_unlock(&vm->futex_lock);
	return r;
}

static void unqueue_locked(struct svc_vm *vm, struct svc_thread *t)
{
	for (struct svc_thread **pp = &vm->fwaiters; *pp; pp = &(*pp)->fnext)
		if (*pp == t) {
			*pp = t->fnext;
			break;
		}
	t->fqueued = false;
}

static long do_wait(struct svc_thread *t, uint64_t ua, uint32_t val, uint32_t bitset,
		    uint64_t deadline)
{
	struct svc_vm *vm = t->vm;
	uint32_t *w = word(t, ua);
	if (!w)
		return (ua & 3) ? -EINVAL : -EFAULT;
	if (!bitset)
		return -EINVAL;
	pthread_mutex_lock(&vm->futex_lock);
	if (__atomic_load_n(w, __ATOMIC_SEQ_CST) != val) {
		pthread_mutex_unlock(&vm->futex_lock);
		return -EAGAIN;
	}
	t->fkey = ua;
	t->fbitset = bitset;
	t->fqueued = true;
	t->fnext = vm->fwaiters;
	vm->fwaiters = t;
	pthread_mutex_unlock(&vm->futex_lock);
	long rc = 0;
	for (;;) {
		unsigned seq = atomic_load(&t->wseq);
		pthread_mutex_lock(&vm->futex_lock);
		bool queued = t->fqueued;
		pthread_mutex_unlock(&vm->futex_lock);
		if (!queued)
			return 0;
		if (svc_signal_interrupted(t)) {
			rc = -EINTR;
			break;
		}
		if (svc_thread_block(t, seq, deadline) == -ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_lock(&vm->futex_lock);
	if (t->fqueued)
		unqueue_locked(vm, t);
	else
		rc = 0; /* a waker got there first: the wake-up counts */
	pthread_mutex_unlock(&vm->futex_lock);
	return rc;
}

static int wake_op_cmp(uint32_t op, int oldval)
{
	int cmp = (int)((op >> 24) & 15);
	int cmparg = (int)(op << 20) >> 20; /* sign-extended 12 bits */
	switch (cmp) {
	case FUTEX_OP_CMP_EQ:
		return oldval == cmparg;
	case FUTEX_OP_CMP_NE:
		return oldval != cmparg;
	case FUTEX_OP_CMP_LT:
		return oldval < cmparg;
	case FUTEX_OP_CMP_LE:
		return oldval <= cmparg;
	case FUTEX_OP_CMP_GT:
		return oldval > cmparg;
	case FUTEX_OP_CMP_GE:
		return oldval >= cmparg;
	default:
		return -1;
	}
}

static long wake_op(struct svc_thread *t, uint64_t ua, int n, uint64_t ua2, int n2, uint32_t op)
{
	struct svc_vm *vm = t->vm;
	uint32_t *w2 = word(t, ua2);
	if (!word(t, ua) || !w2)
		return -EFAULT;
	int kind = (int)((op >> 28) & 7);
	int oparg = (int)(op << 8) >> 20;
	if ((op >> 28) & 8) {
		if (oparg < 0 || oparg > 31)
			return -EINVAL;
		oparg = 1 << oparg;
	}
	if (kind > FUTEX_OP_XOR || wake_op_cmp(op, 0) < 0)
		return -ENOSYS;
	pthread_mutex_lock(&vm->futex_lock);
	uint32_t old;
	switch (kind) {
	case FUTEX_OP_SET:
		old = __atomic_exchange_n(w2, (uint32_t)oparg, __ATOMIC_SEQ_CST);
		break;
	case FUTEX_OP_ADD:
		old = __atomic_fetch_add(w2, (uint32_t)oparg, __ATOMIC_SEQ_CST);
		break;
	case FUTEX_OP_OR:
		old = __atomic_fetch_or(w2, (uint32_t)oparg, __ATOMIC_SEQ_CST);
		break;
	case FUTEX_OP_ANDN:
		old = __atomic_fetch_and(w2, ~(uint32_t)oparg, __ATOMIC_SEQ_CST);
		break;
	default:
		old = __atomic_fetch_xor(w2, (uint32_t)oparg, __ATOMIC_SEQ_CST);
		break;
	}
	int r = wake_locked(vm, ua, n, FUTEX_BITSET_MATCH_ANY);
	if (wake_op_cmp(op, (int)old) > 0)
		r += wake_locked(vm, ua2, n2, FUTEX_BITSET_MATCH_ANY);
	pthread_mutex_unlock(&vm->futex_lock);
	return r;
}

static long requeue(struct svc_thread *t, uint64_t ua, int nwake, int nreq, uint64_t ua2,
		    const uint32_t *cmpval)
{
	struct svc_vm *vm = t->vm;
	uint32_t *w = word(t, ua);
	if (!w || !word(t, ua2))
		return (ua & 3) || (ua2 & 3) ? -EINVAL : -EFAULT;
	if (nwake < 0 || nreq < 0)
		return -EINVAL;
	pthread_mutex_lock(&vm->futex_lock);
	if (cmpval && __atomic_load_n(w, __ATOMIC_SEQ_CST) != *cmpval) {
		pthread_mutex_unlock(&vm->futex_lock);
		return -EAGAIN;
	}
	int woken = wake_locked(vm, ua, nwake, FUTEX_BITSET_MATCH_ANY);
	int moved = 0;
	for (struct svc_thread *x = vm->fwaiters; x && moved < nreq; x = x->fnext)
		if (x->fkey == ua) {
			x->fkey = ua2;
			moved++;
		}
	pthread_mutex_unlock(&vm->futex_lock);
	return cmpval ? woken + moved : woken;
}

static long sys_futex(struct svc_thread *t, const uint64_t a[6])
{
	uint64_t ua = a[0];
	int op = (int)a[1];
	int cmd = op & FUTEX_CMD_MASK;
	uint32_t val = (uint32_t)a[2];
	switch (cmd) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET: {
		uint64_t deadline = 0;
		if (a[3]) {
			uint64_t ns;
			int rc = svc_get_timespec(t, a[3], &ns);
			if (rc)
				return rc;
			uint64_t now = nb_now_ns();
			if (cmd == FUTEX_WAIT_BITSET) {
				/* absolute, on CLOCK_MONOTONIC or CLOCK_REALTIME */
				uint64_t cnow = (op & FUTEX_CLOCK_REALTIME)
						    ? svc_clock_ns(CLOCK_REALTIME)
						    : now;
				ns = ns > cnow ? ns - cnow : 0;
			}
			deadline = now + ns;
			if (!deadline)
				deadline = 1;
		}
		uint32_t bitset = cmd == FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : (uint32_t)a[5];
		return do_wait(t, ua, val, bitset, deadline);
	}
	case FUTEX_WAKE:
	case FUTEX_WAKE_BITSET: {
		uint32_t bitset = cmd == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : (uint32_t)a[5];
		if (!bitset)
			return -EINVAL;
		if (!word(t, ua))
			return (ua & 3) ? -EINVAL : -EFAULT;
		int n = val > INT_MAX ? INT_MAX : (int)val;
		return svc_futex_wake(t->vm, ua, n, bitset);
	}
	case FUTEX_REQUEUE:
	case FUTEX_CMP_REQUEUE: {
		uint32_t cmpval = (uint32_t)a[5];
		int nreq = a[3] > INT_MAX ? INT_MAX : (int)a[3];
		int nwake = val > INT_MAX ? INT_MAX : (int)val;
		return requeue(t, ua, nwake, nreq, a[4], cmd == FUTEX_CMP_REQUEUE ? &cmpval : NULL);
	}
	case FUTEX_WAKE_OP: {
		int n = val > INT_MAX ? INT_MAX : (int)val;
		int n2 = a[3] > INT_MAX ? INT_MAX : (int)a[3];
		return wake_op(t, ua, n, a[4], n2, (uint32_t)a[5]);
	}
	default:
		return -ENOSYS; /* PI futexes and futex_waitv are not served */
	}
}

svc_sys_fn svc_futex_handler(unsigned nr)
{
	return nr == SYS_futex ? sys_futex : NULL;
}
