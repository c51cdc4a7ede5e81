/* SPDX-License-Identifier: MIT */
/*
 * Exitless system calls (service VMs): a SYSCALL stub that hands
 * non-blocking calls to a per-VM server thread through shared memory
 * instead of exiting to the monitor. See docs/SERVICE-VMS.md, "Exitless
 * system calls".
 *
 * Guest-physical layout (system area, user-accessible; see uvm.h):
 *   UVM_FAST_CTRL   one page: u32 "server awake" flag at offset 0
 *   UVM_FAST_SLOTS  UVM_MAX_VCPUS slots of SVC_FAST_SLOT_SZ bytes, one per
 *                   vCPU id; a vCPU's GS base points at its slot while its
 *                   thread has not set a GS base of its own
 *   UVM_FAST_STUB   the stub (LSTAR of such vCPUs), in the read-only stub page
 *
 * Slot protocol (state word): the stub writes nr and args, then REQ; the
 * server claims REQ -> BUSY with a compare-and-swap, copies the slot once,
 * serves it, writes the result and DONE (DONE_EXIT: result ready, but take
 * the doorbell exit so a signal gets delivered) or DEFER (take the doorbell
 * exit and let the vCPU thread serve the call). The stub gives up after a
 * bounded spin by exchanging the state with IDLE: REQ means withdrawn.
 */
#ifndef NUBIS_SVC_EXITLESS_H
#define NUBIS_SVC_EXITLESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum svc_fast_state {
	SVC_FAST_IDLE = 0,
	SVC_FAST_REQ = 1,
	SVC_FAST_BUSY = 2,
	SVC_FAST_DONE = 3,
	SVC_FAST_DEFER = 4,
	SVC_FAST_DONE_EXIT = 5,
};

#define SVC_FAST_SLOT_SZ 128
/* Pseudo call made by the stub after DONE_EXIT: "return the slot's result". */
#define SVC_NR_FASTRET 0x4e420001ull

/* The guest-shared slot (layout fixed by the stub's machine code). */
struct svc_fast_slot {
	uint32_t state;
	uint32_t pad;
	uint64_t nr;
	uint64_t a[6];
	uint64_t result;
};

/* syscall modes (struct svc_config.syscall_mode) */
enum { SVC_SYSCALL_AUTO = 0, SVC_SYSCALL_EXIT = 1, SVC_SYSCALL_POLL = 2 };

/* Decide whether a copied request (@nr, @a, untrusted) may be served by the
 * server thread: true for the non-blocking whitelist (reads, writes, socket
 * I/O, accept4, polls without a signal mask), false for anything else
 * (DEFER). Pure function; unit-tested. */
bool svc_fast_allowed(uint64_t nr, const uint64_t a[6]);

struct svc_vm;
struct svc_thread;
/* Set up the exitless path of @vm per its config and NUBIS_SVC_EXITLESS
 * (svc_create, after the warm-up). 0, or -errno (then the VM uses exits). */
int svc_fast_init(struct svc_vm *vm);
/* Start / stop the server thread (svc_start, svc_destroy). */
int svc_fast_start(struct svc_vm *vm);
void svc_fast_fini(struct svc_vm *vm);
/* Point @t's vCPU at the fast stub and its slot (or at the plain stub when
 * the thread has a GS base of its own). Called on its host thread. 0 or -errno. */
int svc_fast_vcpu(struct svc_thread *t);
/* @t runs on its vCPU from now on (@on) or no more: slot ownership. */
void svc_fast_attach(struct svc_thread *t, bool on);
/* A doorbell exit of @t for call @nr: wake the server if it sleeps; for
 * SVC_NR_FASTRET, store the slot's result in *@ret and return true. */
bool svc_fast_exit(struct svc_thread *t, uint64_t nr, long *ret);
/* One line of counts for NUBIS_SVC_TRACE. */
void svc_fast_report(struct svc_vm *vm, FILE *f);

#endif
