"""Helpers for the `vessel disk` tests: the I/O pattern of `vessel disk io`,
running the CLI, and qemu-img/qemu-io wrappers."""
import hashlib
import json
import os
import shutil
import subprocess

MASK = (1 << 64) - 1


def pattern(offset, length, seed):
    """Bytes `vessel disk io` writes for `write OFFSET LENGTH SEED`."""
    out = bytearray()
    first = offset // 512
    for i in range(length // 512):
        v = (seed * 0x9E3779B97F4A7C15 + first + i) & MASK
        out += v.to_bytes(8, "little") * 64
    return bytes(out)


def disk(vessel_bin, *args, stdin=None, timeout=120):
    return subprocess.run([vessel_bin, "disk", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr!r}"
    return r


def io(vessel_bin, image, commands, *opts):
    """Runs `vessel disk io` with the commands; returns the answer lines."""
    r = disk(vessel_bin, "io", *opts, image, stdin="".join(c + "\n" for c in commands))
    return r, r.stdout.splitlines()


def info(vessel_bin, image):
    return json.loads(ok(disk(vessel_bin, "info", "--json", image)).stdout)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def have_qemu():
    return shutil.which("qemu-img") is not None and shutil.which("qemu-io") is not None


def qemu_img(*args, timeout=120):
    return subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def qemu_accepts(path):
    """qemu's verdict on a VHD: `qemu-img check` where the vpc driver
    implements it (qemu 7.2's does not: it answers 63, "does not support
    checks"); then opening the image (qemu validates the footer, header and
    BAT against the file) and reading all of it."""
    r = qemu_img("check", "-f", "vpc", path)
    if not (r.returncode == 0 or (r.returncode == 63 and "does not support checks" in r.stderr)):
        return False, r.stderr
    r = qemu_img("info", "-f", "vpc", "--output=json", path)
    if r.returncode != 0:
        return False, r.stderr
    out = f"{path}.qemu-read.raw"
    r = qemu_img("convert", "-f", "vpc", "-O", "raw", path, out)
    if os.path.exists(out):
        os.unlink(out)
    return r.returncode == 0, r.stderr


def qemu_size(path):
    return json.loads(ok(qemu_img("info", "-f", "vpc", "--output=json", path)).stdout)["virtual-size"]


def qemu_to_raw(path, out):
    ok(qemu_img("convert", "-f", "vpc", "-O", "raw", path, out))
    return open(out, "rb").read()
