/* SPDX-License-Identifier: MIT */
/* Loading libarchive and libcrypto on first use (see libs.h). */
#include "libs.h"

#include <dlfcn.h>
#include <string.h>

/* The Debian package that ships each soname, for the error message. */
static const char *package_of(const char *soname)
{
	if (!strcmp(soname, LIBS_ARCHIVE_SONAME))
		return " (Debian package libarchive13)";
	if (!strcmp(soname, LIBS_CRYPTO_SONAME))
		return " (Debian package libssl3)";
	return "";
}

static void *open_so(const char *soname, struct nb_error *err)
{
	void *so = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		/* dlerror() is one line and names the file and the reason */
		const char *why = dlerror();
		nb_error_set(err, NB_ERESOURCE, "cannot load %s%s, needed for images: %s", soname,
			     package_of(soname), why ? why : "unknown error");
	}
	return so;
}

int libs_load_names(struct libs *l, const char *archive_soname, const char *crypto_soname,
		    struct nb_error *err)
{
	memset(l, 0, sizeof(*l));
	const char *missing = NULL, *from = NULL;
	if (!(l->archive_so = open_so(archive_soname, err)))
		goto fail;
	if (!(l->crypto_so = open_so(crypto_soname, err)))
		goto fail;
		/* POSIX dlsym() returns void *; converting it to a function pointer
		 * is what dlsym() is for (done through the object representation to
		 * stay within ISO C). */
#define LIBS_RESOLVE(so, soname, fn)                                                               \
	if (!missing) {                                                                            \
		void *p = dlsym(l->so, #fn);                                                       \
		if (p)                                                                             \
			memcpy(&l->fn, &p, sizeof(p));                                             \
		else {                                                                             \
			missing = #fn;                                                             \
			from = soname;                                                             \
		}                                                                                  \
	}
#define LIBS_ARCHIVE(fn) LIBS_RESOLVE(archive_so, archive_soname, fn)
#define LIBS_CRYPTO(fn)	 LIBS_RESOLVE(crypto_so, crypto_soname, fn)
	LIBS_ARCHIVE_FNS(LIBS_ARCHIVE)
	LIBS_CRYPTO_FNS(LIBS_CRYPTO)
#undef LIBS_CRYPTO
#undef LIBS_ARCHIVE
#undef LIBS_RESOLVE
	if (missing) {
		nb_error_set(err, NB_ERESOURCE, "%s%s lacks %s, needed for images", from,
			     package_of(from), missing);
		goto fail;
	}
	return 0;
fail:
	libs_unload(l);
	return -1;
}

int libs_load(struct libs *l, struct nb_error *err)
{
	return libs_load_names(l, LIBS_ARCHIVE_SONAME, LIBS_CRYPTO_SONAME, err);
}

int libs_loaded(const struct libs *l)
{
	return l->archive_so && l->crypto_so;
}

void libs_unload(struct libs *l)
{
	if (l->crypto_so)
		dlclose(l->crypto_so);
	if (l->archive_so)
		dlclose(l->archive_so);
	memset(l, 0, sizeof(*l));
}
