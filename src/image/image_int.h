/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of the image store (src/image/): SHA-256 digests
 * (digest.c), secure tar unpacking (layer.c), OCI/Docker JSON parsing
 * (oci.c). Only image.c and the unit tests include this header. Digests,
 * unpacking and packing call libcrypto/libarchive through a loaded
 * struct libs (libs.h) passed in by the caller.
 */
#ifndef NUBIS_IMAGE_INT_H
#define NUBIS_IMAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/dir.h"
#include "../common/error.h"
#include "libs.h"

/* ---- digest.c: SHA-256 (OpenSSL EVP) ---------------------------------- */

struct digest {
	void *md;		/* EVP_MD_CTX * */
	const struct libs *lib; /* loaded (libs_load); must outlive the digest */
};

/* Start a SHA-256 computation through @lib (loaded). Returns 0 or -ENOMEM.
 * Pair with digest_final() or digest_release(). */
int digest_init(struct digest *d, const struct libs *lib);
void digest_update(struct digest *d, const void *buf, size_t len);
/* Finish into 64 lowercase hex digits + NUL and release the context. */
void digest_final(struct digest *d, char hex[65]);
/* Release without finishing (error paths); safe on a zeroed struct. */
void digest_release(struct digest *d);
/* SHA-256 of a memory buffer through @lib (loaded). Returns 0 or -ENOMEM. */
int digest_buf(const struct libs *lib, const void *buf, size_t len, char hex[65]);
/* Validate "sha256:<64 lowercase hex>" (exactly) and copy the hex part.
 * Returns 0, or -EINVAL for anything else (other algorithms included). */
int digest_parse(const char *s, char hex[65]);
/* 1 if @s is exactly 64 lowercase hex digits. */
int digest_is_hex(const char *s);

/* ---- layer.c: unpack a tar stream into a directory --------------------- */

struct layer_limits {
	uint64_t max_bytes;   /* cap on the uncompressed tar stream and on unpacked bytes */
	uint64_t max_entries; /* cap on the number of entries */
};

enum layer_mode {
	LAYER_MODE_LAYER,  /* an image layer: char 0:0 devices become .wh. whiteouts */
	LAYER_MODE_SOURCE, /* an outer archive (OCI layout tar, docker save tar) */
};

struct layer_stats {
	char blob_hex[65];	 /* SHA-256 of the bytes read from the fd */
	char diff_hex[65];	 /* SHA-256 of the uncompressed tar stream */
	uint64_t blob_bytes;	 /* bytes read from the fd */
	uint64_t tar_bytes;	 /* uncompressed tar bytes */
	uint64_t unpacked_bytes; /* sum of regular file sizes written */
	uint64_t entries;
	uint64_t skipped; /* device nodes, FIFOs, sockets left out */
	char first_skipped[256];
};

/* Read through @lib (loaded), the (uncompressed, gzip, zstd or xz) tar
 * archive from @fd to its end
 * and unpack it into the directory @dirfd, which should be empty. Entries are
 * confined to @dirfd: absolute names, ".." components and paths through
 * symlinks are refused; hardlinks must name an already unpacked file;
 * setuid/setgid bits are stripped; owners are not restored; device nodes,
 * FIFOs and sockets are skipped (counted in @st). Hashes the raw and the
 * uncompressed stream on the way (@st). @what names the stream in errors.
 * Returns 0, or -1 with @err filled; on error @dirfd holds a partial tree
 * that the caller removes. Does not close @fd or @dirfd. */
int layer_unpack(const struct libs *lib, int fd, int dirfd, enum layer_mode mode,
		 const struct layer_limits *lim, const char *what, struct layer_stats *st,
		 struct nb_error *err);

/* Enable the gzip, zstd and xz decompressors on the reader @a (from
 * @lib). Returns -1 if any of them would need an external program. */
int layer_enable_filters(const struct libs *lib, struct archive *a);

/* Write, through @lib (loaded), the directory tree at @src_path as an
 * uncompressed tar to @out_fd.
 * Regular files, directories and symlinks only: device nodes, FIFOs and
 * sockets are refused with an error naming them. Hardlinked files are
 * written as separate copies. Bytes are capped by @lim. Returns 0 or -1. */
int layer_pack_dir(const struct libs *lib, const char *src_path, int out_fd,
		   const struct layer_limits *lim, struct nb_error *err);

/* Tree removal: nb_rmtree_at() from common/dir.h. */

/* ---- oci.c: OCI / Docker JSON documents -------------------------------- */

#define OCI_JSON_MAX	  (4u << 20) /* cap on any JSON document we read */
#define OCI_MAX_LAYERS	  512
#define OCI_MAX_MANIFESTS 4096

struct oci_desc {
	char *media_type; /* may be NULL when absent */
	char hex[65];
	uint64_t size;
	char *ref_name;	 /* annotation: image name (io.containerd.image.name or ref.name) */
	int is_index;	 /* the descriptor names an index (nested) */
	int platform_ok; /* 1: linux/amd64 or no platform; 0: another platform */
};

struct oci_config {
	char **entrypoint; /* NULL-terminated */
	char **cmd;
	char **env;
	char *workdir;
	uint16_t *ports;
	size_t nports;
	int64_t created;
	char (*diff_ids)[65];
	size_t ndiff;
};

struct docker_entry {
	char *config;	 /* path inside the archive */
	char **repotags; /* NULL-terminated */
	char **layers;	 /* NULL-terminated paths inside the archive */
	size_t nlayers;
};

/* Parse an OCI index (index.json or a nested index) into descriptors of
 * manifests and nested indexes. Caller frees with oci_descs_free(). */
int oci_index_parse(const char *json, size_t len, struct oci_desc **out, size_t *n,
		    struct nb_error *err);
/* Parse an image manifest: its config descriptor and layer descriptors. */
int oci_manifest_parse(const char *json, size_t len, struct oci_desc *config,
		       struct oci_desc **layers, size_t *nlayers, struct nb_error *err);
void oci_desc_clear(struct oci_desc *d);
void oci_descs_free(struct oci_desc *d, size_t n);
/* 1 if @mt is a layer media type we unpack (tar, tar+gzip, tar+zstd, Docker's). */
int oci_layer_media_ok(const char *mt);
/* Parse an image config. Caller releases with oci_config_release(). */
int oci_config_parse(const char *json, size_t len, struct oci_config *out, struct nb_error *err);
void oci_config_release(struct oci_config *c);
/* Parse a `docker save` manifest.json (array of entries). */
int oci_docker_parse(const char *json, size_t len, struct docker_entry **out, size_t *n,
		     struct nb_error *err);
void oci_docker_free(struct docker_entry *e, size_t n);
/* Free a NULL-terminated string vector. */
void oci_strv_free(char **v);
/* Parse an RFC 3339 time ("2024-01-02T03:04:05.123Z", offsets allowed) to
 * unix seconds. Returns 0 or -EINVAL. */
int oci_parse_time(const char *s, int64_t *out);

#endif
