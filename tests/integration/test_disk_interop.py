"""Interchange with qemu's vpc driver (qemu-img, qemu-io from qemu-utils).

qemu takes a VHD's size from its CHS geometry unless the geometry is the
maximum or the Creator Application is one it knows to use Current Size.
vessel's images keep the two equal (docs/disks.md), so both read the same
number of sectors.  qemu 7.2 cannot create differencing VHDs nor follow
their parents (it reads a child as a lone dynamic disk), so chains are
compared through vessel alone."""
import os

import pytest

from disk_helpers import (disk, have_qemu, info, io, ok, pattern, qemu_accepts, qemu_img, qemu_size,
                          qemu_to_raw, sha)

pytestmark = pytest.mark.skipif(not have_qemu(), reason="qemu-img/qemu-io (qemu-utils) not installed")

WRITES = [(0, 4096, 1), (2 << 20 - 1, 0, 0), ((2 << 20) - 2048, 8192, 2), (5 << 20, 65536, 3),
          ((12 << 20) - 512, 512, 4)]
WRITES = [w for w in WRITES if w[1]]


def vessel_write(vessel_bin, img, writes):
    _, lines = io(vessel_bin, img, [f"write {o} {n} {s}" for o, n, s in writes] + ["flush"])
    assert lines == ["ok"] * (len(writes) + 1)


def expected(size, writes):
    buf = bytearray(size)
    for o, n, s in writes:
        buf[o:o + n] = pattern(o, n, s)
    return bytes(buf)


@pytest.mark.parametrize("args", [["-t", "dynamic"], ["-t", "fixed"], ["-t", "dynamic", "--exact-size"],
                                  ["-t", "dynamic", "--block-size", "512K"]])
def test_vessel_images_read_identically_in_qemu(vessel_bin, tmp_path, args):
    img = tmp_path / "v.vhd"
    ok(disk(vessel_bin, "create", *args, img, "12M"))
    vessel_write(vessel_bin, img, WRITES)
    good, why = qemu_accepts(img)
    assert good, why
    size = info(vessel_bin, img)["virtual-size"]
    assert qemu_size(img) == size
    q = qemu_to_raw(img, tmp_path / "q.raw")
    ok(disk(vessel_bin, "convert", "-O", "raw", img, tmp_path / "v.raw"))
    assert q == open(tmp_path / "v.raw", "rb").read() == expected(size, WRITES)


@pytest.mark.parametrize("sub", ["fixed", "dynamic"])
def test_qemu_images_are_read_and_written_by_vessel(vessel_bin, tmp_path, sub):
    img = tmp_path / "q.vhd"
    ok(qemu_img("create", "-f", "vpc", "-o", f"subformat={sub}", img, "12M"))
    # qemu writes some, vessel checks, reads, and writes more
    ok(__import__("subprocess").run(["qemu-io", "-f", "vpc", "-c", "write -P 0x5a 1M 64k", str(img)],
                                    capture_output=True, text=True))
    r = ok(disk(vessel_bin, "check", img))
    assert "no errors" in r.stdout
    i = info(vessel_bin, img)
    assert i["format"] == "vhd" and i["subformat"] == sub
    assert i["virtual-size"] == qemu_size(img)
    _, lines = io(vessel_bin, img, ["read 1M 64K"], "-r")
    h = 0xCBF29CE484222325
    for b in b"\x5a" * 65536:
        h = ((h ^ b) * 0x100000001B3) & ((1 << 64) - 1)
    assert lines == [f"ok {h:016x}"]
    vessel_write(vessel_bin, img, WRITES)
    good, why = qemu_accepts(img)
    assert good, why
    data = qemu_to_raw(img, tmp_path / "q.raw")
    exp = bytearray(expected(i["virtual-size"], WRITES))
    exp[1 << 20:(1 << 20) + 65536] = b"\x5a" * 65536
    assert data == bytes(exp)
    ok(disk(vessel_bin, "check", img))


def test_qemu_force_size_images_keep_their_exact_size(vessel_bin, tmp_path):
    img = tmp_path / "q.vhd"
    ok(qemu_img("create", "-f", "vpc", "-o", "force_size=on", img, "10M"))
    assert info(vessel_bin, img)["virtual-size"] == qemu_size(img) == 10 << 20


def test_qemu_converts_to_vessel_readable_vhd_and_back(vessel_bin, tmp_path):
    raw = tmp_path / "src.raw"
    with open(raw, "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(pattern(3 << 20, 16384, 8))
    ok(qemu_img("convert", "-f", "raw", "-O", "vpc", raw, tmp_path / "q.vhd"))
    ok(disk(vessel_bin, "convert", "-O", "raw", tmp_path / "q.vhd", tmp_path / "v.raw"))
    v = open(tmp_path / "v.raw", "rb").read()
    assert v[:8 << 20] == open(raw, "rb").read()
    assert v[8 << 20:] == bytes(len(v) - (8 << 20))   # qemu rounded the size up to a geometry
    # and vessel's conversion of the raw file reads back in qemu
    ok(disk(vessel_bin, "convert", "-O", "vhd", raw, tmp_path / "v.vhd"))
    assert qemu_to_raw(tmp_path / "v.vhd", tmp_path / "q2.raw") == open(raw, "rb").read()


def test_differencing_chain_reads_through_parents(vessel_bin, tmp_path):
    """A chain over a qemu-made base: vessel's view equals the expected
    merge, the child passes both checkers, and committing it gives qemu the
    same bytes."""
    base = tmp_path / "base.vhd"
    ok(qemu_img("create", "-f", "vpc", "-o", "subformat=dynamic", base, "12M"))
    vessel_write(vessel_bin, base, WRITES[:2])
    child = tmp_path / "child.vhd"
    ok(disk(vessel_bin, "create", "-b", base, child))
    vessel_write(vessel_bin, child, WRITES[2:])
    good, why = qemu_accepts(child)
    assert good, why
    ok(disk(vessel_bin, "check", child))
    size = info(vessel_bin, child)["virtual-size"]
    ok(disk(vessel_bin, "convert", "-O", "raw", child, tmp_path / "chain.raw"))
    assert open(tmp_path / "chain.raw", "rb").read() == expected(size, WRITES)
    before = sha(child)
    ok(disk(vessel_bin, "commit", child))
    assert sha(child) == before
    assert qemu_to_raw(base, tmp_path / "base.raw") == expected(size, WRITES)
