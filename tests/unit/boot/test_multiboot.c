/* The Multiboot v1 loader against test kernels built with nasm
 * (mb_elf32.asm, mb_elf64.asm, mb_aout.asm). */
#include "boot_test.h"

#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_aout.h"
#include "mb_elf32.h"
#include "mb_elf64.h"

#define MiB (1ull << 20)

static struct guest_memory mem;
static struct boot_config cfg;
static struct boot_info info;

static void teardown(void)
{
	gmem_destroy(&mem);
}

TestSuite(multiboot, .fini = teardown);

static int load(const void *img, size_t len, const char *modules, const char *cmdline)
{
	bt_mem_init(&mem, 32 * MiB);
	bt_config(&cfg, bt_write_file(0, img, len), modules, cmdline);
	return boot_load_mem(&mem, &cfg, NULL, &info);
}

static bool mem_has(uint64_t gpa, uint64_t len, const char *needle)
{
	uint8_t *p = gmem_ptr(&mem, gpa, len);
	return p && memmem(p, len, needle, strlen(needle)) != NULL;
}

static void guest_string(uint64_t gpa, char *out, size_t n)
{
	memset(out, 0, n);
	cr_assert_eq(gmem_read(&mem, gpa, out, n - 1), 0);
}

Test(multiboot, elf32_kernel_with_modules_and_info)
{
	const char *m1 = bt_write_file(2, "first module", 12);
	uint8_t big[5000];
	memset(big, 0x77, sizeof(big));
	const char *m2 = bt_write_file(3, big, sizeof(big));
	char mods[256];
	snprintf(mods, sizeof(mods), "%s arg1 arg2,%s", m1, m2);
	cr_assert_eq(load(mb_elf32, mb_elf32_len, mods, "console=ttyS0 x=1"), 0, "%s", err_msg());
	cr_assert_eq(info.kind, BOOT_KIND_MULTIBOOT);

	/* The ELF segment at its physical address, .bss zeroed after it. */
	cr_assert_eq(bt_rd32(&mem, 0x100000), 0x464c457f);
	cr_assert(mem_has(0x100000, mb_elf32_len, "ELF32-MARK"));
	const uint8_t *bss = gmem_ptr(&mem, 0x100000 + mb_elf32_len, 0x2000);
	for (unsigned i = 0; i < 0x2000; i++)
		cr_assert_eq(bss[i], 0, ".bss byte %#x", i);
	cr_assert_eq(bss[0x2000], 0xaa, "nothing past .bss");
	cr_assert_eq(info.kernel_end, 0x100000 + mb_elf32_len + 0x2000);

	/* Machine state handed over (MB 3.2). */
	cr_assert_eq(info.stub.mode, BOOT_MODE_PROT32);
	cr_assert_eq(info.stub.eax, 0x2badb002);
	cr_assert_eq(info.stub.ebx, BOOT_MB_INFO);
	cr_assert_eq(bt_rd32(&mem, 0x100000 + 0x18), info.stub.entry, "entry = e_entry");
	cr_assert_eq(bt_rd32(&mem, GMEM_ROM_BASE + 4), BOOT_MODE_PROT32);

	/* Information structure (MB 3.3). */
	uint64_t mbi = BOOT_MB_INFO;
	uint32_t flags = bt_rd32(&mem, mbi);
	cr_assert_eq(flags & 0x24d, 0x24d, "mem, cmdline, mods, mmap, loader name: %#x", flags);
	cr_assert_eq(bt_rd32(&mem, mbi + 4), 639);                    /* mem_lower, KiB */
	cr_assert_eq(bt_rd32(&mem, mbi + 8), 31 * 1024);              /* mem_upper, KiB above 1 MiB */
	char s[256];
	guest_string(bt_rd32(&mem, mbi + 16), s, sizeof(s));
	char want[300];
	snprintf(want, sizeof(want), "%s console=ttyS0 x=1", cfg.kernel);
	cr_assert_str_eq(s, want);
	guest_string(bt_rd32(&mem, mbi + 64), s, sizeof(s));
	cr_assert(strncmp(s, "vessel", 6) == 0, "boot loader name %s", s);

	/* Modules: page aligned after the kernel, mod_end exclusive, strings. */
	cr_assert_eq(bt_rd32(&mem, mbi + 20), 2);
	uint64_t mods_addr = bt_rd32(&mem, mbi + 24);
	uint32_t s1 = bt_rd32(&mem, mods_addr), e1 = bt_rd32(&mem, mods_addr + 4);
	uint32_t s2 = bt_rd32(&mem, mods_addr + 16), e2 = bt_rd32(&mem, mods_addr + 20);
	cr_assert_eq(s1 % 4096, 0);
	cr_assert_geq(s1, info.kernel_end);
	cr_assert_eq(e1 - s1, 12);
	cr_assert(mem_has(s1, 12, "first module"));
	cr_assert_eq(s2 % 4096, 0);
	cr_assert_geq(s2, e1);
	cr_assert_eq(e2 - s2, sizeof(big));
	cr_assert_eq(bt_rd32(&mem, s2 + 4996), 0x77777777);
	guest_string(bt_rd32(&mem, mods_addr + 8), s, sizeof(s));
	snprintf(want, sizeof(want), "%s arg1 arg2", m1);
	cr_assert_str_eq(s, want);
	guest_string(bt_rd32(&mem, mods_addr + 24), s, sizeof(s));
	cr_assert_str_eq(s, m2);

	/* Memory map: size field 20, RAM at 0 and 1 MiB. */
	uint32_t len = bt_rd32(&mem, mbi + 44);
	uint64_t mm = bt_rd32(&mem, mbi + 48);
	cr_assert_eq(len % 24, 0);
	cr_assert_geq(len / 24, 4);
	cr_assert_eq(bt_rd32(&mem, mm), 20);
	cr_assert_eq(bt_rd64(&mem, mm + 4), 0);
	cr_assert_eq(bt_rd64(&mem, mm + 12), 0x9fc00);
	cr_assert_eq(bt_rd32(&mem, mm + 20), 1);
	bool found = false;
	for (uint32_t off = 0; off < len; off += 24)
		if (bt_rd64(&mem, mm + off + 4) == 0x100000 && bt_rd32(&mem, mm + off + 20) == 1)
			found = bt_rd64(&mem, mm + off + 12) == 31 * MiB;
	cr_assert(found, "no 31 MiB RAM entry at 1 MiB");
}

Test(multiboot, elf64_container_loads_its_segment)
{
	cr_assert_eq(load(mb_elf64, mb_elf64_len, NULL, NULL), 0, "%s", err_msg());
	cr_assert(mem_has(0x200000, mb_elf64_len, "ELF64-MARK"));
	cr_assert_eq(bt_rd32(&mem, 0x200000 + mb_elf64_len + 0xffc), 0);
	cr_assert_eq(info.stub.entry, bt_rd32(&mem, 0x200000 + 24));
	cr_assert_eq(info.n_modules, 0);
	cr_assert_eq(bt_rd32(&mem, BOOT_MB_INFO + 20), 0);
}

Test(multiboot, aout_kludge_uses_the_address_fields)
{
	cr_assert_eq(load(mb_aout, mb_aout_len, NULL, ""), 0, "%s", err_msg());
	/* Loaded from the start of the file at load_addr, up to load_end. */
	cr_assert_eq(bt_rd32(&mem, 0x200000), 0x90909090);
	cr_assert_eq(bt_rd32(&mem, 0x200010), 0x1badb002);
	cr_assert(mem_has(0x200000, 0x100, "AOUT-MARK"));
	uint64_t load_end = info.kernel_end - 0x1000;
	cr_assert_eq(load_end, 0x200000 + mb_aout_len - 64);
	/* The file's 0xcc tail past load_end_addr is not loaded: .bss is zero. */
	cr_assert_eq(bt_rd32(&mem, load_end), 0);
	cr_assert_eq(bt_rd32(&mem, load_end + 0xffc), 0);
	cr_assert_eq(bt_rd32(&mem, load_end + 0x1000), 0xaaaaaaaa);
	cr_assert_eq(info.stub.entry, bt_rd32(&mem, 0x200010 + 28));
	char s[256];
	guest_string(bt_rd32(&mem, BOOT_MB_INFO + 16), s, sizeof(s));
	cr_assert_str_eq(s, cfg.kernel, "no trailing space for an empty command line");
}

Test(multiboot, header_past_8_kib_is_not_found)
{
	size_t len = 8192 + mb_aout_len;
	uint8_t *img = calloc(1, len);
	memcpy(img + 8192, mb_aout, mb_aout_len);
	cr_assert_eq(load(img, len, NULL, NULL), -ENOEXEC);
	cr_assert(strstr(err_msg(), "first 8 KiB"), "%s", err_msg());
	free(img);
}

Test(multiboot, bad_checksum_is_not_a_header)
{
	uint8_t img[sizeof(mb_aout)];
	memcpy(img, mb_aout, sizeof(img));
	img[0x18] ^= 1;
	cr_assert_eq(load(img, sizeof(img), NULL, NULL), -ENOEXEC);
}

Test(multiboot, unknown_required_feature_is_refused)
{
	uint8_t img[sizeof(mb_aout)];
	memcpy(img, mb_aout, sizeof(img));
	/* Set flags bit 3 and fix the checksum. */
	uint32_t flags, sum;
	memcpy(&flags, img + 0x14, 4);
	memcpy(&sum, img + 0x18, 4);
	flags |= 8;
	sum -= 8;
	memcpy(img + 0x14, &flags, 4);
	memcpy(img + 0x18, &sum, 4);
	cr_assert_lt(load(img, sizeof(img), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "unknown features"), "%s", err_msg());
}

Test(multiboot, aout_asking_for_more_than_the_file_is_truncated)
{
	uint8_t img[sizeof(mb_aout)];
	memcpy(img, mb_aout, sizeof(img));
	uint32_t load_end = 0x200000 + 0x10000;
	memcpy(img + 0x10 + 20, &load_end, 4);
	uint32_t bss_end = load_end + 0x1000;
	memcpy(img + 0x10 + 24, &bss_end, 4);
	cr_assert_lt(load(img, sizeof(img), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "truncated"), "%s", err_msg());
}

Test(multiboot, elf_with_program_headers_outside_the_file)
{
	uint8_t img[sizeof(mb_elf32)];
	memcpy(img, mb_elf32, sizeof(img));
	uint32_t phoff = 0x7fff0000;
	memcpy(img + 28, &phoff, 4);
	cr_assert_lt(load(img, sizeof(img), NULL, NULL), 0);
	cr_assert(strstr(err_msg(), "outside the file"), "%s", err_msg());
}

Test(multiboot, missing_module)
{
	cr_assert_lt(load(mb_elf32, mb_elf32_len, "/nonexistent/mod arg", NULL), 0);
	cr_assert(strstr(err_msg(), "Multiboot module /nonexistent/mod"), "%s", err_msg());
}

/* Deterministic mutations of the ELF and a.out test kernels' headers
 * (ELF header, program header, Multiboot header and address fields):
 * every load succeeds or fails with a message, never a crash (ASan/UBSan
 * in make check). */
Test(multiboot, mutated_headers_never_crash)
{
	uint64_t s = 0x2545f4914f6cdd1dull;
	cr_assert_eq(gmem_init(&mem, 32 * MiB), 0);
	const struct { const uint8_t *p; size_t len; } imgs[] = { { mb_elf32, mb_elf32_len }, { mb_elf64, mb_elf64_len },
								   { mb_aout, mb_aout_len } };
	for (unsigned k = 0; k < 3; k++) {
		uint8_t *copy = malloc(imgs[k].len);
		for (unsigned r = 0; r < 200; r++) {
			memcpy(copy, imgs[k].p, imgs[k].len);
			unsigned n = 1 + (unsigned)(s % 3);
			for (unsigned i = 0; i < n; i++) {
				s ^= s << 13, s ^= s >> 7, s ^= s << 17;
				copy[s % (imgs[k].len < 0x60 ? imgs[k].len : 0x60)] = (uint8_t)(s >> 32);
			}
			/* Keep the Multiboot checksum valid half of the time so the
			 * loader gets past the header search. */
			long h = -1;
			for (size_t o = 0; o + 12 <= imgs[k].len; o += 4)
				if (memcmp(copy + o, "\x02\xb0\xad\x1b", 4) == 0)
					h = (long)o;
			if (h >= 0 && r % 2) {
				uint32_t magic, flags;
				memcpy(&magic, copy + h, 4);
				memcpy(&flags, copy + h + 4, 4);
				uint32_t sum = -(magic + flags);
				memcpy(copy + h + 8, &sum, 4);
			}
			bt_config(&cfg, bt_write_file(0, copy, imgs[k].len), NULL, "x");
			err_clear();
			if (boot_load_mem(&mem, &cfg, NULL, &info) < 0)
				cr_assert(err_msg()[0], "failure without a message");
			bt_config_free(&cfg);
		}
		free(copy);
	}
}
