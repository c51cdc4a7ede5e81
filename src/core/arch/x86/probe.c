/* SPDX-License-Identifier: MIT */
#include "probe.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "../../vm.h"
#include "uvm.h"

#define PROBE_MEM  (4ull << 20)
#define CODE_RING3 0x200000ull
#define CODE_RING0 0x201000ull
#define CODE_EXITS 0x202000ull
#define LOOP_INSNS 3 /* add, dec, jnz */

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* mov $n, %ecx; 1: add $1, %rax; dec %ecx; jnz 1b; <tail> */
static size_t emit_loop(uint8_t *p, uint32_t n, const uint8_t *tail, size_t tail_len)
{
	size_t k = 0;
	p[k++] = 0xb9;
	memcpy(p + k, &n, 4);
	k += 4;
	static const uint8_t body[] = {0x48, 0x83, 0xc0, 0x01, 0xff, 0xc9, 0x75, 0xf8};
	memcpy(p + k, body, sizeof(body));
	k += sizeof(body);
	memcpy(p + k, tail, tail_len);
	return k + tail_len;
}

static const uint8_t doorbell[] = {
    0x89, 0x04, 0x25, UVM_DOORBELL & 0xff, (UVM_DOORBELL >> 8) & 0xff, (UVM_DOORBELL >> 16) & 0xff,
    0x00};

struct probe_vm {
	struct vm *vm;
	struct vcpu *cpu;
	uint8_t *mem;
};

static void probe_free(struct probe_vm *p)
{
	vm_destroy(p->vm);
	if (p->mem && p->mem != MAP_FAILED)
		munmap(p->mem, PROBE_MEM);
	memset(p, 0, sizeof(*p));
}

static int probe_make(const struct kvmhost *kvm, struct probe_vm *p)
{
	memset(p, 0, sizeof(*p));
	int rc = vm_create(kvm, &p->vm);
	if (rc)
		return rc;
	p->mem = mmap(NULL, PROBE_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->mem == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	if ((rc = x86_uvm_build(p->mem, PROBE_MEM)) ||
	    (rc = vm_add_memory(p->vm, 0, p->mem, PROBE_MEM)) ||
	    (rc = vcpu_create(p->vm, 0, &p->cpu)) || (rc = x86_uvm_vcpu_init(p->cpu)))
		goto fail;
	return 0;
fail:
	probe_free(p);
	return rc;
}

/* Run from @rip at privilege @cpl until a halt (ring 0) or a non-doorbell exit.
 * Returns the number of doorbell exits, or -errno. */
static long probe_run(struct probe_vm *p, uint64_t rip, int cpl, double *us)
{
	struct kvm_sregs sr;
	if (ioctl(p->cpu->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	/* Every run sets its privilege level: a previous run may have ended
	 * in ring 0 (an exception stub's hlt). */
	sr.cs.selector = cpl ? UVM_SEL_UCODE : UVM_SEL_KCODE;
	sr.cs.dpl = (uint8_t)cpl;
	sr.cs.type = 11;
	sr.cs.l = 1;
	sr.cs.db = 0;
	sr.ss.selector = cpl ? UVM_SEL_UDATA : UVM_SEL_KDATA;
	sr.ss.dpl = (uint8_t)cpl;
	sr.ss.type = 3;
	if (ioctl(p->cpu->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.rsp = UVM_STACK0_TOP;
	r.rflags = 2;
	if (ioctl(p->cpu->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	long exits = 0;
	double t0 = now_us();
	for (;;) {
		if (ioctl(p->cpu->fd, KVM_RUN, 0) < 0)
			return -errno;
		struct kvm_run *run = p->cpu->run;
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == UVM_DOORBELL_GPA) {
			exits++;
			continue;
		}
		break;
	}
	*us = now_us() - t0;
	return exits;
}

int x86_probe_measure(const struct kvmhost *kvm, struct x86_probe *out)
{
	struct probe_vm p;
	memset(out, 0, sizeof(*out));
	const int cycles = 20;
	double t0 = now_us();
	for (int i = 0; i < cycles; i++) {
		int rc = probe_make(kvm, &p);
		if (rc)
			return rc;
		emit_loop(p.mem + CODE_RING3, 1, doorbell, sizeof(doorbell));
		p.mem[CODE_RING3 + 13 + sizeof(doorbell)] = 0xf4;
		double us;
		long n = probe_run(&p, CODE_RING3, 3, &us);
		probe_free(&p);
		if (n < 0)
			return (int)n;
	}
	out->vm_cycle_us = (now_us() - t0) / cycles;

	int rc = probe_make(kvm, &p);
	if (rc)
		return rc;
	const uint32_t n3 = 20000000, n0 = 20000, nexit = 2000;
	/* ring 3 loop, then one doorbell and a hlt (which faults in ring 3 and halts in the stub)
	 */
	uint8_t tail3[sizeof(doorbell) + 1];
	memcpy(tail3, doorbell, sizeof(doorbell));
	tail3[sizeof(doorbell)] = 0xf4;
	emit_loop(p.mem + CODE_RING3, n3, tail3, sizeof(tail3));
	static const uint8_t hlt = 0xf4;
	emit_loop(p.mem + CODE_RING0, n0, &hlt, 1);
	/* exits: mov $n,%ecx; 1: doorbell; dec %ecx; jnz 1b; hlt */
	uint8_t *e = p.mem + CODE_EXITS;
	size_t k = 0;
	e[k++] = 0xb9;
	memcpy(e + k, &nexit, 4);
	k += 4;
	memcpy(e + k, doorbell, sizeof(doorbell));
	k += sizeof(doorbell);
	e[k++] = 0xff, e[k++] = 0xc9, e[k++] = 0x75, e[k] = (uint8_t)(-(int)(sizeof(doorbell) + 4));
	e[++k] = 0xf4;
	double us3, us0, use;
	long r3 = probe_run(&p, CODE_RING3, 3, &us3);
	long re = r3 < 0 ? r3 : probe_run(&p, CODE_EXITS, 3, &use);
	long r0 = re < 0 ? re : probe_run(&p, CODE_RING0, 0, &us0);
	probe_free(&p);
	if (r3 < 0 || re < 0 || r0 < 0)
		return (int)(r3 < 0 ? r3 : re < 0 ? re : r0);
	out->ring3_ns_per_insn = us3 * 1e3 / ((double)n3 * LOOP_INSNS);
	out->exit_user_us = re > 0 ? use / (double)re : 0;
	out->ring0_ns_per_insn = us0 * 1e3 / ((double)n0 * LOOP_INSNS);
	return 0;
}
