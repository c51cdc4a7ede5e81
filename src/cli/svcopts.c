/* SPDX-License-Identifier: MIT */
#include "svcopts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parse.h"
#include "../svc/vdso.h"

void svc_opts_init(struct svc_opts *o)
{
	memset(o, 0, sizeof(*o));
	svc_config_defaults(&o->cfg);
}

void svc_opts_free(struct svc_opts *o)
{
	for (size_t i = 0; i < o->cfg.nvolumes; i++)
		free(o->vol_store[i]);
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
	char b[8];
	uint64_t v;
	if (n == 0 || n >= sizeof(b))
		return -EINVAL;
	memcpy(b, s, n);
	b[n] = 0;
	if (nb_parse_u64(b, &v) || v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* "ADDR:PORT" or "[V6]:PORT" of @n bytes into @ss. */
static int parse_addr_port(const char *s, size_t n, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *port;
	size_t hl;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close + 1 >= s + n || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		port = close + 2;
	} else {
		const char *colon = NULL;
		for (const char *p = s; p < s + n; p++)
			if (*p == ':')
				colon = p;
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host) || memchr(s, ':', hl))
			return -EINVAL;
		memcpy(host, s, hl);
		port = colon + 1;
	}
	host[hl] = 0;
	uint16_t p;
	if (parse_port(port, (size_t)(s + n - port), &p))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (s[0] != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(p);
		*len = sizeof(*a4);
		return 0;
	}
	if (s[0] == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(p);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

/* Split a trailing "/tcp" or "/udp": protocol or 0, and the length before it. */
static int split_proto(const char *s, size_t *n, int *proto)
{
	const char *slash = strrchr(s, '/');
	*n = strlen(s);
	*proto = 0;
	if (!slash)
		return 0;
	if (!strcmp(slash, "/tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(slash, "/udp"))
		*proto = IPPROTO_UDP;
	else
		return -EINVAL;
	*n = (size_t)(slash - s);
	return 0;
}

int svc_parse_publish(const char *s, struct svc_publish *out)
{
	size_t n;
	int proto;
	if (split_proto(s, &n, &proto))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->proto = proto ? proto : IPPROTO_TCP;
	/* the guest port is after the last colon */
	const char *last = NULL;
	for (const char *p = s; p < s + n; p++)
		if (*p == ':')
			last = p;
	if (!last || parse_port(last + 1, (size_t)(s + n - last - 1), &out->guest_port))
		return -EINVAL;
	size_t hn = (size_t)(last - s);
	if (!memchr(s, ':', hn) && !memchr(s, '[', hn)) {
		/* HOST_PORT:GUEST_PORT: loopback only */
		char b[32];
		int k = snprintf(b, sizeof(b), "127.0.0.1:%.*s", (int)hn, s);
		if (k < 0 || (size_t)k >= sizeof(b))
			return -EINVAL;
		return parse_addr_port(b, (size_t)k, &out->host, &out->host_len);
	}
	return parse_addr_port(s, hn, &out->host, &out->host_len);
}

int svc_parse_allow(const char *s, struct svc_allow *out)
{
	size_t n;
	memset(out, 0, sizeof(*out));
	if (split_proto(s, &n, &out->proto))
		return -EINVAL;
	return parse_addr_port(s, n, &out->addr, &out->len);
}

int svc_parse_volume(const char *s, struct svc_volume *out, char **store)
{
	*store = strdup(s);
	if (!*store)
		return -ENOMEM;
	char *h = *store, *g = strchr(h, ':');
	if (!g)
		goto bad;
	*g++ = 0;
	char *mode = strchr(g, ':');
	out->readonly = false;
	if (mode) {
		*mode++ = 0;
		if (!strcmp(mode, "ro"))
			out->readonly = true;
		else if (strcmp(mode, "rw"))
			goto bad;
	}
	if (h[0] != '/' || g[0] != '/' || strstr(g, "/../") || !strcmp(g, "/") ||
	    (strlen(g) >= 3 && !strcmp(g + strlen(g) - 3, "/..")))
		goto bad;
	out->host_dir = h;
	out->guest_dir = g;
	return 0;
bad:
	free(*store);
	*store = NULL;
	return -EINVAL;
}

int svc_opts_handle(struct svc_opts *o, int c, const char *arg)
{
	uint64_t v;
	struct svc_config *cfg = &o->cfg;
	switch (c) {
	case SVCOPT_ROOTFS:
		if (cfg->nlower == SVCOPTS_MAX) {
			fprintf(stderr, "nubis: too many --rootfs options\n");
			return -1;
		}
		o->lower[cfg->nlower++] = arg;
		cfg->lower_dirs = o->lower;
		break;
	case SVCOPT_UPPER:
		cfg->upper_dir = arg;
		break;
	case SVCOPT_MEMORY:
		if (nb_parse_size(arg, &v) || v % (2u << 20) || v < (8u << 20) ||
		    v > (64ull << 30)) {
			fprintf(stderr,
				"nubis: --memory %s: need a size from 8M to 64G in steps of 2M\n",
				arg);
			return -1;
		}
		cfg->mem_size = v;
		break;
	case SVCOPT_CPUS:
		if (nb_parse_u64(arg, &v) || v == 0 || v > 64) {
			fprintf(stderr, "nubis: --cpus %s: need a number from 1 to 64\n", arg);
			return -1;
		}
		cfg->cpus = (unsigned)v;
		break;
	case SVCOPT_MAX_THREADS:
		if (nb_parse_u64(arg, &v) || v == 0 || v > 64) {
			fprintf(stderr, "nubis: --max-threads %s: need a number from 1 to 64\n",
				arg);
			return -1;
		}
		cfg->max_threads = (unsigned)v;
		break;
	case SVCOPT_MAX_FDS:
		if (nb_parse_u64(arg, &v) || v < 16 || v > 65536) {
			fprintf(stderr, "nubis: --max-fds %s: need a number from 16 to 65536\n",
				arg);
			return -1;
		}
		cfg->max_fds = (unsigned)v;
		break;
	case SVCOPT_SYSCALL_MODE: /* exitless */
		if (!strcmp(arg, "auto"))
			cfg->syscall_mode = 0;
		else if (!strcmp(arg, "exit"))
			cfg->syscall_mode = 1;
		else if (!strcmp(arg, "poll"))
			cfg->syscall_mode = 2;
		else {
			fprintf(stderr, "nubis: --syscall-mode %s: need exit, poll or auto\n", arg);
			return -1;
		}
		break;
	case SVCOPT_DISK_QUOTA:
		if (nb_parse_size(arg, &v)) {
			fprintf(stderr, "nubis: --disk-quota %s: need a size like 1G\n", arg);
			return -1;
		}
		cfg->disk_quota = v;
		break;
	case SVCOPT_VDSO: /* vdso helper */
		if (!strcmp(arg, "on"))
			cfg->vdso_mode = SVC_VDSO_ON;
		else if (!strcmp(arg, "off"))
			cfg->vdso_mode = SVC_VDSO_OFF;
		else if (!strcmp(arg, "syscall"))
			cfg->vdso_mode = SVC_VDSO_SYSCALL;
		else {
			fprintf(stderr, "nubis: --vdso %s: need on, off or syscall\n", arg);
			return -1;
		}
		break;
	case SVCOPT_WORKDIR:
		if (arg[0] != '/') {
			fprintf(stderr, "nubis: --workdir %s: need an absolute guest path\n", arg);
			return -1;
		}
		cfg->workdir = arg;
		break;
	case SVCOPT_ENV:
		if (!strchr(arg, '=') || arg[0] == '=') {
			fprintf(stderr, "nubis: --env %s: expected K=V\n", arg);
			return -1;
		}
		if (o->nenv + 2 >= sizeof(o->env) / sizeof(o->env[0])) {
			fprintf(stderr, "nubis: too many --env options\n");
			return -1;
		}
		o->env[o->nenv++] = (char *)(uintptr_t)arg;
		break;
	case SVCOPT_VOLUME: {
		size_t n = cfg->nvolumes;
		if (n == SVCOPTS_MAX || svc_parse_volume(arg, &o->vols[n], &o->vol_store[n]) < 0) {
			fprintf(stderr,
				"nubis: --volume %s: expected HOST_DIR:GUEST_DIR[:ro], both "
				"absolute\n",
				arg);
			return -1;
		}
		cfg->nvolumes = n + 1;
		cfg->volumes = o->vols;
		break;
	}
	case SVCOPT_PUBLISH: {
		size_t n = cfg->npublish;
		if (n == SVCOPTS_MAX || svc_parse_publish(arg, &o->pubs[n]) < 0) {
			fprintf(stderr,
				"nubis: --publish %s: expected [HOST_ADDR:]HOST_PORT:GUEST_PORT"
				"[/tcp|/udp] (IPv6 in brackets)\n",
				arg);
			return -1;
		}
		cfg->npublish = n + 1;
		cfg->publish = o->pubs;
		break;
	}
	case SVCOPT_ALLOW: {
		size_t n = cfg->nallow;
		if (n == SVCOPTS_MAX || svc_parse_allow(arg, &o->allows[n]) < 0) {
			fprintf(stderr,
				"nubis: --allow-connect %s: expected ADDR:PORT[/tcp|/udp] (IPv6 "
				"in brackets)\n",
				arg);
			return -1;
		}
		cfg->nallow = n + 1;
		cfg->allow = o->allows;
		break;
	}
	default:
		return 0;
	}
	o->any = true;
	return 1;
}

int svc_opts_finish(struct svc_opts *o, char **prog_argv)
{
	if (!o->cfg.nlower) {
		fprintf(stderr, "nubis: a service VM needs --rootfs DIR\n");
		return -1;
	}
	bool has_path = false;
	for (size_t i = 0; i < o->nenv; i++)
		if (!strncmp(o->env[i], "PATH=", 5))
			has_path = true;
	if (!has_path)
		o->env[o->nenv++] = (char *)(uintptr_t) "PATH=/usr/local/sbin:/usr/local/bin:/usr/"
							"sbin:/usr/bin:/sbin:/bin";
	o->env[o->nenv] = NULL;
	o->cfg.envp = o->env;
	o->cfg.argv = prog_argv;
	return 0;
}

void svc_opts_usage(FILE *out)
{
	fprintf(out,
		"  --rootfs DIR           root filesystem (a read-only lower layer; repeat: top "
		"first)\n"
		"  --upper DIR            writable layer (created if missing; kept)\n"
		"  --memory SIZE          guest memory (default 256M; 8M..64G, multiple of 2M)\n"
		"  --cpus N               vCPUs the guest may use at once (reported by "
		"sched_getaffinity)\n"
		"  --max-threads N        guest threads (default 64, at most 64)\n"
		"  --max-fds N            guest file descriptors (default 1024)\n"
		"  --workdir PATH         working directory inside the VM (default /)\n"
		"  --env K=V              environment variable (PATH has a default)\n"
		"  --volume H:G[:ro]      host directory H at guest path G\n"
		"  --publish [A:]P:GP[/udp]  host address A (default 127.0.0.1) port P to guest "
		"port GP\n"
		"  --allow-connect A:P[/tcp|/udp]  let the guest connect to a host service\n"
		"  --disk-quota SIZE      bytes the writable layer may hold\n"
		"  --vdso on|off|syscall  guest clocks without exits (default on); off: no "
		"vDSO;\n"
		"                         syscall: vDSO that makes the system calls\n"

		"  --syscall-mode MODE    exit, poll (exitless fast path) or auto\n");
}
