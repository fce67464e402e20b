"""Memory hot-add (docs/hotplug.md "Memory"): `vessel ctl memory add`
gives a running Debian guest a block of RAM in a NUMA node; the guest's
ACPI memory driver adds it, the script onlines it, and free -m and the
node's meminfo grow.  Bad requests are refused with the reason; the added
memory is there again after the guest reboots, and `memory remove` takes
it back once the guest released it.  One boot (and a reboot) for all."""
import json
import os
import re
import subprocess
import time

import pexpect

from conftest import run_vessel
from guests import linux_args
from test_hotplug import events

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine

# Waits for the new memory blocks, onlines them (the cloud kernel leaves
# hot-added memory offline: CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE is off),
# then prints the totals.  Markers are written AB''C so that the echo of
# the command line never matches.
ONLINE = ("for t in $(seq 1 60); do grep -qs offline /sys/devices/system/memory/memory*/state && break; sleep 1;"
          " done; for f in /sys/devices/system/memory/memory*/state; do grep -q offline $f &&"
          " { echo online_movable > $f || echo online > $f; }; done;")
TOTALS = ("echo FR''EE $(free -m | awk '/^Mem:/ {print $2}');"
          " echo NO''DE1 $(awk '/MemTotal/ {print $4}' /sys/devices/system/node/node1/meminfo);"
          " echo TO''TALS-DONE")


def totals(child):
    child.sendline(TOTALS)
    child.expect(r"FREE (\d+)\r*\n")
    free_mb = int(child.match.group(1))
    child.expect(r"NODE1 (\d+)\r*\n")
    node1_kb = int(child.match.group(1))
    child.expect("TOTALS-DONE")
    return free_mb, node1_kb


def test_refused_without_a_hot_pluggable_range(vessel_bin, tmp_path):
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"\0" * 4096)
    for args, message in [(["--memory-hotplug", "100M"], "memory_hotplug: 100 MiB is not a multiple of 128 MiB"),
                          (["--memory-hotplug", "64G"], "memory_hotplug: 65536 MiB is not a multiple of 128 MiB"),
                          (["--memory-hotplug", "128M", "--cpus", "2", "--numa-nodes", "2"],
                           "from 256 MiB (one block per NUMA node)")]:
        r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), *args)
        assert r.returncode == 2 and message in r.stderr, r.stderr
    # --memory-backend hugetlb (docs/numa.md "Huge pages") is checked
    # against the host's free 2 MiB pages before anything is built.
    free = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read())
    r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), "--memory", "64M", "--memory-backend", "hugetlb")
    if free < 32:
        assert r.returncode == 2, r.stderr
        assert f"the guest's 64 MiB need 32 free 2 MiB huge pages, the host has {free}" in r.stderr, r.stderr
    else:
        assert "huge pages" not in r.stderr, r.stderr
    # 1 GiB pages (--memory-page-size 1G): hugetlb only, whole pages,
    # from the host's 1 GiB pool, which this project's CI hosts lack.
    for args, message in [(["--memory-page-size", "1G"], "1 GiB pages are hugetlb pages (add --memory-backend hugetlb)"),
                          (["--memory-backend", "hugetlb", "--memory-page-size", "4M"],
                           "memory_page_size: 4096 KiB is not a huge page size (expected 2M or 1G)"),
                          (["--memory-backend", "hugetlb", "--memory-page-size", "1G", "--memory", "512M"],
                           "hugetlb needs memory in whole 1 GiB pages, not 524288 KiB")]:
        r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
    giant = "/sys/kernel/mm/hugepages/hugepages-1048576kB"
    r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), "--memory", "1G", "--memory-backend", "hugetlb",
                   "--memory-page-size", "1G")
    if not os.path.exists(giant):
        assert r.returncode == 2 and f"this host has no 1 GiB huge pages (no {giant}" in r.stderr, r.stderr
    elif int(open(f"{giant}/free_hugepages").read()) < 1:
        assert r.returncode == 2 and "need 1 free 1 GiB huge pages, the host has 0" in r.stderr, r.stderr
    r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), "--memory-backend", "giant")
    assert r.returncode == 2 and "'giant' is not a backend (expected thp, normal or hugetlb)" in r.stderr, r.stderr


def test_memory_add_grows_the_guest(vessel_bin, tmp_path):
    sock = tmp_path / "api.sock"
    args = linux_args(None, cpus=2) + ["--numa-nodes", "2", "--memory-hotplug", "1G", "--api-socket", str(sock)]
    ctl = [vessel_bin, "ctl", "--socket", str(sock)]
    child = pexpect.spawn(vessel_bin, args, encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT)
    try:
        child.expect("starting a shell")
        child.expect(r"[#$] ")
        free0, node1_0 = totals(child)

        # Each node has 512 MiB of the 1 GiB range.
        for cmd, code, message in [
                (["memory", "add", "100M", "--node", "1"], 1, "100 MiB is not a multiple of the 128 MiB memory block"),
                (["memory", "add", "256M", "--node", "2"], 1, "the guest has no NUMA node 2 (it has 0-1)"),
                (["memory", "add", "1G", "--node", "1"], 1,
                 "no room for 1024 MiB in node 1's hot-pluggable range (0 of 512 MiB in use)"),
                (["memory", "add", "lots"], 2, "'lots' is not a size")]:
            r = subprocess.run(ctl + cmd, capture_output=True, text=True, timeout=60)
            assert r.returncode == code and message in r.stderr, (cmd, r.stderr)

        ev = events(vessel_bin, sock)
        r = subprocess.run(ctl + ["memory", "add", "256M", "--node", "1"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        m = re.search(r"added 256 MiB at (0x[0-9a-f]+) to node 1", r.stdout)
        assert m, r.stdout
        # Node 1's share starts half-way into the range, above all RAM.
        assert int(m.group(1), 16) >= 0x100000000

        child.sendline(ONLINE + " echo ON''LINE-DONE")
        child.expect("ONLINE-DONE", timeout=120)
        free1, node1_1 = totals(child)
        assert free1 - free0 >= 250, (free0, free1)
        assert node1_1 - node1_0 >= 250 * 1024, (node1_0, node1_1)

        child.sendline("echo DM''ESG-BEGIN; dmesg | grep -iE 'acpi.*(error|warn)|hotplug|memory.*fail|SRAT|BUG';"
                       " echo DM''ESG-END")
        child.expect("DMESG-BEGIN\r*\n")
        child.expect("DMESG-END")
        bad = [line for line in child.before.splitlines()
               if re.search(r"BUG|WARNING|[Ee]rror|fail|[Ii]nvalid|[Ii]gnor", line)]
        assert not bad, child.before

        # Present again after a reboot: the guest finds it at boot.
        child.sendline("reboot -f")
        child.expect("starting a shell")
        child.expect(r"[#$] ")
        child.sendline(ONLINE + " echo ON''LINE-DONE")
        child.expect("ONLINE-DONE", timeout=120)
        free2, node1_2 = totals(child)
        assert free2 - free0 >= 250 and node1_2 - node1_0 >= 250 * 1024, (free0, free2, node1_0, node1_2)

        # Removal: the guest offlines the (movable) memory, removes it and
        # ejects its blocks; then it is gone from the guest and the host.
        r = subprocess.run(ctl + ["memory", "remove", "0x1234000000"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "no hot-added memory starts at 0x1234000000" in r.stderr, r.stderr
        r = subprocess.run(ctl + ["memory", "remove", m.group(1), "--timeout", "120"], capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0, r.stderr
        assert f"removed 256 MiB at {m.group(1)} from node 1" in r.stdout, r.stdout
        free3, node1_3 = totals(child)
        # Events with where and how much (docs/api.md "Events"): one piece
        # arrived, the same piece left.
        time.sleep(0.5)
        ev.terminate()
        out, _ = ev.communicate(timeout=30)
        mem_evs = [e for e in map(json.loads, filter(None, out.splitlines())) if e.get("event", "").startswith("memory-")]
        piece = {"gpa": int(m.group(1), 16), "size": 256 << 20, "node": 1}
        assert [(e["event"], {k: e[k] for k in piece}) for e in mem_evs] == \
            [("memory-added", piece), ("memory-removed", piece)], out
        assert free2 - free3 >= 250 and node1_2 - node1_3 >= 250 * 1024, (free2, free3, node1_2, node1_3)
        status = subprocess.run(ctl + ["--json", "status"], capture_output=True, text=True, timeout=60)
        assert json.loads(status.stdout)["result"]["memory_hotplug"]["added"] == [], status.stdout

        child.sendline("poweroff -f")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before


def test_hot_added_memory_is_part_of_the_snapshot(vessel_bin, tmp_path):
    """Memory added before a save is there again at the restore, in the
    same place and node; without a hot-pluggable range the request is
    refused with the way to get one.  A small guest: the machine's side."""
    from guests import assemble
    from test_control_vm import ctl, start, wait_for_counts
    guest = assemble("counter", tmp_path)
    snap = tmp_path / "memhp.snap"

    p, sock, log = start(vessel_bin, tmp_path, "plain", "--kernel", str(guest))
    try:
        wait_for_counts(log, 1)
        r = ctl(vessel_bin, sock, "memory", "add", "128M")
        assert r.returncode == 1 and "this VM has no hot-pluggable memory range (start it with --memory-hotplug" \
            in r.stderr, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()

    p, sock, log = start(vessel_bin, tmp_path, "orig", "--kernel", str(guest), "--cpus", "2", "--numa-nodes", "2",
                         "--memory-hotplug", "512M")
    try:
        wait_for_counts(log, 1)
        r = ctl(vessel_bin, sock, "memory", "add", "128M", "--node", "1")
        assert r.returncode == 0, r.stderr
        added = json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["memory_hotplug"]
        assert added["size"] == 512 << 20 and len(added["added"]) == 1, added
        assert added["added"][0]["node"] == 1 and added["added"][0]["size"] == 128 << 20
        assert ctl(vessel_bin, sock, "save", str(snap)).returncode == 0
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()

    p, sock, log = start(vessel_bin, tmp_path, "restored", "--restore", str(snap))
    try:
        n = len(wait_for_counts(log, 1))
        wait_for_counts(log, n + 2)
        restored = json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["memory_hotplug"]
        assert restored == added, (restored, added)
        # The rest of node 1's share is still free: 128 MiB more fit.
        r = ctl(vessel_bin, sock, "memory", "add", "128M", "--node", "1")
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
