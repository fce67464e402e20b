/* The description of an image that `vessel disk info` prints, as JSON
 * (block/describe.h): it lives with the formats it reads. */
#include "block/describe.h"

#include "block/block.h"
#include "block/crypt_disk.h"
#include "block/vhd.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *block_vhd_type_name(uint32_t t)
{
	return t == VHD_TYPE_FIXED ? "fixed" : t == VHD_TYPE_DYNAMIC ? "dynamic" : t == VHD_TYPE_DIFF ? "differencing" : "?";
}

static void uuid_str(const uint8_t *u, char *out)
{
	sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

json_t *block_describe(const char *path, const char *fmt, int *err)
{
	const struct block_format *f;
	int ret = fmt ? (block_format_find(fmt) ? 0 : err_set(-EINVAL, "unknown format '%s' (raw, vhd)", fmt))
		      : block_probe(path, &f);
	if (ret < 0) {
		*err = ret;
		return NULL;
	}
	if (fmt)
		f = block_format_find(fmt);
	json_t *j = json_object();
	json_object_set_new(j, "filename", json_string(path));
	json_object_set_new(j, "format", json_string(f->name));
	struct block_file bf;
	uint64_t fsize = 0, alloc = 0;
	if (block_file_open(&bf, path, BLOCK_OPEN_RDONLY | BLOCK_OPEN_PEEK) == 0) {
		block_file_size(&bf, &fsize);
		block_file_allocated(&bf, &alloc);
		block_file_close(&bf);
	}
	json_object_set_new(j, "file-size", json_integer((json_int_t)fsize));
	json_object_set_new(j, "allocated-bytes", json_integer((json_int_t)alloc));
	if (strcmp(f->name, "vhd")) {
		json_object_set_new(j, "virtual-size", json_integer((json_int_t)(fsize & ~(uint64_t)511)));
		crypt_disk_describe(path, fmt, j);
		return j;
	}
	struct vhd_report rep;
	struct vhd_meta m;
	ret = vhd_check(path, VHD_CHECK_PEEK, &rep, &m);
	if (ret == 0 && rep.damaged) {
		/* Damage beyond what --repair fixes: describe nothing rather than
		 * a disk that cannot be used; check lists every problem. */
		const char *first = "";
		for (unsigned i = 0; i < rep.n_msgs; i++)
			if (!strncmp(rep.msgs[i], "error: ", 7)) {
				first = rep.msgs[i] + 7;
				break;
			}
		ret = err_set(-EINVAL, "%s: %s (`vessel disk check` lists all problems)", path, first);
		vhd_meta_free(&m);
	}
	if (ret < 0) {
		json_decref(j);
		*err = ret;
		return NULL;
	}
	const struct vhd_footer *ft = &m.footer;
	char s[64];
	json_object_set_new(j, "subformat", json_string(block_vhd_type_name(ft->type)));
	json_object_set_new(j, "virtual-size", json_integer((json_int_t)ft->cur_size));
	json_t *g = json_object();
	json_object_set_new(g, "cylinders", json_integer(ft->cyls));
	json_object_set_new(g, "heads", json_integer(ft->heads));
	json_object_set_new(g, "sectors-per-track", json_integer(ft->spt));
	json_object_set_new(g, "size", json_integer((json_int_t)ft->cyls * ft->heads * ft->spt * 512));
	json_object_set_new(j, "geometry", g);
	snprintf(s, sizeof(s), "%.4s", ft->creator_app);
	json_object_set_new(j, "creator", json_string(s));
	snprintf(s, sizeof(s), "%u.%u", ft->creator_ver >> 16, ft->creator_ver & 0xffff);
	json_object_set_new(j, "creator-version", json_string(s));
	uuid_str(ft->uuid, s);
	json_object_set_new(j, "unique-id", json_string(s));
	json_t *cs = json_object();
	json_object_set_new(cs, "footer", json_string(m.end_footer_ok ? "ok" : "bad"));
	if (ft->type != VHD_TYPE_FIXED) {
		json_object_set_new(cs, "footer-copy", json_string(!m.copy_ok ? "bad" : m.copy_matches || !m.end_footer_ok ? "ok" : "stale"));
		json_object_set_new(cs, "header", json_string("ok"));
		json_object_set_new(j, "block-size", json_integer(m.header.block_size));
		json_object_set_new(j, "blocks-allocated", json_integer(m.blocks_allocated));
		json_object_set_new(j, "blocks-total", json_integer(m.header.max_entries));
		json_object_set_new(j, "leaked-bytes", json_integer((json_int_t)m.leaked_bytes));
	}
	json_object_set_new(j, "checksums", cs);
	json_object_set_new(j, "errors", json_integer(rep.errors));
	if (ft->type == VHD_TYPE_DIFF) {
		uuid_str(m.header.parent_uuid, s);
		json_object_set_new(j, "parent-unique-id", json_string(s));
		struct block_dev *bd;
		json_t *chain = json_array();
		if (block_open(path, "vhd", BLOCK_OPEN_RDONLY | BLOCK_OPEN_PEEK, &bd) == 0) {
			struct vhd_info vi;
			if (vhd_get_info(bd, &vi) == 0 && vi.parent_path)
				json_object_set_new(j, "parent", json_string(vi.parent_path));
			for (struct block_dev *p = vi.parent; p;) {
				struct block_dev *b = block_bottom(p);
				json_t *e = json_object();
				json_object_set_new(e, "filename", json_string(b->name));
				json_object_set_new(e, "format", json_string(b->drv->name));
				struct vhd_info pi;
				if (vhd_get_info(b, &pi) == 0) {
					json_object_set_new(e, "subformat", json_string(block_vhd_type_name(pi.meta->footer.type)));
					p = pi.parent;
				} else {
					p = NULL;
				}
				json_array_append_new(chain, e);
			}
			block_close(bd);
		} else {
			json_object_set_new(j, "parent-error", json_string(err_msg()));
		}
		json_object_set_new(j, "backing-chain", chain);
	}
	vhd_meta_free(&m);
	crypt_disk_describe(path, fmt, j);
	return j;
}
