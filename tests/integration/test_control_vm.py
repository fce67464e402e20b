"""The control plane driving a real machine (emu engine) running the
counter guest: pause/resume, reset, poweroff, save and restore into a new
process, and the example plug-in device added while it runs, used by the
guest, and removed."""
import json
import re
import subprocess
import time

import pytest

from conftest import run_vessel
from guests import assemble
from test_plugin import plugin_dir, prefix  # noqa: F401 (fixtures)

COUNT = re.compile(r"count ([0-9a-f]{8}) mbox ([0-9a-f]{8})")


def counts(log):
    return [(int(c, 16), int(m, 16)) for c, m in COUNT.findall(log.read_text(errors="replace"))]


def wait_for_counts(log, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(counts(log)) >= n:
            return counts(log)
        time.sleep(0.05)
    raise AssertionError(f"the guest printed {len(counts(log))} counts, expected {n}: {log.read_text()[-300:]}")


def wait_for_change(log, n, pred, then=2, timeout=60):
    """The counts from index n on, once one of them satisfies pred and
    `then` more follow it.  The console reaches the log in bursts
    (docs/compounding.md), so counts the guest printed just before a
    command may land in the log after the command's reply: what changed
    is found by looking, not by position."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cs = counts(log)[n:]
        hit = next((i for i, c in enumerate(cs) if pred(c)), None)
        if hit is not None and len(cs) > hit + then:
            return cs[hit:]
        time.sleep(0.05)
    raise AssertionError(f"no count after the {n}th satisfied the test within {timeout} s: {counts(log)[n:]}")


def ctl(vessel_bin, sock, *args):
    return subprocess.run([vessel_bin, "ctl", "--socket", str(sock), *args], capture_output=True, text=True, timeout=60)


def start(vessel_bin, tmp_path, name, *args, env=None):
    sock, log = tmp_path / f"{name}.sock", tmp_path / f"{name}.log"
    p = subprocess.Popen([vessel_bin, "run", *args, "--api-socket", str(sock), "--serial", f"file:{log}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.05)
    return p, sock, log


@pytest.fixture
def counter(tmp_path):
    return assemble("counter", tmp_path)


def test_pause_resume_reset_powerdown(vessel_bin, counter, tmp_path):
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter))
    try:
        wait_for_counts(log, 2)
        assert json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["state"] == "running"
        assert ctl(vessel_bin, sock, "pause").returncode == 0
        assert json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["state"] == "paused"
        frozen = len(counts(log))
        time.sleep(1.0)
        assert len(counts(log)) == frozen, "a paused guest kept running"
        assert ctl(vessel_bin, sock, "resume").returncode == 0
        wait_for_counts(log, frozen + 2)
        # Reset: the machine starts again from the reset vector, so the
        # count starts again from the bottom.
        n = len(counts(log))
        before = counts(log)[-1][0]
        assert ctl(vessel_bin, sock, "reset").returncode == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(c < before for c, _ in counts(log)[n:]):
            time.sleep(0.05)
        assert any(c < before for c, _ in counts(log)[n:]), "no restart after reset"
        # The ACPI power button: the guest sees it and enters S5 itself.
        assert ctl(vessel_bin, sock, "powerdown").returncode == 0
        assert p.wait(timeout=60) == 0
        assert "guest powered off" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()


def test_save_and_restore_keeps_counting(vessel_bin, counter, tmp_path):
    snap = tmp_path / "counter.snap"
    p, sock, log = start(vessel_bin, tmp_path, "first", "--kernel", str(counter))
    try:
        wait_for_counts(log, 3)
        assert ctl(vessel_bin, sock, "pause").returncode == 0
        last_before = counts(log)[-1][0]
        r = ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    q, sock2, log2 = start(vessel_bin, tmp_path, "second", "--restore", str(snap))
    try:
        after = wait_for_counts(log2, 2)
        # It goes on from where it stopped: the next count printed is the
        # one after the last before the save, not a fresh start.
        assert after[0][0] == last_before + 0x100000, (hex(last_before), hex(after[0][0]))
        assert json.loads(ctl(vessel_bin, sock2, "--json", "status").stdout)["result"]["state"] == "running"
        assert ctl(vessel_bin, sock2, "poweroff").returncode == 0
        assert q.wait(timeout=60) == 0
    finally:
        if q.poll() is None:
            q.kill()


def test_broken_snapshot_is_refused(vessel_bin, tmp_path):
    bad = tmp_path / "bad.snap"
    bad.write_bytes(b"VESSELSNAP" + b"\0" * 100)
    r = run_vessel(vessel_bin, "run", "--restore", str(bad), stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_plugin_device_added_used_and_removed(vessel_bin, counter, tmp_path, plugin_dir):
    env = {"VESSEL_PLUGIN_PATH": str(plugin_dir), "PATH": "/usr/bin:/bin"}
    p, sock, log = start(vessel_bin, tmp_path, "plug", "--kernel", str(counter), env=env)
    try:
        first = wait_for_counts(log, 1)
        assert first[0][1] == 0xffffffff, "no device at the port yet"
        dev = '{"type": "mailbox", "id": "mb0", "params": {"port": 1792}}'
        r = ctl(vessel_bin, sock, "device", "add", dev)
        assert r.returncode == 0, r.stderr
        seen = wait_for_change(log, len(counts(log)), lambda cm: cm[0] == cm[1])
        assert all(c == m for c, m in seen), f"the guest did not read back its word: {seen}"
        stats = ctl(vessel_bin, sock, "stats").stdout
        assert any(line.split()[:2] == ["pio", "mb0"] for line in stats.splitlines()), stats
        assert ctl(vessel_bin, sock, "device", "remove", "mb0").returncode == 0
        gone = wait_for_change(log, len(counts(log)), lambda cm: cm[1] == 0xffffffff)
        assert all(m == 0xffffffff for _, m in gone), f"the device answers after its removal: {gone}"
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
