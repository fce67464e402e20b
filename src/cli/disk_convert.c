/* `vessel disk convert`: copy an image into another format, keeping it sparse. */
#include "cli/disk.h"

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

int disk_cmd_convert(int argc, char **argv)
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
			if (disk_parse_sub(optarg, &o.sub) < 0 || o.sub == BLOCK_SUB_DIFFERENCING)
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
		default: return disk_bad_option(SUB " convert", argv);
		}
	}
	if (optind + 2 != argc)
		return cli_usage_error(SUB " convert", "expected SOURCE and DEST (try `vessel disk convert --help`)");
	const char *src_path = argv[optind], *dst_path = argv[optind + 1];
	if (!o.format)
		o.format = o.sub != BLOCK_SUB_DEFAULT || disk_ends_with(dst_path, ".vhd") || disk_ends_with(dst_path, ".vpc") ? "vhd" : "raw";
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
	struct disk_progress pr;
	/* A copy keeps the source's size; rounding up to a CHS size only
	 * when asked (qemu-img convert does the same with force_size). */
	o.exact_size = !round_chs;
	disk_progress_init(&pr, prog);
	int ret = crypt_disk_convert(&src, dst_path, &o, ofilter, disk_progress_cb, &pr);
	return ret < 0 ? disk_fail(ret) : EXIT_OK;
}
