/* boot-dump: runs the loaders into a fresh guest memory and writes what a
 * VM would start with, so that another x86 implementation can boot it as
 * an oracle (tests/integration/test_boot_qemu.py boots it on QEMU with
 * the ROM as its BIOS):
 *   OUT/rom.bin     the 64 KiB firmware ROM (stub and its parameters)
 *   OUT/low.bin     guest RAM 0-0x30000: zero page or Multiboot info,
 *                   identity page tables, command line
 *   OUT/kernel.bin  guest RAM [kernel_start, kernel_end)
 *   OUT/initrd.bin  guest RAM [initrd_start, +initrd_size), if any
 * and prints "kernel_start=ADDR initrd_start=ADDR" on stdout.
 * usage: boot-dump OUT MEM_MIB KERNEL INITRD|- CMDLINE [no-decompress] */
#include "boot/boot.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dump(const struct guest_memory *mem, const char *dir, const char *name, uint64_t gpa, uint64_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	const void *p = gmem_ptr(mem, gpa, len);
	FILE *f = fopen(path, "wb");
	if (!p || !f || fwrite(p, 1, len, f) != len) {
		fprintf(stderr, "boot-dump: cannot write %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: boot-dump OUT MEM_MIB KERNEL INITRD|- CMDLINE [no-decompress]\n");
		return 2;
	}
	struct boot_config cfg = { .decompress_kernel = true };
	cfg.kernel = argv[3];
	cfg.initrd = strcmp(argv[4], "-") ? argv[4] : NULL;
	cfg.cmdline = argv[5];
	cfg.decompress_kernel = !(argc > 6 && !strcmp(argv[6], "no-decompress"));
	struct guest_memory mem;
	if (gmem_init(&mem, strtoull(argv[2], NULL, 10) << 20) < 0) {
		fprintf(stderr, "boot-dump: %s\n", err_msg());
		return 1;
	}
	struct boot_info info;
	if (boot_load_mem(&mem, &cfg, NULL, &info) < 0) {
		fprintf(stderr, "boot-dump: %s\n", err_msg());
		return 2;
	}
	const struct gmem_region *rom = gmem_find_region(&mem, GMEM_ROM_BASE);
	if (dump(&mem, argv[1], "rom.bin", rom->gpa, rom->size) < 0 || dump(&mem, argv[1], "low.bin", 0, 0x30000) < 0 ||
	    dump(&mem, argv[1], "kernel.bin", info.kernel_start, info.kernel_end - info.kernel_start) < 0 ||
	    (info.initrd_size && dump(&mem, argv[1], "initrd.bin", info.initrd_start, info.initrd_size) < 0))
		return 1;
	printf("kernel_start=%#llx initrd_start=%#llx compression=%s decompressed=%d\n",
	       (unsigned long long)info.kernel_start, (unsigned long long)info.initrd_start, info.compression,
	       info.decompressed);
	gmem_destroy(&mem);
	return 0;
}
