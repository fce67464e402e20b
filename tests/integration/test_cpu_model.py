"""CPU models (`vessel run --cpu`, docs/cli.md): the list, bad input, a
snapshot that keeps its model, and the Debian guest seeing the flags a
model removes gone from /proc/cpuinfo."""
import json

import pexpect

from conftest import run_vessel
from guests import assemble, linux_args, script_output
from test_control_vm import ctl, start, wait_for_counts

BOOT_TIMEOUT = 900


def test_cpu_help_lists_models_and_features(vessel_bin):
    r = run_vessel(vessel_bin, "run", "--cpu", "help")
    assert r.returncode == 0, r.stderr
    for word in ("max", "host", "x86-64-v2", "x2apic", "sse4.2", "pku", "la57", "tsc-deadline"):
        assert word in r.stdout, word
    assert "cpuinfo: sse4_2" in r.stdout


def test_bad_models_and_features_exit_2_naming_the_valid_ones(vessel_bin, tmp_path):
    cases = [("pentium", ["'pentium' is not a CPU model", "x86-64-v2", "--cpu help"]),
             ("max,-bogus", ["'-bogus' is not a CPU feature", "x2apic", "sse4.2"]),
             ("max,x2apic", ["'x2apic' is not a CPU feature", "+NAME or -NAME"]),
             ("max,+avx", ["emu engine does not implement avx"]),
             ("x86-64-v3", ["emu engine does not implement"])]
    for spec, words in cases:
        r = run_vessel(vessel_bin, "run", "--cpu", spec, "--kernel", "/nonexistent")
        assert r.returncode == 2, (spec, r.stderr)
        for w in words:
            assert w in r.stderr, (spec, w, r.stderr)
    m = tmp_path / "vm.json"
    m.write_text(json.dumps({"kernel": "/nonexistent", "cpu": "max,-nope"}))
    r = run_vessel(vessel_bin, "run", "--manifest", str(m))
    assert r.returncode == 2, r.stderr
    assert str(m) in r.stderr and "cpu" in r.stderr and "--cpu help" in r.stderr, r.stderr


def test_restore_keeps_the_model_and_refuses_another(vessel_bin, tmp_path):
    counter = assemble("counter", tmp_path)
    snap = tmp_path / "counter.snap"
    p, sock, log = start(vessel_bin, tmp_path, "first", "--kernel", str(counter), "--cpu", "max,-x2apic")
    try:
        wait_for_counts(log, 2)
        assert ctl(vessel_bin, sock, "pause").returncode == 0
        r = ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    for other in ("max", "max,-x2apic,-sse4.2"):
        r = run_vessel(vessel_bin, "run", "--restore", str(snap), "--cpu", other)
        assert r.returncode == 2, r.stderr
        assert "saved with CPU model 'max,-x2apic'" in r.stderr, r.stderr
        assert "restore with --cpu 'max,-x2apic'" in r.stderr, r.stderr
    # The same model, spelt otherwise, and no --cpu at all both restore.
    for same in (["--cpu", "max,-sse4.2,-x2apic,+sse4.2"], []):
        q, sock2, log2 = start(vessel_bin, tmp_path, "again" + str(len(same)), "--restore", str(snap), *same)
        try:
            wait_for_counts(log2, 1)
            assert ctl(vessel_bin, sock2, "poweroff").returncode == 0
            assert q.wait(timeout=60) == 0
        finally:
            if q.poll() is None:
                q.kill()


def test_linux_guest_sees_the_model(vessel_bin):
    args = linux_args("grep -m1 ^flags /proc/cpuinfo\n")
    child = pexpect.spawn(vessel_bin, args + ["--cpu", "max,-x2apic,-pku,-sse4.2"], encoding="utf-8",
                          codec_errors="replace", timeout=BOOT_TIMEOUT)
    child.expect(r"VESSEL-SCRIPT-END rc=\S+")
    text = child.before + child.after
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, text[-2000:]
    lines, rc = script_output(text)
    assert rc == "0", lines
    flags = lines[-1].split(":", 1)[1].split()
    assert "x2apic" not in flags and "sse4_2" not in flags and "pku" not in flags, flags
    # What the model keeps is still there.
    assert "sse4_1" in flags and "popcnt" in flags and "tsc_deadline_timer" in flags, flags
