/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst, cited as
 * boot.rst below): read the bzImage's setup header, place the kernel, the
 * initrd and the command line, and build the zero page (struct
 * boot_params, arch/x86/include/uapi/asm/bootparam.h) with the e820 map.
 *
 * Two ways to place the kernel, both entered through the 64-bit boot
 * protocol (long mode, identity-mapped, RSI = boot_params, boot.rst
 * "64-bit Boot Protocol"):
 *  - host-side decompression (default): the payload (payload_offset and
 *    payload_length, protocol 2.08+) is the compressed vmlinux ELF; unpack
 *    it here and load its segments at their physical addresses (the
 *    kernel's LOAD_PHYSICAL_ADDR), entering at the ELF entry, startup_64,
 *    as the kernel's own decompressor does after extract_kernel().  Loaded
 *    at its link-time address, the kernel needs no relocation.
 *  - in-guest decompression (decompress_kernel = false, or a compression
 *    this build cannot unpack): load the protected-mode part at
 *    pref_address (relocatable kernels) or code32_start, and enter its
 *    64-bit entry at load address + 0x200 (boot.rst, "64-bit Boot
 *    Protocol": "the 64-bit entry point is at 0x200 from the start"). */
#include "boot/boot.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Setup header fields: offsets in the image and in boot_params (boot.rst,
 * "The Real-Mode Kernel Header"). */
#define HDR_SETUP_SECTS      0x1f1
#define HDR_BOOT_FLAG        0x1fe
#define HDR_JUMP             0x200
#define HDR_HEADER           0x202
#define HDR_VERSION          0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS        0x211
#define HDR_CODE32_START     0x214
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE      0x234
#define HDR_XLOADFLAGS       0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_HARDWARE_SUBARCH 0x23c
#define HDR_HW_SUBARCH_DATA  0x240
#define HDR_PAYLOAD_OFFSET   0x248
#define HDR_PAYLOAD_LENGTH   0x24c
#define HDR_SETUP_DATA       0x250
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE        0x260
#define HDR_END_2_12         0x26c

/* boot_params fields outside the header (Documentation/arch/x86/zero-page.rst). */
#define BP_ACPI_RSDP_ADDR    0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_E820_TABLE        0x2d0
#define BP_SIZE              0x1000

#define LOADED_HIGH    0x01   /* loadflags bit 0: protected-mode code at 0x100000 (bzImage) */
#define XLF_KERNEL_64  0x01   /* xloadflags bit 0: has the 64-bit entry at +0x200 */

#define LINUX_KERNEL_MAX (512ull << 20)   /* bound on the decompressed vmlinux */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

bool linux_probe(const uint8_t *image, size_t size)
{
	return size >= HDR_HEADER + 4 && memcmp(image + HDR_HEADER, "HdrS", 4) == 0 &&
	       le16(image + HDR_BOOT_FLAG) == 0xaa55;
}

struct linux_hdr {
	uint16_t version;
	uint8_t loadflags, relocatable;
	uint16_t xloadflags;
	size_t setup_size;               /* real-mode part, (setup_sects + 1) * 512 */
	uint32_t code32_start, kernel_alignment, initrd_addr_max, cmdline_size, init_size;
	uint32_t payload_offset, payload_length;
	uint64_t pref_address;
};

static int parse_header(const char *path, const uint8_t *image, size_t size, struct linux_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (size < HDR_END_2_12)
		return err_set(-ENOEXEC, "kernel %s: truncated (%zu bytes, shorter than the setup header)", path, size);
	h->version = le16(image + HDR_VERSION);
	if (h->version < 0x020c)
		return err_set(-ENOEXEC, "kernel %s: boot protocol %u.%02u is too old; vessel needs 2.12 or later "
			       "(64-bit entry point and xloadflags, Linux 3.8+)", path, h->version >> 8, h->version & 0xff);
	unsigned sects = image[HDR_SETUP_SECTS] ? image[HDR_SETUP_SECTS] : 4;   /* boot.rst: 0 means 4 */
	h->setup_size = (size_t)(sects + 1) * 512;
	if (h->setup_size >= size)
		return err_set(-ENOEXEC, "kernel %s: truncated: setup_sects says %zu bytes of setup code but the file has %zu",
			       path, h->setup_size, size);
	h->loadflags = image[HDR_LOADFLAGS];
	h->relocatable = image[HDR_RELOCATABLE];
	h->xloadflags = le16(image + HDR_XLOADFLAGS);
	h->code32_start = le32(image + HDR_CODE32_START);
	h->kernel_alignment = le32(image + HDR_KERNEL_ALIGNMENT);
	h->initrd_addr_max = le32(image + HDR_INITRD_ADDR_MAX);
	h->cmdline_size = le32(image + HDR_CMDLINE_SIZE);
	h->init_size = le32(image + HDR_INIT_SIZE);
	h->payload_offset = le32(image + HDR_PAYLOAD_OFFSET);
	h->payload_length = le32(image + HDR_PAYLOAD_LENGTH);
	h->pref_address = le64(image + HDR_PREF_ADDRESS);
	if (!(h->loadflags & LOADED_HIGH))
		return err_set(-ENOEXEC, "kernel %s: a zImage (loaded low); only bzImage kernels are supported", path);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return err_set(-ENOEXEC, "kernel %s: has no 64-bit entry point (xloadflags %#x): not an x86-64 kernel",
			       path, h->xloadflags);
	if (h->kernel_alignment && (h->kernel_alignment & (h->kernel_alignment - 1)))
		return err_set(-ENOEXEC, "kernel %s: kernel_alignment %#x is not a power of two", path, h->kernel_alignment);
	if (h->cmdline_size == 0)
		return err_set(-ENOEXEC, "kernel %s: cmdline_size is 0", path);
	return 0;
}

/* The protected-mode kernel as the bzImage carries it, for in-guest
 * decompression.  The 64-bit entry needs no fixed address when the kernel
 * is relocatable; pref_address is where it runs without moving itself. */
static int place_compressed(struct guest_memory *mem, const char *path, const struct linux_hdr *h,
			    const uint8_t *image, size_t size, struct boot_info *info)
{
	uint64_t pm_size = size - h->setup_size;
	uint64_t load = h->code32_start ? h->code32_start : 0x100000;
	if (h->relocatable) {
		uint64_t align = h->kernel_alignment ? h->kernel_alignment : 0x200000;
		load = h->pref_address ? h->pref_address : 0x1000000;
		load = (load + align - 1) & ~(align - 1);
	}
	uint64_t span = h->init_size > pm_size ? h->init_size : pm_size;
	if (load < 0x100000 || !gmem_ptr(mem, load, span))
		return err_set(-ENOSPC, "kernel %s: needs RAM at %#llx-%#llx (init_size): give the VM more memory",
			       path, (unsigned long long)load, (unsigned long long)(load + span));
	memcpy(gmem_ptr(mem, load, pm_size), image + h->setup_size, pm_size);
	info->kernel_start = load;
	info->kernel_end = load + span;
	info->stub.entry = load + 0x200;
	return 0;
}

/* Where the vmlinux is decompressed in guest RAM, so that its segments
 * are mostly in place already: its first segment is at file offset
 * 2 MiB (x86-64 segments are 2 MiB aligned, arch/x86/kernel/vmlinux.lds.S)
 * and loads at LOAD_PHYSICAL_ADDR, which pref_address is.  Only a guess:
 * boot_load_elf_in_ram() moves whatever is not in place.  The window is
 * as long as the vmlinux says it is (the payload's last 4 bytes, which
 * every format's payload ends with, scripts/Makefile.lib size_append),
 * so that no decoder writes past it (LZ4's copies run ahead of its
 * output within the room it is given).  0 when that does not fit above
 * 1 MiB, below which the boot data lives. */
static uint64_t unpack_window(const struct guest_memory *mem, const struct linux_hdr *h, const uint8_t *payload,
			      uint64_t *len)
{
	uint64_t first = h->pref_address ? h->pref_address : 0x1000000;
	uint64_t end = boot_low_ram_end(mem);
	*len = h->payload_length >= 4 ? le32(payload + h->payload_length - 4) : 0;
	if (first < 0x300000 || first >= end || *len == 0 || *len > end - (first - 0x200000))
		return 0;
	return first - 0x200000;
}

/* The payload unpacked straight into guest RAM and its segments moved
 * to their places there: no host buffer the size of the vmlinux to
 * fault in, fill and copy out, which took a sixth of the host CPU time
 * of a Debian boot.  1: loaded; 0: not done this way (no window, a
 * vmlinux other than its stated size, moves that do not fit in place),
 * the window zeroed again; -ENOTSUP: a compression not unpacked here;
 * or an error, the window zeroed again too. */
static int unpack_in_ram(struct guest_memory *mem, const struct linux_hdr *h, const uint8_t *payload,
			 const char *path, const char *what, struct boot_elf_result *res, const char **format)
{
	uint64_t cap, at = unpack_window(mem, h, payload, &cap);
	uint8_t *dst = at ? gmem_ptr(mem, at, cap) : NULL;
	if (!dst)
		return 0;
	size_t len;
	int rc = boot_decompress_into(payload, h->payload_length, dst, cap, &len, format);
	if (rc == -ENOTSUP)
		return rc;   /* nothing written */
	if (rc == 0 && len != cap)
		rc = -EFBIG;   /* not the size it says: the host buffer's way */
	else if (rc < 0 && rc != -EFBIG)
		rc = err_wrap(rc, "kernel %s", path);
	if (rc == 0 && (rc = boot_load_elf_in_ram(mem, at, len, what, res)) == 0) {
		log_debug("boot", "%s: %zu bytes unpacked in guest RAM at %#llx", what, len, (unsigned long long)at);
		return 1;
	}
	memset(dst, 0, cap);
	return rc == -EFBIG || rc == 1 ? 0 : rc;
}

/* The payload unpacked into a host buffer and its segments copied out. */
static int unpack_in_buffer(struct guest_memory *mem, const struct linux_hdr *h, const uint8_t *payload,
			    const char *path, const char *what, struct boot_elf_result *res, const char **format)
{
	uint8_t *elf;
	size_t elf_len;
	uint64_t max_out = mem->ram_size < LINUX_KERNEL_MAX ? mem->ram_size : LINUX_KERNEL_MAX;
	int rc = boot_decompress(payload, h->payload_length, max_out, &elf, &elf_len, format);
	if (rc == -ENOTSUP)
		return rc;
	if (rc < 0)
		return err_wrap(rc, "kernel %s", path);
	rc = boot_load_elf(mem, elf, elf_len, what, res);
	free(elf);
	return rc;
}

/* Returns 1 when it loaded the unpacked vmlinux, 0 when the payload's
 * compression is not one the host unpacks (the caller falls back). */
static int place_decompressed(struct guest_memory *mem, const char *path, const struct linux_hdr *h,
			      const uint8_t *image, size_t size, struct boot_info *info)
{
	uint64_t off = h->setup_size + (uint64_t)h->payload_offset;
	if (h->payload_length == 0 || off > size || size - off < h->payload_length)
		return err_set(-ENOEXEC, "kernel %s: payload (offset %#x, %u bytes) lies outside the file", path,
			       h->payload_offset, h->payload_length);
	char what[PATH_MAX + 64];   /* the whole path: messages never cut it */
	snprintf(what, sizeof(what), "kernel %s (decompressed vmlinux)", path);
	struct boot_elf_result res;
	const char *format = "unknown";
	int rc = unpack_in_ram(mem, h, image + off, path, what, &res, &format);
	if (rc == 0)
		rc = unpack_in_buffer(mem, h, image + off, path, what, &res, &format);
	snprintf(info->compression, sizeof(info->compression), "%s", format);
	if (rc == -ENOTSUP) {
		log_info("boot", "kernel %s: %s; the kernel decompresses itself", path, err_msg());
		return 0;
	}
	if (rc < 0)
		return rc;
	if (!res.is64 || res.entry < res.lowest || res.entry >= res.highest)
		return err_set(-ENOEXEC, "%s: entry %#llx is not in a 64-bit loaded segment", what,
			       (unsigned long long)res.entry);
	if (res.lowest < 0x100000)
		return err_set(-ENOEXEC, "%s: loads at %#llx, below 1 MiB where the boot data lives", what,
			       (unsigned long long)res.lowest);
	info->kernel_start = res.lowest;
	/* init_size bounds what the kernel touches past its start while it
	 * sets itself up (boot.rst, "init_size"); keep the initrd above it. */
	info->kernel_end = res.highest > res.lowest + h->init_size ? res.highest : res.lowest + h->init_size;
	info->stub.entry = res.entry;
	info->decompressed = true;
	return 1;
}

/* The initrd goes as high as allowed (boot.rst: "initrd should typically
 * be located as high in memory as possible"), page aligned, below
 * initrd_addr_max and the end of low RAM, above the kernel.  Read straight
 * into guest memory: initrds are large. */
static int place_initrd(struct guest_memory *mem, const char *path, const struct linux_hdr *h,
			struct boot_info *info)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(-errno, "initrd %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(-EINVAL, "initrd %s: not a regular file", path);
	}
	uint64_t size = (uint64_t)st.st_size;
	uint64_t top = boot_low_ram_end(mem);
	uint64_t max = (uint64_t)h->initrd_addr_max + 1;
	if (max < top)
		top = max;
	uint64_t addr = size <= top ? (top - size) & ~0xfffull : 0;
	if (size == 0 || size > top || addr < info->kernel_end) {
		close(fd);
		if (size == 0)
			return err_set(-EINVAL, "initrd %s: empty file", path);
		return err_set(-ENOSPC, "initrd %s: %llu MiB does not fit between the kernel's end (%#llx) and %#llx: "
			       "give the VM more memory", path, (unsigned long long)(size >> 20),
			       (unsigned long long)info->kernel_end, (unsigned long long)top);
	}
	uint8_t *dst = gmem_ptr(mem, addr, size);
	uint64_t done = 0;
	while (dst && done < size) {
		ssize_t n = read(fd, dst + done, size - done > (1u << 30) ? (1u << 30) : size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return err_set(-e, "initrd %s: read failed: %s", path, n < 0 ? strerror(e) : "file shrank");
		}
		done += (uint64_t)n;
	}
	close(fd);
	if (!dst)
		return err_set(-ENOSPC, "initrd %s: no RAM at %#llx", path, (unsigned long long)addr);
	info->initrd_start = addr;
	info->initrd_size = size;
	return 0;
}

int linux_load(struct guest_memory *mem, const struct boot_config *cfg, const struct boot_options *opt,
	       const uint8_t *image, size_t size, struct boot_info *info)
{
	const char *path = cfg->kernel;
	struct linux_hdr h;
	int rc = parse_header(path, image, size, &h);
	if (rc < 0)
		return rc;
	info->kind = BOOT_KIND_LINUX;
	info->protocol = h.version;

	const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
	size_t cmd_len = strlen(cmdline);
	uint64_t cmd_max = h.cmdline_size < BOOT_CMDLINE_MAX - 1 ? h.cmdline_size : BOOT_CMDLINE_MAX - 1;
	if (cmd_len > cmd_max)
		return err_set(-E2BIG, "kernel command line is %zu bytes; kernel %s accepts at most %llu", cmd_len,
			       path, (unsigned long long)cmd_max);

	rc = 0;
	if (cfg->decompress_kernel) {
		rc = place_decompressed(mem, path, &h, image, size, info);
		if (rc < 0)
			return rc;
	}
	if (rc == 0 && (rc = place_compressed(mem, path, &h, image, size, info)) < 0)
		return rc;

	if (cfg->initrd && *cfg->initrd && (rc = place_initrd(mem, cfg->initrd, &h, info)) < 0)
		return rc;

	/* The zero page: the kernel's setup header as the image has it (its
	 * length is in the jump instruction at 0x200, boot.rst "Details of
	 * Header Fields"), then what a boot loader must write. */
	uint8_t bp[BP_SIZE];
	memset(bp, 0, sizeof(bp));
	size_t hdr_end = HDR_JUMP + 2 + image[HDR_JUMP + 1];
	if (hdr_end > size)
		hdr_end = size;
	if (hdr_end > BP_E820_TABLE)
		hdr_end = BP_E820_TABLE;
	memcpy(bp + HDR_SETUP_SECTS, image + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;                  /* boot.rst: undefined boot loader */
	put32(bp + HDR_CODE32_START, (uint32_t)info->kernel_start);
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE);
	put32(bp + BP_EXT_CMD_LINE_PTR, 0);
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)info->initrd_start);
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)info->initrd_size);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(info->initrd_start >> 32));
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(info->initrd_size >> 32));
	put32(bp + HDR_HARDWARE_SUBARCH, 0);            /* X86_SUBARCH_PC */
	put64(bp + HDR_HW_SUBARCH_DATA, 0);
	put64(bp + HDR_SETUP_DATA, 0);                  /* no setup_data chain */
	put64(bp + BP_ACPI_RSDP_ADDR, opt->rsdp_addr);  /* protocol 2.14+; older kernels scan */

	struct boot_e820 map[E820_MAX];
	unsigned n = boot_build_e820(mem, map, E820_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * 20;     /* struct boot_e820_entry, packed */
		put64(e, map[i].addr);
		put64(e + 8, map[i].size);
		put32(e + 16, map[i].type);
	}

	if ((rc = gmem_write(mem, BOOT_ZERO_PAGE, bp, sizeof(bp))) < 0 ||
	    (rc = gmem_write(mem, BOOT_CMDLINE, cmdline, cmd_len + 1)) < 0)
		return err_set(rc, "guest RAM too small for the boot parameters");
	info->cmdline_gpa = BOOT_CMDLINE;

	uint64_t cr3;
	if ((rc = boot_build_identity_map(mem, &cr3)) < 0)
		return rc;
	info->stub.mode = BOOT_MODE_LONG64;
	info->stub.cr3 = (uint32_t)cr3;
	info->stub.rsi = BOOT_ZERO_PAGE;
	info->stub.stack = BOOT_STACK_TOP;
	log_debug("boot", "Linux boot protocol %u.%02u, %s, initrd %#llx+%#llx, %u e820 entries", h.version >> 8,
		  h.version & 0xff, info->decompressed ? info->compression : "self-decompressing",
		  (unsigned long long)info->initrd_start, (unsigned long long)info->initrd_size, n);
	return 0;
}
