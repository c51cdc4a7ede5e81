/* SPDX-License-Identifier: MIT */
/*
 * The PVH entry of the tiny guest, linked only into tiny-pvh.elf (tiny-pvh.ld), which is
 * loaded at its link address: absolute addresses are fine here.
 *
 * A PVH loader (nubis-vmm --kernel tiny-pvh.elf) finds pvh_start32 in the
 * XEN_ELFNOTE_PHYS32_ENTRY note and starts it in 32-bit protected mode, paging off,
 * EBX = the hvm_start_info. We make a zero page of our own in the bss that carries a
 * marker ("NPVH" at +0) and the start info's address (+8), and go on through the 32-bit
 * boot protocol path of head.S (startup_32: own page tables, long mode, tiny_main), which
 * reads the rest from the start info.
 */
#define PVH_MARK 0x4856504e /* "NPVH" */

	.section .text.pvh, "ax"
	.code32
	.globl	pvh_start32
pvh_start32:
	cli
	cld
	movl	$tiny_pvh_zp, %esi
	movl	$PVH_MARK, (%esi)
	movl	%ebx, 8(%esi)
	movl	$0, 12(%esi)
	jmp	startup_32

	/* ELF note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), the 32-bit entry */
	.section .note.Xen, "a", @note
	.balign	4
	.long	4
	.long	4
	.long	18
	.asciz	"Xen"
	.balign	4
	.long	pvh_start32

	.section .bss
	.balign	4096
tiny_pvh_zp:
	.skip	4096

	.section .note.GNU-stack, "", @progbits
