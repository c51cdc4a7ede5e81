/* SPDX-License-Identifier: MIT */
/*
 * A pool of prepared VMs for one program. Background threads keep up to
 * `depth` never-used VMs ready (KVM VM and vCPU created, memory mapped
 * copy-on-write from the image, stack and registers set) and destroy used
 * ones, so a request only pays for KVM_RUN. A VM is handed out once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fnvm_int.h"

#define RETIRE_CAP 64

struct fnvm_pool {
	struct fnvm_program *prog;
	pthread_mutex_t mu;
	pthread_cond_t work;
	struct fnvm_vm *ready;
	unsigned depth, nready;
	struct fnvm_vm retired[RETIRE_CAP];
	unsigned nretired;
	pthread_t *threads;
	unsigned nthreads;
	int stop;
	int last_error;
};

static void *pool_thread(void *arg)
{
	struct fnvm_pool *pl = arg;
	pthread_mutex_lock(&pl->mu);
	while (!pl->stop) {
		if (pl->nready < pl->depth && !pl->last_error) {
			pthread_mutex_unlock(&pl->mu);
			struct fnvm_vm v;
			int rc = fnvm_vm_prepare(pl->prog, &v);
			pthread_mutex_lock(&pl->mu);
			if (rc) {
				pl->last_error = rc; /* stop trying; fnvm_run reports it */
				continue;
			}
			if (pl->nready < pl->depth && !pl->stop) {
				pl->ready[pl->nready++] = v;
			} else {
				pthread_mutex_unlock(&pl->mu);
				fnvm_vm_release(&v);
				pthread_mutex_lock(&pl->mu);
			}
			continue;
		}
		if (pl->nretired) {
			struct fnvm_vm v = pl->retired[--pl->nretired];
			pthread_mutex_unlock(&pl->mu);
			fnvm_vm_release(&v);
			pthread_mutex_lock(&pl->mu);
			continue;
		}
		pthread_cond_wait(&pl->work, &pl->mu);
	}
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

int fnvm_pool_create(struct fnvm_program *p, unsigned depth, unsigned threads,
		     struct fnvm_pool **out, struct nb_error *err)
{
	if (!depth || depth > 4096 || !threads || threads > 64)
		return nb_error_set(err, NB_EINVAL, "pool depth %u / threads %u out of range",
				    depth, threads);
	struct fnvm_pool *pl = calloc(1, sizeof(*pl));
	if (!pl)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	pl->prog = p;
	pl->depth = depth;
	pl->ready = calloc(depth, sizeof(*pl->ready));
	pl->threads = calloc(threads, sizeof(*pl->threads));
	if (!pl->ready || !pl->threads) {
		free(pl->ready);
		free(pl->threads);
		free(pl);
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	}
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->work, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&pl->threads[i], NULL, pool_thread, pl)) {
			fnvm_pool_destroy(pl);
			return nb_error_set(err, NB_ERESOURCE, "cannot start pool thread");
		}
		pl->nthreads++;
	}
	*out = pl;
	return 0;
}

void fnvm_pool_destroy(struct fnvm_pool *pl)
{
	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	pl->stop = 1;
	pthread_cond_broadcast(&pl->work);
	pthread_mutex_unlock(&pl->mu);
	for (unsigned i = 0; i < pl->nthreads; i++)
		pthread_join(pl->threads[i], NULL);
	for (unsigned i = 0; i < pl->nready; i++)
		fnvm_vm_release(&pl->ready[i]);
	for (unsigned i = 0; i < pl->nretired; i++)
		fnvm_vm_release(&pl->retired[i]);
	pthread_cond_destroy(&pl->work);
	pthread_mutex_destroy(&pl->mu);
	free(pl->ready);
	free(pl->threads);
	free(pl);
}

unsigned fnvm_pool_ready(struct fnvm_pool *pl)
{
	pthread_mutex_lock(&pl->mu);
	unsigned n = pl->nready;
	pthread_mutex_unlock(&pl->mu);
	return n;
}

int fnvm_pool_take(struct fnvm_pool *pl, struct fnvm_vm *out)
{
	pthread_mutex_lock(&pl->mu);
	if (pl->nready) {
		/* FIFO would not matter: every ready VM is equally fresh */
		*out = pl->ready[--pl->nready];
		pthread_cond_signal(&pl->work);
		pthread_mutex_unlock(&pl->mu);
		return 0;
	}
	pl->last_error = 0; /* let the threads try again */
	pthread_cond_signal(&pl->work);
	pthread_mutex_unlock(&pl->mu);
	return fnvm_vm_prepare(pl->prog, out);
}

void fnvm_pool_retire(struct fnvm_pool *pl, struct fnvm_vm *v)
{
	pthread_mutex_lock(&pl->mu);
	if (pl->nretired < RETIRE_CAP) {
		pl->retired[pl->nretired++] = *v;
		memset(v, 0, sizeof(*v));
		pthread_cond_signal(&pl->work);
		pthread_mutex_unlock(&pl->mu);
		return;
	}
	pthread_mutex_unlock(&pl->mu);
	fnvm_vm_release(v);
}
