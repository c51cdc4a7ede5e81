/* SPDX-License-Identifier: MIT */
/* Function-VM internals shared by program.c, sys*.c, run.c and pool.c. */
#ifndef NUBIS_FNVM_INT_H
#define NUBIS_FNVM_INT_H

#include <stdint.h>

#include "../core/arch/x86/uvm.h"
#include "../core/vm.h"
#include "elf.h"
#include "fnvm.h"
#include "vmas.h"

#define FNVM_MAX_FDS   64
#define FNVM_MAX_VMAS  4096
#define FNVM_STACK_MAX (8ull << 20)
#define FNVM_PAGE      4096ull
#define FNVM_NSYSCALLS 1024 /* trace slots; the last counts every larger number */
/* The virtual clock: realtime starts at 2000-01-01T00:00:00Z, monotonic at 0;
 * every system call advances it by FNVM_TICK_NS, sleeps by their length. */
#define FNVM_EPOCH_S 946684800ull
#define FNVM_TICK_NS 1000ull
#define FNVM_PID     2
#define FNVM_PPID    1
#define FNVM_UID     1000
#define FNVM_GID     1000

struct fnvm_chan {
	char *guest_path;
	char *host_path;
	enum fnvm_chan_mode mode;
	int fd;	       /* host fd, opened at program creation */
	int seekable;  /* regular file: per-open offsets with pread/pwrite */
	uint64_t size; /* at open, for read channels (stat) */
};

struct fnvm_program {
	const struct kvmhost *kvm;
	struct fnvm_config cfg; /* deep copy; argv/envp/channels point into owned storage */
	char *path;
	int memfd;	     /* the image: guest-physical [0, img_extent) */
	uint64_t img_extent; /* page-aligned */
	uint64_t entry, bias;
	uint64_t load_lo, load_hi; /* biased, page-aligned */
	uint64_t brk_start;
	uint64_t stack_lo;   /* lowest address the stack may grow to */
	uint64_t mmap_top;   /* mappings are placed below this */
	uint8_t *stack_blob; /* initial stack contents for [stack_sp, mem_size) */
	uint64_t stack_sp, stack_len;
	struct fnvm_chan *chans;
	size_t nchans;
	char **argv_store, **envp_store;
	size_t argc, envc;
};

/* fnvm_program_create() from an open file @fd (taken over: closed in every
 * case), named @name in messages and AT_EXECFN, with AT_UID/AT_GID @uid.
 * Used by service VMs, whose programs come from their root filesystem. */
int fnvm_program_create_fd(const struct kvmhost *kvm, int fd, const char *name,
			   const struct fnvm_config *cfg, unsigned uid, struct fnvm_program **out,
			   struct nb_error *err);

/* A prepared, never-run VM. */
struct fnvm_vm {
	struct vm *vm;
	struct vcpu *cpu;
	uint8_t *host; /* mapping of guest-physical [0, mem_size) */
	uint64_t size;
	int syscall_cpl; /* ring at which SYSCALL reaches the stub: 0, or 3 on kvm_pvm */
};

/* Make a ready-to-run VM for @p (KVM VM + vCPU, memory mapped copy-on-write
 * from the image, initial stack written, registers set). Returns 0 or -errno. */
int fnvm_vm_prepare(struct fnvm_program *p, struct fnvm_vm *out);
/* Tear down (VM fds, mapping). Safe on a zeroed struct. */
void fnvm_vm_release(struct fnvm_vm *v);

/* Pool hooks used by fnvm_run(). */
int fnvm_pool_take(struct fnvm_pool *pool, struct fnvm_vm *out);
void fnvm_pool_retire(struct fnvm_pool *pool, struct fnvm_vm *v);

/* Open-file table entry. */
enum fnvm_ofile_kind { OF_NONE, OF_STDIN, OF_STDOUT, OF_STDERR, OF_CHAN };
struct fnvm_ofile {
	enum fnvm_ofile_kind kind;
	int chan;	  /* OF_CHAN: index into program channels */
	int accmode;	  /* O_RDONLY / O_WRONLY / O_RDWR */
	int status_flags; /* O_APPEND, O_NONBLOCK as set by the program */
	uint64_t off;
	unsigned refs;
};

/* Per-request process state: everything the syscall server knows about the
 * running program. Plain data so that it can be saved and restored. */
struct fnvm_proc {
	struct fnvm_program *prog;
	struct fnvm_vm *vmh;
	struct gmem *mem;
	struct fnvm_stdio *io;
	struct fnvm_result *res;
	struct fnvm_ofile ofiles[FNVM_MAX_FDS];
	int fd_of[FNVM_MAX_FDS]; /* fd -> ofile index, -1 if closed */
	uint8_t fd_cloexec[FNVM_MAX_FDS];
	uint64_t in_pos;	/* stdin buffer position */
	uint64_t out_bytes[3];	/* stdout, stderr, other channels (sum) */
	uint64_t *chan_written; /* per channel */
	uint64_t brk_cur;
	struct fnvm_vma *vmas; /* sorted, disjoint anonymous mappings */
	unsigned nvmas;
	uint64_t vclock_ns;
	uint64_t rng[4]; /* xoshiro256** */
	uint64_t sigmask;
	uint64_t sigpending;	/* raised while blocked */
	uint8_t sigact[64][32]; /* kernel struct sigaction per signal, as set */
	char cwd[8];		/* "/" or "/dev": the only directories */
	uint64_t deadline_ns;	/* CLOCK_MONOTONIC, 0 = none */
	uint64_t fs_base;
	uint64_t tid_address;
	int done; /* set when the program has finished */
};

/* Serve the system call described by @regs (rax = number); writes the return
 * value into regs->rax. May set p->done and p->res fields to end the run. */
void fnvm_syscall(struct fnvm_proc *p, struct kvm_regs *regs);
/* Initialize the process state for a request. Returns 0 or -ENOMEM. */
int fnvm_proc_init(struct fnvm_proc *p, struct fnvm_program *prog, struct fnvm_vm *vmh,
		   struct fnvm_stdio *io, struct fnvm_result *res);
void fnvm_proc_fini(struct fnvm_proc *p);
/* True (and the run ended with FNVM_TIMEOUT) if the deadline has passed. */
int fnvm_proc_check_timeout(struct fnvm_proc *p);
/* End the run with an outcome and message (printf-style). */
void fnvm_proc_end(struct fnvm_proc *p, enum fnvm_outcome o, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Deterministic PRNG (xoshiro256**, seeded by splitmix64). */
void fnvm_rng_seed(uint64_t s[4], uint64_t seed);
uint64_t fnvm_rng_next(uint64_t s[4]);

/* Build the initial stack (argc, argv, envp, auxv and their strings) for a
 * stack whose top is @top. Writes into @buf (of @cap bytes, representing
 * [top - cap, top)); returns the initial RSP, or 0 if it does not fit. */
uint64_t fnvm_stack_build(uint8_t *buf, uint64_t cap, uint64_t top, char *const *argv,
			  char *const *envp, const uint64_t *auxv_pairs, size_t nauxv,
			  const uint8_t random16[16], const char *execfn);

/* Name of x86-64 system call @nr or NULL. */
const char *fnvm_syscall_name(unsigned nr);

#endif
