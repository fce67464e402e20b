"""ACPI S4 with the Debian guest (docs/power.md "Hibernate"): the guest
writes its image to its swap on a virtio disk and enters S4; vessel ends
with the stop reason `hibernated` (exit code 10, distinct from a
power-off); the next run with the same disks resumes the guest where it
hibernated, its processes intact."""
import base64
import subprocess

from guests import BASE_APPEND, linux_guest

RUN_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine

# One script for both runs.  Its first line resumes from the disk when it
# holds an image (kernel/power/hibernate.c: a write to /sys/power/resume
# runs software_resume(), once the virtio-blk module made the device): in
# the second run the script goes no further, the restored kernel goes on
# after its `echo disk`.  hibernate=nocompress: the LZO of the image is
# most of a hibernation on an emulated CPU and tests nothing of vessel's.
SCRIPT = r"""
cat /sys/block/vda/dev > /sys/power/resume
echo "FRESH-BOOT"
mkswap /dev/vda >/dev/null && swapon /dev/vda || exit 1
(i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done) &
sleep 1
echo "MODES $(cat /sys/power/disk)"
echo "HIBERNATING-$(cat /tmp/count)"
echo disk > /sys/power/state
echo "RESUMED-$(cat /tmp/count)"
sleep 1
echo "AFTER-$(cat /tmp/count)"
dmesg | grep "PM: \|S4" | tail -n 20
"""


def run(vessel_bin, disk, log):
    kernel, initrd = linux_guest()
    append = BASE_APPEND + " hibernate=nocompress vessel.script=" + base64.b64encode(SCRIPT.encode()).decode()
    return subprocess.run([vessel_bin, "-v", "run", "--kernel", str(kernel), "--initrd", str(initrd), "--memory",
                           "512M", "--disk", str(disk), "--append", append, "--serial", f"file:{log}",
                           "--no-register"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def value(text, marker):
    line = next(l for l in text.splitlines() if l.startswith(marker))
    return int(line[len(marker):].split()[0])


def test_hibernate_to_swap_and_resume_on_the_next_run(vessel_bin, tmp_path):
    disk = tmp_path / "swap.img"
    with open(disk, "wb") as f:
        f.truncate(256 << 20)
    first, second = tmp_path / "first.log", tmp_path / "second.log"

    r = run(vessel_bin, disk, first)
    text = first.read_text(errors="replace").replace("\r", "")
    assert r.returncode == 10, (r.returncode, r.stderr[-2000:], text[-2000:])
    assert "vessel: guest hibernated" in r.stderr
    assert "guest: ACPI S4" in r.stderr, "the lifecycle's reason"
    # Linux hibernates through the platform (\_S4), not by powering off.
    assert "[platform]" in text.split("MODES", 1)[1].splitlines()[0], text
    assert "ACPI: PM: Preparing to enter system sleep state S4" in text
    assert "RESUMED-" not in text
    before = value(text, "HIBERNATING-")

    r = run(vessel_bin, disk, second)
    text = second.read_text(errors="replace").replace("\r", "")
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:], text[-2000:])
    # The second kernel did not boot the script anew: it restored the image.
    assert "FRESH-BOOT" not in text, text[-3000:]
    assert "PM: Image loading done" in text
    assert value(text, "RESUMED-") >= before, "the counter went back: not the same processes"
    assert value(text, "AFTER-") > value(text, "RESUMED-"), "the counter stopped after the resume"
    assert "ACPI: PM: Waking up from system sleep state S4" in text
