/* Multiboot v1 (Multiboot Specification 0.6.96, cited as "MB" below):
 * ELF kernels and the a.out kludge (header address fields), modules, and
 * the information structure with memory sizes, the memory map, the command
 * line and the boot loader name.  Conventions follow QEMU's -kernel so that
 * the bare-metal test kernels written for it run unchanged: the command
 * line starts with the kernel's file name, -initrd is a comma-separated
 * module list ("file args,file2 args", ",," for a literal comma) and
 * modules are page aligned after the kernel. */
#include "boot/boot.h"

#include "util/error.h"
#include "util/log.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MB_HEADER_MAGIC     0x1BADB002u
#define MB_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_SEARCH           8192          /* MB 3.1: header within the first 8192 bytes */

/* Header flags (MB 3.1.2). */
#define MB_PAGE_ALIGN   (1u << 0)
#define MB_MEMORY_INFO  (1u << 1)
#define MB_VIDEO_MODE   (1u << 2)
#define MB_AOUT_KLUDGE  (1u << 16)
#define MB_KNOWN_REQUIRED (MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_VIDEO_MODE)

/* Information structure flags and offsets (MB 3.3). */
#define MBI_MEM         (1u << 0)
#define MBI_CMDLINE     (1u << 2)
#define MBI_MODS        (1u << 3)
#define MBI_MMAP        (1u << 6)
#define MBI_LOADER_NAME (1u << 9)
#define MBI_FLAGS       0
#define MBI_MEM_LOWER   4
#define MBI_MEM_UPPER   8
#define MBI_CMDLINE_PTR 16
#define MBI_MODS_COUNT  20
#define MBI_MODS_ADDR   24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR   48
#define MBI_LOADER_NAME_PTR 64

/* Layout of the BOOT_MB_INFO area. */
#define AREA_INFO    0x0000
#define AREA_MMAP    0x0100      /* E820_MAX entries of 24 bytes */
#define AREA_MODS    0x1000      /* 16 bytes per module */
#define AREA_STRINGS 0x2000
#define MB_MAX_MODULES ((AREA_STRINGS - AREA_MODS) / 16)

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

long multiboot_find_header(const uint8_t *image, size_t size)
{
	/* MB 3.1: 32-bit aligned; magic + flags + checksum == 0 (mod 2^32). */
	for (size_t off = 0; off + 12 <= size && off + 12 <= MB_SEARCH; off += 4) {
		if (rd32(image + off) == MB_HEADER_MAGIC &&
		    (uint32_t)(rd32(image + off) + rd32(image + off + 4) + rd32(image + off + 8)) == 0)
			return (long)off;
	}
	return -1;
}

/* The a.out kludge (MB 3.1.3): the header's address fields say which part
 * of the file goes where. */
static int load_aout(struct guest_memory *mem, const char *path, const uint8_t *image, size_t size, size_t hoff,
		     uint64_t *start, uint64_t *end, uint64_t *entry)
{
	if (hoff + 32 > size)
		return err_set(-ENOEXEC, "kernel %s: Multiboot header truncated (address fields missing)", path);
	uint32_t header_addr = rd32(image + hoff + 12), load_addr = rd32(image + hoff + 16);
	uint32_t load_end = rd32(image + hoff + 20), bss_end = rd32(image + hoff + 24);
	*entry = rd32(image + hoff + 28);
	if (load_addr > header_addr || header_addr - load_addr > hoff)
		return err_set(-ENOEXEC, "kernel %s: Multiboot load_addr %#x / header_addr %#x put the text "
			       "before the start of the file", path, load_addr, header_addr);
	size_t file_off = hoff - (header_addr - load_addr);
	uint64_t load_size = load_end ? (uint64_t)load_end - load_addr : size - file_off;
	if (load_end && load_end <= load_addr)
		return err_set(-ENOEXEC, "kernel %s: Multiboot load_end_addr %#x is not above load_addr %#x", path,
			       load_end, load_addr);
	if (load_size > size - file_off)
		return err_set(-ENOEXEC, "kernel %s: truncated: Multiboot header asks for %llu bytes from offset %zu, "
			       "the file has %zu", path, (unsigned long long)load_size, file_off, size);
	uint64_t mem_end = (uint64_t)load_addr + load_size;
	if (bss_end) {
		if (bss_end < mem_end)
			return err_set(-ENOEXEC, "kernel %s: Multiboot bss_end_addr %#x is below the loaded text's end %#llx",
				       path, bss_end, (unsigned long long)mem_end);
		mem_end = bss_end;
	}
	uint8_t *dst = gmem_ptr(mem, load_addr, mem_end - load_addr);
	if (!dst || gmem_is_rom(mem, load_addr))
		return err_set(-ENOSPC, "kernel %s: loads at %#x-%#llx, outside guest RAM", path, load_addr,
			       (unsigned long long)mem_end);
	memcpy(dst, image + file_off, load_size);
	memset(dst + load_size, 0, mem_end - load_addr - load_size);
	*start = load_addr;
	*end = mem_end;
	return 0;
}

/* Next module of QEMU's -initrd syntax: text up to a single ','; ",," is a
 * literal comma.  Returns a malloc'd string, NULL at the end. */
static char *next_module(const char **cursor)
{
	const char *s = *cursor;
	if (!s || !*s)
		return NULL;
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	while (*s) {
		if (s[0] == ',' && s[1] == ',') {
			*o++ = ',';
			s += 2;
		} else if (*s == ',') {
			s++;
			break;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
	*cursor = s;
	return out;
}

/* Reads a module file into guest RAM at addr; its size in *size. */
static int load_module(struct guest_memory *mem, const char *path, uint64_t addr, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(-errno, "Multiboot module %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(-EINVAL, "Multiboot module %s: not a regular file", path);
	}
	uint64_t len = (uint64_t)st.st_size;
	uint8_t *dst = len ? gmem_ptr(mem, addr, len) : NULL;
	if (len && (!dst || addr + len > BOOT_IDENTITY_LIMIT)) {
		close(fd);
		return err_set(-ENOSPC, "Multiboot module %s: %llu bytes do not fit in RAM at %#llx: give the VM more memory",
			       path, (unsigned long long)len, (unsigned long long)addr);
	}
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, dst + done, len - done > (1u << 30) ? (1u << 30) : len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return err_set(-e, "Multiboot module %s: read failed: %s", path, n < 0 ? strerror(e) : "file shrank");
		}
		done += (uint64_t)n;
	}
	close(fd);
	*size = len;
	return 0;
}

struct strtab {
	uint8_t *area;
	uint64_t gpa;   /* where the area goes in the guest */
	size_t used;
};

/* Copies s into the string area; its guest address, or 0 when full. */
static uint32_t add_string(struct strtab *t, const char *s)
{
	size_t n = strlen(s) + 1;
	if (AREA_STRINGS + t->used + n > BOOT_MB_INFO_SIZE)
		return 0;
	memcpy(t->area + AREA_STRINGS + t->used, s, n);
	uint32_t gpa = (uint32_t)(t->gpa + AREA_STRINGS + t->used);
	t->used += n;
	return gpa;
}

int multiboot_load(struct guest_memory *mem, const struct boot_config *cfg, const uint8_t *image, size_t size,
		   long header_off, struct boot_info *info)
{
	const char *path = cfg->kernel;
	size_t hoff = (size_t)header_off;
	uint32_t flags = rd32(image + hoff + 4);
	/* MB 3.1.2: a boot loader must refuse a required feature (bits 0-15)
	 * it does not know. */
	if (flags & 0xffffu & ~MB_KNOWN_REQUIRED)
		return err_set(-ENOEXEC, "kernel %s: Multiboot header requires unknown features (flags %#x)", path, flags);
	if (flags & MB_VIDEO_MODE)
		log_warn("boot", "kernel %s: asks for a video mode; vessel has no framebuffer, giving text mode", path);

	uint64_t start = 0, end = 0, entry = 0;
	int rc;
	if (flags & MB_AOUT_KLUDGE) {
		rc = load_aout(mem, path, image, size, hoff, &start, &end, &entry);
	} else {
		struct boot_elf_result res;
		char what[PATH_MAX + 80];   /* the whole path: messages never cut it */
		snprintf(what, sizeof(what), "kernel %s (Multiboot without address fields must be ELF)", path);
		rc = boot_load_elf(mem, image, size, what, &res);
		start = res.lowest, end = res.highest, entry = res.entry;
	}
	if (rc < 0)
		return rc;
	if (entry >= BOOT_IDENTITY_LIMIT || !gmem_ptr(mem, entry, 1))
		return err_set(-ENOEXEC, "kernel %s: Multiboot entry point %#llx is not in guest RAM", path,
			       (unsigned long long)entry);
	/* The boot data (a stack page and the information area) goes where
	 * the kernel is not: at its usual place in low memory, or else right
	 * after the kernel, as QEMU puts its Multiboot information after the
	 * kernel image.  Modules follow (MB 3.3 leaves both places to the
	 * boot loader). */
	uint64_t stack_top = BOOT_STACK_TOP, info_gpa = BOOT_MB_INFO, data_end = 0;
	if ((start < BOOT_STACK_TOP && end > BOOT_STACK_TOP - 0x1000) ||
	    (start < BOOT_MB_INFO + BOOT_MB_INFO_SIZE && end > BOOT_MB_INFO)) {
		uint64_t base = (end + 0xfff) & ~0xfffull;
		uint64_t size = 0x1000 + BOOT_MB_INFO_SIZE;
		/* Below 1 MiB only in conventional memory (EBDA at 0x9fc00). */
		if (base < 0x100000 && base + size > 0x9f000)
			base = 0x100000;
		uint8_t *p = gmem_ptr(mem, base, size);
		if (!p || base + size > BOOT_IDENTITY_LIMIT || gmem_is_rom(mem, base) || gmem_is_rom(mem, base + size - 1))
			return err_set(-ENOSPC, "kernel %s: loads at %#llx-%#llx and leaves no room for the Multiboot "
				       "information after it: give the VM more memory", path,
				       (unsigned long long)start, (unsigned long long)end);
		memset(p, 0, 0x1000);
		stack_top = base + 0x1000;
		info_gpa = base + 0x1000;
		data_end = base + size;
		log_debug("boot", "kernel %s loads at %#llx-%#llx: Multiboot information at %#llx", path,
			  (unsigned long long)start, (unsigned long long)end, (unsigned long long)info_gpa);
	}
	info->kind = BOOT_KIND_MULTIBOOT;
	info->kernel_start = start;
	info->kernel_end = end;

	uint8_t *area = calloc(1, BOOT_MB_INFO_SIZE);
	if (!area)
		return err_set(-ENOMEM, "out of memory");
	struct strtab strs = { area, info_gpa, 0 };
	uint8_t *mbi = area + AREA_INFO;

	/* Modules, page aligned after the kernel (MB 3.3 mods; QEMU's layout). */
	uint64_t next = ((end > data_end ? end : data_end) + 0xfff) & ~0xfffull;
	if (next < 0x100000)
		next = 0x100000;
	const char *cursor = cfg->initrd;
	char *text;
	unsigned nmods = 0;
	while ((text = next_module(&cursor)) != NULL) {
		char *sp = strchr(text, ' ');
		char *file = sp ? strndup(text, (size_t)(sp - text)) : strdup(text);
		uint64_t len = 0;
		if (!file || !*file)
			rc = err_set(-EINVAL, "Multiboot module list %s: empty module name", cfg->initrd);
		else if (nmods >= MB_MAX_MODULES)
			rc = err_set(-E2BIG, "more than %d Multiboot modules", (int)MB_MAX_MODULES);
		else
			rc = load_module(mem, file, next, &len);
		uint32_t str = rc == 0 ? add_string(&strs, text) : 0;
		if (rc == 0 && !str)
			rc = err_set(-E2BIG, "Multiboot module strings exceed %llu bytes",
				     (unsigned long long)(BOOT_MB_INFO_SIZE - AREA_STRINGS));
		free(file);
		free(text);
		if (rc < 0) {
			free(area);
			return rc;
		}
		uint8_t *m = area + AREA_MODS + nmods * 16;
		wr32(m, (uint32_t)next);
		wr32(m + 4, (uint32_t)(next + len));      /* MB 3.3: mod_end is exclusive */
		wr32(m + 8, str);
		if (nmods == 0) {
			info->initrd_start = next;
			info->initrd_size = len;
		}
		nmods++;
		next = (next + len + 0xfff) & ~0xfffull;
	}
	info->n_modules = nmods;

	/* Command line: the kernel's file name first, as GRUB and QEMU do. */
	const char *append = cfg->cmdline ? cfg->cmdline : "";
	size_t cl_len = strlen(path) + 1 + strlen(append) + 1;
	char *cl = malloc(cl_len);
	if (!cl) {
		free(area);
		return err_set(-ENOMEM, "out of memory");
	}
	snprintf(cl, cl_len, "%s%s%s", path, *append ? " " : "", append);
	uint32_t cl_gpa = add_string(&strs, cl);
	free(cl);
	uint32_t name_gpa = add_string(&strs, "vessel " VESSEL_VERSION);
	if (!cl_gpa || !name_gpa) {
		free(area);
		return err_set(-E2BIG, "Multiboot command line too long (%zu bytes)", cl_len);
	}

	/* Memory map (MB 3.3 mmap: size field excludes itself) and sizes. */
	struct boot_e820 map[E820_MAX];
	unsigned n = boot_build_e820(mem, map, E820_MAX);
	uint32_t mem_lower = 0, mem_upper = 0;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = area + AREA_MMAP + i * 24;
		wr32(e, 20);
		wr64(e + 4, map[i].addr);
		wr64(e + 12, map[i].size);
		wr32(e + 20, map[i].type);
		if (map[i].type == E820_RAM && map[i].addr == 0)
			mem_lower = (uint32_t)(map[i].size >> 10);
		if (map[i].type == E820_RAM && map[i].addr == 0x100000)
			mem_upper = (uint32_t)(map[i].size >> 10);
	}
	wr32(mbi + MBI_FLAGS, MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER_NAME);
	wr32(mbi + MBI_MEM_LOWER, mem_lower);
	wr32(mbi + MBI_MEM_UPPER, mem_upper);
	wr32(mbi + MBI_CMDLINE_PTR, cl_gpa);
	wr32(mbi + MBI_MODS_COUNT, nmods);
	wr32(mbi + MBI_MODS_ADDR, (uint32_t)(info_gpa + AREA_MODS));
	wr32(mbi + MBI_MMAP_LENGTH, n * 24);
	wr32(mbi + MBI_MMAP_ADDR, (uint32_t)(info_gpa + AREA_MMAP));
	wr32(mbi + MBI_LOADER_NAME_PTR, name_gpa);
	rc = gmem_write(mem, info_gpa, area, BOOT_MB_INFO_SIZE);
	free(area);
	if (rc < 0)
		return err_set(rc, "guest RAM too small for the Multiboot information");
	info->cmdline_gpa = cl_gpa;

	/* MB 3.2 "Machine state": 32-bit protected mode, paging off, flat
	 * segments, EAX = magic, EBX = information structure. */
	info->stub.mode = BOOT_MODE_PROT32;
	info->stub.entry = entry;
	info->stub.eax = MB_BOOTLOADER_MAGIC;
	info->stub.ebx = (uint32_t)info_gpa;
	info->stub.stack = stack_top;
	return 0;
}
