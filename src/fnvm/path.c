/* SPDX-License-Identifier: MIT */
#include "path.h"

#include <errno.h>
#include <string.h>

static int append(const char *s, char *out, size_t outsz, size_t *len)
{
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 1 && s[0] == '.') {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			while (*len > 0 && out[*len - 1] != '/')
				(*len)--;
			if (*len > 0)
				(*len)--; /* drop the slash */
		} else {
			if (*len + 1 + n + 1 > outsz)
				return -ENAMETOOLONG;
			out[(*len)++] = '/';
			memcpy(out + *len, s, n);
			*len += n;
		}
		s += n;
	}
	return 0;
}

int fnvm_path_norm(const char *cwd, const char *path, char *out, size_t outsz)
{
	size_t len = 0;
	if (outsz < 2)
		return -ENAMETOOLONG;
	if (path[0] != '/' && append(cwd, out, outsz, &len) < 0)
		return -ENAMETOOLONG;
	if (append(path, out, outsz, &len) < 0)
		return -ENAMETOOLONG;
	if (len == 0)
		out[len++] = '/';
	out[len] = 0;
	return (int)len;
}
