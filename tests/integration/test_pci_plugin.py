"""PCI functions from plug-ins (docs/plugins.md "PCI functions", issue 14
item 2) with the Debian guest, in one boot.

The pci-example plug-in (plugins/pci-example/edu.c), built out of tree as
a user builds it, provides `edu`.  One function comes from the manifest
(there from power-on, BARs placed by vessel), a second is hot-plugged
with `device add` (ACPI PCI hot-plug; the guest places its BARs).  The
guest finds each in /sys/bus/pci/devices with the descriptor's IDs, its
BAR in `resource` and the MSI capability in `config`; binds
uio_pci_generic to them, the generic driver Linux has for PCI functions
driven from user space; and runs a static user-space driver
(guest_tools/edu_user.c, handed to the guest on a raw disk) that maps
`resource0`, checks the ID, liveness and factorial registers, raises an
interrupt and runs DMA both ways between its own pages (physical
addresses from /proc/self/pagemap) and the device buffer, each ending
with an interrupt it waits for on /dev/uioN.  The interrupt count in
/proc/interrupts rises.  A snapshot taken then restores with both
functions in their slots and the hot-plugged one still driven by the
guest; then both are removed with `device remove` and disappear from the
guest.  Without a guest: a plug-in whose
PCI descriptor is malformed is refused, the field named.

uio_pci_generic counts INTx (it masks with the command register's
Interrupt Disable bit and checks the status register's Interrupt Status
bit): that is the route a Linux guest has to count a PCI function's
interrupts without a driver written for it.  MSI is covered by the unit
tests (tests/unit/hw/test_pci_func.c, tests/unit/vmm/test_plugin_pci.c)."""
import json
import re
import shutil
import subprocess

from conftest import ROOT
from test_hotplug import PROMPT, Guest
from test_plugin import prefix  # noqa: F401 (a fixture)

EXAMPLE = ROOT / "plugins" / "pci-example"
HELPER = ROOT / "tests" / "integration" / "guest_tools" / "edu_user.c"
MEM_BASE, MEM_STEP = 0xd0000000, 0x1000000   # power-on placement (src/hw/pci_func.h)


def build_plugin(prefix, tmp_path):
    src = tmp_path / "pci-example-src"
    src.mkdir()
    for name in ("edu.c", "Makefile"):
        shutil.copy(EXAMPLE / name, src / name)
    r = subprocess.run(["make", "-C", str(src), f"PREFIX={prefix}", "CC=cc"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "plugins"
    out.mkdir()
    shutil.copy(src / "pci-example.so", out / "pci-example.so")
    return out


def build_helper(tmp_path):
    """The driver as a static binary on a raw disk image, and its size."""
    exe = tmp_path / "edu_user"
    r = subprocess.run(["cc", "-static", "-O2", "-o", str(exe), str(HELPER)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    data = exe.read_bytes()
    img = tmp_path / "helper.raw"
    img.write_bytes(data + bytes(-len(data) % (1 << 20)))
    return img, len(data)


def device_list(g):
    r = g.ctl("--json", "device", "list")
    assert r.returncode == 0, r.stderr
    return {d["id"]: d for d in json.loads(r.stdout.splitlines()[-1])["result"]["devices"]}


def resource(g, path, bar):
    """(start, size, flags) of a BAR from sysfs `resource`."""
    line = g.out(f"sed -n {bar + 1}p {path}/resource")
    start, end, flags = (int(x, 16) for x in line.split())
    return start, end - start + 1, flags


def uio_interrupts(g):
    """The guest's count of uio_pci_generic interrupts, all CPUs and lines."""
    total = 0
    for line in g.sh("grep uio_pci_generic /proc/interrupts").splitlines():
        m = re.match(r"\s*\d+:((?:\s+\d+)+)\s", line)
        if m:
            total += sum(int(x) for x in m.group(1).split())
    return total


def check_function(g, path):
    assert g.out(f"cat {path}/vendor {path}/device | tr '\\n' ' '") == "0x1234 0x7ed0"
    assert g.out(f"cat {path}/class") == "0x00ff00"
    assert g.out(f"cat {path}/subsystem_vendor {path}/subsystem_device | tr '\\n' ' '") == "0x1234 0x0001"
    assert g.out(f"cat {path}/revision") == "0x01"
    # The capability list (status bit 4, pointer at 0x34) starts with MSI (05).
    assert g.out(f"od -An -tx1 -j52 -N1 {path}/config").strip() == "40"
    assert g.out(f"od -An -tx1 -j64 -N1 {path}/config").strip() == "05"
    out = g.sh(f"/tmp/edu_user {path}", timeout=120)
    assert "EDU-OK" in out, out
    assert "id 45440001" in out and "factorial 479001600" in out, out


def test_linux_drives_a_plugin_pci_function_from_power_on_and_hot_plugged(vessel_bin, prefix, tmp_path,  # noqa: F811
                                                                         monkeypatch):
    plugins = build_plugin(prefix, tmp_path)
    snap = tmp_path / "vm.snap"
    helper, helper_size = build_helper(tmp_path)
    manifest = tmp_path / "vm.json"
    manifest.write_text(json.dumps({"devices": [{"type": "edu", "id": "edu0"}], "plugin_dirs": [str(plugins)]}))
    g = Guest(vessel_bin, tmp_path, more=["--manifest", str(manifest), "--disk", f"{helper},format=raw"])
    try:
        assert g.out(f"head -c {helper_size} /dev/vda > /tmp/edu_user; chmod +x /tmp/edu_user; echo READY") == "READY"
        # From power-on: in its slot, BARs where vessel placed them.
        slot0 = device_list(g)["edu0"]["params"]["slot"]
        path0 = f"/sys/bus/pci/devices/0000:00:{slot0:02x}.0"
        start, size, flags = resource(g, path0, 0)
        assert (start, size) == (MEM_BASE + slot0 * MEM_STEP, 0x2000), hex(start)
        assert flags & 0x200, "a memory BAR"
        start, size, flags = resource(g, path0, 1)
        assert size == 16 and flags & 0x100, "an I/O BAR of 16 ports"
        assert uio_interrupts(g) == 0
        g.sh("echo '1234 7ed0' > /sys/bus/pci/drivers/uio_pci_generic/new_id")
        assert g.wait_for(f"[ -e {path0}/uio ]") == "YES", g.sh("dmesg | tail -n 20")
        check_function(g, path0)
        first = uio_interrupts(g)
        assert first >= 3, g.sh("cat /proc/interrupts")   # one raise, two DMAs

        # Hot-plugged: the guest's acpiphp finds it, places its BARs, and the
        # driver (its dynamic ID) binds.
        r = g.ctl("device", "add", json.dumps({"type": "edu", "id": "edu1"}))
        assert r.returncode == 0, r.stderr
        slot1 = device_list(g)["edu1"]["params"]["slot"]
        assert slot1 != slot0
        path1 = f"/sys/bus/pci/devices/0000:00:{slot1:02x}.0"
        assert g.wait_for(f"[ -e {path1}/uio ]") == "YES", g.sh("dmesg | tail -n 20")
        start, size, flags = resource(g, path1, 0)
        assert start and size == 0x2000
        check_function(g, path1)
        assert uio_interrupts(g) >= first + 3

        # Bad input, one line each, nothing changes.
        for dev, needle in [({"type": "edu", "id": "edu2", "params": {"slot": slot1}},
                             f"PCI slot {slot1} is taken by edu1"),
                            ({"type": "edu", "id": "edu2", "params": {"slot": 40}}, "params.slot: not a PCI slot"),
                            ({"type": "edu", "id": "edu1"}, "a device with id edu1 exists")]:
            r = g.ctl("device", "add", json.dumps(dev))
            assert r.returncode != 0 and needle in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert sorted(device_list(g)) == ["edu0", "edu1"]
        r = g.ctl("save", str(snap))
        assert r.returncode == 0, r.stderr
    finally:
        g.close()

    # Restored: both functions in their slots, the hot-plugged one's BARs
    # where the guest put them, its driver still bound and working.  The
    # plug-in comes from the search path of the restoring command.
    monkeypatch.setenv("VESSEL_PLUGIN_PATH", str(plugins))
    h = Guest(vessel_bin, tmp_path, "run", "--restore", str(snap), "--disk", f"{helper},format=raw", name="restored")
    try:
        h.child.sendline("")
        h.child.expect(PROMPT)
        assert {i: d["params"]["slot"] for i, d in device_list(h).items()} == {"edu0": slot0, "edu1": slot1}
        assert resource(h, path1, 0) == (start, 0x2000, flags)
        before = uio_interrupts(h)
        check_function(h, path1)
        assert uio_interrupts(h) >= before + 3

        # Removal: the guest releases each function (uio unbinds), ejects
        # it, and it is gone.
        for dev_id, path in (("edu1", path1), ("edu0", path0)):
            r = h.ctl("device", "remove", dev_id)
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == f"removed {dev_id}"
            assert h.out(f"[ -e {path} ] && echo PRESENT || echo GONE") == "GONE"
        assert device_list(h) == {}
        assert h.out("grep -l 0x7ed0 /sys/bus/pci/devices/*/device | wc -l") == "0"
    finally:
        h.close()


BAD = r"""
#include <vessel/plugin.h>
static int create(const struct vessel_host *h, const union vessel_param_value *p, void **d) { *d = 0; return 0; }
static void destroy(void *d) { }
static const struct vessel_pci_bar bars[] = { { .size = 0x3000 } };
static const struct vessel_pci_function fn = { .vendor_id = 0x1234, .device_id = 1, .bars = bars, .n_bars = 1 };
static const struct vessel_resource_spec res[] = { { .kind = VESSEL_RES_PCI, .name = "fn", .len = 1, .pci = &fn } };
static const struct vessel_device_type t = { .size = sizeof(t), .name = "bad-bar", .resources = res,
                                             .n_resources = 1, .create = create, .destroy = destroy };
VESSEL_PLUGIN_EXPORT("bad", "1", "", &t);
"""


def test_a_malformed_pci_descriptor_is_refused_naming_the_field(vessel_bin, prefix, tmp_path):  # noqa: F811
    d = tmp_path / "plugins"
    d.mkdir()
    (tmp_path / "bad.c").write_text(BAD)
    r = subprocess.run(["cc", "-shared", "-fPIC", f"-I{prefix}/include", "-o", str(d / "bad.so"),
                        str(tmp_path / "bad.c")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([vessel_bin, "plugin", "--dir", str(d), "list"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "VESSEL_PLUGIN_PATH": ""})
    assert (f"plug-in {d}/bad.so: device bad-bar: resource fn: pci.bars[0].size 0x3000 is not a power of two "
            "from 16") in r.stderr, r.stderr
    assert "bad-bar" not in r.stdout
