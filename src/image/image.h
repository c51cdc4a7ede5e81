/* SPDX-License-Identifier: MIT */
/*
 * Image store: OCI image layouts, `docker save` archives, plain directories
 * and tarballs imported into a content-addressed store on the host.
 *
 * Store layout under @root (default: $NUBIS_HOME, else /var/lib/nubis for
 * root, else ~/.local/share/nubis):
 *   blobs/sha256/<hex>        verified compressed layer blobs and configs
 *   layers/sha256/<hex>/      unpacked layer (hex = digest of the *uncompressed*
 *                             tar, the OCI diff_id); OCI whiteouts (.wh.NAME,
 *                             .wh..wh..opq) are kept as files and honoured by
 *                             the union filesystem at lookup time
 *   images/<hex>.json         one imported image (hex = its id): name, layers
 *                             (bottom first), entrypoint, cmd, env, workdir,
 *                             exposed ports, created, size
 * Writes go to temporary names and are renamed into place, so a crash never
 * leaves a half-written layer or image visible. The store is safe against
 * concurrent readers; writers take a lock file.
 */
#ifndef NUBIS_IMAGE_H
#define NUBIS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct image_store;

/* Open (creating directories as needed) the store at @root, or the default
 * root when @root is NULL. */
int image_store_open(const char *root, struct image_store **out, struct nb_error *err);
void image_store_close(struct image_store *s);
const char *image_store_root(const struct image_store *s);

/* Size caps for later imports; 0 keeps a cap unchanged. @max_layer_bytes
 * bounds each layer's compressed stream, uncompressed tar and unpacked files
 * (default 8 GiB), @max_image_bytes the sum over an image's layers (default
 * 32 GiB), @max_layer_entries the entries of one layer (default 1000000).
 * An import over a cap fails with NB_EFORMAT naming the layer. */
void image_store_set_limits(struct image_store *s, uint64_t max_layer_bytes,
			    uint64_t max_image_bytes, uint64_t max_layer_entries);

/* Import @src: an OCI image layout directory, a `docker save` tar, an OCI
 * layout tar, a plain directory (one layer) or a plain tarball (one layer,
 * gzip/zstd/xz/uncompressed). @name ("name[:tag]") may be NULL to use the
 * name recorded in the source. Writes the new image id (64 hex) to @id_out. */
int image_import(struct image_store *s, const char *src, const char *name, char id_out[65],
		 struct nb_error *err);

struct image_info {
	char id[65];
	char *name;	   /* "name:tag" or NULL */
	char **layer_dirs; /* absolute host paths, TOP FIRST (svc_config.lower_dirs order) */
	size_t nlayers;
	char **entrypoint;     /* NULL-terminated, may be empty */
	char **cmd;	       /* NULL-terminated, may be empty */
	char **env;	       /* NULL-terminated "K=V" */
	char *workdir;	       /* "/" if unset */
	uint16_t *exposed_tcp; /* ExposedPorts "N/tcp" */
	size_t nexposed;
	uint64_t size;	 /* bytes of unpacked layers */
	int64_t created; /* unix seconds */
};

/* Find an image by "name[:tag]" (tag defaults to latest), full id, or a
 * unique id prefix of >= 4 hex digits. NB_ENOENT if none. */
int image_lookup(struct image_store *s, const char *ref, struct image_info *out,
		 struct nb_error *err);
void image_info_release(struct image_info *info);

/* All images, newest first. Caller releases each and frees the array. */
int image_list(struct image_store *s, struct image_info **out, size_t *n, struct nb_error *err);

/* Remove an image and every layer no other image uses. */
int image_remove(struct image_store *s, const char *ref, struct nb_error *err);

#endif
