/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd, loaded with dlopen() when an HTTP server starts rather than
 * when a program starts: its TLS dependencies (gnutls and eight more
 * libraries) cost ~1.5 ms of start-up that every `nubis run` would otherwise
 * pay. These are the calls nubis uses. Headers only at build time.
 */
#ifndef NUBIS_COMMON_MHD_H
#define NUBIS_COMMON_MHD_H

#include <microhttpd.h>

#include "error.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

struct mhd_api {
	void *so;
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_quiesce_daemon) *quiesce_daemon;
	__typeof__(MHD_suspend_connection) *suspend_connection;
	__typeof__(MHD_resume_connection) *resume_connection;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_get_daemon_info) *get_daemon_info;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value; /* query arguments */
};

/* Load the library and resolve the calls. Returns 0 or -1 with @err. */
int mhd_load(struct mhd_api *m, struct nb_error *err);
/* Unload; a zeroed struct is fine. */
void mhd_unload(struct mhd_api *m);
/* Queue one JSON error response {"error":{"code":..,"message":..}} (the one
 * error shape of every nubis HTTP API). */
mhd_result mhd_respond_error(const struct mhd_api *m, struct MHD_Connection *c, unsigned status,
			     const char *code, const char *msg);
/* Queue a response with body @body (copied) and Content-Type @type. */
mhd_result mhd_respond(const struct mhd_api *m, struct MHD_Connection *c, unsigned status,
		       const char *type, const char *body, size_t len);

#endif
