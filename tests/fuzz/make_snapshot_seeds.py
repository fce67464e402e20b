#!/usr/bin/python3
"""Writes the seed snapshots of the snapshot fuzzer (tests/fuzz/corpus/snapshot):
small files in the format of src/vmm/snapshot_format.h (docs/snapshot.md) with
a CONFIG, a CPU, a DEVICE, a MEMORY and the END section, CRCs right.
    tests/fuzz/make_snapshot_seeds.py tests/fuzz/corpus/snapshot"""
import json, struct, zlib, sys
def crc(b): return zlib.crc32(b) & 0xffffffff
def header():
    h = struct.pack("<8sIIIIQII", b"VESSNAP\0", 1, 0x0a0b0c0d, 40, 104, 1700000000, 0, 0)
    return h[:-4] + struct.pack("<I", crc(h))
def section(typ, ver, off, payload, arg, name):
    s = struct.pack("<IIQQQII64s", typ, ver, off, len(payload), arg, crc(payload), 0, name.encode())
    return s[:36] + struct.pack("<I", crc(s)) + s[40:]
def build(cfg, cpu=True, mem=True, dev=True):
    out = bytearray(header())
    secs = []
    secs.append((1, 1, json.dumps(cfg).encode(), 0, "config"))
    if cpu:
        prefix = struct.pack("<IIIIII2I", 144, 280, 528, 2, 0, 0, 0, 0)
        secs.append((2, 1, prefix + bytes(144 + 280 + 528) + struct.pack("<IIQ", 0x10, 0, 123) * 2, 0, "cpu0"))
    if dev:
        secs.append((3, 1, b"\x01\x02\x03\x04" * 8, 0, "pit"))
    if mem:
        secs.append((4, 1, bytes(range(256)) * 16, 0x0, "ram0"))
    secs.append((5, 1, b"", 0, "end"))
    for typ, ver, payload, arg, name in secs:
        hdr_at = len(out)
        data_off = hdr_at + 104
        if typ == 4:
            data_off = (data_off + 4095) & ~4095
        out += section(typ, ver, data_off, payload, arg, name)
        out += bytes(data_off - len(out)) + payload
    return bytes(out)
cfg = {"engine": "emu", "cpus": 1, "memory": 16 << 20, "numa_nodes": 0, "regions": [{"gpa": 0, "size": 16 << 20}, {"gpa": 0xffff0000, "size": 0x10000}],
       "devices": [{"type": "mailbox", "id": "m1", "params": {"port": 1296, "irq": 5}}], "plugin_dirs": ["/p"]}
d = sys.argv[1]
open(f"{d}/full.snap", "wb").write(build(cfg))
open(f"{d}/config-only.snap", "wb").write(build({"cpus": 2, "memory": 1 << 30, "regions": []}, cpu=False, mem=False, dev=False))
