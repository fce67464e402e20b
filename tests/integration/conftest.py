"""Shared fixtures: the vessel binary under test and the guest cache."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def vessel_bin():
    path = os.environ.get("VESSEL_BIN", str(ROOT / "build" / "vessel"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"vessel binary not found at {path}: run `make build` first")
    return path


@pytest.fixture(scope="session")
def build_dir():
    return pathlib.Path(os.environ.get("VESSEL_BUILD", str(ROOT / "build")))


def run_vessel(vessel_bin, *args, timeout=60, **kw):
    return subprocess.run([vessel_bin, *args], capture_output=True, text=True, timeout=timeout, **kw)


# A skipped test must never stand for a passed one in CI (`make check`
# passes --strict-skips): on a machine set up by scripts/setup every test
# can run, except those that need hardware virtualization.  A skip whose
# reason does not name /dev/kvm then fails, with its reason.
KVM_SKIP = re.compile(r"/dev/kvm")


def pytest_addoption(parser):
    parser.addoption("--strict-skips", action="store_true",
                     default=os.environ.get("VESSEL_STRICT_SKIPS", "") not in ("", "0"),
                     help="fail a skipped test unless it skipped for a missing /dev/kvm "
                          "(also VESSEL_STRICT_SKIPS=1)")


def skip_reason(rep):
    if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        return str(rep.longrepr[2])
    return str(rep.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.skipped or hasattr(rep, "wasxfail") or not item.config.getoption("--strict-skips"):
        return
    reason = skip_reason(rep)
    if KVM_SKIP.search(reason):
        return
    rep.outcome = "failed"
    rep.longrepr = (f"skipped, but every test but the KVM ones must run here (--strict-skips): {reason}\n"
                    "install what is missing with scripts/setup, build the guest with `make guest`")
