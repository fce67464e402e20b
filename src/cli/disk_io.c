/* `vessel disk io`: run read/write/flush commands from stdin on an image (testing). */
#include "cli/disk.h"

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

int disk_cmd_io(int argc, char **argv)
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
		default: return disk_bad_option(SUB " io", argv);
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
	int ret = disk_open_image(argv[optind], fmt, filter, flags, &bd);
	if (ret < 0)
		return disk_fail(ret);
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
