/* The first instruction reads the TSC; the program writes the 8 bytes to
 * stdout and exits. fnvm_bench compares them with the host's TSC at the
 * request's start: on hosts where guest ring-3 rdtsc reads the host TSC
 * (kvm_pvm ignores CR4.TSD) that is request -> first guest instruction. */
	.globl _start
	.text
_start:
	rdtsc
	shl	$32, %rdx
	or	%rdx, %rax
	push	%rax
	mov	$1, %eax	/* write(1, rsp, 8) */
	mov	$1, %edi
	mov	%rsp, %rsi
	mov	$8, %edx
	syscall
	mov	$231, %eax	/* exit_group(0) */
	xor	%edi, %edi
	syscall
	.section .note.GNU-stack,"",@progbits
