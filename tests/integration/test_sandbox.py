"""The sandbox of a running VM (docs/security.md "Sandbox"): every thread
of `vessel run` is under the seccomp filter, with no_new_privs and no
capabilities, unless --sandbox off (or the manifest's "sandbox": false)
asks otherwise.  That a forbidden call ends the process is checked by
tests/unit/vmm/test_sandbox.c; every other integration test runs inside
the sandbox, which is the default."""
import json
import os
import pathlib
import subprocess
import time

import pytest

from conftest import run_vessel

IDLE = r"""
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, load_end, load_end, start
start:	cli
	mov esi, msg
	mov dx, 0x3f8
.p:	lodsb
	test al, al
	jz .idle
	out dx, al
	jmp .p
.idle:	pause
	jmp .idle
msg:	db "idle ready", 10, 0
load_end:
"""


def kvm_usable():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    d = tmp_path_factory.mktemp("idle")
    (d / "idle.asm").write_text(IDLE)
    subprocess.run(["nasm", "-f", "bin", "-o", str(d / "idle.bin"), str(d / "idle.asm")], check=True)
    return d / "idle.bin"


@pytest.fixture(params=["emu", "kvm"])
def engine(request):
    if request.param == "kvm" and not kvm_usable():
        pytest.skip("/dev/kvm cannot be opened here: the kvm engine cannot run")
    return request.param


def status(path):
    fields = {}
    for line in pathlib.Path(path).read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def threads_status(pid):
    return {t.name: status(t / "status") for t in pathlib.Path(f"/proc/{pid}/task").iterdir()}


def run_until_ready(vessel_bin, tmp_path, *args):
    """Starts a VM with the control API and waits for the guest's line;
    returns the process, the API socket."""
    sock, log = tmp_path / "vm.sock", tmp_path / "serial.log"
    p = subprocess.Popen([vessel_bin, "run", *args, "--api-socket", str(sock), "--serial", f"file:{log}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while time.monotonic() < end and p.poll() is None:
        if log.exists() and "idle ready" in log.read_text():
            return p, sock
        time.sleep(0.05)
    p.kill()
    pytest.fail(f"the guest did not start: {p.communicate()[1]}")


def poweroff(vessel_bin, p, sock):
    r = run_vessel(vessel_bin, "ctl", "--socket", str(sock), "poweroff")
    assert r.returncode == 0, r.stderr
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return err


def test_every_thread_of_a_running_vm_is_sandboxed(vessel_bin, tmp_path, idle, engine):
    p, sock = run_until_ready(vessel_bin, tmp_path, "--engine", engine, "--kernel", str(idle), "--cpus", "2")
    try:
        threads = threads_status(p.pid)
        # main, the control API, the timer and two vCPUs at least
        assert len(threads) >= 5, threads.keys()
        for tid, st in threads.items():
            assert st["Seccomp"] == "2", (tid, st["Seccomp"])
            assert st["NoNewPrivs"] == "1", (tid, st["NoNewPrivs"])
            assert int(st["CapEff"], 16) == 0, (tid, st["CapEff"])
            assert int(st["CapPrm"], 16) == 0, (tid, st["CapPrm"])
        # Inside the filter, the control API still works: a snapshot is
        # written (a new file, renamed into place) and the VM powers off.
        snap = tmp_path / "idle.snap"
        r = run_vessel(vessel_bin, "ctl", "--socket", str(sock), "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert snap.stat().st_size > 0
        poweroff(vessel_bin, p, sock)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_reboot_inside_the_sandbox(vessel_bin, tmp_path, idle):
    """A reset rebuilds the machine inside the filter (memory, threads,
    the kernel read again)."""
    p, sock = run_until_ready(vessel_bin, tmp_path, "--kernel", str(idle))
    try:
        log = tmp_path / "serial.log"
        assert run_vessel(vessel_bin, "ctl", "--socket", str(sock), "reset").returncode == 0
        end = time.monotonic() + 60
        while time.monotonic() < end and log.read_text().count("idle ready") < 2:
            assert p.poll() is None, p.communicate()[1]
            time.sleep(0.05)
        assert log.read_text().count("idle ready") >= 2
        assert status(f"/proc/{p.pid}/status")["Seccomp"] == "2"
        poweroff(vessel_bin, p, sock)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


@pytest.mark.parametrize("how", ["flag", "manifest"])
def test_sandbox_off(vessel_bin, tmp_path, idle, how):
    if how == "flag":
        args = ["--kernel", str(idle), "--sandbox", "off"]
    else:
        manifest = tmp_path / "vm.json"
        manifest.write_text(json.dumps({"kernel": str(idle), "sandbox": False}))
        args = ["--manifest", str(manifest)]
    mine = status("/proc/self/status")
    p, sock = run_until_ready(vessel_bin, tmp_path, *args)
    try:
        st = status(f"/proc/{p.pid}/status")
        # As this test runner's: no filter of vessel's own on top.
        assert st["Seccomp_filters"] == mine["Seccomp_filters"]
        assert st["NoNewPrivs"] == mine["NoNewPrivs"]
        assert st["CapEff"] == mine["CapEff"]
        poweroff(vessel_bin, p, sock)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_sandbox_flag_takes_on_or_off(vessel_bin, idle):
    r = run_vessel(vessel_bin, "run", "--kernel", str(idle), "--sandbox", "maybe", stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "--sandbox" in r.stderr and "maybe" in r.stderr


# A test-only device plug-in: a guest write to its port makes the vCPU
# thread that runs the device callback call socket(AF_INET), as code that
# took over a vCPU thread might.  Only this test builds and loads it.
PROBE_PLUGIN = r"""
#include <vessel/plugin.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int probe_create(const struct vessel_host *host, const union vessel_param_value *params, void **dev)
{
	(void)host; (void)params;
	*dev = malloc(1);
	return *dev ? 0 : -12;
}

static void probe_destroy(void *dev) { free(dev); }

static void probe_write(void *dev, uint32_t res, uint64_t off, uint32_t size, uint64_t value)
{
	(void)dev; (void)res; (void)off; (void)size; (void)value;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0)
		close(fd);
}

static const struct vessel_resource_spec probe_resources[] = { { VESSEL_RES_PIO, "regs", 0x720, NULL, 1, NULL } };

static const struct vessel_device_type probe_type = {
	.size = sizeof(struct vessel_device_type),
	.name = "sandbox-probe",
	.description = "makes a forbidden system call when the guest writes its port",
	.resources = probe_resources,
	.n_resources = 1,
	.create = probe_create,
	.destroy = probe_destroy,
	.write = probe_write,
};

VESSEL_PLUGIN_EXPORT("sandbox-probe", "1.0", "test only", &probe_type);
"""

# Says it is ready, writes the probe's port once, then idles.
PROBE_GUEST = r"""
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, load_end, load_end, start
start:	cli
	mov esi, msg
	mov dx, 0x3f8
.p:	lodsb
	test al, al
	jz .probe
	out dx, al
	jmp .p
.probe:	mov dx, 0x720
	out dx, al
	mov esi, after
	mov dx, 0x3f8
.q:	lodsb
	test al, al
	jz .idle
	out dx, al
	jmp .q
.idle:	pause
	jmp .idle
msg:	db "idle ready", 10, 0
after:	db "probe done", 10, 0
load_end:
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    from conftest import ROOT
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_PLUGIN)
    plugins = d / "plugins"
    plugins.mkdir()
    r = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-fvisibility=hidden",
                        f"-I{ROOT / 'include'}", "-o", str(plugins / "sandbox-probe.so"), str(d / "probe.c")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (d / "guest.asm").write_text(PROBE_GUEST)
    subprocess.run(["nasm", "-f", "bin", "-o", str(d / "guest.bin"), str(d / "guest.asm")], check=True)
    return d / "guest.bin", plugins


def probe_manifest(tmp_path, probe, engine, sandbox):
    guest, plugins = probe
    manifest = tmp_path / "vm.json"
    manifest.write_text(json.dumps({
        "engine": engine, "kernel": str(guest), "sandbox": sandbox, "plugin_dirs": [str(plugins)],
        "devices": [{"type": "sandbox-probe", "id": "probe0"}],
    }))
    return manifest


def test_forbidden_call_on_a_vcpu_thread_ends_the_run(vessel_bin, tmp_path, probe, engine):
    log = tmp_path / "serial.log"
    r = run_vessel(vessel_bin, "run", "--manifest", str(probe_manifest(tmp_path, probe, engine, True)),
                   "--serial", f"file:{log}", stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 6, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if "sandbox" in line]
    assert len(lines) == 1, r.stderr
    assert "forbidden system call socket (number 41)" in lines[0]
    assert "--sandbox off" in lines[0]
    assert "idle ready" in log.read_text()
    assert "probe done" not in log.read_text()


def test_the_same_call_goes_through_with_the_sandbox_off(vessel_bin, tmp_path, probe):
    p, sock = run_until_ready(vessel_bin, tmp_path, "--manifest", str(probe_manifest(tmp_path, probe, "emu", False)))
    try:
        log = tmp_path / "serial.log"
        end = time.monotonic() + 60
        while time.monotonic() < end and "probe done" not in log.read_text():
            assert p.poll() is None, p.communicate()[1]
            time.sleep(0.05)
        assert "probe done" in log.read_text()
        poweroff(vessel_bin, p, sock)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
