"""virtio-console (docs/virtio.md) with Debian's virtio_console driver:
`--console virtio` makes the guest's hvc0 the console (console=hvc0): the
guest's shell reads a command typed on vessel's standard input and its
answer comes back on vessel's standard output, and Ctrl-A x quits as on
the serial console."""
import subprocess
import threading
import time

from guests import linux_guest

BOOT_TIMEOUT = 900


def test_shell_on_hvc0_runs_a_typed_command(vessel_bin):
    kernel, initrd = linux_guest()
    p = subprocess.Popen([vessel_bin, "run", "--kernel", str(kernel), "--initrd", str(initrd), "--memory", "512M",
                          "--append", "console=hvc0 panic=-1 cryptomgr.notests", "--console", "virtio"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()

    def reader():
        while True:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            out.extend(chunk)

    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def wait_for(needle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in out:
                return True
            if p.poll() is not None:
                break
            time.sleep(0.2)
        return needle in out

    try:
        assert wait_for(b"starting a shell", BOOT_TIMEOUT), bytes(out[-3000:]).decode(errors="replace")
        # The answer is computed in the guest, so only a command that ran
        # prints it; the tty is hvc0.
        answer = False
        for _ in range(30):
            p.stdin.write(b"echo ANSWER-$((6*7)) $(basename $(tty))\n")
            p.stdin.flush()
            if wait_for(b"ANSWER-42 hvc0", 10):
                answer = True
                break
        assert answer, bytes(out[-3000:]).decode(errors="replace")
        p.stdin.write(b"\x01x")   # Ctrl-A x: quit, as on the serial console
        p.stdin.flush()
        rc = p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    t.join(timeout=10)
    assert rc == 4, (rc, p.stderr.read().decode(errors="replace"))
