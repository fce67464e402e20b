/* `vessel disk` (src/cli/disk*.c): what the subcommands share.  One file
 * per subcommand; the image describer is block_describe()
 * (block/describe.h); the I/O benchmark is bench/disk/bench-disk. */
#ifndef VESSEL_CLI_DISK_H
#define VESSEL_CLI_DISK_H

#include "cli/cli.h"
#include "block/describe.h"
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

/* Bad input (the user's arguments or the file's content) is exit 2; the
 * rest (I/O errors, no space, permissions) is a runtime error. */
int disk_exit_for(int err);
/* Prints err_msg() and returns disk_exit_for(err). */
int disk_fail(int err);

/* A progress bar on stderr, when it is a terminal or forced (-p). */
struct disk_progress {
	bool on;
	int last;
};
void disk_progress_init(struct disk_progress *p, bool forced);
void disk_progress_cb(uint64_t done, uint64_t total, void *ctx);

/* getopt's own messages are off (opterr = 0): one line from us instead. */
int disk_bad_option(const char *sub, char **argv);
/* "fixed", "dynamic", "differencing" (or "diff"); -EINVAL otherwise. */
int disk_parse_sub(const char *s, enum block_subformat *out);
/* Case-insensitive suffix test. */
bool disk_ends_with(const char *s, const char *suf);
/* "1.5 GiB" */
void disk_human_size(uint64_t b, char *out, size_t len);
/* Opens path (+ optional filter) the way every subcommand does. */
int disk_open_image(const char *path, const char *fmt, const char *filter, unsigned flags, struct block_dev **out);

int disk_cmd_create(int argc, char **argv);
int disk_cmd_info(int argc, char **argv);
int disk_cmd_check(int argc, char **argv);
int disk_cmd_convert(int argc, char **argv);
int disk_cmd_resize(int argc, char **argv);
int disk_cmd_commit(int argc, char **argv);
int disk_cmd_rebase(int argc, char **argv);
int disk_cmd_io(int argc, char **argv);

#endif
