/* SPDX-License-Identifier: MIT */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mman.h> /* MAP_HUGE_2MB */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../boot/bootparams.h"
#include "../boot/bzimage.h"
#include "../boot/e820.h"
#include "../boot/payload.h"
#include "../boot/pvh.h"
#include "../boot/vmlinux.h"
#include "../common/log.h"
#include "../core/arch/x86/boot64.h"
#include "../core/bus.h"
#include "../core/kvmhost.h"
#include "../core/vm.h"
#include "../devices/acpi/acpi.h"
#include "../devices/legacy/i8042.h"
#include "../devices/legacy/pm.h"
#include "../devices/legacy/reset.h"
#include "../devices/legacy/serial.h"
#include "api.h"
#include "pvm.h"
#include <jansson.h>

/* Guest-physical placement (all below 1 MiB except the kernel and initrd). */
#define ZERO_PAGE    0x7000ull
#define CMDLINE	     0x20000ull
#define ACPI_BASE    0xe0000ull
#define ACPI_REGION  0x10000ull
#define PVH_INFO     0x6000ull /* hvm_start_info, module list, memory map: below 0x7000 */
#define PVH_INFO_END ZERO_PAGE
#define ECAM_BASE    0xe0000000ull /* PCIe ECAM, bus 0: in the 32-bit hole, above the MMIO window */
#define HUGE_2M	     (2ull << 20)
#define SERIAL_PORT  0x3f8
#define SERIAL_IRQ   4
#define VMM_MAX_CPUS 254

struct machine {
	struct kvmhost kvm;
	struct vm *vm;
	unsigned ncpus;
	struct vcpu *cpu[VMM_MAX_CPUS]; /* cpu[0] boots; the others wait for INIT/SIPI */
	pthread_t thread[VMM_MAX_CPUS]; /* thread[0] is the main thread */
	bool started[VMM_MAX_CPUS];
	pthread_mutex_t lock; /* devices and the console: one vCPU at a time */
	uint64_t deadline_ns;
	struct nb_error *err;
	uint8_t *mem; /* guest RAM: low part, then the part above 4 GiB (2 MiB aligned) */
	uint64_t mem_size;
	uint8_t *map; /* the mapping mem lies in, and its length: what to unmap */
	size_t map_len;
	unsigned boots; /* guest boots so far (restarts + 1) */
	/* the control API runs across restarts: it holds life (read) while it uses the machine,
	 * which is torn down and rebuilt with life held for writing; live says it is up */
	pthread_rwlock_t life;
	bool live;
	atomic_bool kill_req;
	struct bus pio, mmio;
	struct serial *serial;
	struct pm *pm;
	struct i8042 *i8042;
	struct reset *reset;
	int console_fd;
	char out[512];
	size_t out_len;
	atomic_int status; /* -1 while running */
	struct nb_ratelimit unclaimed;
	unsigned long unclaimed_n, unclaimed_logged; /* this boot's accesses nothing claims */
	/* pause: vCPU threads park at their next exit until resumed */
	pthread_mutex_t pause_mu;
	pthread_cond_t pause_cv;
	bool pause_req;
	unsigned parked, running_threads;
	const struct vmm_config *cfg;
	int input_fd, stop_pipe[2];
	pthread_t input_thread;
	bool input_started;
	/* pvm compatibility mode (pvm.h): on when pvm_active */
	bool pvm_active;
	struct pvm_cpu pvm[VMM_MAX_CPUS];
};

static void console_flush(struct machine *m)
{
	size_t off = 0;
	while (m->console_fd >= 0 && off < m->out_len) {
		ssize_t n = write(m->console_fd, m->out + off, m->out_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	m->out_len = 0;
}

static void serial_tx(void *opaque, uint8_t byte)
{
	struct machine *m = opaque;
	m->out[m->out_len++] = (char)byte;
	if (byte == '\n' || m->out_len == sizeof(m->out))
		console_flush(m);
}

static void irq_line(struct machine *m, unsigned irq, int level)
{
	struct kvm_irq_level l = {.irq = irq, .level = (uint32_t)level};
	ioctl(m->vm->fd, KVM_IRQ_LINE, &l);
}

static void serial_irq(void *opaque, int level)
{
	irq_line(opaque, SERIAL_IRQ, level);
}

static void pm_irq(void *opaque, int level)
{
	irq_line(opaque, 9, level);
}

/* End the run with @status unless it has ended already; the vCPUs notice
 * at their next exit (kick_all makes that soon). */
static void machine_stop(struct machine *m, int status)
{
	int running = -1;
	atomic_compare_exchange_strong(&m->status, &running, status);
	/* paused vCPUs must see it too */
	pthread_mutex_lock(&m->pause_mu);
	pthread_cond_broadcast(&m->pause_cv);
	pthread_mutex_unlock(&m->pause_mu);
}

static void pm_sleep(void *opaque, int slp_typ)
{
	(void)slp_typ;
	machine_stop(opaque, VMM_STATUS_POWEROFF);
}

static void guest_reset(void *opaque)
{
	machine_stop(opaque, VMM_STATUS_REBOOT);
}

static int read_file(const char *what, const char *path, uint8_t **out, size_t *len,
		     struct nb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nb_error_set(err, NB_ENOENT, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > (1ull << 30)) {
		close(fd);
		return nb_error_set(err, NB_EFORMAT, "%s %s: not a regular file of 1 byte to 1 GiB",
				    what, path);
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *b = malloc(n);
	while (b && got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!b || got != n) {
		free(b);
		return nb_error_set(err, NB_EFORMAT, "%s %s: short read", what, path);
	}
	*out = b;
	*len = n;
	return 0;
}

static void dump_regs(struct vcpu *c, const char *why)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	fprintf(stderr, "nubis-vmm: %s\n", why);
	fprintf(stderr, "  vcpu %d\n", c->id);
	if (ioctl(c->fd, KVM_GET_REGS, &r) == 0)
		fprintf(stderr,
			"  rip=%016llx rsp=%016llx rflags=%08llx\n"
			"  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
			"  rsi=%016llx rdi=%016llx rbp=%016llx\n",
			(unsigned long long)r.rip, (unsigned long long)r.rsp,
			(unsigned long long)r.rflags, (unsigned long long)r.rax,
			(unsigned long long)r.rbx, (unsigned long long)r.rcx,
			(unsigned long long)r.rdx, (unsigned long long)r.rsi,
			(unsigned long long)r.rdi, (unsigned long long)r.rbp);
	if (ioctl(c->fd, KVM_GET_SREGS, &s) == 0)
		fprintf(stderr, "  cs=%04x cr0=%llx cr2=%llx cr3=%llx cr4=%llx efer=%llx\n",
			s.cs.selector, (unsigned long long)s.cr0, (unsigned long long)s.cr2,
			(unsigned long long)s.cr3, (unsigned long long)s.cr4,
			(unsigned long long)s.efer);
}

static int make_devices(struct machine *m, const struct acpi_config *acfg, struct nb_error *err)
{
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	if (serial_create(serial_tx, serial_irq, m, &m->serial) ||
	    pm_create(acfg->s5_slp_typ, pm_sleep, pm_irq, m, &m->pm) ||
	    i8042_create(guest_reset, m, &m->i8042) || reset_create(guest_reset, m, &m->reset))
		return nb_error_set(err, NB_ERESOURCE, "out of memory creating devices");
	if (bus_register(&m->pio, SERIAL_PORT, SERIAL_PORT_LEN, &serial_bus_ops, m->serial,
			 "serial", err) ||
	    bus_register(&m->pio, acfg->pm1a_evt_port, PM_EVT_LEN, &pm_evt_bus_ops, m->pm,
			 "pm1a-evt", err) ||
	    bus_register(&m->pio, acfg->pm1a_cnt_port, PM_CNT_LEN, &pm_cnt_bus_ops, m->pm,
			 "pm1a-cnt", err) ||
	    bus_register(&m->pio, 0x60, 1, &i8042_data_bus_ops, m->i8042, "i8042-data", err) ||
	    bus_register(&m->pio, 0x64, 1, &i8042_cmd_bus_ops, m->i8042, "i8042-cmd", err) ||
	    bus_register(&m->pio, acfg->reset_port, RESET_PORT_LEN, &reset_bus_ops, m->reset,
			 "reset", err))
		return -1;
	return 0;
}

/* The e820 map of the machine: RAM (e820.h) and the PCIe ECAM window, reserved. */
static int machine_e820(const struct machine *m, const struct acpi_config *acfg,
			struct e820_map *map, struct nb_error *err)
{
	if (e820_build(map, m->mem_size, err) < 0)
		return -1;
	if (acfg->ecam_base &&
	    e820_add(map, acfg->ecam_base, ((uint64_t)acfg->ecam_end_bus + 1) << 20, E820_RESERVED,
		     err) < 0)
		return -1;
	return 0;
}

/* Read the initrd (if any) and place it below @addr_max, clear of [kstart, kstart+ksize). */
static int load_initrd(struct machine *m, const struct vmm_config *cfg, uint64_t addr_max,
		       gpa_t kstart, uint64_t ksize, gpa_t *gpa, size_t *len, struct nb_error *err)
{
	uint8_t *rd = NULL;
	*gpa = 0;
	*len = 0;
	if (!cfg->initrd)
		return 0;
	if (read_file("initrd", cfg->initrd, &rd, len, err) < 0)
		return -1;
	int rc = -1;
	if (bootparams_initrd_place(*len, addr_max, m->mem_size, kstart, ksize, gpa, err) < 0)
		goto out;
	if (gmem_write(&m->vm->mem, *gpa, rd, *len) < 0) {
		nb_error_set(err, NB_EINVAL, "initrd does not fit in guest memory");
		goto out;
	}
	rc = 0;
out:
	free(rd);
	return rc;
}

/* A vmlinux with a PVH note: segments at their physical addresses, the start info
 * (memmap, command line, the initrd as module 0, the RSDP) at PVH_INFO. */
static int load_pvh(struct machine *m, const struct vmm_config *cfg, const uint8_t *img, size_t len,
		    const struct acpi_layout *layout, const struct e820_map *map, uint64_t *entry,
		    struct nb_error *err)
{
	const struct gmem *mem = &m->vm->mem;
	struct vmlinux_info vl;
	struct nb_error perr;
	if (vmlinux_parse(img, len, &vl, &perr) < 0)
		return nb_error_set(err, perr.code, "kernel %s: not a usable vmlinux: %s",
				    cfg->kernel, perr.msg);
	if (!vl.has_pvh)
		return nb_error_set(err, NB_EFORMAT,
				    "kernel %s: an ELF without a PVH entry note "
				    "(XEN_ELFNOTE_PHYS32_ENTRY): boot a bzImage instead",
				    cfg->kernel);
	if (vmlinux_load(&vl, img, len, mem, err) < 0)
		return -1;
	/* the command line: as long as the boot protocol's usual limit */
	if (bootparams_cmdline_place(mem, CMDLINE, cfg->cmdline ? cfg->cmdline : "", 2047, err) < 0)
		return -1;
	gpa_t rd_gpa;
	size_t rdlen;
	if (load_initrd(m, cfg, 0xffffffffull, vl.lo, vl.hi - vl.lo, &rd_gpa, &rdlen, err) < 0)
		return -1;
	struct pvh_cfg pc = {.cmdline = CMDLINE,
			     .rsdp = layout->rsdp,
			     .initrd = rd_gpa,
			     .initrd_size = rdlen,
			     .e820 = map};
	if (PVH_INFO + pvh_size(&pc) > PVH_INFO_END)
		return nb_error_set(err, NB_EINTERNAL, "PVH start info too large (%u e820 entries)",
				    map->n);
	if (pvh_write(mem, PVH_INFO, &pc, err) < 0)
		return -1;
	*entry = vl.pvh_entry;
	return 0;
}

/* A bzImage: protected-mode code at its load address, the zero page at ZERO_PAGE. */
static int load_bzimage(struct machine *m, const struct vmm_config *cfg, const uint8_t *img,
			size_t len, const struct acpi_layout *layout, const struct e820_map *map,
			uint64_t *entry, struct nb_error *err)
{
	const struct gmem *mem = &m->vm->mem;
	struct bzimage_info bz;
	struct nb_error perr;
	if (bzimage_parse(img, len, &bz, &perr) < 0)
		return nb_error_set(err, perr.code, "kernel %s: not a usable bzImage: %s",
				    cfg->kernel, perr.msg);
	/* pvm: a kernel with a payload (Linux; not our tiny guest) gets the compat options */
	bool pvm_linux = m->pvm_active && bz.payload_fmt != BZIMAGE_PAYLOAD_NONE;
	if (pvm_linux) {
		/* pvm: skip the decompressor, load the payload's vmlinux (pvm.h) */
		uint64_t kend;
		if (payload_load(&bz, img, len, mem, entry, &kend, err) < 0)
			return -1;
	} else {
		if (bzimage_load(&bz, img, len, mem, bz.load_addr, err) < 0)
			return -1;
		*entry = bz.load_addr + bz.entry64_offset;
	}
	char *cmdline = pvm_cmdline_join(pvm_linux, cfg->cmdline);
	int crc = cmdline ? bootparams_cmdline_place(mem, CMDLINE, cmdline, bz.cmdline_size, err)
			  : nb_error_set(err, NB_ERESOURCE, "out of memory (command line)");
	free(cmdline);
	if (crc < 0)
		return -1;
	gpa_t rd_gpa;
	size_t rdlen;
	uint64_t ksize = bz.init_size > bz.kernel_size ? bz.init_size : bz.kernel_size;
	if (load_initrd(m, cfg, bz.initrd_addr_max, bz.load_addr, ksize, &rd_gpa, &rdlen, err) < 0)
		return -1;
	struct bootparams bp;
	struct bootparams_cfg bcfg = {.kernel_addr = bz.load_addr,
				      .cmdline = CMDLINE,
				      .initrd = rd_gpa,
				      .initrd_size = rdlen,
				      .acpi_rsdp = layout->rsdp,
				      .e820 = map};
	if (bootparams_fill(&bp, &bz, &bcfg, err) < 0)
		return -1;
	if (gmem_write(mem, ZERO_PAGE, &bp, sizeof(bp)) < 0)
		return nb_error_set(err, NB_EINTERNAL, "zero page outside guest memory");
	return 0;
}

/* Lay the guest out: ACPI, e820, then the kernel (a bzImage, or an ELF vmlinux booted
 * through PVH), its command line and initrd; set up the boot vCPU. */
static int load_guest(struct machine *m, const struct vmm_config *cfg,
		      const struct acpi_config *acfg, struct nb_error *err)
{
	uint8_t *img = NULL;
	size_t len = 0;
	int rc = -1;
	uint64_t entry = 0;
	if (read_file("kernel", cfg->kernel, &img, &len, err) < 0)
		return -1;
	struct acpi_layout layout;
	struct e820_map map;
	if (acpi_build(&m->vm->mem, ACPI_BASE, ACPI_REGION, acfg, &layout, err) < 0 ||
	    machine_e820(m, acfg, &map, err) < 0)
		goto out;
	bool elf = len >= 4 && !memcmp(img,
				       "\x7f"
				       "ELF",
				       4);
	if (elf ? load_pvh(m, cfg, img, len, &layout, &map, &entry, err) < 0
		: load_bzimage(m, cfg, img, len, &layout, &map, &entry, err) < 0)
		goto out;
	int vrc = elf ? x86_pvh_setup(m->cpu[0], (uint32_t)entry, (uint32_t)PVH_INFO)
		      : x86_boot64_setup(m->cpu[0], entry, ZERO_PAGE);
	if (vrc) {
		nb_error_set(err, NB_EKVM, "setting up the vCPU: %s", strerror(-vrc));
		goto out;
	}
	rc = 0;
out:
	free(img);
	return rc;
}

static __thread struct kvm_run *volatile vmm_tls_run;
static void on_alarm(int sig)
{
	(void)sig;
	struct kvm_run *r = vmm_tls_run;
	if (r)
		r->immediate_exit = 1;
}

/* Count an access nothing claims; true if it may be logged (rate limit). Under m->lock. */
static bool unclaimed_log_ok(struct machine *m)
{
	m->unclaimed_n++;
	if (!nb_ratelimit_ok(&m->unclaimed))
		return false;
	m->unclaimed_logged++;
	return true;
}

static void handle_io(struct machine *m, struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		int rc = bus_access(&m->pio, run->io.port, run->io.direction == KVM_EXIT_IO_OUT,
				    data, run->io.size);
		if (rc == -ENOENT && unclaimed_log_ok(m)) {
			nb_log(NB_LOG_WARN, "guest %s unclaimed port %#x (size %u), ignored",
			       run->io.direction == KVM_EXIT_IO_OUT ? "wrote" : "read",
			       run->io.port, run->io.size);
		}
	}
	pthread_mutex_unlock(&m->lock);
}

static void handle_mmio(struct machine *m, struct vcpu *c)
{
	struct kvm_run *run = c->run;
	pthread_mutex_lock(&m->lock);
	int rc = bus_access(&m->mmio, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
			    run->mmio.len);
	if (rc == -ENOENT && unclaimed_log_ok(m)) {
		nb_log(NB_LOG_WARN, "guest %s unmapped address %#llx (size %u), ignored",
		       run->mmio.is_write ? "wrote" : "read",
		       (unsigned long long)run->mmio.phys_addr, run->mmio.len);
	}
	pthread_mutex_unlock(&m->lock);
}

/* Make every vCPU leave KVM_RUN (a halted or waiting one included). */
static void kick_all(struct machine *m)
{
	for (unsigned i = 0; i < m->ncpus; i++) {
		m->cpu[i]->run->immediate_exit = 1;
		if (m->started[i] && !pthread_equal(m->thread[i], pthread_self()))
			pthread_kill(m->thread[i], SIGUSR1);
	}
}

/* An error that ends the run: message (first one wins) and register dump. */
static void vcpu_fail(struct machine *m, struct vcpu *c, int status, const char *fmt,
		      unsigned long long v)
{
	pthread_mutex_lock(&m->lock);
	if (atomic_load(&m->status) < 0) {
		if (m->err)
			nb_error_set(m->err, NB_EKVM, fmt, v);
		dump_regs(c, m->err ? m->err->msg : "vCPU failed");
	}
	pthread_mutex_unlock(&m->lock);
	machine_stop(m, status);
}

/* vcpu_fail with a finished message (pvm handlers) */
static void vcpu_fail_why(struct machine *m, struct vcpu *c, const char *why)
{
	pthread_mutex_lock(&m->lock);
	if (atomic_load(&m->status) < 0) {
		if (m->err)
			nb_error_set(m->err, NB_EKVM, "%s", why);
		dump_regs(c, why);
	}
	pthread_mutex_unlock(&m->lock);
	machine_stop(m, VMM_STATUS_INTERNAL);
}

/* Park while a pause is requested (and the machine runs). */
static void vcpu_park(struct machine *m)
{
	pthread_mutex_lock(&m->pause_mu);
	if (m->pause_req && atomic_load(&m->status) < 0) {
		m->parked++;
		pthread_cond_broadcast(&m->pause_cv);
		while (m->pause_req && atomic_load(&m->status) < 0)
			pthread_cond_wait(&m->pause_cv, &m->pause_mu);
		m->parked--;
	}
	pthread_mutex_unlock(&m->pause_mu);
}

static void vcpu_loop(struct machine *m, struct vcpu *c)
{
	struct kvm_run *run = c->run;
	vmm_tls_run = run;
	while (atomic_load(&m->status) < 0) {
		vcpu_park(m);
		run->immediate_exit = 0;
		if (atomic_load(&m->status) >= 0)
			break;
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				if (m->deadline_ns && nb_now_ns() >= m->deadline_ns)
					machine_stop(m, VMM_STATUS_TIMEOUT);
				continue;
			}
			vcpu_fail(m, c, VMM_STATUS_INTERNAL, "KVM_RUN failed (errno %llu)",
				  (unsigned long long)errno);
			break;
		}
		if (m->pvm_active)
			pvm_check_idt(&m->pvm[c->id], nb_now_ns());
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(m, c);
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(m, c);
			break;
		case KVM_EXIT_HLT:
			break; /* the in-kernel irqchip handles halts; seen only without one */
		case KVM_EXIT_INTR:
			run->immediate_exit = 0;
			if (m->deadline_ns && nb_now_ns() >= m->deadline_ns)
				machine_stop(m, VMM_STATUS_TIMEOUT);
			break;
		case KVM_EXIT_SHUTDOWN:
			vcpu_fail(m, c, VMM_STATUS_CRASH, "guest triple fault (shutdown)%llu", 0);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			if (m->pvm_active) {
				char why[256];
				if (pvm_handle_internal(&m->pvm[c->id], why, sizeof(why)) == 0)
					break;
				vcpu_fail_why(m, c, why);
				break;
			}
			vcpu_fail(m, c, VMM_STATUS_INTERNAL, "KVM internal error (suberror %llu)",
				  run->internal.suberror);
			break;
		case KVM_EXIT_DEBUG: {
			char why[256] = "unexpected debug exit";
			if (m->pvm_active &&
			    pvm_handle_debug(&m->pvm[c->id], why, sizeof(why)) == 0)
				break;
			vcpu_fail_why(m, c, why);
			break;
		}
		case KVM_EXIT_FAIL_ENTRY:
			vcpu_fail(
			    m, c, VMM_STATUS_INTERNAL, "VM entry failed (reason %#llx)",
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			break;
		default:
			vcpu_fail(m, c, VMM_STATUS_INTERNAL, "unexpected VM exit %llu",
				  run->exit_reason);
			break;
		}
	}
	vmm_tls_run = NULL;
	kick_all(m);
}

/* Console input: bytes from input_fd go to the UART's receive FIFO, waiting
 * while it is full. On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends one
 * Ctrl-A. Ends at end of input or when the run ends (stop_pipe). */
static void *input_main(void *arg)
{
	struct machine *m = arg;
	int tty = isatty(m->input_fd), escape = 0;
	struct pollfd pfd[2] = {{.fd = m->input_fd, .events = POLLIN},
				{.fd = m->stop_pipe[0], .events = POLLIN}};
	uint8_t buf[64];
	while (atomic_load(&m->status) < 0) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!pfd[0].revents)
			continue;
		ssize_t n = read(m->input_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest keeps running */
		for (ssize_t i = 0; i < n && atomic_load(&m->status) < 0; i++) {
			uint8_t c = buf[i];
			if (tty && escape) {
				escape = 0;
				if (c == 'x') {
					machine_stop(m, VMM_STATUS_QUIT);
					kick_all(m);
					break;
				}
			} else if (tty && c == 0x01) {
				escape = 1;
				continue;
			}
			for (;;) { /* wait for room in the FIFO */
				pthread_mutex_lock(&m->lock);
				size_t took = serial_receive(m->serial, &c, 1);
				pthread_mutex_unlock(&m->lock);
				if (took || atomic_load(&m->status) >= 0)
					break;
				poll(&pfd[1], 1, 1);
			}
		}
	}
	return NULL;
}

/* The API ops hold m->life for reading: between boots (restart) the machine is rebuilt
 * with it held for writing, and m->live is false. */
static char *api_describe(void *vm)
{
	struct machine *m = vm;
	pthread_rwlock_rdlock(&m->life);
	pthread_mutex_lock(&m->pause_mu);
	const char *state = !m->live && !m->boots	   ? "starting"
			    : !m->live			   ? "restarting"
			    : atomic_load(&m->status) >= 0 ? "stopping"
			    : m->pause_req		   ? "paused"
							   : "running";
	pthread_mutex_unlock(&m->pause_mu);
	json_t *j =
	    json_pack("{s:s, s:i, s:I, s:s, s:s, s:i}", "state", state, "cpus", (int)m->cfg->cpus,
		      "memory", (json_int_t)m->mem_size, "kernel", m->cfg->kernel, "cmdline",
		      m->cfg->cmdline ? m->cfg->cmdline : "", "boots", (int)m->boots);
	pthread_rwlock_unlock(&m->life);
	char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return out;
}

static int api_pause(void *vm)
{
	struct machine *m = vm;
	pthread_rwlock_rdlock(&m->life);
	pthread_mutex_lock(&m->pause_mu);
	int rc = !m->live || atomic_load(&m->status) >= 0 ? -ESRCH : m->pause_req ? -EALREADY : 0;
	if (!rc) {
		m->pause_req = true;
		kick_all(m);
		/* wait (bounded) until every vCPU thread has parked */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 2;
		while (m->parked < m->running_threads && atomic_load(&m->status) < 0 &&
		       pthread_cond_timedwait(&m->pause_cv, &m->pause_mu, &until) == 0)
			kick_all(m);
	}
	pthread_mutex_unlock(&m->pause_mu);
	pthread_rwlock_unlock(&m->life);
	return rc;
}

static int api_resume(void *vm)
{
	struct machine *m = vm;
	pthread_rwlock_rdlock(&m->life);
	pthread_mutex_lock(&m->pause_mu);
	int rc = !m->live || atomic_load(&m->status) >= 0 ? -ESRCH : !m->pause_req ? -EALREADY : 0;
	if (!rc) {
		m->pause_req = false;
		pthread_cond_broadcast(&m->pause_cv);
	}
	pthread_mutex_unlock(&m->pause_mu);
	pthread_rwlock_unlock(&m->life);
	return rc;
}

static int api_shutdown(void *vm)
{
	struct machine *m = vm;
	pthread_rwlock_rdlock(&m->life);
	int rc = !m->live || atomic_load(&m->status) >= 0 ? -ESRCH : 0;
	if (!rc) {
		pthread_mutex_lock(&m->lock);
		pm_power_button(m->pm);
		pthread_mutex_unlock(&m->lock);
	}
	pthread_rwlock_unlock(&m->life);
	return rc;
}

static int api_kill(void *vm)
{
	struct machine *m = vm;
	atomic_store(&m->kill_req, true); /* also stops a restart in progress */
	pthread_rwlock_rdlock(&m->life);
	if (m->live) {
		machine_stop(m, VMM_STATUS_KILLED);
		kick_all(m);
	}
	pthread_rwlock_unlock(&m->life);
	return 0;
}

static const struct vmm_api_ops api_ops = {
    .describe = api_describe,
    .pause = api_pause,
    .resume = api_resume,
    .shutdown = api_shutdown,
    .kill = api_kill,
};

struct ap_arg {
	struct machine *m;
	struct vcpu *c;
};

static void *ap_thread(void *arg)
{
	struct ap_arg *a = arg;
	vcpu_loop(a->m, a->c);
	return NULL;
}

/* Run every vCPU, one thread each (vCPU 0 on this thread), until the guest
 * powers off, resets, crashes or the timeout passes. */
static int run_vcpus(struct machine *m)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	timer_t timer = 0;
	int have_timer = 0;
	if (m->deadline_ns) {
		uint64_t now = nb_now_ns(),
			 timeout_ns = m->deadline_ns > now ? m->deadline_ns - now : 1;
		struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
		struct itimerspec its = {
		    .it_value = {.tv_sec = (time_t)(timeout_ns / 1000000000ull),
				 .tv_nsec = (long)(timeout_ns % 1000000000ull)},
		    .it_interval = {.tv_nsec = 20000000}};
		if (timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0 &&
		    timer_settime(timer, 0, &its, NULL) == 0)
			have_timer = 1;
	}
	static_assert(VMM_MAX_CPUS <= 254, "xAPIC ids");
	struct termios saved;
	int restore_tty = 0;
	m->input_started = false;
	m->stop_pipe[0] = m->stop_pipe[1] = -1;
	if (m->input_fd >= 0 && pipe2(m->stop_pipe, O_CLOEXEC) == 0) {
		if (isatty(m->input_fd) && tcgetattr(m->input_fd, &saved) == 0) {
			struct termios raw = saved;
			cfmakeraw(&raw);
			restore_tty = tcsetattr(m->input_fd, TCSANOW, &raw) == 0;
		}
		m->input_started = pthread_create(&m->input_thread, NULL, input_main, m) == 0;
	}
	struct ap_arg args[VMM_MAX_CPUS];
	m->thread[0] = pthread_self();
	m->started[0] = true;
	m->running_threads = m->ncpus;
	for (unsigned i = 1; i < m->ncpus; i++) {
		args[i] = (struct ap_arg){m, m->cpu[i]};
		if (pthread_create(&m->thread[i], NULL, ap_thread, &args[i])) {
			vcpu_fail(m, m->cpu[i], VMM_STATUS_INTERNAL,
				  "cannot start vCPU thread %llu", i);
			break;
		}
		m->started[i] = true;
	}
	if (atomic_load(&m->status) < 0)
		vcpu_loop(m, m->cpu[0]);
	kick_all(m);
	for (unsigned i = 1; i < m->ncpus; i++)
		if (m->started[i])
			pthread_join(m->thread[i], NULL);
	if (m->input_started) {
		ssize_t w = write(m->stop_pipe[1], "", 1);
		(void)w;
		pthread_join(m->input_thread, NULL);
	}
	if (m->stop_pipe[0] >= 0) {
		close(m->stop_pipe[0]);
		close(m->stop_pipe[1]);
	}
	if (restore_tty)
		tcsetattr(m->input_fd, TCSANOW, &saved);
	if (have_timer)
		timer_delete(timer);
	return atomic_load(&m->status);
}

/* HugePages_Free of the host's default huge page pool, if its pages are 2 MiB (the size
 * MAP_HUGE_2MB asks for), else the 2 MiB pool's free_hugepages from sysfs; -1 if unknown. */
static long free_hugepages_2m(void)
{
	long free_pages = -1, size_kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	if (f) {
		char line[128];
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "HugePages_Free: %ld", &free_pages);
			sscanf(line, "Hugepagesize: %ld kB", &size_kb);
		}
		fclose(f);
	}
	if (size_kb == 2048)
		return free_pages;
	free_pages = -1;
	f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "re");
	if (f) {
		if (fscanf(f, "%ld", &free_pages) != 1)
			free_pages = -1;
		fclose(f);
	}
	return free_pages;
}

/* Map guest RAM (lazily: pages are allocated when first touched) and register it: the part
 * below the 32-bit PCI hole at 0, the rest at 4 GiB, one KVM slot each. The mapping is
 * 2 MiB aligned so that both parts can use huge pages. */
static int ram_map(struct machine *m, const struct vmm_config *cfg, struct nb_error *err)
{
	int rc;
	if (cfg->hugepages == VMM_HUGE_HUGETLB) {
		uint64_t need = m->mem_size / HUGE_2M;
		long have = free_hugepages_2m();
		if (have >= 0 && (uint64_t)have < need)
			return nb_error_set(err, NB_ERESOURCE,
					    "--hugepages: %llu MiB of guest memory needs %llu free "
					    "2 MiB huge pages, the host has %ld (HugePages_Free in "
					    "/proc/meminfo; raise /proc/sys/vm/nr_hugepages)",
					    (unsigned long long)(m->mem_size >> 20),
					    (unsigned long long)need, have);
		/* no MAP_NORESERVE: the pages are reserved now, so a short pool fails here,
		 * not with SIGBUS while the guest runs */
		m->map = mmap(NULL, m->mem_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
		if (m->map == MAP_FAILED) {
			m->map = NULL;
			return nb_error_set(
			    err, NB_ERESOURCE,
			    "--hugepages: cannot map %llu MiB in 2 MiB huge pages: %s "
			    "(HugePages_Free %ld)",
			    (unsigned long long)(m->mem_size >> 20), strerror(errno),
			    free_hugepages_2m());
		}
		m->map_len = m->mem_size;
		m->mem = m->map;
	} else {
		m->map_len = m->mem_size + HUGE_2M;
		m->map = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m->map == MAP_FAILED) {
			m->map = NULL;
			return nb_error_set(err, NB_ERESOURCE, "guest memory (%llu MiB): %s",
					    (unsigned long long)(m->mem_size >> 20),
					    strerror(errno));
		}
		/* keep the 2 MiB-aligned part: unmap the slack before and after it */
		uintptr_t at = ((uintptr_t)m->map + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1);
		size_t head = at - (uintptr_t)m->map, tail = HUGE_2M - head;
		if (head)
			munmap(m->map, head);
		if (tail)
			munmap((uint8_t *)at + m->mem_size, tail);
		m->map = m->mem = (uint8_t *)at;
		m->map_len = m->mem_size;
		if (cfg->hugepages == VMM_HUGE_THP && madvise(m->mem, m->mem_size, MADV_HUGEPAGE))
			return nb_error_set(err, NB_ERESOURCE,
					    "--hugepages=thp: madvise(MADV_HUGEPAGE): %s "
					    "(transparent huge pages disabled on this host?)",
					    strerror(errno));
	}
	uint64_t low = e820_low_size(m->mem_size), high = e820_high_size(m->mem_size);
	if ((rc = vm_add_memory(m->vm, 0, m->mem, low)) ||
	    (high && (rc = vm_add_memory(m->vm, E820_HOLE_END, m->mem + low, high))))
		return nb_error_set(err, NB_EKVM, "setting up guest memory (%llu MiB): %s",
				    (unsigned long long)(m->mem_size >> 20), strerror(-rc));
	return 0;
}

/* Free what one boot built: devices, the VM, guest RAM. */
static void machine_teardown(struct machine *m)
{
	console_flush(m);
	serial_destroy(m->serial);
	pm_destroy(m->pm);
	i8042_destroy(m->i8042);
	reset_destroy(m->reset);
	vm_destroy(m->vm);
	if (m->map)
		munmap(m->map, m->map_len);
	m->serial = NULL;
	m->pm = NULL;
	m->i8042 = NULL;
	m->reset = NULL;
	m->vm = NULL;
	m->map = m->mem = NULL;
	m->ncpus = 0;
	memset(m->cpu, 0, sizeof(m->cpu));
	memset(m->started, 0, sizeof(m->started));
}

/* Build the VM (KVM VM, irqchip, PIT, RAM, vCPUs, devices, guest image) for one boot. */
static int machine_build(struct machine *m, const struct vmm_config *cfg, struct nb_error *err)
{
	struct acpi_config acfg;
	acpi_config_default(&acfg, cfg->cpus);
	acfg.i8042 = true;
	/* the 32-bit hole [3 GiB, 4 GiB): PCI MMIO window [3 GiB, ECAM), ECAM (bus 0), then
	 * the IOAPIC, LAPIC and the VT-x pages near the top; RAM never overlaps it */
	acfg.ecam_base = ECAM_BASE;
	acfg.ecam_end_bus = 0;
	acfg.pci_mmio32_base = (uint32_t)E820_HOLE_START;
	acfg.pci_mmio32_size = (uint32_t)(ECAM_BASE - E820_HOLE_START);
	int rc = vm_create(&m->kvm, &m->vm);
	if (rc)
		return nb_error_set(err, NB_EKVM, "KVM_CREATE_VM: %s", strerror(-rc));
	/* RAM first: a memory slot added after the in-kernel irqchip exists costs ~5 ms on
	 * kvm_pvm (measured: 0.2 ms before it), most of the time to the first serial line */
	if (ram_map(m, cfg, err) < 0)
		return -1;
	/* Intel VT-x needs a TSS and identity-map page for its real-mode emulation;
	 * put them just below the 4 GiB boundary (in the PCI hole, not RAM). */
	if (ioctl(m->vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 && m->kvm.flavour == KVMHOST_VMX)
		return nb_error_set(err, NB_EKVM, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t idmap = 0xfffbc000ull;
	if (ioctl(m->vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 &&
	    m->kvm.flavour == KVMHOST_VMX)
		return nb_error_set(err, NB_EKVM, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(m->vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return nb_error_set(err, NB_EKVM, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	/* the i8254 PIT, in the kernel; the speaker port is a dummy */
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(m->vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		return nb_error_set(err, NB_EKVM, "KVM_CREATE_PIT2: %s", strerror(errno));
	for (unsigned i = 0; i < cfg->cpus; i++) {
		uint32_t refused = 0;
		if ((rc = vcpu_create(m->vm, (int)i, &m->cpu[i])) ||
		    (rc = x86_vcpu_set_cpuid(m->cpu[i], cfg->cpus)) ||
		    (rc = x86_vcpu_init_state(m->cpu[i], &refused)))
			return nb_error_set(err, NB_EKVM, "creating vCPU %u: %s", i, strerror(-rc));
		if (refused && i == 0 && m->boots == 0)
			nb_log(NB_LOG_DEBUG, "KVM refused boot MSR %#x (left at its reset value)",
			       refused);
		m->ncpus = i + 1;
		pvm_cpu_init(&m->pvm[i], m->cpu[i], &m->vm->mem);
	}
	if (make_devices(m, &acfg, err) < 0 || load_guest(m, cfg, &acfg, err) < 0)
		return -1;
	return 0;
}

/* One boot: build, run until the guest powers off, resets, crashes or the time is up,
 * tear down. Returns a VMM_STATUS_*. */
static int machine_boot(struct machine *m, const struct vmm_config *cfg, struct nb_error *err)
{
	pthread_rwlock_wrlock(&m->life);
	atomic_store(&m->status, -1);
	m->pause_req = false;
	m->parked = 0;
	int status = VMM_STATUS_USAGE;
	bool built = machine_build(m, cfg, err) == 0;
	if (built) {
		m->live = true;
		m->boots++;
		if (atomic_load(&m->kill_req))
			machine_stop(m, VMM_STATUS_KILLED);
	}
	pthread_rwlock_unlock(&m->life);
	if (built) {
		status = run_vcpus(m);
		if (m->pvm_active)
			pvm_report(m->pvm, m->ncpus);
	}
	pthread_rwlock_wrlock(&m->life);
	m->live = false;
	if (m->unclaimed_n > m->unclaimed_logged)
		nb_log(NB_LOG_WARN,
		       "guest accessed unclaimed ports or unmapped addresses %lu times (%lu "
		       "not shown: rate limit)",
		       m->unclaimed_n, m->unclaimed_n - m->unclaimed_logged);
	m->unclaimed_n = m->unclaimed_logged = 0;
	machine_teardown(m);
	pthread_rwlock_unlock(&m->life);
	return status;
}

int vmm_run(const struct vmm_config *cfg, struct nb_error *err)
{
	struct machine m;
	memset(&m, 0, sizeof(m));
	m.kvm.fd = -1;
	atomic_init(&m.status, -1);
	atomic_init(&m.kill_req, false);
	pthread_mutex_init(&m.lock, NULL);
	pthread_rwlock_init(&m.life, NULL);
	m.err = err;
	m.console_fd = cfg->console_fd;
	m.input_fd = cfg->input_fd;
	m.cfg = cfg;
	pthread_mutex_init(&m.pause_mu, NULL);
	pthread_cond_init(&m.pause_cv, NULL);
	struct vmm_api *api = NULL;
	m.stop_pipe[0] = m.stop_pipe[1] = -1;
	m.mem_size = cfg->mem_size;
	m.unclaimed = (struct nb_ratelimit)NB_RATELIMIT_INIT(10, 1000000000ull);
	int status = VMM_STATUS_USAGE;

	if (cfg->cpus < 1 || cfg->cpus > VMM_MAX_CPUS) {
		nb_error_set(err, NB_EINVAL, "--cpus %u: need 1..%d", cfg->cpus, VMM_MAX_CPUS);
		goto out;
	}
	if (cfg->mem_size < VMM_MIN_MEM || cfg->mem_size > VMM_MAX_MEM || cfg->mem_size % 4096) {
		nb_error_set(err, NB_EINVAL,
			     "--memory %llu: need 16 MiB to %llu GiB, a multiple of 4 KiB",
			     (unsigned long long)cfg->mem_size, VMM_MAX_MEM >> 30);
		goto out;
	}
	if (cfg->hugepages == VMM_HUGE_HUGETLB && cfg->mem_size % HUGE_2M) {
		nb_error_set(err, NB_EINVAL, "--memory %llu: --hugepages needs a multiple of 2 MiB",
			     (unsigned long long)cfg->mem_size);
		goto out;
	}
	if (kvmhost_open(&m.kvm, err) < 0)
		goto out;
	if (cfg->cpus > (unsigned)m.kvm.max_vcpus) {
		nb_error_set(err, NB_EINVAL, "--cpus %u: KVM allows at most %d", cfg->cpus,
			     m.kvm.max_vcpus);
		goto out;
	}
	m.pvm_active = pvm_mode_active((enum pvm_mode)cfg->pvm_compat, m.kvm.flavour);
	if (cfg->timeout_ns)
		m.deadline_ns = nb_now_ns() + cfg->timeout_ns;
	if (cfg->api_sock && vmm_api_start(cfg->api_sock, &api_ops, &m, &api, err) < 0)
		goto out;
	for (;;) {
		status = machine_boot(&m, cfg, err);
		if (status != VMM_STATUS_REBOOT || cfg->on_reset != VMM_RESET_RESTART)
			break;
		/* --timeout covers all the boots: a guest that resets faster than the
		 * timer's signal reaches a vCPU in KVM_RUN must still end here. */
		if (m.deadline_ns && nb_now_ns() >= m.deadline_ns) {
			status = VMM_STATUS_TIMEOUT;
			break;
		}
		if (m.boots > cfg->max_restarts) {
			nb_log(NB_LOG_WARN,
			       "guest reset after %u restarts (--max-restarts): exiting",
			       m.boots - 1);
			break;
		}
		nb_log(NB_LOG_INFO, "guest reset: restarting it (restart %u of at most %u)",
		       m.boots, cfg->max_restarts);
	}
out:
	vmm_api_stop(api);
	machine_teardown(&m);
	if (m.kvm.fd >= 0)
		kvmhost_close(&m.kvm);
	pthread_cond_destroy(&m.pause_cv);
	pthread_mutex_destroy(&m.pause_mu);
	pthread_rwlock_destroy(&m.life);
	pthread_mutex_destroy(&m.lock);
	return status;
}
