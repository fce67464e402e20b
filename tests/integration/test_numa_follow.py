"""--numa-follow (docs/numa.md "Following the host's CPU set"): when the
CPUs the process may use change, the vCPU threads are pinned again to
what is left of their node's host CPUs.  The change is made here the way
an administrator narrows a process (sched_setaffinity of its main
thread, as a cpuset change does for every thread); no cgroup is needed."""
import os
import re
import subprocess
import time

import pytest

from guests import assemble
from test_control_vm import ctl, start, wait_for_counts


def allowed_lists(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        status = open(f"/proc/{pid}/task/{tid}/status").read()
        out[int(tid)] = re.search(r"Cpus_allowed_list:\s*(\S+)", status).group(1)
    return out


def test_vcpu_threads_follow_the_processs_cpus(vessel_bin, tmp_path):
    if not os.path.exists("/sys/devices/system/node/node0"):
        pytest.skip("the host has no NUMA sysfs (/sys/devices/system/node)")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.fail("this test needs two host CPUs in the allowed set")
    keep = cpus[-1]
    guest = assemble("counter", tmp_path)
    p, sock, log = start(vessel_bin, tmp_path, "follow", "--kernel", str(guest), "--cpus", "2", "--numa-nodes", "2",
                         "--numa-follow")
    try:
        wait_for_counts(log, 1)
        before = allowed_lists(p.pid)
        assert before[p.pid] != str(keep), before
        # The main thread's CPUs are the process's: narrow them to one.
        subprocess.run(["taskset", "-p", "-c", str(keep), str(p.pid)], check=True, capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            after = allowed_lists(p.pid)
            pinned = [t for t, lst in after.items() if t != p.pid and lst == str(keep)]
            if len(pinned) >= 2:
                break
            time.sleep(0.2)
        # Both vCPU threads (their nodes both on host node 0 here) now run
        # on the one CPU left; the other threads keep what they had.
        assert len(pinned) == 2, after
        others = [lst for t, lst in after.items() if t != p.pid and t not in pinned]
        assert others and all(lst == before[p.pid] for lst in others), (before, after)
        wait_for_counts(log, len(wait_for_counts(log, 1)) + 2)
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
