/* SPDX-License-Identifier: MIT */
/*
 * Service VMs: a long-running static x86-64 Linux program in its own KVM VM,
 * with the monitor serving a root filesystem (a union of image layers and a
 * writable layer), sockets, threads and signals.
 *
 * This header is the contract between the parts of src/svc/:
 *
 *   svm.c, thread.c     (core)  the VM, one vCPU + host thread per guest
 *                               thread, the run loop, stop/pause/resume
 *   sys.c               (core)  dispatcher; process, memory, time, random
 *   signal.c, futex.c   (core)  signal delivery to guest handlers, futexes
 *   fdtab.c             (fs)    the per-VM file-descriptor table
 *   vfs.c, fs.c, io.c   (fs)    union root filesystem and its system calls;
 *                               pipes, poll/select/epoll, eventfd, timerfd
 *   net.c               (net)   sockets, --publish, --allow-connect
 *
 * Every guest file descriptor refers to a struct svc_file that wraps one
 * host file descriptor (opened O_NONBLOCK and O_CLOEXEC by the monitor; the
 * guest-visible O_NONBLOCK is kept in ->status_flags). Blocking is done by
 * the monitor with svc_wait_fds(), so a thread blocked in the guest's view
 * can always be interrupted by a signal, by stop, or by kill.
 *
 * Ownership: struct svc_vm owns its threads, fd table, filesystem and
 * network state. Nothing here is global; several service VMs may live in
 * one process (tests do that).
 *
 * All per-VM state is plain data reachable from struct svc_vm, so that a
 * later snapshot/migration issue can serialize it.
 */
#ifndef NUBIS_SVC_H
#define NUBIS_SVC_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "../common/error.h"
#include "../core/kvmhost.h"

#define SVC_MAX_THREADS_DEFAULT 64
#define SVC_MAX_FDS_DEFAULT	1024
#define SVC_NSIG		64

/* ---- configuration ---------------------------------------------------- */

struct svc_volume {
	const char *host_dir;  /* absolute host directory */
	const char *guest_dir; /* absolute guest path, normalized */
	bool readonly;
};

struct svc_publish {
	struct sockaddr_storage host; /* address and port the host listens on */
	socklen_t host_len;
	uint16_t guest_port; /* the guest's listening port */
	int proto;	     /* IPPROTO_TCP or IPPROTO_UDP */
};

struct svc_allow {
	struct sockaddr_storage addr; /* a host service the guest may connect to */
	socklen_t len;
	int proto; /* IPPROTO_TCP, IPPROTO_UDP, or 0 for both */
};

struct svc_config {
	/* Root filesystem: read-only lower layers, top first (host directories),
	 * and the writable upper layer (a host directory, created if missing,
	 * kept across stop/start of the same VM). */
	const char *const *lower_dirs;
	size_t nlower;
	const char *upper_dir;
	uint64_t disk_quota; /* bytes the upper layer may hold; 0 = none */
	const struct svc_volume *volumes;
	size_t nvolumes;

	const struct svc_publish *publish;
	size_t npublish;
	const struct svc_allow *allow;
	size_t nallow;

	uint64_t mem_size;    /* guest memory, bytes */
	unsigned cpus;	      /* vCPUs that may run guest code at once (QoS) */
	unsigned max_threads; /* guest threads (each one vCPU) */
	unsigned max_fds;

	char *const *argv; /* argv[0]: path of the program inside the rootfs */
	char *const *envp;
	const char *workdir; /* absolute guest path, default "/" */

	/* System calls: 0 auto, 1 always a VM exit, 2 exitless fast path for
	 * non-blocking calls (SVC_SYSCALL_* in exitless.h; NUBIS_SVC_EXITLESS=0/1
	 * overrides). (Added by exitless, 15:50 UTC.) */
	int syscall_mode;

	/* Host fds for the guest's fds 0, 1, 2 (dup'ed; the caller keeps its own). */
	int stdio[3];

	/* vDSO (vdso helper): enum svc_vdso_mode of vdso.h; 0 = on */
	int vdso_mode;
};

void svc_config_defaults(struct svc_config *cfg);

/* ---- life cycle (core) ------------------------------------------------ */

struct svc_vm;
struct svc_thread;

/* Build a VM from @cfg (deep-copied): root filesystem, network, fd table,
 * program loaded from argv[0] inside the rootfs. Nothing runs yet. */
int svc_create(const struct kvmhost *kvm, const struct svc_config *cfg, struct svc_vm **out,
	       struct nb_error *err);
/* Start the main thread. Returns 0 or -1 with @err. */
int svc_start(struct svc_vm *vm, struct nb_error *err);
/* Block until every guest thread has ended; returns the shell-style status
 * (exit code, or 128 + signal). */
int svc_wait(struct svc_vm *vm);
/* Deliver @sig to the process (thread-directed delivery is internal). Safe
 * from any host thread. */
void svc_kill(struct svc_vm *vm, int sig);
/* Stop every vCPU between instructions / resume them. Blocked host calls stay
 * blocked and complete after resume. Safe from any host thread. */
void svc_pause(struct svc_vm *vm);
void svc_resume(struct svc_vm *vm);
/* System calls the guest made with number @nr so far (numbers >= 511 share
 * slot 511), or with @nr -1 all of them; safe from any thread. Print the
 * non-zero counts, by number with names and "unsupported" marks, to @f.
 * (Added by core, 15:20 UTC.) */
uint64_t svc_syscall_count(struct svc_vm *vm, int nr);
void svc_syscall_report(struct svc_vm *vm, FILE *f);
/* Free everything; the VM must have ended (or never started). NULL is a no-op. */
void svc_destroy(struct svc_vm *vm);

/* ---- what system-call handlers get (core) ---------------------------- */

/* A handler returns the value for RAX: >= 0 or -errno. @a holds the six
 * argument registers. It may block only through svc_wait_fds()/svc_sleep(). */
typedef long (*svc_sys_fn)(struct svc_thread *t, const uint64_t a[6]);

struct svc_vm *svc_thread_vm(struct svc_thread *t);
int svc_thread_tid(struct svc_thread *t);

/* Guest-virtual memory of the VM (identity-mapped; one checked translation).
 * All return -EFAULT for any byte outside guest memory. */
int svc_copy_in(struct svc_thread *t, void *dst, uint64_t gva, uint64_t len);
int svc_copy_out(struct svc_thread *t, uint64_t gva, const void *src, uint64_t len);
/* Direct pointer for zero-copy I/O (read/write/send/recv); NULL if bad. */
void *svc_uptr(struct svc_thread *t, uint64_t gva, uint64_t len);
/* NUL-terminated guest string into @buf of @cap bytes: 0, -EFAULT, -ENAMETOOLONG. */
int svc_copy_str(struct svc_thread *t, uint64_t gva, char *buf, size_t cap);

/* Wait for any of @fds (host fds) like ppoll(), at most @timeout_ns (-1 =
 * forever). Returns the number ready (>= 0, 0 on timeout) or -EINTR when a
 * guest signal became deliverable to @t, or the VM is stopping. Handlers
 * return -EINTR (or -ERESTARTSYS semantics: see docs/GUEST-ABI.md) then. */
int svc_wait_fds(struct svc_thread *t, struct pollfd *fds, unsigned n, int64_t timeout_ns);
/* Sleep @ns (interruptible like svc_wait_fds); 0, or -EINTR with *@left set. */
int svc_sleep(struct svc_thread *t, uint64_t ns, uint64_t *left);
/* Raise @sig for thread @t (e.g. SIGPIPE from a write to a closed pipe). */
void svc_signal_thread(struct svc_thread *t, int sig);
/* For ppoll/pselect6/epoll_pwait with a sigmask: make *@set (a 64-bit guest
 * sigset) @t's signal mask for the rest of the call; the old mask comes back
 * when the call returns (after a signal it interrupted was delivered, as
 * Linux does). Call before svc_wait_fds(). (Added by core, 15:20 UTC.) */
void svc_sigmask_swap(struct svc_thread *t, uint64_t set);

/* ---- file descriptors (fs: fdtab.c) ----------------------------------- */

enum svc_file_kind {
	SVC_F_FILE,    /* regular file or device node from the rootfs/volumes */
	SVC_F_DIR,     /* directory (getdents64, fchdir, *at base) */
	SVC_F_STDIO,   /* a host fd given at start (terminal, pipe, log file) */
	SVC_F_PIPE,    /* pipe2 end */
	SVC_F_SOCKET,  /* net.c */
	SVC_F_EPOLL,   /* host epoll instance; members translated on epoll_ctl */
	SVC_F_EVENTFD, /* host eventfd */
	SVC_F_TIMERFD, /* host timerfd */
};

struct svc_file {
	enum svc_file_kind kind;
	int host_fd;	  /* owned; O_NONBLOCK|O_CLOEXEC on the host side */
	int accmode;	  /* O_RDONLY / O_WRONLY / O_RDWR as the guest opened it */
	int status_flags; /* guest-visible O_APPEND | O_NONBLOCK | ... */
	char *path;	  /* guest path for SVC_F_FILE/DIR (readlink /proc/self/fd), or NULL */
	void *priv;	  /* owned by the module of ->kind, freed by ->release */
	void (*release)(struct svc_file *f); /* frees priv; NULL if none */
	unsigned refs;			     /* atomic */
};

struct svc_fdtab;
/* New file wrapping @host_fd (taken over). Returns NULL on ENOMEM (and closes it). */
struct svc_file *svc_file_new(enum svc_file_kind kind, int host_fd, int accmode, int status_flags);
void svc_file_get(struct svc_file *f);
void svc_file_put(struct svc_file *f); /* closes host_fd and frees on last reference */

/* Install @f (reference taken over) at the lowest free fd >= @min. Returns the
 * fd, or -EMFILE (and drops the reference). */
int svc_fd_install(struct svc_vm *vm, struct svc_file *f, int min, bool cloexec);
/* The file at @fd with a new reference, or NULL (EBADF). */
struct svc_file *svc_fd_get(struct svc_vm *vm, long fd);

/* ---- modules' system calls --------------------------------------------- */

/* Handler for system call @nr of each module, or NULL if it does not serve
 * it. The core dispatcher asks core, then fs, then net. */
svc_sys_fn svc_fs_handler(unsigned nr);
svc_sys_fn svc_net_handler(unsigned nr);

/* Per-VM module state, created by svc_create() in this order and destroyed in
 * reverse. The loader opens the program with svc_fs_open_exec(). */
int svc_fs_init(struct svc_vm *vm, const struct svc_config *cfg, struct nb_error *err);
void svc_fs_fini(struct svc_vm *vm);
/* Open @path (resolved in the VM's root, following symlinks) for execution:
 * a host fd (O_RDONLY|O_CLOEXEC) or -errno. */
int svc_fs_open_exec(struct svc_vm *vm, const char *path);
/* Resolve guest path @path (relative to the VM's cwd) inside the VM's root
 * for an AF_UNIX socket: *@dirfd = host directory fd (O_PATH; the caller
 * closes) of the layer where the last component lives (@create: the
 * writable layer, parents copied up; the name must not exist) and @name =
 * the last component (NUL-terminated, at most @cap bytes). Returns 0 or
 * -errno (ENOENT, ENOTDIR, EROFS, EADDRINUSE, ECONNREFUSED, ENAMETOOLONG). */
int svc_fs_sock_path(struct svc_vm *vm, const char *path, bool create, int *dirfd, char *name,
		     size_t cap);
int svc_net_init(struct svc_vm *vm, const struct svc_config *cfg, struct nb_error *err);
void svc_net_fini(struct svc_vm *vm);

/* Module state slots in struct svc_vm (opaque to core). */
struct svc_fs;
struct svc_net;
struct svc_fs *svc_vm_fs(struct svc_vm *vm);
void svc_vm_set_fs(struct svc_vm *vm, struct svc_fs *fs);
struct svc_net *svc_vm_net(struct svc_vm *vm);
void svc_vm_set_net(struct svc_vm *vm, struct svc_net *net);
struct svc_fdtab *svc_vm_fdtab(struct svc_vm *vm);
void svc_vm_set_fdtab(struct svc_vm *vm, struct svc_fdtab *fds); /* by svc_fs_init */
const struct svc_config *svc_vm_config(struct svc_vm *vm);

#endif
