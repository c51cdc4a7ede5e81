/* Smallest guest program: one line on stdout, exit 0. Built statically
 * against musl and glibc (see guest/examples/meson.build). */
#include <stdio.h>

#ifdef __GLIBC__
#define LIBC "glibc"
#else
#define LIBC "musl" /* musl deliberately defines no identifying macro */
#endif

int main(void)
{
	printf("hello from nubis (%s)\n", LIBC);
	return 0;
}
