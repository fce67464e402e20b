"""Helpers for integration tests that boot guests: the default Linux guest
(scripts/build-guest) and the small Multiboot guests in
tests/guests/multiboot, assembled on demand."""
import base64
import functools
import os
import pathlib
import re
import subprocess
import time

from conftest import ROOT

CACHE = pathlib.Path(os.environ.get("VESSEL_CACHE", pathlib.Path.home() / ".cache" / "vessel"))
MULTIBOOT = ROOT / "tests" / "guests" / "multiboot"


def assemble(name, out_dir, defines=()):
    out = pathlib.Path(out_dir) / f"{name}.bin"
    subprocess.run(["nasm", "-f", "bin", "-I", f"{MULTIBOOT}/", *[f"-D{d}" for d in defines], "-o", str(out),
                    str(MULTIBOOT / f"{name}.asm")], check=True)
    return out


@functools.cache
def linux_guest(variant=None):
    """(kernel, initrd) of the default guest, or of a variant of it
    (`scripts/build-guest --variant generic`: Debian's generic kernel, in
    its own folder of the cache), built if missing.  Asked once per test
    run: the script's up-to-date check asks apt for the kernel package's
    version, which takes seconds on a loaded machine."""
    cmd = [str(ROOT / "scripts" / "build-guest")] + (["--variant", variant] if variant else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    base = CACHE / variant if variant else CACHE
    return base / "vmlinuz", base / "initramfs.cpio.gz"


# cryptomgr.notests: the kernel's crypto self-tests are most of a boot on an
# emulated CPU and test nothing of vessel's; the tests skip them.
BASE_APPEND = "console=ttyS0 panic=-1 cryptomgr.notests"


def script_append(script):
    return BASE_APPEND + " vessel.script=" + base64.b64encode(script.encode()).decode()


def jit_args(jit=None):
    """--jit for a run: jit "on"/"off" as given, else the environment's
    VESSEL_TEST_JIT (1: on, 0: off), else no flag: the default, on.
    VESSEL_TEST_JIT=0 runs every Linux-guest test on the interpreter
    alone (docs/architecture.md "Code generation")."""
    if jit is None:
        env = os.environ.get("VESSEL_TEST_JIT")
        jit = None if env in (None, "") else ("off" if env == "0" else "on")
    return [] if jit is None else ["--jit", jit]


def linux_args(script=None, cpus=1, jit=None, variant=None):
    kernel, initrd = linux_guest(variant)
    append = script_append(script) if script is not None else BASE_APPEND
    return ["run", "--kernel", str(kernel), "--initrd", str(initrd), "--memory", "512M", "--cpus", str(cpus),
            "--append", append, *jit_args(jit)]


KERNEL_LOG_LINE = re.compile(r"^\[\s*\d+\.\d+\] ")


def script_output(console_text, kernel_log=True):
    """The lines the guest's script printed, and its exit status.  The
    console is shared with the kernel's log: kernel_log=False drops its
    lines ("[    4.41] ..."), which may land between the script's own, for
    scripts that print no log lines themselves."""
    begin = console_text.index("VESSEL-SCRIPT-BEGIN")
    end = console_text.index("VESSEL-SCRIPT-END rc=", begin)
    body = console_text[begin + len("VESSEL-SCRIPT-BEGIN"):end].replace("\r", "").strip("\n")
    rc = console_text[end:].split("=", 1)[1].split()[0]
    lines = body.splitlines()
    if not kernel_log:
        lines = [line for line in lines if not KERNEL_LOG_LINE.match(line)]
    return lines, rc


def wait_for_file_text(path, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False
