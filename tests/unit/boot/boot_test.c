#include "boot_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char paths[8][96];

const char *bt_write_file(int slot, const void *data, size_t len)
{
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/vessel-boot-test-XXXXXX");
		cr_assert_not_null(mkdtemp(dir));
	}
	snprintf(paths[slot], sizeof(paths[slot]), "%s/file%d", dir, slot);
	FILE *f = fopen(paths[slot], "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return paths[slot];
}

void bt_mem_init(struct guest_memory *mem, uint64_t ram)
{
	cr_assert_eq(gmem_init(mem, ram), 0);
	for (unsigned i = 0; i < mem->n_regions; i++)
		memset(mem->regions[i].host, 0xaa, mem->regions[i].size > (64u << 20) ? (64u << 20) : mem->regions[i].size);
}

uint32_t bt_rd32(const struct guest_memory *mem, uint64_t gpa)
{
	uint32_t v = 0;
	cr_assert_eq(gmem_read(mem, gpa, &v, 4), 0, "read of %#llx", (unsigned long long)gpa);
	return v;
}

uint64_t bt_rd64(const struct guest_memory *mem, uint64_t gpa)
{
	uint64_t v = 0;
	cr_assert_eq(gmem_read(mem, gpa, &v, 8), 0, "read of %#llx", (unsigned long long)gpa);
	return v;
}

void bt_config(struct boot_config *cfg, const char *kernel, const char *initrd, const char *cmdline)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->decompress_kernel = true;
	cfg->kernel = kernel ? strdup(kernel) : NULL;
	cfg->initrd = initrd ? strdup(initrd) : NULL;
	cfg->cmdline = cmdline ? strdup(cmdline) : NULL;
}

void bt_config_free(struct boot_config *cfg)
{
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->cmdline);
	memset(cfg, 0, sizeof(*cfg));
}
