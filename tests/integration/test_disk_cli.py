"""`vessel disk`: create, info, check, convert, resize, commit, rebase and io
through the command line, with their exit codes and messages."""
import json
import os
import subprocess

import pytest

from disk_helpers import disk, info, io, ok, pattern, sha

COMMANDS = ["create", "info", "check", "convert", "resize", "commit", "rebase", "io"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(vessel_bin, cmd):
    r = ok(disk(vessel_bin, cmd, "--help"))
    assert r.stdout.startswith(f"usage: vessel disk {cmd}")


@pytest.mark.parametrize("args", [
    ["create", "x.img"],                          # no size
    ["create", "x.img", "12Q"],                   # bad unit
    ["create", "-f", "qcow9", "x.img", "1M"],     # unknown format
    ["create", "-t", "differencing", "x.vhd"],    # no parent
    ["create", "-t", "sideways", "x.vhd", "1M"],
    ["create", "--bogus", "x.img", "1M"],
    ["info"],
    ["check", "a", "b"],
    ["convert", "only-one"],
    ["resize", "x.img"],
    ["rebase", "x.vhd"],                          # no -b
    ["frobnicate"],
])
def test_bad_usage_is_one_line_and_exit_2(vessel_bin, tmp_path, args):
    r = disk(vessel_bin, *args)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vessel disk"), r.stderr
    assert not (tmp_path / "x.img").exists()


def test_create_sizes_and_formats(vessel_bin, tmp_path):
    raw, dyn, fix = tmp_path / "a.img", tmp_path / "b.vhd", tmp_path / "c.vhd"
    ok(disk(vessel_bin, "create", raw, "3M"))
    assert os.path.getsize(raw) == 3 << 20
    ok(disk(vessel_bin, "create", "--size", "1G", dyn))
    ok(disk(vessel_bin, "create", "-f", "vhd", "-t", "fixed", "--exact-size", fix, "2M"))
    assert os.path.getsize(fix) == (2 << 20) + 512
    i = info(vessel_bin, dyn)
    assert i["format"] == "vhd" and i["subformat"] == "dynamic"
    # rounded up to the next CHS geometry, as `qemu-img create -f vpc 1G` does
    assert i["virtual-size"] == 1073995776
    assert i["geometry"] == {"cylinders": 2081, "heads": 16, "sectors-per-track": 63, "size": 1073995776}
    assert i["creator"] == "vsl "
    assert i["checksums"] == {"footer": "ok", "footer-copy": "ok", "header": "ok"}
    assert i["blocks-allocated"] == 0 and i["blocks-total"] == 513
    assert os.path.getsize(dyn) < 16 << 10          # sparse: metadata only
    j = info(vessel_bin, fix)
    assert j["subformat"] == "fixed" and j["virtual-size"] == 2 << 20
    assert info(vessel_bin, raw)["format"] == "raw"
    # an existing file is never overwritten
    before = sha(raw)
    r = disk(vessel_bin, "create", raw, "1M")
    assert r.returncode == 2 and "exists" in r.stderr
    assert sha(raw) == before


def test_vhd_size_rounds_up_to_a_chs_geometry(vessel_bin, tmp_path):
    img = tmp_path / "r.vhd"
    ok(disk(vessel_bin, "create", img, "64M"))
    i = info(vessel_bin, img)
    g = i["geometry"]
    assert i["virtual-size"] == g["cylinders"] * g["heads"] * g["sectors-per-track"] * 512 == 67125248


def test_info_human_output(vessel_bin, tmp_path):
    img = tmp_path / "h.vhd"
    ok(disk(vessel_bin, "create", "--exact-size", img, "1G"))
    out = ok(disk(vessel_bin, "info", img)).stdout
    assert "format: vhd (dynamic)" in out
    assert "virtual size: 1 GiB (1073741824 bytes)" in out
    assert "geometry: 65535/16/255" in out      # the exact-size mark


def test_io_write_flush_verify_stats(vessel_bin, tmp_path):
    img = tmp_path / "d.vhd"
    ok(disk(vessel_bin, "create", "--exact-size", img, "1G"))
    r, lines = io(vessel_bin, img, ["write 0 64K 1", "write 1G-4K 4K 2", "flush", "verify 0 64K 1",
                                    "verify 0 64K 2", "stats"])
    assert lines[:4] == ["ok", "error: bad offset/length (multiples of 512, at most 64M)", "ok", "ok"]
    assert lines[4] == "mismatch 0"
    assert lines[5].startswith("stats read 2 131072 write 1 65536 flush 1")
    assert r.returncode == 1


def test_convert_roundtrip_and_sparseness(vessel_bin, tmp_path):
    raw = tmp_path / "src.img"
    with open(raw, "wb") as f:
        f.truncate(32 << 20)
        f.seek(5 << 20)
        f.write(pattern(5 << 20, 8192, 3))
        f.seek((32 << 20) - 512)
        f.write(b"\x01" * 512)
    for sub in ["dynamic", "fixed"]:
        vhd = tmp_path / f"{sub}.vhd"
        ok(disk(vessel_bin, "convert", "-O", "vhd", "-t", sub, raw, vhd))
        i = info(vessel_bin, vhd)
        assert i["virtual-size"] == 32 << 20 and i["subformat"] == sub
        if sub == "dynamic":
            assert i["blocks-allocated"] == 2          # only the blocks holding data
            assert os.path.getsize(vhd) < 5 << 20
        back = tmp_path / f"{sub}.raw"
        r = ok(disk(vessel_bin, "convert", "-O", "raw", vhd, back))
        assert r.stderr == ""                          # no progress bar off a terminal
        assert sha(back) == sha(raw)
        assert os.stat(back).st_blocks * 512 < 1 << 20  # the copy is sparse too
    r = disk(vessel_bin, "convert", "-p", raw, tmp_path / "p.img")
    assert r.returncode == 0 and "100%" in r.stderr


def test_resize_grow_and_guarded_shrink(vessel_bin, tmp_path):
    img = tmp_path / "d.vhd"
    ok(disk(vessel_bin, "create", "--exact-size", img, "1G"))
    io(vessel_bin, img, ["write 1M 4K 4", "flush"])
    ok(disk(vessel_bin, "resize", img, "+1G"))
    assert info(vessel_bin, img)["virtual-size"] == 2 << 30
    r = disk(vessel_bin, "resize", img, "1G")
    assert r.returncode == 2 and "--shrink" in r.stderr
    assert info(vessel_bin, img)["virtual-size"] == 2 << 30
    r = ok(disk(vessel_bin, "resize", "--shrink", img, "-1G"))
    assert "warning" in r.stderr
    assert info(vessel_bin, img)["virtual-size"] == 1 << 30
    _, lines = io(vessel_bin, img, ["verify 1M 4K 4"], "-r")
    assert lines == ["ok"]
    ok(disk(vessel_bin, "check", img))
    raw = tmp_path / "r.img"
    ok(disk(vessel_bin, "create", raw, "1M"))
    ok(disk(vessel_bin, "resize", raw, "2M"))
    assert os.path.getsize(raw) == 2 << 20


def test_differencing_chain_commit_and_rebase(vessel_bin, tmp_path):
    base, mid, top = tmp_path / "base.vhd", tmp_path / "mid.vhd", tmp_path / "top.vhd"
    ok(disk(vessel_bin, "create", base, "1G"))
    io(vessel_bin, base, ["write 0 1M 1", "flush"])
    ok(disk(vessel_bin, "create", "--parent", base, mid))
    io(vessel_bin, mid, ["write 64K 4K 2", "flush"])
    ok(disk(vessel_bin, "create", "-b", mid, top))
    for img in (mid, top):
        r = ok(disk(vessel_bin, "check", img))
        assert "warning" not in r.stdout and "no errors" in r.stdout
    i = info(vessel_bin, top)
    assert i["subformat"] == "differencing" and i["virtual-size"] == info(vessel_bin, base)["virtual-size"]
    assert [os.path.basename(e["filename"]) for e in i["backing-chain"]] == ["mid.vhd", "base.vhd"]
    _, lines = io(vessel_bin, top, ["verify 0 64K 1", "verify 64K 4K 2", "verify 68K 956K 1"], "-r")
    assert lines == ["ok"] * 3
    # commit mid into base: base now holds mid's sector
    ok(disk(vessel_bin, "commit", mid))
    _, lines = io(vessel_bin, base, ["verify 64K 4K 2", "verify 0 64K 1"], "-r")
    assert lines == ["ok", "ok"]
    # safe rebase of top straight onto base: same content
    ok(disk(vessel_bin, "rebase", "-b", base, top))
    r = ok(disk(vessel_bin, "check", top))
    assert "warning" not in r.stdout
    assert [os.path.basename(e["filename"]) for e in info(vessel_bin, top)["backing-chain"]] == ["base.vhd"]
    _, lines = io(vessel_bin, top, ["verify 0 64K 1", "verify 64K 4K 2"], "-r")
    assert lines == ["ok", "ok"]
    # commit refuses a disk with no parent
    r = disk(vessel_bin, "commit", base)
    assert r.returncode == 2 and "not a differencing disk" in r.stderr


def test_unsafe_rebase_relinks_a_moved_parent(vessel_bin, tmp_path):
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    ok(disk(vessel_bin, "create", base, "1G"))
    io(vessel_bin, base, ["write 0 4K 5", "flush"])
    ok(disk(vessel_bin, "create", "-b", base, child))
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "renamed.vhd"
    os.rename(base, moved)
    r = disk(vessel_bin, "io", "-r", child, stdin="verify 0 4K 5\n")
    assert r.returncode == 2 and "not found" in r.stderr
    r = disk(vessel_bin, "rebase", "-b", moved, child)       # safe mode needs the old parent
    assert r.returncode == 2
    ok(disk(vessel_bin, "rebase", "-u", "-b", moved, child))
    _, lines = io(vessel_bin, child, ["verify 0 4K 5"], "-r")
    assert lines == ["ok"]


def test_check_reports_and_repairs(vessel_bin, tmp_path):
    img = tmp_path / "d.vhd"
    ok(disk(vessel_bin, "create", img, "1G"))
    io(vessel_bin, img, ["write 0 4K 1", "flush"])
    r = ok(disk(vessel_bin, "check", img))
    assert "no errors" in r.stdout
    with open(img, "r+b") as f:                   # damage the footer copy
        f.write(b"\0" * 512)
    before = sha(img)
    r = disk(vessel_bin, "check", "--json", img)
    assert r.returncode == 2
    rep = json.loads(r.stdout)
    assert rep["errors"] == 1 and rep["repairable"]
    assert sha(img) == before                     # check alone never writes
    ok(disk(vessel_bin, "check", "--repair", img))
    ok(disk(vessel_bin, "check", img))
    _, lines = io(vessel_bin, img, ["verify 0 4K 1"], "-r")
    assert lines == ["ok"]


def test_progress_bar_only_on_a_terminal(vessel_bin, tmp_path):
    import pty
    import subprocess
    src = tmp_path / "s.img"
    ok(disk(vessel_bin, "create", src, "8M"))
    master, slave = pty.openpty()
    p = subprocess.Popen([vessel_bin, "disk", "convert", "-O", "vhd", src, tmp_path / "t.vhd"],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:                      # read while it runs: the terminal buffer is small
        try:
            chunk = os.read(master, 4096)
        except OSError:              # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=60) == 0
    assert b"100%" in out and b"[####" in out


def test_bench_moved_to_bench_dir(vessel_bin, build_dir, tmp_path):
    """The I/O benchmark is bench/disk/bench-disk; `vessel disk bench`
    says where it went."""
    r = disk(vessel_bin, "bench", "x.img")
    assert r.returncode == 2
    assert "bench/disk/bench-disk" in r.stderr, r.stderr
    exe = build_dir / "bench" / "disk" / "bench-disk"
    img = tmp_path / "d.img"
    ok(disk(vessel_bin, "create", img, "1M"))
    r = subprocess.run([str(exe), "-c", "100", "-d", "4", "-w", str(img)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "100 requests of 4096 bytes" in r.stdout and "0 errors" in r.stdout, r.stdout
    r = subprocess.run([str(exe), str(img), "extra"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("bench-disk: "), r.stderr
