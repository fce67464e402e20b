/* Boot loader entry: probe the kernel image, dispatch to its loader, and
 * prepare the firmware ROM (stub.asm) that takes the boot processor from
 * the reset vector to the kernel.  Also the pieces the loaders share: the
 * e820 map, the identity page tables, file reading. */
#include "boot/boot.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stub_rom.h"

/* Kernel files larger than this are not kernels. */
#define BOOT_KERNEL_MAX (512ull << 20)

_Static_assert(sizeof(struct boot_stub_params) == 52 && offsetof(struct boot_stub_params, resume_facs) == 48,
	       "stub.asm's P_* offsets");
_Static_assert(sizeof(boot_stub_rom) == GMEM_ROM_SIZE, "the stub is the whole ROM");

int boot_read_file(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size)
{
	*data = NULL;
	*size = 0;
	if (!path || !*path)
		return err_set(-EINVAL, "no %s file given", what);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(-errno, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(-EINVAL, "%s %s: not a regular file", what, path);
	}
	if ((uint64_t)st.st_size > max_size) {
		close(fd);
		return err_set(-EFBIG, "%s %s: %lld bytes is more than the %zu this VM can hold", what, path,
			       (long long)st.st_size, max_size);
	}
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return err_set(-ENOMEM, "%s %s: out of memory", what, path);
	}
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return err_set(-e, "%s %s: read failed: %s", what, path, n < 0 ? strerror(e) : "file shrank");
		}
		done += (size_t)n;
	}
	close(fd);
	*data = buf;
	*size = done;
	return 0;
}

uint64_t boot_low_ram_end(const struct guest_memory *mem)
{
	for (unsigned i = 0; i < mem->n_regions; i++)
		if (mem->regions[i].gpa == 0 && !mem->regions[i].rom)
			return mem->regions[i].size;
	return 0;
}

static void e820_add(struct boot_e820 *out, unsigned max, unsigned *n, uint64_t addr, uint64_t end, uint32_t type)
{
	if (end > addr && *n < max)
		out[(*n)++] = (struct boot_e820){ .addr = addr, .size = end - addr, .type = type };
}

static int e820_cmp(const void *a, const void *b)
{
	const struct boot_e820 *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

unsigned boot_build_e820(const struct guest_memory *mem, struct boot_e820 *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		uint64_t end = r->gpa + r->size;
		/* Hot-added RAM is the ACPI memory devices' to describe
		 * (docs/hotplug.md "Memory"), also after a reboot. */
		if (r->hotplug)
			continue;
		if (r->rom) {
			e820_add(out, max, &n, r->gpa, end, E820_RESERVED);
		} else if (r->gpa == 0) {
			/* PC conventional memory: the EBDA's last KiB below 640 KiB,
			 * the VGA hole, then the BIOS area holding the ACPI tables
			 * and RSDP (reserved, not ACPI-reclaimable: the RSDP must
			 * stay). */
			uint64_t conv_end = end < 0x9fc00 ? end : 0x9fc00;
			e820_add(out, max, &n, 0, conv_end, E820_RAM);
			if (end > 0x9fc00)
				e820_add(out, max, &n, 0x9fc00, end < 0xa0000 ? end : 0xa0000, E820_RESERVED);
			if (end > 0xe0000)
				e820_add(out, max, &n, 0xe0000, 0x100000, E820_RESERVED);
			e820_add(out, max, &n, 0x100000, end, E820_RAM);
		} else {
			e820_add(out, max, &n, r->gpa, end, E820_RAM);
		}
	}
	/* The PCI ECAM window must be reserved in e820 or Linux ignores
	 * MMCONFIG (PCI Firmware Spec 3.2, 4.1.2; arch/x86/pci/mmconfig-shared.c). */
	e820_add(out, max, &n, GMEM_ECAM_BASE, GMEM_ECAM_BASE + GMEM_ECAM_SIZE, E820_RESERVED);
	qsort(out, n, sizeof(*out), e820_cmp);
	return n;
}

int boot_build_identity_map(struct guest_memory *mem, uint64_t *cr3)
{
	/* 4-level paging, SDM vol. 3A, 4.5: PML4[0] -> PDPT, PDPT[0..3] ->
	 * four page directories of 2 MiB pages (PS = 1) covering 4 GiB, so
	 * that the kernel, boot_params, the command line, the initrd and the
	 * ROM are all reachable at their physical addresses. */
	enum { P = 1, RW = 2, PS = 0x80 };
	uint64_t pml4[512] = { 0 }, pdpt[512] = { 0 };
	pml4[0] = BOOT_PDPT | P | RW;
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD + i * 0x1000) | P | RW;
	int rc = gmem_write(mem, BOOT_PML4, pml4, sizeof(pml4));
	if (rc == 0)
		rc = gmem_write(mem, BOOT_PDPT, pdpt, sizeof(pdpt));
	for (unsigned i = 0; rc == 0 && i < 4; i++) {
		uint64_t pd[512];
		for (unsigned j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i << 30 | (uint64_t)j << 21) | P | RW | PS;
		rc = gmem_write(mem, BOOT_PD + i * 0x1000, pd, sizeof(pd));
	}
	if (rc < 0)
		return err_set(rc, "guest RAM too small for the boot page tables at %#llx",
			       (unsigned long long)BOOT_PML4);
	*cr3 = BOOT_PML4;
	return 0;
}

int boot_install_rom(struct guest_memory *mem, const struct boot_stub_params *params)
{
	const struct gmem_region *r = gmem_find_region(mem, GMEM_ROM_BASE);
	if (!r) {
		int rc = gmem_add_rom(mem, GMEM_ROM_BASE, GMEM_ROM_SIZE, NULL);
		if (rc < 0)
			return rc;
		r = gmem_find_region(mem, GMEM_ROM_BASE);
	}
	if (!r || !r->rom || r->gpa != GMEM_ROM_BASE || r->size < GMEM_ROM_SIZE)
		return err_set(-EEXIST, "guest memory at %#llx is not the firmware ROM",
			       (unsigned long long)GMEM_ROM_BASE);
	memcpy(r->host, boot_stub_rom, sizeof(boot_stub_rom));
	memcpy(r->host, params, sizeof(*params));
	return 0;
}

int boot_set_resume(struct guest_memory *mem, uint32_t facs_gpa)
{
	const struct gmem_region *r = gmem_find_region(mem, GMEM_ROM_BASE);
	if (!r || !r->rom || r->gpa != GMEM_ROM_BASE || r->size < GMEM_ROM_SIZE)
		return err_set(-ENODEV, "no firmware ROM at %#llx", (unsigned long long)GMEM_ROM_BASE);
	if (facs_gpa >= 0x100000u - 64)
		return err_set(-ERANGE, "FACS at %#x is out of real-mode reach", facs_gpa);
	memcpy((uint8_t *)r->host + offsetof(struct boot_stub_params, resume_facs), &facs_gpa, sizeof(facs_gpa));
	return 0;
}

int boot_load_mem(struct guest_memory *mem, const struct boot_config *cfg, const struct boot_options *opt,
		  struct boot_info *info)
{
	static const struct boot_options no_opt;
	struct boot_info local;
	if (!info)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (!opt)
		opt = &no_opt;
	uint8_t *image;
	size_t size;
	int rc = boot_read_file(cfg->kernel, "kernel", BOOT_KERNEL_MAX, &image, &size);
	if (rc < 0)
		return rc;
	/* The ROM first, so that the loaders' memory maps show it reserved. */
	if (!gmem_find_region(mem, GMEM_ROM_BASE) && (rc = gmem_add_rom(mem, GMEM_ROM_BASE, GMEM_ROM_SIZE, NULL)) < 0) {
		free(image);
		return rc;
	}
	long mb;
	if (linux_probe(image, size)) {
		rc = linux_load(mem, cfg, opt, image, size, info);
	} else if ((mb = multiboot_find_header(image, size)) >= 0) {
		rc = multiboot_load(mem, cfg, image, size, mb, info);
	} else {
		rc = err_set(-ENOEXEC, "kernel %s: neither a Linux bzImage (no \"HdrS\" setup header at 0x202) "
			     "nor a Multiboot kernel (no 0x1BADB002 header in the first 8 KiB)", cfg->kernel);
	}
	free(image);
	if (rc < 0)
		return rc;
	info->stub.magic = BOOT_STUB_MAGIC;
	if (info->stub.stack == 0)
		info->stub.stack = BOOT_STACK_TOP;
	rc = boot_install_rom(mem, &info->stub);
	if (rc < 0)
		return rc;
	log_info("boot", "%s kernel %s: entry %#llx in %s mode, loaded at %#llx-%#llx",
		 info->kind == BOOT_KIND_LINUX ? "Linux" : "Multiboot", cfg->kernel,
		 (unsigned long long)info->stub.entry, info->stub.mode == BOOT_MODE_LONG64 ? "64-bit" : "32-bit",
		 (unsigned long long)info->kernel_start, (unsigned long long)info->kernel_end);
	return 0;
}
