"""Power transitions on the control API carry their reason and its cause
(docs/api.md "Reasons"): the guest's own power-off, reboot and triple
fault (guest), the ACPI power button it answered (button), and the
host's poweroff, reset, console and signals (host)."""
import json
import signal
import subprocess
import time

import pytest

from guests import assemble
from test_control_vm import ctl, start, wait_for_counts


def events(vessel_bin, sock):
    p = subprocess.Popen([vessel_bin, "ctl", "--socket", str(sock), "--json", "events"], stdout=subprocess.PIPE,
                         text=True)
    time.sleep(0.5)
    return p


def transitions(p):
    out, _ = p.communicate(timeout=60)
    evs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return [(e["from"], e["to"], e["reason"], e["cause"]) for e in evs if e.get("event") == "state"]


@pytest.fixture
def counter(tmp_path):
    return assemble("counter", tmp_path)


@pytest.fixture
def vm(vessel_bin, counter, tmp_path):
    """A counter guest with an API socket, killed if a test leaves it."""
    p, sock, log = start(vessel_bin, tmp_path, "vm", "--kernel", str(counter))
    wait_for_counts(log, 1)
    yield p, sock
    if p.poll() is None:
        p.kill()
        p.wait()


def test_host_poweroff(vessel_bin, vm):
    p, sock = vm
    ev = events(vessel_bin, sock)
    assert ctl(vessel_bin, sock, "poweroff").returncode == 0
    assert p.wait(timeout=60) == 0
    assert ("running", "powering-down", "control API: poweroff", "host") in transitions(ev)


def test_guest_answers_the_power_button(vessel_bin, vm):
    # The counter guest enters S5 when it sees PWRBTN_STS.
    p, sock = vm
    ev = events(vessel_bin, sock)
    assert ctl(vessel_bin, sock, "powerdown").returncode == 0
    assert p.wait(timeout=60) == 0
    assert ("running", "powering-down", "guest: ACPI S5 after the power button", "button") in transitions(ev)


def test_host_reset_then_signal(vessel_bin, vm):
    p, sock = vm
    ev = events(vessel_bin, sock)
    assert ctl(vessel_bin, sock, "reset").returncode == 0
    deadline = time.monotonic() + 60
    # initializing -> powering-up -> running, then the reset's two.
    while json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["transitions"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 4
    got = transitions(ev)
    assert ("running", "powering-up", "control API: reset", "host") in got, got
    assert ("running", "tearing-down", "signal", "host") in got, got


def test_guest_triple_fault(vessel_bin, tmp_path):
    guest = assemble("triple_fault", tmp_path)
    # It faults before any client could subscribe: -v logs every
    # transition with its reason.
    r = subprocess.run([vessel_bin, "-v", "run", "--kernel", str(guest), "--serial", "none"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 3, r.stderr
    assert "guest: triple fault" in r.stderr, r.stderr
