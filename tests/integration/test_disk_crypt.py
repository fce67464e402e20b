"""Encrypted disks end to end (docs/disk-encryption.md).

vessel writes through the LUKS2 encryption filter; then the standard tool
(`cryptsetup luksDump`) reads the header and hands out the volume key for
the passphrase, and an independent AES-XTS implementation
(python3-cryptography) decrypts the data segment: it must equal what was
written.  Plus the failure cases: wrong passphrase, damaged header,
plug-in of another ABI version."""
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

FAST = "pbkdf=pbkdf2,pbkdf-iterations=1000"   # cheap keyslots: tests are not about PBKDF cost
PASSPHRASE = b"correct horse battery staple\n"  # a key file is used byte for byte
DATA_OFFSET = 2 << 20                          # where vessel puts the data segment
MASK = (1 << 64) - 1

needs_cryptsetup = pytest.mark.skipif(shutil.which("cryptsetup") is None,
                                      reason="cryptsetup is not installed")


def pattern(offset, length, seed):
    """What `vessel disk io` writes for `write OFFSET LENGTH SEED`."""
    out = bytearray()
    for s in range(offset // 512, (offset + length) // 512):
        out += ((seed * 0x9E3779B97F4A7C15 + s) & MASK).to_bytes(8, "little") * 64
    return bytes(out)


def vdisk(vessel_bin, *args, stdin=None, env=None):
    return subprocess.run([vessel_bin, "disk", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=120, env=env)


def ok(r):
    assert r.returncode == 0, f"rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr!r}"
    return r


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def luks_dump(path):
    r = subprocess.run(["cryptsetup", "luksDump", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def volume_key(path, passphrase):
    """The volume key as cryptsetup unlocks it, passphrase on stdin."""
    r = subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode",
                        "--key-file", "-", str(path)], input=passphrase, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    m = re.search(r"MK dump:((?:\s+(?:[0-9a-f]{2} ?)+\n?)+)", out)
    assert m, out
    return bytes.fromhex("".join(m.group(1).split()))


def xts_decrypt(key, data, first_sector):
    """aes-xts-plain64: each 512-byte sector with its number, little endian, as tweak."""
    out = bytearray()
    for i in range(0, len(data), 512):
        tweak = (first_sector + i // 512).to_bytes(16, "little")
        d = Cipher(algorithms.AES(key), modes.XTS(tweak)).decryptor()
        out += d.update(data[i:i + 512]) + d.finalize()
    return bytes(out)


def read_at(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


@pytest.fixture
def keyfile(tmp_path):
    p = tmp_path / "passphrase"
    p.write_bytes(PASSPHRASE)
    return p


@pytest.fixture
def badkey(tmp_path):
    p = tmp_path / "wrong"
    p.write_bytes(PASSPHRASE.rstrip(b"\n"))  # one byte short is another passphrase
    return p


def write_through_vessel(vessel_bin, image, keyfile, writes):
    cmds = "".join(f"write {o} {n} {s}\n" for o, n, s in writes) + "flush\n"
    r = ok(vdisk(vessel_bin, "io", "--key-file", keyfile, image, stdin=cmds))
    assert r.stdout.split() == ["ok"] * (len(writes) + 1)


def check_decrypts(image, writes, key):
    """Each write, read from the image file and decrypted independently."""
    for off, n, seed in writes:
        cipher = read_at(image, DATA_OFFSET + off, n)
        assert cipher != pattern(off, n, seed), "plaintext on disk"
        assert xts_decrypt(key, cipher, off // 512) == pattern(off, n, seed)


@needs_cryptsetup
def test_raw_encrypted_disk_is_standard_luks2(vessel_bin, tmp_path, keyfile):
    img = tmp_path / "disk.img"
    ok(vdisk(vessel_bin, "create", f"--encrypt={FAST}", "--key-file", keyfile, img, "8M"))
    assert img.stat().st_size == DATA_OFFSET + (8 << 20)
    writes = [(0, 65536, 7), (3 << 20, 8192, 11), ((8 << 20) - 4096, 4096, 5)]
    write_through_vessel(vessel_bin, img, keyfile, writes)

    dump = luks_dump(img)
    assert re.search(r"^Version:\s+2$", dump, re.M), dump
    assert re.search(r"offset: 2097152 \[bytes\]", dump), dump
    assert re.search(r"cipher: aes-xts-plain64", dump), dump
    assert re.search(r"sector: 512 \[bytes\]", dump), dump
    assert re.search(r"Key:\s+512 bits", dump), dump
    key = volume_key(img, PASSPHRASE)
    assert len(key) == 64
    check_decrypts(img, writes, key)

    # `vessel disk info` reads the same facts from the header, no passphrase.
    enc = json.loads(ok(vdisk(vessel_bin, "info", "--json", img)).stdout)["encryption"]
    uuid = re.search(r"^UUID:\s+(\S+)$", dump, re.M).group(1)
    assert enc == {"format": "luks2", "cipher": "aes-xts-plain64", "key-bits": 512, "sector-size": 512,
                   "data-offset": DATA_OFFSET, "data-size": 8 << 20, "keyslots": 1, "pbkdf": "pbkdf2",
                   "uuid": uuid}

    # Unwritten sectors read back as zeros through vessel.
    r = ok(vdisk(vessel_bin, "io", "--key-file", keyfile, img, stdin="read 1M 4K\n"))
    zero_hash = 0xcbf29ce484222325
    for _ in range(4096):
        zero_hash = (zero_hash * 0x100000001b3) & MASK
    assert r.stdout.split() == ["ok", f"{zero_hash:016x}"]


@needs_cryptsetup
@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
@pytest.mark.parametrize("vhd_type", ["dynamic", "fixed"])
def test_vhd_encrypted_disk_is_luks2_inside(vessel_bin, tmp_path, keyfile, vhd_type):
    """A VHD's virtual disk holds the LUKS2 volume: qemu-img unpacks the VHD,
    cryptsetup reads the result."""
    img, flat = tmp_path / "disk.vhd", tmp_path / "flat.raw"
    ok(vdisk(vessel_bin, "create", "--type", vhd_type, f"--encrypt={FAST}", "--key-file", keyfile, img, "16M"))
    writes = [(0, 4096, 3), (10 << 20, 131072, 9)]
    write_through_vessel(vessel_bin, img, keyfile, writes)
    if vhd_type == "dynamic":
        # Sparse: the header block and the written blocks only, not all 18 MiB.
        assert img.stat().st_blocks * 512 < 12 << 20
    r = subprocess.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(img), str(flat)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "cipher: aes-xts-plain64" in luks_dump(flat)
    check_decrypts(flat, writes, volume_key(flat, PASSPHRASE))


@needs_cryptsetup
def test_convert_encrypt_then_decrypt(vessel_bin, tmp_path, keyfile):
    plain, enc, back = tmp_path / "plain.img", tmp_path / "enc.img", tmp_path / "back.img"
    data = bytearray(os.urandom(4 << 20))
    data[1 << 20:2 << 20] = bytes(1 << 20)   # a zero run: must be real ciphertext too
    plain.write_bytes(data)
    ok(vdisk(vessel_bin, "convert", f"--encrypt={FAST}", "--key-file", keyfile, plain, enc))
    key = volume_key(enc, PASSPHRASE)
    on_disk = read_at(enc, DATA_OFFSET, len(data))
    assert xts_decrypt(key, on_disk, 0) == bytes(data)
    ok(vdisk(vessel_bin, "convert", "--decrypt", "--key-file", keyfile, enc, back))
    assert sha(back) == sha(plain)


@needs_cryptsetup
def test_wrong_passphrase_exit_2_nothing_written(vessel_bin, tmp_path, keyfile, badkey):
    img, out = tmp_path / "disk.img", tmp_path / "out.img"
    ok(vdisk(vessel_bin, "create", f"--encrypt={FAST}", "--key-file", keyfile, img, "4M"))
    write_through_vessel(vessel_bin, img, keyfile, [(0, 4096, 1)])
    before = sha(img)
    r = vdisk(vessel_bin, "io", "--key-file", badkey, img, stdin="write 0 4K 2\nflush\n")
    assert r.returncode == 2, r
    assert "wrong passphrase" in r.stderr
    assert r.stdout == ""
    r = vdisk(vessel_bin, "convert", "--decrypt", "--key-file", badkey, img, out)
    assert r.returncode == 2 and "wrong passphrase" in r.stderr, r
    assert not out.exists()
    assert sha(img) == before
    # cryptsetup agrees about both passphrases.
    assert subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode", "--key-file",
                           "-", str(img)], input=badkey.read_bytes(), capture_output=True).returncode != 0
    volume_key(img, PASSPHRASE)


def test_damaged_header(vessel_bin, tmp_path, keyfile):
    img = tmp_path / "disk.img"
    ok(vdisk(vessel_bin, "create", f"--encrypt={FAST}", "--key-file", keyfile, img, "4M"))
    write_through_vessel(vessel_bin, img, keyfile, [(0, 4096, 4)])
    with open(img, "r+b") as f:          # primary JSON area (LUKS2 on-disk format 2.1)
        f.seek(4096)
        f.write(b"\x00garbage" * 64)
    # The secondary header copy still opens it, with the data intact.
    r = ok(vdisk(vessel_bin, "io", "--key-file", keyfile, img, stdin="verify 0 4K 4\n"))
    assert r.stdout.split() == ["ok"]
    with open(img, "r+b") as f:          # secondary copy, after a 16 KiB metadata area
        f.seek(16384 + 4096)
        f.write(b"\x00garbage" * 64)
    before = sha(img)
    r = vdisk(vessel_bin, "io", "--key-file", keyfile, img, stdin="verify 0 4K 4\n")
    assert r.returncode == 2, r
    assert "LUKS2 header is damaged" in r.stderr
    assert sha(img) == before
    # Not a container at all.
    plain = tmp_path / "plain.img"
    ok(vdisk(vessel_bin, "create", plain, "4M"))
    r = vdisk(vessel_bin, "io", "--key-file", keyfile, plain, stdin="read 0 4K\n")
    assert r.returncode == 2 and "not a LUKS2 container" in r.stderr, r


def test_encrypt_needs_key_file(vessel_bin, tmp_path):
    img = tmp_path / "disk.img"
    r = vdisk(vessel_bin, "create", "--encrypt", img, "4M")
    assert r.returncode == 2 and "--key-file" in r.stderr, r
    assert not img.exists()



def test_fifo_key_file_is_refused_without_waiting_for_a_writer(vessel_bin, tmp_path):
    """Opening a FIFO for reading waits for a writer: the key file must be
    refused as not a regular file before that (issue 18, item 9)."""
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    img = tmp_path / "disk.img"
    ok(vdisk(vessel_bin, "create", img, "4M"))
    try:
        r = subprocess.run([vessel_bin, "disk", "io", "--key-file", str(fifo), str(img)], input="read 0 4K\n",
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("vessel disk io hangs on a FIFO as --key-file")
    assert r.returncode == 2, r
    assert f"key file {fifo}: not a regular file (a FIFO)" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["create", "convert"])
def test_two_different_key_files_are_refused(vessel_bin, tmp_path, keyfile, badkey, cmd):
    """--key-file A with --encrypt=...,key-file=B used B silently: a user
    who kept only A could never decrypt (issue 18, item 13)."""
    out = tmp_path / "out.img"
    if cmd == "create":
        args = ["create", f"--encrypt={FAST},key-file={badkey}", "--key-file", keyfile, out, "4M"]
    else:
        src = tmp_path / "plain.img"
        ok(vdisk(vessel_bin, "create", src, "4M"))
        args = ["convert", f"--encrypt={FAST},key-file={badkey}", "--key-file", keyfile, src, out]
    r = vdisk(vessel_bin, *args)
    assert r.returncode == 2, r
    assert "two key files" in r.stderr and str(keyfile) in r.stderr and str(badkey) in r.stderr, r.stderr
    assert not out.exists()

@needs_cryptsetup
def test_plugin_cipher_from_plugin_directory(vessel_bin, build_dir, tmp_path, keyfile):
    """The example plug-in (aes-cbc-plain64) found through
    the plug-in search path (crypt/NAME.so under a directory of
    $VESSEL_PLUGIN_PATH) encrypts the data segment; cryptsetup
    records it in the header; AES-CBC with plain64 IVs decrypts it."""
    plugdir = build_dir / "tests" / "unit" / "block" / "crypt_plugins" / "crypt"
    if not (plugdir / "aes-cbc-plain64.so").exists():
        pytest.fail(f"example plug-in not built in {plugdir}")
    img = tmp_path / "disk.img"
    opts = f"--encrypt=cipher=aes-cbc-plain64,key-size=256,{FAST}"
    r = vdisk(vessel_bin, "create", opts, "--key-file", keyfile, img, "4M")
    assert r.returncode == 2 and "no cipher 'aes-cbc-plain64'" in r.stderr, r
    assert not img.exists()
    env = dict(os.environ, VESSEL_PLUGIN_PATH=str(plugdir.parent))
    ok(vdisk(vessel_bin, "create", opts, "--key-file", keyfile, img, "4M", env=env))
    ok(vdisk(vessel_bin, "io", "--key-file", keyfile, img, stdin="write 8K 4K 6\nflush\n", env=env))
    assert "cipher: aes-cbc-plain64" in luks_dump(img)
    key = volume_key(img, PASSPHRASE)
    assert len(key) == 32
    cipher = read_at(img, DATA_OFFSET + 8192, 4096)
    plain = b""
    for i in range(8):
        iv = (16 + i).to_bytes(16, "little")
        d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain += d.update(cipher[i * 512:(i + 1) * 512]) + d.finalize()
    assert plain == pattern(8192, 4096, 6)


def test_plugin_of_other_abi_version_refused(vessel_bin, build_dir, tmp_path, keyfile):
    plugdir = build_dir / "tests" / "unit" / "block" / "crypt_plugins" / "crypt"
    env = dict(os.environ, VESSEL_PLUGIN_PATH=str(plugdir.parent))
    img = tmp_path / "disk.img"
    r = vdisk(vessel_bin, "create", f"--encrypt=cipher=test-badabi,key-size=128,{FAST}", "--key-file",
              keyfile, img, "4M", env=env)
    assert r.returncode == 2, r
    assert "built for VM Encryption API version 2, but this vessel has version 1" in r.stderr, r.stderr
    assert not img.exists()


@needs_cryptsetup
@pytest.mark.parametrize("sector_size", [512, 4096])
def test_container_made_by_cryptsetup(vessel_bin, tmp_path, keyfile, sector_size):
    """A container from `cryptsetup luksFormat` (its default 16 MiB data
    offset) opens in vessel; what vessel writes, including writes of part
    of a 4096-byte encryption sector, decrypts with dm-crypt's rules:
    one XTS unit per encryption sector, IV = its first 512-byte sector."""
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(24 << 20)
    r = subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
                        "--sector-size", str(sector_size), "--pbkdf", "pbkdf2",
                        "--pbkdf-force-iterations", "1000", "--key-file", str(keyfile), str(img)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    offset = int(re.search(r"offset: (\d+) \[bytes\]", luks_dump(img)).group(1))
    writes = [(0, 8192, 21), (1 << 20, 512, 22), ((1 << 20) + 1536, 1024, 23), (4 << 20, 65536, 24)]
    write_through_vessel(vessel_bin, img, keyfile, writes)
    cmds = "".join(f"verify {o} {n} {s}\n" for o, n, s in writes)
    assert ok(vdisk(vessel_bin, "io", "--key-file", keyfile, img, stdin=cmds)).stdout.split() == ["ok"] * 4

    key = volume_key(img, PASSPHRASE)
    for off, n, seed in writes:
        first = off - off % sector_size
        length = -(-(off + n - first) // sector_size) * sector_size
        cipher = read_at(img, offset + first, length)
        plain = bytearray()
        for u in range(0, length, sector_size):
            tweak = ((first + u) // 512).to_bytes(16, "little")
            d = Cipher(algorithms.AES(key), modes.XTS(tweak)).decryptor()
            plain += d.update(cipher[u:u + sector_size]) + d.finalize()
        assert bytes(plain[off - first:off - first + n]) == pattern(off, n, seed)
