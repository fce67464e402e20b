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

int boot_load_elf(struct guest_memory *mem, const uint8_t *image, size_t size, const char *what,
		  struct boot_elf_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!boot_is_elf(image, size))
		return err_set(-ENOEXEC, "%s: not an ELF file", what);
	bool is64 = image[EI_CLASS] == ELFCLASS64;
	if ((!is64 && image[EI_CLASS] != ELFCLASS32) || image[EI_DATA] != ELFDATA2LSB)
		return err_set(-ENOEXEC, "%s: ELF class %u/data %u, expected little-endian ELF32 or ELF64", what,
			       image[EI_CLASS], image[EI_DATA]);
	uint64_t entry, phoff;
	unsigned phentsize, phnum, machine, type;
	if (is64) {
		Elf64_Ehdr eh;
		if (size < sizeof(eh))
			return err_set(-ENOEXEC, "%s: truncated ELF header", what);
		memcpy(&eh, image, sizeof(eh));
		entry = eh.e_entry, phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
		machine = eh.e_machine, type = eh.e_type;
		if (phentsize < sizeof(Elf64_Phdr))
			return err_set(-ENOEXEC, "%s: ELF program header size %u too small", what, phentsize);
	} else {
		Elf32_Ehdr eh;
		if (size < sizeof(eh))
			return err_set(-ENOEXEC, "%s: truncated ELF header", what);
		memcpy(&eh, image, sizeof(eh));
		entry = eh.e_entry, phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
		machine = eh.e_machine, type = eh.e_type;
		if (phentsize < sizeof(Elf32_Phdr))
			return err_set(-ENOEXEC, "%s: ELF program header size %u too small", what, phentsize);
	}
	if (type != ET_EXEC)
		return err_set(-ENOEXEC, "%s: ELF type %u, expected an executable (ET_EXEC)", what, type);
	if (machine != EM_X86_64 && machine != EM_386)
		return err_set(-ENOEXEC, "%s: ELF machine %u, expected x86 (3) or x86-64 (62)", what, machine);
	if (phnum == 0)
		return err_set(-ENOEXEC, "%s: ELF has no program headers", what);

	/* Check every segment before writing any, so that a bad image leaves
	 * guest memory untouched. */
	uint64_t lowest = UINT64_MAX, highest = 0;
	unsigned loads = 0;
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < phnum; i++) {
			struct phdr ph;
			if (read_phdr(image, size, is64, phoff, phentsize, i, &ph) < 0)
				return err_set(-ENOEXEC, "%s: program header %u lies outside the file", what, i);
			if (ph.type != PT_LOAD || ph.memsz == 0)
				continue;
			if (pass == 0) {
				if (ph.filesz > ph.memsz || ph.offset > size || size - ph.offset < ph.filesz)
					return err_set(-ENOEXEC, "%s: segment %u (offset %#llx, %#llx bytes) lies outside the file",
						       what, i, (unsigned long long)ph.offset, (unsigned long long)ph.filesz);
				if (ph.paddr + ph.memsz < ph.paddr || !gmem_ptr(mem, ph.paddr, ph.memsz) ||
				    gmem_is_rom(mem, ph.paddr))
					return err_set(-ENOSPC, "%s: segment %u at %#llx-%#llx is outside guest RAM", what, i,
						       (unsigned long long)ph.paddr, (unsigned long long)(ph.paddr + ph.memsz));
				loads++;
				if (ph.paddr < lowest)
					lowest = ph.paddr;
				if (ph.paddr + ph.memsz > highest)
					highest = ph.paddr + ph.memsz;
			} else {
				uint8_t *dst = gmem_ptr(mem, ph.paddr, ph.memsz);
				memcpy(dst, image + ph.offset, ph.filesz);
				memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
			}
		}
		if (pass == 0 && loads == 0)
			return err_set(-ENOEXEC, "%s: ELF has no loadable segment", what);
	}
	res->entry = entry;
	res->lowest = lowest;
	res->highest = highest;
	res->is64 = is64;
	return 0;
}
