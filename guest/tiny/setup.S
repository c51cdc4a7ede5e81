/* SPDX-License-Identifier: MIT */
/*
 * The tiny guest's real-mode part: the first (setup_sects + 1) * 512 bytes of
 * tiny.bzImage, with the setup header of the Linux x86 boot protocol 2.15
 * (Documentation/arch/x86/boot.rst) at 0x1f1.
 *
 * nubis-vmm never runs this code: it reads the header, loads the
 * protected-mode code and enters it at +0x200 in long mode. The code here is
 * for loaders that start a bzImage in real mode at the jump at 0x200 — QEMU's
 * -kernel with SeaBIOS, or with qboot (q35 -bios qboot.rom, microvm) — so the
 * same image can be compared with QEMU (bench/). It does what Linux's setup
 * does, minimally:
 *   - takes the first page of the setup, as loaded, as the zero page: the
 *     file has zeros there apart from the header (which the loader has filled
 *     in: cmd_line_ptr, code32_start, ...) and a jump at 0x26c;
 *   - fills the e820 table (0x1e8, 0x2d0) with INT 15h AX=E820h;
 *   - enables A20 and enters 32-bit protected mode with the boot protocol's
 *     flat __BOOT_CS (0x10) and __BOOT_DS (0x18);
 *   - jumps to code32_start with ESI = the zero page (the 32-bit boot
 *     protocol), where head.S goes on into long mode.
 * acpi_rsdp_addr stays 0: the 64-bit code then searches the BIOS areas.
 *
 * Offsets in this section are from the setup's base (DS in real mode): it is
 * linked at 0 and the code patches in the base at run time.
 */

#define ZP_E820_ENTRIES 0x1e8
#define ZP_E820_TABLE	0x2d0
#define E820_MAX	128
#define SMAP		0x534d4150 /* "SMAP" */

	.section .setup, "awx"
	.code16

	.org 0x1f1
hdr:
setup_sects:		.byte tiny_setup_sects	/* linker: setup size / 512 - 1 */
root_flags:		.word 0
syssize:		.long tiny_syssize	/* linker: protected-mode file bytes / 16, rounded up */
ram_size:		.word 0
vid_mode:		.word 0xffff		/* NORMAL_VGA */
root_dev:		.word 0
boot_flag:		.word 0xaa55
	/* 0x200: the real-mode entry; the header ends where the jump lands (0x26c). */
			.byte 0xeb, start_of_setup - 1f
1:
header:			.ascii "HdrS"
version:		.word 0x020f
realmode_swtch:		.long 0
start_sys_seg:		.word 0x1000		/* obsolete */
kernel_version:		.word version_string - 0x200
type_of_loader:		.byte 0
loadflags:		.byte 0x01		/* LOADED_HIGH */
setup_move_size:	.word 0x8000
code32_start:		.long 0x100000		/* the loader puts the load address here */
ramdisk_image:		.long 0
ramdisk_size:		.long 0
bootsect_kludge:	.long 0
heap_end_ptr:		.word 0
ext_loader_ver:		.byte 0
ext_loader_type:	.byte 0
cmd_line_ptr:		.long 0
initrd_addr_max:	.long 0x7fffffff
kernel_alignment:	.long 0x200000
relocatable_kernel:	.byte 1
min_alignment:		.byte 12		/* any 4 KiB-aligned address works */
xloadflags:		.word 0x0003		/* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
cmdline_size:		.long 2047
hardware_subarch:	.long 0
hardware_subarch_data:	.quad 0
payload_offset:		.long 0			/* no payload: the code is not compressed */
payload_length:		.long 0
setup_data:		.quad 0
pref_address:		.quad 0x1000000
init_size:		.long tiny_init_size	/* linker: code + bss (page tables, stack) */
handover_offset:	.long 0
kernel_info_offset:	.long 0

	/* 0x26c. The rest of this page is the zero page: keep it clear. */
start_of_setup:
	jmp	setup16

	.org 0x1000
setup16:
	cli
	cld
	movw	%cs, %ax
	subw	$0x20, %ax		/* CS is the setup's base + 0x20 */
	movw	%ax, %ds
	movw	%ax, %es		/* the loader set SS:SP; keep it */

	/* e820 table from the BIOS, into the zero page. */
	xorl	%ebx, %ebx
	movw	$ZP_E820_TABLE, %di
	xorw	%si, %si		/* entries */
1:	movl	$0xe820, %eax
	movl	$20, %ecx
	movl	$SMAP, %edx
	int	$0x15
	jc	2f
	cmpl	$SMAP, %eax
	jne	2f
	incw	%si
	addw	$20, %di
	testl	%ebx, %ebx
	jz	2f
	cmpw	$E820_MAX, %si
	jb	1b
2:	movw	%si, %ax
	movb	%al, ZP_E820_ENTRIES

	/* A20 through port 0x92 (fast A20), never touching bit 0 (reset). */
	inb	$0x92, %al
	orb	$0x02, %al
	andb	$0xfe, %al
	outb	%al, $0x92

	/* The setup's linear base into the GDT pointer, the far jump and ESI. */
	xorl	%eax, %eax
	movw	%ds, %ax
	shll	$4, %eax
	movl	%eax, %esi
	addl	%eax, gdt_desc + 2
	addl	%eax, pm_jump
	lgdtl	gdt_desc
	movl	%cr0, %eax
	orb	$0x01, %al		/* PE */
	movl	%eax, %cr0
	ljmpl	*pm_jump

	.code32
pm32:
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	xorl	%ebx, %ebx
	xorl	%ebp, %ebp
	xorl	%edi, %edi
	jmpl	*0x214(%esi)		/* code32_start */

	.balign 8
gdt:
	.quad	0
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x10: __BOOT_CS, 32-bit flat code */
	.quad	0x00cf92000000ffff	/* 0x18: __BOOT_DS, flat data */
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt			/* + base */
pm_jump:
	.long	pm32			/* + base */
	.word	0x10

version_string:
	.asciz	"nubis tiny guest"

	.section .note.GNU-stack, "", @progbits
