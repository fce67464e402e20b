/* libFuzzer target: the VHD parsers.  The input is an image file: its
 * footer (and copy), dynamic header, BAT and locators are parsed through
 * the same paths `vessel disk` uses (open, check, info, reads), read-only,
 * without following parent locators.  Any crash, hang or sanitizer report
 * is a bug: bad input must only ever produce an error. */
#include "block/block.h"
#include "block/vhd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The structures on their own. */
	struct vhd_footer f;
	struct vhd_header h;
	if (size >= VHD_FOOTER_SIZE)
		vhd_footer_decode(data, &f);
	if (size >= VHD_HEADER_SIZE)
		vhd_header_decode(data, &h);

	/* The whole image, as a file. */
	int fd = memfd_create("fuzz.vhd", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	struct vhd_report rep;
	struct vhd_meta m;
	if (vhd_check(path, VHD_CHECK_NO_PARENT, &rep, &m) == 0)
		vhd_meta_free(&m);

	struct block_dev *bd;
	if (block_open(path, "vhd", BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_PARENT, &bd) == 0) {
		static uint8_t buf[64 * 512];
		uint64_t probes[] = { 0, bd->sectors / 2, bd->sectors ? bd->sectors - 1 : 0 };
		for (int i = 0; i < 3; i++) {
			uint64_t s = probes[i];
			uint32_t n = bd->sectors - s < 64 ? (uint32_t)(bd->sectors - s) : 64;
			if (n)
				block_read(bd, s, buf, n);
			bool alloc;
			uint64_t run;
			if (s < bd->sectors)
				vhd_sector_allocated(bd, s, &alloc, &run);
		}
		block_close(bd);
	}
	close(fd);
	return 0;
}
