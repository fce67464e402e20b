"""`vessel run` with the boot loaders (docs/boot.md): bad kernels and
initrds are one clear error with exit code 2; a Multiboot kernel and the
default Linux guest boot from the reset vector to their end.

Every test here needs `vessel run` to load kernels (vm_run calling
boot_load); until it does they skip, saying so."""
import re
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
    # Kernel log lines may land between the script's lines (shared console).
    assert re.search(r"VESSEL-SCRIPT-BEGIN\n(?:\[[^\n]*\n)*booted-42\n", text.replace("\r", "")), \
        text[-3000:] + r.stderr[-1000:]
    assert "VESSEL-SCRIPT-END rc=3" in text
    assert r.returncode == 0, (r.returncode, r.stderr[-1000:])


# Multiboot kernel that writes one value to the debug-exit port with an
# access of the given width (nasm -DOUT='out dx, eax' -DVAL=...).
MB_DEBUG_EXIT = r"""
	bits 32
	org 0x100000
mbhdr:
	dd 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
	dd mbhdr, 0x100000, load_end, load_end, entry
entry:
	mov dx, 0xf4
	mov eax, VAL
	OUT
	hlt
load_end:
"""


def build_mb(tmp_path, source, name, defines=()):
    if not shutil.which("nasm"):
        pytest.skip("nasm is not installed (scripts/setup)")
    (tmp_path / f"{name}.asm").write_text(source)
    subprocess.run(["nasm", "-f", "bin", *[f"-D{d}" for d in defines], "-o", str(tmp_path / f"{name}.bin"),
                    str(tmp_path / f"{name}.asm")], check=True)
    return tmp_path / f"{name}.bin"


@pytest.mark.parametrize("out,val,code", [
    ("out dx, al", 0x00, 1),          # QEMU's (0 << 1) | 1
    ("out dx, al", 0x21, 0x43),
    ("out dx, al", 0x7f, 0xff),
    ("out dx, al", 0x80, 8),          # was (0x101 & 0xff) = 1, a "runtime error"
    ("out dx, al", 0xff, 8),
    ("out dx, ax", 0x0180, 8),        # low byte 0x80; was 1
    ("out dx, ax", 0x0105, 11),       # low byte 5; was (0x20b & 0xff) = 11 by chance
    ("out dx, eax", 0x12345605, 11),
    ("out dx, eax", 0x123456c1, 8),   # was (... 0x83) = 0x83
], ids=lambda v: v.replace(" ", "").replace(",", "_") if isinstance(v, str) else hex(v))
def test_debug_exit_code_is_from_the_low_byte_and_never_collides(loads_kernels, tmp_path, out, val, code):
    """The debug-exit port is a byte port (QEMU's isa-debug-exit, iosize=1);
    values whose QEMU code would wrap past 8 bits get code 8, not a code of
    vessel's own or of another value (issue 18, item 12; docs/cli.md)."""
    kernel = build_mb(tmp_path, MB_DEBUG_EXIT, "dx", [f"OUT={out}", f"VAL={val:#x}"])
    r = run_vessel(loads_kernels, "run", "--kernel", str(kernel), "--serial", "none", timeout=120,
                   stdin=subprocess.DEVNULL)
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert f"guest wrote {val & 0xff:#04x} to the debug-exit port (exit code {code})" in r.stderr, r.stderr


# Multiboot kernel linked at 0x8000 (a.out kludge), as small real-mode-era
# test kernels are: checks the Multiboot information it is given and that
# its own bytes were not overwritten, then exits with 0x21 (0x13 if not).
MB_LOW = r"""
	bits 32
	org 0x8000
mbhdr:
	dd 0x1BADB002, 0x00010002, -(0x1BADB002 + 0x00010002)
	dd mbhdr, 0x8000, load_end, bss_end, entry
entry:
	cmp eax, 0x2BADB002
	jne bad
	cmp dword [marker], 0x600dcafe       ; our image is intact
	jne bad
	cmp ebx, bss_end                     ; the information is not inside us
	jb .below
	jmp .info
.below:
	lea ecx, [ebx + 88]
	cmp ecx, 0x8000
	ja bad
.info:
	test dword [ebx], 0x40               ; memory map present
	jz bad
	mov ecx, [ebx + 16]                  ; command line: the kernel's path first
	cmp byte [ecx], '/'
	jne bad
	cmp esp, 0x8000                      ; the stack is not inside us either
	jbe .stack_ok
	cmp esp, bss_end + 0x10
	jb bad
.stack_ok:
	push 0x12345678                      ; and it works
	pop eax
	cmp eax, 0x12345678
	jne bad
	cmp dword [marker], 0x600dcafe
	jne bad
	mov al, 0x21
	out 0xf4, al
	hlt
bad:
	mov al, 0x13
	out 0xf4, al
	hlt
marker:
	dd 0x600dcafe
	times 0x9000 - ($ - $$) db 0x90      ; over the old boot data at 0x10000
	dd 0x600dcafe
load_end:
	resb 0x100
bss_end:
"""


def test_multiboot_kernel_loaded_at_0x8000_boots(loads_kernels, tmp_path):
    """QEMU places the Multiboot information where the kernel is not;
    vessel refused a kernel at 0x8000 as 'over the boot data at
    0x6000-0x20000' (issue 18, item 19)."""
    kernel = build_mb(tmp_path, MB_LOW, "low")
    r = run_vessel(loads_kernels, "run", "--kernel", str(kernel), "--serial", "none", timeout=120,
                   stdin=subprocess.DEVNULL)
    assert r.returncode == (0x21 << 1) | 1, (r.returncode, r.stderr[-2000:])
