"""virtio-blk acceptance (issue 11) with the default guest and Debian's
virtio_blk driver, checks batched per boot to keep the suite short:

- a raw disk, a dynamic VHD and a LUKS2-encrypted dynamic VHD attached
  together, the first boot with the raw disk's host cache off
  (cache=none: O_DIRECT, through io_uring) and the VHD's flushes ignored
  (cache=unsafe): the guest makes ext4 on each (e2fsprogs' mkfs.ext4), writes
  64 MiB of known data, syncs and powers off; a second boot reads it back
  identical, with the raw disk read-only (its init mounts it read-only and
  a write fails in the guest); `vessel disk check` passes; `qemu-img
  convert` of the raw and VHD images holds the data; the encrypted image
  holds none of it;
- kill -9 of vessel while the guest writes and fsyncs in a loop on a
  dynamic VHD: every block the guest had fsync'd is on the image and the
  image checks clean.  One kill per boot: KILLS boots (3 by default, at
  random points; VESSEL_TEST_KILLS=20 for the issue's full count) keep the
  suite within its time budget: each kill point costs one guest boot
  (some 30-40 s in CI), so the full 20 would add about 10 minutes."""
import hashlib
import os
import random
import select
import shutil
import subprocess
import time

import pytest

from conftest import run_vessel
from disk_helpers import disk, ok, qemu_img
from guests import linux_args, script_output

BOOT_TIMEOUT = 1200
MIB = 1 << 20
FAST = "pbkdf=pbkdf2,pbkdf-iterations=1000"   # cheap keyslots: the test is not about PBKDF cost
KILLS = int(os.environ.get("VESSEL_TEST_KILLS", "3"))

# 1 MiB of numbered lines, the same in the guest (awk) and here; the file
# is 64 copies of it.  A 4 KiB block of it is what the images are searched for.
LINE = "vessel-acceptance-%09d\n"
CHUNK_LINES = MIB // len(LINE % 0) + 1
CHUNK = "".join(LINE % i for i in range(CHUNK_LINES)).encode()[:MIB]
DATA_MD5 = hashlib.md5(CHUNK * 64).hexdigest()
MAKE_DATA = (f"awk 'BEGIN {{ for (i = 0; i < {CHUNK_LINES}; i++) printf \"{LINE.strip()}\\n\", i }}' "
             f"| head -c {MIB} > /tmp/chunk\n"
             "for i in $(seq 64); do cat /tmp/chunk; done > /tmp/data\n")


def boot(vessel_bin, script, *extra):
    r = run_vessel(vessel_bin, *linux_args(script), *extra, timeout=BOOT_TIMEOUT)
    assert r.returncode == 0, f"rc={r.returncode}\nstderr:\n{r.stderr}\nconsole tail:\n{r.stdout[-3000:]}"
    lines, rc = script_output(r.stdout, kernel_log=False)
    return lines, rc, r


def check_clean(vessel_bin, img):
    r = disk(vessel_bin, "check", img)
    assert r.returncode == 0, f"vessel disk check {img}: {r.stdout}{r.stderr}"


def test_ext4_on_raw_vhd_and_luks2_vhd_round_trip(vessel_bin, tmp_path):
    raw, vhd, enc, key = (tmp_path / "a.raw", tmp_path / "b.vhd", tmp_path / "c.vhd", tmp_path / "key")
    key.write_bytes(b"correct horse battery staple")
    ok(disk(vessel_bin, "create", raw, "128M"))
    ok(disk(vessel_bin, "create", "--type", "dynamic", vhd, "128M"))
    ok(disk(vessel_bin, "create", "--type", "dynamic", f"--encrypt={FAST}", "--key-file", key, enc, "128M"))
    disks = ["--disk", f"{raw},format=raw,queues=2,cache=none", "--disk", f"{vhd},format=vhd,cache=unsafe",
             "--disk", f"{enc},format=vhd,key-file={key}"]
    # Blank disks: init mounts nothing; the script makes and mounts them.
    write = (MAKE_DATA +
             "for d in vda vdb vdc; do\n"
             "  mkfs.ext4 -q -F /dev/$d || echo MKFS-FAILED $d\n"
             "  mkdir -p /m/$d && mount -t ext4 /dev/$d /m/$d && cp /tmp/data /m/$d/data\n"
             "done\n"
             "sync\n"
             "md5sum /m/vda/data /m/vdb/data /m/vdc/data\n"
             "for d in vda vdb vdc; do umount /m/$d; done\n")
    lines, rc, _ = boot(vessel_bin, write, *disks)
    assert rc == "0" and not any("MKFS-FAILED" in l for l in lines), lines
    sums = [l.split()[0] for l in lines if l.endswith("/data")]
    assert sums == [DATA_MD5] * 3, lines

    # Second boot, the raw disk read-only: init mounts it at /mnt (ro).
    read = ("grep ' /mnt ' /proc/mounts\n"
            "if echo x > /mnt/new 2>/dev/null; then echo WROTE; else echo REFUSED; fi\n"
            "mkdir -p /m/vdb /m/vdc && mount /dev/vdb /m/vdb && mount /dev/vdc /m/vdc\n"
            "md5sum /mnt/data /m/vdb/data /m/vdc/data\n"
            "umount /m/vdb /m/vdc\n")
    disks[1] = f"{raw},format=raw,ro,packed=off"
    lines, rc, _ = boot(vessel_bin, read, *disks)
    assert rc == "0", lines
    dev, mnt, fstype, opts = lines[0].split()[:4]
    assert (dev, mnt, fstype) == ("/dev/vda", "/mnt", "ext4") and opts.startswith("ro,"), lines
    assert "REFUSED" in lines and "WROTE" not in lines, lines
    sums = [l.split()[0] for l in lines if l.endswith("/data")]
    assert sums == [DATA_MD5] * 3, lines

    for img in (raw, vhd, enc):
        check_clean(vessel_bin, img)
    block = CHUNK[8192:12288]
    for img, fmt in ((raw, "raw"), (vhd, "vpc")):
        out = tmp_path / f"{img.name}.converted"
        ok(qemu_img("convert", "-f", fmt, "-O", "raw", img, out))
        assert block in out.read_bytes(), f"qemu-img convert of {img.name} lacks the guest's data"
        out.unlink()
    content = enc.read_bytes()
    assert b"vessel-acceptance-" not in content and block not in content, "plaintext on the encrypted image"


def test_kill_9_while_the_guest_fsyncs(vessel_bin, tmp_path):
    """Blocks of 4 KiB, each naming its index and the boot, written with
    dd conv=fsync (a FLUSH) one after the other; the console says which
    completed.  vessel is killed at a random point after some of them."""
    img = tmp_path / "crash.vhd"
    ok(disk(vessel_bin, "create", "--type", "dynamic", "--block-size", "512K", img, "64M"))
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    for boot_no in range(KILLS):
        script = ("i=0\n"
                  "while [ $i -lt 4000 ]; do\n"
                  f"  printf 'boot-{boot_no}-block-%08d\\n' $i | dd of=/tmp/b bs=4096 conv=sync 2>/dev/null\n"
                  "  dd if=/tmp/b of=/dev/vda bs=4096 seek=$((i * 3)) conv=fsync,notrunc 2>/dev/null "
                  "&& echo SYNCED $i\n"
                  "  i=$((i + 1))\n"
                  "done\n")
        target = rng.randint(3, 40)
        proc = subprocess.Popen([vessel_bin, *linux_args(script), "--disk", f"{img},format=vhd,cache=writeback"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        synced, buf, deadline = -1, b"", time.monotonic() + BOOT_TIMEOUT
        try:
            while synced < target and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 1.0)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                # Whole lines only: the last one may still be arriving.
                for line in buf.replace(b"\r", b"").split(b"\n")[:-1]:
                    words = line.split()
                    if len(words) == 2 and words[0] == b"SYNCED" and words[1].isdigit():
                        synced = max(synced, int(words[1]))
            proc.kill()   # SIGKILL, wherever the guest is
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert synced >= target, f"boot {boot_no}: the guest reached block {synced} of {target}\n{buf[-2000:]!r}"
        check_clean(vessel_bin, img)
        raw = tmp_path / "crash.raw"
        ok(qemu_img("convert", "-f", "vpc", "-O", "raw", img, raw))
        content = raw.read_bytes()
        raw.unlink()
        for i in range(synced + 1):
            want = f"boot-{boot_no}-block-{i:08d}\n".encode()
            at = i * 3 * 4096
            assert content[at:at + len(want)] == want, f"boot {boot_no}: fsync'd block {i} of {synced} is not on the image"
