/* Exitless SYSCALL stub (src/svc/exitless.c holds its bytes). "slow" is
 * UVM_SYSCALL_STUB (the doorbell); TAIL is replaced by sysretq on VT-x/SVM.
 * Rebuild: as --64 -o s.o exitless-stub.S && objdump -dr s.o */
	.code64
	.set CTRL, 0x60000
fast:
	cmp $511, %rax
	ja slow
	btl %eax, CTRL+64
	jnc slow
	cmpl $0, CTRL
	je slow
	mov %rax, %gs:8
	mov %rdi, %gs:16
	mov %rsi, %gs:24
	mov %rdx, %gs:32
	mov %r10, %gs:40
	mov %r8, %gs:48
	mov %r9, %gs:56
	movl $1, %gs:0
SPIN:
	mov $0x11223344, %eax
1:	pause
	cmpl $3, %gs:0
	je done
	cmpl $4, %gs:0
	je defer
	cmpl $5, %gs:0
	je done_exit
	dec %eax
	jnz 1b
	xor %eax, %eax
	xchg %eax, %gs:0
	cmp $3, %eax
	je done
	cmp $4, %eax
	je defer
	cmp $5, %eax
	je done_exit
	cmp $2, %eax
	jne reload
2:	pause
	cmpl $3, %gs:0
	je done
	cmpl $4, %gs:0
	je defer
	cmpl $5, %gs:0
	je done_exit
	jmp 2b
done_exit:
	movl $0, %gs:0
	mov $0x4e420001, %eax
	jmp slow
defer:
	movl $0, %gs:0
reload:
	mov %gs:8, %rax
	jmp slow
done:
	mov %gs:64, %rax
	movl $0, %gs:0
TAIL:
	lea -128(%rsp), %rsp
	push %r11
	popfq
	lea 128(%rsp), %rsp
	jmp *%rcx
