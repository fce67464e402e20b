#include <criterion/criterion.h>
#include <errno.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/log.h"

Test(size, units)
{
	unsigned long long v;
	cr_assert_eq(cli_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(cli_parse_size("512M", &v), 0);
	cr_assert_eq(v, 512ull << 20);
	cr_assert_eq(cli_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(cli_parse_size("1.5k", &v), 0);
	cr_assert_eq(v, 1536);
	cr_assert_eq(cli_parse_size("1T", &v), 0);
	cr_assert_eq(v, 1ull << 40);
}

Test(size, rejects_garbage)
{
	unsigned long long v;
	cr_assert_eq(cli_parse_size("", &v), -EINVAL);
	cr_assert_eq(cli_parse_size("12Q", &v), -EINVAL);
	cr_assert_eq(cli_parse_size("-1M", &v), -EINVAL);
	cr_assert_eq(cli_parse_size("1.1", &v), -EINVAL);
	cr_assert_eq(cli_parse_size("M", &v), -EINVAL);
	cr_assert_eq(cli_parse_size("1e30", &v), -EINVAL);
}

Test(error, set_and_wrap)
{
	cr_assert_eq(err_set(-ENOENT, "no %s", "file"), -ENOENT);
	cr_assert_str_eq(err_msg(), "no file");
	cr_assert_eq(err_wrap(-ENOENT, "disk %d", 3), -ENOENT);
	cr_assert_str_eq(err_msg(), "disk 3: no file");
	err_clear();
	cr_assert_str_eq(err_msg(), "unknown error");
}

Test(log, levels)
{
	enum log_level l;
	cr_assert_eq(log_parse_level("debug", &l), 0);
	cr_assert_eq(l, LOG_DEBUG);
	cr_assert_eq(log_parse_level("loud", &l), -1);
	log_threshold = LOG_WARN;
	log_raise_verbosity(1);
	cr_assert_eq(log_threshold, LOG_INFO);
	log_raise_verbosity(10);
	cr_assert_eq(log_threshold, LOG_TRACE);
}
