"""The emu engine's code cache (docs/architecture.md "Decode once",
docs/cli.md "Code cache") seen from outside: Debian's kernel on two vCPUs
with `--code-cache` runs processes (address-space switches), and `vessel
ctl stats` shows the bound, the decoded bytes within it, blocks one vCPU
found decoded by the other, switches that kept their translations,
watched page tables and, with code generation on, the blocks translated,
their host code (in one cache for both vCPUs, a quarter of the bound)
and how their instructions were translated; bad sizes are refused in
one line."""
import json
import subprocess

import pytest

from conftest import run_vessel
from guests import linux_args, wait_for_file_text

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine
SCRIPT = "for i in 1 2 3 4 5 6 7 8; do ls / > /dev/null; cat /proc/cpuinfo > /dev/null; done\n" \
         "echo CODE-CACHE-READY\nsleep 600\n"


def test_stats_show_one_cache_shared_by_two_vcpus(vessel_bin, tmp_path):
    sock, serial = tmp_path / "vm.sock", tmp_path / "serial.out"
    proc = subprocess.Popen([vessel_bin, *linux_args(SCRIPT, 2, "on"), "--code-cache", "48M", "--api-socket", str(sock),
                             "--serial", f"file:{serial}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_file_text(serial, "CODE-CACHE-READY", BOOT_TIMEOUT), serial.read_text(errors="replace")
        r = run_vessel(vessel_bin, "ctl", "--socket", str(sock), "--json", "stats", timeout=120)
        assert r.returncode == 0, r.stderr
        code = json.loads(r.stdout)["result"]["code_cache"]
        text = run_vessel(vessel_bin, "ctl", "--socket", str(sock), "stats", timeout=120).stdout
        run_vessel(vessel_bin, "ctl", "--socket", str(sock), "poweroff", timeout=120)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code["cache_bytes"] == 48 << 20
    assert 0 < code["decoded_bytes"] <= code["decoded_peak_bytes"] <= code["cache_bytes"], code
    assert code["blocks"] > 1000, code
    assert code["shared_hits"] > 0, "the second vCPU decoded everything again"
    assert code["as_switches"] > 0 and code["as_kept"] > 0, code
    assert code["pt_pages_tracked"] > 0, code
    # --jit on: hot blocks were translated, most of their instructions
    # inline, and some flags records were found dead.
    assert code["jit_blocks"] > 100, code
    if code["jit_flushes"] == 0:
        assert code["translated_bytes"] > 100 * code["jit_blocks"], code
    else:   # flushed only when full (the bytes held now came after)
        assert code["translated_peak_bytes"] > code["jit_cache_bytes"] // 2, code
    assert code["jit_template_insns"] > code["jit_call_insns"] > 0, code
    assert code["jit_flags_skipped"] > 0, code
    # Direct jumps between translations: within a page, and to other
    # pages (calls between kernel functions) through the jump cache.
    assert code["jit_links_near"] > 0 and code["jit_links_far"] > 0, code
    # One code cache for host code, shared by both vCPUs, a quarter of
    # --code-cache: one vCPU ran translations the other made.
    assert code["jit_cache_bytes"] == 12 << 20, code
    assert 0 < code["translated_bytes"] <= code["translated_peak_bytes"] <= code["jit_cache_bytes"], code
    assert code["jit_shared"] > 0, "no vCPU ran a translation the other made"
    assert "code cache and address spaces:" in text and "shared_hits" in text, text


@pytest.mark.parametrize("size,msg", [
    ("12x", "--code-cache: '12x' is not a size"),
    ("512K", "code_cache: 524288 bytes is out of range (expected 1 MiB to 16 GiB)"),
])
def test_bad_code_cache_size(vessel_bin, tmp_path, size, msg):
    r = run_vessel(vessel_bin, "run", "--kernel", "/dev/null", "--serial", "none", "--code-cache", size)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_manifest_code_cache(vessel_bin, tmp_path):
    m = tmp_path / "vm.json"
    m.write_text(json.dumps({"kernel": "/dev/null", "code_cache": "100K"}))
    r = run_vessel(vessel_bin, "run", "--manifest", str(m), "--serial", "none")
    assert r.returncode == 2, r.stderr
    assert "code_cache" in r.stderr and "out of range" in r.stderr, r.stderr
