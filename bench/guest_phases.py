"""Workloads in the default Linux guest, timed in phases, on vessel and
QEMU TCG side by side (bench/syscall-guest, bench/compute-guest).

The guest's script prints a pause marker and idles for a second before
and after each phase; while it idles, the bench reads the monitor's CPU
time (all its threads).  The host CPU time a phase cost is the difference,
apart from the boot: on a loaded host a wall clock counts time spent
waiting for a CPU, CPU time does not."""
import base64
import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lib  # noqa: E402

PAUSE = "PHASE-PAUSE"
# Printed by the guest's script around each phase: the marker, then a
# second of idling in which the bench samples the monitor's CPU time.
PAUSE_SH = f"echo {PAUSE}; sleep 1"
CACHE = pathlib.Path(os.environ.get("VESSEL_CACHE", pathlib.Path.home() / ".cache" / "vessel"))


def default_guest():
    """(kernel, initramfs) of the default guest, built if missing."""
    subprocess.run([str(lib.ROOT / "scripts" / "build-guest")], check=True, stdout=subprocess.DEVNULL)
    return CACHE / "vmlinuz", CACHE / "initramfs.cpio.gz"


def kernel_release():
    f = CACHE / "kernel-release"
    return f.read_text().strip() if f.exists() else "?"


def commands(kernel, initrd, script, out_dir, cpus=1, append_extra="cryptomgr.notests"):
    """The vessel and QEMU command lines for one guest run: same kernel,
    initramfs, command line, memory and vCPUs.  QEMU runs its default CPU
    (qemu64), on which the guest kernel picks the same mitigations as on
    vessel's (retpolines, no page-table isolation, no buffer clearing)."""
    enc = base64.b64encode(script.encode()).decode()
    append = f"console=ttyS0 panic=-1 {append_extra} vessel.script={enc}".replace("  ", " ")
    return {
        "vessel": [lib.vessel_bin(), "run", "--kernel", str(kernel), "--initrd", str(initrd), "--memory", "512M",
                   "--cpus", str(cpus), "--append", append, "--serial", f"file:{out_dir}/vessel.out"],
        "qemu": ["qemu-system-x86_64", "-accel", "tcg", "-M", "pc", "-m", "512", "-smp", str(cpus), "-net", "none",
                 "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
                 "-display", "none", "-monitor", "none", "-no-reboot", "-serial", f"file:{out_dir}/qemu.out"],
    }


def run_once(name, cmd, serial, phases, timeout=1800):
    """Runs one monitor to guest poweroff.  Returns None when the kernel
    did not boot, else {"wall": seconds, "cpu": [host CPU seconds per
    phase], "text": the console}."""
    serial.write_text("")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    while True:
        done = p.poll() is not None
        text = serial.read_text(errors="replace")
        while text.count(PAUSE) > len(samples) and not done:
            samples.append(lib.cpu_seconds(p.pid))   # the guest idles for a second after each marker
        if done:
            break
        if time.monotonic() - t0 > timeout:
            p.kill()
            p.wait()
            sys.exit(f"{name}: no poweroff after {timeout} s")
        time.sleep(0.01)
    wall = time.monotonic() - t0
    err = p.stderr.read()
    text = serial.read_text(errors="replace")
    if "VESSEL-SCRIPT-BEGIN" not in text:
        return None
    if p.returncode != 0 or "VESSEL-SCRIPT-END rc=0" not in text or len(samples) != 2 * phases:
        sys.exit(f"{name}: bad run (exit {p.returncode}, {len(samples)} pauses seen): {err[-300:]} {text[-800:]}")
    return {"wall": wall, "cpu": [samples[2 * i + 1] - samples[2 * i] for i in range(phases)], "text": text}


def interleaved(cmds, out_dir, phases, runs, report=None):
    """runs rounds of every command in turn.  On a loaded host QEMU's guest
    sometimes fails the kernel's IO-APIC timer check at boot ("IO-APIC +
    timer doesn't work"): such a run is counted and run again.  Returns
    ({name: [run_once results]}, {name: failed boots})."""
    results = {name: [] for name in cmds}
    failed = {name: 0 for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            for _attempt in range(3):
                r = run_once(name, cmd, pathlib.Path(out_dir) / f"{name}.out", phases)
                if r:
                    break
                failed[name] += 1
            else:
                sys.exit(f"{name}: the guest did not boot 3 times in a row")
            if report:
                report(name, r)
            results[name].append(r)
    return results, failed
