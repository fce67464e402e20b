"""Shared helpers of the benchmarks: run commands side by side, take
medians, and rewrite one section of bench/RESULTS.md."""
import os
import pathlib
import gzip
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


def cpio_newc(files):
    """A cpio archive (newc format, the kernel's initramfs format) of
    files: [(name, mode, bytes)], directories with empty data."""
    out = bytearray()

    def entry(name, mode, data, ino):
        name_b = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate(files, 1):
        entry(name, mode, data, ino)
    entry("TRAILER!!!", 0, b"", 0)
    return bytes(out)


def cpu_seconds(pid):
    """CPU time of every thread of pid so far (schedstat: ns on CPU)."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass   # a thread that just ended
    return total / 1e9


def initrd_with_program(tmp, base, source, cflags=()):
    """The initramfs base with /bin/NAME, source (a C file) built static
    with the host's gcc, appended as a second (gzip) archive, which the
    kernel unpacks over the first."""
    source = pathlib.Path(source)
    exe = pathlib.Path(tmp) / source.stem
    subprocess.run(["gcc", "-O2", "-static", *cflags, "-o", str(exe), str(source)], check=True)
    extra = cpio_newc([("bin", 0o40755, b""), (f"bin/{source.stem}", 0o100755, exe.read_bytes())])
    initrd = pathlib.Path(tmp) / "initrd.gz"
    initrd.write_bytes(pathlib.Path(base).read_bytes() + gzip.compress(extra))
    return initrd
