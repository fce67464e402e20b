/* The VHD driver and tools: dynamic and differencing I/O, persistence,
 * crash states, bad images, check/repair, resize, commit, rebase. */
#include "block/vhd.h"
#include "util/error.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

TestSuite(vhd, .init = tmp_setup, .fini = tmp_teardown);

static const char *mk(const char *name, enum block_subformat sub, uint64_t size, const char *parent)
{
	const char *p = tmp_path(name);
	struct block_create_opts o = { .format = "vhd", .sub = sub, .size = size, .parent = parent,
				       .exact_size = true };
	cr_assert_eq(block_create(p, &o), 0, "create %s: %s", name, err_msg());
	return p;
}

static struct block_dev *op(const char *p, unsigned flags)
{
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, flags, &bd), 0, "open %s: %s", p, err_msg());
	return bd;
}

static void wr(struct block_dev *bd, uint64_t s, uint32_t n, uint64_t seed)
{
	uint8_t *b = malloc((size_t)n * 512);
	pattern_fill(b, s, n, seed);
	cr_assert_eq(block_write(bd, s, b, n), 0, "%s", err_msg());
	free(b);
}

static bool check(struct block_dev *bd, uint64_t s, uint32_t n, uint64_t seed)
{
	uint8_t *b = malloc((size_t)n * 512);
	cr_assert_eq(block_read(bd, s, b, n), 0, "%s", err_msg());
	bool ok = seed ? pattern_check(b, s, n, seed) == 0 : true;
	if (!seed)
		for (size_t i = 0; i < (size_t)n * 512; i++)
			if (b[i])
				ok = false;
	free(b);
	return ok;
}

Test(vhd, dynamic_write_read_across_blocks_and_reopen)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 16 << 20, NULL);
	long before = file_size(p);
	struct block_dev *bd = op(p, 0);
	cr_assert_eq(bd->sectors, 32768);
	cr_assert(check(bd, 0, 64, 0));
	wr(bd, 4090, 12, 5);             /* straddles the 2 MiB block boundary */
	wr(bd, 32760, 8, 6);             /* last sectors */
	cr_assert(check(bd, 4090, 12, 5));
	cr_assert(check(bd, 4080, 10, 0));
	cr_assert_eq(block_flush(bd), 0);
	block_close(bd);
	/* three blocks of bitmap + 2 MiB were appended */
	cr_assert_eq(file_size(p), before + 3 * (512 + (2 << 20)));
	bd = op(p, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 4090, 12, 5));
	cr_assert(check(bd, 32760, 8, 6));
	cr_assert(check(bd, 8192, 64, 0));
	struct vhd_info vi;
	cr_assert_eq(vhd_get_info(bd, &vi), 0);
	cr_assert_eq(vi.meta->blocks_allocated, 3);
	block_close(bd);
	struct vhd_report rep;
	cr_assert_eq(vhd_check(p, 0, &rep, NULL), 0);
	cr_assert_eq(rep.errors + rep.warnings, 0, "%s", rep.msgs[0]);
}

Test(vhd, fixed_image_is_data_then_footer)
{
	const char *p = mk("f.vhd", BLOCK_SUB_FIXED, 1 << 20, NULL);
	cr_assert_eq(file_size(p), (1 << 20) + 512);
	struct block_dev *bd = op(p, 0);
	wr(bd, 100, 4, 2);
	block_close(bd);
	uint8_t raw[2048];
	cr_assert_eq(file_read_at(p, raw, sizeof(raw), 100 * 512), 0);
	cr_assert_eq(pattern_check(raw, 100, 4, 2), 0);
}

Test(vhd, differencing_reads_fall_through_to_the_parent)
{
	const char *base = mk("base.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(base, 0);
	wr(bd, 0, 4096, 1);              /* whole first block */
	wr(bd, 8000, 100, 2);
	block_close(bd);
	const char *mid = mk("mid.vhd", BLOCK_SUB_DIFFERENCING, 0, base);
	bd = op(mid, 0);
	cr_assert_eq(bd->sectors, 16384);
	wr(bd, 10, 5, 3);                /* inside a parent block */
	block_close(bd);
	const char *top = mk("top.vhd", BLOCK_SUB_DIFFERENCING, 0, mid);
	bd = op(top, 0);
	wr(bd, 12, 1, 4);
	cr_assert(check(bd, 0, 10, 1));
	cr_assert(check(bd, 10, 2, 3));
	cr_assert(check(bd, 12, 1, 4));
	cr_assert(check(bd, 13, 2, 3));
	cr_assert(check(bd, 15, 4081, 1));
	cr_assert(check(bd, 8000, 100, 2));
	cr_assert(check(bd, 9000, 100, 0));
	bool alloc;
	uint64_t run;
	cr_assert_eq(vhd_sector_allocated(bd, 12, &alloc, &run), 0);
	cr_assert(alloc && run == 1);
	cr_assert_eq(vhd_sector_allocated(bd, 13, &alloc, &run), 0);
	cr_assert(!alloc);
	block_close(bd);
	/* the parent was not written through the children */
	bd = op(base, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 0, 4096, 1));
	block_close(bd);
}

Test(vhd, differencing_finds_parent_by_relative_locator_after_move)
{
	const char *base = mk("base.vhd", BLOCK_SUB_DYNAMIC, 4 << 20, NULL);
	struct block_dev *bd = op(base, 0);
	wr(bd, 0, 8, 7);
	block_close(bd);
	const char *child = mk("child.vhd", BLOCK_SUB_DIFFERENCING, 0, base);
	/* Move both into a subdirectory: the absolute locator is stale, the
	 * relative one (W2ru) still finds the parent. */
	char dir[512], nb[600], nc[600];
	snprintf(dir, sizeof(dir), "%s", tmp_path("moved"));
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(nb, sizeof(nb), "%s/base.vhd", dir);
	snprintf(nc, sizeof(nc), "%s/child.vhd", dir);
	cr_assert_eq(rename(base, nb), 0);
	cr_assert_eq(rename(child, nc), 0);
	bd = op(nc, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 0, 8, 7));
	struct vhd_info vi;
	cr_assert_eq(vhd_get_info(bd, &vi), 0);
	cr_assert(strstr(vi.parent_path, "moved/base.vhd"), "%s", vi.parent_path);
	block_close(bd);
}

Test(vhd, replaced_parent_is_refused_by_unique_id)
{
	const char *base = mk("base.vhd", BLOCK_SUB_DYNAMIC, 4 << 20, NULL);
	const char *child = mk("child.vhd", BLOCK_SUB_DIFFERENCING, 0, base);
	cr_assert_eq(unlink(base), 0);
	mk("base.vhd", BLOCK_SUB_DYNAMIC, 4 << 20, NULL);
	struct block_dev *bd;
	cr_assert_eq(block_open(child, NULL, BLOCK_OPEN_RDONLY, &bd), -EINVAL);
	cr_assert(strstr(err_msg(), "unique id"), "%s", err_msg());
	cr_assert_eq(block_open(child, NULL, BLOCK_OPEN_RDONLY | BLOCK_OPEN_UNSAFE, &bd), 0);
	block_close(bd);
}

Test(vhd, missing_parent_is_a_clear_error)
{
	const char *base = mk("base.vhd", BLOCK_SUB_DYNAMIC, 4 << 20, NULL);
	const char *child = mk("child.vhd", BLOCK_SUB_DIFFERENCING, 0, base);
	cr_assert_eq(unlink(base), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(child, NULL, BLOCK_OPEN_RDONLY, &bd), -ENOENT);
	cr_assert(strstr(err_msg(), "not found"), "%s", err_msg());
}

Test(vhd, parent_loop_is_refused)
{
	const char *a = mk("a.vhd", BLOCK_SUB_DYNAMIC, 4 << 20, NULL);
	const char *b = mk("b.vhd", BLOCK_SUB_DIFFERENCING, 0, a);
	const char *c = mk("c.vhd", BLOCK_SUB_DIFFERENCING, 0, b);
	/* a becomes a copy of c: b -> a(=c) -> b loops. */
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", c, a);
	cr_assert_eq(system(cmd), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(b, NULL, BLOCK_OPEN_RDONLY | BLOCK_OPEN_UNSAFE, &bd), -ELOOP, "%s", err_msg());
	cr_assert(strstr(err_msg(), "loop"), "%s", err_msg());
	/* and the tools refuse to make one */
	cr_assert_eq(vhd_rebase(b, c, true, NULL, NULL), -ELOOP);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void expect_open_fails(const char *p, int err, const char *words)
{
	struct block_dev *bd;
	int ret = block_open(p, "vhd", BLOCK_OPEN_RDONLY, &bd);
	cr_assert_eq(ret, err, "ret %d: %s", ret, err_msg());
	cr_assert(strstr(err_msg(), words), "message: %s", err_msg());
	struct vhd_report rep;
	ret = vhd_check(p, 0, &rep, NULL);
	cr_assert(ret < 0 || rep.errors > 0);
}

Test(vhd, bat_entry_outside_the_file_is_refused)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	uint8_t e[4];
	put_be32(e, 0x00ffffff);
	cr_assert_eq(file_write_at(p, e, 4, 1536 + 4), 0);
	expect_open_fails(p, -EINVAL, "outside the file");
}

Test(vhd, overlapping_blocks_are_refused)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(p, 0);
	wr(bd, 0, 1, 1);
	block_close(bd);
	uint8_t e[4];
	cr_assert_eq(file_read_at(p, e, 4, 1536), 0);
	cr_assert_eq(file_write_at(p, e, 4, 1536 + 8), 0);   /* entry 2 = entry 0 */
	expect_open_fails(p, -EINVAL, "overlap");
	put_be32(e, 1);                                     /* into the header */
	cr_assert_eq(file_write_at(p, e, 4, 1536 + 8), 0);
	expect_open_fails(p, -EINVAL, "metadata");
}

Test(vhd, bad_header_checksum_is_refused)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	uint8_t b = 0x55;
	cr_assert_eq(file_write_at(p, &b, 1, 512 + 100), 0);
	expect_open_fails(p, -EBADMSG, "checksum");
}

Test(vhd, absurd_sizes_are_refused)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	/* a header claiming 2^32-1 BAT entries: beyond the file */
	uint8_t h[1024];
	cr_assert_eq(file_read_at(p, h, sizeof(h), 512), 0);
	put_be32(h + 28, 0xffffffff);
	put_be32(h + 36, vhd_checksum(h, sizeof(h), 36));
	cr_assert_eq(file_write_at(p, h, sizeof(h), 512), 0);
	expect_open_fails(p, -EINVAL, "entries");
	/* within the supported count but beyond the file */
	put_be32(h + 28, 1u << 20);
	put_be32(h + 36, vhd_checksum(h, sizeof(h), 36));
	cr_assert_eq(file_write_at(p, h, sizeof(h), 512), 0);
	expect_open_fails(p, -EINVAL, "outside the file");
	struct block_create_opts o = { .format = "vhd", .size = 4ull << 40 };
	cr_assert_eq(block_create(tmp_path("huge.vhd"), &o), -EINVAL);
}

Test(vhd, truncated_files_are_refused)
{
	const char *p = mk("f.vhd", BLOCK_SUB_FIXED, 1 << 20, NULL);
	cr_assert_eq(truncate(p, 1000), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(p, "vhd", BLOCK_OPEN_RDONLY, &bd), -EINVAL);
	cr_assert_eq(truncate(p, 100), 0);
	cr_assert_eq(block_open(p, "vhd", BLOCK_OPEN_RDONLY, &bd), -EINVAL);
	const char *d = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	bd = op(d, 0);
	wr(bd, 0, 8, 1);
	block_close(bd);
	cr_assert_eq(truncate(d, file_size(d) - 4096), 0);   /* the block's tail and the footer */
	cr_assert_eq(block_open(d, "vhd", BLOCK_OPEN_RDONLY, &bd), -EINVAL);
	cr_assert(strstr(err_msg(), "outside the file"), "%s", err_msg());
}

/* The states a killed writer can leave (vhd.c's allocation order) are
 * valid images; check reports leaked space and repair removes it. */
Test(vhd, interrupted_allocation_leaves_a_valid_image)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(p, 0);
	wr(bd, 0, 8, 1);
	block_close(bd);
	long size = file_size(p);
	uint8_t footer[512];
	cr_assert_eq(file_read_at(p, footer, 512, size - 512), 0);
	/* step 1 done (footer one block further), nothing else */
	long grown = size + 512 + (2 << 20);
	cr_assert_eq(file_write_at(p, footer, 512, grown - 512), 0);
	struct vhd_report rep;
	struct vhd_meta m;
	cr_assert_eq(vhd_check(p, 0, &rep, &m), 0);
	cr_assert_eq(rep.errors, 0, "%s", rep.msgs[0]);
	cr_assert_eq(m.leaked_bytes, (uint64_t)(512 + (2 << 20)));
	vhd_meta_free(&m);
	/* step 2 too: the bitmap over the old footer */
	uint8_t bm[512];
	memset(bm, 0xff, sizeof(bm));
	cr_assert_eq(file_write_at(p, bm, 512, size - 512), 0);
	cr_assert_eq(vhd_check(p, 0, &rep, NULL), 0);
	cr_assert_eq(rep.errors, 0, "%s", rep.msgs[0]);
	bd = op(p, 0);
	cr_assert(check(bd, 0, 8, 1));
	wr(bd, 5000, 8, 2);               /* allocation after the leak works */
	block_close(bd);
	cr_assert_eq(vhd_check(p, VHD_CHECK_REPAIR, &rep, &m), 0);
	cr_assert_eq(m.leaked_bytes, 0);
	vhd_meta_free(&m);
	/* the leak stays mid-file: the new block went after it */
	cr_assert_eq(file_size(p), grown + 512 + (2 << 20));
	bd = op(p, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 0, 8, 1));
	cr_assert(check(bd, 5000, 8, 2));
	block_close(bd);
}

Test(vhd, repair_restores_footer_and_copy_and_drops_leak)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(p, 0);
	wr(bd, 0, 8, 1);
	block_close(bd);
	long size = file_size(p);
	uint8_t junk[512];
	memset(junk, 0x5a, sizeof(junk));
	/* damaged end footer: read-only open uses the copy, writing is refused */
	cr_assert_eq(file_write_at(p, junk, 512, size - 512), 0);
	cr_assert_eq(block_open(p, NULL, BLOCK_OPEN_RDONLY, &bd), 0, "%s", err_msg());
	cr_assert(check(bd, 0, 8, 1));
	block_close(bd);
	cr_assert_eq(block_open(p, NULL, 0, &bd), -EINVAL);
	struct vhd_report rep;
	cr_assert_eq(vhd_check(p, 0, &rep, NULL), 0);
	cr_assert_eq(rep.errors, 1);
	cr_assert(rep.repairable);
	cr_assert_eq(vhd_check(p, VHD_CHECK_REPAIR, &rep, NULL), 0);
	cr_assert_eq(rep.errors + rep.warnings, 0, "%s", rep.msgs[0]);
	cr_assert_eq(file_size(p), size);
	/* damaged copy */
	cr_assert_eq(file_write_at(p, junk, 512, 0), 0);
	cr_assert_eq(vhd_check(p, 0, &rep, NULL), 0);
	cr_assert_eq(rep.errors, 1);
	cr_assert_eq(vhd_check(p, VHD_CHECK_REPAIR, &rep, NULL), 0);
	cr_assert_eq(rep.errors, 0);
	bd = op(p, 0);
	cr_assert(check(bd, 0, 8, 1));
	block_close(bd);
}

Test(vhd, check_without_repair_never_writes)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	uint8_t junk[512];
	memset(junk, 0x5a, sizeof(junk));
	cr_assert_eq(file_write_at(p, junk, 512, 0), 0);
	uint8_t before[512], after[512];
	cr_assert_eq(file_read_at(p, before, 512, 0), 0);
	struct vhd_report rep;
	cr_assert_eq(vhd_check(p, 0, &rep, NULL), 0);
	cr_assert_eq(file_read_at(p, after, 512, 0), 0);
	cr_assert_eq(memcmp(before, after, 512), 0);
}

Test(vhd, resize_grows_keeping_data_and_refuses_silent_shrink)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 4 << 20, NULL);
	struct block_dev *bd = op(p, 0);
	wr(bd, 100, 8, 1);
	block_close(bd);
	/* 4 MiB -> 1 GiB: the BAT outgrows its padding and moves */
	cr_assert_eq(vhd_resize(p, 1ull << 30, false), 0, "%s", err_msg());
	bd = op(p, 0);
	cr_assert_eq(bd->sectors, 2097152);
	cr_assert(check(bd, 100, 8, 1));
	wr(bd, 2097152 - 8, 8, 2);
	block_close(bd);
	struct vhd_report rep;
	cr_assert_eq(vhd_check(p, 0, &rep, NULL), 0);
	cr_assert_eq(rep.errors, 0, "%s", rep.msgs[0]);
	cr_assert_eq(vhd_resize(p, 2 << 20, false), -EINVAL);
	cr_assert_eq(vhd_resize(p, 2 << 20, true), 0);
	bd = op(p, BLOCK_OPEN_RDONLY);
	cr_assert_eq(bd->sectors, 4096);
	cr_assert(check(bd, 100, 8, 1));
	block_close(bd);
	const char *f = mk("f.vhd", BLOCK_SUB_FIXED, 1 << 20, NULL);
	bd = op(f, 0);
	wr(bd, 2040, 8, 3);
	block_close(bd);
	cr_assert_eq(vhd_resize(f, 2 << 20, false), 0);
	bd = op(f, BLOCK_OPEN_RDONLY);
	cr_assert_eq(bd->sectors, 4096);
	cr_assert(check(bd, 2040, 8, 3));
	cr_assert(check(bd, 2048, 2048, 0));   /* the old footer is gone from the data */
	block_close(bd);
}

Test(vhd, commit_moves_child_sectors_into_the_parent)
{
	const char *base = mk("base.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(base, 0);
	wr(bd, 0, 64, 1);
	block_close(bd);
	const char *child = mk("child.vhd", BLOCK_SUB_DIFFERENCING, 0, base);
	bd = op(child, 0);
	wr(bd, 8, 8, 2);
	wr(bd, 10000, 8, 3);
	block_close(bd);
	cr_assert_eq(vhd_commit(child, NULL, NULL), 0, "%s", err_msg());
	bd = op(base, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 0, 8, 1));
	cr_assert(check(bd, 8, 8, 2));
	cr_assert(check(bd, 16, 48, 1));
	cr_assert(check(bd, 10000, 8, 3));
	block_close(bd);
	bd = op(child, BLOCK_OPEN_RDONLY);    /* the child still opens and reads the same */
	cr_assert(check(bd, 8, 8, 2));
	block_close(bd);
	cr_assert_eq(vhd_commit(base, NULL, NULL), -EINVAL);
}

Test(vhd, safe_rebase_keeps_content_unsafe_only_relinks)
{
	const char *a = mk("a.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	const char *b = mk("b.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(a, 0);
	wr(bd, 0, 16, 1);
	block_close(bd);
	bd = op(b, 0);
	wr(bd, 0, 8, 9);
	block_close(bd);
	const char *c = mk("c.vhd", BLOCK_SUB_DIFFERENCING, 0, a);
	bd = op(c, 0);
	wr(bd, 4, 2, 5);
	block_close(bd);
	cr_assert_eq(vhd_rebase(c, b, false, NULL, NULL), 0, "%s", err_msg());
	bd = op(c, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 0, 4, 1));
	cr_assert(check(bd, 4, 2, 5));
	cr_assert(check(bd, 6, 10, 1));
	cr_assert(check(bd, 16, 100, 0));
	struct vhd_info vi;
	cr_assert_eq(vhd_get_info(bd, &vi), 0);
	cr_assert(strstr(vi.parent_path, "b.vhd"));
	block_close(bd);
	struct vhd_report rep;
	cr_assert_eq(vhd_check(c, 0, &rep, NULL), 0);
	cr_assert_eq(rep.errors, 0, "%s", rep.msgs[0]);
	/* unsafe: back to a without copying: the view changes to a's */
	cr_assert_eq(vhd_rebase(c, a, true, NULL, NULL), 0, "%s", err_msg());
	bd = op(c, BLOCK_OPEN_RDONLY);
	cr_assert(check(bd, 0, 4, 1));      /* copied into c by the safe rebase */
	cr_assert(check(bd, 4, 2, 5));
	block_close(bd);
}

Test(vhd, discard_reads_back_zeros)
{
	const char *p = mk("d.vhd", BLOCK_SUB_DYNAMIC, 8 << 20, NULL);
	struct block_dev *bd = op(p, 0);
	wr(bd, 0, 64, 1);
	cr_assert_eq(block_discard(bd, 8, 16), 0);
	cr_assert(check(bd, 0, 8, 1));
	cr_assert(check(bd, 8, 16, 0));
	cr_assert(check(bd, 24, 40, 1));
	block_close(bd);
}
