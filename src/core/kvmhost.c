/* SPDX-License-Identifier: MIT */
#include "kvmhost.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static bool cap(int fd, long c)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, c) > 0;
}

/* The flavour is read from the kernel's module list and the CPU flags:
 * kvm_pvm loaded means guest kernel mode is emulated even on a VMX/SVM CPU. */
static enum kvmhost_flavour detect_flavour(void)
{
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return KVMHOST_PVM;
	if (access("/sys/module/kvm_intel", F_OK) == 0)
		return KVMHOST_VMX;
	if (access("/sys/module/kvm_amd", F_OK) == 0)
		return KVMHOST_SVM;
	FILE *f = fopen("/proc/cpuinfo", "r");
	enum kvmhost_flavour fl = KVMHOST_UNKNOWN;
	if (!f)
		return fl;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		if (strstr(line, " vmx"))
			fl = KVMHOST_VMX;
		else if (strstr(line, " svm"))
			fl = KVMHOST_SVM;
		break;
	}
	fclose(f);
	return fl;
}

static struct kvm_cpuid2 *get_supported_cpuid(int fd)
{
	for (unsigned n = 256; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

int kvmhost_open(struct kvmhost *h, struct nb_error *err)
{
	memset(h, 0, sizeof(*h));
	h->fd = -1;
	const char *dev = getenv("NUBIS_KVM_DEVICE");
	if (!dev || !*dev)
		dev = "/dev/kvm";
	h->fd = open(dev, O_RDWR | O_CLOEXEC);
	if (h->fd < 0)
		return nb_error_set(
		    err, NB_EKVM,
		    "cannot open %s: %s (is KVM available and are you allowed to use it?)", dev,
		    strerror(errno));
	h->api_version = ioctl(h->fd, KVM_GET_API_VERSION, 0);
	if (h->api_version != KVM_API_VERSION) {
		nb_error_set(err, NB_EKVM, "%s: KVM API version %d, need %d", dev, h->api_version,
			     KVM_API_VERSION);
		goto fail;
	}
	h->run_mmap_size = ioctl(h->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (h->run_mmap_size < (int)sizeof(struct kvm_run)) {
		nb_error_set(err, NB_EKVM, "%s: bad vCPU mmap size %d", dev, h->run_mmap_size);
		goto fail;
	}
	h->max_vcpus = ioctl(h->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (h->max_vcpus <= 0)
		h->max_vcpus = ioctl(h->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (h->max_vcpus <= 0)
		h->max_vcpus = 1;
	h->has_sync_regs = cap(h->fd, KVM_CAP_SYNC_REGS);
	h->has_immediate_exit = cap(h->fd, KVM_CAP_IMMEDIATE_EXIT);
	h->has_irqchip = cap(h->fd, KVM_CAP_IRQCHIP);
	h->has_ioeventfd = cap(h->fd, KVM_CAP_IOEVENTFD);
	h->has_irqfd = cap(h->fd, KVM_CAP_IRQFD);
	h->has_dirty_log_ring = cap(h->fd, KVM_CAP_DIRTY_LOG_RING);
	h->has_user_msr = cap(h->fd, KVM_CAP_X86_USER_SPACE_MSR);
	h->has_guest_debug = cap(h->fd, KVM_CAP_SET_GUEST_DEBUG);
	h->has_xsave = cap(h->fd, KVM_CAP_XSAVE);
	h->has_xcrs = cap(h->fd, KVM_CAP_XCRS);
	h->has_tsc_control = cap(h->fd, KVM_CAP_TSC_CONTROL);
	h->has_nested_state = cap(h->fd, KVM_CAP_NESTED_STATE);
	h->flavour = detect_flavour();
	if (!h->has_sync_regs || !h->has_immediate_exit) {
		nb_error_set(err, NB_EKVM, "%s: KVM lacks %s, which nubis needs", dev,
			     !h->has_sync_regs ? "KVM_CAP_SYNC_REGS" : "KVM_CAP_IMMEDIATE_EXIT");
		goto fail;
	}
	h->cpuid = get_supported_cpuid(h->fd);
	if (!h->cpuid) {
		nb_error_set(err, NB_EKVM, "%s: KVM_GET_SUPPORTED_CPUID failed: %s", dev,
			     strerror(errno));
		goto fail;
	}
	return 0;
fail:
	kvmhost_close(h);
	return -1;
}

void kvmhost_close(struct kvmhost *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	free(h->cpuid);
	h->cpuid = NULL;
}

const char *kvmhost_flavour_name(enum kvmhost_flavour f)
{
	switch (f) {
	case KVMHOST_VMX:
		return "vmx";
	case KVMHOST_SVM:
		return "svm";
	case KVMHOST_PVM:
		return "pvm";
	default:
		return "unknown";
	}
}

void kvmhost_report(const struct kvmhost *h, FILE *out)
{
	fprintf(out, "kvm.flavour: %s\n", kvmhost_flavour_name(h->flavour));
	fprintf(out, "kvm.guest_ring0: %s\n",
		h->flavour == KVMHOST_PVM ? "emulated (instruction by instruction)" : "native");
	fprintf(out, "kvm.api_version: %d\n", h->api_version);
	fprintf(out, "kvm.max_vcpus: %d\n", h->max_vcpus);
	fprintf(out, "kvm.cpuid_entries: %u\n", h->cpuid ? h->cpuid->nent : 0);
	const struct {
		const char *name;
		bool v;
	} caps[] = {
	    {"sync_regs", h->has_sync_regs},
	    {"immediate_exit", h->has_immediate_exit},
	    {"irqchip", h->has_irqchip},
	    {"ioeventfd", h->has_ioeventfd},
	    {"irqfd", h->has_irqfd},
	    {"dirty_log_ring", h->has_dirty_log_ring},
	    {"user_space_msr", h->has_user_msr},
	    {"guest_debug", h->has_guest_debug},
	    {"xsave", h->has_xsave},
	    {"xcrs", h->has_xcrs},
	    {"tsc_control", h->has_tsc_control},
	    {"nested_state", h->has_nested_state},
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		fprintf(out, "kvm.cap.%s: %s\n", caps[i].name, caps[i].v ? "yes" : "no");
}
