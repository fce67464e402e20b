/* Scratch files for the block layer tests. */
#ifndef TEST_BLOCK_HELPERS_H
#define TEST_BLOCK_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory per test; path of a file in it (static buffer ring). */
const char *tmp_path(const char *name);
void tmp_setup(void);
void tmp_teardown(void);
/* Sector s of pattern `seed` (same rule as `vessel disk io`). */
void pattern_fill(uint8_t *buf, uint64_t sector, uint32_t n, uint64_t seed);
int pattern_check(const uint8_t *buf, uint64_t sector, uint32_t n, uint64_t seed);
int file_read_at(const char *path, void *buf, size_t len, long off);
int file_write_at(const char *path, const void *buf, size_t len, long off);
long file_size(const char *path);

#endif
