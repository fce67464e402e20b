"""Virtual NUMA (docs/numa.md): bad topologies refused with exit 2 and
the field named; the Debian guest sees two nodes with their CPUs, memory
and SLIT distances; on the host the guest RAM carries the memory policy
of its node (numa_maps) and each vCPU thread the CPUs of its host node."""
import json
import os
import re
import subprocess

import pexpect
import pytest

from conftest import run_vessel
from guests import linux_args

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine


@pytest.mark.parametrize("args, message", [
    (["--memory", "512M", "--cpus", "2", "--numa", "node,mem=256M,cpus=0", "--numa", "node,mem=128M,cpus=1"],
     "the nodes' memory sums to 384 MiB, not the machine's 512 MiB"),
    (["--memory", "512M", "--cpus", "2", "--numa", "node,mem=256M,cpus=0-1", "--numa", "node,mem=256M,cpus=1"],
     "numa node 1: cpus: vCPU 1 is already in node 0"),
    (["--memory", "512M", "--cpus", "3", "--numa", "node,mem=256M,cpus=0", "--numa", "node,mem=256M,cpus=1"],
     "numa: cpus: vCPU 2 is in no node"),
    (["--memory", "512M", "--cpus", "2", "--numa", "node,mem=256M,cpus=0,host-node=7",
      "--numa", "node,mem=256M,cpus=1"],
     "numa node 0: host-node: the host has no node 7"),
    (["--memory", "512M", "--cpus", "2", "--numa", "node,mem=256M,cpus=0", "--numa", "node,mem=256M,cpus=1",
      "--numa-distance", "0,1,20", "--numa-distance", "1,0,30"],
     "numa distance 0,1: 20 is not symmetric (1,0 is 30)"),
    (["--memory", "512M", "--cpus", "2", "--numa", "node,mem=256M,cpus=0", "--numa", "node,mem=256M,cpus=1",
      "--numa-distance", "0,1,5"],
     "numa distance 0,1: 5 is out of range"),
    (["--memory", "512M", "--cpus", "2", "--numa", "node,mem=512M"], "--numa: numa node 0: cpus= missing"),
    (["--memory", "512M", "--numa-policy", "strict"], "--numa-policy: numa policy: 'strict' is not a policy"),
])
def test_bad_topology_is_refused(vessel_bin, tmp_path, args, message):
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"\0" * 4096)
    r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def host_checks(pid):
    """numa_maps lines of the guest RAM and the Cpus_allowed_list of each
    vCPU thread (named by the kernel as the process: all threads)."""
    maps = open(f"/proc/{pid}/numa_maps").read().splitlines()
    allowed = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        status = open(f"/proc/{pid}/task/{tid}/status").read()
        allowed.add(re.search(r"Cpus_allowed_list:\s*(\S+)", status).group(1))
    return maps, allowed


def expand_cpulist(text):
    """"0-1,4" -> {"0", "1", "4"}."""
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(str(n) for n in range(int(lo), int(hi or lo) + 1))
    return out


def node0_cpus():
    return open("/sys/devices/system/node/node0/cpulist").read().strip()


def test_guest_sees_two_nodes_and_host_binds_them(vessel_bin, tmp_path):
    if not os.path.exists("/sys/devices/system/node/node0"):
        pytest.skip("the host has no NUMA sysfs (/sys/devices/system/node)")
    sock = tmp_path / "api.sock"
    args = linux_args(None, cpus=2) + [
        "--numa", "node,mem=256M,cpus=0,host-node=0", "--numa", "node,mem=256M,cpus=1",
        "--numa-distance", "0,1,25", "--numa-policy", "bind", "--api-socket", str(sock)]
    # Markers are written NO''DES in the commands so that the echo of the
    # command line never matches.
    # Started on CPU 0 alone: the vCPU threads, pinned to host node 0's
    # CPUs, then differ from every other thread of the process.
    cpus0 = node0_cpus()
    if cpus0 == "0":
        pytest.skip("host node 0 has a single CPU: pinning would not show")
    child = pexpect.spawn("taskset", ["-c", "0", vessel_bin] + args, encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT)
    try:
        child.expect("starting a shell")
        child.expect(r"[#$] ")
        child.sendline("echo NO''DES $(ls -d /sys/devices/system/node/node*); echo CP''ULIST $(cat /sys/devices/system/node/node1/cpulist);"
                       " echo DI''ST $(cat /sys/devices/system/node/node0/distance);"
                       " grep MemTotal /sys/devices/system/node/node1/meminfo; echo NU''MA-DONE")
        child.expect(r"NODES ([^\r\n]*)\r*\n")
        assert child.match.group(1).split() == ["/sys/devices/system/node/node0", "/sys/devices/system/node/node1"]
        child.expect(r"CPULIST (\S+)\r*\n")
        assert child.match.group(1) == "1"
        child.expect(r"DIST ([0-9 ]+)\r*\n")
        assert child.match.group(1).split() == ["10", "25"]
        child.expect(r"Node 1 MemTotal:\s+(\d+) kB")
        node1_kb = int(child.match.group(1))
        child.expect("NUMA-DONE")
        # MemTotal is what the kernel manages: the node's 256 MiB less what
        # the kernel reserved out of it (memmap, firmware areas).
        assert 200 * 1024 < node1_kb <= 256 * 1024, node1_kb

        maps, allowed = host_checks(child.pid)
        # Both nodes' RAM (one 512 MiB mapping, two ranges with the same
        # policy, which the kernel merges) bound to host node 0.
        bound = {int(m.split()[0], 16) for m in maps if " bind:0 " in m}
        sizes = {}
        for line in open(f"/proc/{child.pid}/maps"):
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            sizes[start] = end - start
        assert sum(sizes[a] for a in bound) == 512 << 20, "\n".join(maps)
        assert allowed == {"0", cpus0}, allowed
        vcpu_threads = [t for t in os.listdir(f"/proc/{child.pid}/task")
                        if re.search(r"Cpus_allowed_list:\s*" + re.escape(cpus0) + r"\n",
                                     open(f"/proc/{child.pid}/task/{t}/status").read())]
        assert len(vcpu_threads) == 2, "one pinned thread per vCPU"

        status = json.loads(subprocess.run([vessel_bin, "ctl", "--socket", str(sock), "--json", "status"],
                                           capture_output=True, text=True, timeout=60).stdout)["result"]
        numa = status["numa"]
        assert numa["policy"] == "bind" and numa["bound"]
        assert [n["host_nodes"] for n in numa["nodes"]] == [[0], [0]]
        assert [n["host_picked"] for n in numa["nodes"]] == [False, True]
        assert [n["memory"] for n in numa["nodes"]] == [256 << 20, 256 << 20]

        # numa move (docs/numa.md "Moving a node"): node 1 to host node 0
        # while the guest checks data it wrote before, over and over.
        child.sendline("dd if=/dev/urandom of=/tmp/blob bs=1M count=8 2>/dev/null; S=$(md5sum < /tmp/blob);"
                       " (for i in 1 2 3 4 5 6 7 8 9 10; do [ \"$(md5sum < /tmp/blob)\" = \"$S\" ] || echo SU''M-BAD;"
                       " done; echo SU''MS-DONE) &")
        ctl = [vessel_bin, "ctl", "--socket", str(sock)]
        moved = subprocess.run(ctl + ["numa", "move", "1", "0"], capture_output=True, text=True, timeout=300)
        assert moved.returncode == 0, moved.stderr
        assert re.search(r"node 1 moved to host node\(s\) 0: 65536 pages, 0 moved, 0 left elsewhere", moved.stdout), \
            moved.stdout
        numa = json.loads(subprocess.run(ctl + ["--json", "numa", "status"], capture_output=True, text=True,
                                         timeout=60).stdout)["result"]
        node1 = numa["nodes"][1]
        assert node1["host_nodes"] == [0] and not node1["host_picked"], node1
        assert node1["resident_pages"].get("0", 0) > 0
        assert node1["resident_pages"].get("0", 0) + node1["absent_pages"] == 65536
        assert [c["id"] for c in node1["vcpus"]] == [1]
        assert node1["vcpus"][0]["tid"] > 0
        assert str(node1["vcpus"][0]["last_cpu"]) in expand_cpulist(cpus0)
        for args, message in [(["numa", "move", "5", "0"], "node 5: the guest has no such node (it has 2)"),
                              (["numa", "move", "1", "7"], "host node 7: the host has no such node (it has 0)")]:
            r = subprocess.run(ctl + args, capture_output=True, text=True, timeout=60)
            assert r.returncode == 1 and message in r.stderr, r.stderr
        r = subprocess.run(ctl + ["numa", "move", "1", "x"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "'x' is not a host node list" in r.stderr, r.stderr
        child.expect("SUMS-DONE", timeout=600)
        assert "SUM-BAD" not in child.before

        # No complaint about the tables or the topology they describe.
        child.sendline("echo DM''ESG-BEGIN; dmesg | grep -iE 'srat|slit|numa|topology|BUG|WARNING'; echo DM''ESG-END")
        child.expect("DMESG-BEGIN\r*\n")
        child.expect("DMESG-END")
        bad = [line for line in child.before.splitlines()
               if re.search(r"BUG|WARNING|borken|not on the same node|[Ii]nvalid|[Ii]gnor|disabl", line)]
        assert not bad, child.before

        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_shorthand_nodes_survive_a_reboot_in_the_sandbox(vessel_bin):
    """--numa-nodes 2: two nodes of one vCPU each; the machine rebuilt at
    the guest's reboot binds and pins again inside the sandbox (mbind and
    sched_setaffinity allowed) and the guest sees the nodes again."""
    script = ("echo NODE1-CPUS $(cat /sys/devices/system/node/node1/cpulist)\n"
              "echo NODE1-DIST $(cat /sys/devices/system/node/node1/distance)\n"
              "echo NODE1-MEM $(awk '/MemTotal/ {print $4}' /sys/devices/system/node/node1/meminfo)\n"
              "reboot -f\n")
    child = pexpect.spawn(vessel_bin, linux_args(script, cpus=2) + ["--numa-nodes", "2"], encoding="utf-8",
                          codec_errors="replace", timeout=BOOT_TIMEOUT)
    try:
        for _ in range(2):
            child.expect("VESSEL-SCRIPT-BEGIN")
            child.expect(r"NODE1-CPUS (\S+)\r*\n")
            assert child.match.group(1) == "1"
            child.expect(r"NODE1-DIST ([0-9 ]+)\r*\n")
            assert child.match.group(1).split() == ["20", "10"], "the default SLIT distance"
            # Half of the 512 MiB, less what the kernel reserved from it.
            child.expect(r"NODE1-MEM (\d+)\r*\n")
            assert 200 * 1024 < int(child.match.group(1)) <= 256 * 1024, child.match.group(1)
        child.send("\x01x")                     # Ctrl-A x quits
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    assert child.exitstatus == 4, child.before


def test_topology_is_part_of_the_snapshot(vessel_bin, tmp_path):
    """A VM saved with explicit nodes restores with the same nodes, sizes,
    distances and host nodes; --numa flags that disagree are refused."""
    from guests import assemble
    from test_control_vm import ctl, start, wait_for_counts
    if not os.path.exists("/sys/devices/system/node/node0"):
        pytest.skip("the host has no NUMA sysfs (/sys/devices/system/node)")
    guest = assemble("counter", tmp_path)
    snap = tmp_path / "numa.snap"
    topo = ["--cpus", "2", "--memory", "512M", "--numa", "node,mem=128M,cpus=0,host-node=0",
            "--numa", "node,mem=384M,cpus=1", "--numa-distance", "0,1,30", "--numa-policy", "interleave"]
    p, sock, log = start(vessel_bin, tmp_path, "orig", "--kernel", str(guest), *topo)
    try:
        wait_for_counts(log, 2)
        assert ctl(vessel_bin, sock, "save", str(snap)).returncode == 0
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()

    r = subprocess.run([vessel_bin, "run", "--restore", str(snap), "--numa", "node,mem=512M,cpus=0-1",
                        "--serial", "none"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "--numa gives 1 NUMA nodes, but snapshot" in r.stderr, r.stderr

    p, sock, log = start(vessel_bin, tmp_path, "restored", "--restore", str(snap))
    try:
        wait_for_counts(log, 1)
        status = json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["numa"]
        assert status["policy"] == "interleave"
        assert [n["memory"] for n in status["nodes"]] == [128 << 20, 384 << 20]
        assert [(n["first_cpu"], n["cpus"]) for n in status["nodes"]] == [(0, 1), (1, 1)]
        assert [n["host_nodes"] for n in status["nodes"]] == [[0], [0]]
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
