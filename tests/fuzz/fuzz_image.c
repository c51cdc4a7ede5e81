/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the image store's parsers of untrusted input: the first
 * byte picks the parser, the rest is its input.
 *   0 oci_index_parse   1 oci_manifest_parse   2 oci_config_parse
 *   3 oci_docker_parse  4.. layer_unpack (a layer tar, any compression,
 *                          unpacked into a fresh temporary directory)
 * Built two ways: with -fsanitize=fuzzer (tests/fuzz/run-image.sh) and, with
 * -DFUZZ_REPLAY, as an ordinary program that replays the files or
 * directories given as arguments (the committed corpus runs in every
 * `meson test --suite unit`).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_layer(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	lseek(fd, 0, SEEK_SET);
	char dir[] = "/tmp/nubis-fuzz-image-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		abort();
	/* loaded once for the whole run, as one store loads them once */
	static struct libs lib;
	struct layer_limits lim = {.max_bytes = 16 << 20, .max_entries = 4096};
	struct layer_stats st;
	struct nb_error err;
	if (!libs_loaded(&lib) && libs_load(&lib, &err) < 0) {
		fprintf(stderr, "fuzz_image: %s\n", err.msg);
		abort();
	}
	int rc = layer_unpack(&lib, fd, dfd, LAYER_MODE_LAYER, &lim, "fuzz", &st, &err);
	if (rc != 0 && rc != -1)
		abort();
	if (rc < 0 && !err.msg[0])
		abort(); /* every failure explains itself */
	close(fd);
	close(dfd);
	int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nb_rmtree_at(tmp, dir + 5) < 0)
		abort();
	close(tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *json = (const char *)data + 1;
	size_t len = size - 1;
	struct nb_error err;
	switch (data[0]) {
	case 0: {
		struct oci_desc *d;
		size_t n;
		if (oci_index_parse(json, len, &d, &n, &err) == 0)
			oci_descs_free(d, n);
		break;
	}
	case 1: {
		struct oci_desc c, *l;
		size_t n;
		if (oci_manifest_parse(json, len, &c, &l, &n, &err) == 0) {
			oci_desc_clear(&c);
			oci_descs_free(l, n);
		}
		break;
	}
	case 2: {
		struct oci_config c;
		if (oci_config_parse(json, len, &c, &err) == 0)
			oci_config_release(&c);
		break;
	}
	case 3: {
		struct docker_entry *e;
		size_t n;
		if (oci_docker_parse(json, len, &e, &n, &err) == 0)
			oci_docker_free(e, n);
		break;
	}
	default:
		fuzz_layer(data + 1, size - 1);
		break;
	}
	return 0;
}

#ifdef FUZZ_REPLAY
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	uint8_t *buf = malloc(64 << 20);
	size_t n = buf ? fread(buf, 1, 64 << 20, f) : 0;
	fclose(f);
	if (!buf)
		return 1;
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0, count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= replay_file(argv[i]);
			count++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
			bad |= replay_file(p);
			count++;
		}
		if (d)
			closedir(d);
	}
	printf("replayed %d inputs\n", count);
	return bad || count == 0;
}
#endif
