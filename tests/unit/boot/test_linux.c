/* The Linux boot protocol loader against synthetic bzImages built here
 * (a valid setup header around a compressed tiny ELF64 "vmlinux"), and
 * against Debian's kernel from the guest cache when it is there. */
#include "boot_test.h"

#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <unistd.h>
#include <lz4.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define MiB (1ull << 20)
#define SEG_A 0x1000000ull      /* LOAD_PHYSICAL_ADDR */
#define SEG_B 0x1400000ull
#define ENTRY (SEG_A + 0x10)
#define SETUP_SIZE (5 * 512)    /* setup_sects = 4 */
#define PAYLOAD_OFF 0x400

struct buf {
	uint8_t *p;
	size_t len;
};

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* An x86-64 executable's ELF header, entering at ENTRY, with phnum
 * program headers right after it. */
static void put_ehdr(uint8_t *e, unsigned phnum)
{
	memcpy(e, "\x7f" "ELF\x02\x01\x01", 7);
	put16(e + 16, 2);            /* ET_EXEC */
	put16(e + 18, 62);           /* EM_X86_64 */
	put32(e + 20, 1);
	put64(e + 24, ENTRY);
	put64(e + 32, 64);           /* e_phoff */
	put16(e + 52, 64);
	put16(e + 54, 56);
	put16(e + 56, (uint16_t)phnum);
}

/* A tiny vmlinux: ELF64 with a text segment at 16 MiB (0x300 bytes of
 * pattern, 8 KiB in memory: the rest is .bss) and a data segment. */
static struct buf make_vmlinux(void)
{
	size_t len = 0x1000;
	uint8_t *e = calloc(1, len);
	put_ehdr(e, 2);
	uint8_t *ph = e + 64;
	put32(ph, 1);                /* PT_LOAD */
	put64(ph + 8, 0x200);        /* p_offset */
	put64(ph + 16, 0xffffffff81000000ull);
	put64(ph + 24, SEG_A);
	put64(ph + 32, 0x300);
	put64(ph + 40, 0x2000);
	ph += 56;
	put32(ph, 1);
	put64(ph + 8, 0x600);
	put64(ph + 16, 0xffffffff81400000ull);
	put64(ph + 24, SEG_B);
	put64(ph + 32, 0x100);
	put64(ph + 40, 0x100);
	for (unsigned i = 0; i < 0x300; i++)
		e[0x200 + i] = (uint8_t)(i * 7 + 1);
	memset(e + 0x600, 0x5a, 0x100);
	return (struct buf){ e, len };
}

/* The kernel's build appends the uncompressed size (size_append). */
static struct buf with_size(uint8_t *p, size_t len, size_t raw)
{
	put32(p + len, (uint32_t)raw);
	return (struct buf){ p, len + 4 };
}

static struct buf pack(const char *fmt, struct buf in)
{
	size_t cap = in.len * 2 + 1024;
	uint8_t *out = malloc(cap + 4);
	size_t n = 0;
	if (!strcmp(fmt, "gzip")) {
		z_stream zs = { 0 };
		cr_assert_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
		zs.next_in = in.p, zs.avail_in = (uInt)in.len, zs.next_out = out, zs.avail_out = (uInt)cap;
		cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
		n = zs.total_out;
		deflateEnd(&zs);
		return (struct buf){ out, n };      /* gzip's own trailer has the size */
	} else if (!strcmp(fmt, "xz")) {
		cr_assert_eq(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in.p, in.len, out, &n, cap), LZMA_OK);
	} else if (!strcmp(fmt, "lz4")) {
		put32(out, 0x184C2102);              /* legacy frame magic */
		int c = LZ4_compress_default((const char *)in.p, (char *)out + 8, (int)in.len, (int)cap - 8);
		cr_assert_gt(c, 0);
		put32(out + 4, (uint32_t)c);
		n = 8 + (size_t)c;
	} else if (!strcmp(fmt, "zstd")) {
		n = ZSTD_compress(out, cap, in.p, in.len, 19);
		cr_assert(!ZSTD_isError(n));
	} else {
		memcpy(out, in.p, in.len);          /* "bzip2" stand-in: magic only */
		memcpy(out, "BZh9", 4);
		n = in.len;
	}
	return with_size(out, n, in.len);
}

struct hdr_opts {
	uint16_t version;
	uint16_t xloadflags;
	uint8_t loadflags;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
};

static const struct hdr_opts default_hdr = { 0x020f, 0x1 | 0x2, 0x01, 2047, 0x7fffffff };

static struct buf make_bzimage(struct buf payload, const struct hdr_opts *o)
{
	size_t pm = PAYLOAD_OFF + payload.len + 0x100;
	size_t len = SETUP_SIZE + pm;
	uint8_t *k = calloc(1, len);
	k[0x1f1] = 4;                                /* setup_sects */
	put16(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x26c - 0x202;                    /* header length */
	memcpy(k + 0x202, "HdrS", 4);
	put16(k + 0x206, o->version);
	k[0x211] = o->loadflags;
	put32(k + 0x214, 0x100000);                  /* code32_start */
	put32(k + 0x22c, o->initrd_addr_max);
	put32(k + 0x230, 0x200000);                  /* kernel_alignment */
	k[0x234] = 1;                                /* relocatable */
	put16(k + 0x236, o->xloadflags);
	put32(k + 0x238, o->cmdline_size);
	put32(k + 0x248, PAYLOAD_OFF);
	put32(k + 0x24c, (uint32_t)payload.len);
	put64(k + 0x258, SEG_A);                     /* pref_address */
	put32(k + 0x260, 0x800000);                  /* init_size */
	for (size_t i = 0; i < PAYLOAD_OFF; i++)
		k[SETUP_SIZE + i] = (uint8_t)(0x90 + (i & 3));
	memcpy(k + SETUP_SIZE + PAYLOAD_OFF, payload.p, payload.len);
	return (struct buf){ k, len };
}

static struct guest_memory mem;
static struct boot_config cfg;
static struct boot_info info;

static void teardown(void)
{
	gmem_destroy(&mem);
}

TestSuite(linux_boot, .fini = teardown);

static const char *initrd_file(size_t len)
{
	uint8_t *d = malloc(len);
	for (size_t i = 0; i < len; i++)
		d[i] = (uint8_t)(i * 13);
	const char *p = bt_write_file(1, d, len);
	free(d);
	return p;
}

static void load_ok(const char *fmt, bool decompress)
{
	struct buf vml = make_vmlinux();
	struct buf img = make_bzimage(pack(fmt, vml), &default_hdr);
	bt_mem_init(&mem, 64 * MiB);
	bt_config(&cfg, bt_write_file(0, img.p, img.len), initrd_file(300000), "console=ttyS0 vessel.script=ZWNobw==");
	cfg.decompress_kernel = decompress;
	struct boot_options opt = { .rsdp_addr = 0xf5a30 };
	int rc = boot_load_mem(&mem, &cfg, &opt, &info);
	cr_assert_eq(rc, 0, "load failed: %s", err_msg());
	cr_assert_eq(info.kind, BOOT_KIND_LINUX);
	cr_assert_eq(info.protocol, 0x020f);

	/* The zero page: header copied, loader fields filled (boot.rst). */
	uint64_t bp = BOOT_ZERO_PAGE;
	cr_assert_eq(bt_rd32(&mem, bp + 0x202), 0x53726448);    /* "HdrS" */
	cr_assert_eq(bt_rd32(&mem, bp + 0x1fc) >> 16, 0xaa55);
	uint8_t tol;
	gmem_read(&mem, bp + 0x210, &tol, 1);
	cr_assert_eq(tol, 0xff);
	cr_assert_eq(bt_rd32(&mem, bp + 0x228), BOOT_CMDLINE);
	char cmd[64] = { 0 };
	gmem_read(&mem, BOOT_CMDLINE, cmd, sizeof(cmd) - 1);
	cr_assert_str_eq(cmd, "console=ttyS0 vessel.script=ZWNobw==");
	cr_assert_eq(bt_rd64(&mem, bp + 0x070), 0xf5a30);       /* acpi_rsdp_addr */
	cr_assert_eq(bt_rd32(&mem, bp + 0x23c), 0);             /* hardware_subarch */
	cr_assert_eq(bt_rd32(&mem, bp + 0x000), 0);             /* screen_info empty */

	/* initrd: high, page aligned, below the limits, above the kernel. */
	uint32_t rd = bt_rd32(&mem, bp + 0x218), rd_size = bt_rd32(&mem, bp + 0x21c);
	cr_assert_eq(rd_size, 300000);
	cr_assert_eq(rd % 4096, 0);
	cr_assert_leq(rd + rd_size, 64 * MiB);
	cr_assert_gt(rd + rd_size, 64 * MiB - 8192, "initrd not placed high: %#x", rd);
	cr_assert_geq(rd, info.kernel_end);
	uint8_t b[3];
	gmem_read(&mem, rd + 1000, b, 3);
	cr_assert(b[0] == (uint8_t)(1000 * 13) && b[2] == (uint8_t)(1002 * 13));

	/* e820: conventional RAM, EBDA, BIOS area, RAM from 1 MiB, ECAM, ROM. */
	uint8_t n;
	gmem_read(&mem, bp + 0x1e8, &n, 1);
	cr_assert_eq(n, 6);
	struct { uint64_t a, s; uint32_t t; } want[6] = {
		{ 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xe0000, 0x20000, 2 },
		{ 0x100000, 63 * MiB, 1 }, { 0xb0000000, 0x10000000, 2 }, { 0xffff0000, 0x10000, 2 },
	};
	for (unsigned i = 0; i < 6; i++) {
		uint64_t e = bp + 0x2d0 + i * 20;
		cr_assert_eq(bt_rd64(&mem, e), want[i].a, "e820[%u].addr", i);
		cr_assert_eq(bt_rd64(&mem, e + 8), want[i].s, "e820[%u].size", i);
		cr_assert_eq(bt_rd32(&mem, e + 16), want[i].t, "e820[%u].type", i);
	}

	/* The stub's parameters: 64-bit entry, RSI = zero page, identity map. */
	cr_assert_eq(info.stub.mode, BOOT_MODE_LONG64);
	cr_assert_eq(info.stub.rsi, BOOT_ZERO_PAGE);
	cr_assert_eq(info.stub.cr3, BOOT_PML4);
	cr_assert_eq(bt_rd32(&mem, GMEM_ROM_BASE), BOOT_STUB_MAGIC);
	cr_assert_eq(bt_rd32(&mem, GMEM_ROM_BASE + 4), BOOT_MODE_LONG64);
	cr_assert_eq(bt_rd64(&mem, GMEM_ROM_BASE + 16), info.stub.entry);
	cr_assert_eq(bt_rd64(&mem, GMEM_ROM_BASE + 24), BOOT_ZERO_PAGE);
}

static void check_decompressed(const char *fmt)
{
	load_ok(fmt, true);
	cr_assert(info.decompressed);
	cr_assert_str_eq(info.compression, fmt);
	cr_assert_eq(info.stub.entry, ENTRY);
	cr_assert_eq(info.kernel_start, SEG_A);
	/* Segments at their physical addresses, .bss zeroed, nothing else. */
	uint8_t seg[0x2000];
	gmem_read(&mem, SEG_A, seg, sizeof(seg));
	for (unsigned i = 0; i < 0x300; i++)
		cr_assert_eq(seg[i], (uint8_t)(i * 7 + 1), "text byte %u", i);
	for (unsigned i = 0x300; i < 0x2000; i++)
		cr_assert_eq(seg[i], 0, ".bss byte %#x not zeroed", i);
	cr_assert_eq(bt_rd32(&mem, SEG_A + 0x2000), 0xaaaaaaaa);
	cr_assert_eq(bt_rd32(&mem, SEG_B + 0xfc), 0x5a5a5a5a);
	cr_assert_eq(bt_rd32(&mem, SEG_B + 0x100), 0xaaaaaaaa);
}

/* A vmlinux laid out as Linux's is (arch/x86/kernel/vmlinux.lds.S): the
 * first segment at file offset 2 MiB loading at 16 MiB, then segments
 * whose address less their offset differs (the per-CPU data), one with
 * a .bss tail, program headers not in file order, and bytes after the
 * last segment (symbols).  Each segment: {file offset, address, bytes in
 * the file, bytes in memory}, its data i * mul + add. */
static const struct { uint64_t off, paddr, filesz, memsz; uint8_t mul, add; } linux_like[] = {
	{ 0x200000, SEG_A, 0x3000, 0x3000, 7, 1 },
	{ 0x205000, SEG_A + 0x4000, 0x2000, 0x4000, 3, 0x40 },   /* its .bss lands on the next one's bytes */
	{ 0x204000, SEG_A + 0x3000, 0x1000, 0x1000, 5, 0x22 },
};
#define LINUX_LIKE_LEN 0x20a000

static struct buf make_vmlinux_like(const void *segs, unsigned n)
{
	const __typeof__(linux_like[0]) *sg = segs;
	uint8_t *e = calloc(1, LINUX_LIKE_LEN);
	put_ehdr(e, n);
	for (unsigned s = 0; s < n; s++) {
		uint8_t *ph = e + 64 + 56 * s;
		put32(ph, 1);        /* PT_LOAD */
		put64(ph + 8, sg[s].off);
		put64(ph + 16, 0xffffffff80000000ull + sg[s].paddr);
		put64(ph + 24, sg[s].paddr);
		put64(ph + 32, sg[s].filesz);
		put64(ph + 40, sg[s].memsz);
		for (uint64_t i = 0; i < sg[s].filesz; i++)
			e[sg[s].off + i] = (uint8_t)(i * sg[s].mul + sg[s].add);
	}
	memset(e + 0x208000, 0xee, LINUX_LIKE_LEN - 0x208000);   /* "symbols" */
	return (struct buf){ e, LINUX_LIKE_LEN };
}

/* Loads it decompressed and checks guest memory: each segment's bytes
 * at its address, .bss zero, and nothing else of the file anywhere:
 * below the kernel, where it was unpacked from its start, and after
 * it. */
static void check_linux_like(const char *fmt, const void *segs, unsigned n)
{
	const __typeof__(linux_like[0]) *sg = segs;
	struct buf img = make_bzimage(pack(fmt, make_vmlinux_like(segs, n)), &default_hdr);
	bt_mem_init(&mem, 64 * MiB);
	bt_config(&cfg, bt_write_file(0, img.p, img.len), NULL, "console=ttyS0");
	cr_assert_eq(boot_load_mem(&mem, &cfg, NULL, &info), 0, "%s: %s", fmt, err_msg());
	cr_assert(info.decompressed);
	cr_assert_eq(info.stub.entry, ENTRY);
	cr_assert_eq(info.kernel_start, SEG_A);
	uint8_t *b = malloc(0x10000);
	for (unsigned s = 0; s < n; s++) {
		gmem_read(&mem, sg[s].paddr, b, sg[s].memsz);
		for (uint64_t i = 0; i < sg[s].memsz; i++)
			cr_assert_eq(b[i], i < sg[s].filesz ? (uint8_t)(i * sg[s].mul + sg[s].add) : 0,
				     "%s: segment %u byte %#llx", fmt, s, (unsigned long long)i);
	}
	/* Where the file's first 2 MiB were unpacked (bt_mem_init fills RAM
	 * with 0xaa): zero again. */
	for (uint64_t at = SEG_A - 0x200000; at < SEG_A; at += 0x10000) {
		gmem_read(&mem, at, b, 0x10000);
		for (unsigned i = 0; i < 0x10000; i++)
			cr_assert(b[i] == 0, "%s: byte %02x at %#llx, not unpacked there or not cleaned", fmt, b[i],
				  (unsigned long long)(at + i));
	}
	gmem_read(&mem, SEG_A + 0x8000, b, 0x10000);
	for (unsigned i = 0; i < 0x10000; i++)
		cr_assert(b[i] == 0 || b[i] == 0xaa, "%s: file byte %02x left at %#llx", fmt, b[i],
			  (unsigned long long)(SEG_A + 0x8000 + i));
	free(b);
	bt_config_free(&cfg);
	gmem_destroy(&mem);
}

Test(linux_boot, a_vmlinux_laid_out_as_linux_is_placed_whole_by_every_unpacker)
{
	static const char *fmts[] = { "gzip", "xz", "lz4", "zstd" };
	for (unsigned f = 0; f < 4; f++)
		check_linux_like(fmts[f], linux_like, 3);
}

Test(linux_boot, segments_that_cannot_move_in_place_are_placed_all_the_same)
{
	/* The first segment's .bss covers the second's bytes as they lie
	 * in the file: moved in file order, it would wipe them first. */
	static const __typeof__(linux_like[0]) segs[] = {
		{ 0x200000, SEG_A, 0x1000, 0x3000, 7, 1 },
		{ 0x202000, SEG_A + 0x20000, 0x1000, 0x1000, 5, 0x22 },
	};
	check_linux_like("lz4", segs, 2);
	check_linux_like("gzip", segs, 2);
}

Test(linux_boot, gzip_payload_is_unpacked_on_the_host) { check_decompressed("gzip"); }
Test(linux_boot, xz_payload_is_unpacked_on_the_host) { check_decompressed("xz"); }
Test(linux_boot, lz4_payload_is_unpacked_on_the_host) { check_decompressed("lz4"); }
Test(linux_boot, zstd_payload_is_unpacked_on_the_host) { check_decompressed("zstd"); }

Test(linux_boot, without_decompression_the_bzimage_runs_at_pref_address)
{
	load_ok("gzip", false);
	cr_assert_not(info.decompressed);
	cr_assert_eq(info.kernel_start, SEG_A);
	cr_assert_eq(info.stub.entry, SEG_A + 0x200);
	cr_assert_eq(bt_rd32(&mem, SEG_A), 0x93929190);          /* the protected-mode part, as in the file */
	cr_assert_eq(bt_rd32(&mem, BOOT_ZERO_PAGE + 0x214), SEG_A); /* code32_start = where it went */
	cr_assert_geq(info.kernel_end, SEG_A + 0x800000);            /* init_size reserved */
}

Test(linux_boot, unsupported_compression_falls_back_to_the_kernel)
{
	load_ok("bzip2", true);
	cr_assert_not(info.decompressed);
	cr_assert_str_eq(info.compression, "bzip2");
	cr_assert_eq(info.stub.entry, SEG_A + 0x200);
}

Test(linux_boot, identity_map_covers_4_gib_with_2_mib_pages)
{
	load_ok("gzip", true);
	cr_assert_eq(bt_rd64(&mem, BOOT_PML4), BOOT_PDPT | 3);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(bt_rd64(&mem, BOOT_PDPT + 8 * i), (BOOT_PD + 0x1000 * i) | 3);
	cr_assert_eq(bt_rd64(&mem, BOOT_PD + 8 * 8), SEG_A | 0x83);               /* 16 MiB */
	cr_assert_eq(bt_rd64(&mem, BOOT_PD + 3 * 0x1000 + 8 * 511), 0xffe00000ull | 0x83); /* the ROM */
}

/* ---- bad input: one clear message, nothing half done ---- */

static int load_image(struct buf img, const char *initrd, const char *cmdline)
{
	bt_mem_init(&mem, 64 * MiB);
	bt_config(&cfg, bt_write_file(0, img.p, img.len), initrd, cmdline);
	return boot_load_mem(&mem, &cfg, NULL, &info);
}

Test(linux_boot, missing_kernel_file)
{
	bt_mem_init(&mem, 64 * MiB);
	bt_config(&cfg, "/nonexistent/vmlinuz", NULL, NULL);
	cr_assert_lt(boot_load_mem(&mem, &cfg, NULL, &info), 0);
	cr_assert(strstr(err_msg(), "kernel /nonexistent/vmlinuz") && strstr(err_msg(), "No such file"), "%s", err_msg());
}

Test(linux_boot, truncated_setup_header)
{
	struct buf img = make_bzimage(pack("gzip", make_vmlinux()), &default_hdr);
	img.len = 0x240;
	cr_assert_lt(load_image(img, NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "truncated"), "%s", err_msg());
}

Test(linux_boot, not_a_kernel_at_all)
{
	uint8_t junk[16384];
	memset(junk, 0x41, sizeof(junk));
	cr_assert_eq(load_image((struct buf){ junk, sizeof(junk) }, NULL, NULL), -ENOEXEC);
	cr_assert(strstr(err_msg(), "neither a Linux bzImage") && strstr(err_msg(), "Multiboot"), "%s", err_msg());
}

Test(linux_boot, old_protocol_is_refused)
{
	struct hdr_opts o = default_hdr;
	o.version = 0x0206;
	cr_assert_lt(load_image(make_bzimage(pack("gzip", make_vmlinux()), &o), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "2.06 is too old"), "%s", err_msg());
}

Test(linux_boot, kernel_without_64_bit_entry_is_refused)
{
	struct hdr_opts o = default_hdr;
	o.xloadflags = 0;
	cr_assert_lt(load_image(make_bzimage(pack("gzip", make_vmlinux()), &o), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "no 64-bit entry point"), "%s", err_msg());
}

Test(linux_boot, zimage_is_refused)
{
	struct hdr_opts o = default_hdr;
	o.loadflags = 0;
	cr_assert_lt(load_image(make_bzimage(pack("gzip", make_vmlinux()), &o), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "zImage"), "%s", err_msg());
}

Test(linux_boot, corrupt_payload_is_an_error_not_a_fallback)
{
	struct buf p = pack("gzip", make_vmlinux());
	memset(p.p + 20, 0xff, 40);
	cr_assert_lt(load_image(make_bzimage(p, &default_hdr), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "gzip payload is corrupt"), "%s", err_msg());
}

Test(linux_boot, payload_outside_the_file)
{
	struct buf img = make_bzimage(pack("xz", make_vmlinux()), &default_hdr);
	put32(img.p + 0x24c, 0x7fffffff);
	cr_assert_lt(load_image(img, NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "payload") && strstr(err_msg(), "outside the file"), "%s", err_msg());
}

Test(linux_boot, payload_that_is_not_an_elf)
{
	struct buf raw = { calloc(1, 4096), 4096 };
	cr_assert_lt(load_image(make_bzimage(pack("zstd", raw), &default_hdr), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "not an ELF"), "%s", err_msg());
}

Test(linux_boot, segment_outside_guest_ram)
{
	struct buf v = make_vmlinux();
	put64(v.p + 64 + 56 + 24, 0x40000000);       /* data segment at 1 GiB, RAM is 64 MiB */
	cr_assert_lt(load_image(make_bzimage(pack("gzip", v), &default_hdr), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "outside guest RAM"), "%s", err_msg());
}

Test(linux_boot, command_line_longer_than_the_kernel_accepts)
{
	struct hdr_opts o = default_hdr;
	o.cmdline_size = 16;
	cr_assert_eq(load_image(make_bzimage(pack("gzip", make_vmlinux()), &o), NULL, "console=ttyS0 quiet panic=-1"),
		     -E2BIG);
	cr_assert(strstr(err_msg(), "at most 16"), "%s", err_msg());
}

Test(linux_boot, missing_initrd)
{
	cr_assert_lt(load_image(make_bzimage(pack("gzip", make_vmlinux()), &default_hdr), "/nonexistent/initrd", NULL), 0);
	cr_assert(strstr(err_msg(), "initrd /nonexistent/initrd"), "%s", err_msg());
}

Test(linux_boot, initrd_larger_than_ram)
{
	struct hdr_opts o = default_hdr;
	o.initrd_addr_max = 0x1ffffff;                 /* 32 MiB: leaves 8 MiB above the kernel */
	struct buf img = make_bzimage(pack("gzip", make_vmlinux()), &o);
	cr_assert_eq(load_image(img, initrd_file(20 * MiB), NULL), -ENOSPC);
	cr_assert(strstr(err_msg(), "does not fit") && strstr(err_msg(), "more memory"), "%s", err_msg());
}

/* ---- the real thing ---- */

Test(linux_boot, debian_cloud_kernel_from_the_guest_cache)
{
	char path[512];
	const char *cache = getenv("VESSEL_CACHE");
	if (cache)
		snprintf(path, sizeof(path), "%s/vmlinuz", cache);
	else
		snprintf(path, sizeof(path), "%s/.cache/vessel/vmlinuz", getenv("HOME") ? getenv("HOME") : "/");
	if (access(path, R_OK) != 0) {
		cr_skip_test("no %s: run scripts/build-guest to test against Debian's kernel", path);
		return;
	}
	bt_mem_init(&mem, 512 * MiB);
	bt_config(&cfg, path, NULL, "console=ttyS0");
	cr_assert_eq(boot_load_mem(&mem, &cfg, NULL, &info), 0, "%s", err_msg());
	cr_assert(info.decompressed, "Debian's payload (%s) not unpacked", info.compression);
	cr_assert_geq(info.protocol, 0x020f);
	/* x86-64 LOAD_PHYSICAL_ADDR is 16 MiB and the ELF entry is
	 * phys_startup_64 at the start of .text. */
	cr_assert_eq(info.kernel_start, 0x1000000);
	cr_assert_eq(info.stub.entry, 0x1000000);
	cr_assert_gt(info.kernel_end, info.kernel_start + 8 * MiB);
	/* startup_64 (arch/x86/kernel/head_64.S) first sets its stack:
	 * "leaq ...(%rip), %rsp" (48 8d 25), after an endbr64 on IBT builds. */
	uint8_t first[7];
	gmem_read(&mem, info.stub.entry, first, 7);
	const uint8_t *lea = first[0] == 0xf3 && first[1] == 0x0f && first[2] == 0x1e && first[3] == 0xfa ? first + 4 : first;
	cr_assert(lea[0] == 0x48 && lea[1] == 0x8d && lea[2] == 0x25, "startup_64 starts with %02x %02x %02x",
		  first[0], first[1], first[2]);
}

/* ---- hostile images: never a crash, always a verdict ---- */

/* Deterministic mutations of a valid bzImage (setup header, ELF header and
 * program headers inside the payload, payload bytes): every load either
 * succeeds or fails with a message.  Run under ASan/UBSan by make check. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

static void mutate_and_load(struct buf img, size_t lo, size_t hi, unsigned rounds)
{
	uint8_t *copy = malloc(img.len);
	for (unsigned r = 0; r < rounds; r++) {
		memcpy(copy, img.p, img.len);
		unsigned n = 1 + rng() % 4;
		for (unsigned i = 0; i < n; i++) {
			size_t at = lo + rng() % (hi - lo);
			switch (rng() % 3) {
			case 0: copy[at] = (uint8_t)rng(); break;
			case 1: copy[at] ^= (uint8_t)(1u << (rng() % 8)); break;
			default: memset(copy + at, 0xff, at + 4 <= img.len ? 4 : 1); break;
			}
		}
		size_t len = rng() % 8 ? img.len : lo + rng() % (img.len - lo);   /* sometimes truncated */
		bt_config(&cfg, bt_write_file(0, copy, len), NULL, "console=ttyS0");
		cfg.decompress_kernel = rng() % 4 != 0;
		err_clear();
		int rc = boot_load_mem(&mem, &cfg, NULL, &info);
		if (rc < 0)
			cr_assert(err_msg()[0], "failure without a message (round %u)", r);
		bt_config_free(&cfg);
	}
	free(copy);
}

Test(linux_boot, mutated_setup_headers_never_crash)
{
	cr_assert_eq(gmem_init(&mem, 64 * MiB), 0);
	struct buf img = make_bzimage(pack("gzip", make_vmlinux()), &default_hdr);
	mutate_and_load(img, 0x1f1, 0x26c, 300);
}

Test(linux_boot, mutated_vmlinux_headers_never_crash)
{
	cr_assert_eq(gmem_init(&mem, 64 * MiB), 0);
	/* Mutate the ELF before compression so the loader sees the damage. */
	for (unsigned r = 0; r < 150; r++) {
		struct buf v = make_vmlinux();
		unsigned n = 1 + rng() % 3;
		for (unsigned i = 0; i < n; i++)
			v.p[rng() % (64 + 2 * 56)] = (uint8_t)rng();
		struct buf img = make_bzimage(pack(r % 2 ? "lz4" : "zstd", v), &default_hdr);
		bt_config(&cfg, bt_write_file(0, img.p, img.len), NULL, NULL);
		err_clear();
		if (boot_load_mem(&mem, &cfg, NULL, &info) < 0)
			cr_assert(err_msg()[0]);
		bt_config_free(&cfg);
		free(v.p);
		free(img.p);
	}
}

Test(linux_boot, mutated_compressed_payloads_never_crash)
{
	cr_assert_eq(gmem_init(&mem, 64 * MiB), 0);
	const char *fmts[] = { "gzip", "xz", "lz4", "zstd" };
	for (unsigned f = 0; f < 4; f++) {
		struct buf img = make_bzimage(pack(fmts[f], make_vmlinux()), &default_hdr);
		mutate_and_load(img, SETUP_SIZE + PAYLOAD_OFF, img.len, 100);
	}
}
