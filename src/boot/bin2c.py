#!/usr/bin/env python3
"""bin2c.py INPUT OUTPUT NAME: writes a C header defining
`static const unsigned char NAME[]` with INPUT's bytes and NAME_len."""
import sys

src, dst, name = sys.argv[1:4]
data = open(src, "rb").read()
with open(dst, "w") as f:
    f.write(f"/* Generated from {src.rsplit('/', 1)[-1]} by bin2c.py: do not edit. */\n")
    f.write(f"static const unsigned char {name}[{len(data)}] = {{\n")
    for i in range(0, len(data), 16):
        f.write("\t" + "".join(f"0x{b:02x}," for b in data[i:i + 16]) + "\n")
    f.write("};\n")
    f.write(f"static const unsigned int {name}_len = {len(data)}u;\n")
