"""`vessel run --manifest`: validation messages and flags winning over the manifest."""
import json

import pytest

from conftest import run_vessel


def write(tmp_path, doc):
    path = tmp_path / "vm.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def run_manifest(vessel_bin, path, *flags):
    return run_vessel(vessel_bin, "run", "--manifest", str(path), *flags, timeout=30)


@pytest.mark.parametrize("doc, message", [
    ({"cpus": "two"}, 'cpus: "two" is not an integer (expected 1 to 64)'),
    ({"memory": "lots"}, 'memory: "lots" is not a size'),
    ({"engine": "bochs"}, 'engine: "bochs" is not an engine (expected "emu" or "kvm")'),
    ({"kernal": "bzImage"}, "kernal: unknown field"),
    ({"disks": [{"path": "a.img", "format": "qcow2"}]}, 'disks[0].format: "qcow2" is not a disk format'),
    ({"disks": [{"path": "a.img", "serial": "x" * 21}]}, "disks[0].serial: " + '"' + "x" * 21 + '" is too long'),
    ({"disks": [{"path": "a.img", "id": "d"}, {"path": "b.img", "id": "d"}]}, 'disks[1].id: "d" is used twice'),
    ({"disks": [{"path": "a.img", "cache": "directsync"}]}, 'disks[0].cache: "directsync" is not a cache mode'),
    ({"disks": [{"path": "a.img", "queues": 9}]}, "disks[0].queues"),
    ({"rng": "yes"}, 'rng: "yes" is not'),
    ({"memory_page_size": "64K"}, 'memory_page_size: "64K" is out of range (expected a hugetlb page size'),
    ({"devices": [{"type": "mailbox"}]}, "devices[0].id: missing"),
    ('{"cpus": 2,,}', "line 1 column"),
])
def test_invalid_manifest_is_one_line_exit_2(vessel_bin, tmp_path, doc, message):
    path = write(tmp_path, doc)
    r = run_manifest(vessel_bin, path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"manifest {path}: " in lines[0]
    assert message in lines[0]


def test_missing_manifest_file(vessel_bin, tmp_path):
    r = run_manifest(vessel_bin, tmp_path / "nope.json")
    assert r.returncode == 2
    assert "No such file or directory" in r.stderr


def test_flag_wins_over_manifest(vessel_bin, tmp_path):
    # The manifest alone is inconsistent (3 NUMA nodes on 3 CPUs is fine,
    # on 2 it is not): --cpus 2 must replace the manifest's 3.
    path = write(tmp_path, {"cpus": 3, "numa_nodes": 3, "kernel": "bzImage"})
    r = run_manifest(vessel_bin, path, "--cpus", "2")
    assert r.returncode == 2
    assert "numa_nodes: 3 is more than the 2 CPUs" in r.stderr


def test_manifest_fills_what_flags_leave_out(vessel_bin, tmp_path):
    # No kernel anywhere: the combined configuration is refused, naming kernel.
    path = write(tmp_path, {"cpus": 2, "memory": "64M"})
    r = run_manifest(vessel_bin, path)
    assert r.returncode == 2
    assert "kernel: no kernel given" in r.stderr


# Every `vessel run` flag that describes the VM has a manifest field; the
# help text is the list of flags, the schema the list of fields.
FLAG_TO_FIELD = {
    "kernel": "kernel", "initrd": "initrd", "append": "cmdline", "cpus": "cpus", "max-cpus": "max_cpus", "memory": "memory", "memory-hotplug": "memory_hotplug", "memory-backend": "memory_backend",
    "memory-page-size": "memory_page_size",
    "engine": "engine", "cpu": "cpu", "disk": "disks", "numa-nodes": "numa_nodes", "numa": "numa", "numa-distance": "numa", "numa-policy": "numa", "numa-follow": "numa",
    "serial": "serial",
    "no-reboot": "no_reboot", "on-panic": "on_panic", "no-decompress": "decompress", "deterministic": "deterministic",
    "api-socket": "api_socket", "restore": "restore", "sandbox": "sandbox", "hyperv": "hyperv", "rng": "rng",
    "compound": "compound", "jit": "jit", "code-cache": "code_cache",
    "rng-rate": "rng_rate", "net": "nets", "console": "console",
    "on-host-sleep": "power", "on-host-shutdown": "power", "power-save-file": "power", "no-register": "power",
    "host-power-status": "power",
}
# Developer and per-invocation flags: they describe a run (or how to read
# a snapshot, --no-verify), not the VM.
NOT_VM_FLAGS = {"manifest", "help", "verbose", "trace", "trace-file", "no-verify"}


def test_every_run_flag_has_a_manifest_field(vessel_bin):
    import re
    from conftest import ROOT
    help_text = run_vessel(vessel_bin, "run", "--help").stdout
    flags = set(re.findall(r"--([a-z][a-z-]*)", help_text)) - NOT_VM_FLAGS
    assert flags, help_text
    schema = json.loads((ROOT / "schema" / "manifest.schema.json").read_text())
    missing = sorted(f for f in flags if FLAG_TO_FIELD.get(f) not in schema["properties"])
    assert not missing, f"run flags without a manifest field: {missing}"
