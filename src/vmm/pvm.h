/* SPDX-License-Identifier: MIT */
/*
 * PVM compatibility mode: boot an unmodified Linux kernel on a kvm_pvm host,
 * where guest kernel mode is emulated by KVM's instruction emulator
 * (docs/LINUX-VMS.md has the why and the costs).
 *
 * Three parts:
 *   1. guest command-line options that keep the kernel away from instructions
 *      the emulator refuses (pvm_cmdline_extra);
 *   2. emulation of the instructions it still refuses, after a
 *      KVM_EXIT_INTERNAL_ERROR (emulation failure): int3, fwait, ldmxcsr,
 *      stmxcsr, clac, stac. The instruction bytes are fetched by walking the
 *      guest's page tables (pvm_translate), every access through gmem_ptr();
 *   3. the syscall-entry fix: on kvm_pvm a user-mode SYSCALL jumps to LSTAR
 *      but stays in user mode (CS=0x33) and page-faults there. A hardware
 *      breakpoint on the guest's #PF handler (IDT vector 14) catches that
 *      fault; the monitor re-enters the entry in kernel mode as a real SYSCALL
 *      would. Any other page fault is stepped past. Cost: one exit per guest
 *      syscall and per guest page fault.
 *
 * The decoder and the page-table walker are pure (no KVM) and unit-tested.
 * State is per vCPU (struct pvm_cpu), owned by the caller; nothing is global.
 */
#ifndef NUBIS_VMM_PVM_H
#define NUBIS_VMM_PVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/gmem.h"
#include "../core/kvmhost.h"
#include "../core/vm.h"

enum pvm_mode { PVM_AUTO, PVM_ON, PVM_OFF };

/* "auto", "on", "off" → *@out. Returns 0 or -EINVAL. */
int pvm_mode_parse(const char *s, enum pvm_mode *out);
/* Whether the compatibility mode applies: on, or auto on a kvm_pvm host. */
bool pvm_mode_active(enum pvm_mode mode, enum kvmhost_flavour flavour);

/* The command-line options the mode appends to the guest's (documented one by one
 * in docs/LINUX-VMS.md). A static string. */
const char *pvm_cmdline_extra(void);

/* @user's command line (NULL: empty) with pvm_cmdline_extra() appended when @is_linux.
 * Returns a malloc()ed string (caller frees) or NULL when out of memory. */
char *pvm_cmdline_join(bool is_linux, const char *user);

/* ---- guest page-table walk (pure) ---- */

/* Paging state of a vCPU, from its special registers. */
struct pvm_paging {
	uint64_t cr0, cr3, cr4, efer;
};

/* Translate the linear address @la to a guest-physical address through the 4- or
 * 5-level (CR4.LA57) long-mode page tables in @mem, honouring 1 GiB and 2 MiB pages.
 * Paging off (CR0.PG clear): identity. With @write, every level must be writable.
 * Returns 0 with *@gpa, -EFAULT if a table is outside @mem, -ENOENT if not present
 * (or not writable for @write), -ENOTSUP for non-long-mode paging or a non-canonical
 * address. */
int pvm_translate(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la, bool write,
		  gpa_t *gpa);
/* Copy @len bytes at linear @la out of / into the guest (page by page, each page
 * translated separately). Returns 0 or the error of pvm_translate. */
int pvm_read_virt(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la, void *dst,
		  size_t len);
int pvm_write_virt(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la,
		   const void *src, size_t len);

/* ---- instruction decoding (pure) ---- */

enum pvm_op {
	PVM_OP_UNKNOWN,
	PVM_OP_INT3,	/* cc */
	PVM_OP_FWAIT,	/* 9b */
	PVM_OP_LDMXCSR, /* 0f ae /2, memory operand */
	PVM_OP_STMXCSR, /* 0f ae /3, memory operand */
	PVM_OP_CLAC,	/* 0f 01 ca */
	PVM_OP_STAC,	/* 0f 01 cb */
	PVM_OP_NOP,	/* 90, 66 90, 0f 1f /0, f3 0f 1e fa (endbr64): no effect */
	PVM_OP_CLD,	/* fc */
};

/* A decoded memory operand: linear address = base + index * scale + disp (+ next RIP
 * when rip_rel) + the FS/GS base for a segment override. Register numbers are 0-15
 * (rax..r15), -1 for none. */
struct pvm_mem_operand {
	int base, index;
	unsigned scale;
	int64_t disp;
	bool rip_rel;
	int seg; /* 0 none, 4 fs, 5 gs */
};

struct pvm_insn {
	enum pvm_op op;
	unsigned len;		    /* bytes, prefixes included */
	struct pvm_mem_operand mem; /* for LDMXCSR/STMXCSR */
};

/* Decode the instruction at the start of @code (@avail bytes readable, at most 15
 * used) in 64-bit mode. Only the instructions of enum pvm_op are recognised; anything
 * else (or a truncated instruction) is PVM_OP_UNKNOWN. Returns 0, or -EINVAL for
 * UNKNOWN. */
int pvm_decode(const uint8_t *code, size_t avail, struct pvm_insn *out);

/* The linear address of @m given the general registers, the address of the next
 * instruction (@next_rip) and the FS/GS bases. */
uint64_t pvm_operand_address(const struct pvm_mem_operand *m, const struct kvm_regs *r,
			     uint64_t next_rip, uint64_t fs_base, uint64_t gs_base);

/* ---- per-vCPU handling (KVM) ---- */

struct pvm_stats {
	uint64_t emulated[PVM_OP_CLD + 1]; /* emulation failures handled, by op */
	uint64_t syscalls;		   /* user syscalls re-entered in kernel mode */
	uint64_t faults;		   /* other page faults stepped past */
	uint64_t bp_arms;		   /* times the breakpoint was (re)placed */
	uint64_t retries; /* failures at an instruction not ours, run again (text patching) */
};

struct pvm_cpu {
	struct vcpu *c;
	const struct gmem *mem;
	uint64_t bp_addr;    /* where the hardware breakpoint is, 0 none */
	uint64_t idt_base;   /* IDT base when bp_addr was taken */
	uint64_t next_check; /* monotonic ns of the next IDT check */
	uint64_t retry_rip;  /* an unknown instruction here was run again once */
	bool trace;	     /* NUBIS_PVM_TRACE: print the RIP every second */
	uint64_t next_trace;
	bool warned_rcx; /* logged a syscall entry whose RCX did not follow a syscall */
	struct pvm_stats st;
};

/* Prepare @pc for vCPU @c of a VM whose memory is @mem. No KVM calls. */
void pvm_cpu_init(struct pvm_cpu *pc, struct vcpu *c, const struct gmem *mem);

/* Called on any exit (cheap: looks at the guest IDT at most every few ms): when the
 * guest's #PF handler (IDT vector 14) moved, put the hardware breakpoint on it. */
void pvm_check_idt(struct pvm_cpu *pc, uint64_t now_ns);

/* Handle a KVM_EXIT_INTERNAL_ERROR. Returns 0 when the instruction was emulated (the
 * vCPU may run again), or -1 with a one-line reason in @why (for the register dump). */
int pvm_handle_internal(struct pvm_cpu *pc, char *why, size_t why_len);

/* Handle a KVM_EXIT_DEBUG. Returns 0 when handled, -1 with @why otherwise. */
int pvm_handle_debug(struct pvm_cpu *pc, char *why, size_t why_len);

/* With NUBIS_PVM_STATS set in the environment: one line per vCPU on stderr with the
 * counters of @pc[0..@n) (how often the mode intervened). */
void pvm_report(const struct pvm_cpu *pc, unsigned n);

#endif
