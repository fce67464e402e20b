"""`vessel run --trace`: the developer's execution trace.  Small Multiboot
guests run on the emu engine with each trace kind, and the trace must show
what the guest did: its instructions disassembled from the opcode table,
the blocks entered, its port and MMIO accesses, the interrupts delivered."""
import re
import signal
import subprocess

from conftest import ROOT, run_vessel
from guests import assemble, wait_for_file_text


def cpubench0(tmp_path):
    out = tmp_path / "cpubench0.bin"
    subprocess.run(["nasm", "-f", "bin", "-DROUNDS=0", "-o", str(out), str(ROOT / "bench/cpu/cpubench.asm")], check=True)
    return out


def test_insn_block_io_trace_of_a_guest(vessel_bin, tmp_path):
    trace = tmp_path / "trace.txt"
    r = run_vessel(vessel_bin, "run", "--kernel", str(cpubench0(tmp_path)), "--trace", "insn,block,io",
                   "--trace-file", str(trace), timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr   # debug exit with value 0
    lines = trace.read_text().splitlines()
    # The reset vector's first instruction, then the guest's last: the
    # write of 0 to the debug-exit port, as an instruction and as I/O.
    assert re.match(r"block cpu0 f000:000000000000fff0 mode 0 insns \d+$", lines[0]), lines[0]
    assert lines[1].startswith("insn  cpu0 f000:000000000000fff0 jmp "), lines[1]
    assert re.match(r"insn  cpu0 0008:[0-9a-f]{16} out 0xf4,al$", lines[-2]), lines[-2]
    assert lines[-1] == "io    cpu0 out port 0x00f4 size 1 data 0", lines[-1]
    # The checksum line went out through COM1, one byte per OUT.
    sent = [int(m.group(1), 16) for m in re.finditer(r"io    cpu0 out port 0x03f8 size 1 data (0x[0-9a-f]+|0)",
                                                     "\n".join(lines))]
    assert bytes(sent).decode().startswith("cpubench checksum"), sent[:20]
    assert any(re.match(r"insn  cpu0 0008:[0-9a-f]{16} loop 0x[0-9a-f]+$", x) for x in lines)
    assert any(x.startswith("insn  cpu0 0008:") and "wrmsr" in x for x in lines)


def test_each_kind_alone(vessel_bin, tmp_path):
    guest = cpubench0(tmp_path)
    for kind, prefix in (("insn", "insn  "), ("block", "block "), ("io", "io    ")):
        trace = tmp_path / f"{kind}.txt"
        r = run_vessel(vessel_bin, "run", "--kernel", str(guest), "--trace", kind, "--trace-file", str(trace),
                       timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 1, r.stderr
        lines = trace.read_text().splitlines()
        assert lines and all(x.startswith(prefix) for x in lines), (kind, lines[:3])


def test_irq_and_mmio_trace(vessel_bin, tmp_path):
    """pit_ticks takes PIT interrupts through the I/O APIC as vector 0x30
    and acknowledges each with a LAPIC EOI (an MMIO write)."""
    guest = assemble("pit_ticks", tmp_path)
    trace, log = tmp_path / "trace.txt", tmp_path / "serial.log"
    p = subprocess.Popen([vessel_bin, "run", "--kernel", str(guest), "--serial", f"file:{log}", "--trace", "irq,io",
                          "--trace-file", str(trace)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert wait_for_file_text(log, "ticks 00000014", 60), log.read_text() if log.exists() else ""
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    text = trace.read_text()
    irqs = re.findall(r"^irq   cpu0 vector 0x30$", text, re.M)
    assert len(irqs) >= 20, text[-500:]
    assert re.search(r"^mmio  cpu0 write 0xfee000b0 size 4 data 0$", text, re.M), text[-500:]


def test_bad_kind_is_a_usage_error(vessel_bin, tmp_path):
    r = run_vessel(vessel_bin, "run", "--kernel", str(cpubench0(tmp_path)), "--trace", "insn,bogus")
    assert r.returncode == 2
    assert "unknown kind 'bogus'" in r.stderr
    r = run_vessel(vessel_bin, "run", "--kernel", str(cpubench0(tmp_path)), "--trace-file", str(tmp_path / "t"))
    assert r.returncode == 2
    assert "--trace-file needs --trace" in r.stderr
