/* `vessel disk`: create, inspect, check, convert, resize, commit and rebase
 * virtual disks (raw and VHD), and `io`, a scriptable I/O driver for tests.
 *
 * Exit codes (cli.h): 0 success, 1 runtime error, 2 bad usage or a bad
 * input file.  Long operations draw a progress bar on stderr when it is a
 * terminal (or with -p), and print nothing otherwise.
 *
 * Hooks for filters (sector encryption): every subcommand that opens an
 * image takes `--filter NAME[:OPTS]`, resolved through the block layer's
 * filter registry (block_filter_register); create and convert go through
 * crypt_disk_create()/crypt_disk_convert(), which write the filter's
 * container into the new image. */
#include "cli/cli.h"
#include "block/block.h"
#include "block/crypt_disk.h"
#include "block/crypt_filter.h"
#include "block/vhd.h"
#include "util/error.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUB "disk"

static const char disk_usage[] =
	"usage: vessel disk <command> [options] ...\n"
	"\n"
	"create, inspect, check and convert virtual disks (raw, VHD).\n"
	"\n"
	"commands:\n"
	"  create    make a new image (raw; VHD fixed, dynamic or differencing)\n"
	"  info      describe an image (format, sizes, geometry, parent chain)\n"
	"  check     verify an image's metadata; --repair fixes what is safe to fix\n"
	"  convert   copy an image into another format, keeping it sparse\n"
	"  resize    change the virtual size\n"
	"  commit    merge a differencing disk into its parent\n"
	"  rebase    point a differencing disk at another parent\n"
	"  io        run read/write/flush commands from stdin on an image (testing)\n"
	"  bench     time a request pattern through the block layer (as qemu-img bench)\n"
	"\n"
	"options:\n"
	"  -h, --help   this help; `vessel disk COMMAND --help` for a command's options\n";

/* Bad input (the user's arguments or the file's content) is exit 2; the
 * rest (I/O errors, no space, permissions) is a runtime error. */
static int exit_for(int err)
{
	switch (-err) {
	case EINVAL: case EBADMSG: case ELOOP: case ENOENT: case ENOTDIR: case EISDIR:
	case ENAMETOOLONG: case EEXIST: case EFBIG: case ENOEXEC: case ERANGE:
	case EKEYREJECTED: case EPROTO: /* wrong passphrase; plug-in of another ABI */
		return EXIT_USAGE;
	default:
		return EXIT_FAILURE_RUN;
	}
}

static int fail(int err)
{
	cli_error(SUB, "%s", err_msg());
	return exit_for(err);
}

/* ---- progress ---------------------------------------------------------- */

struct progress {
	bool on;
	int last;
};

static void progress_init(struct progress *p, bool forced)
{
	p->on = forced || isatty(STDERR_FILENO);
	p->last = -1;
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
	struct progress *p = ctx;
	if (!p->on || !total)
		return;
	int pct = (int)(done * 100 / total);
	if (pct == p->last)
		return;
	p->last = pct;
	char bar[41];
	int fill = pct * 40 / 100;
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[40] = 0;
	fprintf(stderr, "\r[%s] %3d%%", bar, pct);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* ---- helpers ------------------------------------------------------------- */

/* getopt's own messages are off (opterr = 0): one line from us instead. */
static int bad_option(const char *sub, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	return cli_usage_error(sub, "bad option or missing value near '%s' (try `vessel %s --help`)", arg, sub);
}

static int parse_sub(const char *s, enum block_subformat *out)
{
	if (!strcmp(s, "fixed"))
		*out = BLOCK_SUB_FIXED;
	else if (!strcmp(s, "dynamic"))
		*out = BLOCK_SUB_DYNAMIC;
	else if (!strcmp(s, "differencing") || !strcmp(s, "diff"))
		*out = BLOCK_SUB_DIFFERENCING;
	else
		return -EINVAL;
	return 0;
}

static const char *vhd_type_name(uint32_t t)
{
	return t == VHD_TYPE_FIXED ? "fixed" : t == VHD_TYPE_DYNAMIC ? "dynamic" : t == VHD_TYPE_DIFF ? "differencing" : "?";
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcasecmp(s + a - b, suf);
}

static void human_size(uint64_t b, char *out, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.3g %s" : "%.0f %s", v, u[i]);
}

static void uuid_str(const uint8_t *u, char *out)
{
	sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Opens path (+ optional filter) the way every subcommand does. */
static int open_image(const char *path, const char *fmt, const char *filter, unsigned flags, struct block_dev **out)
{
	struct block_open_spec spec = { .path = path, .format = fmt, .flags = flags, .filter = filter };
	return block_open_stack(&spec, out);
}

/* ---- create -------------------------------------------------------------- */

static const char create_usage[] =
	"usage: vessel disk create [options] FILE [SIZE]\n"
	"\n"
	"Creates a new disk image.  SIZE takes K, M, G, T suffixes (powers of 1024).\n"
	"\n"
	"options:\n"
	"  -f, --format FMT        raw or vhd (default: vhd for *.vhd/*.vpc or with\n"
	"                          --parent, raw otherwise)\n"
	"  -t, --type TYPE         vhd: fixed, dynamic (default) or differencing\n"
	"  -s, --size SIZE         virtual size (or the SIZE argument)\n"
	"  -b, --parent FILE       make a differencing VHD over FILE (size from it)\n"
	"      --block-size SIZE   vhd dynamic: block size, a power of two (default 2M)\n"
	"      --preallocate       raw: allocate the whole file now\n"
	"      --exact-size        vhd: keep SIZE exactly; otherwise it is rounded up to\n"
	"                          the next CHS geometry, as Virtual PC and qemu-img do,\n"
	"                          so every reader sees the same size (docs/disks.md)\n"
	"      --filter SPEC       add a filter container (NAME[:OPTS]) over the image\n"
	"      --encrypt[=OPTS]    LUKS2-encrypt it (docs/disk-encryption.md), with\n"
	"      --key-file FILE     the passphrase: the whole content of FILE\n"
	"  -h, --help              this help\n";

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { "type", required_argument, NULL, 't' },
		{ "subformat", required_argument, NULL, 't' }, { "size", required_argument, NULL, 's' },
		{ "parent", required_argument, NULL, 'b' }, { "block-size", required_argument, NULL, 'B' },
		{ "preallocate", no_argument, NULL, 'P' }, { "filter", required_argument, NULL, 'F' },
		{ "exact-size", no_argument, NULL, 'E' }, { "help", no_argument, NULL, 'h' },
		{ "encrypt", optional_argument, NULL, 'X' }, { "key-file", required_argument, NULL, 'K' },
		{ 0 } };
	struct block_create_opts o = { 0 };
	const char *size_s = NULL, *filter = NULL, *key_file = NULL, *enc_opts = NULL;
	bool encrypt = false;
	char enc_spec[4200];
	int c;
	while ((c = getopt_long(argc, argv, "f:t:s:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 't':
			if (parse_sub(optarg, &o.sub) < 0)
				return cli_usage_error(SUB " create", "unknown type '%s' (fixed, dynamic, differencing)", optarg);
			break;
		case 's': size_s = optarg; break;
		case 'b': o.parent = optarg; break;
		case 'B': {
			unsigned long long bs;
			if (cli_parse_size(optarg, &bs) < 0 || bs > UINT32_MAX)
				return cli_usage_error(SUB " create", "bad block size '%s'", optarg);
			o.block_size = (uint32_t)bs;
			break;
		}
		case 'P': o.preallocate = true; break;
		case 'E': o.exact_size = true; break;
		case 'F': filter = optarg; break;
		case 'X': encrypt = true; enc_opts = optarg; break;
		case 'K': key_file = optarg; break;
		case 'h': fputs(create_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " create", argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(SUB " create", "missing FILE (try `vessel disk create --help`)");
	const char *path = argv[optind++];
	if (optind < argc && !size_s)
		size_s = argv[optind++];
	if (optind < argc)
		return cli_usage_error(SUB " create", "unexpected argument '%s'", argv[optind]);
	if (!o.format)
		o.format = o.parent || o.sub != BLOCK_SUB_DEFAULT || ends_with(path, ".vhd") || ends_with(path, ".vpc") ? "vhd" : "raw";
	if (strcmp(o.format, "raw") && strcmp(o.format, "vhd") && strcmp(o.format, "vpc"))
		return cli_usage_error(SUB " create", "unknown format '%s' (raw, vhd)", o.format);
	if (o.parent && o.sub == BLOCK_SUB_DEFAULT)
		o.sub = BLOCK_SUB_DIFFERENCING;
	if (encrypt) {
		if (filter)
			return cli_usage_error(SUB " create", "--encrypt and --filter exclude each other");
		if (o.sub == BLOCK_SUB_DIFFERENCING)
			return cli_usage_error(SUB " create", "a differencing disk is encrypted when its parent is "
					       "(it shares the parent's LUKS2 header); drop --encrypt");
		if (crypt_disk_luks_spec(key_file, enc_opts, enc_spec, sizeof(enc_spec)) < 0)
			return cli_usage_error(SUB " create", "%s", err_msg());
		filter = enc_spec;
	}
	if (o.sub == BLOCK_SUB_DIFFERENCING) {
		if (!o.parent)
			return cli_usage_error(SUB " create", "a differencing disk needs --parent");
		if (size_s)
			return cli_usage_error(SUB " create", "a differencing disk takes its size from the parent");
	} else {
		unsigned long long size;
		if (!size_s)
			return cli_usage_error(SUB " create", "missing SIZE");
		if (cli_parse_size(size_s, &size) < 0)
			return cli_usage_error(SUB " create", "bad size '%s' (e.g. 512M, 10G)", size_s);
		o.size = size;  /* a filter's container header comes on top */
	}
	int ret = crypt_disk_create(path, &o, filter);
	return ret < 0 ? fail(ret) : EXIT_OK;
}

/* ---- info ------------------------------------------------------------------ */

static const char info_usage[] =
	"usage: vessel disk info [options] FILE\n"
	"\n"
	"Describes an image: format, virtual size, space used, geometry, parent chain\n"
	"and the state of its checksums.\n"
	"\n"
	"options:\n"
	"  -f, --format FMT   raw or vhd (default: probe)\n"
	"      --json         machine-readable output\n"
	"  -h, --help         this help\n";

static json_t *describe(const char *path, const char *fmt, int *err)
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
	if (block_file_open(&bf, path, BLOCK_OPEN_RDONLY) == 0) {
		block_file_size(&bf, &fsize);
		block_file_allocated(&bf, &alloc);
		block_file_close(&bf);
	}
	json_object_set_new(j, "file-size", json_integer((json_int_t)fsize));
	json_object_set_new(j, "allocated-bytes", json_integer((json_int_t)alloc));
	if (strcmp(f->name, "vhd")) {
		json_object_set_new(j, "virtual-size", json_integer((json_int_t)(fsize & ~(uint64_t)511)));
		return j;
	}
	struct vhd_report rep;
	struct vhd_meta m;
	ret = vhd_check(path, 0, &rep, &m);
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
	json_object_set_new(j, "subformat", json_string(vhd_type_name(ft->type)));
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
		if (block_open(path, "vhd", BLOCK_OPEN_RDONLY, &bd) == 0) {
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
					json_object_set_new(e, "subformat", json_string(vhd_type_name(pi.meta->footer.type)));
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
	return j;
}

static int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { 0 } };
	const char *fmt = NULL;
	bool js = false;
	int c;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'j': js = true; break;
		case 'h': fputs(info_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " info", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " info", "expected one FILE (try `vessel disk info --help`)");
	int err = 0;
	json_t *j = describe(argv[optind], fmt, &err);
	if (!j)
		return fail(err);
	/* LUKS2 header facts, without the passphrase (docs/disk-encryption.md). */
	crypt_disk_describe(argv[optind], fmt, j);
	if (js) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(j);
		return EXIT_OK;
	}
	char a[32], b[32], d[32];
	uint64_t vs = (uint64_t)json_integer_value(json_object_get(j, "virtual-size"));
	human_size(vs, a, sizeof(a));
	human_size((uint64_t)json_integer_value(json_object_get(j, "file-size")), b, sizeof(b));
	human_size((uint64_t)json_integer_value(json_object_get(j, "allocated-bytes")), d, sizeof(d));
	const char *sub = json_string_value(json_object_get(j, "subformat"));
	printf("image: %s\n", argv[optind]);
	printf("format: %s%s%s%s\n", json_string_value(json_object_get(j, "format")), sub ? " (" : "", sub ? sub : "", sub ? ")" : "");
	printf("virtual size: %s (%" PRIu64 " bytes)\n", a, vs);
	printf("file size: %s\n", b);
	printf("disk usage: %s\n", d);
	json_t *g = json_object_get(j, "geometry");
	if (g)
		printf("geometry: %lld/%lld/%lld (cylinders/heads/sectors)\n",
		       (long long)json_integer_value(json_object_get(g, "cylinders")),
		       (long long)json_integer_value(json_object_get(g, "heads")),
		       (long long)json_integer_value(json_object_get(g, "sectors-per-track")));
	if (json_object_get(j, "creator"))
		printf("creator: \"%s\" %s\n", json_string_value(json_object_get(j, "creator")),
		       json_string_value(json_object_get(j, "creator-version")));
	if (json_object_get(j, "unique-id"))
		printf("unique id: %s\n", json_string_value(json_object_get(j, "unique-id")));
	if (json_object_get(j, "block-size"))
		printf("blocks: %lld of %lld allocated, %lld bytes each\n",
		       (long long)json_integer_value(json_object_get(j, "blocks-allocated")),
		       (long long)json_integer_value(json_object_get(j, "blocks-total")),
		       (long long)json_integer_value(json_object_get(j, "block-size")));
	json_t *cs = json_object_get(j, "checksums");
	if (cs) {
		const char *k;
		json_t *v;
		printf("checksums:");
		json_object_foreach(cs, k, v)
			printf(" %s %s;", k, json_string_value(v));
		printf("\n");
	}
	json_t *enc = json_object_get(j, "encryption");
	if (enc && json_object_get(enc, "error"))
		printf("encryption: LUKS2, unusable: %s\n", json_string_value(json_object_get(enc, "error")));
	else if (enc)
		printf("encryption: LUKS2 %s, %lld-bit key, %lld-byte sectors, data at %lld, %lld keyslot(s) (%s)\n",
		       json_string_value(json_object_get(enc, "cipher")),
		       (long long)json_integer_value(json_object_get(enc, "key-bits")),
		       (long long)json_integer_value(json_object_get(enc, "sector-size")),
		       (long long)json_integer_value(json_object_get(enc, "data-offset")),
		       (long long)json_integer_value(json_object_get(enc, "keyslots")),
		       json_object_get(enc, "pbkdf") ? json_string_value(json_object_get(enc, "pbkdf")) : "?");
	if (json_object_get(j, "parent"))
		printf("parent: %s\n", json_string_value(json_object_get(j, "parent")));
	if (json_object_get(j, "parent-error"))
		printf("parent: unusable: %s\n", json_string_value(json_object_get(j, "parent-error")));
	json_t *chain = json_object_get(j, "backing-chain");
	size_t i;
	json_t *e;
	json_array_foreach(chain, i, e)
		printf("  %*s-> %s (%s%s%s)\n", (int)i * 2, "", json_string_value(json_object_get(e, "filename")),
		       json_string_value(json_object_get(e, "format")),
		       json_object_get(e, "subformat") ? " " : "",
		       json_object_get(e, "subformat") ? json_string_value(json_object_get(e, "subformat")) : "");
	json_decref(j);
	return EXIT_OK;
}

/* ---- check ---------------------------------------------------------------- */

static const char check_usage[] =
	"usage: vessel disk check [options] FILE\n"
	"\n"
	"Checks an image's metadata: footer and header checksums, the block allocation\n"
	"table (entries inside the file, no overlaps), the footer copy, leaked space and\n"
	"the parent chain.  Exit status: 0 no errors (warnings such as leaked space\n"
	"allowed), 2 errors found, 1 the check itself failed.\n"
	"\n"
	"options:\n"
	"  -r, --repair   fix what is safe to fix: a missing or stale footer or footer\n"
	"                 copy, space leaked by an interrupted allocation\n"
	"  -f, --format FMT   raw or vhd (default: probe)\n"
	"      --json     machine-readable output\n"
	"  -h, --help     this help\n";

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repair", no_argument, NULL, 'r' }, { "format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	bool repair = false, js = false;
	const char *fmt = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "rf:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repair = true; break;
		case 'f': fmt = optarg; break;
		case 'j': js = true; break;
		case 'h': fputs(check_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " check", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " check", "expected one FILE (try `vessel disk check --help`)");
	const char *path = argv[optind];
	const struct block_format *f = NULL;
	int ret = fmt ? 0 : block_probe(path, &f);
	if (ret < 0)
		return fail(ret);
	if (fmt)
		f = block_format_find(fmt);
	if (!f)
		return cli_usage_error(SUB " check", "unknown format '%s' (raw, vhd)", fmt);
	struct vhd_report rep = { 0 };
	if (strcmp(f->name, "vhd") == 0) {
		ret = vhd_check(path, repair ? VHD_CHECK_REPAIR : 0, &rep, NULL);
		if (ret < 0)
			return fail(ret);
	}
	if (js) {
		json_t *j = json_object();
		json_object_set_new(j, "filename", json_string(path));
		json_object_set_new(j, "format", json_string(f->name));
		json_object_set_new(j, "errors", json_integer(rep.errors));
		json_object_set_new(j, "warnings", json_integer(rep.warnings));
		json_object_set_new(j, "repairable", json_boolean(rep.errors && rep.repairable));
		json_t *a = json_array();
		for (unsigned i = 0; i < rep.n_msgs; i++)
			json_array_append_new(a, json_string(rep.msgs[i]));
		json_object_set_new(j, "messages", a);
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		for (unsigned i = 0; i < rep.n_msgs; i++)
			printf("%s\n", rep.msgs[i]);
		if (strcmp(f->name, "vhd"))
			printf("%s: raw image: no metadata to check\n", path);
		else if (!rep.errors)
			printf("%s: no errors found%s\n", path, rep.warnings ? " (see warnings)" : "");
		else
			printf("%s: %u error(s)%s\n", path, rep.errors,
			       rep.repairable ? ", all repairable with --repair" : "");
	}
	return rep.errors ? EXIT_USAGE : EXIT_OK;
}

/* ---- convert ---------------------------------------------------------------- */

static const char convert_usage[] =
	"usage: vessel disk convert [options] SOURCE DEST\n"
	"\n"
	"Copies SOURCE (through its parent chain) into a new image DEST.  Zero\n"
	"ranges are not written, so DEST stays sparse.\n"
	"\n"
	"options:\n"
	"  -f, --format FMT        source format (default: probe)\n"
	"  -O, --output-format FMT raw or vhd (default: from DEST's name, else raw)\n"
	"  -t, --type TYPE         vhd: fixed or dynamic (default)\n"
	"      --filter SPEC       source filter NAME[:OPTS]\n"
	"      --output-filter SPEC  add a filter container over DEST\n"
	"      --encrypt[=OPTS]    LUKS2-encrypt DEST (docs/disk-encryption.md)\n"
	"      --decrypt           SOURCE is LUKS2-encrypted: unlock it\n"
	"      --key-file FILE     the passphrase for --encrypt/--decrypt (whole file)\n"
	"      --round-size        vhd: round the size up to the next CHS geometry\n"
	"                          (default: keep it exactly, marked by the maximum\n"
	"                          geometry as qemu-img's force_size does)\n"
	"  -p, --progress          progress bar even when stderr is not a terminal\n"
	"  -h, --help              this help\n";

static int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { "output-format", required_argument, NULL, 'O' },
		{ "type", required_argument, NULL, 't' }, { "subformat", required_argument, NULL, 't' },
		{ "filter", required_argument, NULL, 'F' }, { "output-filter", required_argument, NULL, 'G' },
		{ "progress", no_argument, NULL, 'p' }, { "round-size", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' }, { "encrypt", optional_argument, NULL, 'X' },
		{ "decrypt", no_argument, NULL, 'Y' }, { "key-file", required_argument, NULL, 'K' }, { 0 } };
	const char *fmt = NULL, *filter = NULL, *ofilter = NULL, *key_file = NULL, *enc_opts = NULL;
	bool encrypt = false, decrypt = false;
	char enc_spec[4200], dec_spec[4200];
	struct block_create_opts o = { 0 };
	bool prog = false, round_chs = false;
	int c;
	while ((c = getopt_long(argc, argv, "f:O:t:ph", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': o.format = optarg; break;
		case 't':
			if (parse_sub(optarg, &o.sub) < 0 || o.sub == BLOCK_SUB_DIFFERENCING)
				return cli_usage_error(SUB " convert", "bad type '%s' (fixed, dynamic)", optarg);
			break;
		case 'F': filter = optarg; break;
		case 'G': ofilter = optarg; break;
		case 'X': encrypt = true; enc_opts = optarg; break;
		case 'Y': decrypt = true; break;
		case 'K': key_file = optarg; break;
		case 'R': round_chs = true; break;
		case 'p': prog = true; break;
		case 'h': fputs(convert_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " convert", argv);
		}
	}
	if (optind + 2 != argc)
		return cli_usage_error(SUB " convert", "expected SOURCE and DEST (try `vessel disk convert --help`)");
	const char *src_path = argv[optind], *dst_path = argv[optind + 1];
	if (!o.format)
		o.format = o.sub != BLOCK_SUB_DEFAULT || ends_with(dst_path, ".vhd") || ends_with(dst_path, ".vpc") ? "vhd" : "raw";
	if (strcmp(o.format, "raw") && strcmp(o.format, "vhd") && strcmp(o.format, "vpc"))
		return cli_usage_error(SUB " convert", "unknown format '%s' (raw, vhd)", o.format);
	if ((encrypt && ofilter) || (decrypt && filter))
		return cli_usage_error(SUB " convert", "--encrypt/--decrypt and --output-filter/--filter exclude each other");
	if (encrypt) {
		if (crypt_disk_luks_spec(key_file, enc_opts, enc_spec, sizeof(enc_spec)) < 0)
			return cli_usage_error(SUB " convert", "%s", err_msg());
		ofilter = enc_spec;
	}
	if (decrypt) {
		if (crypt_disk_luks_spec(key_file, NULL, dec_spec, sizeof(dec_spec)) < 0)
			return cli_usage_error(SUB " convert", "%s", err_msg());
		filter = dec_spec;
	}
	struct block_open_spec src = { .path = src_path, .format = fmt, .flags = BLOCK_OPEN_RDONLY, .filter = filter };
	struct progress pr;
	/* A copy keeps the source's size; rounding up to a CHS size only
	 * when asked (qemu-img convert does the same with force_size). */
	o.exact_size = !round_chs;
	progress_init(&pr, prog);
	int ret = crypt_disk_convert(&src, dst_path, &o, ofilter, progress_cb, &pr);
	return ret < 0 ? fail(ret) : EXIT_OK;
}

/* ---- resize ------------------------------------------------------------------- */

static const char resize_usage[] =
	"usage: vessel disk resize [options] FILE [+|-]SIZE\n"
	"\n"
	"Sets the virtual size (or grows/shrinks it by SIZE with a sign).\n"
	"Shrinking destroys the data past the new end and is refused without --shrink.\n"
	"\n"
	"options:\n"
	"      --shrink   allow making the disk smaller\n"
	"  -f, --format FMT   raw or vhd (default: probe)\n"
	"  -h, --help     this help\n";

static int cmd_resize(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "shrink", no_argument, NULL, 'S' }, { "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' }, { 0 } };
	bool shrink = false;
	const char *fmt = NULL;
	int c;
	/* "+" keeps getopt from taking "-1G" as an option. */
	while ((c = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S': shrink = true; break;
		case 'f': fmt = optarg; break;
		case 'h': fputs(resize_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " resize", argv);
		}
	}
	if (optind + 2 != argc)
		return cli_usage_error(SUB " resize", "expected FILE and SIZE (try `vessel disk resize --help`)");
	const char *path = argv[optind], *ss = argv[optind + 1];
	int sign = ss[0] == '+' ? 1 : ss[0] == '-' ? -1 : 0;
	unsigned long long v;
	if (cli_parse_size(ss + (sign != 0), &v) < 0)
		return cli_usage_error(SUB " resize", "bad size '%s'", ss);
	struct block_dev *bd;
	int ret = open_image(path, fmt, NULL, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_PARENT, &bd);
	if (ret < 0)
		return fail(ret);
	uint64_t cur = bd->sectors << BLOCK_SECTOR_SHIFT;
	bool is_vhd = vhd_is_vhd(bd);
	block_close(bd);
	if (sign < 0 && v > cur)
		return cli_usage_error(SUB " resize", "cannot shrink by more than the size");
	uint64_t size = sign > 0 ? cur + v : sign < 0 ? cur - v : v;
	if (size % BLOCK_SECTOR_SIZE)
		return cli_usage_error(SUB " resize", "size %llu is not a multiple of 512 bytes", (unsigned long long)size);
	if (size < cur && !shrink)
		return cli_usage_error(SUB " resize", "shrinking from %llu to %llu bytes destroys data: pass --shrink to do it",
				       (unsigned long long)cur, (unsigned long long)size);
	if (size < cur)
		fprintf(stderr, "vessel disk resize: warning: shrinking %s discards everything past %llu bytes\n",
			path, (unsigned long long)size);
	if (is_vhd) {
		ret = vhd_resize(path, size, shrink);
	} else {
		struct block_file f;
		ret = block_file_open(&f, path, 0);
		if (ret == 0) {
			ret = block_file_truncate(&f, size);
			if (ret == 0)
				ret = block_file_sync(&f);
			block_file_close(&f);
		}
	}
	return ret < 0 ? fail(ret) : EXIT_OK;
}

/* ---- commit / rebase ------------------------------------------------------------ */

static const char commit_usage[] =
	"usage: vessel disk commit [options] FILE\n"
	"\n"
	"Writes the sectors a differencing disk holds into its parent.  The child\n"
	"stays valid (it reads the same as before).\n"
	"\n"
	"options:\n"
	"  -p, --progress   progress bar even when stderr is not a terminal\n"
	"  -h, --help       this help\n";

static int cmd_commit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "progress", no_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	bool prog = false;
	int c;
	while ((c = getopt_long(argc, argv, "ph", opts, NULL)) != -1) {
		switch (c) {
		case 'p': prog = true; break;
		case 'h': fputs(commit_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " commit", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " commit", "expected one FILE (try `vessel disk commit --help`)");
	struct progress pr;
	progress_init(&pr, prog);
	int ret = vhd_commit(argv[optind], progress_cb, &pr);
	return ret < 0 ? fail(ret) : EXIT_OK;
}

static const char rebase_usage[] =
	"usage: vessel disk rebase [options] -b PARENT FILE\n"
	"\n"
	"Makes PARENT the parent of the differencing disk FILE.  By default the\n"
	"sectors whose content would change are first copied into FILE, so FILE\n"
	"reads the same afterwards (the old parent must be readable).\n"
	"\n"
	"options:\n"
	"  -b, --parent FILE  the new parent (a VHD image)\n"
	"  -u, --unsafe       only rewrite the parent link (for a parent that was moved\n"
	"                     or renamed, or whose content is known to be the same)\n"
	"  -p, --progress     progress bar even when stderr is not a terminal\n"
	"  -h, --help         this help\n";

static int cmd_rebase(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "parent", required_argument, NULL, 'b' }, { "unsafe", no_argument, NULL, 'u' },
		{ "progress", no_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	const char *parent = NULL;
	bool unsafe = false, prog = false;
	int c;
	while ((c = getopt_long(argc, argv, "b:uph", opts, NULL)) != -1) {
		switch (c) {
		case 'b': parent = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': prog = true; break;
		case 'h': fputs(rebase_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " rebase", argv);
		}
	}
	if (!parent)
		return cli_usage_error(SUB " rebase", "missing -b PARENT (try `vessel disk rebase --help`)");
	if (optind + 1 != argc)
		return cli_usage_error(SUB " rebase", "expected one FILE (try `vessel disk rebase --help`)");
	struct progress pr;
	progress_init(&pr, prog);
	int ret = vhd_rebase(argv[optind], parent, unsafe, progress_cb, &pr);
	return ret < 0 ? fail(ret) : EXIT_OK;
}

/* ---- io ---------------------------------------------------------------------------- */

static const char io_usage[] =
	"usage: vessel disk io [options] FILE\n"
	"\n"
	"Runs I/O commands read from stdin, one per line, and answers each with a\n"
	"line \"ok ...\" or \"error: ...\" on stdout.  Offsets and lengths are bytes\n"
	"(K/M/G suffixes), multiples of 512.  The pattern of SEED fills each sector s\n"
	"with 64 little-endian copies of (SEED * 0x9e3779b97f4a7c15 + s) mod 2^64.\n"
	"\n"
	"  write OFFSET LENGTH SEED     write the pattern\n"
	"  verify OFFSET LENGTH SEED    compare with the pattern (\"ok\" or \"mismatch SECTOR\")\n"
	"  zero OFFSET LENGTH           write zeros\n"
	"  read OFFSET LENGTH           print the bytes' FNV-1a 64 hash\n"
	"  discard OFFSET LENGTH        discard\n"
	"  flush                        flush (every write before it is then durable)\n"
	"  stats                        per-operation counters\n"
	"\n"
	"options:\n"
	"  -f, --format FMT   raw or vhd (default: probe)\n"
	"  -r, --readonly     open read-only\n"
	"      --direct       O_DIRECT host I/O\n"
	"      --filter SPEC  filter NAME[:OPTS] over the image\n"
	"      --key-file FILE  the image is LUKS2-encrypted; FILE holds the passphrase\n"
	"  -h, --help         this help\n";

static void fill_pattern(uint8_t *buf, uint64_t sector, uint32_t n, uint64_t seed)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = seed * 0x9e3779b97f4a7c15ull + sector + i;
		uint8_t le[8];
		for (int k = 0; k < 8; k++)
			le[k] = (uint8_t)(v >> (8 * k));
		for (int w = 0; w < 64; w++)
			memcpy(buf + (size_t)i * 512 + (size_t)w * 8, le, 8);
	}
}

static int io_range(const char *a, const char *b, struct block_dev *bd, uint64_t *sector, uint32_t *count)
{
	unsigned long long off, len;
	if (!a || !b || cli_parse_size(a, &off) < 0 || cli_parse_size(b, &len) < 0 ||
	    off % 512 || len % 512 || len > (64ull << 20))
		return err_set(-EINVAL, "bad offset/length (multiples of 512, at most 64M)");
	*sector = off / 512;
	*count = (uint32_t)(len / 512);
	return 0;
}

static int cmd_io(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { "readonly", no_argument, NULL, 'r' },
		{ "direct", no_argument, NULL, 'D' }, { "filter", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' }, { "key-file", required_argument, NULL, 'K' }, { 0 } };
	const char *fmt = NULL, *filter = NULL, *key_file = NULL;
	char enc_spec[4200];
	unsigned flags = 0;
	int c;
	while ((c = getopt_long(argc, argv, "f:rh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'r': flags |= BLOCK_OPEN_RDONLY; break;
		case 'D': flags |= BLOCK_OPEN_DIRECT; break;
		case 'F': filter = optarg; break;
		case 'K': key_file = optarg; break;
		case 'h': fputs(io_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " io", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " io", "expected one FILE (try `vessel disk io --help`)");
	if (key_file) {
		if (filter)
			return cli_usage_error(SUB " io", "--key-file and --filter exclude each other");
		if (crypt_disk_luks_spec(key_file, NULL, enc_spec, sizeof(enc_spec)) < 0)
			return cli_usage_error(SUB " io", "%s", err_msg());
		filter = enc_spec;
	}
	struct block_dev *bd;
	int ret = open_image(argv[optind], fmt, filter, flags, &bd);
	if (ret < 0)
		return fail(ret);
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[512];
	uint8_t *buf = malloc(64u << 20);
	int status = EXIT_OK;
	while (buf && fgets(line, sizeof(line), stdin)) {
		char *save, *cmd = strtok_r(line, " \t\r\n", &save);
		if (!cmd)
			continue;
		char *a = strtok_r(NULL, " \t\r\n", &save), *b = strtok_r(NULL, " \t\r\n", &save);
		char *s = strtok_r(NULL, " \t\r\n", &save);
		uint64_t sector = 0;
		uint32_t count = 0;
		unsigned long long seed = s ? strtoull(s, NULL, 0) : 0;
		if (!strcmp(cmd, "flush")) {
			ret = block_flush(bd);
		} else if (!strcmp(cmd, "stats")) {
			struct block_stats st;
			block_stats_get(bd, &st);
			printf("stats read %" PRIu64 " %" PRIu64 " write %" PRIu64 " %" PRIu64 " flush %" PRIu64
			       " discard %" PRIu64 " errors %" PRIu64 "\n", st.ops[0], st.bytes[0], st.ops[1],
			       st.bytes[1], st.ops[2], st.ops[3], st.errors);
			continue;
		} else if ((ret = io_range(a, b, bd, &sector, &count)) < 0) {
			/* message set */
		} else if (!strcmp(cmd, "write") || !strcmp(cmd, "zero")) {
			if (cmd[0] == 'w')
				fill_pattern(buf, sector, count, seed);
			else
				memset(buf, 0, (size_t)count * 512);
			ret = block_write(bd, sector, buf, count);
		} else if (!strcmp(cmd, "verify")) {
			uint8_t *exp = malloc((size_t)count * 512 + 1);
			ret = exp ? block_read(bd, sector, buf, count) : err_set(-ENOMEM, "out of memory");
			if (ret == 0) {
				fill_pattern(exp, sector, count, seed);
				for (uint32_t i = 0; i < count; i++)
					if (memcmp(buf + (size_t)i * 512, exp + (size_t)i * 512, 512)) {
						printf("mismatch %" PRIu64 "\n", sector + i);
						ret = 1;
						break;
					}
			}
			free(exp);
			if (ret == 1) {
				status = EXIT_FAILURE_RUN;
				continue;
			}
		} else if (!strcmp(cmd, "read")) {
			ret = block_read(bd, sector, buf, count);
			if (ret == 0) {
				uint64_t h = 0xcbf29ce484222325ull;
				for (size_t i = 0; i < (size_t)count * 512; i++)
					h = (h ^ buf[i]) * 0x100000001b3ull;
				printf("ok %016" PRIx64 "\n", h);
				continue;
			}
		} else if (!strcmp(cmd, "discard")) {
			ret = block_discard(bd, sector, count);
		} else {
			ret = err_set(-EINVAL, "unknown command '%s'", cmd);
		}
		if (ret < 0) {
			printf("error: %s\n", err_msg());
			status = EXIT_FAILURE_RUN;
		} else {
			printf("ok\n");
		}
	}
	free(buf);
	block_close(bd);
	return status;
}

/* ---- bench ------------------------------------------------------------------------- */

static const char bench_usage[] =
	"usage: vessel disk bench [options] FILE\n"
	"\n"
	"Times COUNT requests through the block layer's request queue, with the\n"
	"request pattern of `qemu-img bench`: offsets start at 0 and advance by STEP\n"
	"modulo (size - request size).  Reads unless -w.  Prints the time taken.\n"
	"\n"
	"options:\n"
	"  -c, --count N        requests (default 75000)\n"
	"  -d, --depth N        requests in flight (default 64)\n"
	"  -s, --size BYTES     request size, a multiple of 512 (default 4K)\n"
	"  -S, --step BYTES     offset step (default: the request size)\n"
	"  -T, --threads N      queue worker threads (default 4)\n"
	"  -w, --write          write instead of read\n"
	"  -f, --format FMT     raw or vhd (default: probe)\n"
	"      --direct         O_DIRECT host I/O\n"
	"      --filter SPEC    filter NAME[:OPTS] over the image\n"
	"  -h, --help           this help\n";

struct bench {
	struct block_queue *q;
	uint64_t size, step, offset;
	size_t reqsize;
	unsigned long count, submitted, completed;
	unsigned errors;
	bool write;
	pthread_mutex_t lock;
	pthread_cond_t done;
};

struct bench_slot {
	struct block_req req;         /* first: the callback gets it back */
	struct iovec iov;
	struct bench *b;
};

/* Lock held. */
static bool bench_next(struct bench *b, struct bench_slot *s)
{
	if (b->submitted >= b->count)
		return false;
	b->submitted++;
	s->req.op = b->write ? BLOCK_OP_WRITE : BLOCK_OP_READ;
	s->req.sector = b->offset / BLOCK_SECTOR_SIZE;
	b->offset += b->step;
	b->offset = b->size <= b->reqsize ? 0 : b->offset % (b->size - b->reqsize);
	return true;
}

static void bench_complete(struct bench *b, int ret)
{
	if (ret < 0)
		b->errors++;
	if (++b->completed == b->count)
		pthread_cond_signal(&b->done);
}

static void bench_done(struct block_req *r, int ret)
{
	struct bench_slot *s = (struct bench_slot *)r;
	struct bench *b = s->b;
	pthread_mutex_lock(&b->lock);
	bench_complete(b, ret);
	bool more = bench_next(b, s);
	pthread_mutex_unlock(&b->lock);
	if (more && (ret = block_queue_submit(b->q, &s->req)) < 0) {
		pthread_mutex_lock(&b->lock);
		bench_complete(b, ret);
		pthread_mutex_unlock(&b->lock);
	}
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' }, { "depth", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' }, { "step", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'T' }, { "write", no_argument, NULL, 'w' },
		{ "format", required_argument, NULL, 'f' }, { "direct", no_argument, NULL, 'D' },
		{ "filter", required_argument, NULL, 'F' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	struct bench b = { .count = 75000, .reqsize = 4096 };
	unsigned long depth = 64, threads = 4;
	unsigned long long v;
	const char *fmt = NULL, *filter = NULL;
	unsigned flags = 0;
	int c;
	while ((c = getopt_long(argc, argv, "c:d:s:S:T:wf:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': b.count = strtoul(optarg, NULL, 0); break;
		case 'd': depth = strtoul(optarg, NULL, 0); break;
		case 's':
		case 'S':
			if (cli_parse_size(optarg, &v) < 0 || v % 512 || v > (64u << 20))
				return cli_usage_error(SUB " bench", "bad size '%s' (multiple of 512, at most 64M)", optarg);
			if (c == 's')
				b.reqsize = (size_t)v;
			else
				b.step = v;
			break;
		case 'T': threads = strtoul(optarg, NULL, 0); break;
		case 'w': b.write = true; break;
		case 'f': fmt = optarg; break;
		case 'D': flags |= BLOCK_OPEN_DIRECT; break;
		case 'F': filter = optarg; break;
		case 'h': fputs(bench_usage, stdout); return EXIT_OK;
		default: return bad_option(SUB " bench", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " bench", "expected one FILE (try `vessel disk bench --help`)");
	if (!b.count || !depth || depth > 4096 || !threads || threads > 64 || !b.reqsize)
		return cli_usage_error(SUB " bench", "count, depth (1..4096), threads (1..64) and size must be positive");
	if (!b.step)
		b.step = b.reqsize;
	struct block_dev *bd;
	int ret = open_image(argv[optind], fmt, filter, b.write ? flags : flags | BLOCK_OPEN_RDONLY, &bd);
	if (ret < 0)
		return fail(ret);
	b.size = bd->sectors << BLOCK_SECTOR_SHIFT;
	if (b.size < b.reqsize) {
		block_close(bd);
		return cli_usage_error(SUB " bench", "the disk is smaller than one request");
	}
	struct bench_slot *slots = calloc(depth, sizeof(*slots));
	void *bufs = NULL;
	if (!slots || posix_memalign(&bufs, BLOCK_BUF_ALIGN, depth * b.reqsize)) {
		free(slots);
		block_close(bd);
		return fail(err_set(-ENOMEM, "out of memory"));
	}
	memset(bufs, 0xa5, depth * b.reqsize);
	ret = block_queue_new(bd, (unsigned)threads, (unsigned)depth, &b.q);
	if (ret < 0) {
		free(slots);
		free(bufs);
		block_close(bd);
		return fail(ret);
	}
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.done, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long started = 0;
	pthread_mutex_lock(&b.lock);
	for (unsigned long i = 0; i < depth; i++) {
		slots[i].b = &b;
		slots[i].iov = (struct iovec){ (uint8_t *)bufs + i * b.reqsize, b.reqsize };
		slots[i].req.iov = &slots[i].iov;
		slots[i].req.iovcnt = 1;
		slots[i].req.done = bench_done;
		if (!bench_next(&b, &slots[i]))
			break;
		started++;
	}
	pthread_mutex_unlock(&b.lock);
	for (unsigned long i = 0; i < started; i++) {
		if ((ret = block_queue_submit(b.q, &slots[i].req)) < 0) {
			pthread_mutex_lock(&b.lock);
			bench_complete(&b, ret);
			pthread_mutex_unlock(&b.lock);
		}
	}
	pthread_mutex_lock(&b.lock);
	while (b.completed < b.count)
		pthread_cond_wait(&b.done, &b.lock);
	pthread_mutex_unlock(&b.lock);
	block_queue_free(b.q);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct block_stats st;
	block_stats_get(bd, &st);
	int op = b.write ? BLOCK_OP_WRITE : BLOCK_OP_READ;
	printf("Run completed in %.3f seconds.\n", secs);
	printf("%lu requests of %zu bytes: %.0f IOPS, %.1f MiB/s, mean latency %.1f us, %u errors\n",
	       b.count, b.reqsize, (double)b.count / secs, (double)b.count * (double)b.reqsize / secs / 1048576.0,
	       st.ops[op] ? (double)st.ns[op] / (double)st.ops[op] / 1000.0 : 0.0, b.errors);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.done);
	free(slots);
	free(bufs);
	block_close(bd);
	if (b.errors) {
		cli_error(SUB " bench", "%u requests failed: %s", b.errors, err_msg());
		return EXIT_FAILURE_RUN;
	}
	return EXIT_OK;
}

/* ---- dispatch ---------------------------------------------------------------------- */

int cli_disk_main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
		{ "create", cmd_create }, { "info", cmd_info }, { "check", cmd_check },
		{ "convert", cmd_convert }, { "resize", cmd_resize }, { "commit", cmd_commit },
		{ "rebase", cmd_rebase }, { "io", cmd_io }, { "bench", cmd_bench },
	};
	/* The encryption filters live in the static library: registering
	 * them here is also what links them in. */
	crypt_filters_register();
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(disk_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1 && argv[1][0] == '-')
		return cli_usage_error("disk", "unknown option '%s' (try `vessel disk --help`)", argv[1]);
	if (argc < 2)
		return cli_usage_error("disk", "missing command (try `vessel disk --help`)");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			optind = 1;
			opterr = 0;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	}
	return cli_usage_error("disk", "unknown command '%s' (try `vessel disk --help`)", argv[1]);
}
