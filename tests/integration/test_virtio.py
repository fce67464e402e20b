"""virtio devices with Debian's own drivers (docs/virtio.md, issue 11):
the guest's virtio_pci, virtio_blk and virtio_rng bind to vessel's
devices; what the guest writes to a disk is on the image for the host
and for a second boot; a read-only disk refuses writes in the guest; an
encrypted disk holds no plaintext; /dev/hwrng gives data."""
import hashlib
import re
import shutil
import time

import pytest

from conftest import run_vessel
from test_control_vm import ctl, start
from disk_helpers import disk, ok
from guests import linux_args, script_output

BOOT_TIMEOUT = 900
MIB = 1 << 20
DATA = (b"vessel-virtio-blk\n" * (MIB // 18 + 1))[:MIB]
FAST = "pbkdf=pbkdf2,pbkdf-iterations=1000"   # cheap keyslots: the test is not about PBKDF cost

# The guest writes DATA (1 MiB made by `yes`) at byte 1 MiB of /dev/vda.
WRITE = ("yes vessel-virtio-blk | head -c 1048576 > /tmp/d\n"
         "dd if=/tmp/d of=/dev/vda bs=64k seek=16 conv=fsync 2>&1 | tail -1\n"
         "sync\n")
READ = "dd if=/dev/vda bs=64k skip=16 count=16 2>/dev/null | md5sum\n"


def boot(vessel_bin, script, *extra):
    r = run_vessel(vessel_bin, *linux_args(script), *extra, timeout=BOOT_TIMEOUT)
    assert r.returncode == 0, f"rc={r.returncode}\nstderr:\n{r.stderr}\nconsole tail:\n{r.stdout[-3000:]}"
    lines, rc = script_output(r.stdout, kernel_log=False)
    return lines, rc, r


def md5(data):
    return hashlib.md5(data).hexdigest()


def test_raw_disk_written_by_the_guest_is_read_back(vessel_bin, tmp_path):
    img = tmp_path / "disk.raw"
    img.write_bytes(b"host-wrote-this\n" + bytes(8 * MIB - 16))
    # sysfs "serial" (GET_ID) has no newline of its own.
    script = ("basename $(readlink /sys/block/vda/device/driver)\n"
              "cat /sys/block/vda/size /sys/block/vda/ro; cat /sys/block/vda/serial; echo\n"
              "head -c 16 /dev/vda\n" + WRITE)
    lines, rc, r = boot(vessel_bin, script, "-v", "--disk", f"{img},format=raw,serial=VESSEL-SN-1")
    assert rc == "0", lines
    assert lines[:5] == ["virtio_blk", str(8 * MIB // 512), "0", "VESSEL-SN-1", "host-wrote-this"], lines
    content = img.read_bytes()
    assert content[MIB:2 * MIB] == DATA, "the guest's write is not on the image"
    assert content[:16] == b"host-wrote-this\n" and len(content) == 8 * MIB
    # Compounding (docs/compounding.md): a raw image's requests went to
    # the kernel through io_uring, at most one submission each (a burst of
    # them in one: the unit tests of the block queue), not through
    # vessel's own reads and writes (it has a few: probing the image,
    # the flush when the VM ends).
    req, sub, enters, disk_io = disk_counts(r.stderr)
    assert req > 0 and 0 < enters <= req and sub == enters and disk_io < req, r.stderr[-2000:]
    # A second boot reads it back through the device, without batching:
    # one worker hand-off and one host read per request.
    lines, rc, r = boot(vessel_bin, READ, "-v", "--compound", "block=off", "--disk", str(img))
    assert rc == "0" and lines[-1].split()[0] == md5(DATA), lines
    req, sub, enters, disk_io = disk_counts(r.stderr)
    assert req > 0 and enters == 0 and sub == req and disk_io >= req, r.stderr[-2000:]


def disk_counts(stderr):
    """Disk requests, their submissions, io_uring submits and vessel's own
    disk system calls, from the counts `vessel run -v` logs at the end."""
    m = re.search(r"(\d+) disk requests in (\d+) submissions \((\d+) io_uring submits, \d+ io_uring waits, (\d+) disk system calls\)",
                  stderr)
    assert m, stderr[-2000:]
    return tuple(int(g) for g in m.groups())


def test_read_only_disk_refuses_writes_in_the_guest(vessel_bin, tmp_path):
    img = tmp_path / "ro.raw"
    img.write_bytes(b"\x5a" * (4 * MIB))
    script = ("cat /sys/block/vda/ro\n"
              "if dd if=/dev/zero of=/dev/vda bs=4k count=1 conv=fsync 2>/dev/null; then echo WROTE; "
              "else echo REFUSED; fi\n"
              "head -c 4 /dev/vda | od -An -tx1\n")
    lines, rc, r = boot(vessel_bin, script, "--disk", f"{img},ro")
    assert rc == "0", lines
    assert lines[0] == "1", "the guest does not see the disk read-only"
    assert "REFUSED" in lines and "WROTE" not in lines, lines
    assert lines[-1].split() == ["5a"] * 4
    assert img.read_bytes() == b"\x5a" * (4 * MIB)


def test_dynamic_vhd_disk(vessel_bin, tmp_path):
    img = tmp_path / "disk.vhd"
    ok(disk(vessel_bin, "create", "--type", "dynamic", img, "16M"))
    lines, rc, _ = boot(vessel_bin, WRITE + READ, "--disk", f"{img},format=vhd")
    assert rc == "0" and lines[-1].split()[0] == md5(DATA), lines
    ok(disk(vessel_bin, "check", img))
    lines, rc, _ = boot(vessel_bin, READ, "--disk", str(img))
    assert rc == "0" and lines[-1].split()[0] == md5(DATA), lines


def test_encrypted_disk_holds_no_plaintext(vessel_bin, tmp_path):
    img, key = tmp_path / "enc.raw", tmp_path / "key"
    key.write_bytes(b"correct horse battery staple")
    ok(disk(vessel_bin, "create", f"--encrypt={FAST}", "--key-file", key, img, "8M"))
    lines, rc, _ = boot(vessel_bin, WRITE, "--disk", f"{img},key-file={key}")
    assert rc == "0", lines
    assert b"vessel-virtio-blk" not in img.read_bytes(), "plaintext on the encrypted image"
    lines, rc, _ = boot(vessel_bin, READ, "--disk", f"{img},key-file={key}")
    assert rc == "0" and lines[-1].split()[0] == md5(DATA), lines


def test_virtio_rng_feeds_hwrng(vessel_bin):
    script = ("cat /sys/devices/virtual/misc/hw_random/rng_current\n"
              "head -c 64 /dev/hwrng > /tmp/r; wc -c < /tmp/r; od -An -tx1 /tmp/r | tr -d ' \\n'; echo\n")
    lines, rc, _ = boot(vessel_bin, script, "--rng")
    assert rc == "0", lines
    assert lines[0].startswith("virtio_rng"), lines
    assert lines[1].strip() == "64"
    assert lines[2] != "00" * 64, "all zeros"


def test_disk_after_a_guest_reboot(vessel_bin, tmp_path):
    """A reboot resets the devices and places their BARs again: the second
    boot finds the disk and what the first wrote."""
    img = tmp_path / "disk.raw"
    img.write_bytes(bytes(4 * MIB))
    script = ("if [ \"$(head -c 6 /dev/vda)\" = second ]; then echo SECOND-BOOT-SAW-DISK; else "
              "echo second | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null; reboot -f; fi\n")
    r = run_vessel(vessel_bin, *linux_args(script), "--disk", str(img), "--rng", timeout=BOOT_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Linux version") == 2 and "SECOND-BOOT-SAW-DISK" in r.stdout, r.stdout[-3000:]


def test_intx_when_the_guest_turns_msi_off(vessel_bin, tmp_path):
    """pci=nomsi: the drivers fall back to INTx A through the I/O APIC
    (the DSDT's _PRT) and the ISR."""
    img = tmp_path / "disk.raw"
    img.write_bytes(b"intx-works\n" + bytes(MIB - 11))
    args = linux_args("head -c 11 /dev/vda\nhead -c 8 /dev/hwrng | wc -c\ngrep -c 'IO-APIC.*virtio' /proc/interrupts\n")
    # The command line follows --append; --jit (VESSEL_TEST_JIT) may come after it.
    args[args.index("--append") + 1] += " pci=nomsi"
    r = run_vessel(vessel_bin, *args, "--disk", str(img), "--rng", timeout=BOOT_TIMEOUT)
    assert r.returncode == 0, r.stderr
    lines, rc = script_output(r.stdout, kernel_log=False)
    assert rc == "0" and lines[0] == "intx-works" and lines[1].strip() == "8", lines
    assert int(lines[2]) >= 1, lines


def test_no_virtio_device_without_options(vessel_bin):
    lines, rc, _ = boot(vessel_bin, "ls /sys/bus/virtio/devices | wc -l\n")
    assert rc == "0" and lines == ["0"], lines


@pytest.mark.parametrize("opt, needle", [
    (",bogus", "bad option 'bogus'"),
    (",format=qcow2", "bad option 'format=qcow2'"),
    (",serial=" + "x" * 21, "at most 20 characters"),
    (",cache=directsync", "bad option 'cache=directsync'"),
    (",queues=0", "bad option 'queues=0'"),
    (",queues=9", "queues=1..8"),
])
def test_bad_disk_options_are_usage_errors(vessel_bin, tmp_path, opt, needle):
    img = tmp_path / "d.raw"
    img.write_bytes(bytes(MIB))
    r = run_vessel(vessel_bin, "run", "--kernel", "/nonexistent", "--disk", f"{img}{opt}")
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr


def test_an_image_has_one_writer(vessel_bin, tmp_path):
    """Two writers of one image would corrupt it: the same image given twice,
    or to a second VM while the first runs, is refused; a read-only look
    (`disk info`) still works, and the image is free again when the VM ends."""
    from guests import assemble
    from test_control_vm import start
    img = tmp_path / "d.vhd"
    assert run_vessel(vessel_bin, "disk", "create", "--format", "vhd", str(img), "1M").returncode == 0
    counter = assemble("counter", tmp_path)
    r = run_vessel(vessel_bin, "run", "--kernel", str(counter), "--disk", str(img), "--disk", f"{img},ro")
    assert r.returncode != 0 and f"{img}: in use" in r.stderr, r.stderr
    p, sock, _ = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter), "--disk", str(img))
    try:
        r = run_vessel(vessel_bin, "run", "--kernel", str(counter), "--disk", f"{img},ro")
        assert r.returncode != 0 and f"{img}: in use: another disk or process has it open for writing" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        r = run_vessel(vessel_bin, "disk", "check", str(img))
        assert r.returncode != 0 and "in use" in r.stderr, r.stderr
        r = run_vessel(vessel_bin, "disk", "info", str(img))
        assert r.returncode == 0, r.stderr
    finally:
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        p.wait(timeout=30)
    r = run_vessel(vessel_bin, "disk", "check", str(img))
    assert r.returncode == 0, r.stderr


def test_save_and_restore_with_a_disk_and_rng(vessel_bin, tmp_path):
    """A guest saved while its disk and entropy device are set up goes on
    using both after a restore into a new process."""
    img, snap = tmp_path / "disk.raw", tmp_path / "vm.snap"
    img.write_bytes(bytes(8 * MIB))
    script = (WRITE + "head -c 16 /dev/hwrng | wc -c\necho SAVE-NOW\nsleep 8\n"
              "echo 3 > /proc/sys/vm/drop_caches\n" + READ +
              "head -c 32 /dev/hwrng | wc -c\n"
              "echo after-restore | dd of=/dev/vda bs=512 seek=8192 conv=sync,fsync 2>/dev/null && echo WROTE\n")
    common = ["--rng"]
    p, sock, log = start(vessel_bin, tmp_path, "first", *linux_args(script)[1:], "--disk", str(img), *common)
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while "SAVE-NOW" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline and p.poll() is None, log.read_text(errors="replace")[-2000:]
            time.sleep(0.1)
        r = ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    # The restored VM gets a copy: nothing the first process did after
    # the save can reach what the second one reads.
    copy = tmp_path / "copy.raw"
    shutil.copyfile(img, copy)
    q, sock2, log2 = start(vessel_bin, tmp_path, "second", "--restore", str(snap), "--disk", str(copy), *common)
    try:
        assert q.wait(timeout=BOOT_TIMEOUT) == 0, q.stderr.read()
    finally:
        if q.poll() is None:
            q.kill()
    text = log2.read_text(errors="replace")
    assert "VESSEL-SCRIPT-END rc=0" in text, text[-3000:]
    assert md5(DATA) in text, text[-3000:]
    assert "32" in text.replace("\r", "").split("\n") and "WROTE" in text, text[-3000:]
    assert copy.read_bytes()[4 * MIB:4 * MIB + 14] == b"after-restore\n"
