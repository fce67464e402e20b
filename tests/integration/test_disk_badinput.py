"""Damaged and hostile images: every command answers with one clear line
and exit code 2, never crashes, and never writes to the image."""
import os
import shutil
import struct

import pytest

from disk_helpers import disk, io, ok, sha


def be32(b, off, v):
    b[off:off + 4] = struct.pack(">I", v)


def checksum(buf, off):
    s = sum(buf[:off]) + sum(buf[off + 4:])
    return (~s) & 0xFFFFFFFF


def patch_header(path, fn):
    with open(path, "r+b") as f:
        f.seek(512)
        h = bytearray(f.read(1024))
        fn(h)
        be32(h, 36, checksum(h, 36))
        f.seek(512)
        f.write(h)


def patch_footers(path, fn):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for off in (0, size - 512):
            f.seek(off)
            ft = bytearray(f.read(512))
            if ft[:8] != b"conectix":
                continue
            fn(ft)
            be32(ft, 64, checksum(ft, 64))
            f.seek(off)
            f.write(ft)


def base_image(vessel_bin, tmp_path, name="d.vhd"):
    img = tmp_path / name
    ok(disk(vessel_bin, "create", "--exact-size", "--block-size", "64K", img, "4M"))
    io(vessel_bin, img, ["write 0 4K 1", "write 128K 4K 2", "flush"])
    return img


def truncate_tail(p):
    os.truncate(p, os.path.getsize(p) - 4096)


def truncate_small(p):
    os.truncate(p, 300)


def bad_footer_checksums(p):
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        for off in (0, size - 512):
            f.seek(off + 100)
            f.write(b"\x99")


def bad_header_checksum(p):
    with open(p, "r+b") as f:
        f.seek(512 + 200)
        f.write(b"\x42")


def bat_outside(p):
    with open(p, "r+b") as f:
        f.seek(1536)
        f.write(struct.pack(">I", 0x7FFFFFF0))


def bat_overlap(p):
    with open(p, "r+b") as f:
        f.seek(1536)
        first = f.read(4)
        f.seek(1536 + 4 * 5)
        f.write(first)


def bat_into_metadata(p):
    with open(p, "r+b") as f:
        f.seek(1536 + 4 * 7)
        f.write(struct.pack(">I", 2))


def absurd_entries(p):
    patch_header(p, lambda h: be32(h, 28, 0xFFFFFFFF))


def absurd_block_size(p):
    patch_header(p, lambda h: be32(h, 32, 0x80000000))


def absurd_virtual_size(p):
    patch_footers(p, lambda f: f.__setitem__(slice(48, 56), struct.pack(">Q", 1 << 60)))


def header_outside(p):
    patch_footers(p, lambda f: f.__setitem__(slice(16, 24), struct.pack(">Q", 1 << 40)))


def bad_disk_type(p):
    patch_footers(p, lambda f: be32(f, 60, 9))


def garbage_with_cookie(p):
    with open(p, "wb") as f:
        f.write(b"conectix" + bytes(range(256)) * 6)


CORRUPTIONS = [truncate_tail, truncate_small, bad_footer_checksums, bad_header_checksum, bat_outside,
               bat_overlap, bat_into_metadata, absurd_entries, absurd_block_size, absurd_virtual_size,
               header_outside, bad_disk_type, garbage_with_cookie]


def assert_clean_failure(r, path):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vessel disk"), r.stderr
    assert "Sanitizer" not in r.stderr and "core dumped" not in r.stderr


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_damaged_image_is_refused_cleanly_and_left_alone(vessel_bin, tmp_path, corrupt):
    img = base_image(vessel_bin, tmp_path)
    corrupt(img)
    before = sha(img)
    assert_clean_failure(disk(vessel_bin, "info", "-f", "vhd", img), img)
    assert_clean_failure(disk(vessel_bin, "io", "-f", "vhd", img, stdin="read 0 4K\n"), img)
    assert_clean_failure(disk(vessel_bin, "convert", "-f", "vhd", img, tmp_path / "out.raw"), img)
    assert not (tmp_path / "out.raw").exists()
    assert_clean_failure(disk(vessel_bin, "resize", "-f", "vhd", img, "8M"), img)
    r = disk(vessel_bin, "check", "-f", "vhd", img)
    assert r.returncode == 2, (r.stdout, r.stderr)
    r = disk(vessel_bin, "check", "-f", "vhd", "--repair", img)   # nothing safely repairable here
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert sha(img) == before


def test_parent_loop_is_refused(vessel_bin, tmp_path):
    a = base_image(vessel_bin, tmp_path, "a.vhd")
    b, c = tmp_path / "b.vhd", tmp_path / "c.vhd"
    ok(disk(vessel_bin, "create", "-b", a, b))
    ok(disk(vessel_bin, "create", "-b", b, c))
    r = disk(vessel_bin, "rebase", "-u", "-b", c, b)
    assert_clean_failure(r, b)
    assert "contains this image" in r.stderr
    # make the loop by hand: a becomes a copy of c, so b -> a(=c) -> b
    shutil.copy(c, a)
    before = sha(b)
    r = disk(vessel_bin, "io", "-r", b, stdin="read 0 4K\n")
    assert_clean_failure(r, b)
    r = disk(vessel_bin, "rebase", "-u", "-b", b, c)   # c's parent would be itself through b
    assert r.returncode == 2
    assert sha(b) == before


def test_replaced_parent_is_refused(vessel_bin, tmp_path):
    a = base_image(vessel_bin, tmp_path, "a.vhd")
    b = tmp_path / "b.vhd"
    ok(disk(vessel_bin, "create", "-b", a, b))
    os.unlink(a)
    base_image(vessel_bin, tmp_path, "a.vhd")
    r = disk(vessel_bin, "io", "-r", b, stdin="read 0 4K\n")
    assert_clean_failure(r, b)
    assert "unique id" in r.stderr


def test_missing_file_and_directory(vessel_bin, tmp_path):
    assert_clean_failure(disk(vessel_bin, "info", tmp_path / "nope.vhd"), None)
    assert_clean_failure(disk(vessel_bin, "info", tmp_path), None)
    assert_clean_failure(disk(vessel_bin, "create", tmp_path / "no" / "dir.vhd", "1M"), None)
