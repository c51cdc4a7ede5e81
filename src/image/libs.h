/* SPDX-License-Identifier: MIT */
/*
 * libarchive and libcrypto, loaded with dlopen() when the image store first
 * needs them (an import) rather than when a program starts: libarchive pulls
 * in libxml2, ICU, libstdc++ and a dozen more libraries, which cost every
 * `nubis` command (`nubis run` included) ~2 ms of dynamic loading. Same
 * pattern as src/common/mhd.h. Headers only at build time.
 *
 * The table holds the calls src/image/ makes; every call into either library
 * goes through it, so nothing links them (a direct call would not link).
 */
#ifndef NUBIS_IMAGE_LIBS_H
#define NUBIS_IMAGE_LIBS_H

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "../common/error.h"

/* The exact sonames of the ABIs the headers describe (Debian 12:
 * libarchive13, libssl3). A newer major version is a different ABI. */
#define LIBS_ARCHIVE_SONAME "libarchive.so.13"
#define LIBS_CRYPTO_SONAME  "libcrypto.so.3"

#if ARCHIVE_VERSION_NUMBER < 3000000 || ARCHIVE_VERSION_NUMBER >= 4000000
#error "libs.h: libarchive headers are not the libarchive.so.13 ABI (3.x)"
#endif
#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR != 3
#error "libs.h: OpenSSL headers are not the libcrypto.so.3 ABI"
#endif

/* X(name): every libarchive function src/image/ calls. */
#define LIBS_ARCHIVE_FNS(X)                                                                        \
	X(archive_error_string)                                                                    \
	X(archive_set_error)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_free)                                                                       \
	X(archive_read_open)                                                                       \
	X(archive_read_open_filename)                                                              \
	X(archive_read_next_header)                                                                \
	X(archive_read_data)                                                                       \
	X(archive_read_support_filter_gzip)                                                        \
	X(archive_read_support_filter_xz)                                                          \
	X(archive_read_support_filter_zstd)                                                        \
	X(archive_read_support_format_raw)                                                         \
	X(archive_read_support_format_tar)                                                         \
	X(archive_write_new)                                                                       \
	X(archive_write_free)                                                                      \
	X(archive_write_set_format_pax_restricted)                                                 \
	X(archive_write_add_filter_none)                                                           \
	X(archive_write_set_bytes_in_last_block)                                                   \
	X(archive_write_open_fd)                                                                   \
	X(archive_write_header)                                                                    \
	X(archive_write_data)                                                                      \
	X(archive_write_close)                                                                     \
	X(archive_entry_new)                                                                       \
	X(archive_entry_free)                                                                      \
	X(archive_entry_clear)                                                                     \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_size)                                                                      \
	X(archive_entry_size_is_set)                                                               \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_mtime_nsec)                                                                \
	X(archive_entry_mtime_is_set)                                                              \
	X(archive_entry_rdevmajor)                                                                 \
	X(archive_entry_rdevminor)                                                                 \
	X(archive_entry_set_pathname)                                                              \
	X(archive_entry_set_filetype)                                                              \
	X(archive_entry_set_perm)                                                                  \
	X(archive_entry_set_size)                                                                  \
	X(archive_entry_set_mtime)                                                                 \
	X(archive_entry_set_symlink)

/* X(name): every libcrypto function src/image/ calls. */
#define LIBS_CRYPTO_FNS(X)                                                                         \
	X(EVP_MD_CTX_new)                                                                          \
	X(EVP_MD_CTX_free)                                                                         \
	X(EVP_sha256)                                                                              \
	X(EVP_DigestInit_ex)                                                                       \
	X(EVP_DigestUpdate)                                                                        \
	X(EVP_DigestFinal_ex)

/* The loaded libraries and their calls, each member named after the
 * function it points to (lib->archive_read_new(), lib->EVP_sha256()).
 * Filled by libs_load() and read-only from then on, so one table may be
 * shared by any number of readers. */
struct libs {
	void *archive_so;
	void *crypto_so;
#define LIBS_MEMBER(fn) __typeof__(fn) *fn;
	LIBS_ARCHIVE_FNS(LIBS_MEMBER)
	LIBS_CRYPTO_FNS(LIBS_MEMBER)
#undef LIBS_MEMBER
};

/* Load LIBS_ARCHIVE_SONAME and LIBS_CRYPTO_SONAME and resolve every call
 * into @l (which must be zeroed or unloaded). Returns 0, or -1 with @err
 * (NB_ERESOURCE, one line naming the library and the loader's reason) and
 * @l left zeroed. Not thread-safe on one @l: the owner serialises it. */
int libs_load(struct libs *l, struct nb_error *err);
/* libs_load() with other sonames (tests of the failure path). */
int libs_load_names(struct libs *l, const char *archive_soname, const char *crypto_soname,
		    struct nb_error *err);
/* 1 once libs_load() has succeeded on @l. */
int libs_loaded(const struct libs *l);
/* Drop the references taken by libs_load() and zero @l; a zeroed @l is
 * fine. No call through @l may be in progress or made afterwards. */
void libs_unload(struct libs *l);

#endif
