"""The Hyper-V interface (docs/hyperv.md) as Debian's cloud kernel sees it
on the emu engine (and on the KVM engine where /dev/kvm opens): detection, the features it reads, its guest OS id, the
reference TSC page clocksource, crash reports, and `--hyperv off`/`-NAME`
hiding all or part of it.  Each boot must still power off cleanly."""
import contextlib
import json
import os
import re
import select
import subprocess
import time

import pytest

from conftest import run_vessel
from guests import assemble, linux_args, script_output, wait_for_file_text

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine
BAD_DMESG = re.compile(r"BUG|WARNING|Oops|panic|Call Trace|timed out|unchecked MSR")
CLOCKS = ("cat /sys/devices/system/clocksource/clocksource0/available_clocksource\n"
          "cat /sys/devices/system/clocksource/clocksource0/current_clocksource\n")
# The clockevent device of CPU 0 and the Hyper-V stimer0 interrupt row,
# read twice with a pause between.
EVENTS = ("cat /sys/devices/system/clockevents/clockevent0/current_device\n"
          "grep HVS: /proc/interrupts || echo 'HVS: none'\n"
          "sleep 1\n"
          "grep HVS: /proc/interrupts || echo 'HVS: none'\n")


def hvs_counts(line):
    """Per-CPU counts of a /proc/interrupts row."""
    return [int(f) for f in line.split()[1:] if f.isdigit()]


def ctl(vessel_bin, sock, *args):
    return subprocess.run([vessel_bin, "ctl", "--socket", str(sock), *args], capture_output=True, text=True,
                          timeout=60)


def boot(vessel_bin, script, *extra, cpus=1, verbose=False):
    """Runs the guest to the end; returns (exit code, console, stderr)."""
    args = (["-v"] if verbose else []) + linux_args(script, cpus) + list(extra)
    p = run_vessel(vessel_bin, *args, timeout=BOOT_TIMEOUT)
    return p.returncode, p.stdout, p.stderr


def clean(dmesg):
    return [line for line in dmesg.splitlines() if BAD_DMESG.search(line) and "command line:" not in line.lower()]


@pytest.mark.parametrize("cpus", [1, 2])
def test_linux_detects_hyperv_and_uses_the_tsc_page(vessel_bin, cpus):
    rc, out, err = boot(vessel_bin, CLOCKS + EVENTS + "dmesg\n", cpus=cpus, verbose=True)
    assert rc == 0, err
    lines, script_rc = script_output(out)
    assert script_rc == "0"
    available, current = lines[0].split(), lines[1].strip()
    assert "hyperv_clocksource_tsc_page" in available
    assert current == "hyperv_clocksource_tsc_page"
    # The synthetic timer in direct mode is the guest's clockevent, and
    # its interrupts (HVS) go on rising on every CPU.
    assert lines[2].strip() == "Hyper-V clockevent"
    before, after = hvs_counts(lines[3]), hvs_counts(lines[4])
    assert len(before) == cpus and len(after) == cpus, lines[3:5]
    assert all(b > 0 for b in before) and sum(after) > sum(before), lines[3:5]
    dmesg = "\n".join(lines[5:])
    assert "Hypervisor detected: Microsoft Hyper-V" in dmesg
    # What the guest saw: hypercall, VP index, reference counter and TSC
    # page, SynIC, synthetic timers, reset and frequency MSRs (0xaee);
    # remote TLB flush, relaxed timing, cluster IPI and Ex processor
    # masks (0xc24); frequency and crash MSRs, direct-mode timers
    # (0x80500).
    assert "Hyper-V: privilege flags low 0xaee, high 0x30, hints 0xc24, misc 0x80500" in dmesg
    assert "Using IPI hypercalls" in dmesg
    assert "Using hypercall for remote TLB flush" in dmesg
    assert "Hyper-V: LAPIC Timer Frequency: " in dmesg
    assert not clean(dmesg), "dmesg:\n" + "\n".join(clean(dmesg))
    # The guest told vessel who it is (Linux's form: 0x8100 and its
    # version code), and vessel logged it.
    version = re.search(r"Linux version (\d+)\.(\d+)\.", dmesg)
    m = re.search(r"guest OS id (0x8100[0-9a-f]{12}) \(Linux (\d+)\.(\d+)\.\d+\)", err)
    assert m, err
    assert m.group(2, 3) == version.group(1, 2)


def need_kvm():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        pytest.skip(f"/dev/kvm cannot be opened here ({e.strerror}): the kvm engine cannot run")


@pytest.mark.parametrize("cpus", [1, 2])
def test_kvm_engine_linux_detects_hyperv_without_remote_flush(vessel_bin, cpus):
    # The KVM engine (docs/hyperv.md "The KVM engine"): the Hyper-V leaves
    # by KVM_SET_CPUID2, the MSRs by KVM's MSR filter, hypercalls by the
    # page's port I/O trap; everything but remote TLB flush.
    need_kvm()
    rc, out, err = boot(vessel_bin, CLOCKS + EVENTS + "dmesg\n", "--engine", "kvm", cpus=cpus, verbose=True)
    assert rc == 0, err
    lines, script_rc = script_output(out)
    assert script_rc == "0"
    assert lines[1].strip() == "hyperv_clocksource_tsc_page"
    assert lines[2].strip() == "Hyper-V clockevent"
    before, after = hvs_counts(lines[3]), hvs_counts(lines[4])
    assert len(after) == cpus and sum(after) > sum(before), lines[3:5]
    dmesg = "\n".join(lines[5:])
    assert "Hypervisor detected: Microsoft Hyper-V" in dmesg
    assert "Using IPI hypercalls" in dmesg
    assert "remote TLB flush" not in dmesg
    assert not clean(dmesg), "dmesg:\n" + "\n".join(clean(dmesg))
    assert re.search(r"guest OS id 0x8100[0-9a-f]{12}", err), err


def test_kvm_engine_crash_msrs_reach_vessel(vessel_bin, tmp_path):
    # A bare-metal guest's crash MSRs exit through KVM's MSR filter.
    need_kvm()
    guest = assemble("crash_msrs", tmp_path)
    r = run_vessel(vessel_bin, "run", "--engine", "kvm", "--kernel", str(guest), "--on-panic", "keep",
                   stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0x21, r.stderr
    assert "guest reported a crash: P0 0x11 P1 0x22 P2 0x33" in r.stderr
    assert "guest crash message: Kernel panic - not syncing: test guest gave up" in r.stderr


@pytest.mark.parametrize("cpus", [1, 2])
def test_hyperv_off_hides_it(vessel_bin, cpus):
    rc, out, err = boot(vessel_bin, CLOCKS + EVENTS + "dmesg\n", "--hyperv", "off", cpus=cpus, verbose=True)
    assert rc == 0, err
    lines, script_rc = script_output(out)
    assert script_rc == "0"
    assert not any("hyperv" in c for c in lines[0].split())
    assert lines[2].strip() != "Hyper-V clockevent"
    assert lines[3].strip() == "HVS: none"
    dmesg = "\n".join(lines[5:])
    assert "Hyper-V" not in dmesg
    assert "Using IPI hypercalls" not in dmesg and "remote TLB flush" not in dmesg
    assert not clean(dmesg), "dmesg:\n" + "\n".join(clean(dmesg))
    assert "guest OS id" not in err


def test_a_feature_turned_off_is_not_used(vessel_bin):
    rc, out, err = boot(vessel_bin, CLOCKS, "--hyperv", "-time")
    assert rc == 0, err
    lines, _ = script_output(out)
    assert not any("hyperv" in c for c in lines[0].split()), lines[0]
    assert "Hypervisor detected: Microsoft Hyper-V" in out


def test_guest_panic_poweroff_ends_the_run_with_its_text(vessel_bin):
    rc, out, err = boot(vessel_bin, "echo c > /proc/sysrq-trigger\n", "--on-panic", "poweroff")
    assert rc == 12, err
    assert "guest reported a crash" in err
    # The kernel's own message, copied from the guest's crash page.
    assert re.search(r"guest crash message: .*sysrq", err, re.IGNORECASE), err
    assert "vessel: guest panicked (--on-panic poweroff)" in err
    assert "VESSEL-SCRIPT-END" not in out


def read_events(proc, until, timeout):
    """JSON events of a `ctl --json events` process until one for which
    until(event) holds, or the stream ends or timeout passes."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            got.append(json.loads(line))
            if until(got[-1]):
                break
    return got


def subscribe(vessel_bin, sock):
    """A `ctl --json events` process, once the server has answered it."""
    proc = subprocess.Popen([vessel_bin, "ctl", "--socket", str(sock), "--json", "events"], stdout=subprocess.PIPE,
                            text=True)
    assert read_events(proc, lambda e: "result" in e, 60), "no reply to events"
    return proc


@contextlib.contextmanager
def paused_on_panic(vessel_bin, tmp_path, args, ready_timeout, trigger=None):
    """Runs `vessel run ARGS --on-panic pause` with a control socket and
    the console in a file, waits for READY there, subscribes to events,
    calls trigger(sock) if given, and waits for the pause the panic
    causes.  Yields (process, socket, console log, events up to the
    pause); kills what is left afterwards."""
    sock, log = tmp_path / "vm.sock", tmp_path / "vm.log"
    p = subprocess.Popen([vessel_bin, *args, "--on-panic", "pause", "--api-socket", str(sock), "--serial",
                          f"file:{log}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    ev = None
    try:
        assert wait_for_file_text(log, "READY", ready_timeout), log.read_text(errors="replace")[-2000:]
        ev = subscribe(vessel_bin, sock)
        if trigger:
            trigger(sock)
        got = read_events(ev, lambda e: e.get("event") == "state" and e.get("to") == "paused", 300)
        assert got and got[-1].get("event") == "state", got
        assert (got[-1]["from"], got[-1]["reason"], got[-1]["cause"]) == ("running", "guest: panic", "guest"), got
        yield p, sock, log, got
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if ev:
            ev.kill()
            ev.wait()


# The guest panics 30 s after READY: time enough, even on a loaded host,
# for the test to see READY and subscribe to events first.
PANIC_AFTER_READY = "echo READY\nsleep 30\necho c > /proc/sysrq-trigger\n"


def test_guest_panic_pause_sends_the_event_and_resume_goes_on(vessel_bin, tmp_path):
    # Paused, the guest is resumed, goes on with its panic (panic=-1: a
    # reset), and --no-reboot ends the run there.
    args = linux_args(PANIC_AFTER_READY) + ["--no-reboot"]
    with paused_on_panic(vessel_bin, tmp_path, args, BOOT_TIMEOUT) as (p, sock, _, got):
        panics = [e for e in got if e.get("event") == "guest-panicked"]
        assert len(panics) == 1, got
        assert panics[0]["action"] == "pause" and panics[0]["cpu"] == 0
        assert re.search(r"Kernel panic - not syncing: .*sysrq", panics[0]["message"], re.IGNORECASE), panics[0]
        assert len(panics[0]["params"]) == 5
        status = json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]
        assert status["state"] == "paused"
        assert ctl(vessel_bin, sock, "resume").returncode == 0
        assert p.wait(timeout=300) == 0
        err = p.stderr.read()
        assert "guest rebooted (--no-reboot)" in err, err
        assert re.search(r"guest crash message: .*sysrq", err, re.IGNORECASE), err


@pytest.mark.parametrize("action,code,after", [("keep", 0x21, True), ("poweroff", 12, False)])
def test_crash_msrs_keep_and_poweroff(vessel_bin, tmp_path, action, code, after):
    # A bare-metal guest reports a panic with a message, spins, prints
    # AFTER and exits through the debug-exit port.
    guest = assemble("crash_msrs", tmp_path)
    r = run_vessel(vessel_bin, "run", "--kernel", str(guest), "--on-panic", action, stdin=subprocess.DEVNULL,
                   timeout=120)
    assert r.returncode == code, r.stderr
    assert ("AFTER" in r.stdout) == after, r.stdout
    assert "guest reported a crash: P0 0x11 P1 0x22 P2 0x33" in r.stderr
    assert "guest crash message: Kernel panic - not syncing: test guest gave up" in r.stderr
    # Bytes outside printable ASCII are replaced.
    assert "guest crash message: second line?" in r.stderr


def test_crash_msrs_pause_holds_the_guest(vessel_bin, tmp_path):
    guest = assemble("crash_msrs", tmp_path, defines=["WAIT_BUTTON"])
    press = lambda sock: ctl(vessel_bin, sock, "powerdown")   # noqa: E731
    with paused_on_panic(vessel_bin, tmp_path, ["run", "--kernel", str(guest)], 60, press) as (p, sock, log, got):
        panics = [e for e in got if e.get("event") == "guest-panicked"]
        assert [(e["cpu"], e["action"], e["params"]) for e in panics] == [(0, "pause", [0x11, 0x22, 0x33,
                                                                                           panics[0]["params"][3],
                                                                                           0x3c])], got
        assert panics[0]["message"] == "Kernel panic - not syncing: test guest gave up\nsecond line?\n"
        time.sleep(1.0)
        assert "AFTER" not in log.read_text(), "a guest paused on its panic went on"
        assert ctl(vessel_bin, sock, "resume").returncode == 0
        assert p.wait(timeout=60) == 0x21
        assert "AFTER" in log.read_text()


def test_hyperv_help_and_bad_features(vessel_bin):
    p = run_vessel(vessel_bin, "run", "--hyperv", "help")
    assert p.returncode == 0
    for name in ("relaxed", "time", "frequencies", "crash", "reset", "synic", "stimer", "tlbflush", "ipi", "vmbus"):
        assert re.search(r"^  " + name + r" ", p.stdout, re.MULTILINE), p.stdout
    p = run_vessel(vessel_bin, "run", "--kernel", "/nonexistent", "--hyperv", "-vapic")
    assert p.returncode == 2
    assert "'vapic' is not a Hyper-V feature" in p.stderr
    p = run_vessel(vessel_bin, "run", "--kernel", "/nonexistent", "--on-panic", "reboot")
    assert p.returncode == 2
    assert "--on-panic: 'reboot' is not a panic action (expected poweroff, pause or keep)" in p.stderr


@contextlib.contextmanager
def running_guest(vessel_bin, tmp_path, script, cpus=1):
    """A guest with a control socket, running `script` until it prints
    READY; yields (socket, console log).  The body powers it off through
    the socket; it must then exit with 0."""
    sock, log = tmp_path / "vm.sock", tmp_path / "vm.log"
    args = linux_args(script + "echo READY\nsleep 600\n", cpus) + ["--api-socket", str(sock), "--serial",
                                                                    f"file:{log}"]
    p = subprocess.Popen([vessel_bin, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_file_text(log, "READY", BOOT_TIMEOUT), log.read_text(errors="replace")[-2000:]
        yield sock, log
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_ctl_status_and_stats_show_the_guest_os_id(vessel_bin, tmp_path):
    with running_guest(vessel_bin, tmp_path, "") as (sock, _):
        status = json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]
        assert status["hyperv"] is True
        assert re.fullmatch(r"0x8100[0-9a-f]{12}", status["guest_os_id"]), status
        text = ctl(vessel_bin, sock, "status").stdout
        assert f"guest_os_id: {status['guest_os_id']}" in text
        stats = ctl(vessel_bin, sock, "stats").stdout
        assert "hyperv:" in stats and f"guest_os_id: {status['guest_os_id']}" in stats, stats


def test_two_vcpus_flush_and_ipi_by_hypercall(vessel_bin, tmp_path):
    # Processes that run on both vCPUs and exit: their address spaces are
    # torn down with remote TLB flushes, their wake-ups are IPIs.  Linux
    # sends both through hypercalls, counted by call in ctl stats, and the
    # guest's own TLB-shootdown IPI count stays at 0.
    script = ("i=0; while [ $i -lt 40 ]; do (ls / > /dev/null &); i=$((i+1)); done; wait\n"
              "grep TLB: /proc/interrupts\n")
    with running_guest(vessel_bin, tmp_path, script, cpus=2) as (sock, log):
        tlb = re.search(r"TLB:\s+(\d+)\s+(\d+)", log.read_text(errors="replace"))
        assert tlb and tlb.group(1, 2) == ("0", "0"), tlb and tlb.group(0)
        hv = json.loads(ctl(vessel_bin, sock, "--json", "stats").stdout)["result"]["hyperv"]
        by = hv["hypercalls_by_call"]
        assert by["HvCallSendSyntheticClusterIpi"] > 0, by
        flushes = sum(by[k] for k in by if k.startswith("HvCallFlushVirtualAddress"))
        assert flushes > 0, by
        assert by["other"] == 0, by
        assert hv["hypercalls"] == sum(by.values())
        # The clockevent's timers ran on both vCPUs.
        assert hv["stimer_direct"] > 0 and hv["stimer_direct"] == hv["stimer_expirations"], hv
        text = ctl(vessel_bin, sock, "stats").stdout
        assert re.search(r"^  HvCallSendSyntheticClusterIpi: \d+$", text, re.MULTILINE), text
