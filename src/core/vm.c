/* SPDX-License-Identifier: MIT */
#include "vm.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int vm_create(const struct kvmhost *kvm, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->kvm = kvm;
	do
		vm->fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0) {
		int e = errno;
		free(vm);
		return -e;
	}
	*out = vm;
	return 0;
}

int vm_add_memory(struct vm *vm, gpa_t gpa, void *host, uint64_t size)
{
	struct gmem next = vm->mem;
	int rc = gmem_add(&next, host, gpa, size);
	if (rc)
		return rc;
	struct kvm_userspace_memory_region r = {
	    .slot = vm->mem.n,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	vm->mem = next;
	return 0;
}

int vcpu_create(struct vm *vm, int id, struct vcpu **out)
{
	if (id < 0 || id >= VM_MAX_VCPUS || id >= vm->kvm->max_vcpus || vm->vcpu[id])
		return -EINVAL;
	struct vcpu *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (c->fd < 0) {
		int e = errno;
		free(c);
		return -e;
	}
	c->run = mmap(NULL, (size_t)vm->kvm->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->fd, 0);
	if (c->run == MAP_FAILED) {
		int e = errno;
		close(c->fd);
		free(c);
		return -e;
	}
	vm->vcpu[id] = c;
	if ((unsigned)id >= vm->nvcpus)
		vm->nvcpus = (unsigned)id + 1;
	*out = c;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = vm->vcpu[i];
		if (!c)
			continue;
		munmap(c->run, (size_t)vm->kvm->run_mmap_size);
		close(c->fd);
		free(c);
	}
	close(vm->fd);
	free(vm);
}
