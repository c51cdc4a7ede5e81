/* SPDX-License-Identifier: MIT */
#include "mhd.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int mhd_load(struct mhd_api *m, struct nb_error *err)
{
	static const char *const names[] = {"libmicrohttpd.so.12", "libmicrohttpd.so"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !m->so; i++)
		m->so = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!m->so)
		return nb_error_set(err, NB_ERESOURCE, "cannot load libmicrohttpd: %s", dlerror());
#define MHD_SYM(field, name)                                                                       \
	if (!(*(void **)&m->field = dlsym(m->so, #name)))                                          \
		return nb_error_set(err, NB_ERESOURCE, "libmicrohttpd lacks %s", #name);
	MHD_SYM(start_daemon, MHD_start_daemon)
	MHD_SYM(stop_daemon, MHD_stop_daemon)
	MHD_SYM(quiesce_daemon, MHD_quiesce_daemon)
	MHD_SYM(suspend_connection, MHD_suspend_connection)
	MHD_SYM(resume_connection, MHD_resume_connection)
	MHD_SYM(create_response_from_buffer, MHD_create_response_from_buffer)
	MHD_SYM(add_response_header, MHD_add_response_header)
	MHD_SYM(queue_response, MHD_queue_response)
	MHD_SYM(destroy_response, MHD_destroy_response)
	MHD_SYM(get_daemon_info, MHD_get_daemon_info)
	MHD_SYM(lookup_connection_value, MHD_lookup_connection_value)
#undef MHD_SYM
	return 0;
}

/* Threads that prepare and destroy VMs beside the workers. Two measured best
 * on 2 cores (hello-musl under wrk: 1 -> ~700, 2 -> ~900, 3 -> ~850 req/s):
 * much of a VM's creation and teardown is spent waiting (SRCU grace periods),
 * which a second preparer overlaps. */
#define FNVM_SERVE_PREPARERS 2

void mhd_unload(struct mhd_api *m)
{
	if (m->so)
		dlclose(m->so);
	memset(m, 0, sizeof(*m));
}

mhd_result mhd_respond(const struct mhd_api *m, struct MHD_Connection *c, unsigned status,
		       const char *type, const char *body, size_t len)
{
	struct MHD_Response *rs =
	    m->create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	if (!rs)
		return MHD_NO;
	m->add_response_header(rs, "Content-Type", type);
	mhd_result ret = m->queue_response(c, status, rs);
	m->destroy_response(rs);
	return ret;
}

mhd_result mhd_respond_error(const struct mhd_api *m, struct MHD_Connection *c, unsigned status,
			     const char *code, const char *msg)
{
	char clean[512], body[768];
	size_t j = 0;
	for (size_t i = 0; msg[i] && j + 2 < sizeof(clean); i++) {
		char ch = msg[i];
		if (ch == '"' || ch == '\\')
			clean[j++] = '\\';
		clean[j++] = (ch >= 0 && ch < 0x20) ? ' ' : ch;
	}
	clean[j] = 0;
	int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
			 code, clean);
	return mhd_respond(m, c, status, "application/json", body, (size_t)n);
}
