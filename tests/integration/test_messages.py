"""The CLI's error messages (docs/cli.md "Messages"): one line on stderr,
`vessel COMMAND: what went wrong`, naming the file at fault in full, with
no context said twice, control characters from the user escaped, and the
exit code of the table: 2 for bad input, wherever it was read from
(issue 18, item 21)."""
import importlib.util
import json
import re
import subprocess

from conftest import ROOT, run_vessel
from guests import assemble


def error_line(r, code=2):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("vessel run: "), lines[0]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", lines[0]), repr(lines[0])
    return lines[0]


def test_a_long_path_is_never_cut(vessel_bin, tmp_path):
    path = str(tmp_path / ("d" * 200) / ("k" * 200)) + "/" + "x" * 2500
    line = error_line(run_vessel(vessel_bin, "run", "--kernel", path, stdin=subprocess.DEVNULL))
    assert line == f"vessel run: kernel {path}: No such file or directory", line[-200:]


def test_control_characters_are_escaped(vessel_bin, tmp_path):
    path = str(tmp_path / "a\x1b[31mred\nsecond line\r\x07")
    line = error_line(run_vessel(vessel_bin, "run", "--kernel", path, stdin=subprocess.DEVNULL))
    assert "a\\x1b[31mred\\nsecond line\\r\\x07: No such file" in line, line


def test_control_characters_from_a_manifest_are_escaped(vessel_bin, tmp_path):
    m = tmp_path / "vm.json"
    m.write_text(json.dumps({"kernel": "k\u001b]0;title\u0007\u0085x"}))
    line = error_line(run_vessel(vessel_bin, "run", "--manifest", str(m), stdin=subprocess.DEVNULL))
    assert "k\\x1b]0;title\\x07\\u0085x" in line, line


def test_a_bad_device_in_a_manifest_is_bad_input_and_names_the_manifest(vessel_bin, tmp_path):
    kernel = assemble("counter", tmp_path)
    m = tmp_path / "vm.json"
    m.write_text(json.dumps({"kernel": str(kernel), "devices": [{"type": "nosuch", "id": "m1"}]}))
    line = error_line(run_vessel(vessel_bin, "run", "--manifest", str(m), "--serial", "none",
                                 stdin=subprocess.DEVNULL, timeout=60))
    assert line == (f"vessel run: manifest {m}: device m1: no device type 'nosuch' "
                    "(see `vessel plugin list`)"), line


def test_a_bad_device_in_a_snapshot_is_bad_input_and_names_the_snapshot(vessel_bin, tmp_path):
    spec = importlib.util.spec_from_file_location("seeds", ROOT / "tests" / "fuzz" / "make_snapshot_seeds.py")
    seeds = importlib.util.module_from_spec(spec)
    import sys
    argv, sys.argv = sys.argv, ["make_snapshot_seeds.py", str(tmp_path)]
    try:
        spec.loader.exec_module(seeds)
    finally:
        sys.argv = argv
    cfg = {"engine": "emu", "cpus": 1, "memory": 16 << 20, "numa_nodes": 0,
           "regions": [{"gpa": 0, "size": 16 << 20}, {"gpa": 0xffff0000, "size": 0x10000}], "devices": [{"type": "nosuch", "id": "d7"}]}
    snap = tmp_path / "vm.snap"
    snap.write_bytes(seeds.build(cfg))
    line = error_line(run_vessel(vessel_bin, "run", "--restore", str(snap), "--serial", "none",
                                 stdin=subprocess.DEVNULL, timeout=60))
    assert line.startswith(f"vessel run: snapshot {snap}: device d7: no device type 'nosuch'"), line
    # A bad entry is named once, as the snapshot's.
    cfg["devices"] = [{"type": "nosuch", "id": "d7", "params": [1]}]
    snap.write_bytes(seeds.build(cfg))
    line = error_line(run_vessel(vessel_bin, "run", "--restore", str(snap), "--serial", "none",
                                 stdin=subprocess.DEVNULL, timeout=60))
    assert line.startswith(f"vessel run: snapshot {snap}: devices[0].params: "), line


def test_the_api_socket_is_named_once(vessel_bin, tmp_path):
    kernel = assemble("counter", tmp_path)
    sock = tmp_path / "no" / "such" / "dir" / "vm.sock"
    line = error_line(run_vessel(vessel_bin, "run", "--kernel", str(kernel), "--api-socket", str(sock),
                                 "--serial", "none", stdin=subprocess.DEVNULL, timeout=60), code=1)
    assert line == f"vessel run: api socket {sock}: No such file or directory", line
