"""Snapshot of a guest that lives on interrupts: the pit_ticks Multiboot
guest counts PIT interrupts (PIT -> I/O APIC -> LAPIC) and prints the count
every ten ticks.  It is saved while running, powered off, and restored
into a new process, where the count must go on rising from the saved
value: the PIT, I/O APIC, LAPIC and the armed timer all came back.  The
same guest built to tick from the LAPIC timer checks that timer too, and
built to tick from a Hyper-V synthetic timer, that timer and the SynIC."""
import re
import time

import pytest

from guests import assemble
from test_control_vm import ctl, start

TICKS = re.compile(r"ticks ([0-9a-f]{8})\n")


def ticks(log):
    return [int(t, 16) for t in TICKS.findall(log.read_text(errors="replace"))]


def wait_for_ticks(log, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(ticks(log)) >= n:
            return ticks(log)
        time.sleep(0.05)
    raise AssertionError(f"the guest printed {len(ticks(log))} tick counts, expected {n}: {log.read_text()[-300:]}")


def stop(p, vessel_bin, sock):
    assert ctl(vessel_bin, sock, "poweroff").returncode == 0
    assert p.wait(timeout=60) == 0


DEFINES = {"pit": [], "lapic": ["LAPIC_TIMER"], "stimer": ["STIMER"], "stimer_msg": ["STIMER_MSG"]}


# stimer: the Hyper-V synthetic timer in direct mode; stimer_msg: the same
# timer posting messages through the SynIC (docs/hyperv.md), whose
# registers, message page and armed timer must all come back.
@pytest.mark.parametrize("timer", sorted(DEFINES))
def test_ticks_continue_after_restore(vessel_bin, tmp_path, timer):
    guest = assemble("pit_ticks", tmp_path, DEFINES[timer])
    snap = tmp_path / "ticks.snap"
    p, sock, log = start(vessel_bin, tmp_path, "first", "--kernel", str(guest))
    try:
        seen = wait_for_ticks(log, 5)
        assert seen == sorted(seen) and seen[0] >= 10, seen
        r = ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        stop(p, vessel_bin, sock)
    finally:
        if p.poll() is None:
            p.kill()
    before = ticks(log)
    # The save happened after at least the fifth line and before the last.
    low, high = seen[-1], before[-1]
    q, sock2, log2 = start(vessel_bin, tmp_path, "second", "--restore", str(snap))
    try:
        after = wait_for_ticks(log2, 3)
        # Going on from the saved count, not from zero (a fresh boot prints
        # 10 first), and still rising: interrupts keep arriving.
        assert after[0] > low, (low, after)
        assert after[0] <= high + 10, (high, after)
        assert all(b > a for a, b in zip(after, after[1:])), after
        stop(q, vessel_bin, sock2)
    finally:
        if q.poll() is None:
            q.kill()

