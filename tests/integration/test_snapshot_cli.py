"""`vessel run --restore` and what comes with it, on the counter guest: flags
that disagree with the snapshot's machine are refused, a guest reboot
after a restore needs --kernel (and says so), and the RAM's CRC is checked
unless --no-verify skips it."""
import json
import struct
import subprocess
import time

import pytest

from conftest import run_vessel
from guests import assemble
from test_control_vm import counts, ctl, start, wait_for_counts

SEC_HEADER = struct.Struct("<IIQQQII64s")
SEC_MEMORY = 4


@pytest.fixture(scope="module")
def saved(vessel_bin, tmp_path_factory):
    """(counter guest, snapshot of it running with 1 vCPU and 512 MiB)."""
    d = tmp_path_factory.mktemp("snap")
    guest = assemble("counter", d)
    snap = d / "counter.snap"
    p, sock, log = start(vessel_bin, d, "orig", "--kernel", str(guest))
    try:
        wait_for_counts(log, 2)
        r = ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    return guest, snap


def refused(vessel_bin, *args):
    r = run_vessel(vessel_bin, "run", *args, "--serial", "none", stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def run_then_poweroff(vessel_bin, tmp_path, name, *args):
    p, sock, log = start(vessel_bin, tmp_path, name, *args)
    try:
        wait_for_counts(log, 2)
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("flags, words", [
    (["--cpus", "2"], ["--cpus", "2 vCPUs", "with 1"]),
    (["--memory", "256M"], ["--memory", "256 MiB", "512 MiB"]),
    (["--engine", "kvm"], ["--engine", "kvm", "emu"]),
    (["--numa-nodes", "1"], ["--numa-nodes", "1 NUMA nodes", "with 0"]),
])
def test_flags_that_disagree_with_the_snapshot_are_refused(vessel_bin, saved, flags, words):
    _, snap = saved
    err = refused(vessel_bin, "--restore", str(snap), *flags)
    for w in words:
        assert w in err, err
    assert str(snap) in err, err


def test_manifest_shape_that_disagrees_is_refused(vessel_bin, saved, tmp_path):
    _, snap = saved
    m = tmp_path / "vm.json"
    m.write_text(json.dumps({"restore": str(snap), "cpus": 2}))
    err = refused(vessel_bin, "--manifest", str(m))
    assert "manifest field cpus" in err, err


def test_flags_that_repeat_the_snapshot_are_accepted(vessel_bin, saved, tmp_path):
    _, snap = saved
    run_then_poweroff(vessel_bin, tmp_path, "same", "--restore", str(snap), "--cpus", "1", "--memory", "512M",
                      "--engine", "emu")


def test_reboot_after_restore_without_kernel_fails_clearly(vessel_bin, saved, tmp_path):
    _, snap = saved
    p, sock, log = start(vessel_bin, tmp_path, "nokernel", "--restore", str(snap))
    try:
        wait_for_counts(log, 2)
        assert ctl(vessel_bin, sock, "reset").returncode == 0
        assert p.wait(timeout=60) == 1
        err = p.stderr.read()
        assert "rebooted" in err and "--kernel" in err, err
    finally:
        if p.poll() is None:
            p.kill()


def test_reboot_after_restore_with_kernel_boots_it(vessel_bin, saved, tmp_path):
    guest, snap = saved
    p, sock, log = start(vessel_bin, tmp_path, "kernel", "--restore", str(snap), "--kernel", str(guest))
    try:
        restored = wait_for_counts(log, 2)
        assert restored[0][0] > 0x100000, restored   # going on, not a fresh boot
        assert ctl(vessel_bin, sock, "reset").returncode == 0
        # A fresh boot counts from the start again: the count drops.
        deadline = time.monotonic() + 60
        while not any(b[0] < a[0] for a, b in zip(counts(log), counts(log)[1:])):
            assert p.poll() is None, p.stderr.read()
            assert time.monotonic() < deadline, counts(log)
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read()
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()


def memory_section(path):
    data = path.read_bytes()
    off = 40
    while off + SEC_HEADER.size <= len(data):
        typ, _, data_offset, length, _, _, _, _ = SEC_HEADER.unpack_from(data, off)
        if typ == SEC_MEMORY:
            return data_offset, length
        off = data_offset + length
    raise AssertionError("no memory section")


def test_damaged_ram_is_refused_unless_no_verify(vessel_bin, saved, tmp_path):
    _, snap = saved
    bad = tmp_path / "bad.snap"
    bad.write_bytes(snap.read_bytes())
    start_off, length = memory_section(bad)
    # A byte at 256 MiB, far from anything the counter guest uses.
    with open(bad, "r+b") as f:
        f.seek(start_off + (256 << 20))
        f.write(b"\x5a")
    err = refused(vessel_bin, "--restore", str(bad))
    assert "CRC mismatch" in err, err
    run_then_poweroff(vessel_bin, tmp_path, "noverify", "--restore", str(bad), "--no-verify")


def test_no_verify_without_restore_is_refused(vessel_bin, saved):
    guest, _ = saved
    err = refused(vessel_bin, "--kernel", str(guest), "--no-verify")
    assert "--no-verify" in err, err
