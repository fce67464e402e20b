"""virtio-net with Debian's own virtio_net driver (docs/virtio.md, issue 11):
the default guest gets its address by DHCP from user networking, fetches a
file from a TCP server on the host through it (checked by its hash),
resolves a name through user networking's DNS at 10.0.2.3, uploads
UPLOAD_MIB MiB to a host listener with busybox nc and downloads
DOWNLOAD_MIB MiB (each checked by its hash at both ends), a
forwarded host port reaches a listener in the guest, a tap interface
carries frames both ways, and a VM saved and restored with a network
opens new connections.  The sandbox is on (the default) in each.  The tap
test also uploads to the host and checks that compounding sends the
frames in fewer host submissions than frames."""
import hashlib
import http.server
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import run_vessel
from guests import linux_args, script_output, wait_for_file_text
from test_control_vm import ctl, start
from test_virtio import boot

BOOT_TIMEOUT = 900
PAYLOAD = os.urandom(3 * (1 << 20) + 12345)   # several MiB: many frames, both ways
# The guest's upload through user networking: several thousand frames each
# way, ended within UPLOAD_SECONDS.  A lost wake-up of the slirp thread once
# left uploads moving one TCP window per slirp timeout (about 128 KiB/s,
# ten times slower than the slowest seen on a loaded host: 12 MiB would
# take over 90 s); the bound catches it when the race hits early in the
# upload, which is chance; the unit test netdev_wakeup
# (tests/unit/vmm/test_net.c) catches the race itself every run.  A soak:
# VESSEL_TEST_NET_UPLOAD_MIB=100 VESSEL_TEST_NET_UPLOAD_SECONDS=600.
UPLOAD_MIB = int(os.environ.get("VESSEL_TEST_NET_UPLOAD_MIB", "12"))
UPLOAD_SECONDS = int(os.environ.get("VESSEL_TEST_NET_UPLOAD_SECONDS", "60"))
# The other way in the same boot: DOWNLOAD_MIB MiB streamed from the host
# into the guest's sha256sum (nothing stored: any size fits), thousands of
# frames into the receive ring, checked against the host's hash.  A soak
# both ways (the upload is stored in the guest's RAM first, the download
# is not): VESSEL_TEST_NET_UPLOAD_MIB=128 VESSEL_TEST_NET_DOWNLOAD_MIB=256
# VESSEL_TEST_NET_UPLOAD_SECONDS=900.
DOWNLOAD_MIB = int(os.environ.get("VESSEL_TEST_NET_DOWNLOAD_MIB", "8"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def blob_handler(data, more=None):
    """data at any path, or more[path] where given."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (more or {}).get(self.path, data)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    return Handler


def http_server(data, more=None):
    """A TCP server on the host (127.0.0.1, which the guest reaches as
    10.0.2.2) serving data at /blob (and more[path] at path); returns
    (server, port)."""
    srv = _Server(("127.0.0.1", 0), blob_handler(data, more))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


class Sink:
    """A TCP listener on the host (127.0.0.1, the guest's 10.0.2.2) that
    takes one connection, hashes `want` bytes and closes it, which ends
    the guest's nc."""

    def __init__(self, want, addr="127.0.0.1"):
        self.want, self.got, self.hash = want, 0, hashlib.sha256()
        self.sock = socket.socket()
        self.sock.bind((addr, 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        c, _ = self.sock.accept()
        with c:
            while self.got < self.want:
                b = c.recv(min(1 << 20, self.want - self.got))
                if not b:
                    break
                self.hash.update(b)
                self.got += len(b)


DNS_NAME = "vessel-dns.test"
DNS_ADDR = "10.9.8.7"


def dns_server(addr):
    """A DNS server on the host at addr:53 (UDP) that knows one name:
    DNS_NAME is DNS_ADDR (an A record); other names do not exist, other
    types of it have no record."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))

    def serve():
        while True:
            try:
                q, peer = s.recvfrom(512)
            except OSError:
                return
            if len(q) < 17:
                continue
            end = q.index(b"\0", 12) + 5   # the question: name, type, class
            labels, i = [], 12
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += 1 + q[i]
            qtype = struct.unpack(">H", q[end - 4:end - 2])[0]
            known = ".".join(labels).lower() == DNS_NAME
            answer = (b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(DNS_ADDR)
                      if known and qtype == 1 else b"")
            flags = 0x8180 if known else 0x8183   # a response, recursion available; NXDOMAIN
            s.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0) + q[12:end] + answer, peer)

    threading.Thread(target=serve, daemon=True).start()
    return s


def test_dhcp_address_a_file_fetched_from_the_host_dns_and_an_upload(vessel_bin, tmp_path):
    """User networking forwards the guest's DNS queries to the host's
    resolver, the first nameserver of /etc/resolv.conf (libslirp reads
    it).  This machine is offline: vessel runs in a mount namespace of
    its own whose /etc/resolv.conf names a DNS server the test runs on a
    loopback address (root, as for the tap test)."""
    big = os.urandom(1 << 20) * DOWNLOAD_MIB
    srv, port = http_server(PAYLOAD, {"/big": big})
    ns_addr = f"127.{os.getpid() % 200 + 20}.{os.getpid() // 200 % 250 + 1}.53"
    dns = dns_server(ns_addr)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {ns_addr}\n")
    sink = Sink(UPLOAD_MIB << 20)
    try:
        script = ("basename $(readlink /sys/class/net/eth0/device/driver)\n"
                  "cat /sys/class/net/eth0/address\n"
                  "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'\n"
                  "ip route | grep default\n"
                  f"wget -q -O /tmp/blob http://10.0.2.2:{port}/blob && sha256sum /tmp/blob\n"
                  f"nslookup {DNS_NAME} 10.0.2.3 | grep -A1 '^Name:' | tail -1\n"
                  "nslookup no-such-name.test 10.0.2.3 >/dev/null 2>&1 || echo NXDOMAIN\n"
                  f"dd if=/dev/urandom of=/tmp/up bs=64k count={UPLOAD_MIB * 16} 2>/dev/null && sha256sum /tmp/up\n"
                  f"timeout {UPLOAD_SECONDS} nc 10.0.2.2 {sink.port} < /tmp/up; echo UPLOAD rc=$?\n"
                  "rm /tmp/up\n"
                  f"timeout {UPLOAD_SECONDS} wget -q -O - http://10.0.2.2:{port}/big | sha256sum\n")
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv), vessel_bin,
                            *linux_args(script), "--net", "user,mac=52:54:00:ab:cd:ef"],
                           capture_output=True, text=True, timeout=BOOT_TIMEOUT)
    finally:
        srv.shutdown()
        dns.close()
        sink.sock.close()
    assert r.returncode == 0, f"rc={r.returncode}\nstderr:\n{r.stderr}\nconsole tail:\n{r.stdout[-3000:]}"
    lines, rc = script_output(r.stdout, kernel_log=False)
    assert rc == "0", lines
    assert lines[0] == "virtio_net", lines
    assert lines[1] == "52:54:00:ab:cd:ef", "the guest does not see the MAC the device offers"
    assert lines[2] == "inet 10.0.2.15/24", "no DHCP lease from user networking"
    assert "via 10.0.2.2" in lines[3], lines
    assert lines[4].split()[0] == hashlib.sha256(PAYLOAD).hexdigest(), "the file arrived changed"
    assert lines[5].split()[-1] == DNS_ADDR, f"the guest did not resolve {DNS_NAME} through 10.0.2.3: {lines}"
    assert lines[6] == "NXDOMAIN", lines
    assert lines[8] == "UPLOAD rc=0", f"the upload did not end within {UPLOAD_SECONDS} s: the host got " \
                                      f"{sink.got} of {UPLOAD_MIB << 20} bytes"
    assert sink.got == UPLOAD_MIB << 20 and lines[7].split()[0] == sink.hash.hexdigest(), \
        f"the upload arrived changed ({sink.got} bytes)"
    assert lines[9].split()[0] == hashlib.sha256(big).hexdigest(), \
        f"the {DOWNLOAD_MIB} MiB download arrived changed or cut short (within {UPLOAD_SECONDS} s)"


def test_forwarded_host_port_reaches_a_listener_in_the_guest(vessel_bin, tmp_path):
    port = free_port()
    secret = "vessel-hostfwd-" + os.urandom(6).hex()
    console = tmp_path / "console.txt"
    # The guest answers one connection on its port 7777 with the secret
    # and prints what the host sent.
    script = (f"echo {secret} > /tmp/answer\n"
              "echo LISTENING\n"
              "nc -l -p 7777 < /tmp/answer > /tmp/got\n"
              "echo GOT $(cat /tmp/got)\n")
    p = subprocess.Popen([vessel_bin, *linux_args(script), "--serial", f"file:{console}",
                          "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:7777"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_file_text(console, "LISTENING", BOOT_TIMEOUT), console.read_text(errors="replace")[-2000:]
        answer = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and secret.encode() not in answer:
            # nc -l may not be listening yet: slirp then closes the host's
            # connection at once; try again.
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                    s.sendall(b"from-the-host\n")
                    s.shutdown(socket.SHUT_WR)
                    answer = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        answer += chunk
            except OSError:
                pass
            if secret.encode() not in answer:
                time.sleep(1)
        assert secret.encode() in answer, f"the host read {answer!r} from the forwarded port"
        out, err = p.communicate(timeout=BOOT_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    lines, rc = script_output(console.read_text(errors="replace"), kernel_log=False)
    assert rc == "0" and "GOT from-the-host" in lines, lines


def ip(*args):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    assert r.returncode == 0, f"ip {' '.join(args)}: {r.stderr.strip()} (the tap test needs CAP_NET_ADMIN; " \
                              "tests/unit/vmm/test_net.c covers the backend without it)"


@pytest.fixture
def tap():
    """A host tap interface with 192.168.(100 + pid % 100).1/24 on it."""
    name = f"vtn{os.getpid() % 100000}"
    net = f"192.168.{100 + os.getpid() % 100}"
    ip("tuntap", "add", "dev", name, "mode", "tap")
    try:
        ip("addr", "add", f"{net}.1/24", "dev", name)
        ip("link", "set", name, "up")
        yield name, net
    finally:
        subprocess.run(["ip", "tuntap", "del", "dev", name, "mode", "tap"], capture_output=True)


# The upload over the tap: a few thousand frames, enough for the counts;
# more with VESSEL_TEST_NET_TAP_UPLOAD_MIB.
TAP_UPLOAD_MIB = int(os.environ.get("VESSEL_TEST_NET_TAP_UPLOAD_MIB", "4"))


def test_tap_interface_carries_a_connection_to_the_host(vessel_bin, tap):
    """Both ways over a tap: the guest downloads PAYLOAD from the host and
    uploads TAP_UPLOAD_MIB MiB to it, each checked by its hash.  With
    compounding (docs/compounding.md "Network") the upload's frames reach
    the tap in fewer host submissions than frames: a notification's
    frames in one io_uring_enter, and the frames the host sends are read
    several per io_uring_enter (the counts `vessel run -v` logs)."""
    name, net = tap
    # The host's end of the tap: the server listens on the tap's address.
    srv = _Server((f"{net}.1", 0), blob_handler(PAYLOAD))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    sink = Sink(TAP_UPLOAD_MIB << 20, f"{net}.1")
    try:
        script = ("ip link set eth0 up\n"
                  f"ip addr add {net}.2/24 dev eth0\n"
                  f"wget -q -O /tmp/blob http://{net}.1:{port}/blob && sha256sum /tmp/blob\n"
                  f"dd if=/dev/urandom of=/tmp/up bs=64k count={TAP_UPLOAD_MIB * 16} 2>/dev/null && sha256sum /tmp/up\n"
                  f"timeout {UPLOAD_SECONDS} nc {net}.1 {sink.port} < /tmp/up; echo UPLOAD rc=$?\n")
        # No DHCP server on the tap: vessel.nonet, the guest's init does not ask.
        args = linux_args(script)
        args[args.index("--append") + 1] += " vessel.nonet"
        r = run_vessel(vessel_bin, *args, "-v", "--net", f"tap,ifname={name}", timeout=BOOT_TIMEOUT)
    finally:
        srv.shutdown()
        sink.sock.close()
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stderr}\n{r.stdout[-3000:]}"
    lines, rc = script_output(r.stdout, kernel_log=False)
    assert rc == "0", lines
    assert lines[0].split()[0] == hashlib.sha256(PAYLOAD).hexdigest(), lines
    assert lines[2] == "UPLOAD rc=0", f"the host got {sink.got} of {TAP_UPLOAD_MIB << 20} bytes"
    assert sink.got == TAP_UPLOAD_MIB << 20 and lines[1].split()[0] == sink.hash.hexdigest(), \
        f"the upload arrived changed ({sink.got} bytes)"
    c = net_counts(r.stderr)
    # Thousands of frames out (the upload's segments, the download's
    # acknowledgements) in fewer write submissions than frames.
    assert c["tx_frames"] > 2000 and c["tx_submits"] + c["tx_writes"] < c["tx_frames"], c
    assert c["tx_submits"] > 0, c
    # In: the download, several frames per read submission, no read(2).
    assert c["rx_frames"] > 1000 and 0 < c["rx_submits"] < c["rx_frames"] and c["rx_reads"] == 0, c


def net_counts(stderr):
    """The network's counts `vessel run -v` logs at the end."""
    m = re.search(r"(\d+) network frames sent in (\d+) batches, (\d+) read from a tap in (\d+) batches "
                  r"\((\d+) io_uring submits and (\d+) tap writes out, (\d+) io_uring submits and (\d+) tap "
                  r"reads in, (\d+) wake-ups\)", stderr)
    assert m, stderr[-2000:]
    keys = ("tx_frames", "tx_batches", "rx_frames", "rx_batches", "tx_submits", "tx_writes", "rx_submits",
            "rx_reads", "wakes")
    return dict(zip(keys, (int(g) for g in m.groups())))


def test_saved_and_restored_guest_opens_a_new_connection(vessel_bin, tmp_path):
    """The guest tries the host's port every second; there is no server
    until the VM has been saved, ended and restored into a new process."""
    port = free_port()
    snap = tmp_path / "net.snap"
    script = ("echo READY $(ip -4 addr show eth0 | grep -o 'inet [0-9.]*')\n"
              f"until wget -q -O /tmp/blob http://10.0.2.2:{port}/blob 2>/dev/null; do sleep 1; done\n"
              "sha256sum /tmp/blob\n")
    args = linux_args(script)[1:]
    p, sock, log = start(vessel_bin, tmp_path, "first", *args, "--net", "user")
    try:
        assert wait_for_file_text(log, "READY inet 10.0.2.15", BOOT_TIMEOUT), log.read_text(errors="replace")[-2000:]
        time.sleep(2)   # a few refused connections
        r = ctl(vessel_bin, sock, "save", str(snap))
        assert r.returncode == 0, r.stderr
        assert ctl(vessel_bin, sock, "poweroff").returncode == 0
        assert p.wait(timeout=120) == 0
    finally:
        if p.poll() is None:
            p.kill()
    server = _Server(("127.0.0.1", port), blob_handler(PAYLOAD))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        q, sock2, log2 = start(vessel_bin, tmp_path, "second", "--restore", str(snap), "--net", "user")
        try:
            assert wait_for_file_text(log2, "VESSEL-SCRIPT-END", BOOT_TIMEOUT), \
                log2.read_text(errors="replace")[-2000:]
            assert q.wait(timeout=120) == 0
        finally:
            if q.poll() is None:
                q.kill()
    finally:
        server.shutdown()
    lines, rc = script_output(log.read_text(errors="replace") + log2.read_text(errors="replace"), kernel_log=False)
    assert rc == "0", lines
    assert lines[-1].split()[0] == hashlib.sha256(PAYLOAD).hexdigest(), lines
