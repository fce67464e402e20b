"""`vessel power-agent` against a mock of systemd-logind on a private
D-Bus (python3-dbusmock's logind template on a `dbus-daemon --session`
bus given to the agent as its system bus): the agent holds delay
inhibitors for sleep and shutdown; on PrepareForSleep(true) it applies
each registered VM's policy -- suspend (the Debian guest, which suspends
when its ACPI sleep button is pressed), save and pause (the counter
guest) -- and only then releases the inhibitor; PrepareForSleep(false)
brings every VM back.  A VM killed while the agent waits for it is
reported and the inhibitor still released in time; PrepareForShutdown
shuts a VM down; stale registry entries are dropped (docs/power.md)."""
import base64
import json
import os
import pathlib
import resource
import signal
import subprocess
import time

import dbus
import pytest

from conftest import run_vessel
from guests import BASE_APPEND, CACHE, assemble, linux_guest
from test_control_vm import counts, wait_for_counts

MANAGER = "org.freedesktop.login1.Manager"
BOOT_TIMEOUT = 900   # seconds; generous for a loaded 2-core machine


@pytest.fixture(scope="module")
def logind(tmp_path_factory):
    """(bus address, login1 mock object) on a private bus."""
    d = tmp_path_factory.mktemp("bus")
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, text=True)
    addr = daemon.stdout.readline().strip()
    assert addr, "dbus-daemon printed no address"
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=addr)
    mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "logind"], env=env,
                            stdout=open(d / "mock.log", "w"), stderr=subprocess.STDOUT)
    bus = dbus.bus.BusConnection(addr)
    deadline = time.monotonic() + 60
    while not bus.name_has_owner("org.freedesktop.login1"):
        assert mock.poll() is None and time.monotonic() < deadline, (d / "mock.log").read_text()
        time.sleep(0.1)
    obj = bus.get_object("org.freedesktop.login1", "/org/freedesktop/login1")
    # logind.conf's InhibitDelayMaxUSec, which bounds the agent's deadline.
    obj.AddProperty(MANAGER, "InhibitDelayMaxUSec", dbus.UInt64(40_000_000), dbus_interface="org.freedesktop.DBus.Mock")
    yield addr, obj
    mock.terminate()
    mock.wait(timeout=30)
    daemon.terminate()
    daemon.wait(timeout=30)


def held(obj):
    """The kinds of inhibitor vessel holds now ("sleep", "shutdown")."""
    return sorted(str(i[0]) for i in obj.ListInhibitors(dbus_interface=MANAGER) if str(i[1]) == "vessel")


def emit(obj, member, value):
    obj.EmitSignal(MANAGER, member, "b", [dbus.Boolean(value)], dbus_interface="org.freedesktop.DBus.Mock")


def wait_until(cond, what, timeout=60, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    pytest.fail(f"timed out waiting for {what}")


class Agent:
    def __init__(self, vessel_bin, tmp, logind, deadline):
        self.bin, self.reg, (self.addr, self.obj) = vessel_bin, tmp / "reg", logind
        self.reg.mkdir()
        self.env = dict(os.environ, VESSEL_REGISTRY_DIR=str(self.reg), DBUS_SYSTEM_BUS_ADDRESS=self.addr)
        self.log = tmp / "agent.log"
        self.vms = []
        self.p = subprocess.Popen([vessel_bin, "power-agent", "--deadline", str(deadline)], env=self.env,
                                  stdin=subprocess.DEVNULL, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_until(lambda: held(self.obj) == ["shutdown", "sleep"] or self.p.poll() is not None,
                   "the agent's inhibitors")
        assert self.p.poll() is None, self.log.read_text()

    def run(self, *args):
        """A VM registered in this agent's registry (socket made there)."""
        p = subprocess.Popen([self.bin, "run", *args], env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.vms.append(p)
        wait_until(lambda: (self.reg / f"vm-{p.pid}.json").exists() or p.poll() is not None, "the VM's entry")
        assert p.poll() is None, p.stderr.read()
        return p

    def status(self):
        r = run_vessel(self.bin, "power-agent", "status", "--json", env=self.env)
        assert r.returncode == 0, r.stderr
        return {v["name"]: v for v in json.loads(r.stdout)}

    def state(self, pid):
        return self.status()[f"vm-{pid}"]["state"]

    def text(self):
        return self.log.read_text()

    def close(self):
        self.p.terminate()
        assert self.p.wait(timeout=30) == 0, self.text()
        for st in self.status().values():
            if not st["stale"]:
                run_vessel(self.bin, "ctl", "--socket", st["socket"], "poweroff")
        for p in self.vms:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def counter(tmp_path):
    return assemble("counter", tmp_path)


def counter_vm(agent, counter, tmp, name, *policy):
    log = tmp / f"{name}.log"
    p = agent.run("--kernel", str(counter), "--memory", "64M", "--serial", f"file:{log}", *policy)
    wait_for_counts(log, 1)
    return p, log


# The Debian guest as the tests boot it, plus the ACPI button and evdev
# modules (from the kernel package scripts/build-guest fetched) in a
# second archive appended to its initramfs: the kernel unpacks both.
SUSPEND_ON_SLEEP_BUTTON = r"""
d=/lib/modules/$(uname -r)/kernel/drivers
insmod $d/acpi/button.ko 2>/dev/null
insmod $d/input/evdev.ko 2>/dev/null
ev=
for n in /sys/class/input/event*; do
	grep -q "Sleep Button" $n/device/name && ev=/dev/input/${n##*/}
done
(i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done) &
echo "SLEEP-BUTTON $ev"
# What logind or acpid does on KEY_SLEEP: suspend.  A press and its
# release are four input events of 24 bytes.  The device stays open, so
# that a press while the loop is not reading waits in its queue.
exec 3< $ev
while :; do
	head -c 96 <&3 >/dev/null
	echo "SUSPENDING-$(cat /tmp/count)"
	echo mem > /sys/power/state
	echo "RESUMED-$(cat /tmp/count)"
done
"""


def button_guest_args(d):
    """vessel run's arguments for that guest, its files made in d."""
    kernel, initrd = linux_guest()
    release = (CACHE / "kernel-release").read_text().strip()
    debs = sorted((CACHE / "work" / "debs").glob("linux-image-*.deb"))
    assert debs, "the kernel package is not in the guest cache: run scripts/build-guest"
    mods = [f"./lib/modules/{release}/kernel/drivers/acpi/button.ko",
            f"./lib/modules/{release}/kernel/drivers/input/evdev.ko"]
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(d), *mods], stdin=tar.stdout, check=True)
    assert tar.wait() == 0
    extra = subprocess.run("find lib | cpio -o -H newc --quiet | gzip", shell=True, cwd=d, check=True,
                           capture_output=True).stdout
    out = d / "initrd.gz"
    out.write_bytes(pathlib.Path(initrd).read_bytes() + extra)
    append = BASE_APPEND + " vessel.script=" + base64.b64encode(SUSPEND_ON_SLEEP_BUTTON.encode()).decode()
    return ["--kernel", str(kernel), "--initrd", str(out), "--memory", "512M", "--append", append]


@pytest.fixture(scope="module")
def button_guest(tmp_path_factory):
    return button_guest_args(tmp_path_factory.mktemp("button"))


def test_sleep_applies_each_policy_and_resume_brings_all_back(vessel_bin, logind, button_guest, counter, tmp_path):
    agent = Agent(vessel_bin, tmp_path, logind, deadline=60)
    try:
        deb_log = tmp_path / "debian.log"
        deb = agent.run(*button_guest, "--serial", f"file:{deb_log}", "--on-host-sleep", "suspend")
        snap = tmp_path / "saved.snap"
        saver, saver_log = counter_vm(agent, counter, tmp_path, "saver", "--on-host-sleep", "save",
                                      "--power-save-file", str(snap))
        pauser, _ = counter_vm(agent, counter, tmp_path, "pauser", "--on-host-sleep", "pause")
        # The smaller of --deadline and logind's InhibitDelayMaxUSec, less
        # the time the release takes.
        assert "deadline 39.8 s" in agent.text()
        wait_until(lambda: "SLEEP-BUTTON /dev/input/event" in deb_log.read_text(errors="replace"),
                   "the Debian guest's sleep-button handler", timeout=BOOT_TIMEOUT, step=0.5)
        assert {v["state"] for v in agent.status().values()} == {"running"}

        emit(agent.obj, "PrepareForSleep", True)
        wait_until(lambda: "sleep" not in held(agent.obj), "the sleep inhibitor's release", timeout=90)
        # Released only once every VM is where its policy puts it.
        assert held(agent.obj) == ["shutdown"]
        assert agent.state(deb.pid) == "suspended"
        assert agent.state(pauser.pid) == "paused"
        assert saver.wait(timeout=30) == 0, "the saved VM did not stop"
        assert snap.stat().st_size > 64 << 20
        saved_count = counts(saver_log)[-1][0]
        text = agent.text()
        assert f"vm-{deb.pid} (pid {deb.pid}): suspend -> suspended" in text, text
        assert f"vm-{saver.pid} (pid {saver.pid}): save -> saved" in text, text
        assert f"vm-{pauser.pid} (pid {pauser.pid}): pause -> paused" in text, text

        emit(agent.obj, "PrepareForSleep", False)
        wait_until(lambda: held(agent.obj) == ["shutdown", "sleep"], "the sleep inhibitor taken again", timeout=120)
        states = agent.status()
        assert [v["state"] for v in states.values()] == ["running"] * 3, states
        assert f"vm-{saver.pid}" not in states, "the saved VM's old entry is still there"
        assert agent.state(deb.pid) == "running" and agent.state(pauser.pid) == "running"
        # The guests go on from where they were: the Debian guest's
        # processes, the saved guest's count (restored, not rebooted).
        wait_until(lambda: "RESUMED-" in deb_log.read_text(errors="replace"), "the Debian guest's resume")
        wait_until(lambda: counts(saver_log) and counts(saver_log)[-1][0] > saved_count,
                   "the restored counter counting on")
        assert counts(saver_log)[0][0] >= saved_count, "the restored guest started over"
        assert "dropped" not in deb_log.read_text(errors="replace")
    finally:
        agent.close()


# A process that registers itself as a VM with the suspend policy and
# answers the control API as a running VM does; asked to sleep, it
# closes its sockets and exits half a second later, as a killed VM's
# sockets close before its process is gone.
FAKE_VM = r"""
import json, os, socket, sys, time
sock_path, reg = sys.argv[1:3]
srv = socket.socket(socket.AF_UNIX)
srv.bind(sock_path)
srv.listen()
pid = os.getpid()
start = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
entry = {"name": f"vm-{pid}", "pid": pid, "start": start, "socket": sock_path,
         "on_host_sleep": "suspend", "on_host_shutdown": "none"}
with open(f"{reg}/vm-{pid}.json.tmp", "w") as f:
    json.dump(entry, f)
os.rename(f"{reg}/vm-{pid}.json.tmp", f"{reg}/vm-{pid}.json")
while True:
    conn, _ = srv.accept()
    conn.sendall(b'{"hello": "vessel", "api": 1}\n')
    for line in conn.makefile():
        cmd = json.loads(line)["cmd"]
        if cmd == "sleep":
            conn.sendall(b'{"ok": true, "result": {}}\n')
            conn.shutdown(socket.SHUT_RDWR)
            srv.close()
            time.sleep(0.5)
            os._exit(0)
        conn.sendall(json.dumps({"ok": True, "result": {"state": "running"}}).encode() + b"\n")
"""


def test_vm_whose_connection_closes_before_its_process_ends_is_gone(vessel_bin, logind, tmp_path):
    agent = Agent(vessel_bin, tmp_path, logind, deadline=20)
    vm = subprocess.Popen(["/usr/bin/python3", "-c", FAKE_VM, str(tmp_path / "fake.sock"), str(agent.reg)])
    try:
        wait_until(lambda: (agent.reg / f"vm-{vm.pid}.json").exists(), "the fake VM's entry")
        emit(agent.obj, "PrepareForSleep", True)
        wait_until(lambda: "sleep" not in held(agent.obj), "the sleep inhibitor's release", timeout=30)
        text = agent.text()
        assert f"vm-{vm.pid} (pid {vm.pid}): suspend -> gone" in text, text
        emit(agent.obj, "PrepareForSleep", False)
    finally:
        vm.kill()
        vm.wait(timeout=30)
        agent.close()


def test_vm_killed_mid_sequence_is_reported_and_the_inhibitor_released(vessel_bin, logind, counter, tmp_path):
    deadline = 20
    agent = Agent(vessel_bin, tmp_path, logind, deadline=deadline)
    try:
        # The counter guest ignores the sleep button: the agent waits for
        # a suspend that never comes, and the VM dies meanwhile.
        doomed, _ = counter_vm(agent, counter, tmp_path, "doomed", "--on-host-sleep", "suspend")
        pauser, _ = counter_vm(agent, counter, tmp_path, "pauser", "--on-host-sleep", "pause")
        t0 = time.monotonic()
        emit(agent.obj, "PrepareForSleep", True)
        wait_until(lambda: agent.state(pauser.pid) == "paused", "the other VM paused")
        doomed.send_signal(signal.SIGKILL)
        wait_until(lambda: "sleep" not in held(agent.obj), "the sleep inhibitor's release", timeout=deadline + 10)
        assert time.monotonic() - t0 < deadline, "the inhibitor was held past the agent's deadline"
        text = agent.text()
        assert f"vm-{doomed.pid} (pid {doomed.pid}): suspend -> gone" in text, text
        assert "went away" in text
        assert agent.state(pauser.pid) == "paused"
        emit(agent.obj, "PrepareForSleep", False)
        wait_until(lambda: agent.state(pauser.pid) == "running", "the paused VM resumed")
    finally:
        agent.close()


def test_a_guest_that_does_not_suspend_is_paused_at_the_deadline(vessel_bin, logind, counter, tmp_path):
    agent = Agent(vessel_bin, tmp_path, logind, deadline=2)
    try:
        stubborn, _ = counter_vm(agent, counter, tmp_path, "stubborn", "--on-host-sleep", "suspend")
        emit(agent.obj, "PrepareForSleep", True)
        wait_until(lambda: "sleep" not in held(agent.obj), "the sleep inhibitor's release", timeout=30)
        assert agent.state(stubborn.pid) == "paused"
        assert "did not suspend in time: paused instead" in agent.text()
        emit(agent.obj, "PrepareForSleep", False)
        wait_until(lambda: agent.state(stubborn.pid) == "running", "the VM resumed")
    finally:
        agent.close()


def test_shutdown_policy_and_stale_entries(vessel_bin, logind, counter, tmp_path):
    agent = Agent(vessel_bin, tmp_path, logind, deadline=30)
    try:
        # An entry left by a VM that died without removing it.
        gone = subprocess.Popen(["true"])
        gone.wait()
        (agent.reg / f"vm-{gone.pid}.json").write_text(
            json.dumps({"name": f"vm-{gone.pid}", "pid": gone.pid, "socket": str(agent.reg / "x.sock")}))
        assert agent.status()[f"vm-{gone.pid}"]["stale"]
        # The counter guest powers off on the ACPI power button.
        vm, _ = counter_vm(agent, counter, tmp_path, "down", "--on-host-shutdown", "shutdown")
        emit(agent.obj, "PrepareForShutdown", True)
        wait_until(lambda: "shutdown" not in held(agent.obj), "the shutdown inhibitor's release")
        assert vm.wait(timeout=30) == 0
        text = agent.text()
        assert f"vm-{vm.pid} (pid {vm.pid}): shutdown -> off" in text, text
        assert f"vm-{gone.pid}: stale registry entry (pid {gone.pid} is gone): removed" in text, text
        assert not (agent.reg / f"vm-{gone.pid}.json").exists()
    finally:
        agent.close()


def test_now_status_and_no_register(vessel_bin, counter, tmp_path):
    reg = tmp_path / "reg"
    env = dict(os.environ, VESSEL_REGISTRY_DIR=str(reg))
    log = tmp_path / "c.log"
    vm = subprocess.Popen([vessel_bin, "run", "--kernel", str(counter), "--memory", "64M", "--serial", f"file:{log}",
                           "--on-host-sleep", "pause", "--on-host-shutdown", "none"], env=env,
                          stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hidden = subprocess.Popen([vessel_bin, "run", "--kernel", str(counter), "--memory", "64M", "--serial", "none",
                               "--no-register", "--api-socket", str(tmp_path / "hidden.sock")], env=env,
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (reg / f"vm-{vm.pid}.json").exists(), "the VM's entry")
        wait_until(lambda: (tmp_path / "hidden.sock").exists(), "the unregistered VM's socket")
        wait_for_counts(log, 1)
        r = run_vessel(vessel_bin, "power-agent", "status", env=env)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["NAME", "PID", "STATE", "ON-SLEEP", "ON-SHUTDOWN", "SOCKET"]
        assert [l.split()[:5] for l in lines[1:]] == [[f"vm-{vm.pid}", str(vm.pid), "running", "pause", "none"]]
        r = run_vessel(vessel_bin, "power-agent", "--now", "sleep", env=env)
        assert r.returncode == 0, r.stderr
        assert f"vm-{vm.pid} (pid {vm.pid}): pause -> paused" in r.stderr
        assert run_vessel(vessel_bin, "ctl", "--socket", str(tmp_path / "hidden.sock"), "--json",
                          "status").stdout.count('"running"') == 1
        # Another process resumes what this one paused (the state file).
        r = run_vessel(vessel_bin, "power-agent", "--now", "resume", env=env)
        assert r.returncode == 0, r.stderr
        assert f"vm-{vm.pid} (pid {vm.pid}): running" in r.stderr
        # The shutdown policy none leaves it alone.
        r = run_vessel(vessel_bin, "power-agent", "--now", "shutdown", env=env)
        assert r.returncode == 0 and "none -> left" in r.stderr, r.stderr
        assert json.loads(run_vessel(vessel_bin, "power-agent", "status", "--json", env=env).stdout)[0]["state"] \
            == "running"
    finally:
        for p, sock in ((vm, reg / f"vm-{vm.pid}.sock"), (hidden, tmp_path / "hidden.sock")):
            run_vessel(vessel_bin, "ctl", "--socket", str(sock), "poweroff")
            p.wait(timeout=60)
    assert not list(reg.glob("vm-*")), "the VM left its entry or socket behind"


@pytest.mark.parametrize("args, words", [
    (["power-agent", "--now", "nap"], ["--now", "'nap'", "sleep, shutdown or resume"]),
    (["power-agent", "--deadline", "soon"], ["--deadline", "'soon'"]),
    (["power-agent", "status", "extra"], ["unexpected argument 'extra'"]),
    (["run", "--kernel", "k", "--on-host-sleep", "hibernate"], ["--on-host-sleep", "'hibernate'", "suspend, save"]),
    (["run", "--kernel", "k", "--on-host-shutdown", "save"], ["save policy needs a snapshot file"]),
])
def test_bad_usage_is_one_line(vessel_bin, args, words):
    r = run_vessel(vessel_bin, *args, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_no_bus_is_one_line(vessel_bin, tmp_path):
    env = dict(os.environ, VESSEL_REGISTRY_DIR=str(tmp_path), DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    r = run_vessel(vessel_bin, "power-agent", env=env)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "system bus" in r.stderr


def no_big_files():
    """A disk that fills up: the VM may write 4 MiB per file, no more
    (RLIMIT_FSIZE; SIGXFSZ ignored, so the write fails with EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_save_that_fails_pauses_and_keeps_the_old_snapshot(vessel_bin, counter, tmp_path):
    reg = tmp_path / "reg"
    env = dict(os.environ, VESSEL_REGISTRY_DIR=str(reg))
    old = tmp_path / "vm.snap"
    old.write_bytes(b"the old snapshot")
    log = tmp_path / "c.log"
    vm = subprocess.Popen([vessel_bin, "run", "--kernel", str(counter), "--memory", "64M", "--serial", f"file:{log}",
                           "--on-host-sleep", "save", "--power-save-file", str(old)], env=env,
                          stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=no_big_files)
    try:
        wait_until(lambda: (reg / f"vm-{vm.pid}.json").exists() or vm.poll() is not None, "the VM's entry")
        assert vm.poll() is None, vm.stderr.read()
        wait_for_counts(log, 1)
        r = run_vessel(vessel_bin, "power-agent", "--now", "sleep", env=env)
        assert r.returncode == 1, r.stderr
        assert f"vm-{vm.pid} (pid {vm.pid}): save -> paused" in r.stderr and "paused instead" in r.stderr, r.stderr
        assert old.read_bytes() == b"the old snapshot"
        assert not list(tmp_path.glob("vm.snap.tmp*")), "the half-written snapshot was left behind"
        assert vm.poll() is None
        assert json.loads(run_vessel(vessel_bin, "power-agent", "status", "--json", env=env).stdout)[0]["state"] \
            == "paused"
    finally:
        run_vessel(vessel_bin, "ctl", "--socket", str(reg / f"vm-{vm.pid}.sock"), "poweroff")
        vm.wait(timeout=60)


def kill_registered(*dirs):
    """Ends, by pid, every VM registered in dirs (the agent's relaunched
    VMs are nobody's children here), and waits until they are gone."""
    pids = []
    for d in dirs:
        for f in pathlib.Path(d).glob("vm-*.json"):
            try:
                pids.append(json.loads(f.read_text())["pid"])
            except (OSError, ValueError, KeyError):
                continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and
                               open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in pids),
               "the relaunched VMs' end", timeout=30)


def test_a_vm_restored_by_an_agent_with_its_own_registry_registers_there(vessel_bin, counter, tmp_path):
    """`power-agent --registry DIR`: the VMs it starts again from their
    snapshots must enter DIR, where it waits for them and where its next
    sequence looks, not the registry of its environment."""
    reg, elsewhere = tmp_path / "reg", tmp_path / "elsewhere"
    env = dict(os.environ, VESSEL_REGISTRY_DIR=str(reg))
    # The registry of the agent's environment is another one.
    agent_env = dict(os.environ, VESSEL_REGISTRY_DIR=str(elsewhere))
    log = tmp_path / "c.log"
    vm = subprocess.Popen([vessel_bin, "run", "--kernel", str(counter), "--memory", "64M", "--serial", f"file:{log}",
                           "--on-host-sleep", "save", "--power-save-file", str(tmp_path / "vm.snap")], env=env,
                          stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (reg / f"vm-{vm.pid}.json").exists() or vm.poll() is not None, "the VM's entry")
        assert vm.poll() is None, vm.stderr.read()
        wait_for_counts(log, 1)
        r = run_vessel(vessel_bin, "power-agent", "--registry", str(reg), "--deadline", "20", "--now", "sleep",
                       env=agent_env)
        assert r.returncode == 0 and f"vm-{vm.pid} (pid {vm.pid}): save -> saved" in r.stderr, r.stderr
        assert vm.wait(timeout=60) == 0
        # The restored VM writes to the agent's stderr: a file, which a
        # pipe's reader would wait on for as long as the VM runs.
        with open(tmp_path / "resume.log", "w") as out:
            rc = subprocess.run([vessel_bin, "power-agent", "--registry", str(reg), "--resume-deadline", "20", "--now",
                                 "resume"], env=agent_env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                timeout=120).returncode
        text = (tmp_path / "resume.log").read_text()
        assert rc == 0, text
        assert f"vm-{vm.pid} (pid {vm.pid}): running" in text and "restored as pid" in text, text
        stray = list(elsewhere.glob("vm-*.json"))
        assert not stray, "the restored VM registered in the environment's registry"
        st = json.loads(run_vessel(vessel_bin, "power-agent", "--registry", str(reg), "status", "--json",
                                   env=agent_env).stdout)
        assert [s["state"] for s in st if not s["stale"]] == ["running"], st
        run_vessel(vessel_bin, "ctl", "--socket", st[0]["socket"], "poweroff")
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()
        kill_registered(reg, elsewhere)
