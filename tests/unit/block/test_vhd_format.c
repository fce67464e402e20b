/* VHD on-disk structures: checksums, geometry, encode/decode, UTF-16 and
 * parent path helpers (src/block/vhd_meta.c). */
#include "block/vhd.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static struct vhd_footer sample_footer(void)
{
	struct vhd_footer f = { 0 };
	f.features = 2;
	f.version = 0x00010000;
	f.data_offset = 512;
	f.timestamp = 12345;
	memcpy(f.creator_app, "vsl ", 4);
	f.creator_ver = 1;
	f.creator_os = 0x5769326b;
	f.orig_size = f.cur_size = 64ull << 20;
	vhd_geometry(f.cur_size / 512, &f.cyls, &f.heads, &f.spt);
	f.type = VHD_TYPE_DYNAMIC;
	for (int i = 0; i < 16; i++)
		f.uuid[i] = (uint8_t)i;
	return f;
}

Test(vhd_format, checksum_is_ones_complement_of_byte_sum_without_field)
{
	uint8_t b[16] = { 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 5 };
	cr_assert_eq(vhd_checksum(b, sizeof(b), 4), ~(uint32_t)(1 + 2 + 3 + 4 + 5));
}

Test(vhd_format, geometry_follows_the_spec_algorithm)
{
	uint16_t c;
	uint8_t h, s;
	vhd_geometry(131072, &c, &h, &s);            /* 64 MiB */
	cr_assert(c == 963 && h == 8 && s == 17, "%u/%u/%u", c, h, s);
	vhd_geometry(20480, &c, &h, &s);             /* 10 MiB: heads at least 4 */
	cr_assert(c == 301 && h == 4 && s == 17, "%u/%u/%u", c, h, s);
	vhd_geometry(2097152, &c, &h, &s);           /* 1 GiB: 63 sectors per track */
	cr_assert(c == 2080 && h == 16 && s == 63, "%u/%u/%u", c, h, s);
	vhd_geometry(1ull << 40 >> 9, &c, &h, &s);   /* 1 TiB: clamped to the maximum */
	cr_assert(c == 65535 && h == 16 && s == 255, "%u/%u/%u", c, h, s);
}

Test(vhd_format, round_size_matches_a_geometry_or_marks_exact)
{
	uint16_t c;
	uint8_t h, s;
	uint64_t r = vhd_round_size(64ull << 20, false, &c, &h, &s);
	cr_assert_eq(r, 67125248ull);                /* what qemu-img create -f vpc 64M gives */
	cr_assert_eq((uint64_t)c * h * s * 512, r);
	r = vhd_round_size(64ull << 20, true, &c, &h, &s);
	cr_assert_eq(r, 64ull << 20);
	cr_assert_eq((uint64_t)c * h * s, VHD_MAX_GEOMETRY);
}

Test(vhd_format, footer_roundtrip)
{
	struct vhd_footer f = sample_footer(), g;
	uint8_t buf[512];
	vhd_footer_encode(&f, buf);
	cr_assert_eq(memcmp(buf, "conectix", 8), 0);
	cr_assert_eq(vhd_footer_decode(buf, &g), 0);
	cr_assert_eq(g.cur_size, f.cur_size);
	cr_assert_eq(g.data_offset, 512);
	cr_assert_eq(g.type, VHD_TYPE_DYNAMIC);
	cr_assert_eq(g.cyls, f.cyls);
	cr_assert_eq(memcmp(g.uuid, f.uuid, 16), 0);
	/* Fields are big-endian: current size at offset 48. */
	cr_assert_eq(buf[48 + 4], 0x04);
}

Test(vhd_format, footer_rejects_damage)
{
	struct vhd_footer f = sample_footer(), g;
	uint8_t buf[512];
	vhd_footer_encode(&f, buf);
	buf[100] ^= 1;
	cr_assert_eq(vhd_footer_decode(buf, &g), -EBADMSG);
	cr_assert(strstr(err_msg(), "checksum"));
	f.type = 7;
	vhd_footer_encode(&f, buf);
	cr_assert_eq(vhd_footer_decode(buf, &g), -EINVAL);
	f = sample_footer();
	f.cur_size = 1ull << 50;
	vhd_footer_encode(&f, buf);
	cr_assert_eq(vhd_footer_decode(buf, &g), -EINVAL);
	f.cur_size = 1000;
	vhd_footer_encode(&f, buf);
	cr_assert_eq(vhd_footer_decode(buf, &g), -EINVAL);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(vhd_footer_decode(buf, &g), -EINVAL);
}

Test(vhd_format, header_roundtrip_and_block_size_check)
{
	struct vhd_header h = { 0 }, g;
	h.data_offset = VHD_NO_OFFSET;
	h.table_offset = 1536;
	h.version = 0x00010000;
	h.max_entries = 33;
	h.block_size = 2u << 20;
	h.parent_name[0] = 'a';
	h.loc[1].code = VHD_PLAT_W2RU;
	h.loc[1].len = 20;
	h.loc[1].offset = 4096;
	uint8_t buf[1024];
	vhd_header_encode(&h, buf);
	cr_assert_eq(memcmp(buf, "cxsparse", 8), 0);
	cr_assert_eq(vhd_header_decode(buf, &g), 0);
	cr_assert_eq(g.max_entries, 33);
	cr_assert_eq(g.parent_name[0], 'a');
	cr_assert_eq(buf[64], 0);       /* Parent Unicode Name is UTF-16 big-endian */
	cr_assert_eq(buf[65], 'a');
	cr_assert_eq(g.loc[1].code, VHD_PLAT_W2RU);
	cr_assert_eq(g.loc[1].offset, 4096);
	h.block_size = 3000;
	vhd_header_encode(&h, buf);
	cr_assert_eq(vhd_header_decode(buf, &g), -EINVAL);
	h.block_size = 2u << 20;
	vhd_header_encode(&h, buf);
	buf[40] ^= 0x10;
	cr_assert_eq(vhd_header_decode(buf, &g), -EBADMSG);
}

Test(vhd_format, bitmap_bytes_padded_to_sector)
{
	cr_assert_eq(vhd_bitmap_bytes(2u << 20), 512);
	cr_assert_eq(vhd_bitmap_bytes(4096), 512);
	cr_assert_eq(vhd_bitmap_bytes(32u << 20), 8192);
}

Test(vhd_format, utf16_roundtrip_with_surrogates)
{
	uint16_t u[64];
	const char *s = "/d\xc3\xa9j\xc3\xa0/\xf0\x9f\x92\xbe.vhd";
	size_t n = vhd_utf8_to_utf16(s, u, 64);
	cr_assert_eq(n, 12);   /* / d é j à / (2 units) . v h d */
	char back[128];
	cr_assert_eq(vhd_utf16_to_utf8(u, n, back, sizeof(back)), 0);
	cr_assert_str_eq(back, s);
}
