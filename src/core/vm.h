/* SPDX-License-Identifier: MIT */
/*
 * A KVM virtual machine and its vCPUs.
 *
 * struct vm owns the VM fd and its vCPUs; guest memory is mapped by the
 * caller (who owns the mapping) and registered with vm_add_memory(), one KVM
 * memory slot per region.
 * vm_destroy(NULL) is a no-op. Nothing here is global: any number of VMs may
 * live in one process.
 */
#ifndef NUBIS_CORE_VM_H
#define NUBIS_CORE_VM_H

#include <linux/kvm.h>
#include <stdint.h>

#include "gmem.h"
#include "kvmhost.h"

#define VM_MAX_VCPUS 64

struct vcpu {
	struct vm *vm;
	int fd;
	int id;
	struct kvm_run *run; /* shared page, mmap of fd */
};

struct vm {
	const struct kvmhost *kvm;
	int fd;
	struct gmem mem; /* region i is KVM memory slot i */
	unsigned nvcpus;
	struct vcpu *vcpu[VM_MAX_VCPUS];
};

/* Create an empty VM. Returns 0 or -errno. */
int vm_create(const struct kvmhost *kvm, struct vm **out);
/* Register host memory [host, host+size) at guest-physical @gpa as the next memory slot
 * (and region of vm->mem). The mapping stays owned by the caller and must outlive the VM's
 * use of it. Returns 0, -EINVAL (empty, wrapping or overlapping), -ENOSPC (GMEM_MAX_REGIONS
 * slots used) or the ioctl's -errno. */
int vm_add_memory(struct vm *vm, gpa_t gpa, void *host, uint64_t size);
/* Create vCPU @id and map its kvm_run page. Returns 0 or -errno. */
int vcpu_create(struct vm *vm, int id, struct vcpu **out);
/* Close every vCPU and the VM. Does not unmap guest memory. */
void vm_destroy(struct vm *vm);

#endif
