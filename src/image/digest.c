/* SPDX-License-Identifier: MIT */
/* SHA-256 digests for the image store, on OpenSSL's EVP interface (called
 * through the table of libs.h). */
#include <errno.h>
#include <string.h>

#include "image_int.h"

int digest_init(struct digest *d, const struct libs *lib)
{
	d->md = NULL;
	d->lib = lib;
	EVP_MD_CTX *ctx = lib->EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (lib->EVP_DigestInit_ex(ctx, lib->EVP_sha256(), NULL) != 1) {
		lib->EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	d->md = ctx;
	return 0;
}

void digest_update(struct digest *d, const void *buf, size_t len)
{
	if (d->md && len)
		d->lib->EVP_DigestUpdate((EVP_MD_CTX *)d->md, buf, len);
}

void digest_final(struct digest *d, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char digits[] = "0123456789abcdef";
	hex[0] = '\0';
	if (!d->md)
		return;
	if (d->lib->EVP_DigestFinal_ex((EVP_MD_CTX *)d->md, md, &n) == 1 && n == 32) {
		for (unsigned i = 0; i < 32; i++) {
			hex[2 * i] = digits[md[i] >> 4];
			hex[2 * i + 1] = digits[md[i] & 15];
		}
		hex[64] = '\0';
	}
	digest_release(d);
}

void digest_release(struct digest *d)
{
	if (d->md)
		d->lib->EVP_MD_CTX_free((EVP_MD_CTX *)d->md);
	d->md = NULL;
}

int digest_buf(const struct libs *lib, const void *buf, size_t len, char hex[65])
{
	struct digest d;
	int rc = digest_init(&d, lib);
	if (rc < 0)
		return rc;
	digest_update(&d, buf, len);
	digest_final(&d, hex);
	return hex[0] ? 0 : -ENOMEM;
}

int digest_is_hex(const char *s)
{
	size_t i;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

int digest_parse(const char *s, char hex[65])
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || !digest_is_hex(s + 7))
		return -EINVAL;
	memcpy(hex, s + 7, 65);
	return 0;
}
