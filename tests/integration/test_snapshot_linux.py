"""The default Linux guest saved while idle (a shell loop sleeping between
lines) and restored into a new process a few seconds later: its time goes
on from the saved instant, the TSC in step with the HPET (the kernel's
clocksource watchdog compares them every half second), and the idle vCPU
keeps waking for its timer interrupts; its VMBus channels stay open and
their services (hv_utils) go on."""
import json
import re
import time

from guests import linux_args
from test_control_vm import ctl, start

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine
UP = re.compile(r"UP (\d+\.\d+)\r?\n")
# "Marking clocksource 'tsc' as unstable because the skew is too large".
UNSTABLE = re.compile(r"clocksource.*(unstable|skew)", re.I)
# The watchdog skips a check whose interval is long (the save pauses the
# vCPUs while the VM clock runs) and prints both clocks' view of it, which
# must agree: "Long readout interval, skipping watchdog check: cs_nsec:
# 20529803977 wd_nsec: 378177600" is the TSC 20 s ahead of the HPET.
READOUT = re.compile(r"cs_nsec: (-?\d+) wd_nsec: (-?\d+)")

SCRIPT = """i=0
while [ $i -lt 16 ]; do echo "UP $(cut -d' ' -f1 /proc/uptime)"; sleep 1; i=$((i+1)); done
dmesg
"""


def uptimes(log):
    return [float(u) for u in UP.findall(log.read_text(errors="replace"))]


def wait_for(log, pred, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred(log.read_text(errors="replace") if log.exists() else ""):
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: {log.read_text(errors='replace')[-600:] if log.exists() else '(no output)'}")


def test_idle_linux_guest_keeps_time_across_restore(vessel_bin, tmp_path):
    snap = tmp_path / "linux.snap"
    args = linux_args(SCRIPT)[1:]   # without "run": start() adds it
    p, sock, log = start(vessel_bin, tmp_path, "first", *args)
    try:
        wait_for(log, lambda t: len(UP.findall(t)) >= 3, "the guest never printed three uptimes", BOOT_TIMEOUT)
        # Paused first, so that the lines before the snapshot are the log's
        # now: a guest left running printed more after the save, which the
        # restored one printed again with earlier times.
        t0 = time.monotonic()
        assert ctl(vessel_bin, sock, "pause").returncode == 0
        before = uptimes(log)
        r = ctl(vessel_bin, sock, "save", str(snap))
        saving = time.monotonic() - t0   # the VM clock runs on while it pauses and saves
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    time.sleep(3)   # the host's clock moves on; the guest's must not
    q, sock2, log2 = start(vessel_bin, tmp_path, "second", "--restore", str(snap))
    try:
        # VMBus (docs/hyperv.md "VMBus"): the restored channels' services
        # negotiate again, the time service sets the guest's clock and the
        # heartbeat goes on (this process's counters start at 0).
        deadline, seen = time.monotonic() + 120, []
        while True:
            r = ctl(vessel_bin, sock2, "--json", "stats")
            vb = json.loads(r.stdout)["result"]["vmbus"] if r.returncode == 0 else {}
            if vb.get("time_syncs", 0) >= 1 and vb.get("heartbeats", 0) >= 1:
                break
            # What each poll saw, for a failure: the counters or ctl's error.
            seen.append((round(time.monotonic() - deadline + 120, 1),
                         {k: vb[k] for k in ("time_syncs", "heartbeats") if k in vb} or r.stderr.strip()))
            assert q.poll() is None and time.monotonic() < deadline, seen[-20:]
            time.sleep(0.2)
        assert vb["malformed"] == 0, vb
        # The loop goes on sleeping and waking to the end, then powers off.
        wait_for(log2, lambda t: "VESSEL-SCRIPT-END" in t, "the restored guest did not finish its loop", 300)
        assert q.wait(timeout=60) == 0
    finally:
        if q.poll() is None:
            q.kill()
    text = log2.read_text(errors="replace")
    after = uptimes(log2)
    assert after, text[-600:]
    # Guest time resumes from the save: the next line comes about a second
    # (and the time the save took) after the last one before it, and the
    # lines after it a second apart.  A TSC that jumped by the saved VM
    # clock (the guest's uptime, at least the boot) put the first line that
    # much later, and every later one too: its timer deadlines fired late.
    assert 0 < after[0] - before[-1] < saving + 3, (saving, before[-3:], after[:3])
    steps = [b - a for a, b in zip(after, after[1:])]
    assert steps and all(0 < d < 3 for d in steps), (before[-3:], after)
    unstable = [line for line in text.splitlines() if UNSTABLE.search(line)]
    assert not unstable, "\n".join(unstable)
    for cs, wd in READOUT.findall(text):
        assert abs(int(cs) - int(wd)) < 100_000_000, f"TSC {int(cs)} ns against HPET {int(wd)} ns"
