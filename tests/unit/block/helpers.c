#include "helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static char ring[8][512];
static int ring_i;

void tmp_setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/vessel-block-XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

void tmp_teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

const char *tmp_path(const char *name)
{
	char *p = ring[ring_i++ % 8];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

void pattern_fill(uint8_t *buf, uint64_t sector, uint32_t n, uint64_t seed)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = seed * 0x9e3779b97f4a7c15ull + sector + i;
		for (int w = 0; w < 64; w++)
			for (int k = 0; k < 8; k++)
				buf[(size_t)i * 512 + (size_t)w * 8 + (size_t)k] = (uint8_t)(v >> (8 * k));
	}
}

int pattern_check(const uint8_t *buf, uint64_t sector, uint32_t n, uint64_t seed)
{
	uint8_t exp[512];
	for (uint32_t i = 0; i < n; i++) {
		pattern_fill(exp, sector + i, 1, seed);
		if (memcmp(exp, buf + (size_t)i * 512, 512))
			return -1;
	}
	return 0;
}

int file_read_at(const char *path, void *buf, size_t len, long off)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

int file_write_at(const char *path, const void *buf, size_t len, long off)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = pwrite(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}
