/* `vessel disk resize`: change the virtual size. */
#include "cli/disk.h"

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

int disk_cmd_resize(int argc, char **argv)
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
		default: return disk_bad_option(SUB " resize", argv);
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
	int ret = disk_open_image(path, fmt, NULL, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_PARENT, &bd);
	if (ret < 0)
		return disk_fail(ret);
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
	return ret < 0 ? disk_fail(ret) : EXIT_OK;
}
