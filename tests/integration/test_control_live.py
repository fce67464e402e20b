"""The control plane on a running guest: `vessel run --api-socket` with a
bare-metal guest that keeps writing to the example plug-in's mailbox,
driven by `vessel ctl`: status, stats, pause/resume, events, devices added
and removed live, save, and `vessel run --restore`.

Run on each engine that can run here (kvm needs /dev/kvm)."""
import json
import os
import pathlib
import subprocess
import time

import pytest

from conftest import run_vessel

TICKER = r"""
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, load_end, load_end, start
start:	cli
	mov esp, 0x90000
	mov esi, msg
	mov dx, 0x3f8
.p:	lodsb
	test al, al
	jz .go
	out dx, al
	jmp .p
.go:	xor ebx, ebx
.loop:	inc ebx                  ; post 1, 2, 3... to the mailbox DATA register
	mov dx, 0x710
	mov eax, ebx
	out dx, eax
	mov ecx, 100000
.spin:	loop .spin
	jmp .loop
msg:	db "ticker ready", 10, 0
load_end:
"""

PORT = 0x710


def kvm_usable():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def ticker(tmp_path_factory):
    d = tmp_path_factory.mktemp("ticker")
    (d / "ticker.asm").write_text(TICKER)
    subprocess.run(["nasm", "-f", "bin", "-o", str(d / "ticker.bin"), str(d / "ticker.asm")], check=True)
    return d / "ticker.bin"


def wait_for(pred, what, limit=60):
    """Polls pred; the limit only guards against a hang."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail(f"never {what}")


class Guest:
    def __init__(self, vessel_bin, build_dir, tmp, engine, *args):
        self.bin = vessel_bin
        self.sock = tmp / "vm.sock"
        self.serial = tmp / "serial.log"
        manifest = tmp / "vm.json"
        manifest.write_text(json.dumps({
            "engine": engine, "serial": f"file:{self.serial}", "api_socket": str(self.sock),
            "plugin_dirs": [str(build_dir / "plugins" / "device-example")],
        }))
        self.proc = subprocess.Popen([vessel_bin, "run", "--manifest", str(manifest), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def ctl(self, *args):
        return run_vessel(self.bin, "ctl", "--socket", str(self.sock), *args, timeout=120)

    def json(self, *args):
        r = self.ctl("--json", *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)["result"]

    def mailbox_writes(self):
        devs = self.json("stats")["devices"]
        return next(d["writes"] for d in devs if d["name"] == "mb0")

    def wait(self):
        """Waits for the VM process to end by itself."""
        _, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, err

    def finish(self):
        """Ends it whatever its state (clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


@pytest.fixture(params=["emu", "kvm"])
def engine(request):
    if request.param == "kvm" and not kvm_usable():
        pytest.skip("/dev/kvm cannot be opened here: the kvm engine cannot run")
    return request.param


def start(vessel_bin, build_dir, tmp, engine, *args, booted=True):
    g = Guest(vessel_bin, build_dir, tmp, engine, *args)
    # The socket exists before the guest runs when the API is served.
    if booted:
        wait_for(lambda: g.serial.exists() and "ticker ready" in g.serial.read_text() or g.proc.poll() is not None,
                 "saw the guest start")
    else:
        wait_for(lambda: g.sock.exists() or g.proc.poll() is not None, "saw the VM start")
    if not g.sock.exists():
        code, err = g.finish()
        if "cannot run guests" in err or code not in (None, -9, 0):
            pytest.fail(f"vessel run failed ({code}): {err}")
        pytest.skip("this `vessel run` does not serve the control API")
    return g


def test_live_control_of_a_running_guest(vessel_bin, build_dir, tmp_path, ticker, engine):
    g = start(vessel_bin, build_dir, tmp_path, engine, "--kernel", str(ticker), "--no-reboot")
    try:
        events = subprocess.Popen([vessel_bin, "ctl", "--socket", str(g.sock), "events"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        # Subscribed once it has printed the state line.
        assert events.stdout.readline().startswith("state: running")
        status = g.json("status")
        assert status["state"] == "running"
        # The manifest does not set jit: the emu engine's default, on.
        assert status.get("jit") is (True if engine == "emu" else None), status
        r = g.ctl("device", "add", json.dumps({"type": "mailbox", "id": "mb0", "params": {"port": PORT}}))
        assert r.stdout == "added mb0\n", r.stderr
        # The guest's port writes now reach the plug-in device.
        first = wait_for(g.mailbox_writes, "saw the guest write to the mailbox")
        wait_for(lambda: g.mailbox_writes() > first, "saw the guest keep writing")
        assert g.json("stats")["exits"]["io"] > 0
        # Paused: no guest progress at all.
        assert g.ctl("pause").returncode == 0
        held = g.mailbox_writes()
        time.sleep(0.5)
        assert g.mailbox_writes() == held, "a paused guest ran"
        assert g.ctl("resume").returncode == 0
        wait_for(lambda: g.mailbox_writes() > held, "saw the guest run again")
        # Removed while the guest writes to it: the port is unclaimed again.
        assert g.ctl("device", "remove", "mb0").returncode == 0
        assert all(d["name"] != "mb0" for d in g.json("stats")["devices"])
        assert g.ctl("poweroff").returncode == 0
        code, err = g.wait()
        assert code == 0, err
        out, _ = events.communicate(timeout=60)
        lines = [line.split(" ", 1)[1] for line in out.splitlines()]
        assert lines[:4] == ["device-added mb0 (mailbox)", "running -> paused (control API: pause)",
                             "paused -> running (control API: resume)", "device-removed mb0"], out
        # Then down to off, through the states the VM passes (powering-down
        # and/or tearing-down); the stream ends when the VM is gone.
        assert lines[4].startswith("running -> "), out
        assert lines[-1] == "tearing-down -> off", out
    finally:
        g.finish()


def test_save_and_restore_a_running_guest(vessel_bin, build_dir, tmp_path, ticker, engine):
    run1 = tmp_path / "run1"
    run1.mkdir()
    g = start(vessel_bin, build_dir, run1, engine, "--kernel", str(ticker))
    snap = tmp_path / "ticker.snap"
    try:
        assert g.ctl("device", "add", json.dumps({"type": "mailbox", "id": "mb0", "params": {"port": PORT}})).returncode == 0
        wait_for(g.mailbox_writes, "saw the guest write to the mailbox")
        assert g.ctl("pause").returncode == 0
        r = g.ctl("save", str(snap))
        assert r.returncode == 0, r.stderr
        assert g.json("status")["state"] == "paused"
        assert g.ctl("poweroff").returncode == 0
        assert g.wait()[0] == 0
    finally:
        g.finish()
    # A new process resumes it: same device, the guest keeps posting.
    run2 = tmp_path / "run2"
    run2.mkdir()
    g = start(vessel_bin, build_dir, run2, engine, "--restore", str(snap), booted=False)
    try:
        wait_for(lambda: g.json("status")["state"] == "running", "saw the restored VM run")
        devs = g.json("stats")
        assert any(d["name"] == "mb0" for d in devs["devices"])
        wait_for(g.mailbox_writes, "saw the restored guest write to the mailbox")
        assert "ticker ready" not in g.serial.read_text(), "the guest booted again instead of resuming"
        assert g.ctl("poweroff").returncode == 0
        assert g.wait()[0] == 0
    finally:
        g.finish()
