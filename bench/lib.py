"""Shared helpers of the benchmarks: run commands side by side, take
medians, and rewrite one section of bench/RESULTS.md."""
import os
import pathlib
import platform
import re
import statistics
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"


def vessel_bin():
    return os.environ.get("VESSEL_BIN", str(ROOT / "build" / "vessel"))


def timed(cmd, timeout=600, **kw):
    """Runs cmd; returns (seconds, CompletedProcess)."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    return time.monotonic() - t0, p


def side_by_side(commands, runs=5, check=None):
    """Runs each named command `runs` times, interleaved so that machine
    load affects both alike.  Returns {name: [seconds...]}."""
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            secs, p = timed(cmd)
            if check:
                check(name, p)
            times[name].append(secs)
    return times


def host_description():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_section(name, body):
    """Replaces the section '## name' of RESULTS.md (or appends it)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nEach section is rewritten by the benchmark named in it.\n"
    section = f"## {name}\n\n{body.rstrip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def median(xs):
    return statistics.median(xs)
