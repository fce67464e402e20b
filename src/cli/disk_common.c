/* `vessel disk`: helpers the subcommands share (cli/disk.h). */
#include "cli/disk.h"

int disk_exit_for(int err)
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

int disk_fail(int err)
{
	cli_error(SUB, "%s", err_msg());
	return disk_exit_for(err);
}

/* ---- progress ---------------------------------------------------------- */

void disk_progress_init(struct disk_progress *p, bool forced)
{
	p->on = forced || isatty(STDERR_FILENO);
	p->last = -1;
}

void disk_progress_cb(uint64_t done, uint64_t total, void *ctx)
{
	struct disk_progress *p = ctx;
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

int disk_bad_option(const char *sub, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	return cli_usage_error(sub, "bad option or missing value near '%s' (try `vessel %s --help`)", arg, sub);
}

int disk_parse_sub(const char *s, enum block_subformat *out)
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

bool disk_ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcasecmp(s + a - b, suf);
}

void disk_human_size(uint64_t b, char *out, size_t len)
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

int disk_open_image(const char *path, const char *fmt, const char *filter, unsigned flags, struct block_dev **out)
{
	struct block_open_spec spec = { .path = path, .format = fmt, .flags = flags, .filter = filter };
	return block_open_stack(&spec, out);
}
