/* ELF executable loading for the boot loaders: the decompressed Linux
 * vmlinux (ELF64) and Multiboot kernels (ELF32 or ELF64).  Segments go to
 * their physical addresses (p_paddr), as a boot loader with paging off
 * must place them (Multiboot 0.6.96, 3.1.3; the vmlinux program headers
 * carry LOAD_PHYSICAL_ADDR-based p_paddr, arch/x86/kernel/vmlinux.lds.S).
 * Every offset and size comes from the file, so everything is checked. */
#include "boot/boot.h"

#include "util/error.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

bool boot_is_elf(const uint8_t *image, size_t size)
{
	return size >= EI_NIDENT && memcmp(image, ELFMAG, SELFMAG) == 0;
}

struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static int read_phdr(const uint8_t *image, size_t size, bool is64, uint64_t phoff, unsigned entsize, unsigned i,
		     struct phdr *ph)
{
	uint64_t off = phoff + (uint64_t)i * entsize;
	if (off > size || size - off < entsize)
		return -1;
	if (is64) {
		Elf64_Phdr p;
		memcpy(&p, image + off, sizeof(p));
		*ph = (struct phdr){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
	} else {
		Elf32_Phdr p;
		memcpy(&p, image + off, sizeof(p));
		*ph = (struct phdr){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
	}
	return 0;
}

/* The ELF header's fields the loaders use, checked. */
struct elf_hdr {
	bool is64;
	uint64_t entry, phoff;
	unsigned phentsize, phnum;
};

static int read_ehdr(const uint8_t *image, size_t size, const char *what, struct elf_hdr *h)
{
	if (!boot_is_elf(image, size))
		return err_set(-ENOEXEC, "%s: not an ELF file", what);
	bool is64 = image[EI_CLASS] == ELFCLASS64;
	if ((!is64 && image[EI_CLASS] != ELFCLASS32) || image[EI_DATA] != ELFDATA2LSB)
		return err_set(-ENOEXEC, "%s: ELF class %u/data %u, expected little-endian ELF32 or ELF64", what,
			       image[EI_CLASS], image[EI_DATA]);
	unsigned machine, type;
	h->is64 = is64;
	if (is64) {
		Elf64_Ehdr eh;
		if (size < sizeof(eh))
			return err_set(-ENOEXEC, "%s: truncated ELF header", what);
		memcpy(&eh, image, sizeof(eh));
		h->entry = eh.e_entry, h->phoff = eh.e_phoff, h->phentsize = eh.e_phentsize, h->phnum = eh.e_phnum;
		machine = eh.e_machine, type = eh.e_type;
		if (h->phentsize < sizeof(Elf64_Phdr))
			return err_set(-ENOEXEC, "%s: ELF program header size %u too small", what, h->phentsize);
	} else {
		Elf32_Ehdr eh;
		if (size < sizeof(eh))
			return err_set(-ENOEXEC, "%s: truncated ELF header", what);
		memcpy(&eh, image, sizeof(eh));
		h->entry = eh.e_entry, h->phoff = eh.e_phoff, h->phentsize = eh.e_phentsize, h->phnum = eh.e_phnum;
		machine = eh.e_machine, type = eh.e_type;
		if (h->phentsize < sizeof(Elf32_Phdr))
			return err_set(-ENOEXEC, "%s: ELF program header size %u too small", what, h->phentsize);
	}
	if (type != ET_EXEC)
		return err_set(-ENOEXEC, "%s: ELF type %u, expected an executable (ET_EXEC)", what, type);
	if (machine != EM_X86_64 && machine != EM_386)
		return err_set(-ENOEXEC, "%s: ELF machine %u, expected x86 (3) or x86-64 (62)", what, machine);
	if (h->phnum == 0)
		return err_set(-ENOEXEC, "%s: ELF has no program headers", what);
	return 0;
}

/* Program header i, checked: 1 for a loadable segment that lies in the
 * file and in guest RAM, 0 for one that loads nothing, or an error. */
static int read_load(struct guest_memory *mem, const uint8_t *image, size_t size, const char *what,
		     const struct elf_hdr *h, unsigned i, struct phdr *ph)
{
	if (read_phdr(image, size, h->is64, h->phoff, h->phentsize, i, ph) < 0)
		return err_set(-ENOEXEC, "%s: program header %u lies outside the file", what, i);
	if (ph->type != PT_LOAD || ph->memsz == 0)
		return 0;
	if (ph->filesz > ph->memsz || ph->offset > size || size - ph->offset < ph->filesz)
		return err_set(-ENOEXEC, "%s: segment %u (offset %#llx, %#llx bytes) lies outside the file", what, i,
			       (unsigned long long)ph->offset, (unsigned long long)ph->filesz);
	if (ph->paddr + ph->memsz < ph->paddr || !gmem_ptr(mem, ph->paddr, ph->memsz) || gmem_is_rom(mem, ph->paddr))
		return err_set(-ENOSPC, "%s: segment %u at %#llx-%#llx is outside guest RAM", what, i,
			       (unsigned long long)ph->paddr, (unsigned long long)(ph->paddr + ph->memsz));
	return 1;
}

static void add_range(struct boot_elf_result *res, const struct phdr *ph)
{
	if (ph->paddr < res->lowest)
		res->lowest = ph->paddr;
	if (ph->paddr + ph->memsz > res->highest)
		res->highest = ph->paddr + ph->memsz;
}

int boot_load_elf(struct guest_memory *mem, const uint8_t *image, size_t size, const char *what,
		  struct boot_elf_result *res)
{
	memset(res, 0, sizeof(*res));
	struct elf_hdr h;
	int rc = read_ehdr(image, size, what, &h);
	if (rc < 0)
		return rc;
	/* Check every segment before writing any, so that a bad image leaves
	 * guest memory untouched. */
	res->lowest = UINT64_MAX;
	unsigned loads = 0;
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < h.phnum; i++) {
			struct phdr ph = { 0 };
			if ((rc = read_load(mem, image, size, what, &h, i, &ph)) <= 0) {
				if (rc < 0)
					return rc;
				continue;
			}
			if (pass == 0) {
				loads++;
				add_range(res, &ph);
			} else {
				uint8_t *dst = gmem_ptr(mem, ph.paddr, ph.memsz);
				memcpy(dst, image + ph.offset, ph.filesz);
				memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
			}
		}
		if (pass == 0 && loads == 0)
			return err_set(-ENOEXEC, "%s: ELF has no loadable segment", what);
	}
	res->entry = h.entry;
	res->is64 = h.is64;
	return 0;
}

static bool overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

#define IN_RAM_MAX_LOADS 32

int boot_load_elf_in_ram(struct guest_memory *mem, uint64_t image_gpa, size_t size, const char *what,
			 struct boot_elf_result *res)
{
	memset(res, 0, sizeof(*res));
	const uint8_t *image = gmem_ptr(mem, image_gpa, size);
	if (!image)
		return 1;
	struct elf_hdr h;
	int rc = read_ehdr(image, size, what, &h);
	if (rc < 0)
		return rc;
	/* The loads in file order (insertion sort: a handful). */
	struct phdr load[IN_RAM_MAX_LOADS];
	unsigned n = 0;
	res->lowest = UINT64_MAX;
	for (unsigned i = 0; i < h.phnum; i++) {
		struct phdr ph = { 0 };
		if ((rc = read_load(mem, image, size, what, &h, i, &ph)) <= 0) {
			if (rc < 0)
				return rc;
			continue;
		}
		if (n == IN_RAM_MAX_LOADS)
			return 1;
		unsigned at = n++;
		while (at > 0 && load[at - 1].offset > ph.offset) {
			load[at] = load[at - 1];
			at--;
		}
		load[at] = ph;
		add_range(res, &ph);
	}
	if (n == 0)
		return err_set(-ENOEXEC, "%s: ELF has no loadable segment", what);
	/* Moved in file order, a segment (with its zero-filled tail) may
	 * land on the bytes of segments already moved, not on those of one
	 * still to move; and no two segments may share an address, which
	 * boot_load_elf() would resolve by program header order. */
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < n; j++) {
			if (j > i && overlaps(load[i].paddr, load[i].memsz, image_gpa + load[j].offset, load[j].filesz))
				return 1;
			if (j != i && overlaps(load[i].paddr, load[i].memsz, load[j].paddr, load[j].memsz))
				return 1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *dst = gmem_ptr(mem, load[i].paddr, load[i].memsz);
		memmove(dst, image + load[i].offset, load[i].filesz);
		memset(dst + load[i].filesz, 0, load[i].memsz - load[i].filesz);
	}
	/* The image's bytes outside every segment: zero, as before it was
	 * decompressed there (a fresh guest's RAM). */
	uint64_t end = image_gpa + size;
	for (uint64_t at = image_gpa; at < end;) {
		uint64_t next = end;   /* where the next segment starting at or after `at` begins */
		bool inside = false;
		for (unsigned i = 0; i < n; i++) {
			if (load[i].paddr <= at && at < load[i].paddr + load[i].memsz) {
				at = load[i].paddr + load[i].memsz;
				inside = true;
				break;
			}
			if (load[i].paddr > at && load[i].paddr < next)
				next = load[i].paddr;
		}
		if (inside)
			continue;
		memset(gmem_ptr(mem, at, next - at), 0, next - at);
		at = next;
	}
	res->entry = h.entry;
	res->is64 = h.is64;
	return 0;
}
