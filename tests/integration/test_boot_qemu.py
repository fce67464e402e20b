"""QEMU as an oracle of the boot path: the loaders' output (boot-dump:
firmware ROM, zero page, page tables, command line, the host-decompressed
kernel and the initrd) is handed to QEMU TCG with the ROM as its BIOS and
the rest as memory images.  QEMU's CPU then starts at the reset vector in
vessel's ROM, runs the stub into Debian's kernel, and the kernel must
report the e820 map, command line and initrd vessel gave it and run the
default guest's script.  This checks the whole loader path against an
independent x86 implementation before vessel's own CPU can run Linux."""
import base64
import io
import os
import pathlib
import re
import shutil
import subprocess

import pytest


def build_dir():
    root = pathlib.Path(__file__).resolve().parents[2]
    return pathlib.Path(os.environ.get("VESSEL_BUILD", str(root / "build")))


@pytest.mark.parametrize("decompress", [True, False], ids=["host-decompressed", "self-decompressing"])
def test_debian_kernel_boots_on_qemu_from_vessels_rom(tmp_path, decompress):
    pexpect = pytest.importorskip("pexpect")
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup)")
    dump = build_dir() / "tests" / "unit" / "boot" / "boot-dump"
    if not os.access(dump, os.X_OK):
        pytest.fail(f"{dump} not built: run `make build`")
    cache = pathlib.Path(os.environ.get("VESSEL_CACHE", pathlib.Path.home() / ".cache" / "vessel"))
    kernel, initrd = cache / "vmlinuz", cache / "initramfs.cpio.gz"
    if not kernel.exists() or not initrd.exists():
        pytest.skip("no default guest: run scripts/build-guest")

    script = base64.b64encode(b"echo oracle-$((6*7))\nexit 4\n").decode()
    cmdline = f"console=ttyS0 panic=-1 vessel.script={script}"
    args = [str(dump), str(tmp_path), "512", str(kernel), str(initrd), cmdline]
    if not decompress:
        args.append("no-decompress")
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    where = dict(kv.split("=") for kv in r.stdout.split())
    assert where["decompressed"] == ("1" if decompress else "0")

    log = io.StringIO()
    child = pexpect.spawn(qemu, [
        "-accel", "tcg", "-M", "pc", "-m", "512", "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", "stdio", "-bios", str(tmp_path / "rom.bin"),
        "-device", f"loader,file={tmp_path / 'low.bin'},addr=0",
        "-device", f"loader,file={tmp_path / 'kernel.bin'},addr={where['kernel_start']}",
        "-device", f"loader,file={tmp_path / 'initrd.bin'},addr={where['initrd_start']}",
    ], encoding="utf-8", codec_errors="replace", timeout=300)
    child.logfile_read = log
    try:
        child.expect(r"VESSEL-SCRIPT-END rc=(\S+)")
        rc = child.match.group(1)
        # Without ACPI tables the kernel halts instead of powering off.
        child.expect(["System halted", "Power down"], timeout=120)
    except pexpect.ExceptionPexpect:
        pytest.fail("the guest did not run its script and stop:\n" + log.getvalue()[-3000:])
    finally:
        child.terminate(force=True)
    text = log.getvalue().replace("\r", "")
    assert rc == "4"
    # Kernel log lines ("[    1.8...] clocksource: ...") may land between
    # the script's own lines: the console is shared.
    assert re.search(r"VESSEL-SCRIPT-BEGIN\n(?:\[[^\n]*\n)*oracle-42\n", text), text[-3000:]
    assert f"Command line: {cmdline}\n" in text
    # The map boot_build_e820() makes for 512 MiB (docs/boot.md).
    assert re.findall(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)", text) == [
        ("0x0000000000000000", "0x000000000009fbff", "usable"),
        ("0x000000000009fc00", "0x000000000009ffff", "reserved"),
        ("0x00000000000e0000", "0x00000000000fffff", "reserved"),
        ("0x0000000000100000", "0x000000001fffffff", "usable"),
        ("0x00000000b0000000", "0x00000000bfffffff", "reserved"),
        ("0x00000000ffff0000", "0x00000000ffffffff", "reserved"),
    ]
    m = re.search(r"RAMDISK: \[mem (0x[0-9a-f]+)-", text)
    assert m and int(m.group(1), 16) == int(where["initrd_start"], 16)


MB_REPORT = r"""
; Multiboot kernel that prints what it was given on the debug console
; (port 0xe9): command line | first module's string | its first 4 bytes |
; boot loader name, then exits through the debug-exit port 0xf4.
	bits 32
	org 0x100000
mbhdr:
	dd 0x1BADB002, 0x00010003, -(0x1BADB002 + 0x00010003)
	dd mbhdr, 0x100000, load_end, load_end + 0x1000, entry
entry:
	mov dx, 0xe9
	mov esi, [ebx + 16]
	call puts
	call bar
	mov edi, [ebx + 24]
	mov esi, [edi + 8]
	call puts
	call bar
	mov esi, [edi]
	mov ecx, 4
	rep outsb
	call bar
	mov esi, [ebx + 64]
	call puts
	mov al, 10
	out dx, al
	mov al, 1
	out 0xf4, al
	hlt
bar:
	mov al, '|'
	out dx, al
	ret
puts:
	lodsb
	test al, al
	jz .e
	out dx, al
	jmp puts
.e:	ret
load_end:
"""


def test_multiboot_information_follows_qemus_conventions(tmp_path):
    """The same Multiboot kernel under QEMU's own -kernel loader and under
    vessel's loader (on QEMU, from vessel's ROM) sees the same command line
    and module string; only the boot loader name differs."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu or not shutil.which("nasm"):
        pytest.skip("qemu-system-x86_64 and nasm are needed (scripts/setup)")
    dump = build_dir() / "tests" / "unit" / "boot" / "boot-dump"
    if not os.access(dump, os.X_OK):
        pytest.fail(f"{dump} not built: run `make build`")
    (tmp_path / "mb.asm").write_text(MB_REPORT)
    kernel, module = tmp_path / "mb.bin", tmp_path / "mod.txt"
    subprocess.run(["nasm", "-f", "bin", "-o", str(kernel), str(tmp_path / "mb.asm")], check=True)
    module.write_text("MODULE-CONTENT")
    common = [qemu, "-accel", "tcg", "-M", "pc", "-m", "128", "-nodefaults", "-display", "none",
              "-device", "isa-debug-exit,iobase=0xf4,iosize=1"]

    def run(args, name):
        con = tmp_path / f"{name}.con"
        r = subprocess.run(common + args + ["-debugcon", f"file:{con}"], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 3, (name, r.returncode, r.stderr)     # (1 << 1) | 1 from the debug-exit port
        return con.read_text().strip().split("|")

    theirs = run(["-kernel", str(kernel), "-append", "a=1 b", "-initrd", f"{module} marg"], "qemu")
    out = tmp_path / "dump"
    out.mkdir()
    r = subprocess.run([str(dump), str(out), "128", str(kernel), f"{module} marg", "a=1 b"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    where = dict(kv.split("=") for kv in r.stdout.split())
    ours = run(["-bios", str(out / "rom.bin"), "-device", f"loader,file={out / 'low.bin'},addr=0",
                "-device", f"loader,file={out / 'kernel.bin'},addr={where['kernel_start']}",
                "-device", f"loader,file={out / 'initrd.bin'},addr={where['initrd_start']}"], "vessel")
    assert theirs[:3] == [f"{kernel} a=1 b", f"{module} marg", "MODU"]
    assert ours[:3] == theirs[:3]
    assert theirs[3] == "qemu" and ours[3].startswith("vessel")
