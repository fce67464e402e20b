"""Device plug-ins: the example builds out of tree against the installed
headers only, and `vessel plugin list/info` describe it from its descriptor."""
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ROOT, run_vessel

EXAMPLE = ROOT / "plugins" / "device-example"


@pytest.fixture(scope="module")
def prefix(build_dir, tmp_path_factory):
    """Headers installed the way users get them: `meson install` of the devel tag."""
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["meson", "install", "-C", str(build_dir), "--destdir", str(dest), "--no-rebuild",
                        "--tags", "devel"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    headers = list(dest.rglob("vessel/plugin.h"))
    assert len(headers) == 1
    return headers[0].parent.parent.parent  # .../usr/local


@pytest.fixture(scope="module")
def plugin_dir(prefix, tmp_path_factory):
    """The example copied alone (no source tree around it) and built with make + cc."""
    src = tmp_path_factory.mktemp("example-src")
    for name in ("mailbox.c", "Makefile"):
        shutil.copy(EXAMPLE / name, src / name)
    r = subprocess.run(["make", "-C", str(src), f"PREFIX={prefix}", "CC=cc"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path_factory.mktemp("plugins")
    shutil.copy(src / "device-example.so", out / "device-example.so")
    return out


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("VESSEL_PLUGIN_PATH", "XDG_DATA_HOME")}
    env.update(extra)
    return env


def test_list_shows_the_example(vessel_bin, plugin_dir):
    r = run_vessel(vessel_bin, "plugin", "--dir", str(plugin_dir), "list", env=clean_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "PLUGIN", "VERSION", "DESCRIPTION"]
    row = [line for line in lines if line.startswith("mailbox ")]
    assert len(row) == 1
    assert row[0].split()[1:3] == ["device-example", "1.0"]


def test_info_shows_parameters_and_resources(vessel_bin, plugin_dir):
    r = run_vessel(vessel_bin, "plugin", "--dir", str(plugin_dir), "info", "mailbox", env=clean_env())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("mailbox: 32-bit mailbox")
    assert f"device-example 1.0 ({plugin_dir}/device-example.so)" in out
    params = {line.split()[0]: line.split()[1:4] for line in out.split("  resources:")[0].splitlines()[3:]}
    assert params["port"] == ["int", "default", "0x510"]
    assert params["irq"] == ["int", "default", "5"]
    assert params["irq_enabled"] == ["bool", "default", "true"]
    assert params["label"] == ["string", "default", "mailbox"]
    assert "regs           I/O ports    0x510 + 0xc bytes (set by parameter port)" in out
    assert "irq            IRQ line     0x5 (set by parameter irq)" in out
    assert "snapshot: saves its state" in out


def test_info_by_plugin_name(vessel_bin, plugin_dir):
    r = run_vessel(vessel_bin, "plugin", "--dir", str(plugin_dir), "info", "device-example", env=clean_env())
    assert r.returncode == 0
    assert r.stdout.startswith("plug-in device-example 1.0: ")
    assert "\nmailbox: " in r.stdout


def test_info_unknown_name_exit_1(vessel_bin, plugin_dir):
    r = run_vessel(vessel_bin, "plugin", "--dir", str(plugin_dir), "info", "toaster", env=clean_env())
    assert r.returncode == 1
    assert r.stderr.strip() == "vessel plugin: no device type or plug-in named 'toaster' (see `vessel plugin list`)"


def test_env_path_and_xdg_default(vessel_bin, plugin_dir, tmp_path):
    r = run_vessel(vessel_bin, "plugin", "list", env=clean_env(VESSEL_PLUGIN_PATH=f"/nonexistent:{plugin_dir}"))
    assert "mailbox " in r.stdout
    xdg = tmp_path / "xdg"
    (xdg / "vessel").mkdir(parents=True)
    (xdg / "vessel" / "plugins").symlink_to(plugin_dir)
    r = run_vessel(vessel_bin, "plugin", "list", env=clean_env(XDG_DATA_HOME=str(xdg)))
    assert "mailbox " in r.stdout
    r = run_vessel(vessel_bin, "plugin", "path", env=clean_env(XDG_DATA_HOME=str(xdg)))
    assert r.stdout.splitlines() == [f"{xdg}/vessel/plugins", "/usr/local/lib/vessel/plugins"]


FUTURE = r"""
#include <vessel/plugin.h>
__attribute__((visibility("default"))) const struct vessel_plugin vessel_plugin_descriptor = {
    VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION + 1, sizeof(struct vessel_plugin), "future", "2.0", "", 0, 0 };
"""


def test_other_abi_version_is_refused(vessel_bin, prefix, plugin_dir, tmp_path):
    (tmp_path / "future.c").write_text(FUTURE)
    d = tmp_path / "plugins"
    d.mkdir()
    r = subprocess.run(["cc", "-shared", "-fPIC", f"-I{prefix}/include", "-o", str(d / "future.so"),
                        str(tmp_path / "future.c")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = run_vessel(vessel_bin, "plugin", "--dir", str(d), "--dir", str(plugin_dir), "list", env=clean_env())
    assert r.returncode == 0
    assert (f"vessel plugin: plug-in {d}/future.so: built for plug-in ABI version 2, but this vessel has "
            "version 1 (rebuild it against this vessel's <vessel/plugin.h>)") in r.stderr
    assert "mailbox " in r.stdout  # the good plug-in still loads
    assert "future" not in r.stdout


@pytest.mark.parametrize("args", [["list", "x"], ["info"], ["frob"], ["--dir"]])
def test_usage_errors_exit_2(vessel_bin, args):
    r = run_vessel(vessel_bin, "plugin", *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
