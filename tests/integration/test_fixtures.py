"""The default guest fixture (scripts/build-guest, docs/boot.md): what it
contains, that its script mechanism works, and that it boots to the script
and powers off under QEMU (the reference machine)."""
import re
import base64
import gzip
import io
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD_GUEST = ROOT / "scripts" / "build-guest"


def cache_dir():
    return pathlib.Path(os.environ.get("VESSEL_CACHE", pathlib.Path.home() / ".cache" / "vessel"))


@pytest.fixture(scope="module")
def guest():
    """Builds (or finds up to date) the default guest; skips when it cannot
    be built here (no apt sources or network for the kernel package)."""
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed (scripts/setup)")
    r = subprocess.run([str(BUILD_GUEST)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.skip(f"scripts/build-guest cannot build the guest here: {r.stderr.strip()[-300:]}")
    c = cache_dir()
    return {"kernel": c / "vmlinuz", "initrd": c / "initramfs.cpio.gz", "log": r.stdout}


def cpio_entries(data):
    """(name, mode, body) of each entry of a newc archive, checking the
    format as the kernel's unpacker does (init/initramfs.c)."""
    out, off = [], 0
    while True:
        assert data[off:off + 6] == b"070701", f"bad cpio magic at {off}"
        f = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[off + 110: off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        body = data[off: off + size]
        off += size
        off += -off % 4
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body))


def script_cmdline(script, extra="console=ttyS0"):
    return f"{extra} vessel.script={base64.b64encode(script.encode()).decode()}"


def test_outputs_are_a_bzimage_and_a_gzip_cpio(guest):
    k = guest["kernel"].read_bytes()
    # boot.rst: "HdrS" at 0x202, boot-protocol version at 0x206.
    assert k[0x202:0x206] == b"HdrS"
    assert int.from_bytes(k[0x206:0x208], "little") >= 0x020c
    names = {n: (m, b) for n, m, b in cpio_entries(gzip.decompress(guest["initrd"].read_bytes()))}
    for needed in ("init", "bin/busybox", "bin/sh", "sbin/poweroff", "etc/vessel/lib.sh", "dev/console"):
        assert needed in names, f"{needed} missing from the initramfs"
    assert names["init"][0] & 0o111, "/init is not executable"
    assert names["init"][1].startswith(b"#!/bin/sh")
    assert names["dev/console"][0] & 0o170000 == 0o020000, "/dev/console is not a character device"
    assert names["bin/busybox"][1][:4] == b"\x7fELF"
    mods = names["etc/vessel/modules"][1].decode().split()
    for m in mods:
        assert m in names, f"listed module {m} is not in the image"
    base = [os.path.basename(m) for m in mods]
    # Dependencies come first: virtio_blk needs virtio and virtio_ring.
    if "virtio_blk.ko" in base:
        assert base.index("virtio.ko") < base.index("virtio_blk.ko")
        assert base.index("virtio_ring.ko") < base.index("virtio.ko")


def test_build_is_idempotent(guest):
    before = [p.stat().st_mtime_ns for p in (guest["kernel"], guest["initrd"])]
    r = subprocess.run([str(BUILD_GUEST)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout
    assert f"kernel:    {guest['kernel']}" in r.stdout
    assert [p.stat().st_mtime_ns for p in (guest["kernel"], guest["initrd"])] == before


def test_image_carries_mke2fs_with_its_libraries_and_the_button_module(guest):
    """busybox makes only ext2: mkfs.ext4 is e2fsprogs' mke2fs, whose loader
    and every library it needs are in the image at the paths ldd gave."""
    names = {n: (m, b) for n, m, b in cpio_entries(gzip.decompress(guest["initrd"].read_bytes()))}
    assert names["sbin/mke2fs"][1][:4] == b"\x7fELF"
    assert names["sbin/mkfs.ext4"] == (0o120777, b"mke2fs")
    needed = subprocess.run(["ldd", "/usr/sbin/mke2fs"], capture_output=True, text=True).stdout
    libs = re.findall(r"(/\S+) \(0x", needed)
    assert any("libext2fs" in lib for lib in libs)
    for lib in libs:
        assert lib.lstrip("/") in names, f"{lib} missing from the initramfs"
    mods = [os.path.basename(m) for m in names["etc/vessel/modules"][1].decode().split()]
    assert "button.ko" in mods, mods


@pytest.fixture
def unpacked(guest, tmp_path):
    """The initramfs's files and symlinks, unpacked without privileges."""
    root = tmp_path / "root"
    for name, mode, body in cpio_entries(gzip.decompress(guest["initrd"].read_bytes())):
        p = root / name
        kind = mode & 0o170000
        if kind == 0o040000:
            p.mkdir(parents=True, exist_ok=True)
        elif kind == 0o100000:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(body)
            p.chmod(mode & 0o777)
        elif kind == 0o120000:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.symlink_to(body.decode())
    return root


def run_lib(root, tmp_path, cmdline, call):
    """Runs a function of the guest's /etc/vessel/lib.sh with the guest's
    own busybox, on the given command line."""
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    env = {"PATH": f"{root}/bin:{root}/sbin:{root}/usr/bin:{root}/usr/sbin",
           "VESSEL_CMDLINE": str(tmp_path / "cmdline"), "VESSEL_ROOT": str(root),
           "TMPDIR": str(tmp_path)}
    return subprocess.run([str(root / "bin" / "busybox"), "sh", "-c", f". {root}/etc/vessel/lib.sh; {call}"],
                          capture_output=True, text=True, errors="replace", env=env, timeout=30)


def test_script_mechanism_runs_the_decoded_script(unpacked, tmp_path):
    # Quotes, spaces, newlines and a non-zero exit status survive the trip.
    script = "echo \"it's  'quoted'\"\nfor i in 1 2; do echo line$i; done\nexit 5\n"
    r = run_lib(unpacked, tmp_path, script_cmdline(script, "console=ttyS0 quiet"), "vessel_run_script")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "VESSEL-SCRIPT-BEGIN\nit's  'quoted'\nline1\nline2\nVESSEL-SCRIPT-END rc=5\n"


def test_script_mechanism_reports_undecodable_scripts(unpacked, tmp_path):
    r = run_lib(unpacked, tmp_path, "console=ttyS0 vessel.script=@@not*base64@@", "vessel_run_script")
    assert "VESSEL-SCRIPT-END rc=decode-error" in r.stdout
    assert r.returncode != 0


def test_no_disk_mounts_nothing(unpacked, tmp_path):
    # No /dev/vda (make run without --disk): init goes on quietly.
    r = run_lib(unpacked, tmp_path, "console=ttyS0", "vessel_mount_disk; echo rc=$?")
    assert r.stdout == "rc=0\n", r.stdout + r.stderr
    init = (unpacked / "init").read_text()
    assert init.index("vessel_mount_disk") < init.index("vessel_run_script")
    # The last "poweroff -f" (an earlier one sets the kernel's poweroff_cmd).
    assert init.index("vessel_umount_disk") < init.rindex("poweroff -f")


def test_without_a_script_init_starts_a_shell(unpacked, tmp_path):
    r = run_lib(unpacked, tmp_path, "console=ttyS0 vessel.scripts=x",
                "if vessel_has_script; then echo yes; else echo no; fi")
    assert r.stdout == "no\n"
    init = (unpacked / "init").read_text()
    assert "setsid cttyhack sh" in init and "poweroff -f" in init


def test_fixture_boots_in_qemu_runs_the_script_and_powers_off(guest):
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup)")
    script = "echo fixture-$((6*7))\ngrep -c virtio /proc/modules\nexit 7\n"
    r = subprocess.run([qemu, "-accel", "tcg", "-M", "pc", "-m", "512", "-kernel", str(guest["kernel"]),
                        "-initrd", str(guest["initrd"]), "-append", script_cmdline(script, "console=ttyS0 quiet"),
                        "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = r.stdout.replace("\r", "")
    assert r.returncode == 0, out[-2000:]
    # Kernel log lines may land between the script's lines (shared console).
    assert re.search(r"VESSEL-SCRIPT-BEGIN\n(?:\[[^\n]*\n)*fixture-42\n", out), out[-2000:]
    assert "VESSEL-SCRIPT-END rc=7" in out
    assert "reboot: Power down" in out


def test_without_a_script_the_fixture_gives_a_job_control_shell_in_qemu(guest):
    pexpect = pytest.importorskip("pexpect")
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup)")
    child = pexpect.spawn(qemu, ["-accel", "tcg", "-M", "pc", "-m", "512", "-kernel", str(guest["kernel"]),
                                 "-initrd", str(guest["initrd"]), "-append", "console=ttyS0 quiet",
                                 "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio"],
                          encoding="utf-8", codec_errors="replace", timeout=300)
    log = io.StringIO()
    child.logfile_read = log
    try:
        child.expect("vessel# ")
        # cttyhack gave the shell the serial line as its controlling
        # terminal: job control works and tty names it.
        child.sendline("tty; sleep 30 & jobs; echo sum=$((40+2))")
        child.expect(r"(/dev/\S+)\s")
        assert child.match.group(1) == "/dev/ttyS0"
        child.expect(r"\[1\]\+?\s+Running\s+sleep 30", timeout=60)
        child.expect("sum=42", timeout=60)
        child.sendline("exit")
        child.expect("reboot: Power down", timeout=120)
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.terminate(force=True)
    assert "job control turned off" not in log.getvalue()
