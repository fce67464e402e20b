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
    assert "VESSEL-SCRIPT-BEGIN\noracle-42\n" in text
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
