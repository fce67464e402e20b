"""The CLI's conventions: help on every subcommand, one-line errors, exit code 2."""
import pytest

from conftest import run_vessel

SUBCOMMANDS = ["run", "disk", "ctl", "plugin"]


def test_top_level_help(vessel_bin):
    r = run_vessel(vessel_bin, "--help")
    assert r.returncode == 0
    assert "usage: vessel" in r.stdout
    for sub in SUBCOMMANDS:
        assert sub in r.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(vessel_bin, sub):
    r = run_vessel(vessel_bin, sub, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: vessel {sub}")


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_command_matches_flag(vessel_bin, sub):
    assert run_vessel(vessel_bin, "help", sub).stdout == run_vessel(vessel_bin, sub, "--help").stdout


@pytest.mark.parametrize("args", [["--bogus"], ["run", "--bogus"], ["disk", "--bogus"],
                                  ["ctl", "--bogus"], ["plugin", "--bogus"], ["frobnicate"]])
def test_unknown_flag_is_one_line_exit_2(vessel_bin, args):
    r = run_vessel(vessel_bin, *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("vessel")


def test_version(vessel_bin):
    r = run_vessel(vessel_bin, "version")
    assert r.returncode == 0
    assert r.stdout.startswith("vessel ")
    assert run_vessel(vessel_bin, "--version").stdout == r.stdout


@pytest.mark.parametrize("args,needle", [
    (["run"], "kernel"),
    (["run", "--kernel", "k", "--cpus", "0"], "cpus"),
    (["run", "--kernel", "k", "--cpus", "two"], "--cpus"),
    (["run", "--kernel", "k", "--memory", "lots"], "--memory"),
    (["run", "--kernel", "k", "--engine", "warp"], "engine"),
    (["run", "--kernel", "k", "--serial", "pigeon"], "serial"),
    (["run", "--kernel", "k", "--jit", "maybe"], "--jit: 'maybe' is neither on nor off"),
    (["run", "--kernel"], "needs a value"),
])
def test_run_rejects_bad_config(vessel_bin, args, needle):
    r = run_vessel(vessel_bin, *args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_log_level_env_is_validated(vessel_bin):
    r = run_vessel(vessel_bin, "version", env={"VESSEL_LOG": "shouty"})
    assert r.returncode == 0
    assert "VESSEL_LOG" in r.stderr
