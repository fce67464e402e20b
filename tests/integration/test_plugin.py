"""Device plug-ins: the example builds out of tree against the installed
headers only, and `vessel plugin list/info` describe it from its descriptor."""
import json
import os
import pathlib
import shutil
import subprocess
import time

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
    assert params["port"] == ["int", "default", "0x530"]
    assert params["irq"] == ["int", "default", "5"]
    assert params["irq_enabled"] == ["bool", "default", "true"]
    assert params["label"] == ["string", "default", "mailbox"]
    assert "regs           I/O ports    0x530 + 0xc bytes (set by parameter port)" in out
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
    assert r.stdout.splitlines() == [f"{xdg}/vessel/plugins", "/usr/local/lib/vessel/plugins",
                                     "/usr/lib/vessel/plugins"]


FUTURE = r"""
#include <vessel/plugin.h>
__attribute__((visibility("default"))) const struct vessel_plugin vessel_plugin_descriptor = {
    VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION + 1, sizeof(struct vessel_plugin), "future", "2.0", "", 0, 0 };
"""


def test_other_abi_version_is_refused(vessel_bin, prefix, plugin_dir, tmp_path):
    """A plug-in built for a later ABI, or for version 1 (before PCI
    functions changed the resource layout), is refused with one message."""
    d = tmp_path / "plugins"
    d.mkdir()
    for name, src in (("future", FUTURE), ("old", FUTURE.replace("VESSEL_PLUGIN_ABI_VERSION + 1", "1"))):
        (tmp_path / f"{name}.c").write_text(src)
        r = subprocess.run(["cc", "-shared", "-fPIC", f"-I{prefix}/include", "-o", str(d / f"{name}.so"),
                            str(tmp_path / f"{name}.c")], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    r = run_vessel(vessel_bin, "plugin", "--dir", str(d), "--dir", str(plugin_dir), "list", env=clean_env())
    assert r.returncode == 0
    for name, version in (("future", 3), ("old", 1)):
        assert (f"vessel plugin: plug-in {d}/{name}.so: built for plug-in ABI version {version}, but this vessel "
                "has version 2 (rebuild it against this vessel's <vessel/plugin.h>)") in r.stderr, r.stderr
    assert "mailbox " in r.stdout  # the good plug-in still loads
    assert "future" not in r.stdout


@pytest.mark.parametrize("args", [["list", "x"], ["info"], ["frob"], ["--dir"]])
def test_usage_errors_exit_2(vessel_bin, args):
    r = run_vessel(vessel_bin, "plugin", *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1


# ---- trust and containment (docs/security.md "Plug-ins") ----

CRASH_SRC = ROOT / "tests" / "unit" / "vmm" / "plugin_crash.c"


@pytest.fixture(scope="module")
def crash_plugin(prefix, tmp_path_factory):
    """A plug-in whose constructor crashes when VESSEL_TEST_CRASH_CTOR is
    set, and whose `crashy` device crashes in create() with crash=true."""
    d = tmp_path_factory.mktemp("crash")
    r = subprocess.run(["cc", "-shared", "-fPIC", f"-I{prefix}/include", "-o", str(d / "crash.so"), str(CRASH_SRC)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return d / "crash.so"


def test_a_crashing_constructor_does_not_kill_plugin_list(vessel_bin, plugin_dir, crash_plugin, tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    shutil.copy(crash_plugin, d / "a-crash.so")
    shutil.copy(plugin_dir / "device-example.so", d / "b-example.so")
    r = run_vessel(vessel_bin, "plugin", "--dir", str(d), "list", env=clean_env(VESSEL_TEST_CRASH_CTOR="1"))
    assert r.returncode == 0, r.stderr
    assert f"plug-in {d}/a-crash.so: crashed while being loaded (signal 11, Segmentation fault)" in r.stderr
    assert "mailbox " in r.stdout
    r = run_vessel(vessel_bin, "plugin", "--dir", str(d), "info", "mailbox", env=clean_env(VESSEL_TEST_CRASH_CTOR="1"))
    assert r.returncode == 0 and r.stdout.startswith("mailbox: "), r.stderr


@pytest.mark.parametrize("what", ["file", "directory"])
def test_world_writable_plugins_are_refused(vessel_bin, plugin_dir, tmp_path, what):
    d = tmp_path / "plugins"
    d.mkdir()
    so = d / "device-example.so"
    shutil.copy(plugin_dir / "device-example.so", so)
    (so if what == "file" else d).chmod(0o777 if what == "directory" else 0o757)
    r = run_vessel(vessel_bin, "plugin", "--dir", str(d), "list", env=clean_env())
    assert r.returncode == 0
    assert "mailbox " not in r.stdout
    shown = str(so) if what == "file" else f"directory {d}"
    assert f"vessel plugin: plug-in {so}: refused: {shown} is world-writable" in r.stderr, r.stderr


def vm_helpers():
    import test_control_vm
    return test_control_vm


def test_run_loads_no_plugin_it_does_not_need(vessel_bin, crash_plugin, plugin_dir, tmp_path):
    """A plug-in whose constructor crashes on the search path: a VM without
    plug-in devices never runs its code, and one with an API socket reads
    descriptors in a probe child, warns, and uses the others."""
    from guests import assemble
    h = vm_helpers()
    counter = assemble("counter", tmp_path)
    d = tmp_path / "plugins"
    d.mkdir()
    shutil.copy(crash_plugin, d / "a-crash.so")
    shutil.copy(plugin_dir / "device-example.so", d / "b-example.so")
    env = clean_env(VESSEL_PLUGIN_PATH=str(d), VESSEL_TEST_CRASH_CTOR="1")
    p, sock, log = h.start(vessel_bin, tmp_path, "vm", "--kernel", str(counter), env=env)
    try:
        h.wait_for_counts(log, 1)
        r = h.ctl(vessel_bin, sock, "device", "add", '{"type": "mailbox", "id": "mb0", "params": {"port": 1792}}')
        assert r.returncode == 0, r.stderr
        assert h.ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
        err = p.stderr.read()
        assert f"plug-in {d}/a-crash.so: crashed while being loaded" in err, err
    finally:
        if p.poll() is None:
            p.kill()


def test_a_crashing_create_is_reported_and_the_vm_runs_on(vessel_bin, crash_plugin, tmp_path):
    from guests import assemble
    h = vm_helpers()
    counter = assemble("counter", tmp_path)
    d = tmp_path / "plugins"
    d.mkdir()
    shutil.copy(crash_plugin, d / "crash.so")
    p, sock, log = h.start(vessel_bin, tmp_path, "vm", "--kernel", str(counter),
                           env=clean_env(VESSEL_PLUGIN_PATH=str(d)))
    try:
        h.wait_for_counts(log, 1)
        r = h.ctl(vessel_bin, sock, "device", "add", '{"type": "crashy", "id": "c0", "params": {"crash": true}}')
        assert r.returncode != 0
        assert "c0: crashy crashed in create() (signal 11, Segmentation fault)" in r.stderr, r.stderr
        n = len(h.counts(log))
        h.wait_for_counts(log, n + 2)  # the guest still runs
        assert h.ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_the_example_adds_with_its_defaults(vessel_bin, plugin_dir, tmp_path):
    """The documented example: `device add` of a mailbox with no params
    (its default port must not be one the board uses)."""
    from guests import assemble
    h = vm_helpers()
    counter = assemble("counter", tmp_path)
    p, sock, log = h.start(vessel_bin, tmp_path, "vm", "--kernel", str(counter),
                           env=clean_env(VESSEL_PLUGIN_PATH=str(plugin_dir)))
    try:
        h.wait_for_counts(log, 1)
        r = h.ctl(vessel_bin, sock, "device", "add", '{"type": "mailbox", "id": "mb0"}')
        assert r.returncode == 0, r.stderr
        assert h.ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_hot_added_device_survives_a_reset(vessel_bin, plugin_dir, tmp_path):
    from guests import assemble
    h = vm_helpers()
    counter = assemble("counter", tmp_path)
    p, sock, log = h.start(vessel_bin, tmp_path, "vm", "--kernel", str(counter),
                           env=clean_env(VESSEL_PLUGIN_PATH=str(plugin_dir)))
    try:
        h.wait_for_counts(log, 1)
        r = h.ctl(vessel_bin, sock, "device", "add", '{"type": "mailbox", "id": "mb0", "params": {"port": 1792}}')
        assert r.returncode == 0, r.stderr
        n = len(h.counts(log))
        before = h.wait_for_counts(log, n + 2)[-1][0]
        assert h.ctl(vessel_bin, sock, "reset").returncode == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(c < before for c, _ in h.counts(log)[n + 2:]):
            time.sleep(0.05)
        after = [(c, m) for c, m in h.counts(log)[n + 2:] if c < before]
        assert after, "no restart after reset"
        n = len(h.counts(log))
        seen = h.wait_for_counts(log, n + 2)[n + 1:]
        assert all(c == m for c, m in seen), f"the device is gone after the reset: {seen}"
        r = h.ctl(vessel_bin, sock, "device", "list")
        assert "mb0" in r.stdout, r.stdout
        assert h.ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_a_snapshot_never_chooses_code(vessel_bin, plugin_dir, crash_plugin, tmp_path):
    """A VM whose manifest names a plug-in directory is saved; restoring
    the snapshot without that directory must not look there (it used to:
    the snapshot recorded plugin_dirs and restore dlopened them)."""
    from guests import assemble
    h = vm_helpers()
    counter = assemble("counter", tmp_path)
    d = tmp_path / "plugins"
    d.mkdir()
    shutil.copy(plugin_dir / "device-example.so", d / "b-example.so")
    manifest = tmp_path / "vm.json"
    manifest.write_text(json.dumps({"kernel": str(counter), "plugin_dirs": [str(d)],
                                    "devices": [{"type": "mailbox", "id": "mb0", "params": {"port": 1792}}]}))
    snap = tmp_path / "vm.snap"
    p, sock, log = h.start(vessel_bin, tmp_path, "first", "--manifest", str(manifest), env=clean_env())
    try:
        h.wait_for_counts(log, 2)
        assert h.ctl(vessel_bin, sock, "pause").returncode == 0
        r = h.ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert h.ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    # The directory now also holds a plug-in whose constructor crashes.
    shutil.copy(crash_plugin, d / "a-crash.so")
    env = clean_env(VESSEL_PLUGIN_PATH="", VESSEL_TEST_CRASH_CTOR="1")
    r = run_vessel(vessel_bin, "run", "--restore", str(snap), "--serial", "none", stdin=subprocess.DEVNULL, env=env)
    assert r.returncode != 0 and r.returncode > 0, (r.returncode, r.stderr)
    assert "no device type 'mailbox'" in r.stderr, r.stderr
    assert "crash" not in r.stderr, r.stderr
    # Given on the command line's manifest path again, it restores.
    env = clean_env(VESSEL_PLUGIN_PATH=str(plugin_dir))
    q, sock2, log2 = h.start(vessel_bin, tmp_path, "second", "--restore", str(snap), env=env)
    try:
        h.wait_for_counts(log2, 2)
        assert h.ctl(vessel_bin, sock2, "poweroff").returncode == 0
        assert q.wait(timeout=60) == 0
    finally:
        if q.poll() is None:
            q.kill()


def test_manifest_consoles_are_refused_until_supported(vessel_bin, tmp_path):
    from guests import assemble
    counter = assemble("counter", tmp_path)
    manifest = tmp_path / "vm.json"
    manifest.write_text(json.dumps({"kernel": str(counter), "consoles": [{"type": "serial", "backend": "none"}]}))
    r = run_vessel(vessel_bin, "run", "--manifest", str(manifest), stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "consoles[0]: consoles besides the serial port are not supported yet" in r.stderr, r.stderr
