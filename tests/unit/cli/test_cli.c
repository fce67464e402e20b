/* The CLI: size arguments, and the mapping of the way a run ended to an
 * exit code (docs/cli.md "Exit codes"), which only the CLI knows. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>

#include "cli/cli.h"
#include "util/error.h"

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

static void quiet(void)
{
	cr_redirect_stderr();
}

Test(exit_code, each_stop_reason_as_docs_cli_md_says, .init = quiet)
{
	cr_assert_eq(cli_run_exit_code(VM_STOP_POWEROFF, false, 0), EXIT_OK);
	cr_assert_eq(cli_run_exit_code(VM_STOP_RESET, false, 0), EXIT_OK);
	cr_assert_eq(cli_run_exit_code(VM_STOP_RESET, true, 0), EXIT_OK);
	cr_assert_eq(cli_run_exit_code(VM_STOP_TRIPLE_FAULT, false, 0), EXIT_TRIPLE_FAULT);
	cr_assert_eq(cli_run_exit_code(VM_STOP_QUIT, false, 0), EXIT_SIGNAL);
	cr_assert_eq(cli_run_exit_code(VM_STOP_ERROR, false, 0), EXIT_FAILURE_RUN);
	cr_assert_eq(cli_run_exit_code(VM_STOP_START_FAILED, false, 0), EXIT_FAILURE_RUN);
	cr_assert_eq(cli_run_exit_code(VM_STOP_BAD_INPUT, false, 0), EXIT_USAGE);
}

/* QEMU's isa-debug-exit convention, (value << 1) | 1, for the low byte
 * below 0x80; values 0x80-0xff have a code of their own (docs/cli.md). */
Test(exit_code, debug_exit_value, .init = quiet)
{
	cr_assert_eq(cli_run_exit_code(VM_STOP_DEBUG_EXIT, false, 0), 1);
	cr_assert_eq(cli_run_exit_code(VM_STOP_DEBUG_EXIT, false, 2), 5);
	cr_assert_eq(cli_run_exit_code(VM_STOP_DEBUG_EXIT, false, 0x80), EXIT_DEBUG_EXIT_HIGH);
	cr_assert_eq(cli_run_exit_code(VM_STOP_DEBUG_EXIT, false, 0x12345602), 5);
	cr_assert_eq(cli_run_exit_code(VM_STOP_DEBUG_EXIT, false, 0x7f), 0xff);
}

/* A run that never started prints the reason vm_run left in err_msg(). */
Test(exit_code, start_failures_print_the_error, .init = quiet)
{
	err_set(-ENOENT, "kernel /nope: No such file or directory");
	cr_assert_eq(cli_run_exit_code(VM_STOP_BAD_INPUT, false, 0), EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("vessel run: kernel /nope: No such file or directory\n");
}

Test(exit_code, messages, .init = quiet)
{
	cli_run_exit_code(VM_STOP_POWEROFF, false, 0);
	cli_run_exit_code(VM_STOP_RESET, false, 0);
	cli_run_exit_code(VM_STOP_RESET, true, 0);
	cli_run_exit_code(VM_STOP_QUIT, false, 0);
	fflush(stderr);
	cr_assert_stderr_eq_str("vessel: guest powered off\n"
				"vessel: guest rebooted (--no-reboot)\n"
				"vessel: quit\n");
}
