"""`vessel ctl` against the control API.  Until `vessel run` serves the API
of a running guest, the server side is control-fake-vm: the real API server
(src/vmm/api.c) over a fake VM with the example plug-in."""
import json
import os
import select
import shutil
import socket
import subprocess

import pytest

from conftest import run_vessel


@pytest.fixture
def fake_vm(build_dir, tmp_path):
    exe = build_dir / "tests" / "unit" / "vmm" / "control-fake-vm"
    plugin = build_dir / "plugins" / "device-example" / "device-example.so"
    if not exe.exists():
        pytest.fail(f"{exe} missing: run `make build` first")
    sock = tmp_path / "vm.sock"
    proc = subprocess.Popen([str(exe), str(sock), str(plugin)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready and proc.stdout.readline().strip() == "ready", proc.stderr.read()
    yield sock
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def ctl(vessel_bin, sock, *args, **kw):
    return run_vessel(vessel_bin, "ctl", "--socket", str(sock), *args, timeout=60, **kw)


def test_status_readable_and_json(vessel_bin, fake_vm):
    r = ctl(vessel_bin, fake_vm, "status")
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert fields["state"] == "running"
    assert fields["api"] == "1"
    assert fields["engine"] == "fake"
    r = ctl(vessel_bin, fake_vm, "--json", "status")
    reply = json.loads(r.stdout)
    assert reply["ok"] is True and reply["result"]["state"] == "running"


def test_pause_resume_and_error_exit_1(vessel_bin, fake_vm):
    assert ctl(vessel_bin, fake_vm, "pause").stdout == "ok\n"
    assert "state: paused" in ctl(vessel_bin, fake_vm, "status").stdout
    r = ctl(vessel_bin, fake_vm, "pause")
    assert r.returncode == 1
    assert r.stderr == "vessel ctl: cannot pause: the VM is paused\n"
    r = ctl(vessel_bin, fake_vm, "--json", "pause")
    assert r.returncode == 1
    assert json.loads(r.stdout)["error"]["code"] == "invalid-state"
    assert ctl(vessel_bin, fake_vm, "resume").returncode == 0
    assert "state: running" in ctl(vessel_bin, fake_vm, "status").stdout


def test_device_add_list_remove(vessel_bin, fake_vm):
    dev = '{"type": "mailbox", "id": "mb0", "params": {"port": 1536, "label": "test"}}'
    r = ctl(vessel_bin, fake_vm, "device", "add", dev)
    assert (r.returncode, r.stdout) == (0, "added mb0\n"), r.stderr
    r = ctl(vessel_bin, fake_vm, "device", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "TYPE", "PLUGIN"]
    row = lines[1].split()
    assert row[:5] == ["mb0", "mailbox", "device-example", "pio=0x600", "irq=0x5"]
    assert json.loads(row[5]) == {"irq": 5, "irq_enabled": True, "label": "test", "port": 1536}
    r = ctl(vessel_bin, fake_vm, "device", "add", '{"type": "mailbox", "id": "mb1", "params": {"port": 1540}}')
    assert r.returncode == 1
    assert "overlaps mb0" in r.stderr
    r = ctl(vessel_bin, fake_vm, "device", "add", '{"type": "toaster", "id": "t"}')
    assert r.returncode == 1
    assert r.stderr == "vessel ctl: device t: no device type 'toaster' (see `vessel plugin list`)\n"
    r = ctl(vessel_bin, fake_vm, "stats")
    assert r.returncode == 0
    assert "traps:" in r.stdout and "BUS" in r.stdout
    assert any(line.split()[:2] == ["pio", "mb0"] for line in r.stdout.splitlines())
    assert ctl(vessel_bin, fake_vm, "device", "remove", "mb0").stdout == "removed mb0\n"
    assert len(ctl(vessel_bin, fake_vm, "device", "list").stdout.splitlines()) == 1
    assert ctl(vessel_bin, fake_vm, "device", "remove", "mb0").returncode == 1


def test_save_sends_an_absolute_path(vessel_bin, fake_vm, tmp_path):
    r = ctl(vessel_bin, fake_vm, "save", "vm.snap", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"saved {tmp_path}/vm.snap\n"


def test_events_stream_until_the_vm_goes_away(vessel_bin, fake_vm):
    ev = subprocess.Popen([vessel_bin, "ctl", "--socket", str(fake_vm), "events"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([ev.stdout], [], [], 30)
        assert ready
        assert ev.stdout.readline().startswith("state: running (streaming events")
        assert ctl(vessel_bin, fake_vm, "pause").returncode == 0
        assert ctl(vessel_bin, fake_vm, "powerdown").returncode == 1  # paused: refused
        assert ctl(vessel_bin, fake_vm, "resume").returncode == 0
        assert ctl(vessel_bin, fake_vm, "powerdown").returncode == 0
        assert ctl(vessel_bin, fake_vm, "poweroff").returncode == 0
        out, err = ev.communicate(timeout=30)
    finally:
        if ev.poll() is None:
            ev.kill()
    transitions = [line.split(" ", 1)[1] for line in out.splitlines()]
    assert transitions == [
        "running -> paused (control API: pause)",
        "paused -> running (control API: resume)",
        "running -> powering-down (control API: ACPI power button)",
        "powering-down -> tearing-down (control API: poweroff)",
        "tearing-down -> off",
    ]
    assert ev.returncode == 0, err


@pytest.mark.parametrize("args, message", [
    (["status"], "no socket: give --socket PATH or set VESSEL_API_SOCKET"),
    (["--socket", "x", "frob"], "unknown command 'frob'"),
    (["--socket", "x", "save"], "save needs one FILE"),
    (["--socket", "x", "device", "add", "{bad"], "device add: not JSON"),
    (["--socket", "x", "pause", "now"], "pause takes no argument"),
    (["--socket", "x", "--timeout", "soon", "status"], "--timeout: 'soon' is not a number of seconds"),
])
def test_usage_errors_exit_2(vessel_bin, args, message):
    env = {k: v for k, v in os.environ.items() if k != "VESSEL_API_SOCKET"}
    r = run_vessel(vessel_bin, "ctl", *args, env=env)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_no_vm_listening_exit_1(vessel_bin, tmp_path):
    r = ctl(vessel_bin, tmp_path / "none.sock", "status")
    assert r.returncode == 1
    assert "cannot connect to" in r.stderr


def serve_once(path, hello):
    """A one-connection server that says `hello` and closes."""
    import socket
    import threading
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        conn.sendall(hello)
        conn.recv(4096)
        conn.close()
        srv.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_other_api_version_is_refused(vessel_bin, tmp_path):
    sock = tmp_path / "future.sock"
    t = serve_once(sock, b'{"hello": "vessel", "api": 2, "version": "9.0", "state": "running"}\n')
    r = ctl(vessel_bin, sock, "status")
    t.join(timeout=30)
    assert r.returncode == 1
    assert r.stderr == f"vessel ctl: {sock} speaks API version 2, this client version 1\n"


def test_not_a_vessel_socket(vessel_bin, tmp_path):
    sock = tmp_path / "other.sock"
    t = serve_once(sock, b"SSH-2.0-OpenSSH\r\n")
    r = ctl(vessel_bin, sock, "--timeout", "5", "status")
    t.join(timeout=30)
    assert r.returncode == 1
    assert "no hello from the VM (not a vessel API socket?)" in r.stderr


@pytest.mark.skipif(not shutil.which("socat"), reason="socat is not installed (scripts/setup installs it)")
@pytest.mark.parametrize("request_text", ['{"cmd": "status", "id": 1}\n', '{"cmd": "status", "id": 1}'])
def test_reply_reaches_a_client_that_half_closes(fake_vm, request_text):
    """`echo REQUEST | socat - UNIX-CONNECT:sock` shuts its write side
    after the request, then reads: the reply must still come.  socat's
    -t gives the reply that long after the half-close."""
    r = subprocess.run(["socat", "-t", "20", "-", f"UNIX-CONNECT:{fake_vm}"], input=request_text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0]["hello"] == "vessel"
    assert len(lines) == 2, r.stdout
    assert lines[1]["ok"] is True and lines[1]["id"] == 1
    assert lines[1]["result"]["state"] == "running"


def test_poweroff_gets_through_when_every_slot_is_taken(vessel_bin, fake_vm):
    """Sixteen clients that connect and send nothing do not lock out
    `vessel ctl poweroff`: it lands on a slot reserved for control
    commands, which refuses anything else."""
    idle = []
    try:
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(fake_vm))
            s.settimeout(30)
            assert b'"hello"' in s.recv(4096)
            idle.append(s)
        r = ctl(vessel_bin, fake_vm, "device", "list")
        assert r.returncode == 1
        assert "reserved for control commands" in r.stderr
        r = ctl(vessel_bin, fake_vm, "status")
        assert r.returncode == 0, r.stderr
        r = ctl(vessel_bin, fake_vm, "poweroff")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "ok\n"
    finally:
        for s in idle:
            s.close()
