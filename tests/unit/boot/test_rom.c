/* The firmware ROM: where it sits, what the reset vector does, and the
 * parameter block the stub reads. */
#include "boot_test.h"

#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>

static struct guest_memory mem;

static void teardown(void)
{
	gmem_destroy(&mem);
}

TestSuite(boot_rom, .fini = teardown);

Test(boot_rom, rom_is_mapped_read_only_at_the_top_of_4_gib)
{
	bt_mem_init(&mem, 32 << 20);
	struct boot_stub_params p = { .magic = BOOT_STUB_MAGIC, .mode = BOOT_MODE_PROT32, .entry = 0x100000,
				      .eax = 0x2badb002, .ebx = 0x10000, .stack = 0x7000 };
	cr_assert_eq(boot_install_rom(&mem, &p), 0, "%s", err_msg());
	cr_assert(gmem_is_rom(&mem, 0xffff0000));
	cr_assert(gmem_is_rom(&mem, 0xffffffff));
	cr_assert_not(gmem_is_rom(&mem, 0xfffeffff));
	cr_assert_not(gmem_is_rom(&mem, 0x1000));
	cr_assert_eq(mem.ram_size, 32u << 20, "the ROM is not RAM");
	/* Reset vector, SDM vol. 3A 9.1.4: 0xfffffff0 holds a near jump
	 * (E9 rel16) whose 16-bit target, wrapping within CS, is in the ROM's
	 * code after the parameter block and the GDT. */
	uint8_t rv[3];
	cr_assert_eq(gmem_read(&mem, 0xfffffff0, rv, 3), 0);
	cr_assert_eq(rv[0], 0xe9);
	uint16_t target = (uint16_t)(0xfff3 + (rv[1] | rv[2] << 8));
	cr_assert_gt(target, 0x40);
	cr_assert_lt(target, 0x200);
	uint8_t first;
	gmem_read(&mem, 0xffff0000 + target, &first, 1);
	cr_assert_eq(first, 0xfa, "the stub starts with cli");
	/* Parameters land where stub.asm reads them (P_* offsets). */
	cr_assert_eq(bt_rd32(&mem, 0xffff0000), BOOT_STUB_MAGIC);
	cr_assert_eq(bt_rd32(&mem, 0xffff0004), BOOT_MODE_PROT32);
	cr_assert_eq(bt_rd64(&mem, 0xffff0010), 0x100000);
	cr_assert_eq(bt_rd32(&mem, 0xffff0020), 0x2badb002);
	cr_assert_eq(bt_rd32(&mem, 0xffff0024), 0x10000);
	cr_assert_eq(bt_rd64(&mem, 0xffff0028), 0x7000);
	/* The GDT the stub loads: 32-bit code at 0x08, 64-bit code at 0x10
	 * (__BOOT_CS), flat data at 0x18 (__BOOT_DS), boot.rst. */
	cr_assert_eq(bt_rd64(&mem, 0xffff0048), 0x00cf9b000000ffffull);
	cr_assert_eq(bt_rd64(&mem, 0xffff0050), 0x00af9b000000ffffull);
	cr_assert_eq(bt_rd64(&mem, 0xffff0058), 0x00cf93000000ffffull);
}

Test(boot_rom, second_install_reuses_the_rom)
{
	bt_mem_init(&mem, 32 << 20);
	struct boot_stub_params p = { .magic = BOOT_STUB_MAGIC, .mode = BOOT_MODE_LONG64 };
	cr_assert_eq(boot_install_rom(&mem, &p), 0);
	unsigned n = mem.n_regions;
	p.mode = BOOT_MODE_PROT32;
	cr_assert_eq(boot_install_rom(&mem, &p), 0);
	cr_assert_eq(mem.n_regions, n);
	cr_assert_eq(bt_rd32(&mem, 0xffff0004), BOOT_MODE_PROT32);
}

Test(boot_rom, rom_over_ram_is_refused)
{
	bt_mem_init(&mem, 32 << 20);
	cr_assert_eq(gmem_add_rom(&mem, 0x100000, 0x10000, NULL), -EEXIST);
	cr_assert_eq(gmem_add_rom(&mem, 0xfffe0000, 0, NULL), -EINVAL);
}

Test(boot_rom, e820_with_ram_above_4_gib)
{
	cr_assert_eq(gmem_init(&mem, 0xc0000000ull), 0);   /* 3 GiB: 2.75 low + 256 MiB high */
	struct boot_e820 map[E820_MAX];
	unsigned n = boot_build_e820(&mem, map, E820_MAX);
	cr_assert_eq(n, 6);
	cr_assert_eq(map[3].addr, 0x100000);
	cr_assert_eq(map[3].size, 0xb0000000ull - 0x100000);
	cr_assert_eq(map[4].addr, 0xb0000000ull);
	cr_assert_eq(map[4].type, E820_RESERVED);
	cr_assert_eq(map[5].addr, 0x100000000ull);
	cr_assert_eq(map[5].size, 0x10000000ull);
	cr_assert_eq(map[5].type, E820_RAM);
}
