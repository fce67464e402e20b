"""`vessel run` with the boot loaders (docs/boot.md): bad kernels and
initrds are one clear error with exit code 2; a Multiboot kernel and the
default Linux guest boot from the reset vector to their end.

Every test here needs `vessel run` to load kernels (vm_run calling
boot_load); until it does they skip, saying so."""
import base64
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import run_vessel

MB_SMOKE = r"""
; Multiboot kernel: exits through the debug-exit port with 0x21 when the
; machine state is what Multiboot 0.6.96 3.2 promises, 0x13 otherwise.
	bits 32
	org 0x100000
mbhdr:
	dd 0x1BADB002, 0x00010002, -(0x1BADB002 + 0x00010002)
	dd mbhdr, 0x100000, load_end, load_end + 0x1000, entry
entry:
	cmp eax, 0x2BADB002
	jne bad
	test dword [ebx], 0x40          ; memory map present
	jz bad
	mov eax, cr0
	test eax, 0x80000000            ; paging off
	jnz bad
	mov al, 0x21
	out 0xf4, al
	hlt
bad:
	mov al, 0x13
	out 0xf4, al
	hlt
load_end:
"""


@pytest.fixture(scope="module")
def loads_kernels(vessel_bin):
    r = run_vessel(vessel_bin, "run", "--kernel", "/nonexistent/vmlinuz", timeout=30)
    if r.returncode != 2 or "/nonexistent/vmlinuz" not in r.stderr:
        pytest.skip(f"`vessel run` does not load kernels yet (exit {r.returncode}: {r.stderr.strip()[:120]})")
    return vessel_bin


def one_line_error(r):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_missing_kernel(loads_kernels):
    line = one_line_error(run_vessel(loads_kernels, "run", "--kernel", "/nonexistent/vmlinuz", timeout=30))
    assert "kernel /nonexistent/vmlinuz" in line and "No such file" in line


def test_file_that_is_no_kernel(loads_kernels, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00" * 16384)
    line = one_line_error(run_vessel(loads_kernels, "run", "--kernel", str(junk), timeout=30))
    assert "bzImage" in line and "Multiboot" in line


def test_truncated_bzimage(loads_kernels, tmp_path):
    k = bytearray(0x240)
    k[0x1fe:0x200] = b"\x55\xaa"
    k[0x202:0x206] = b"HdrS"
    path = tmp_path / "short"
    path.write_bytes(bytes(k))
    line = one_line_error(run_vessel(loads_kernels, "run", "--kernel", str(path), timeout=30))
    assert "truncated" in line


def test_missing_initrd(loads_kernels):
    kernel = pathlib.Path(os.environ.get("VESSEL_CACHE", pathlib.Path.home() / ".cache" / "vessel")) / "vmlinuz"
    if not kernel.exists():
        pytest.skip("no default guest kernel: run scripts/build-guest")
    line = one_line_error(run_vessel(loads_kernels, "run", "--kernel", str(kernel), "--initrd",
                                     "/nonexistent/initrd", timeout=60))
    assert "initrd /nonexistent/initrd" in line


@pytest.mark.parametrize("engine", ["emu", "kvm"])
def test_multiboot_kernel_runs_and_exits_through_the_debug_port(loads_kernels, tmp_path, engine):
    if not shutil.which("nasm"):
        pytest.skip("nasm is not installed (scripts/setup)")
    if engine == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("no usable /dev/kvm on this host")
    (tmp_path / "mb.asm").write_text(MB_SMOKE)
    subprocess.run(["nasm", "-f", "bin", "-o", str(tmp_path / "mb.bin"), str(tmp_path / "mb.asm")], check=True)
    r = run_vessel(loads_kernels, "run", "--engine", engine, "--kernel", str(tmp_path / "mb.bin"),
                   "--serial", "none", timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == (0x21 << 1) | 1, (r.returncode, r.stderr[-2000:])


def test_default_linux_guest_runs_its_script_and_powers_off(loads_kernels, tmp_path):
    cache = pathlib.Path(os.environ.get("VESSEL_CACHE", pathlib.Path.home() / ".cache" / "vessel"))
    kernel, initrd = cache / "vmlinuz", cache / "initramfs.cpio.gz"
    if not kernel.exists() or not initrd.exists():
        pytest.skip("no default guest: run scripts/build-guest")
    script = base64.b64encode(b"echo booted-$((6*7))\nexit 3\n").decode()
    out = tmp_path / "serial.out"
    r = run_vessel(loads_kernels, "run", "--kernel", str(kernel), "--initrd", str(initrd), "--memory", "512M",
                   "--append", f"console=ttyS0 panic=-1 vessel.script={script}", "--serial", f"file:{out}",
                   timeout=600, stdin=subprocess.DEVNULL)
    text = out.read_text(errors="replace") if out.exists() else ""
    assert "VESSEL-SCRIPT-BEGIN\nbooted-42\n" in text.replace("\r", ""), text[-3000:] + r.stderr[-1000:]
    assert "VESSEL-SCRIPT-END rc=3" in text
    assert r.returncode == 0, (r.returncode, r.stderr[-1000:])
