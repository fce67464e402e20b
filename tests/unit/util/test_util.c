#include <criterion/criterion.h>
#include <errno.h>

#include "util/error.h"
#include "util/log.h"

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
