"""PCI hot-plug (docs/hotplug.md, issue 14).

With the counter guest (no ACPI, so it never answers an eject): the
control side -- device-add of virtio functions into PCI slots, the
events, device-list, bad input (full bus, an id twice, a disk that does
not open, unknown params), a removal the guest never answers
(device-eject-timeout), --force, and hot-added devices surviving a reset
and a snapshot restore.

With the Debian guest: its acpiphp sees the added virtio-blk (a dynamic
VHD), the guest writes it, releases it on `device remove`, the image
checks clean and holds the data, and a second add reads it back; a
snapshot taken with the disk present restores with it working."""
import hashlib
import json
import subprocess
import time

import pexpect
import pytest

from conftest import run_vessel
from disk_helpers import disk, ok
from guests import assemble, linux_args
from test_control_vm import counts, ctl, start, wait_for_counts

BOOT_TIMEOUT = 900
PROMPT = r"vessel# "
MIB = 1 << 20


@pytest.fixture
def counter(tmp_path):
    return assemble("counter", tmp_path)


def events(vessel_bin, sock):
    """A listener, subscribed when this returns (its first line is the
    subscription's reply)."""
    proc = subprocess.Popen([vessel_bin, "ctl", "--socket", str(sock), "--json", "events"],
                            stdout=subprocess.PIPE, text=True)
    while '"result"' not in proc.stdout.readline():
        pass
    return proc


def device_events(proc):
    time.sleep(0.5)   # the last event reaches the listener
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    evs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [e for e in evs if e.get("event", "").startswith("device-")]


def devices(vessel_bin, sock):
    r = ctl(vessel_bin, sock, "--json", "device", "list")
    assert r.returncode == 0, r.stderr
    return {d["id"]: d for d in json.loads(r.stdout.splitlines()[-1])["result"]["devices"]}


def add(vessel_bin, sock, dev_type, dev_id, **params):
    return ctl(vessel_bin, sock, "device", "add", json.dumps({"type": dev_type, "id": dev_id, "params": params}))


def expect_slots(vessel_bin, sock, log, want, remove):
    """Once the guest runs: each device of want ({id: slot}) is in its
    slot; then `remove` goes by force."""
    wait_for_counts(log, 1)
    devs = devices(vessel_bin, sock)
    assert {i: devs[i]["params"]["slot"] for i in want} == want, devs
    assert ctl(vessel_bin, sock, "device", "remove", remove, "--force").returncode == 0


def stop(vessel_bin, p, sock):
    if p.poll() is None:
        ctl(vessel_bin, sock, "poweroff")
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def test_add_list_and_bad_input(vessel_bin, counter, tmp_path):
    img = tmp_path / "d.vhd"
    ok(disk(vessel_bin, "create", "--type", "dynamic", img, "8M"))
    # Interface 0 has its NIC from power-on (slot 1 after the board's),
    # interface 1 is set aside for a device-add.
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter), "--net", "user",
                         "--net", "user,hotplug")
    try:
        wait_for_counts(log, 1)
        ev = events(vessel_bin, sock)
        r = add(vessel_bin, sock, "virtio-blk", "d1", path=str(img))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "added d1"
        d1 = devices(vessel_bin, sock)["d1"]
        slot = d1["params"]["slot"]
        assert d1["type"] == "virtio-blk" and slot > 1, d1
        assert d1["resources"] == [{"name": "slot", "kind": "pci-slot", "base": slot}], d1
        r = add(vessel_bin, sock, "virtio-rng", "r1", slot=7)
        assert r.returncode == 0, r.stderr
        assert devices(vessel_bin, sock)["r1"]["params"]["slot"] == 7

        # Bad input: one clear line each, nothing changes.
        cases = [
            (add(vessel_bin, sock, "virtio-rng", "d1"), "a device with id d1 exists"),
            (add(vessel_bin, sock, "virtio-rng", "r2", slot=7), "PCI slot 7 is taken by r1"),
            (add(vessel_bin, sock, "virtio-rng", "r2", slot=32), "params.slot: not a PCI slot (expected 1 to 31)"),
            (add(vessel_bin, sock, "virtio-blk", "d2", path=str(tmp_path / "nope.raw")), "nope.raw"),
            (add(vessel_bin, sock, "virtio-blk", "d2"), "params.path: missing"),
            (add(vessel_bin, sock, "virtio-blk", "d2", path="x.raw", bogus=1), "params.bogus: unknown"),
            (add(vessel_bin, sock, "virtio-rng", "pic"), "the name pic is taken"),
            (add(vessel_bin, sock, "virtio-net", "n2", net=0), "params.net: interface 0 has its NIC from power-on"),
            (add(vessel_bin, sock, "virtio-net", "n2", net=2), "params.net: this VM has no network interface 2"),
            (add(vessel_bin, sock, "virtio-net", "n2", net="x"), "params.net: not an interface number"),
            (add(vessel_bin, sock, "virtio-net", "n2", path="x"), "params.path: unknown for virtio-net"),
            (add(vessel_bin, sock, "virtio-console", "c1"), "params.path: missing"),
            (add(vessel_bin, sock, "virtio-console", "c1", path=str(tmp_path / "no" / "such")), "no/such"),
        ]
        for r, needle in cases:
            assert r.returncode != 0 and needle in r.stderr, (needle, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert sorted(devices(vessel_bin, sock)) == ["d1", "r1"]
        # The interface set aside: taken by the first NIC added, refused
        # to a second while in use, free again once it goes.
        r = add(vessel_bin, sock, "virtio-net", "n1")
        assert r.returncode == 0, r.stderr
        assert devices(vessel_bin, sock)["n1"]["params"]["net"] == 1
        r = add(vessel_bin, sock, "virtio-net", "n2")
        assert r.returncode != 0 and "every network interface set aside for hot-plug is in use (the last by n1)" \
            in r.stderr, r.stderr
        r = add(vessel_bin, sock, "virtio-net", "n2", net=1)
        assert r.returncode != 0 and "params.net: interface 1 is in use by n1" in r.stderr, r.stderr
        assert ctl(vessel_bin, sock, "device", "remove", "n1", "--force").returncode == 0
        assert add(vessel_bin, sock, "virtio-net", "n2", net=1).returncode == 0
        assert ctl(vessel_bin, sock, "device", "remove", "n2", "--force").returncode == 0
        # The same image twice would corrupt it.
        r = add(vessel_bin, sock, "virtio-blk", "d2", path=str(img))
        assert r.returncode != 0 and f"disk {img} is in use by d1" in r.stderr, r.stderr

        # Fill the bus: slots 1 (the NIC), d1's and 7 are taken, 28 more fit.
        for i in range(28):
            r = add(vessel_bin, sock, "virtio-rng", f"f{i}")
            assert r.returncode == 0, (i, r.stderr)
        r = add(vessel_bin, sock, "virtio-rng", "full")
        assert r.returncode != 0 and "the PCI bus is full" in r.stderr, r.stderr
        for i in range(28):
            assert ctl(vessel_bin, sock, "device", "remove", f"f{i}", "--force").returncode == 0
        wait_for_counts(log, len(counts(log)) + 1)   # the guest still runs
        evs = device_events(ev)
        added = [e["id"] for e in evs if e["event"] == "device-added"]
        assert added == ["d1", "r1", "n1", "n2"] + [f"f{i}" for i in range(28)], added
        removed = [e["id"] for e in evs if e["event"] == "device-removed"]
        assert removed == ["n1", "n2"] + [f"f{i}" for i in range(28)], removed
        r = ctl(vessel_bin, sock, "device", "remove", "nothing")
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        # CPU hot-add needs possible CPUs beyond those of power-on.
        r = ctl(vessel_bin, sock, "cpu", "add")
        assert r.returncode != 0 and "this VM has no CPUs to add (start it with --max-cpus N" in r.stderr, r.stderr
        r = ctl(vessel_bin, sock, "cpu", "remove")
        assert r.returncode == 2 and "cpu needs add" in r.stderr, r.stderr
    finally:
        stop(vessel_bin, p, sock)
    assert p.returncode == 0
    ok(disk(vessel_bin, "check", img))


def test_max_cpus_bad_input(vessel_bin, counter):
    for args, needle in [(["--cpus", "2", "--max-cpus", "1"], "max_cpus: 1 is out of range (expected 2"),
                         (["--max-cpus", "65"], "max_cpus: 65 is out of range"),
                         (["--max-cpus", "x"], "--max-cpus: 'x' is not a number of CPUs"),
                         # With NUMA nodes every possible CPU needs its node
                         # (docs/numa.md "CPU hot-add").
                         (["--memory", "64M", "--cpus", "2", "--max-cpus", "4", "--numa", "node,mem=32M,cpus=0-1",
                           "--numa", "node,mem=32M,cpus=2"], "numa: cpus: vCPU 3 is in no node (every vCPU 0-3"),
                         (["--memory", "64M", "--cpus", "2", "--max-cpus", "4", "--numa", "node,mem=32M,cpus=0-1",
                           "--numa", "node,mem=32M,cpus=2-4"],
                          "vCPU 4 does not exist (the machine has 4, --max-cpus included: 0-3)"),
                         (["--cpus", "2", "--max-cpus", "4", "--numa-nodes", "5"],
                          "numa_nodes: 5 is more than the 4 CPUs")]:
        r = run_vessel(vessel_bin, "run", "--kernel", str(counter), *args, stdin=subprocess.DEVNULL)
        assert r.returncode == 2 and needle in r.stderr, (args, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_guest_that_never_ejects_times_out_and_force_removes(vessel_bin, counter, tmp_path):
    img = tmp_path / "d.raw"
    img.write_bytes(bytes(4 * MIB))
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter))
    try:
        wait_for_counts(log, 1)
        assert add(vessel_bin, sock, "virtio-blk", "d1", path=str(img)).returncode == 0
        ev = events(vessel_bin, sock)
        t0 = time.monotonic()
        r = ctl(vessel_bin, sock, "device", "remove", "d1", "--timeout", "1.5")
        assert time.monotonic() - t0 >= 1.5
        assert r.returncode != 0, r.stdout
        assert "the guest did not release d1 within 1.5 s" in r.stderr, r.stderr
        assert "d1" in devices(vessel_bin, sock), "a device the guest keeps stays"
        r = ctl(vessel_bin, sock, "device", "remove", "d1", "--force")
        assert r.returncode == 0, r.stderr
        assert "d1" not in devices(vessel_bin, sock)
        evs = device_events(ev)
        assert [(e["event"], e["id"]) for e in evs] == [("device-eject-timeout", "d1"), ("device-removed", "d1")]
        assert evs[0]["timeout"] == 1.5
        # The slot is free again, and the image closed: it opens once more.
        assert add(vessel_bin, sock, "virtio-blk", "d1", path=str(img), slot=1).returncode == 0
        r = ctl(vessel_bin, sock, "device", "remove", "d1", "--bogus")
        assert r.returncode != 0 and "unexpected '--bogus'" in r.stderr, r.stderr
    finally:
        stop(vessel_bin, p, sock)


def test_hot_added_devices_survive_reset_and_restore(vessel_bin, counter, tmp_path):
    img = tmp_path / "d.raw"
    img.write_bytes(bytes(4 * MIB))
    snap = tmp_path / "vm.snap"
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter))
    try:
        wait_for_counts(log, 1)
        assert add(vessel_bin, sock, "virtio-rng", "r1", slot=9).returncode == 0
        assert add(vessel_bin, sock, "virtio-blk", "d1", path=str(img)).returncode == 0
        assert ctl(vessel_bin, sock, "reset").returncode == 0
        n = len(counts(log))
        wait_for_counts(log, n + 1)
        devs = devices(vessel_bin, sock)
        assert devs["r1"]["params"]["slot"] == 9 and devs["d1"]["params"]["slot"] == 1, devs
        assert ctl(vessel_bin, sock, "save", str(snap)).returncode == 0
    finally:
        stop(vessel_bin, p, sock)
    q, sock2, log2 = start(vessel_bin, tmp_path, "restored", "--restore", str(snap))
    try:
        expect_slots(vessel_bin, sock2, log2, {"r1": 9, "d1": 1}, remove="r1")
    finally:
        stop(vessel_bin, q, sock2)
    assert q.returncode == 0


# ---- the Debian guest ----

DATA = (b"vessel-hotplug\n" * (MIB // 15 + 1))[:MIB]


def md5(data):
    return hashlib.md5(data).hexdigest()


class Guest:
    """The Debian guest at its shell, with a control socket."""

    def __init__(self, vessel_bin, tmp, *extra, name="api", more=()):
        self.bin = vessel_bin
        self.sock = tmp / f"{name}.sock"
        args = list(extra) if extra else linux_args(None) + list(more)
        self.child = pexpect.spawn(vessel_bin, args + ["--api-socket", str(self.sock)], encoding="utf-8",
                                   codec_errors="replace", timeout=BOOT_TIMEOUT)
        if not extra:
            self.child.expect("starting a shell")
            self.child.expect(PROMPT)

    def sh(self, line, timeout=300):
        self.child.sendline(line)
        self.child.expect(PROMPT, timeout=timeout)
        return self.child.before.replace("\r", "")

    def out(self, line, timeout=300):
        """The last line a command printed."""
        return self.sh(line, timeout).strip("\n").split("\n")[-1].strip()

    def wait_for(self, test, timeout=120):
        """Polls a shell test in the guest until it holds."""
        return self.out(f"i=0; until {test}; do i=$((i+1)); [ $i -gt {timeout * 5} ] && break; sleep 0.2; done; "
                        f"if {test}; then echo YES; else echo NO; fi", 3 * timeout + 60)

    def ctl(self, *args):
        return run_vessel(self.bin, "ctl", "--socket", str(self.sock), *args, timeout=BOOT_TIMEOUT)

    def close(self):
        self.ctl("poweroff")
        self.child.expect(pexpect.EOF, timeout=120)
        self.child.close()


WRITE = ("yes vessel-hotplug | head -c 1048576 > /tmp/d; "
         "dd if=/tmp/d of=/dev/vda bs=64k seek=16 conv=fsync 2>/dev/null; sync; echo WROTE")
READ = "dd if=/dev/vda bs=64k skip=16 count=16 2>/dev/null | md5sum"


def test_linux_guest_hot_adds_writes_releases_and_reads_back(vessel_bin, tmp_path):
    img = tmp_path / "hot.vhd"
    ok(disk(vessel_bin, "create", "--type", "dynamic", img, "16M"))
    g = Guest(vessel_bin, tmp_path)
    try:
        assert g.out("ls /sys/bus/pci/slots | wc -l") == "31", "acpiphp registers the 31 slots"
        assert g.out("cat /sys/bus/pci/slots/5/address") == "0000:00:05"
        ev = events(vessel_bin, g.sock)
        dev = json.dumps({"type": "virtio-blk", "id": "d1", "params": {"path": str(img), "format": "vhd"}})
        r = g.ctl("device", "add", dev)
        assert r.returncode == 0, r.stderr
        assert g.wait_for("[ -b /dev/vda ]") == "YES", g.sh("dmesg | tail -n 30")
        assert g.out("basename $(readlink /sys/block/vda/device/driver)") == "virtio_blk"
        assert int(g.out("cat /sys/block/vda/size")) >= 16 * MIB // 512   # the VHD rounds up to its geometry
        assert g.out(WRITE) == "WROTE"
        r = g.ctl("device", "remove", "d1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "removed d1"
        assert g.out("[ -e /dev/vda ] && echo PRESENT || echo GONE") == "GONE"
        assert g.out("ls /sys/bus/virtio/devices | wc -l") == "0"
        evs = device_events(ev)
        assert [(e["event"], e["id"]) for e in evs] == [("device-added", "d1"), ("device-removed", "d1")], evs
        # The image was closed after the guest's writes reached it.
        ok(disk(vessel_bin, "check", img))
        raw = tmp_path / "hot.raw"
        ok(disk(vessel_bin, "convert", "-O", "raw", img, raw))
        assert raw.read_bytes()[MIB:2 * MIB] == DATA, "the guest's write is not on the image"
        # Added again (another slot this time): the guest reads it back.
        dev = json.dumps({"type": "virtio-blk", "id": "d2", "params": {"path": str(img), "slot": 12}})
        assert g.ctl("device", "add", dev).returncode == 0
        assert g.wait_for("[ -b /dev/vda ]") == "YES"
        assert g.out("basename $(readlink -f /sys/block/vda/device/..)") == "0000:00:0c.0"
        assert g.out(READ).split()[0] == md5(DATA)
        # A guest that is not running does not answer: the removal times
        # out, the disk stays; once it runs again it releases the disk.
        assert g.ctl("pause").returncode == 0
        r = g.ctl("device", "remove", "d2", "--timeout", "1")
        assert r.returncode != 0 and "did not release d2" in r.stderr, r.stderr
        assert g.ctl("resume").returncode == 0
        assert g.wait_for("[ ! -e /dev/vda ]") == "YES"
        r = g.ctl("device", "remove", "d2")
        assert r.returncode == 0, r.stderr
        # virtio-rng comes and goes the same way.
        assert g.ctl("device", "add", '{"type": "virtio-rng", "id": "r1"}').returncode == 0
        one = '[ "$(ls /sys/bus/virtio/devices | wc -l)" = 1 ]'
        assert g.wait_for(one) == "YES", g.sh("ls /sys/bus/virtio/devices")
        assert g.out("cat /sys/devices/virtual/misc/hw_random/rng_available").startswith("virtio_rng")
        r = g.ctl("device", "remove", "r1")
        assert r.returncode == 0, r.stderr
        assert g.out("ls /sys/bus/virtio/devices | wc -l") == "0"
        # Surprise removal in the middle of the guest's writes: the guest
        # finds the slot empty, its writer fails, and it runs on.
        img2 = tmp_path / "second.raw"
        img2.write_bytes(bytes(16 * MIB))
        dev = json.dumps({"type": "virtio-blk", "id": "d3", "params": {"path": str(img2)}})
        assert g.ctl("device", "add", dev).returncode == 0
        assert g.wait_for("[ -b /dev/vda ]") == "YES"
        # In a subshell, so that the shell has no job to report "Done"
        # for in the middle of a later command's output.
        g.sh("((dd if=/dev/zero of=/dev/vda bs=64k count=256 oflag=direct 2>/dev/null; echo DD-ENDED) &)")
        r = g.ctl("device", "remove", "d3", "--force")
        assert r.returncode == 0, r.stderr
        assert g.wait_for("[ ! -e /dev/vda ]") == "YES", g.sh("dmesg | tail -n 30")
        assert g.out("echo alive") == "alive"
        assert img2.stat().st_size == 16 * MIB
    finally:
        g.close()


def slot_of(g, dev_id):
    r = g.ctl("--json", "device", "list")
    assert r.returncode == 0, r.stderr
    devs = json.loads(r.stdout.splitlines()[-1])["result"]["devices"]
    return {d["id"]: d for d in devs}[dev_id]["params"]["slot"] if dev_id in [d["id"] for d in devs] else None


def test_linux_guest_hot_adds_a_nic_and_a_console_and_ejects_on_its_own(vessel_bin, tmp_path):
    """virtio-net on the interface set aside (--net user,hotplug): the
    guest's driver binds, DHCP gives it an address over it; virtio-console
    with its output in a file: what the guest writes to hvc0 lands there;
    the guest ejects the console itself through its slot's power file and
    vessel frees it (device-removed, by the guest)."""
    out = tmp_path / "hvc.out"
    g = Guest(vessel_bin, tmp_path, more=["--net", "user,hotplug"])
    try:
        assert g.out("ls /sys/class/net | grep -c eth") == "0", "no NIC from power-on"
        ev = events(vessel_bin, g.sock)
        r = g.ctl("device", "add", '{"type": "virtio-net", "id": "n1"}')
        assert r.returncode == 0, r.stderr
        assert g.wait_for("[ -e /sys/class/net/eth0 ]") == "YES", g.sh("dmesg | tail -n 30")
        assert g.out("basename $(readlink /sys/class/net/eth0/device/driver)") == "virtio_net"
        # The default guest's init asks for a lease at boot only.
        g.sh("ip link set eth0 up; udhcpc -i eth0 -n -q -t 5 -T 2 >/dev/null 2>&1; echo rc=$?", timeout=120)
        assert "inet 10.0.2.15/24" in g.sh("ip -4 addr show dev eth0"), g.sh("ip addr")
        r = g.ctl("device", "add", json.dumps({"type": "virtio-console", "id": "c1", "params": {"path": str(out)}}))
        assert r.returncode == 0, r.stderr
        console_bound = "ls /sys/bus/virtio/drivers/virtio_console | grep -q virtio"
        assert g.wait_for(console_bound) == "YES", g.sh("dmesg | tail -n 30")
        assert g.out("echo vessel-hvc-line > /dev/hvc0; echo SENT") == "SENT"
        deadline = time.monotonic() + 60
        while b"vessel-hvc-line" not in (out.read_bytes() if out.exists() else b"") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert b"vessel-hvc-line" in out.read_bytes()
        # The guest lets the console go on its own.
        slot = slot_of(g, "c1")
        assert g.out(f"echo 0 > /sys/bus/pci/slots/{slot}/power; echo EJECTED") == "EJECTED"
        deadline = time.monotonic() + 60
        while slot_of(g, "c1") is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slot_of(g, "c1") is None, "vessel frees what the guest ejected"
        assert g.out(f"{console_bound} && echo PRESENT || echo GONE") == "GONE"
        # The NIC goes on the host's request, and the interface is free for
        # the next one.
        r = g.ctl("device", "remove", "n1")
        assert r.returncode == 0, r.stderr
        assert g.out("[ -e /sys/class/net/eth0 ] && echo PRESENT || echo GONE") == "GONE"
        assert g.ctl("device", "add", '{"type": "virtio-net", "id": "n2"}').returncode == 0
        assert g.wait_for("[ -e /sys/class/net/eth0 ]") == "YES"
        evs = device_events(ev)
        got = [(e["event"], e["id"], e.get("by")) for e in evs]
        assert got == [("device-added", "n1", None), ("device-added", "c1", None), ("device-removed", "c1", "guest"),
                       ("device-removed", "n1", None), ("device-added", "n2", None)], got
    finally:
        g.close()


def test_snapshot_after_hot_plug_restores_with_the_disk(vessel_bin, tmp_path):
    img = tmp_path / "hot.raw"
    img.write_bytes(bytes(8 * MIB))
    snap = tmp_path / "vm.snap"
    g = Guest(vessel_bin, tmp_path)
    try:
        dev = json.dumps({"type": "virtio-blk", "id": "d1", "params": {"path": str(img), "format": "raw"}})
        assert g.ctl("device", "add", dev).returncode == 0
        assert g.wait_for("[ -b /dev/vda ]") == "YES"
        assert g.out(WRITE) == "WROTE"
        r = g.ctl("save", str(snap))
        assert r.returncode == 0, r.stderr
    finally:
        g.close()
    h = Guest(vessel_bin, tmp_path, "run", "--restore", str(snap), name="restored")
    try:
        h.child.sendline("")
        h.child.expect(PROMPT)
        assert h.out(READ).split()[0] == md5(DATA)
        assert h.out("echo restored-write | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null; echo OK") == "OK"
        assert h.ctl("device", "remove", "d1").returncode == 0
        assert h.out("[ -e /dev/vda ] && echo PRESENT || echo GONE") == "GONE"
    finally:
        h.close()
    assert img.read_bytes()[:15] == b"restored-write\n"


def test_encrypted_disk_with_its_key_file(vessel_bin, counter, tmp_path):
    img, key, bad = tmp_path / "enc.raw", tmp_path / "key", tmp_path / "bad"
    key.write_bytes(b"correct horse battery staple")
    bad.write_bytes(b"wrong")
    ok(disk(vessel_bin, "create", "--encrypt=pbkdf=pbkdf2,pbkdf-iterations=1000", "--key-file", key, img, "8M"))
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter))
    try:
        wait_for_counts(log, 1)
        r = add(vessel_bin, sock, "virtio-blk", "e1", path=str(img), key_file=str(bad))
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "e1" not in devices(vessel_bin, sock)
        r = add(vessel_bin, sock, "virtio-blk", "e1", path=str(img), key_file=str(key))
        assert r.returncode == 0, r.stderr
        assert devices(vessel_bin, sock)["e1"]["params"]["key_file"] == str(key)
        assert ctl(vessel_bin, sock, "device", "remove", "e1", "--force").returncode == 0
    finally:
        stop(vessel_bin, p, sock)
    assert p.returncode == 0


def test_manifest_devices_of_virtio_types_are_there_from_power_on(vessel_bin, counter, tmp_path):
    img = tmp_path / "m.raw"
    img.write_bytes(bytes(4 * MIB))
    manifest = tmp_path / "vm.json"
    manifest.write_text(json.dumps({"kernel": str(counter), "devices": [
        {"type": "virtio-blk", "id": "m1", "params": {"path": str(img), "slot": 5}},
        {"type": "virtio-rng", "id": "m2"}]}))
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--manifest", str(manifest))
    try:
        expect_slots(vessel_bin, sock, log, {"m1": 5, "m2": 1}, remove="m2")
    finally:
        stop(vessel_bin, p, sock)
    assert p.returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kernel": str(counter), "devices": [
        {"type": "virtio-blk", "id": "m1", "params": {"path": str(tmp_path / "missing.raw")}}]}))
    r = run_vessel(vessel_bin, "run", "--manifest", str(bad), stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (r.returncode, r.stderr)
    assert "missing.raw" in r.stderr


def plug_cpu1(g, online="0-1"):
    """`cpu add`; the guest registers the CPU, is told to online it and
    does (the default guest has no udev rule that would); then its online
    CPUs are online."""
    r = g.ctl("cpu", "add")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "added cpu1 to node 1"
    assert g.wait_for("[ -e /sys/devices/system/cpu/cpu1/online ]") == "YES", g.sh("dmesg | tail -n 30")
    g.sh("echo 1 > /sys/devices/system/cpu/cpu1/online")
    assert g.wait_for(f'[ "$(cat /sys/devices/system/cpu/online)" = {online} ]') == "YES", g.sh("dmesg | tail -n 30")


def test_linux_guest_onlines_a_hot_added_cpu_and_a_snapshot_keeps_it(vessel_bin, tmp_path):
    """--cpus 1 --max-cpus 4: the guest sees three possible CPUs more; `cpu
    add` plugs in CPU 1, Linux's ACPI processor driver registers it on the
    GPE's Notify, the guest onlines it (INIT/SIPI to the vCPU that waited)
    and runs on it; a snapshot restores with it online.

    With four virtual NUMA nodes of 128 MiB, one possible CPU each, only
    CPU 0 plugged in at boot (docs/numa.md "CPU hot-add"): the guest sees
    the four nodes, their sizes and SLIT distances, and CPUs 1-3 in no
    node's cpulist yet; the SRAT and _PXM put CPU 1 in node 1, where the
    guest shows it once online, and its vCPU thread runs on node 1's host
    CPUs; CPUs 3 (asked for by node) and 2 go to nodes 3 and 2."""
    snap = tmp_path / "vm.snap"
    nodes = []
    for n in range(4):
        nodes += ["--numa", f"node,mem=128M,cpus={n}" + (",host-node=0" if n == 1 else "")]
    g = Guest(vessel_bin, tmp_path, more=["--cpus", "1", "--max-cpus", "4", *nodes, "--numa-distance", "0,3,30",
                                          "--numa-policy", "bind"])
    try:
        assert g.out("cat /sys/devices/system/cpu/possible") == "0-3"
        assert g.out("cat /sys/devices/system/cpu/present") == "0"
        assert g.out("echo $(ls -d /sys/devices/system/node/node*)") == \
            " ".join(f"/sys/devices/system/node/node{n}" for n in range(4))
        assert g.out("echo CPUS=$(cat /sys/devices/system/node/node*/cpulist)") == "CPUS=0"
        assert g.out("cat /sys/devices/system/node/node0/distance") == "10 20 20 30"
        # The PCI root bridge's _PXM: its functions are node 0's.
        assert g.out("cat /sys/bus/pci/devices/0000:00:00.0/numa_node") == "0"
        assert g.out("cat /sys/devices/system/node/node3/distance") == "30 20 20 10"
        # MemTotal is the node's 128 MiB less what the kernel reserved.
        for n in range(1, 4):
            kb = int(g.out(f"awk '/MemTotal/ {{print $4}}' /sys/devices/system/node/node{n}/meminfo"))
            assert 100 * 1024 < kb <= 128 * 1024, (n, kb)
        ev = events(vessel_bin, g.sock)
        plug_cpu1(g)
        assert g.out("cat /sys/devices/system/cpu/present") == "0-1"
        assert g.out("cat /sys/devices/system/node/node1/cpulist") == "1"
        assert g.out("cat /sys/devices/system/node/node0/cpulist") == "0"
        # No complaint about the tables or the topology (as test_numa).
        assert g.out("dmesg | grep -iE 'srat|pxm|numa|topology|BUG|WARNING' | grep -cE "
                     "'BUG|WARNING|borken|not on the same node|[Ii]nvalid|[Ii]gnor|disabl' || true") == "0", \
            g.sh("dmesg | grep -iE 'srat|pxm|numa|topology|BUG|WARNING'")
        # On the host: cpu1's thread runs on the CPUs of node 1's host node.
        r = g.ctl("--json", "numa", "status")
        assert r.returncode == 0, r.stderr
        node1 = json.loads(r.stdout)["result"]["nodes"][1]
        assert node1["host_nodes"] == [0], node1
        tid = next(v["tid"] for v in node1["vcpus"] if v["id"] == 1)
        allowed = next(line.split()[1] for line in open(f"/proc/{g.child.pid}/task/{tid}/status")
                       if line.startswith("Cpus_allowed_list:"))
        with open("/sys/devices/system/node/node0/cpulist") as f:
            assert allowed == f.read().strip(), allowed
        # Work runs on the new CPU.
        assert g.out("taskset -c 1 sh -c 'grep -c . /proc/self/stat >/dev/null; echo RAN'") == "RAN"
        # --node picks the node: vessel's CPU 3 (APIC id 3) before CPU 2.
        # Linux numbers CPUs in the order they arrive: it is the guest's
        # cpu2, and in node 3 by its _PXM once online; vessel's CPU 2 is
        # then the guest's cpu3 (left offline).
        for args, cpu, linux_cpu in [(["--node", "3"], 3, 2), ([], 2, 3)]:
            r = g.ctl("cpu", "add", *args)
            assert r.returncode == 0 and r.stdout.strip() == f"added cpu{cpu} to node {cpu}", r.stdout + r.stderr
            assert g.wait_for(f"[ -e /sys/devices/system/cpu/cpu{linux_cpu}/online ]") == "YES", g.sh("dmesg | tail")
            if cpu == 3:
                g.sh("echo 1 > /sys/devices/system/cpu/cpu2/online")
                assert g.wait_for('[ "$(cat /sys/devices/system/node/node3/cpulist)" = 2 ]') == "YES", \
                    g.sh("dmesg | tail")
        for args, code, message in [(["--node", "3"], 1, "every possible CPU of node 3 is there already (3-3)"),
                                    (["--node", "4"], 1, "cpu add: the guest has no NUMA node 4 (it has 0-3)"),
                                    (["--node", "x"], 2, "cpu add: expected --node N, not '--node x'")]:
            r = g.ctl("cpu", "add", *args)
            assert r.returncode == code and message in r.stderr, (args, r.stderr)
        r = g.ctl("cpu", "add")
        assert r.returncode != 0 and "every possible CPU is there already" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        # Removal: the guest offlines the CPU and ejects it; then it can
        # come back, started again by the guest's INIT/SIPI.
        r = g.ctl("cpu", "remove", "0")
        assert r.returncode != 0 and "cpu0 is the boot processor" in r.stderr, r.stderr
        r = g.ctl("cpu", "remove", "1")
        assert r.returncode == 0, r.stderr
        assert g.wait_for('[ "$(cat /sys/devices/system/cpu/present)" = 0,2-3 ]') == "YES", g.sh("dmesg | tail -n 30")
        assert g.out("cat /sys/devices/system/cpu/online") == "0,2"
        plug_cpu1(g, "0-2")
        time.sleep(0.5)
        ev.terminate()
        out, _ = ev.communicate(timeout=30)
        cpu_evs = [(e["event"], e["cpu"], e.get("node")) for e in map(json.loads, filter(None, out.splitlines()))
                   if e.get("event", "").startswith("cpu-")]
        assert cpu_evs == [("cpu-added", 1, 1), ("cpu-added", 3, 3), ("cpu-added", 2, 2), ("cpu-removed", 1, None),
                           ("cpu-added", 1, 1)], out
        r = g.ctl("save", str(snap))
        assert r.returncode == 0, r.stderr
    finally:
        g.close()
    h = Guest(vessel_bin, tmp_path, "run", "--restore", str(snap), name="restored")
    try:
        h.child.sendline("")
        h.child.expect(PROMPT)
        assert h.out("cat /sys/devices/system/cpu/online") == "0-2"
        assert h.out("taskset -c 1 echo STILL") == "STILL"
        assert h.out("cat /sys/devices/system/node/node1/cpulist") == "1"
        assert h.out("cat /sys/devices/system/node/node3/cpulist") == "2"
    finally:
        h.close()
