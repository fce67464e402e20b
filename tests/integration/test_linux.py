"""Debian's cloud kernel with the busybox initramfs on the emu engine
(the PC platform issue's acceptance): script to poweroff on 1 and 2 vCPUs,
a clean dmesg, the right CPU count, the guest's clock, an interactive shell
on the serial console, and reboot."""
import re
import time

import pexpect
import pytest

from conftest import run_vessel
from guests import linux_args, script_output

BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine
BAD_DMESG = re.compile(r"BUG|WARNING|Oops|panic|Call Trace|timed out")


# jit: the emu engine with and without code generation (--jit); the
# other Linux-guest tests take theirs from VESSEL_TEST_JIT (guests.py).
@pytest.mark.parametrize("cpus,jit", [(1, "off"), (2, "off"), (1, "on"), (2, "on")])
def test_script_runs_and_guest_powers_off(vessel_bin, cpus, jit):
    script = "grep -c ^processor /proc/cpuinfo\ndate +%s\ndmesg\n"
    child = pexpect.spawn(vessel_bin, linux_args(script, cpus, jit), encoding="utf-8", codec_errors="replace",
                          timeout=BOOT_TIMEOUT)
    child.expect(r"VESSEL-SCRIPT-BEGIN\r*\n(\d+)\r*\n(\d+)\r*\n")
    host_now = time.time()
    assert int(child.match.group(1)) == cpus
    assert abs(int(child.match.group(2)) - host_now) <= 2, "guest clock differs from the host's"
    child.expect(r"VESSEL-SCRIPT-END rc=(\S+)")
    dmesg = child.before
    assert child.match.group(1) == "0"
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "guest powered off" in child.before
    # The command line itself says panic=-1: it is not a report.
    bad = [line for line in dmesg.splitlines() if BAD_DMESG.search(line) and "command line:" not in line.lower()]
    assert not bad, "dmesg:\n" + "\n".join(bad)


def test_interactive_shell_over_serial(vessel_bin):
    child = pexpect.spawn(vessel_bin, linux_args(None), encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT)
    child.expect("starting a shell")
    child.expect(r"[#$] ")
    child.sendline("echo $((6 * 7)) ready")
    child.expect("42 ready", timeout=60)
    child.sendline("uname -s")
    child.expect("Linux", timeout=60)
    child.sendline("exit")
    child.expect(pexpect.EOF, timeout=120)
    child.close()
    assert child.exitstatus == 0


def test_guest_reboot_boots_again_until_quit(vessel_bin):
    child = pexpect.spawn(vessel_bin, linux_args("reboot -f\n"), encoding="utf-8", codec_errors="replace",
                          timeout=BOOT_TIMEOUT)
    child.expect("VESSEL-SCRIPT-BEGIN")
    child.expect("Linux version")          # the second boot
    child.expect("VESSEL-SCRIPT-BEGIN")
    child.send("\x01x")                     # Ctrl-A x quits, as in QEMU
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 4


def test_no_reboot_ends_the_run(vessel_bin):
    r = run_vessel(vessel_bin, *linux_args("reboot -f\n"), "--no-reboot", "--serial", "none", timeout=BOOT_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert "rebooted" in r.stderr
