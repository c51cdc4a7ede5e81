/* SPDX-License-Identifier: MIT */
/* Unit tests: x86_uvm_build (page tables, descriptors and stubs of the
 * user-mode VM layout) and x86_uvm_exc_vector (src/core/arch/x86/uvm.c).
 * No /dev/kvm needed: only the bytes written are checked. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arch/x86/uvm.h"

#define PTE_P	 0x1ull
#define PTE_RW	 0x2ull
#define PTE_US	 0x4ull
#define PTE_PS	 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define MIB	 (1ull << 20)
#define GIB	 (1ull << 30)

static uint64_t get64(const uint8_t *sys, uint64_t at)
{
	uint64_t v;
	memcpy(&v, sys + at, 8);
	return v;
}

static uint8_t *new_sys(void)
{
	uint8_t *sys = malloc(UVM_SYS_END); /* exact size: ASan catches overruns */
	assert_non_null(sys);
	memset(sys, 0xee, UVM_SYS_END);
	return sys;
}

/* Walk the tables for virtual address @va. Returns the leaf entry (with
 * the physical address of @va in *pa and the combined permission bits in
 * *perm), or 0 if not present at some level. */
static uint64_t walk(const uint8_t *sys, uint64_t mem, uint64_t va, uint64_t *pa, uint64_t *perm)
{
	(void)mem;
	uint64_t pml4e = get64(sys, UVM_PML4 + 8 * ((va >> 39) & 511));
	if (!(pml4e & PTE_P))
		return 0;
	uint64_t f = pml4e & (PTE_RW | PTE_US);
	uint64_t pdpt = pml4e & PTE_ADDR;
	assert_int_equal(pdpt, UVM_PDPT);
	uint64_t pdpte = get64(sys, pdpt + 8 * ((va >> 30) & 511));
	if (!(pdpte & PTE_P))
		return 0;
	assert_false(pdpte & PTE_PS); /* no 1 GiB pages */
	f &= pdpte;
	uint64_t pd = pdpte & PTE_ADDR;
	assert_true(pd >= UVM_PD && pd < UVM_GDT); /* page directories stay in their area */
	uint64_t pde = get64(sys, pd + 8 * ((va >> 21) & 511));
	if (!(pde & PTE_P))
		return 0;
	f &= pde;
	if (pde & PTE_PS) {
		*pa = (pde & PTE_ADDR & ~(UVM_PAGE_2M - 1)) | (va & (UVM_PAGE_2M - 1));
		*perm = f & (PTE_RW | PTE_US);
		return pde;
	}
	uint64_t pt = pde & PTE_ADDR;
	assert_int_equal(pt, UVM_PT0);
	uint64_t pte = get64(sys, pt + 8 * ((va >> 12) & 511));
	if (!(pte & PTE_P))
		return 0;
	f &= pte;
	*pa = (pte & PTE_ADDR) | (va & 0xfff);
	*perm = f & (PTE_RW | PTE_US);
	return pte;
}

static void test_rejects_bad_sizes(void **state)
{
	(void)state;
	static const uint64_t bad[] = {
	    0,
	    1,
	    4096,
	    2 * MIB,
	    4 * MIB - 1,
	    4 * MIB + 1,
	    4 * MIB + 4096,
	    5 * MIB,
	    64 * MIB + 1,
	    UVM_MAX_MEM + UVM_PAGE_2M,
	    UVM_MAX_MEM * 2,
	    UINT64_MAX,
	    UINT64_MAX - UVM_PAGE_2M + 1,
	};
	uint8_t *sys = new_sys();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (x86_uvm_build(sys, bad[i]) != -EINVAL)
			fail_msg("accepted mem_size %#llx", (unsigned long long)bad[i]);
		/* nothing written on failure */
		for (uint64_t a = 0; a < UVM_SYS_END; a++)
			if (sys[a] != 0xee)
				fail_msg("mem_size %#llx: byte %#llx written",
					 (unsigned long long)bad[i], (unsigned long long)a);
	}
	free(sys);
}

static void check_layout(uint64_t mem)
{
	uint8_t *sys = new_sys();
	assert_int_equal(x86_uvm_build(sys, mem), 0);
	uint64_t pa, perm, e;

	/* the NULL page and the rest of the first 4 KiB pages outside the
	 * system area are not present */
	assert_int_equal(walk(sys, mem, 0, &pa, &perm), 0);
	assert_int_equal(walk(sys, mem, 0xfff, &pa, &perm), 0);
	assert_int_equal(get64(sys, UVM_PT0), 0);
	for (uint64_t a = UVM_SYS_END; a < UVM_USER_BASE; a += 0x1000)
		assert_int_equal(walk(sys, mem, a, &pa, &perm), 0);

	/* system pages: identity-mapped, supervisor only, except the stubs */
	for (uint64_t a = UVM_PML4; a < UVM_SYS_END; a += 0x1000) {
		e = walk(sys, mem, a, &pa, &perm);
		assert_true(e & PTE_P);
		if (a == UVM_DOORBELL)
			continue;
		assert_int_equal(pa, a);
		if (a == UVM_SYSCALL_STUB) {
			/* kvm_pvm runs the SYSCALL stub in ring 3: user, read-only */
			assert_true(perm & PTE_US);
			assert_false(perm & PTE_RW);
		} else if (a == UVM_EXC_STUBS) {
			assert_false(perm & PTE_US);
			assert_false(perm & PTE_RW);
		} else if (a >= UVM_FAST_CTRL) {
			/* exitless control page and slots: shared with ring 3 */
			assert_true(perm & PTE_US);
			assert_true(perm & PTE_RW);
		} else {
			assert_false(perm & PTE_US); /* tables, GDT, IDT, TSS, ring-0 stack */
			assert_true(perm & PTE_RW);
		}
	}
	/* the page tables themselves are not reachable from ring 3 */
	e = walk(sys, mem, UVM_PML4, &pa, &perm);
	assert_false(perm & PTE_US);

	/* the doorbell: a user-writable page whose physical address has no memory */
	e = walk(sys, mem, UVM_DOORBELL + 0x10, &pa, &perm);
	assert_true(e & PTE_P);
	assert_int_equal(pa, UVM_DOORBELL_GPA + 0x10);
	assert_true(pa >= mem);
	assert_true((perm & (PTE_US | PTE_RW)) == (PTE_US | PTE_RW));

	/* 2 MiB user pages cover [UVM_USER_BASE, mem) exactly, identity-mapped */
	uint64_t n2m = 0;
	for (uint64_t a = UVM_USER_BASE; a < mem; a += UVM_PAGE_2M) {
		e = walk(sys, mem, a + 0x1234, &pa, &perm);
		assert_true(e & PTE_PS);
		assert_int_equal(pa, a + 0x1234);
		assert_true((perm & (PTE_US | PTE_RW)) == (PTE_US | PTE_RW));
		e = walk(sys, mem, a + UVM_PAGE_2M - 1, &pa, &perm);
		assert_int_equal(pa, a + UVM_PAGE_2M - 1);
		n2m++;
	}
	assert_int_equal(n2m, mem / UVM_PAGE_2M - 1);
	/* nothing at or above mem (up to the next GiB boundary and beyond) */
	assert_int_equal(walk(sys, mem, mem, &pa, &perm), 0);
	assert_int_equal(walk(sys, mem, mem + UVM_PAGE_2M, &pa, &perm), 0);
	uint64_t ngib = (mem + GIB - 1) / GIB;
	for (uint64_t g = ngib; g < 512; g++)
		assert_int_equal(get64(sys, UVM_PDPT + 8 * g), 0);
	for (uint64_t i = 1; i < 512; i++)
		assert_int_equal(get64(sys, UVM_PML4 + 8 * i), 0); /* only the lowest 512 GiB */
	/* addresses above the 47-bit boundary or in other PML4 slots: absent */
	assert_int_equal(walk(sys, mem, 1ull << 39, &pa, &perm), 0);

	/* IDT: 32 present interrupt gates to 16-byte stubs that start with hlt;
	 * DPL 0 except int3 (3) and into (4), which ring 3 may raise as on Linux */
	for (int v = 0; v < 32; v++) {
		uint64_t lo = get64(sys, UVM_IDT + 16 * (uint64_t)v);
		uint64_t hi = get64(sys, UVM_IDT + 16 * (uint64_t)v + 8);
		uint64_t off = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
		assert_int_equal(off, UVM_EXC_STUBS + UVM_EXC_STUB_SZ * (uint64_t)v);
		assert_int_equal((lo >> 16) & 0xffff, UVM_SEL_KCODE);
		/* P, DPL 0 (or 3), 64-bit interrupt gate */
		assert_int_equal((lo >> 40) & 0xff, (v == 3 || v == 4) ? 0xee : 0x8e);
		const uint8_t *s = sys + off;
		assert_int_equal(s[0], 0xf4);
		int n = x86_exc_has_error_code(v) ? 5 : 1;
		if (n == 5)
			assert_memory_equal(s + 1, "\x48\x83\xc4\x08", 4);
		assert_int_equal(s[n], 0x48); /* iretq */
		assert_int_equal(s[n + 1], 0xcf);
		assert_int_equal(x86_uvm_exc_vector(off + 1), v);
	}
	/* the SYSCALL stub stores to the doorbell, then sysretq */
	static const uint8_t stub[] = {0x89,
				       0x04,
				       0x25,
				       UVM_DOORBELL & 0xff,
				       (UVM_DOORBELL >> 8) & 0xff,
				       (UVM_DOORBELL >> 16) & 0xff,
				       0x00,
				       0x48,
				       0x0f,
				       0x07};
	assert_memory_equal(sys + UVM_SYSCALL_STUB, stub, sizeof(stub));
	assert_int_equal(UVM_SYSCALL_STUB_DONE, UVM_SYSCALL_STUB + 7);

	/* GDT: user code is DPL 3 64-bit, kernel code DPL 0 64-bit */
	uint64_t kcode = get64(sys, UVM_GDT + UVM_SEL_KCODE),
		 ucode = get64(sys, UVM_GDT + (UVM_SEL_UCODE & ~3));
	assert_int_equal((kcode >> 45) & 3, 0);
	assert_int_equal((ucode >> 45) & 3, 3);
	assert_true(kcode & (1ull << 53)); /* L */
	assert_true(ucode & (1ull << 53));
	assert_int_equal((get64(sys, UVM_GDT + (UVM_SEL_UDATA & ~3)) >> 45) & 3, 3);
	/* TSS: RSP0 is the ring-0 stack top */
	assert_int_equal(get64(sys, UVM_TSS + 4), UVM_STACK0_TOP);
	free(sys);
}

static void test_layout_sizes(void **state)
{
	(void)state;
	static const uint64_t sizes[] = {4 * MIB, 6 * MIB,	     64 * MIB, GIB - UVM_PAGE_2M,
					 GIB,	  GIB + UVM_PAGE_2M, 3 * GIB,  UVM_MAX_MEM};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_layout(sizes[i]);
}

/* Every vCPU id has its own TSS (GDT descriptor -> TSS -> RSP0) and its own
 * ring-0 stack, inside the monitor's supervisor-only pages, not overlapping. */
static void test_tss_per_vcpu(void **state)
{
	(void)state;
	uint8_t *sys = malloc(UVM_SYS_END);
	assert_non_null(sys);
	assert_int_equal(x86_uvm_build(sys, 64 * MIB), 0);
	assert_true(UVM_GDT_LIMIT < 0x1000);
	assert_true(UVM_TSS + UVM_TSS_SLOT * UVM_MAX_VCPUS <= UVM_IDT);
	for (int i = 0; i < UVM_MAX_VCPUS; i++) {
		uint64_t lo = get64(sys, UVM_GDT + UVM_SEL_TSS + 16 * (uint64_t)i);
		uint64_t hi = get64(sys, UVM_GDT + UVM_SEL_TSS + 16 * (uint64_t)i + 8);
		uint64_t base = ((lo >> 16) & 0xffffff) | (((lo >> 56) & 0xff) << 24) | (hi << 32);
		assert_int_equal(base, UVM_TSS + UVM_TSS_SLOT * (uint64_t)i);
		assert_int_equal((lo >> 40) & 0xff, 0x89); /* present, available 64-bit TSS */
		uint64_t top = get64(sys, base + 4);
		assert_int_equal(top, x86_uvm_stack0_top(i));
		assert_true(top <= UVM_SYS_END);
		/* the stack page is present, writable, supervisor-only */
		uint64_t pte = get64(sys, UVM_PT0 + 8 * ((top - 8) >> 12));
		assert_true(pte & 1);
		assert_true(pte & 2);
		assert_false(pte & 4);
		for (int j = 0; j < i; j++)
			assert_true(x86_uvm_stack0_top(j) != top);
		/* 1 KiB apart at least: room for a nested exception frame */
		if (i > 1)
			assert_true(top - x86_uvm_stack0_top(i - 1) >= 0x400);
	}
	assert_true(x86_uvm_stack0_top(1) - UVM_STACK_SZ >= UVM_STACK0_TOP);
	free(sys);
}

/* The doorbell's physical address lies above every possible guest memory,
 * so a store to it always exits to the monitor. */
static void test_doorbell_above_memory(void **state)
{
	(void)state;
	assert_true(UVM_DOORBELL_GPA >= UVM_MAX_MEM);
	assert_true(x86_uvm_is_syscall_exit(UVM_DOORBELL_GPA, UVM_SYSCALL_STUB_DONE));
	assert_false(x86_uvm_is_syscall_exit(UVM_DOORBELL_GPA, UVM_SYSCALL_STUB_DONE + 1));
	assert_false(x86_uvm_is_syscall_exit(UVM_DOORBELL_GPA + 4, UVM_SYSCALL_STUB_DONE));
	assert_false(x86_uvm_is_syscall_exit(UVM_DOORBELL, UVM_SYSCALL_STUB_DONE));
}

static void test_exc_vector(void **state)
{
	(void)state;
	for (int v = 0; v < 32; v++)
		assert_int_equal(
		    x86_uvm_exc_vector(UVM_EXC_STUBS + UVM_EXC_STUB_SZ * (uint64_t)v + 1), v);
	/* not the hlt of a stub */
	assert_int_equal(x86_uvm_exc_vector(UVM_EXC_STUBS), -1);
	assert_int_equal(x86_uvm_exc_vector(UVM_EXC_STUBS + 2), -1);
	assert_int_equal(x86_uvm_exc_vector(UVM_EXC_STUBS + 32 * UVM_EXC_STUB_SZ + 1), -1);
	assert_int_equal(x86_uvm_exc_vector(0), -1);
	assert_int_equal(x86_uvm_exc_vector(UINT64_MAX), -1);
	assert_int_equal(x86_uvm_exc_vector(0x401000), -1);
	/* error-code vectors as the SDM lists them */
	static const int with_err[] = {8, 10, 11, 12, 13, 14, 17, 21, 29, 30};
	int count = 0;
	for (int v = 0; v < 32; v++)
		count += x86_exc_has_error_code(v);
	assert_int_equal(count, (int)(sizeof(with_err) / sizeof(with_err[0])));
	for (size_t i = 0; i < sizeof(with_err) / sizeof(with_err[0]); i++)
		assert_true(x86_exc_has_error_code(with_err[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rejects_bad_sizes),
	    cmocka_unit_test(test_layout_sizes),
	    cmocka_unit_test(test_doorbell_above_memory),
	    cmocka_unit_test(test_tss_per_vcpu),
	    cmocka_unit_test(test_exc_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
