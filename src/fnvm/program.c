/* SPDX-License-Identifier: MIT */
/* Preparing a program: ELF → memfd image, initial stack, channels. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fnvm_int.h"
#include "path.h"

#define MAX_PROGRAM_SIZE (1ull << 30)
#define STACK_BLOB_MAX	 (1ull << 20)

void fnvm_config_defaults(struct fnvm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = 64ull << 20;
	cfg->output_limit = 64ull << 20;
	cfg->allow_write_channels = true;
}

int fnvm_channel_parse(const char *arg, struct fnvm_channel_spec *out, char **storage,
		       struct nb_error *err)
{
	*storage = NULL;
	const char *eq = strchr(arg, '=');
	const char *colon = strrchr(arg, ':');
	if (!eq || !colon || colon < eq)
		return nb_error_set(err, NB_EINVAL,
				    "--channel %s: expected GUEST_PATH=HOST_PATH:r|w|a", arg);
	const char *mode = colon + 1;
	if (!strcmp(mode, "r"))
		out->mode = FNVM_CHAN_READ;
	else if (!strcmp(mode, "w"))
		out->mode = FNVM_CHAN_WRITE;
	else if (!strcmp(mode, "a"))
		out->mode = FNVM_CHAN_APPEND;
	else
		return nb_error_set(err, NB_EINVAL, "--channel %s: mode '%s' is not r, w or a", arg,
				    mode);
	size_t glen = (size_t)(eq - arg), hlen = (size_t)(colon - eq - 1);
	if (glen == 0 || arg[0] != '/')
		return nb_error_set(err, NB_EINVAL, "--channel %s: guest path must be absolute",
				    arg);
	if (hlen == 0)
		return nb_error_set(err, NB_EINVAL, "--channel %s: empty host path", arg);
	char *st = malloc(glen + 1 + FNVM_PATH_MAX + 1 + hlen + 1);
	if (!st)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	char *graw = st, *g = st + glen + 1, *h = g + FNVM_PATH_MAX + 1;
	memcpy(graw, arg, glen);
	graw[glen] = 0;
	if (fnvm_path_norm("/", graw, g, FNVM_PATH_MAX + 1) < 0 || !strcmp(g, "/")) {
		free(st);
		return nb_error_set(err, NB_EINVAL, "--channel %s: bad guest path", arg);
	}
	memcpy(h, eq + 1, hlen);
	h[hlen] = 0;
	out->guest_path = g;
	out->host_path = h;
	*storage = st;
	return 0;
}

static char **dup_strv(char *const *v, size_t *count)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **c = calloc(n + 1, sizeof(*c));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i] = strdup(v[i]);
		if (!c[i]) {
			while (i--)
				free(c[i]);
			free(c);
			return NULL;
		}
	}
	*count = n;
	return c;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Read all of @fd (taken over: closed) into a malloc'd buffer. */
static int read_fd(int fd, uint8_t **out, size_t *len, struct nb_error *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return nb_error_set(err, NB_EFORMAT, "not a regular file");
	}
	if ((uint64_t)st.st_size > MAX_PROGRAM_SIZE) {
		close(fd);
		return nb_error_set(err, NB_EFORMAT,
				    "%lld bytes is larger than the %llu-byte limit",
				    (long long)st.st_size, MAX_PROGRAM_SIZE);
	}
	size_t n = (size_t)st.st_size;
	uint8_t *b = malloc(n ? n : 1);
	if (!b) {
		close(fd);
		return nb_error_set(err, NB_ERESOURCE, "out of memory reading the program");
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(b);
			close(fd);
			return nb_error_set(err, NB_EFORMAT, "short read");
		}
		got += (size_t)r;
	}
	close(fd);
	*out = b;
	*len = n;
	return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len, struct nb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return nb_error_set(err, e == ENOENT || e == ENOTDIR ? NB_ENOENT : NB_EFORMAT, "%s",
				    strerror(e));
	}
	return read_fd(fd, out, len, err);
}

/* Check the channel declarations; no host file is touched. */
static int check_channels(struct fnvm_program *p, const struct fnvm_config *cfg,
			  struct nb_error *err)
{
	p->chans = calloc(cfg->nchannels ? cfg->nchannels : 1, sizeof(*p->chans));
	if (!p->chans)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	static const char *const reserved[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
	for (size_t i = 0; i < cfg->nchannels; i++) {
		const struct fnvm_channel_spec *s = &cfg->channels[i];
		struct fnvm_chan *c = &p->chans[i];
		c->fd = -1;
		p->nchans = i + 1;
		char norm[FNVM_PATH_MAX + 1];
		if (!s->guest_path || fnvm_path_norm("/", s->guest_path, norm, sizeof(norm)) < 0 ||
		    !strcmp(norm, "/"))
			return nb_error_set(err, NB_EINVAL, "channel %zu: bad guest path", i);
		for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++)
			if (!strcmp(norm, reserved[k]))
				return nb_error_set(
				    err, NB_EINVAL,
				    "channel %s: path is reserved for standard streams", norm);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(p->chans[k].guest_path, norm))
				return nb_error_set(err, NB_EINVAL, "channel %s declared twice",
						    norm);
		if (s->mode != FNVM_CHAN_READ && !cfg->allow_write_channels)
			return nb_error_set(err, NB_EINVAL,
					    "channel %s: write channels are not allowed here "
					    "(requests would share the file)",
					    norm);
		if (!s->host_path || !*s->host_path)
			return nb_error_set(err, NB_EINVAL, "channel %s: empty host path", norm);
		c->guest_path = strdup(norm);
		c->host_path = strdup(s->host_path);
		c->mode = s->mode;
		if (!c->guest_path || !c->host_path)
			return nb_error_set(err, NB_ERESOURCE, "out of memory");
	}
	return 0;
}

static int open_one(struct fnvm_chan *c, int *created, struct nb_error *err)
{
	int flags = O_CLOEXEC | O_NOCTTY;
	*created = 0;
	if (c->mode == FNVM_CHAN_READ) {
		/* O_NONBLOCK so that a FIFO does not hold the start waiting for a
		 * writer; reads block again (and honour --timeout) once it is off */
		c->fd = open(c->host_path, flags | O_RDONLY | O_NONBLOCK);
		if (c->fd >= 0 && fcntl(c->fd, F_SETFL, 0) < 0) {
			close(c->fd);
			c->fd = -1;
		}
	} else {
		flags |= O_WRONLY | (c->mode == FNVM_CHAN_APPEND ? O_APPEND : 0);
		c->fd = open(c->host_path, flags | O_CREAT | O_EXCL, 0644);
		if (c->fd >= 0)
			*created = 1;
		else if (errno == EEXIST)
			c->fd = open(c->host_path, flags);
	}
	if (c->fd < 0)
		return nb_error_set(err, NB_EHOSTFILE, "channel %s: cannot open host file %s: %s",
				    c->guest_path, c->host_path, strerror(errno));
	struct stat st;
	if (fstat(c->fd, &st) < 0)
		return nb_error_set(err, NB_EHOSTFILE, "channel %s: fstat %s: %s", c->guest_path,
				    c->host_path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return nb_error_set(err, NB_EHOSTFILE, "channel %s: host path %s is a directory",
				    c->guest_path, c->host_path);
	c->seekable = S_ISREG(st.st_mode) && c->mode != FNVM_CHAN_APPEND;
	c->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	return 0;
}

/* Open the channels' host files, read channels first. Write channels are
 * truncated only once every channel is open, and a failure removes the files
 * it created, so a failed start never destroys or leaves behind a file. */
static int open_channels(struct fnvm_program *p, struct nb_error *err)
{
	uint8_t *created = calloc(p->nchans + 1, 1);
	if (!created)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	int rc = 0;
	for (int pass = 0; pass < 2 && !rc; pass++)
		for (size_t i = 0; i < p->nchans && !rc; i++) {
			struct fnvm_chan *c = &p->chans[i];
			int cr;
			if ((c->mode == FNVM_CHAN_READ) != (pass == 0))
				continue;
			rc = open_one(c, &cr, err);
			created[i] = (uint8_t)cr;
		}
	for (size_t i = 0; i < p->nchans; i++) {
		struct fnvm_chan *c = &p->chans[i];
		if (rc && created[i])
			unlink(c->host_path);
		else if (!rc && c->mode == FNVM_CHAN_WRITE && !created[i] && c->seekable &&
			 ftruncate(c->fd, 0) < 0)
			rc = nb_error_set(err, NB_EHOSTFILE, "channel %s: truncating %s: %s",
					  c->guest_path, c->host_path, strerror(errno));
	}
	free(created);
	return rc;
}

static uint32_t host_hwcap(const struct kvmhost *k)
{
	for (unsigned i = 0; i < k->cpuid->nent; i++)
		if (k->cpuid->entries[i].function == 1)
			return k->cpuid->entries[i].edx;
	return 0;
}

/* pwrite all of @buf at @off; 0, or -1 with errno. */
static int pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		buf += w;
		len -= (uint64_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int build_image(struct fnvm_program *p, const uint8_t *img, const struct elf_info *ei,
		       struct nb_error *err)
{
	uint64_t mem = p->cfg.mem_size, ext = UVM_SYS_END;
	for (unsigned i = 0; i < ei->nsegs; i++) {
		uint64_t e = ei->segs[i].vaddr + p->bias + ei->segs[i].filesz;
		if (e > ext)
			ext = e;
	}
	if (p->cfg.vdso_image && ext < UVM_USER_BASE) /* vdso helper */
		ext = UVM_USER_BASE;
	ext = (ext + FNVM_PAGE - 1) & ~(FNVM_PAGE - 1);
	p->img_extent = ext;
	p->memfd = memfd_create("nubis-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (p->memfd < 0)
		return nb_error_sys(err, errno, "memfd_create");
	if (ftruncate(p->memfd, (off_t)ext) < 0)
		return nb_error_sys(err, errno, "ftruncate image");
	/* written with pwrite rather than through a mapping: no page fault
	 * per page of the memfd (a service VM builds its image at start) */
	uint8_t *sys = malloc(UVM_SYS_END);
	if (!sys)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	int rc = x86_uvm_build(sys, mem);
	if (rc == 0 && p->cfg.vdso_image) { /* vdso helper */
		uint64_t vlen = (p->cfg.vdso_len + FNVM_PAGE - 1) & ~(FNVM_PAGE - 1);
		rc = x86_uvm_map_user(sys, UVM_VVAR, FNVM_PAGE, 0);
		if (rc == 0)
			rc = x86_uvm_map_user(sys, UVM_VDSO, vlen, 1);
		if (rc == 0 &&
		    pwrite_all(p->memfd, p->cfg.vdso_image, p->cfg.vdso_len, UVM_VDSO) < 0)
			rc = -errno;
	}
	if (rc == 0 && pwrite_all(p->memfd, sys, UVM_SYS_END, 0) < 0)
		rc = -errno;
	free(sys);
	for (unsigned i = 0; rc == 0 && i < ei->nsegs; i++) {
		const struct elf_seg *s = &ei->segs[i];
		if (pwrite_all(p->memfd, img + s->offset, s->filesz, s->vaddr + p->bias) < 0)
			rc = -errno;
	}
	if (rc == -EINVAL)
		return nb_error_set(err, NB_EINVAL, "cannot lay out %llu bytes of guest memory",
				    (unsigned long long)mem);
	if (rc)
		return nb_error_sys(err, -rc, "writing the image");
	/* Nobody may change the image once requests map it. */
	if (fcntl(p->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) <
	    0)
		return nb_error_sys(err, errno, "sealing image");
	return 0;
}

static int program_create(const struct kvmhost *kvm, const char *path, int fd,
			  const struct fnvm_config *cfg, unsigned uid, struct fnvm_program **out,
			  struct nb_error *err)
{
	uint8_t *img = NULL;
	size_t len = 0;
	struct elf_info ei;
	struct fnvm_program *p = calloc(1, sizeof(*p));
	if (!p) {
		if (fd >= 0)
			close(fd);
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	}
	p->memfd = -1;
	p->kvm = kvm;
	p->cfg = *cfg;
	p->cfg.channels = NULL;
	p->path = strdup(path);
	if (!p->path)
		goto oom;
	if (fd >= 0) {
		int rfd = fd;
		fd = -1;
		if (read_fd(rfd, &img, &len, err) < 0)
			goto fail;
	}

	uint64_t mem = cfg->mem_size;
	if (mem % UVM_PAGE_2M || mem < 4 * (1ull << 20) || mem > UVM_MAX_MEM) {
		nb_error_set(
		    err, NB_EINVAL,
		    "memory size %llu: must be a multiple of 2 MiB between 4 MiB and %llu GiB",
		    (unsigned long long)mem, UVM_MAX_GIB);
		goto fail;
	}
	if (!cfg->argv || !cfg->argv[0]) {
		nb_error_set(err, NB_EINVAL, "empty argv");
		goto fail;
	}
	if (cfg->vdso_image && (!cfg->vdso_len || cfg->vdso_len > UVM_VDSO_MAX)) {
		nb_error_set(err, NB_EINVAL, "vDSO image of %zu bytes: must be 1 to %llu",
			     cfg->vdso_len, UVM_VDSO_MAX);
		goto fail;
	}
	static char *const empty_env[] = {NULL};
	p->argv_store = dup_strv(cfg->argv, &p->argc);
	p->envp_store = dup_strv(cfg->envp ? cfg->envp : empty_env, &p->envc);
	if (!p->argv_store || !p->envp_store)
		goto oom;
	p->cfg.argv = p->argv_store;
	p->cfg.envp = p->envp_store;
	if (check_channels(p, cfg, err) < 0)
		goto fail;
	p->cfg.nchannels = p->nchans;

	if (!img && read_file(path, &img, &len, err) < 0)
		goto fail;
	if (elf_parse(img, len, &ei, err) < 0)
		goto fail;

	/* Static-pie executables are placed where a non-PIE one would be. */
	p->bias = 0;
	if (ei.pie) {
		uint64_t base = (0x400000ull + ei.max_align - 1) & ~(ei.max_align - 1);
		p->bias = base - ei.lo;
	}
	p->load_lo = ei.lo + p->bias;
	p->load_hi = (ei.hi + p->bias + FNVM_PAGE - 1) & ~(FNVM_PAGE - 1);
	p->entry = ei.entry + p->bias;
	uint64_t stack_res = mem / 8;
	if (stack_res > FNVM_STACK_MAX)
		stack_res = FNVM_STACK_MAX;
	p->stack_lo = mem - stack_res;
	p->mmap_top = p->stack_lo - FNVM_PAGE;
	p->brk_start = p->load_hi;
	if (p->load_lo < UVM_USER_BASE) {
		nb_error_set(err, NB_EFORMAT,
			     "program loads at %#llx, below the lowest usable address %#llx",
			     (unsigned long long)p->load_lo, UVM_USER_BASE);
		goto fail;
	}
	if (p->load_hi + (1ull << 20) > p->mmap_top) {
		nb_error_set(err, NB_EINVAL,
			     "program needs addresses up to %#llx; --memory %llu MiB is too small",
			     (unsigned long long)p->load_hi, (unsigned long long)(mem >> 20));
		goto fail;
	}
	if (build_image(p, img, &ei, err) < 0)
		goto fail;

	/* Initial stack, identical for every request. */
	uint64_t rng[4];
	fnvm_rng_seed(rng, cfg->seed ^ 0x6e75626973415452ull /* "nubisATR" */);
	uint8_t rnd[16];
	uint64_t r0 = fnvm_rng_next(rng), r1 = fnvm_rng_next(rng);
	memcpy(rnd, &r0, 8);
	memcpy(rnd + 8, &r1, 8);
	uint64_t aux[] = {
	    AT_PHDR,   ei.phdr_vaddr ? ei.phdr_vaddr + p->bias : 0,
	    AT_PHENT,  ei.phentsize,
	    AT_PHNUM,  ei.phnum,
	    AT_PAGESZ, FNVM_PAGE,
	    AT_BASE,   0,
	    AT_FLAGS,  0,
	    AT_ENTRY,  p->entry,
	    AT_UID,    uid,
	    AT_EUID,   uid,
	    AT_GID,    uid,
	    AT_EGID,   uid,
	    AT_SECURE, 0,
	    AT_HWCAP,  host_hwcap(kvm),
	    AT_HWCAP2, 0,
	    AT_CLKTCK, 100,
	    0,	       0, /* AT_SYSINFO_EHDR with a vDSO (vdso helper) */
	};
	size_t naux = sizeof(aux) / sizeof(aux[0]) / 2;
	if (cfg->vdso_image) {
		aux[2 * naux - 2] = AT_SYSINFO_EHDR;
		aux[2 * naux - 1] = UVM_VDSO;
	} else {
		naux--;
	}
	uint64_t cap = stack_res / 2 < STACK_BLOB_MAX ? stack_res / 2 : STACK_BLOB_MAX;
	p->stack_blob = malloc(cap);
	if (!p->stack_blob)
		goto oom;
	uint64_t sp = fnvm_stack_build(p->stack_blob, cap, mem, p->argv_store, p->envp_store, aux,
				       naux, rnd, p->argv_store[0]);
	if (!sp) {
		nb_error_set(err, NB_EINVAL, "arguments and environment do not fit in %llu bytes",
			     (unsigned long long)cap);
		goto fail;
	}
	p->stack_sp = sp;
	p->stack_len = mem - sp;
	/* keep only the used tail of the blob */
	memmove(p->stack_blob, p->stack_blob + (cap - p->stack_len), p->stack_len);
	/* last: the only step with effects on the host's files */
	if (open_channels(p, err) < 0)
		goto fail;
	free(img);
	*out = p;
	return 0;
oom:
	nb_error_set(err, NB_ERESOURCE, "out of memory");
fail:
	if (fd >= 0)
		close(fd);
	free(img);
	fnvm_program_destroy(p);
	return -1;
}

int fnvm_program_create(const struct kvmhost *kvm, const char *path, const struct fnvm_config *cfg,
			struct fnvm_program **out, struct nb_error *err)
{
	return program_create(kvm, path, -1, cfg, FNVM_UID, out, err);
}

int fnvm_program_create_fd(const struct kvmhost *kvm, int fd, const char *name,
			   const struct fnvm_config *cfg, unsigned uid, struct fnvm_program **out,
			   struct nb_error *err)
{
	return program_create(kvm, name, fd, cfg, uid, out, err);
}

void fnvm_program_destroy(struct fnvm_program *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nchans; i++) {
		if (p->chans[i].fd >= 0)
			close(p->chans[i].fd);
		free(p->chans[i].guest_path);
		free(p->chans[i].host_path);
	}
	free(p->chans);
	if (p->memfd >= 0)
		close(p->memfd);
	free_strv(p->argv_store);
	free_strv(p->envp_store);
	free(p->stack_blob);
	free(p->path);
	free(p);
}

int fnvm_vm_prepare(struct fnvm_program *p, struct fnvm_vm *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t size = p->cfg.mem_size;
	int rc = vm_create(p->kvm, &out->vm);
	if (rc)
		return rc;
	uint8_t *h = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (h == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	out->host = h;
	out->size = size;
	if (mmap(h, p->img_extent, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, p->memfd, 0) ==
	    MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	rc = vm_add_memory(out->vm, 0, h, size);
	if (rc)
		goto fail;
	rc = vcpu_create(out->vm, 0, &out->cpu);
	if (rc)
		goto fail;
	rc = x86_uvm_vcpu_init(out->cpu);
	if (rc)
		goto fail;
	rc = gmem_write(&out->vm->mem, p->stack_sp, p->stack_blob, p->stack_len);
	if (rc)
		goto fail;
	/* Warm-up: enter the guest once in ring 3 at the monitor's warm-up
	 * routine, which reads each page of the program's image and rings the
	 * doorbell, so the first entry's costs (vCPU load, MMU roots, mappings
	 * of the image pages and of the doorbell) are paid here rather than by
	 * the request. No program code runs; registers are reset below. */
	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rip = UVM_WARMUP;
	regs.rsi = p->load_lo;
	regs.rdi = p->cfg.lazy_warmup && p->load_hi - p->load_lo > FNVM_PAGE
		       ? p->load_lo + FNVM_PAGE
		       : p->load_hi;
	regs.rsp = p->stack_sp;
	regs.rflags = UVM_USER_RFLAGS;
	if (ioctl(out->cpu->fd, KVM_SET_REGS, &regs) < 0 || ioctl(out->cpu->fd, KVM_RUN, 0) < 0) {
		rc = -errno;
		goto fail;
	}
	if (out->cpu->run->exit_reason != KVM_EXIT_MMIO ||
	    !x86_uvm_is_syscall_exit(out->cpu->run->mmio.phys_addr,
				     out->cpu->run->s.regs.regs.rip)) {
		rc = -EIO;
		goto fail;
	}
	struct kvm_sregs sr;
	if (ioctl(out->cpu->fd, KVM_GET_SREGS, &sr) < 0) {
		rc = -errno;
		goto fail;
	}
	out->syscall_cpl = sr.cs.dpl;
	if (out->syscall_cpl != 3) {
		/* VMX/SVM: the warm-up's SYSCALL left the vCPU in ring 0; back to ring 3 */
		sr.cs.selector = UVM_SEL_UCODE;
		sr.cs.dpl = 3;
		sr.ss.selector = UVM_SEL_UDATA;
		sr.ss.dpl = 3;
		if (ioctl(out->cpu->fd, KVM_SET_SREGS, &sr) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = p->entry;
	regs.rsp = p->stack_sp;
	regs.rflags = UVM_USER_RFLAGS;
	if (ioctl(out->cpu->fd, KVM_SET_REGS, &regs) < 0) {
		rc = -errno;
		goto fail;
	}
	return 0;
fail:
	fnvm_vm_release(out);
	return rc;
}

void fnvm_vm_release(struct fnvm_vm *v)
{
	if (v->vm)
		vm_destroy(v->vm);
	if (v->host)
		munmap(v->host, v->size);
	memset(v, 0, sizeof(*v));
}
