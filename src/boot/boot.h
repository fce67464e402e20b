/* Boot loaders: put a kernel into guest memory the way a boot loader
 * would, and prepare the firmware ROM whose stub takes the boot processor
 * from the reset vector to the kernel's entry (docs/boot.md).
 *
 * The vCPUs are not touched: the boot processor starts at the reset vector
 * in real mode like hardware (SDM vol. 3A, 9.1.4) and the ROM's stub
 * (stub.asm) switches modes and jumps to the kernel. */
#ifndef VESSEL_BOOT_BOOT_H
#define VESSEL_BOOT_BOOT_H

#include "machine/memory.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What to boot; the VMM fills it from its configuration.  The loaders
 * read the strings and do not keep them. */
struct boot_config {
	char *kernel;           /* bzImage or Multiboot image */
	char *initrd;           /* Linux: initrd; Multiboot: comma-separated modules */
	char *cmdline;
	bool decompress_kernel; /* unpack the bzImage payload on the host */
};

/* Low-memory layout used by the loaders (all below the EBDA at 0x9fc00). */
#define BOOT_STACK_TOP      0x7000ull   /* grows down; stub's initial RSP/ESP */
#define BOOT_ZERO_PAGE      0x7000ull   /* Linux boot_params */
#define BOOT_PML4           0x9000ull   /* identity map: PML4, PDPT, 4 PDs */
#define BOOT_PDPT           0xa000ull
#define BOOT_PD             0xb000ull   /* 4 pages: 4 GiB of 2 MiB pages */
#define BOOT_MB_INFO        0x10000ull  /* Multiboot info, mmap, modules, strings */
#define BOOT_MB_INFO_SIZE   0x10000ull
#define BOOT_CMDLINE        0x20000ull  /* Linux command line */
#define BOOT_CMDLINE_MAX    0x10000ull
#define BOOT_IDENTITY_LIMIT 0x100000000ull

/* Where the kernel asked the firmware to take the CPU. */
enum boot_stub_mode {
	BOOT_MODE_LONG64 = 1,   /* long mode, paging on, RSI = boot_params */
	BOOT_MODE_PROT32 = 2,   /* 32-bit protected mode, paging off, EAX/EBX */
};

/* Parameter block at the start of the ROM, read by stub.asm (P_* offsets). */
struct boot_stub_params {
	uint32_t magic;         /* BOOT_STUB_MAGIC once filled */
	uint32_t mode;          /* enum boot_stub_mode */
	uint32_t cr3;
	uint32_t reserved;
	uint64_t entry;
	uint64_t rsi;
	uint32_t eax, ebx;
	uint64_t stack;
	/* Non-zero: the machine wakes from ACPI S3 and the stub jumps to the
	 * waking vector of the FACS at this address instead (boot_set_resume). */
	uint32_t resume_facs;
} __attribute__((packed));
#define BOOT_STUB_MAGIC 0x544f4f42u  /* "BOOT" */

enum boot_kind { BOOT_KIND_LINUX = 1, BOOT_KIND_MULTIBOOT = 2 };

/* What a loader did; filled for tests, logs and the debugger view. */
struct boot_info {
	enum boot_kind kind;
	struct boot_stub_params stub;
	uint64_t kernel_start, kernel_end;     /* guest-physical, end exclusive */
	uint64_t initrd_start, initrd_size;    /* Linux initrd, or first Multiboot module */
	uint64_t cmdline_gpa;
	bool decompressed;                     /* Linux: payload unpacked on the host */
	char compression[8];                   /* "gzip", "xz", "lz4", "zstd", ... */
	uint16_t protocol;                     /* Linux boot-protocol version */
	unsigned n_modules;                    /* Multiboot */
};

struct boot_options {
	uint64_t rsdp_addr;        /* ACPI RSDP for boot_params, 0 = let the kernel scan */
};

/* Entry point: probes cfg->kernel (bzImage -> Linux boot protocol;
 * Multiboot header in the first 8 KiB -> Multiboot v1), loads it with
 * cfg->initrd and cfg->cmdline into mem, which must already hold RAM
 * (gmem_init), adds the ROM at GMEM_ROM_BASE if absent and fills it.
 * 0 or -errno with err_set(): the message names the file and what was
 * wrong with it.  opt may be NULL. */
int boot_load_mem(struct guest_memory *mem, const struct boot_config *cfg, const struct boot_options *opt,
		  struct boot_info *info);

/* ---- shared by the loaders (boot.c) ---- */

/* e820 types (ACPI 6.5, 15.2 "E820 Address Range Types"). */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_MAX      128

struct boot_e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* The guest's physical memory map: RAM regions usable except the EBDA and
 * the BIOS area 0x9fc00-0xfffff (ACPI tables and the RSDP live there), ECAM
 * and the ROM reserved.  Returns the number of entries (<= max), sorted. */
unsigned boot_build_e820(const struct guest_memory *mem, struct boot_e820 *out, unsigned max);

/* Reads a whole file (at most max_size bytes) into a malloc'd buffer;
 * what names it in messages ("kernel", "initrd"). */
int boot_read_file(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size);

/* Builds the 4 GiB identity map (2 MiB pages) at BOOT_PML4; returns CR3. */
int boot_build_identity_map(struct guest_memory *mem, uint64_t *cr3);

/* Adds the ROM if absent and writes the stub with its parameters. */
int boot_install_rom(struct guest_memory *mem, const struct boot_stub_params *params);

/* Marks the next pass through the reset vector as a wake from ACPI S3:
 * the stub then enters the FACS's firmware waking vector in real mode
 * (ACPI 6.4, 7.4.2.4 and 5.2.10) rather than the kernel.  facs_gpa is
 * below 1 MiB; 0 clears the mark.  The ROM must exist (boot_install_rom). */
int boot_set_resume(struct guest_memory *mem, uint32_t facs_gpa);

/* Highest address + 1 of the RAM region starting at 0 (the low RAM). */
uint64_t boot_low_ram_end(const struct guest_memory *mem);

/* Payload decompression by magic (decompress.c).  Returns 0 and a
 * malloc'd buffer, -ENOTSUP for a format this build cannot unpack (name
 * still set), or -EINVAL with err_set() for corrupt data. */
int boot_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out, size_t *out_len,
		    const char **format);
/* The same into dst, cap bytes the caller owns: -EFBIG when the output
 * would not fit (*out_len then says how much was written). */
int boot_decompress_into(const uint8_t *in, size_t in_len, uint8_t *dst, size_t cap, size_t *out_len,
			 const char **format);

/* ELF loading (elf.c): copies each PT_LOAD segment of image to its
 * physical address (p_paddr), zero-filling up to p_memsz.  Accepts ELF32
 * and ELF64 x86 images.  what names the image in messages. */
struct boot_elf_result {
	uint64_t entry;
	uint64_t lowest, highest;     /* loaded range, end exclusive */
	bool is64;
};
int boot_load_elf(struct guest_memory *mem, const uint8_t *image, size_t size, const char *what,
		  struct boot_elf_result *res);
/* The same for an image that lies in guest RAM at image_gpa (size bytes,
 * where it was decompressed): segments are moved from there to their
 * addresses, and what is left of the image's bytes is zeroed, so that
 * guest memory ends as boot_load_elf() leaves it (segments, nothing
 * else).  Returns 1, having written nothing, when the moves could
 * overwrite a segment not yet moved (the caller then copies the image
 * out and calls boot_load_elf()). */
int boot_load_elf_in_ram(struct guest_memory *mem, uint64_t image_gpa, size_t size, const char *what,
			 struct boot_elf_result *res);
bool boot_is_elf(const uint8_t *image, size_t size);

/* Loaders. */
bool linux_probe(const uint8_t *image, size_t size);
int linux_load(struct guest_memory *mem, const struct boot_config *cfg, const struct boot_options *opt,
	       const uint8_t *image, size_t size, struct boot_info *info);
/* Offset of the Multiboot header in the first 8 KiB, or -1. */
long multiboot_find_header(const uint8_t *image, size_t size);
int multiboot_load(struct guest_memory *mem, const struct boot_config *cfg, const uint8_t *image, size_t size,
		   long header_off, struct boot_info *info);

#endif
