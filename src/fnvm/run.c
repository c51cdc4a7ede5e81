/* SPDX-License-Identifier: MIT */
/* One request: a never-used VM, the vCPU loop, and the outcome. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "fnvm_int.h"

/* The timeout signal interrupts KVM_RUN on the runner's thread. Its handler
 * only sets immediate_exit on the kvm_run that thread is running, so a
 * signal that lands between two KVM_RUNs is not lost. */
#define FNVM_TIMER_SIGNAL SIGRTMIN
static __thread struct kvm_run *volatile tls_run;

static void timer_handler(int sig)
{
	(void)sig;
	struct kvm_run *r = tls_run;
	if (r)
		r->immediate_exit = 1;
}

static pthread_once_t sig_once = PTHREAD_ONCE_INIT;
static void install_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = timer_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(FNVM_TIMER_SIGNAL, &sa, NULL);
}

struct fnvm_runner {
	timer_t timer;
	int (*on_ready)(void *arg, struct nb_error *err);
	void *on_ready_arg;
};

void fnvm_runner_on_ready(struct fnvm_runner *r, int (*fn)(void *arg, struct nb_error *err),
			  void *arg)
{
	r->on_ready = fn;
	r->on_ready_arg = arg;
}

int fnvm_runner_create(struct fnvm_runner **out, struct nb_error *err)
{
	pthread_once(&sig_once, install_handler);
	struct fnvm_runner *r = calloc(1, sizeof(*r));
	if (!r)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = FNVM_TIMER_SIGNAL;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &r->timer) < 0) {
		free(r);
		return nb_error_sys(err, errno, "timer_create");
	}
	*out = r;
	return 0;
}

void fnvm_runner_destroy(struct fnvm_runner *r)
{
	if (!r)
		return;
	timer_delete(r->timer);
	free(r);
}

/* Fire after @ns, then every 20 ms until disarmed (@ns 0): a signal that
 * lands outside KVM_RUN and outside a blocking host call is repeated. */
static void arm(struct fnvm_runner *rn, uint64_t ns)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(ns / 1000000000ull);
	its.it_value.tv_nsec = (long)(ns % 1000000000ull);
	if (ns)
		its.it_interval.tv_nsec = 20000000;
	timer_settime(rn->timer, 0, &its, NULL);
}

int fnvm_proc_check_timeout(struct fnvm_proc *p)
{
	if (!p->deadline_ns || nb_now_ns() < p->deadline_ns)
		return 0;
	fnvm_proc_end(p, FNVM_TIMEOUT, FNVM_STATUS_TIMEOUT, "timeout: stopped after %.3f s",
		      (double)p->prog->cfg.timeout_ns / 1e9);
	return 1;
}

static const struct {
	int sig;
	const char *what;
} exc_info[32] = {
    [0] = {SIGFPE, "divide error"},
    [1] = {SIGTRAP, "debug exception"},
    [2] = {SIGSEGV, "NMI"},
    [3] = {SIGTRAP, "breakpoint (int3)"},
    [4] = {SIGSEGV, "overflow (into)"},
    [5] = {SIGSEGV, "bound range exceeded"},
    [6] = {SIGILL, "invalid opcode"},
    [7] = {SIGFPE, "device not available"},
    [8] = {SIGSEGV, "double fault"},
    [10] = {SIGSEGV, "invalid TSS"},
    [11] = {SIGBUS, "segment not present"},
    [12] = {SIGBUS, "stack segment fault"},
    [13] = {SIGSEGV, "general protection fault"},
    [14] = {SIGSEGV, "page fault"},
    [16] = {SIGFPE, "x87 floating-point exception"},
    [17] = {SIGBUS, "alignment check"},
    [18] = {SIGBUS, "machine check"},
    [19] = {SIGFPE, "SIMD floating-point exception"},
    [21] = {SIGSEGV, "control protection exception"},
};

/* Instructions worth naming when they fault in ring 3. */
static const char *privileged_name(const uint8_t *b)
{
	switch (b[0]) {
	case 0xf4:
		return "hlt";
	case 0xfa:
		return "cli";
	case 0xfb:
		return "sti";
	case 0xe4:
	case 0xe5:
	case 0xec:
	case 0xed:
		return "in";
	case 0xe6:
	case 0xe7:
	case 0xee:
	case 0xef:
		return "out";
	case 0x0f:
		switch (b[1]) {
		case 0x01:
			return b[2] == 0xf8 ? "swapgs" : "system instruction (lgdt/lidt/...)";
		case 0x06:
			return "clts";
		case 0x09:
			return "wbinvd";
		case 0x20:
		case 0x22:
			return "mov to/from control register";
		case 0x21:
		case 0x23:
			return "mov to/from debug register";
		case 0x30:
			return "wrmsr";
		case 0x32:
			return "rdmsr";
		case 0x35:
			return "sysexit";
		case 0x07:
			return "sysret";
		}
	}
	return NULL;
}

/* An exception stub ran `hlt`: emulate rdtsc/rdtscp (CR4.TSD makes them
 * fault, so the program sees the virtual clock), or end the run. */
static void handle_exception(struct fnvm_proc *p, struct vcpu *c, int vec)
{
	struct kvm_regs *r = &c->run->s.regs.regs;
	uint64_t frame[6] = {0}; /* [err], rip, cs, rflags, rsp, ss */
	int has_err = x86_exc_has_error_code(vec);
	uint64_t errcode = 0;
	if (gmem_read(p->mem, r->rsp, frame, sizeof(frame)) < 0) {
		fnvm_proc_end(p, FNVM_ERROR, FNVM_STATUS_INTERNAL,
			      "exception %d with a bad ring-0 stack", vec);
		return;
	}
	if (has_err)
		errcode = frame[0];
	uint64_t *f = frame + has_err; /* rip, cs, rflags, rsp, ss */
	uint64_t rip = f[0];
	uint8_t insn[16] = {0};
	int have_insn = rip >= UVM_USER_BASE && gmem_read(p->mem, rip, insn, sizeof(insn)) == 0;
	if ((f[1] & 3) != 3) {
		fnvm_proc_end(p, FNVM_ERROR, FNVM_STATUS_INTERNAL,
			      "exception %d in monitor stub at %#llx", vec,
			      (unsigned long long)rip);
		return;
	}
	if (vec == 13 && errcode == 0 && have_insn && insn[0] == 0x0f &&
	    (insn[1] == 0x31 || (insn[1] == 0x01 && insn[2] == 0xf9))) {
		/* virtual TSC: 1 GHz, the virtual clock in nanoseconds */
		uint64_t tsc = p->vclock_ns;
		p->vclock_ns += FNVM_TICK_NS;
		r->rax = (uint32_t)tsc;
		r->rdx = tsc >> 32;
		if (insn[1] == 0x01)
			r->rcx = 0; /* TSC_AUX */
		f[0] = rip + (insn[1] == 0x31 ? 2 : 3);
		gmem_write(p->mem, r->rsp + 8 * (uint64_t)has_err, f, 8);
		c->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		return;
	}
	const char *what = exc_info[vec].what ? exc_info[vec].what : "exception";
	int sig = exc_info[vec].sig ? exc_info[vec].sig : SIGSEGV;
	char detail[160] = "";
	if (vec == 14) {
		struct kvm_sregs sr;
		uint64_t cr2 = 0;
		if (ioctl(c->fd, KVM_GET_SREGS, &sr) == 0)
			cr2 = sr.cr2;
		snprintf(detail, sizeof(detail), " at address %#llx (%s, %s)",
			 (unsigned long long)cr2,
			 errcode & 0x10 ? "instruction fetch"
			 : errcode & 2	? "write"
					: "read",
			 errcode & 1 ? "protection" : "not mapped");
	} else if (vec == 13 && have_insn && privileged_name(insn)) {
		snprintf(detail, sizeof(detail), ": privileged instruction %s",
			 privileged_name(insn));
	}
	fnvm_proc_end(p, FNVM_SIGNALED, sig, "killed by SIG%s: %s%s, rip=%#llx rsp=%#llx",
		      sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", what, detail,
		      (unsigned long long)rip, (unsigned long long)f[3]);
}

static void dump_internal(struct fnvm_proc *p, struct vcpu *c, const char *what, unsigned code)
{
	const struct kvm_regs *r = &c->run->s.regs.regs;
	fnvm_proc_end(p, FNVM_ERROR, FNVM_STATUS_INTERNAL, "%s (%u) at rip=%#llx rsp=%#llx", what,
		      code, (unsigned long long)r->rip, (unsigned long long)r->rsp);
}

static void vcpu_loop(struct fnvm_proc *p, struct vcpu *c)
{
	struct kvm_run *run = c->run;
	struct fnvm_result *res = p->res;
	uint64_t limit = p->prog->cfg.syscall_limit;
	tls_run = run;
	while (!p->done) {
		int rc = ioctl(c->fd, KVM_RUN, 0);
		if (!res->t_first_entry_ns)
			res->t_first_entry_ns = nb_now_ns();
		res->exits++;
		run->kvm_dirty_regs = 0;
		if (rc < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				fnvm_proc_check_timeout(p);
				continue;
			}
			fnvm_proc_end(p, FNVM_ERROR, FNVM_STATUS_INTERNAL, "KVM_RUN failed: %s",
				      strerror(errno));
			break;
		}
		struct kvm_regs *r = &run->s.regs.regs;
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			if (run->mmio.is_write &&
			    x86_uvm_is_syscall_exit(run->mmio.phys_addr, r->rip)) {
				res->syscalls++;
				fnvm_syscall(p, r);
				if (limit && res->syscalls >= limit && !p->done)
					fnvm_proc_end(p, FNVM_SYSCALL_LIMIT,
						      FNVM_STATUS_SYSCALL_LIMIT,
						      "system-call limit of %llu reached",
						      (unsigned long long)limit);
				if (p->vmh->syscall_cpl == 3) {
					/* kvm_pvm: still in ring 3, so return directly */
					r->rip = r->rcx;
					r->rflags = r->r11;
				}
				run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
				break;
			}
			fnvm_proc_end(
			    p, FNVM_SIGNALED, SIGSEGV,
			    "killed by SIGSEGV: access to unbacked address %#llx at rip=%#llx",
			    (unsigned long long)run->mmio.phys_addr, (unsigned long long)r->rip);
			break;
		case KVM_EXIT_IO:
			fnvm_proc_end(p, FNVM_SIGNALED, SIGSEGV,
				      "killed by SIGSEGV: port I/O to %#x at rip=%#llx",
				      run->io.port, (unsigned long long)r->rip);
			break;
		case KVM_EXIT_HLT: {
			int vec = x86_uvm_exc_vector(r->rip);
			if (vec < 0) {
				dump_internal(p, c, "unexpected halt", 0);
				break;
			}
			handle_exception(p, c, vec);
			break;
		}
		case KVM_EXIT_SHUTDOWN:
			fnvm_proc_end(p, FNVM_SIGNALED, SIGSEGV,
				      "killed by SIGSEGV: triple fault at rip=%#llx",
				      (unsigned long long)r->rip);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			dump_internal(p, c, "KVM internal error", run->internal.suberror);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			dump_internal(p, c, "KVM entry failure",
				      (unsigned)run->fail_entry.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTR:
			run->immediate_exit = 0;
			fnvm_proc_check_timeout(p);
			break;
		default:
			dump_internal(p, c, "unexpected VM exit", run->exit_reason);
			break;
		}
	}
	tls_run = NULL;
}

int fnvm_run(struct fnvm_runner *rn, struct fnvm_program *p, struct fnvm_pool *pool,
	     struct fnvm_stdio *io, struct fnvm_result *res, struct nb_error *err)
{
	struct fnvm_vm v;
	struct fnvm_proc proc;
	memset(res, 0, sizeof(*res));
	res->t_start_ns = nb_now_ns();
	if (p->cfg.trace) {
		res->counts = calloc(FNVM_NSYSCALLS, sizeof(uint32_t));
		res->enosys = calloc(FNVM_NSYSCALLS, sizeof(uint32_t));
		if (!res->counts || !res->enosys) {
			fnvm_result_release(res);
			return nb_error_set(err, NB_ERESOURCE, "out of memory");
		}
	}
	int rc = pool ? fnvm_pool_take(pool, &v) : fnvm_vm_prepare(p, &v);
	if (rc) {
		fnvm_result_release(res);
		if (rc == -ENOENT || rc == -ENXIO || rc == -EACCES)
			return nb_error_set(err, NB_EKVM, "cannot create a VM: %s", strerror(-rc));
		return nb_error_set(err, NB_ERESOURCE, "cannot create a VM: %s", strerror(-rc));
	}
	if (fnvm_proc_init(&proc, p, &v, io, res) < 0) {
		if (pool)
			fnvm_pool_retire(pool, &v);
		else
			fnvm_vm_release(&v);
		fnvm_result_release(res);
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	}
	if (rn->on_ready) {
		int (*fn)(void *, struct nb_error *) = rn->on_ready;
		rn->on_ready = NULL;
		if (fn(rn->on_ready_arg, err) < 0) {
			fnvm_proc_fini(&proc);
			if (pool)
				fnvm_pool_retire(pool, &v);
			else
				fnvm_vm_release(&v);
			fnvm_result_release(res);
			return -1;
		}
	}
	if (p->cfg.timeout_ns) {
		proc.deadline_ns = res->t_start_ns + p->cfg.timeout_ns;
		arm(rn, p->cfg.timeout_ns);
	}
	vcpu_loop(&proc, v.cpu);
	if (p->cfg.timeout_ns)
		arm(rn, 0);
	res->t_end_ns = nb_now_ns();
	fnvm_proc_fini(&proc);
	if (pool)
		fnvm_pool_retire(pool, &v);
	else
		fnvm_vm_release(&v);
	return 0;
}

void fnvm_result_release(struct fnvm_result *r)
{
	free(r->counts);
	free(r->enosys);
	r->counts = r->enosys = NULL;
}

void fnvm_result_report(const struct fnvm_result *r, FILE *f)
{
	fprintf(f, "nubis: trace: %llu system calls, %llu VM exits, %.1f us\n",
		(unsigned long long)r->syscalls, (unsigned long long)r->exits,
		(double)(r->t_end_ns - r->t_start_ns) / 1e3);
	if (!r->counts)
		return;
	for (unsigned nr = 0; nr < FNVM_NSYSCALLS; nr++) {
		if (!r->counts[nr])
			continue;
		const char *name =
		    nr == FNVM_NSYSCALLS - 1 ? "numbers >= 1023" : fnvm_syscall_name(nr);
		fprintf(f, "nubis: trace: %6u  %s (%u)%s\n", r->counts[nr], name ? name : "?", nr,
			r->enosys[nr] ? "  unsupported: ENOSYS" : "");
	}
}
