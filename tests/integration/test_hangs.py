"""A VM that nobody reads or that is paused still obeys: console output
never blocks a vCPU (a stdout pipe nobody reads, a console socket client
that never reads), so pause, poweroff and signals keep working; a paused
VM ends on SIGTERM, SIGINT, SIGHUP and Ctrl-A x; the console socket is
0600 whatever the umask."""
import json
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import run_vessel

# Writes 'x' to COM1 for ever, as fast as it can.
FLOOD = r"""
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, load_end, load_end, start
start:	cli
	mov dx, 0x3f8
	mov al, 'x'
.l:	out dx, al
	jmp .l
load_end:
"""


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    d = tmp_path_factory.mktemp("flood")
    (d / "flood.asm").write_text(FLOOD)
    subprocess.run(["nasm", "-f", "bin", "-o", str(d / "flood.bin"), str(d / "flood.asm")], check=True)
    return d / "flood.bin"


def ctl(vessel_bin, sock, *args):
    return run_vessel(vessel_bin, "ctl", "--socket", str(sock), *args, timeout=60)


def wait_for(pred, what, p, limit=60):
    """Polls pred; the limit only guards against a hang."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        assert p.poll() is None, f"vessel ended ({p.returncode}) before it {what}"
        time.sleep(0.05)
    pytest.fail(f"vessel never {what}")


def start(vessel_bin, tmp_path, *args, stdin=subprocess.DEVNULL, umask=None):
    sock = tmp_path / "vm.sock"
    p = subprocess.Popen([vessel_bin, "run", *args, "--api-socket", str(sock)], stdin=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
    wait_for(sock.exists, "served the API", p)
    return p, sock


def dropped(vessel_bin, sock):
    r = ctl(vessel_bin, sock, "--json", "stats")
    if r.returncode != 0:
        return 0
    return json.loads(r.stdout)["result"].get("console", {}).get("dropped_bytes", 0)


def state(vessel_bin, sock):
    return json.loads(ctl(vessel_bin, sock, "--json", "status").stdout)["result"]["state"]


def finish(p):
    if p.poll() is None:
        p.kill()
    p.communicate(timeout=60)


def check_still_obeys(vessel_bin, p, sock):
    """pause, resume and poweroff all work, and the run ends with 0."""
    r = ctl(vessel_bin, sock, "pause")
    assert r.returncode == 0, r.stdout + r.stderr
    assert state(vessel_bin, sock) == "paused"
    assert ctl(vessel_bin, sock, "resume").returncode == 0
    assert ctl(vessel_bin, sock, "poweroff").returncode == 0
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return err.decode(errors="replace")


def test_stdout_pipe_nobody_reads(vessel_bin, tmp_path, flood):
    # stdout is a pipe this test never reads.
    p, sock = start(vessel_bin, tmp_path, "--kernel", str(flood))
    try:
        wait_for(lambda: dropped(vessel_bin, sock) > 0, "dropped console output", p)
        r = ctl(vessel_bin, sock, "stats")
        assert "bytes of output dropped" in r.stdout, r.stdout
        err = check_still_obeys(vessel_bin, p, sock)
        assert err.count("dropping") == 1, err   # warned once
    finally:
        finish(p)


def test_sigterm_with_stdout_nobody_reads(vessel_bin, tmp_path, flood):
    p, sock = start(vessel_bin, tmp_path, "--kernel", str(flood))
    try:
        wait_for(lambda: dropped(vessel_bin, sock) > 0, "dropped console output", p)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
        assert p.returncode == 4
    finally:
        finish(p)


def test_console_socket_client_never_reads(vessel_bin, tmp_path, flood):
    path = tmp_path / "console.sock"
    p, sock = start(vessel_bin, tmp_path, "--kernel", str(flood), "--serial", f"unix:{path}", umask=0)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Owner only, although the umask let everyone in.
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode)
        client.connect(str(path))
        wait_for(lambda: dropped(vessel_bin, sock) > 0, "dropped console output", p)
        check_still_obeys(vessel_bin, p, sock)
    finally:
        client.close()
        finish(p)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_paused_vm_ends_on_signal(vessel_bin, tmp_path, flood, sig):
    log = tmp_path / "serial.log"
    p, sock = start(vessel_bin, tmp_path, "--kernel", str(flood), "--serial", f"file:{log}")
    try:
        wait_for(lambda: log.exists() and log.stat().st_size > 0, "ran the guest", p)
        assert ctl(vessel_bin, sock, "pause").returncode == 0
        assert state(vessel_bin, sock) == "paused"
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 4, err
        assert b"quit" in err
    finally:
        finish(p)


def test_paused_vm_ends_on_ctrl_a_x(vessel_bin, tmp_path, flood):
    log = tmp_path / "serial.log"
    p, sock = start(vessel_bin, tmp_path, "--kernel", str(flood), "--serial", "stdio", stdin=subprocess.PIPE)
    try:
        assert ctl(vessel_bin, sock, "pause").returncode == 0
        assert state(vessel_bin, sock) == "paused"
        p.stdin.write(b"\x01x")
        p.stdin.flush()
        _, err = p.communicate(timeout=60)
        assert p.returncode == 4, err
    finally:
        finish(p)
