/* `vessel disk info`: describe an image (block_describe) as text or JSON. */
#include "cli/disk.h"

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

int disk_cmd_info(int argc, char **argv)
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
		default: return disk_bad_option(SUB " info", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " info", "expected one FILE (try `vessel disk info --help`)");
	int err = 0;
	json_t *j = block_describe(argv[optind], fmt, &err);
	if (!j)
		return disk_fail(err);
	if (js) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(j);
		return EXIT_OK;
	}
	char a[32], b[32], d[32];
	uint64_t vs = (uint64_t)json_integer_value(json_object_get(j, "virtual-size"));
	disk_human_size(vs, a, sizeof(a));
	disk_human_size((uint64_t)json_integer_value(json_object_get(j, "file-size")), b, sizeof(b));
	disk_human_size((uint64_t)json_integer_value(json_object_get(j, "allocated-bytes")), d, sizeof(d));
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
