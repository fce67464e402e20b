/* `vessel disk create`: make a new image (raw; VHD fixed, dynamic or differencing), encrypted or not. */
#include "cli/disk.h"

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

int disk_cmd_create(int argc, char **argv)
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
			if (disk_parse_sub(optarg, &o.sub) < 0)
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
		default: return disk_bad_option(SUB " create", argv);
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
		o.format = o.parent || o.sub != BLOCK_SUB_DEFAULT || disk_ends_with(path, ".vhd") || disk_ends_with(path, ".vpc") ? "vhd" : "raw";
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
	return ret < 0 ? disk_fail(ret) : EXIT_OK;
}
