"""`vessel run` end to end with bare-metal guests: the boot path (reset
vector ROM stub -> Multiboot kernel in long mode), the serial console,
the debug-exit port and the exit codes, on each engine that can run here."""
import os
import pathlib
import subprocess

import pytest

from conftest import ROOT, run_vessel


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.fixture(scope="module")
def cpubench0(tmp_path_factory):
    """The CPU benchmark guest with no work rounds: boots, enters long mode,
    prints its checksum line and leaves through port 0xf4 with value 0."""
    out = tmp_path_factory.mktemp("guests") / "cpubench0.bin"
    subprocess.run(["nasm", "-f", "bin", "-DROUNDS=0", "-o", str(out), str(ROOT / "bench/cpu/cpubench.asm")], check=True)
    return out


def test_kvm_multiboot_guest_to_debug_exit(vessel_bin, cpubench0):
    if not kvm_usable():
        pytest.skip("/dev/kvm cannot be opened here: the kvm engine cannot run")
    r = run_vessel(vessel_bin, "run", "--engine", "kvm", "--kernel", str(cpubench0), timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr   # (0 << 1) | 1, as QEMU's isa-debug-exit
    assert "cpubench checksum 0000000000000000" in r.stdout


def test_serial_to_file(vessel_bin, cpubench0, tmp_path):
    if not kvm_usable():
        pytest.skip("/dev/kvm cannot be opened here: the kvm engine cannot run")
    log = tmp_path / "serial.log"
    r = run_vessel(vessel_bin, "run", "--engine", "kvm", "--kernel", str(cpubench0), "--serial", f"file:{log}",
                   timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert "cpubench checksum" in log.read_text()


def test_missing_initrd_is_exit_2(vessel_bin, cpubench0, tmp_path):
    r = run_vessel(vessel_bin, "run", "--kernel", str(cpubench0), "--initrd", str(tmp_path / "nope"),
                   stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "nope" in r.stderr
