/* SPDX-License-Identifier: MIT */
/*
 * Function VMs: run an unmodified static x86-64 Linux executable in a fresh
 * KVM VM per request, serving its system calls in the monitor.
 *
 * Life cycle:
 *   fnvm_program_create()  parse the ELF once, lay the address space out into
 *                          a memfd image (page tables, stubs, segments, initial
 *                          stack), open declared channels.
 *   fnvm_runner_create()   per thread that runs requests (holds its timer).
 *   fnvm_pool_create()     optional: keep VMs prepared ahead (created, memory
 *                          mapped copy-on-write from the image, registers set),
 *                          and destroy used VMs off the request path.
 *   fnvm_run()             one request: take (or make) a never-used VM, run the
 *                          program to completion, fill a result, retire the VM.
 *
 * Ownership: a program outlives every pool and run that uses it. A pool owns
 * its threads and VMs. Nothing here is global; several programs, pools and
 * runners may live in one process.
 */
#ifndef NUBIS_FNVM_H
#define NUBIS_FNVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/error.h"
#include "../core/kvmhost.h"

enum fnvm_chan_mode { FNVM_CHAN_READ, FNVM_CHAN_WRITE, FNVM_CHAN_APPEND };

struct fnvm_channel_spec {
	const char *guest_path; /* absolute, normalized by the parser */
	const char *host_path;
	enum fnvm_chan_mode mode;
};

struct fnvm_config {
	uint64_t mem_size;	   /* guest memory, bytes (multiple of 2 MiB) */
	uint64_t timeout_ns;	   /* wall clock; 0 = none */
	uint64_t output_limit;	   /* bytes per output channel; 0 = none */
	uint64_t syscall_limit;	   /* 0 = none */
	uint64_t seed;		   /* PRNG seed for getrandom and AT_RANDOM */
	bool trace;		   /* count system calls; fnvm_result_report() prints them */
	bool allow_write_channels; /* false for servers (requests would share files) */
	char *const *argv;	   /* argv[0] is the name the program sees */
	char *const *envp;
	const struct fnvm_channel_spec *channels;
	size_t nchannels;
	/* vDSO (service VMs only; vdso helper): an ELF image copied to UVM_VDSO,
	 * the clock page UVM_VVAR below it, both user-readable, and
	 * AT_SYSINFO_EHDR in the auxiliary vector. NULL (the default): none, so
	 * function VMs keep the monitor's deterministic clock. Not copied: must
	 * outlive the program. */
	const void *vdso_image;
	size_t vdso_len;
};

/* Parse "GUEST_PATH=HOST_PATH:r|w|a" into @out (pointers into a copy kept in
 * *@storage, which the caller frees). Returns 0 or fills @err. */
int fnvm_channel_parse(const char *arg, struct fnvm_channel_spec *out, char **storage,
		       struct nb_error *err);

/* Defaults: 64 MiB, no timeout, 64 MiB output per channel, no syscall cap. */
void fnvm_config_defaults(struct fnvm_config *cfg);

struct fnvm_program;
/* Load @path with @cfg (copied). Errors: NB_ENOENT (file), NB_EFORMAT (not a
 * static x86-64 ELF, with the reason), NB_EINVAL (config), NB_EKVM. */
int fnvm_program_create(const struct kvmhost *kvm, const char *path, const struct fnvm_config *cfg,
			struct fnvm_program **out, struct nb_error *err);
void fnvm_program_destroy(struct fnvm_program *p);

/* Where a request's standard streams come from and go to. */
struct fnvm_sink {
	int fd;	   /* >= 0: write through to this host fd */
	char *buf; /* fd < 0: collected here (malloc'd, caller frees) */
	size_t len, cap;
};
struct fnvm_stdio {
	int in_fd;	    /* >= 0: read from host fd */
	const void *in_buf; /* in_fd < 0: read from this buffer (may be NULL) */
	size_t in_len;
	struct fnvm_sink out, err; /* stdout, stderr */
};

enum fnvm_outcome {
	FNVM_EXITED,   /* exit/exit_group: exit_code valid */
	FNVM_SIGNALED, /* killed by a fault or its own kill(): signal valid */
	FNVM_TIMEOUT,
	FNVM_OUTPUT_LIMIT,
	FNVM_SYSCALL_LIMIT,
	FNVM_DEADLOCK, /* waited on a futex no other thread can wake */
	FNVM_ERROR,    /* monitor or KVM error */
};

/* Exit statuses of `nubis run` for outcomes other than a normal exit. */
#define FNVM_STATUS_CHANNEL	  119 /* a channel's host file cannot be used */
#define FNVM_STATUS_INTERNAL	  120
#define FNVM_STATUS_OUTPUT_LIMIT  121
#define FNVM_STATUS_SYSCALL_LIMIT 122
#define FNVM_STATUS_DEADLOCK	  123
#define FNVM_STATUS_TIMEOUT	  124
#define FNVM_STATUS_USAGE	  125
#define FNVM_STATUS_BAD_PROGRAM	  126
#define FNVM_STATUS_NOT_FOUND	  127

struct fnvm_result {
	enum fnvm_outcome outcome;
	int exit_code;	   /* FNVM_EXITED */
	int signal;	   /* FNVM_SIGNALED */
	int status;	   /* one number for shells: exit_code, 128+signal, or FNVM_STATUS_* */
	char message[384]; /* one line describing a non-exit outcome */
	uint64_t syscalls;
	uint64_t exits;					 /* VM exits taken */
	uint64_t t_start_ns, t_first_entry_ns, t_end_ns; /* CLOCK_MONOTONIC */
	uint32_t *counts; /* per syscall number when tracing (owned, see fnvm_result_release) */
	uint32_t *enosys;
};
void fnvm_result_release(struct fnvm_result *r);
/* Print the --trace report (system calls by count, unsupported ones) to @f. */
void fnvm_result_report(const struct fnvm_result *r, FILE *f);

struct fnvm_runner;
/* A runner belongs to the thread that created it. */
int fnvm_runner_create(struct fnvm_runner **out, struct nb_error *err);
void fnvm_runner_destroy(struct fnvm_runner *r);
/* Have @fn(@arg, err) called once, on the runner's thread, when the first
 * request's VM is ready and before any guest code runs: the place to install
 * a sandbox. If it fails, that fnvm_run() fails with its error. */
void fnvm_runner_on_ready(struct fnvm_runner *r, int (*fn)(void *arg, struct nb_error *err),
			  void *arg);

struct fnvm_pool;
/* Keep up to @depth prepared VMs; @threads background preparers (>= 1). */
int fnvm_pool_create(struct fnvm_program *p, unsigned depth, unsigned threads,
		     struct fnvm_pool **out, struct nb_error *err);
void fnvm_pool_destroy(struct fnvm_pool *pool);
/* VMs ready now (for benchmarks and metrics). */
unsigned fnvm_pool_ready(struct fnvm_pool *pool);

/* Run one request. @pool may be NULL (the VM is made on the spot and
 * destroyed before returning). Returns 0 when the program ran (whatever its
 * outcome, see @res) or -1 with @err when no VM could be made. */
int fnvm_run(struct fnvm_runner *rn, struct fnvm_program *p, struct fnvm_pool *pool,
	     struct fnvm_stdio *io, struct fnvm_result *res, struct nb_error *err);

#endif
