"""VMBus and its integration services (docs/hyperv.md "VMBus") as Debian's
hv_vmbus and hv_utils drive them, in one boot of the default guest: the
modules load (the guest's /init insmods them), the shutdown, heartbeat and
timesync devices appear, the heartbeat advances in `vessel ctl status`,
the time service sets a wrong guest clock when hv_utils opens its channels
again, and `vessel ctl powerdown --guest-os` powers the guest off.

The boot has 1 vCPU; VESSEL_TEST_VMBUS_CPUS=1,2 runs it with 2 as well
(another boot, left out of the suite for its time)."""
import json
import os
import re
import subprocess
import time

import pytest

from guests import assemble, linux_args, wait_for_file_text
from test_control_vm import start

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine
# HV_SHUTDOWN_GUID, HV_HEART_BEAT_GUID, HV_TS_GUID (include/linux/hyperv.h).
CLASSES = {"{0e0b6031-5213-4934-818b-38d90ced39db}", "{57164f39-9115-4e78-ab55-382f3bd5422d}",
           "{9527e630-d0ae-497b-adce-e80ab0175caf}"}
# The clock set far back, then hv_utils unloaded and loaded again: its
# channels close and reopen, and the time service's SYNC sets the clock.
SCRIPT = r"""
ls -d /sys/module/hv_vmbus /sys/module/hv_utils
for d in /sys/bus/vmbus/devices/*; do echo "class $(cat $d/class_id)"; done
date -s '2001-02-03 04:05:06' >/dev/null
echo "year-before $(date +%Y)"
rmmod hv_utils && insmod $(grep hv_utils.ko /etc/vessel/modules | sed 's|^|/|') && echo reloaded
sleep 2
echo "year-after $(date +%Y)"
echo READY
sleep 600
"""


def ctl(vessel_bin, sock, *args):
    return subprocess.run([vessel_bin, "ctl", "--socket", str(sock), *args], capture_output=True, text=True,
                          timeout=60)


def status(vessel_bin, sock):
    return json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]


@pytest.mark.parametrize("cpus", [int(n) for n in os.environ.get("VESSEL_TEST_VMBUS_CPUS", "1").split(",")])
def test_hv_utils_services_heartbeat_timesync_and_guest_os_powerdown(vessel_bin, tmp_path, cpus):
    sock, log, errlog = tmp_path / "vm.sock", tmp_path / "vm.log", tmp_path / "vm.err"
    args = linux_args(SCRIPT, cpus) + ["--api-socket", str(sock), "--serial", f"file:{log}"]
    # vessel's log to a file: a pipe nobody reads would stall it.
    p = subprocess.Popen([vessel_bin, "-v", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=errlog.open("w"))
    try:
        assert wait_for_file_text(log, "READY", BOOT_TIMEOUT), log.read_text(errors="replace")[-3000:]
        out = log.read_text(errors="replace")
        assert "/sys/module/hv_vmbus" in out and "/sys/module/hv_utils" in out, out[-3000:]
        assert set(re.findall(r"^class (\{[0-9a-f-]+\})", out, re.M)) == CLASSES, out[-3000:]
        assert "year-before 2001" in out and "reloaded" in out, out[-3000:]
        year = re.search(r"year-after (\d+)", out).group(1)
        assert year == time.strftime("%Y", time.gmtime()), out[-3000:]
        # The heartbeat: the guest returns each sequence number plus one,
        # one a second, so it goes on rising.
        first = status(vessel_bin, sock)
        assert first["vmbus"] == "4.0", first
        deadline = time.monotonic() + 120
        while True:
            now = status(vessel_bin, sock)
            if first["heartbeat"] is not None and now["heartbeat"] is not None and \
               now["heartbeat"] > first["heartbeat"]:
                break
            assert time.monotonic() < deadline, (first, now)
            first = first if first["heartbeat"] is not None else now
            time.sleep(1)
        assert now["heartbeat_stopped"] is False
        assert re.search(r"^heartbeat: \d+$", ctl(vessel_bin, sock, "status").stdout, re.M)
        # Counted: the guest's hypercalls, the host's SynIC messages.
        stats = json.loads(ctl(vessel_bin, sock, "--json", "stats").stdout)["result"]
        by = stats["hyperv"]["hypercalls_by_call"]
        assert by["HvCallPostMessage"] > 0 and by["HvCallSignalEvent"] > 0, by
        vb = stats["vmbus"]
        assert vb["connected"] and vb["shutdown_open"] and vb["malformed"] == 0, vb
        assert vb["post_messages"] == by["HvCallPostMessage"], (vb, by)
        assert vb["messages_sent"] > 0 and vb["channel_interrupts"] > 0 and vb["time_syncs"] >= 2, vb
        assert stats["hyperv"]["synic_messages"] >= vb["messages_sent"], stats["hyperv"]
        assert stats["hyperv"]["auto_eoi"] > 0, stats["hyperv"]
        assert "vmbus:" in ctl(vessel_bin, sock, "stats").stdout
        # The guest OS shuts down when asked through its shutdown service.
        r = ctl(vessel_bin, sock, "powerdown", "--guest-os")
        assert r.returncode == 0, r.stderr
        assert p.wait(timeout=300) == 0
        err = errlog.read_text(errors="replace")
        assert "shutdown IC: asked the guest OS to shut down" in err, err[-3000:]
        assert "reboot: Power down" in log.read_text(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_guest_os_powerdown_needs_the_shutdown_service(vessel_bin, tmp_path):
    # A guest without hv_utils (the counter program) has opened no
    # shutdown channel: --guest-os is refused, and plain powerdown falls
    # back to the ACPI power button, which the counter guest answers.
    p, sock, _ = start(vessel_bin, tmp_path, "vm", "--kernel", str(assemble("counter", tmp_path)))
    try:
        r = ctl(vessel_bin, sock, "powerdown", "--guest-os")
        assert r.returncode != 0
        assert "has not opened the VMBus shutdown service" in r.stderr, r.stderr
        assert status(vessel_bin, sock)["heartbeat"] is None
        assert ctl(vessel_bin, sock, "powerdown").returncode == 0
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
