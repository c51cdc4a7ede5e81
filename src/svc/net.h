/* SPDX-License-Identifier: MIT */
/*
 * Networking of service VMs (net.c). The system calls are reached through
 * svc_net_handler() and the per-VM state through svc_net_init()/fini()
 * (svc.h); this header adds what other modules may ask about sockets.
 *
 * Every guest socket is a host socket created by the monitor (O_NONBLOCK,
 * O_CLOEXEC) in the host network namespace; the addresses the guest names
 * in bind/connect/sendto are never handed to the host as such: they go
 * through the VM's policy (netpolicy.h), see docs/SERVICE-VMS.md,
 * "Networking". read/write/poll/epoll on a socket use the generic fd paths
 * of fs: a socket's ->host_fd is an ordinary connected or listening host
 * socket.
 */
#ifndef NUBIS_SVC_NET_H
#define NUBIS_SVC_NET_H

#include <stdbool.h>

#include "svc.h"

/* True if @f is a socket made by net.c (its ->priv is net.c's). */
bool svc_net_is_socket(const struct svc_file *f);

/* Resolve the parent directory of guest path @path for an AF_UNIX socket
 * (implemented by fs; see /work/notes/svc-changes.md). Declared weak: without it, path-named Unix
 * sockets fail with -EOPNOTSUPP. */
int svc_fs_sock_path(struct svc_vm *vm, const char *path, bool create, int *dirfd, char *name,
		     size_t cap) __attribute__((weak));

#endif
