/* SPDX-License-Identifier: MIT */
/*
 * The start of the tiny guest's protected-mode code (loaded at any 4 KiB-
 * aligned address, usually pref_address = 16 MiB):
 *
 *   +0x000  startup_32: the 32-bit boot protocol entry (code32_start), used
 *           only by the real-mode path of setup.S (QEMU). Flat 32-bit
 *           segments, paging off, ESI = the zero page. Builds page tables in
 *           the bss that identity-map the first 4 GiB with 1 GiB pages, or
 *           2 MiB pages if the CPU has no 1 GiB pages,
 *           enters long mode and continues at startup_64.
 *   +0x200  startup_64: the 64-bit boot protocol entry, where nubis-vmm
 *           starts the vCPU: long mode, CPL 0, the first 4 GiB
 *           identity-mapped, interrupts off, RSI = the zero page, no stack.
 *           Sets a stack and calls tiny_main (tiny.c), which does not return.
 *
 * Everything is position independent: 64-bit code addresses its data
 * RIP-relative; 32-bit code finds its own address with call/pop and uses
 * offsets from the start, which the linker script computes (tiny_*_off).
 */

#define ZP_SCRATCH 0x1e4 /* boot_params.scratch: 4 bytes, a stack for one call */

	.section .head, "awx"
	.code32
	.globl	startup_32
startup_32:
	cld
	cli
	leal	(ZP_SCRATCH + 4)(%esi), %esp
	call	1f
1:	popl	%ebp
	subl	$(1b - startup_32), %ebp	/* EBP = where we were loaded */
	leal	tiny_stack_end_off(%ebp), %esp

	/* With 1 GiB pages (CPUID 0x80000001 EDX bit 26), the PML4 and PDPT are enough:
	 * 4 entries instead of 2048 (on hosts that emulate kernel-mode code, every
	 * instruction counts). */
	movl	$0x80000000, %eax
	cpuid
	cmpl	$0x80000001, %eax
	jb	5f
	movl	$0x80000001, %eax
	cpuid
	btl	$26, %edx
	jnc	5f
	leal	tiny_pgtable_off(%ebp), %edi
	xorl	%eax, %eax
	movl	$(2 * 4096 / 4), %ecx
	rep stosl
	leal	(tiny_pgtable_off + 0x1000 + 0x3)(%ebp), %eax
	movl	%eax, tiny_pgtable_off(%ebp)
	leal	(tiny_pgtable_off + 0x1000)(%ebp), %edi
	movl	$0x83, (%edi)			/* [0, 1 GiB): present, writable, PS */
	movl	$0x40000083, 8(%edi)
	movl	$0x80000083, 16(%edi)
	movl	$0xc0000083, 24(%edi)
	jmp	6f
5:
	/* Clear the PML4, the PDPT and four page directories. */
	leal	tiny_pgtable_off(%ebp), %edi
	xorl	%eax, %eax
	movl	$(6 * 4096 / 4), %ecx
	rep stosl
	/* PML4[0] -> PDPT */
	leal	(tiny_pgtable_off + 0x1000 + 0x3)(%ebp), %eax
	movl	%eax, tiny_pgtable_off(%ebp)
	/* PDPT[0..3] -> the four page directories */
	leal	(tiny_pgtable_off + 0x2000 + 0x3)(%ebp), %eax
	leal	(tiny_pgtable_off + 0x1000)(%ebp), %edi
	movl	$4, %ecx
2:	movl	%eax, (%edi)
	addl	$0x1000, %eax
	addl	$8, %edi
	loop	2b
	/* 2048 2 MiB pages: present, writable, PS */
	leal	(tiny_pgtable_off + 0x2000)(%ebp), %edi
	movl	$0x83, %eax
	movl	$2048, %ecx
3:	movl	%eax, (%edi)
	addl	$0x200000, %eax
	addl	$8, %edi
	loop	3b

6:
	/* A GDT with a 64-bit code segment. */
	leal	(gdt64 - startup_32)(%ebp), %eax
	movl	%eax, (gdt64_desc + 2 - startup_32)(%ebp)
	lgdt	(gdt64_desc - startup_32)(%ebp)
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss

	movl	%cr4, %eax
	orl	$0x20, %eax			/* PAE */
	movl	%eax, %cr4
	leal	tiny_pgtable_off(%ebp), %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx		/* EFER */
	rdmsr
	orl	$0x100, %eax			/* LME */
	wrmsr
	leal	(startup_64_from_32 - startup_32)(%ebp), %eax
	pushl	$0x10
	pushl	%eax
	movl	%cr0, %eax
	orl	$0x80000001, %eax		/* PG | PE */
	movl	%eax, %cr0
	lret

	.code64
startup_64_from_32:
	movl	%esi, %esi			/* the upper halves are undefined here */
	jmp	startup_64

	.balign 8
gdt64:
	.quad	0
	.quad	0
	.quad	0x00af9a000000ffff		/* 0x10: 64-bit code */
	.quad	0x00cf92000000ffff		/* 0x18: data */
gdt64_end:
gdt64_desc:
	.word	gdt64_end - gdt64 - 1
	.long	0				/* the address, set at run time */

	.org	0x200
	.globl	startup_64
startup_64:
	cld
	leaq	boot_stack_end(%rip), %rsp
	movq	%rsi, %rdi
	xorl	%ebp, %ebp
	call	tiny_main
4:	hlt
	jmp	4b

	.section .bss
	.balign	4096
	.globl	tiny_pgtable
tiny_pgtable:
	.skip	6 * 4096
	/* a spare page directory: tiny.c maps RAM above 4 GiB with it */
	.globl	tiny_spare_pd
tiny_spare_pd:
	.skip	4096
	.balign	16
	.globl	tiny_stack_end
boot_stack:
	.skip	8192
boot_stack_end:
tiny_stack_end:

	.section .note.GNU-stack, "", @progbits
