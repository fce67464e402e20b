"""Shared fixtures: the vessel binary under test and the guest cache."""
import os
import pathlib
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
