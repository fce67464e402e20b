#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "machine/memory.h"

Test(memory, layout_small)
{
	struct guest_memory m;
	cr_assert_eq(gmem_init(&m, 64 << 20), 0);
	cr_assert_eq(m.n_regions, 1);
	cr_assert_not_null(gmem_ptr(&m, 0, 64 << 20));
	cr_assert_null(gmem_ptr(&m, (64 << 20) - 1, 2));
	cr_assert_null(gmem_ptr(&m, ~0ull, 2));
	gmem_destroy(&m);
}

Test(memory, split_above_4g_and_copy_across)
{
	struct guest_memory m;
	uint64_t size = GMEM_LOW_RAM_END + (16 << 20);
	cr_assert_eq(gmem_init(&m, size), 0);
	cr_assert_eq(m.n_regions, 2);
	cr_assert_null(gmem_ptr(&m, GMEM_LOW_RAM_END, 1));
	cr_assert_not_null(gmem_ptr(&m, GMEM_HIGH_RAM_BASE + (16 << 20) - 8, 8));
	char buf[16] = "vessel-memory!!";
	cr_assert_eq(gmem_write(&m, 0x1000, buf, sizeof(buf)), 0);
	char out[16];
	cr_assert_eq(gmem_read(&m, 0x1000, out, sizeof(out)), 0);
	cr_assert_eq(memcmp(buf, out, 16), 0);
	cr_assert_eq(gmem_read(&m, GMEM_LOW_RAM_END - 8, out, 16), -EFAULT);
	gmem_destroy(&m);
}
