/* SPDX-License-Identifier: MIT */
/* Loading payload decompressors on first use (see codec.h). */
#include "codec.h"

#include <dlfcn.h>
#include <string.h>

/* The soname, Debian package and format name of each library. */
static int codec_lib(enum bzimage_payload_fmt fmt, const char **soname, const char **pkg,
		     const char **what)
{
	switch (fmt) {
	case BZIMAGE_PAYLOAD_GZIP:
		*soname = CODEC_ZLIB_SONAME, *pkg = "zlib1g", *what = "gzip";
		return 0;
	case BZIMAGE_PAYLOAD_XZ:
		*soname = CODEC_LZMA_SONAME, *pkg = "liblzma5", *what = "xz";
		return 0;
	case BZIMAGE_PAYLOAD_ZSTD:
		*soname = CODEC_ZSTD_SONAME, *pkg = "libzstd1", *what = "zstd";
		return 0;
	case BZIMAGE_PAYLOAD_LZ4:
		*soname = CODEC_LZ4_SONAME, *pkg = "liblz4-1", *what = "lz4";
		return 0;
	default:
		return -1;
	}
}

int codec_load_name(struct codec *c, enum bzimage_payload_fmt fmt, const char *soname,
		    struct nb_error *err)
{
	const char *def = NULL, *pkg = NULL, *what = NULL, *missing = NULL;
	memset(c, 0, sizeof(*c));
	if (codec_lib(fmt, &def, &pkg, &what) < 0)
		return nb_error_set(err, NB_EFORMAT, "payload: no decompressor for %s",
				    bzimage_payload_name(fmt));
	if (!soname)
		soname = def;
	c->so = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!c->so) {
		/* dlerror() is one line and names the file and the reason */
		const char *why = dlerror();
		return nb_error_set(err, NB_ERESOURCE,
				    "cannot load %s (Debian package %s), needed for %s-compressed "
				    "kernels: %s",
				    soname, pkg, what, why ? why : "unknown error");
	}
	c->fmt = fmt;
	/* POSIX dlsym() returns void *; converting it to a function pointer is
	 * what dlsym() is for (done through the object representation to stay
	 * within ISO C). */
#define CODEC_RESOLVE(fn)                                                                          \
	if (!missing) {                                                                            \
		void *p = dlsym(c->so, #fn);                                                       \
		if (p)                                                                             \
			memcpy(&c->fn, &p, sizeof(p));                                             \
		else                                                                               \
			missing = #fn;                                                             \
	}
	switch (fmt) {
	case BZIMAGE_PAYLOAD_GZIP:
		CODEC_ZLIB_FNS(CODEC_RESOLVE)
		break;
	case BZIMAGE_PAYLOAD_XZ:
		CODEC_LZMA_FNS(CODEC_RESOLVE)
		break;
	case BZIMAGE_PAYLOAD_ZSTD:
		CODEC_ZSTD_FNS(CODEC_RESOLVE)
		break;
	default: /* BZIMAGE_PAYLOAD_LZ4, the only other one codec_lib() accepts */
		CODEC_LZ4_FNS(CODEC_RESOLVE)
		break;
	}
#undef CODEC_RESOLVE
	if (missing) {
		nb_error_set(err, NB_ERESOURCE,
			     "%s (Debian package %s) lacks %s, needed for %s-compressed kernels",
			     soname, pkg, missing, what);
		codec_unload(c);
		return -1;
	}
	return 0;
}

int codec_load(struct codec *c, enum bzimage_payload_fmt fmt, struct nb_error *err)
{
	return codec_load_name(c, fmt, NULL, err);
}

void codec_unload(struct codec *c)
{
	if (c->so)
		dlclose(c->so);
	memset(c, 0, sizeof(*c));
}
