"""The host's AC and battery state in the guest (docs/power.md "The host's
power state"): `vessel run --host-power-status=DIR` with a fake
power-supply tree, and the ACPI `ac` and `battery` drivers of Debian's
generic kernel (the cloud kernel of the default guest has neither: the
guest variant `scripts/build-guest --variant generic`).  One boot checks
the state at power-up, a change of the tree (AC unplugged, the battery
discharging) that reaches the guest through the GPE and the drivers'
notifications, and the battery's removal."""
import io

import pexpect

from guests import linux_args, script_output

BOOT_TIMEOUT = 900   # seconds; the generic kernel boots in about twice the cloud kernel's time
CHANGE_TIMEOUT = 120

# `uevent` (busybox) runs /tmp/ev for each kernel uevent: the drivers send
# "change" when a notification made them read the device again, so the
# events prove the notification, not a read that happened to come later.
GUEST_SCRIPT = r"""
cat > /tmp/ev <<'E'
#!/bin/sh
[ "$SUBSYSTEM" = power_supply ] && echo "$ACTION $POWER_SUPPLY_NAME" >> /tmp/events
E
chmod +x /tmp/ev
uevent /tmp/ev &
P=/sys/class/power_supply
show() {
	echo "$1 ac=$(cat $P/AC/online) status=$(cat $P/BAT0/status) capacity=$(cat $P/BAT0/capacity)" \
	     "energy_now=$(cat $P/BAT0/energy_now) energy_full=$(cat $P/BAT0/energy_full)" \
	     "energy_full_design=$(cat $P/BAT0/energy_full_design) power_now=$(cat $P/BAT0/power_now)" \
	     "voltage_now=$(cat $P/BAT0/voltage_now) type=$(cat $P/AC/type)"
}
wait_for() {
	i=0
	while ! eval "$1" && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
}
show BEFORE
echo READY-CHANGE
wait_for 'grep -q "change AC" /tmp/events 2>/dev/null && grep -q "change BAT0" /tmp/events'
# The battery driver keeps what it read for a second (battery.cache_time).
sleep 1.2
show AFTER
echo "EVENTS $(sort -u /tmp/events | tr '\n' ',')"
echo "GPE $(cat /sys/firmware/acpi/interrupts/gpe02)"
echo READY-REMOVE
wait_for '[ ! -e $P/BAT0 ]'
echo "REMOVED $(ls $P | tr '\n' ' ')"
"""


def write_tree(root, ac_online, battery):
    (root / "AC").mkdir(parents=True, exist_ok=True)
    (root / "AC" / "type").write_text("Mains\n")
    (root / "AC" / "online").write_text(f"{ac_online}\n")
    (root / "BAT0").mkdir(exist_ok=True)
    for name, value in battery.items():
        (root / "BAT0" / name).write_text(f"{value}\n")


def fields(line):
    return dict(w.split("=", 1) for w in line.split()[1:])


def line_with(lines, prefix):
    found = [l for l in lines if l.startswith(prefix + " ")]
    assert found, f"no {prefix} line in {lines}"
    return found[-1]


def test_ac_adapter_and_battery_follow_the_host_tree(vessel_bin, tmp_path):
    tree = tmp_path / "power_supply"
    battery = {"type": "Battery", "present": 1, "status": "Charging", "capacity": 80, "capacity_level": "Normal",
               "energy_now": 40000000, "energy_full": 50000000, "energy_full_design": 60000000,
               "power_now": 10000000, "voltage_now": 12000000, "voltage_min_design": 11100000}
    write_tree(tree, 1, battery)
    args = linux_args(GUEST_SCRIPT, variant="generic") + [f"--host-power-status={tree}"]
    child = pexpect.spawn(vessel_bin, args, encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT)
    console = child.logfile_read = io.StringIO()
    try:
        child.expect("READY-CHANGE")
        # Unplugged: the battery discharges at 7 W from 42 %.
        write_tree(tree, 0, dict(battery, status="Discharging", capacity=42, energy_now=21000000,
                                 power_now=7000000, voltage_now=11500000))
        child.expect("READY-REMOVE", timeout=CHANGE_TIMEOUT + 60)
        (tree / "BAT0" / "present").write_text("0\n")
        child.expect("VESSEL-SCRIPT-END rc=", timeout=CHANGE_TIMEOUT + 60)
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
    lines, rc = script_output(console.getvalue(), kernel_log=False)
    assert rc == "0", lines

    before = fields(line_with(lines, "BEFORE"))
    assert before == {"ac": "1", "status": "Charging", "capacity": "80", "energy_now": "40000000",
                      "energy_full": "50000000", "energy_full_design": "60000000", "power_now": "10000000",
                      "voltage_now": "12000000", "type": "Mains"}, before
    after = fields(line_with(lines, "AFTER"))
    assert after == dict(before, ac="0", status="Discharging", capacity="42", energy_now="21000000",
                         power_now="7000000", voltage_now="11500000"), after
    events = line_with(lines, "EVENTS").split(None, 1)[1].split(",")
    assert "change AC" in events and "change BAT0" in events, events
    # The GPE of the AC adapter and battery fired (its count, then its state).
    assert int(line_with(lines, "GPE").split()[1]) >= 1, lines
    # present=0: _STA says the bay is empty, the driver removes the battery.
    removed = line_with(lines, "REMOVED").split()[1:]
    assert removed == ["AC"], removed


def test_a_power_supply_directory_that_cannot_be_read_is_bad_input(vessel_bin, tmp_path):
    from conftest import run_vessel
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"\0" * 4096)
    r = run_vessel(vessel_bin, "run", "--kernel", str(kernel), f"--host-power-status={tmp_path / 'nope'}")
    assert r.returncode == 2, r
    assert r.stderr.strip() == f"vessel run: --host-power-status: {tmp_path / 'nope'}: No such file or directory"
