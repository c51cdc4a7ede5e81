/* SPDX-License-Identifier: MIT */
#include "pvm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../common/log.h"

#define CR0_PG	     (1ull << 31)
#define CR4_PAE	     (1ull << 5)
#define CR4_LA57     (1ull << 12)
#define EFER_LMA     (1ull << 10)
#define PTE_P	     0x1ull
#define PTE_W	     0x2ull
#define PTE_PS	     0x80ull
#define PTE_ADDR     0x000ffffffffff000ull
#define RFLAGS_IF    (1ull << 9)
#define RFLAGS_DF    (1ull << 10)
#define RFLAGS_AC    (1ull << 18)
#define MSR_STAR     0xc0000081u
#define MSR_LSTAR    0xc0000082u
#define MSR_FMASK    0xc0000084u
#define IDT_CHECK_NS 2000000ull /* look at the guest IDT at most every 2 ms */

int pvm_mode_parse(const char *s, enum pvm_mode *out)
{
	if (!strcmp(s, "auto"))
		*out = PVM_AUTO;
	else if (!strcmp(s, "on"))
		*out = PVM_ON;
	else if (!strcmp(s, "off"))
		*out = PVM_OFF;
	else
		return -EINVAL;
	return 0;
}

bool pvm_mode_active(enum pvm_mode mode, enum kvmhost_flavour flavour)
{
	return mode == PVM_ON || (mode == PVM_AUTO && flavour == KVMHOST_PVM);
}

const char *pvm_cmdline_extra(void)
{
	/* each option is explained in docs/LINUX-VMS.md, "Command-line options" */
	return "nokaslr noxsave clearcpuid=cx16,smap,ssse3,popcnt nofsgsbase nopcid "
	       "mitigations=off "
	       "cryptomgr.notests";
}

char *pvm_cmdline_join(bool is_linux, const char *user)
{
	const char *extra = is_linux ? pvm_cmdline_extra() : "";
	if (!user)
		user = "";
	size_t n = strlen(user) + 1 + strlen(extra) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", user, *user && *extra ? " " : "", extra);
	return s;
}

void pvm_report(const struct pvm_cpu *pc, unsigned n)
{
	if (!getenv("NUBIS_PVM_STATS"))
		return;
	for (unsigned i = 0; i < n; i++) {
		const struct pvm_stats *s = &pc[i].st;
		fprintf(stderr,
			"nubis-vmm: pvm: vCPU %u: syscalls %llu, page faults %llu, int3 %llu, "
			"fwait %llu, ldmxcsr %llu, stmxcsr %llu, clac/stac %llu, breakpoint "
			"placed %llu times, retried %llu\n",
			i, (unsigned long long)s->syscalls, (unsigned long long)s->faults,
			(unsigned long long)s->emulated[PVM_OP_INT3],
			(unsigned long long)s->emulated[PVM_OP_FWAIT],
			(unsigned long long)s->emulated[PVM_OP_LDMXCSR],
			(unsigned long long)s->emulated[PVM_OP_STMXCSR],
			(unsigned long long)(s->emulated[PVM_OP_CLAC] + s->emulated[PVM_OP_STAC]),
			(unsigned long long)s->bp_arms, (unsigned long long)s->retries);
	}
}

/* ---- page tables ---- */

int pvm_translate(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la, bool write,
		  gpa_t *gpa)
{
	if (!(pg->cr0 & CR0_PG)) {
		*gpa = la;
		return 0;
	}
	if (!(pg->efer & EFER_LMA) || !(pg->cr4 & CR4_PAE))
		return -ENOTSUP;
	unsigned levels = (pg->cr4 & CR4_LA57) ? 5 : 4;
	unsigned bits = 12 + 9 * levels; /* 48 or 57 */
	uint64_t canon = (uint64_t)((int64_t)(la << (64 - bits)) >> (64 - bits));
	if (canon != la)
		return -ENOTSUP;
	uint64_t table = pg->cr3 & PTE_ADDR;
	for (unsigned lvl = levels; lvl >= 1; lvl--) {
		unsigned shift = 12 + 9 * (lvl - 1);
		uint64_t e;
		const void *p = gmem_ptr(mem, table + ((la >> shift) & 511) * 8, 8);
		if (!p)
			return -EFAULT;
		memcpy(&e, p, 8);
		if (!(e & PTE_P) || (write && !(e & PTE_W)))
			return -ENOENT;
		if ((lvl == 2 || lvl == 3) && (e & PTE_PS)) {
			uint64_t size = 1ull << shift;
			*gpa = (e & PTE_ADDR & ~(size - 1)) | (la & (size - 1));
			return 0;
		}
		table = e & PTE_ADDR;
	}
	*gpa = table | (la & 0xfff);
	return 0;
}

static int virt_copy(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la, uint8_t *buf,
		     size_t len, bool write)
{
	while (len) {
		size_t chunk = 4096 - (la & 0xfff);
		if (chunk > len)
			chunk = len;
		gpa_t gpa;
		int rc = pvm_translate(mem, pg, la, write, &gpa);
		if (rc)
			return rc;
		void *p = gmem_ptr(mem, gpa, chunk);
		if (!p)
			return -EFAULT;
		if (write)
			memcpy(p, buf, chunk);
		else
			memcpy(buf, p, chunk);
		la += chunk;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

int pvm_read_virt(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la, void *dst,
		  size_t len)
{
	return virt_copy(mem, pg, la, dst, len, false);
}

int pvm_write_virt(const struct gmem *mem, const struct pvm_paging *pg, uint64_t la,
		   const void *src, size_t len)
{
	/* check every page first so a failing write changes nothing */
	for (uint64_t a = la & ~0xfffull; len && a < la + len; a += 4096) {
		gpa_t g;
		int rc = pvm_translate(mem, pg, a < la ? la : a, true, &g);
		if (rc)
			return rc;
	}
	return virt_copy(mem, pg, la, (uint8_t *)(uintptr_t)src, len, true);
}

/* ---- decoder ---- */

/* ModRM (+SIB, displacement) at code[*i]. Fills *reg and, for a memory form, @m.
 * Returns 1 for a register form, 0 for memory, -1 if truncated. */
static int decode_modrm(const uint8_t *code, size_t avail, size_t *i, uint8_t rex, int *reg,
			struct pvm_mem_operand *m)
{
	if (*i >= avail)
		return -1;
	uint8_t b = code[(*i)++];
	unsigned mod = b >> 6, rm = b & 7;
	*reg = (int)(((b >> 3) & 7) | ((rex & 4) ? 8 : 0));
	if (mod == 3)
		return 1;
	m->base = m->index = -1;
	m->scale = 1;
	m->disp = 0;
	m->rip_rel = false;
	bool disp32 = mod == 2;
	if (rm == 4) {
		if (*i >= avail)
			return -1;
		uint8_t sib = code[(*i)++];
		int idx = (int)(((sib >> 3) & 7) | ((rex & 2) ? 8 : 0));
		m->scale = 1u << (sib >> 6);
		m->index = idx == 4 ? -1 : idx;
		if ((sib & 7) == 5 && mod == 0)
			disp32 = true; /* no base */
		else
			m->base = (int)((sib & 7) | ((rex & 1) ? 8 : 0));
	} else if (rm == 5 && mod == 0) {
		m->rip_rel = true;
		disp32 = true;
	} else {
		m->base = (int)(rm | ((rex & 1) ? 8 : 0));
	}
	if (mod == 1) {
		if (*i >= avail)
			return -1;
		m->disp = (int8_t)code[(*i)++];
	} else if (disp32) {
		if (avail - *i < 4)
			return -1;
		uint32_t d = (uint32_t)code[*i] | (uint32_t)code[*i + 1] << 8 |
			     (uint32_t)code[*i + 2] << 16 | (uint32_t)code[*i + 3] << 24;
		m->disp = (int32_t)d;
		*i += 4;
	}
	return 0;
}

int pvm_decode(const uint8_t *code, size_t avail, struct pvm_insn *out)
{
	memset(out, 0, sizeof(*out));
	out->mem.base = out->mem.index = -1;
	if (avail > 15)
		avail = 15;
	size_t i = 0;
	bool opsz = false, rep = false, repne = false;
	int seg = 0;
	uint8_t rex = 0;
	for (; i < avail; i++) {
		uint8_t b = code[i];
		if (b == 0x66)
			opsz = true;
		else if (b == 0xf3)
			rep = true;
		else if (b == 0xf2)
			repne = true;
		else if (b == 0x64)
			seg = 4;
		else if (b == 0x65)
			seg = 5;
		else if (b != 0x26 && b != 0x2e && b != 0x36 && b != 0x3e)
			break;
	}
	if (i < avail && (code[i] & 0xf0) == 0x40)
		rex = code[i++];
	if (i >= avail)
		return -EINVAL;
	uint8_t op = code[i++];
	int reg, form;
	enum pvm_op res = PVM_OP_UNKNOWN;
	switch (op) {
	case 0xcc:
		res = PVM_OP_INT3;
		break;
	case 0x9b:
		res = PVM_OP_FWAIT;
		break;
	case 0x90: /* with REX.B it is xchg r8, rax; with f3 it is pause (no effect either) */
		if (!(rex & 1))
			res = PVM_OP_NOP;
		break;
	case 0xfc:
		res = PVM_OP_CLD;
		break;
	case 0x0f:
		if (i >= avail)
			return -EINVAL;
		op = code[i++];
		if (op == 0x01) {
			if (i < avail && (code[i] == 0xca || code[i] == 0xcb) && !opsz && !rep &&
			    !repne) {
				res = code[i] == 0xca ? PVM_OP_CLAC : PVM_OP_STAC;
				i++;
			}
		} else if (op == 0x1f) {
			struct pvm_mem_operand ignored;
			form = decode_modrm(code, avail, &i, rex, &reg, &ignored);
			if (form >= 0 && (reg & 7) == 0)
				res = PVM_OP_NOP;
		} else if (op == 0x1e && rep && i < avail && code[i] == 0xfa) {
			i++;
			res = PVM_OP_NOP; /* endbr64 */
		} else if (op == 0xae && !opsz && !rep && !repne) {
			form = decode_modrm(code, avail, &i, rex, &reg, &out->mem);
			if (form == 0 && (reg & 7) == 2)
				res = PVM_OP_LDMXCSR;
			else if (form == 0 && (reg & 7) == 3)
				res = PVM_OP_STMXCSR;
			out->mem.seg = seg;
		}
		break;
	default:
		break;
	}
	if (res == PVM_OP_UNKNOWN || i > avail)
		return -EINVAL;
	out->op = res;
	out->len = (unsigned)i;
	return 0;
}

/* kvm_regs in x86 register-number order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..). */
static uint64_t gpr(const struct kvm_regs *r, int n)
{
	switch (n) {
	case 0:
		return r->rax;
	case 1:
		return r->rcx;
	case 2:
		return r->rdx;
	case 3:
		return r->rbx;
	case 4:
		return r->rsp;
	case 5:
		return r->rbp;
	case 6:
		return r->rsi;
	case 7:
		return r->rdi;
	case 8:
		return r->r8;
	case 9:
		return r->r9;
	case 10:
		return r->r10;
	case 11:
		return r->r11;
	case 12:
		return r->r12;
	case 13:
		return r->r13;
	case 14:
		return r->r14;
	case 15:
		return r->r15;
	default:
		return 0;
	}
}

uint64_t pvm_operand_address(const struct pvm_mem_operand *m, const struct kvm_regs *r,
			     uint64_t next_rip, uint64_t fs_base, uint64_t gs_base)
{
	uint64_t a = (uint64_t)m->disp;
	if (m->rip_rel)
		a += next_rip;
	if (m->base >= 0)
		a += gpr(r, m->base);
	if (m->index >= 0)
		a += gpr(r, m->index) * m->scale;
	if (m->seg == 4)
		a += fs_base;
	else if (m->seg == 5)
		a += gs_base;
	return a;
}

/* ---- per-vCPU handling ---- */

void pvm_cpu_init(struct pvm_cpu *pc, struct vcpu *c, const struct gmem *mem)
{
	memset(pc, 0, sizeof(*pc));
	pc->c = c;
	pc->mem = mem;
	pc->trace = getenv("NUBIS_PVM_TRACE") != NULL;
}

static void paging_of(const struct kvm_sregs *s, struct pvm_paging *pg)
{
	pg->cr0 = s->cr0;
	pg->cr3 = s->cr3;
	pg->cr4 = s->cr4;
	pg->efer = s->efer;
}

static int set_breakpoint(struct pvm_cpu *pc, uint64_t addr)
{
	struct kvm_guest_debug dbg;
	memset(&dbg, 0, sizeof(dbg));
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	dbg.arch.debugreg[0] = addr;
	dbg.arch.debugreg[7] = 0x1; /* L0: instruction breakpoint, 1 byte */
	if (ioctl(pc->c->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
		return -errno;
	pc->bp_addr = addr;
	pc->st.bp_arms++;
	return 0;
}

/* The first instruction of the handler at @addr, if we can step past it ourselves. */
static bool steppable(const struct gmem *mem, const struct pvm_paging *pg, uint64_t addr,
		      struct pvm_insn *in)
{
	uint8_t code[15];
	size_t n = sizeof(code);
	/* the handler may end near a page boundary; fewer bytes are fine */
	while (n && pvm_read_virt(mem, pg, addr, code, n))
		n = n > 4096 - (addr & 0xfff) ? 4096 - (addr & 0xfff) : 0;
	if (!n || pvm_decode(code, n, in))
		return false;
	return in->op == PVM_OP_NOP || in->op == PVM_OP_CLAC || in->op == PVM_OP_STAC ||
	       in->op == PVM_OP_CLD;
}

/* NUBIS_PVM_TRACE=1: every second, one line per vCPU with its RIP (where a slow guest
 * spends its time; the guest's System.map names the function). */
static void trace_rip(struct pvm_cpu *pc, uint64_t now_ns)
{
	struct kvm_regs r;
	pc->next_trace = now_ns + 1000000000ull;
	if (ioctl(pc->c->fd, KVM_GET_REGS, &r) == 0)
		fprintf(stderr,
			"nubis-vmm: pvm trace: vCPU %d rip %#llx syscalls %llu faults %llu\n",
			pc->c->id, (unsigned long long)r.rip, (unsigned long long)pc->st.syscalls,
			(unsigned long long)pc->st.faults);
}

void pvm_check_idt(struct pvm_cpu *pc, uint64_t now_ns)
{
	if (pc->trace && now_ns >= pc->next_trace)
		trace_rip(pc, now_ns);
	if (now_ns < pc->next_check)
		return;
	pc->next_check = now_ns + IDT_CHECK_NS;
	struct kvm_sregs s;
	if (ioctl(pc->c->fd, KVM_GET_SREGS, &s) < 0 || s.idt.limit < 15 * 16 - 1 ||
	    !(s.efer & EFER_LMA))
		return;
	struct pvm_paging pg;
	paging_of(&s, &pg);
	uint8_t gate[16];
	if (pvm_read_virt(pc->mem, &pg, s.idt.base + 14 * 16, gate, sizeof(gate)))
		return;
	unsigned type = gate[5] & 0x1f, present = gate[5] >> 7;
	uint64_t handler = (uint64_t)gate[0] | (uint64_t)gate[1] << 8 | (uint64_t)gate[6] << 16 |
			   (uint64_t)gate[7] << 24 | (uint64_t)gate[8] << 32 |
			   (uint64_t)gate[9] << 40 | (uint64_t)gate[10] << 48 |
			   (uint64_t)gate[11] << 56;
	if (!present || (type != 0xe && type != 0xf) || handler == pc->bp_addr)
		return;
	/* Only a handler that starts with an instruction we can step past (the kernel's
	 * idtentry starts with ASM_CLAC: clac or its nop) gets the breakpoint; the early
	 * boot handlers (push $14) run before any user code and are left alone. */
	struct pvm_insn in;
	if (!steppable(pc->mem, &pg, handler, &in))
		return;
	int rc = set_breakpoint(pc, handler);
	if (rc)
		nb_log(NB_LOG_WARN, "pvm: vCPU %d: KVM_SET_GUEST_DEBUG: %s", pc->c->id,
		       strerror(-rc));
	pc->idt_base = s.idt.base;
}

static int get_msrs(struct vcpu *c, uint64_t *star, uint64_t *lstar, uint64_t *fmask)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[3];
	} m;
	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 3;
	m.e[0].index = MSR_STAR;
	m.e[1].index = MSR_LSTAR;
	m.e[2].index = MSR_FMASK;
	if (ioctl(c->fd, KVM_GET_MSRS, &m) != 3)
		return -EIO;
	*star = m.e[0].data;
	*lstar = m.e[1].data;
	*fmask = m.e[2].data;
	return 0;
}

static int inject(struct vcpu *c, unsigned vector, bool has_error, uint32_t error)
{
	struct kvm_vcpu_events ev;
	if (ioctl(c->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.pending = 0;
	ev.exception.nr = (uint8_t)vector;
	ev.exception.has_error_code = has_error;
	ev.exception.error_code = error;
	ev.flags = 0; /* leave NMI, SIPI, shadow and SMM state alone */
	if (ioctl(c->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	return 0;
}

static const char *op_name(enum pvm_op op)
{
	static const char *const names[] = {"unknown", "int3", "fwait", "ldmxcsr", "stmxcsr",
					    "clac",    "stac", "nop",	"cld"};
	return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

int pvm_handle_internal(struct pvm_cpu *pc, char *why, size_t why_len)
{
	struct kvm_run *run = pc->c->run;
	struct kvm_regs r;
	struct kvm_sregs s;
	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
		snprintf(why, why_len, "KVM internal error (suberror %u)", run->internal.suberror);
		return -1;
	}
	if (ioctl(pc->c->fd, KVM_GET_REGS, &r) < 0 || ioctl(pc->c->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(why, why_len, "emulation failure; cannot read registers: %s",
			 strerror(errno));
		return -1;
	}
	struct pvm_paging pg;
	paging_of(&s, &pg);
	uint8_t code[15];
	size_t n = sizeof(code);
	while (n && pvm_read_virt(pc->mem, &pg, r.rip, code, n))
		n = n > 4096 - (r.rip & 0xfff) ? 4096 - (r.rip & 0xfff) : 0;
	struct pvm_insn in;
	if (!n) {
		snprintf(why, why_len, "emulation failure at %#llx: code not readable",
			 (unsigned long long)r.rip);
		return -1;
	}
	if (pvm_decode(code, n, &in) && pc->retry_rip != r.rip) {
		/* Not one of ours. The bytes may have changed since the emulator read them:
		 * another vCPU live-patching kernel text (text_poke_bp: int3, then the new
		 * instruction) is the usual case. Run it again once. */
		pc->retry_rip = r.rip;
		pc->st.retries++;
		return 0;
	}
	if (pc->retry_rip == r.rip && pvm_decode(code, n, &in)) {
		char hex[48] = "";
		for (size_t k = 0; k < n && k < 15; k++)
			snprintf(hex + 3 * k, sizeof(hex) - 3 * k, "%02x ", code[k]);
		snprintf(why, why_len, "emulation failure at %#llx: instruction %s not handled",
			 (unsigned long long)r.rip, hex);
		return -1;
	}
	pc->retry_rip = 0;
	uint64_t next = r.rip + in.len;
	int rc = 0;
	switch (in.op) {
	case PVM_OP_LDMXCSR:
	case PVM_OP_STMXCSR: {
		uint64_t la = pvm_operand_address(&in.mem, &r, next, s.fs.base, s.gs.base);
		struct kvm_fpu fpu;
		uint32_t v;
		if (ioctl(pc->c->fd, KVM_GET_FPU, &fpu) < 0) {
			snprintf(why, why_len, "%s: KVM_GET_FPU: %s", op_name(in.op),
				 strerror(errno));
			return -1;
		}
		if (in.op == PVM_OP_LDMXCSR) {
			rc = pvm_read_virt(pc->mem, &pg, la, &v, 4);
			if (!rc && (v >> 16)) { /* reserved bits: #GP(0) as the CPU would */
				rc = inject(pc->c, 13, true, 0);
				if (rc)
					break;
				pc->st.emulated[in.op]++;
				return 0; /* RIP stays at the faulting instruction */
			}
			if (!rc) {
				fpu.mxcsr = v;
				if (ioctl(pc->c->fd, KVM_SET_FPU, &fpu) < 0)
					rc = -errno;
			}
		} else {
			v = fpu.mxcsr;
			rc = pvm_write_virt(pc->mem, &pg, la, &v, 4);
		}
		if (rc) {
			snprintf(why, why_len, "%s at %#llx: operand %#llx: %s", op_name(in.op),
				 (unsigned long long)r.rip, (unsigned long long)la, strerror(-rc));
			return -1;
		}
		break;
	}
	case PVM_OP_CLAC:
		r.rflags &= ~RFLAGS_AC;
		break;
	case PVM_OP_STAC:
		r.rflags |= RFLAGS_AC;
		break;
	case PVM_OP_CLD:
		r.rflags &= ~RFLAGS_DF;
		break;
	default: /* int3, fwait, nop */
		break;
	}
	r.rip = next;
	if (ioctl(pc->c->fd, KVM_SET_REGS, &r) < 0) {
		snprintf(why, why_len, "%s: KVM_SET_REGS: %s", op_name(in.op), strerror(errno));
		return -1;
	}
	/* int3 is a trap: #BP is delivered with RIP already past it */
	if (in.op == PVM_OP_INT3 && (rc = inject(pc->c, 3, false, 0))) {
		snprintf(why, why_len, "int3: injecting #BP: %s", strerror(-rc));
		return -1;
	}
	pc->st.emulated[in.op]++;
	return 0;
}

int pvm_handle_debug(struct pvm_cpu *pc, char *why, size_t why_len)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	struct vcpu *c = pc->c;
	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(why, why_len, "debug exit: cannot read registers: %s", strerror(errno));
		return -1;
	}
	if (!pc->bp_addr || r.rip != pc->bp_addr) {
		snprintf(why, why_len, "unexpected debug exit at %#llx (breakpoint %#llx)",
			 (unsigned long long)r.rip, (unsigned long long)pc->bp_addr);
		return -1;
	}
	struct pvm_paging pg;
	paging_of(&s, &pg);
	/* the #PF frame: error code, RIP, CS, RFLAGS, RSP, SS */
	uint64_t f[6];
	uint64_t star = 0, lstar = 0, fmask = 0;
	if (pvm_read_virt(pc->mem, &pg, r.rsp, f, sizeof(f)) == 0 && (f[2] & 3) == 3 &&
	    get_msrs(c, &star, &lstar, &fmask) == 0 && lstar && f[1] == lstar) {
		/* A user-mode SYSCALL that reached LSTAR without entering kernel mode:
		 * enter it as the CPU should have. RCX (the return address) was set by the
		 * failed SYSCALL; RFLAGS of the frame are the user's. */
		uint8_t insn[2];
		if (!pc->warned_rcx && (pvm_read_virt(pc->mem, &pg, r.rcx - 2, insn, 2) ||
					insn[0] != 0x0f || insn[1] != 0x05)) {
			pc->warned_rcx = true;
			nb_log(NB_LOG_WARN,
			       "pvm: vCPU %d: syscall entry with RCX %#llx not after a syscall",
			       c->id, (unsigned long long)r.rcx);
		}
		uint64_t uflags = f[3] | RFLAGS_IF | 2;
		r.r11 = uflags;
		r.rflags = (uflags & ~fmask) | 2;
		r.rip = lstar;
		r.rsp = f[4];
		uint16_t kcs = (uint16_t)((star >> 32) & 0xfffc);
		s.cs = (struct kvm_segment){.base = 0,
					    .limit = 0xffffffff,
					    .selector = kcs,
					    .type = 11,
					    .present = 1,
					    .dpl = 0,
					    .db = 0,
					    .s = 1,
					    .l = 1,
					    .g = 1};
		s.ss = (struct kvm_segment){.base = 0,
					    .limit = 0xffffffff,
					    .selector = (uint16_t)(kcs + 8),
					    .type = 3,
					    .present = 1,
					    .dpl = 0,
					    .db = 1,
					    .s = 1,
					    .l = 0,
					    .g = 1};
		if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0 || ioctl(c->fd, KVM_SET_REGS, &r) < 0) {
			snprintf(why, why_len, "syscall entry fix: %s", strerror(errno));
			return -1;
		}
		pc->st.syscalls++;
		return 0;
	}
	/* Any other page fault: step past the handler's first instruction ourselves
	 * (the emulator ignores RFLAGS.RF, so resuming would hit the breakpoint again). */
	struct pvm_insn in;
	if (!steppable(pc->mem, &pg, r.rip, &in)) {
		snprintf(why, why_len, "#PF handler at %#llx changed under the breakpoint",
			 (unsigned long long)r.rip);
		return -1;
	}
	if (in.op == PVM_OP_CLAC)
		r.rflags &= ~RFLAGS_AC;
	else if (in.op == PVM_OP_STAC)
		r.rflags |= RFLAGS_AC;
	else if (in.op == PVM_OP_CLD)
		r.rflags &= ~RFLAGS_DF;
	r.rip += in.len;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0) {
		snprintf(why, why_len, "stepping past the #PF handler: %s", strerror(errno));
		return -1;
	}
	pc->st.faults++;
	return 0;
}
