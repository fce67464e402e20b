"""ACPI S3 with the Debian guest on the emu engine (docs/power.md): the
guest's `echo mem > /sys/power/state` suspends the VM (state `suspended`,
no host CPU used) and each wake source -- `vessel ctl wakeup`, the power
button, the RTC alarm the guest programmed -- resumes it with its
processes and clock intact; the sleep button reaches the guest."""
import json
import os
import subprocess
import time

import pexpect
import pytest

from conftest import run_vessel
from guests import linux_args

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine
PROMPT = r"vessel# "
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Guest:
    def __init__(self, vessel_bin, tmp, cpus=1):
        self.bin = vessel_bin
        self.sock = tmp / "api.sock"
        self.child = pexpect.spawn(vessel_bin, linux_args(None, cpus) + ["--api-socket", str(self.sock)],
                                   encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT)
        self.child.expect("starting a shell")
        self.child.expect(PROMPT)
        # A process whose state lives only in guest memory: it must
        # survive a suspend (a reboot would lose it).
        self.sh("(i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done) &")

    def sh(self, line, timeout=120):
        self.child.sendline(line)
        self.child.expect(PROMPT, timeout=timeout)
        return self.child.before.replace("\r", "")

    def ctl(self, *args):
        return run_vessel(self.bin, "ctl", "--socket", str(self.sock), *args, timeout=120)

    def state(self):
        r = self.ctl("--json", "status")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.splitlines()[-1])["result"]["state"]

    def wait_state(self, want, limit=120):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.state() == want:
                return
            time.sleep(0.2)
        pytest.fail(f"the VM did not become {want} (it is {self.state()})")

    def number(self, line):
        """The number a command printed: the last line that is only
        digits (kernel messages and terminal queries may land between
        the shell's lines on the shared console)."""
        for _ in range(3):
            nums = [l.strip() for l in self.sh(line).split("\n") if l.strip().isdigit()]
            if nums:
                return int(nums[-1])
        pytest.fail(f"`{line}` printed no number")

    def count(self):
        return self.number("cat /tmp/count")

    def cpu_ticks(self):
        with open(f"/proc/{self.child.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])   # utime + stime

    def suspend(self, marker):
        """Enters S3 from the shell; returns the counter's value before."""
        before = self.count()
        self.child.sendline(f"echo mem > /sys/power/state; echo {marker}-$(cat /tmp/count)-done")
        self.wait_state("suspended")
        return before

    def expect_resumed(self, marker, before, timeout=120):
        self.child.expect(rf"{marker}-(\d+)-done", timeout=timeout)
        assert int(self.child.match.group(1)) >= before, "the counter went back: not the same processes"
        self.child.expect(PROMPT)
        assert self.state() == "running"
        dmesg = self.sh("dmesg | tail -n 40")
        assert "ACPI: PM: Waking up from system sleep state S3" in dmesg
        assert "PM: suspend exit" in dmesg
        # The counter process runs on after the wake (its timers work).
        first = self.count()
        self.sh("sleep 1")
        assert self.count() > first, "the counter stopped after the resume"
        # Timekeeping caught up with the time spent asleep.
        guest_now = self.number("date +%s")
        assert abs(guest_now - time.time()) <= 2, "the guest's clock lost the time it slept"

    def close(self):
        self.ctl("poweroff")
        self.child.expect(pexpect.EOF, timeout=60)
        self.child.close()


@pytest.fixture(scope="module")
def guest(vessel_bin, tmp_path_factory):
    g = Guest(vessel_bin, tmp_path_factory.mktemp("power"))
    yield g
    g.close()


def events_since(guest):
    return subprocess.Popen([guest.bin, "ctl", "--socket", str(guest.sock), "--json", "events"],
                            stdout=subprocess.PIPE, text=True)


def state_events(proc):
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    evs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [(e["from"], e["to"], e["reason"]) for e in evs if e.get("event") == "state"]


def test_guest_offers_suspend_to_ram(guest):
    assert "mem" in guest.sh("cat /sys/power/state").split("\n")[-2].split()
    assert "[deep]" in guest.sh("cat /sys/power/mem_sleep")


def test_suspend_uses_no_cpu_and_wakeup_resumes(guest):
    ev = events_since(guest)
    time.sleep(0.5)
    before = guest.suspend("HOSTWAKE")
    # Asleep: the vCPU threads are gone and the devices' timers stopped.
    a = guest.cpu_ticks()
    time.sleep(2)
    used = guest.cpu_ticks() - a
    assert used <= 1, f"a suspended VM used {used} clock ticks of CPU in 2 s"
    assert guest.state() == "suspended"
    r = guest.ctl("wakeup")
    assert r.returncode == 0, r.stderr
    guest.expect_resumed("HOSTWAKE", before)
    events = state_events(ev)
    assert ("running", "suspended", "guest: ACPI S3") in events, events
    assert ("suspended", "running", "wake: control API") in events, events


def test_power_button_wakes_without_powering_off(guest):
    ev = events_since(guest)
    time.sleep(0.5)
    before = guest.suspend("BUTTONWAKE")
    assert guest.ctl("powerdown").returncode == 0
    guest.expect_resumed("BUTTONWAKE", before)
    assert guest.sh("echo still-$((40 + 2))").count("still-42") == 1
    assert ("suspended", "running", "wake: power button") in state_events(ev)


def test_rtc_alarm_wakes(guest):
    # busybox has no rtcwake: the same alarm through sysfs.
    ev = events_since(guest)
    time.sleep(0.5)
    guest.sh("echo 0 > /sys/class/rtc/rtc0/wakealarm; echo +4 > /sys/class/rtc/rtc0/wakealarm")
    before = guest.suspend("ALARMWAKE")
    guest.expect_resumed("ALARMWAKE", before, timeout=120)
    assert ("suspended", "running", "wake: RTC alarm") in state_events(ev)


def test_wakeup_refused_unless_suspended(guest):
    r = guest.ctl("wakeup")
    assert r.returncode == 1
    assert "cannot wakeup: the VM is running (only a suspended guest wakes)" in r.stderr


def test_sleep_button_wakes(guest):
    # A running guest sees the fixed sleep button only once it enables
    # SLPBTN_EN (Linux's `button` driver, absent from this initramfs);
    # asleep, the button wakes it whatever the enable says.
    ev = events_since(guest)
    time.sleep(0.5)
    before = guest.suspend("SLPBTNWAKE")
    assert guest.ctl("sleep").returncode == 0
    guest.expect_resumed("SLPBTNWAKE", before)
    assert ("suspended", "running", "wake: sleep button") in state_events(ev)


def test_second_vcpu_comes_back_after_resume(vessel_bin, tmp_path):
    # Linux takes the other CPUs offline before S3 and starts them again
    # with INIT/SIPI after the wake: they wait for it from power-on state.
    g = Guest(vessel_bin, tmp_path, cpus=2)
    try:
        before = g.suspend("SMPWAKE")
        assert g.ctl("wakeup").returncode == 0
        g.expect_resumed("SMPWAKE", before)
        assert "CPU1 is up" in g.sh("dmesg | tail -n 40")
        assert g.sh("cat /sys/devices/system/cpu/online").split("\n")[-2] == "0-1"
    finally:
        g.close()
