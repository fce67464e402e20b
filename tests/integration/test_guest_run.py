"""`vessel run` with small Multiboot guests on the emu engine: triple fault
reporting, the console escapes, and the bad-input exit codes."""
import subprocess

import pexpect
import pytest

from conftest import run_vessel
from guests import assemble


def test_triple_fault_reports_cpu_state_and_exits_3(vessel_bin, tmp_path):
    guest = assemble("triple_fault", tmp_path)
    r = run_vessel(vessel_bin, "run", "--kernel", str(guest), stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "triple fault" in r.stderr
    assert "rax=000000007e57fa17" in r.stderr     # the guest's marker, in the register dump
    assert "idt=" in r.stderr


def test_console_escape_quits_a_running_guest(vessel_bin, tmp_path):
    guest = assemble("counter", tmp_path)
    child = pexpect.spawn(vessel_bin, ["run", "--kernel", str(guest)], encoding="utf-8", timeout=120)
    child.expect(r"count [0-9a-f]{8}")
    child.send("\x01h")
    child.expect("C-a x")
    child.send("\x01x")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
@pytest.mark.parametrize("content,needle", [
    (b"", "kernel"),
    (b"\x7fELF" + b"\0" * 60, "kernel"),
    (b"hello, I am not a kernel\n" * 100, "kernel"),
], ids=["empty", "truncated-elf", "text"])
def test_bad_kernel_is_one_line_exit_2(vessel_bin, tmp_path, content, needle):
    k = tmp_path / "bad-kernel"
    k.write_bytes(content)
    r = run_vessel(vessel_bin, "run", "--kernel", str(k), stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr




def test_smp_bring_up_with_init_sipi(vessel_bin, tmp_path):
    guest = assemble("smp", tmp_path)
    r = run_vessel(vessel_bin, "run", "--cpus", "2", "--kernel", str(guest), stdin=subprocess.DEVNULL, timeout=120)
    assert r.stdout.splitlines() == ["AP", "BSP done"], r.stdout
    assert r.returncode == (0x11 << 1) | 1, r.stderr


def test_missing_disk_is_refused_before_boot(vessel_bin, tmp_path):
    img = tmp_path / "d.img"
    img.write_bytes(b"\0" * 4096)
    r = run_vessel(vessel_bin, "run", "--kernel", str(img), "--disk", str(tmp_path / "missing.raw"),
                   stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "missing.raw" in r.stderr and "No such file" in r.stderr
