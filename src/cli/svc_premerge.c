/* SPDX-License-Identifier: MIT */
/* TEMPORARY until core and image are merged (see svc_premerge.h): the
 * runtime and image store answer "not available in this build". */
#include "svc_premerge.h"

#include <string.h>

#include "../common/parse.h"

void svc_config_defaults(struct svc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = 64u << 20;
	cfg->cpus = 1;
}
void svc_opts_init(struct svc_opts *o)
{
	svc_config_defaults(&o->cfg);
}
void svc_opts_free(struct svc_opts *o)
{
	(void)o;
}
int svc_opts_handle(struct svc_opts *o, int c, const char *arg)
{
	uint64_t v;
	switch (c) {
	case SOPT_MEMORY:
		if (nb_parse_size(arg, &v) || v < (4u << 20)) {
			fprintf(stderr, "nubis: --memory %s: need a size of at least 4M\n", arg);
			return -1;
		}
		o->cfg.mem_size = v;
		return 1;
	case SOPT_CPUS:
		if (nb_parse_u64(arg, &v) || !v || v > 256) {
			fprintf(stderr, "nubis: --cpus %s: need 1..256\n", arg);
			return -1;
		}
		o->cfg.cpus = (unsigned)v;
		return 1;
	case SOPT_PUBLISH:
	case SOPT_VOLUME:
		return 1;
	default:
		return 0;
	}
}
void svc_opts_usage(FILE *out)
{
	fprintf(out, "  --memory SIZE  --cpus N  --publish H:P:G  --volume H:G[:ro]\n");
}
int svc_create(const struct kvmhost *kvm, const struct svc_config *cfg, struct svc_vm **out,
	       struct nb_error *err)
{
	(void)kvm;
	(void)cfg;
	(void)out;
	return nb_error_set(err, NB_EINTERNAL, "service VM runtime not in this build (pre-merge)");
}
int svc_start(struct svc_vm *vm, struct nb_error *err)
{
	(void)vm;
	return nb_error_set(err, NB_EINTERNAL, "not built");
}
int svc_wait(struct svc_vm *vm)
{
	(void)vm;
	return 120;
}
void svc_kill(struct svc_vm *vm, int sig)
{
	(void)vm;
	(void)sig;
}
void svc_pause(struct svc_vm *vm)
{
	(void)vm;
}
void svc_resume(struct svc_vm *vm)
{
	(void)vm;
}
void svc_destroy(struct svc_vm *vm)
{
	(void)vm;
}
