"""Crash safety of dynamic and differencing VHDs: a writer killed with
SIGKILL at arbitrary points leaves an image that `vessel disk check` and
qemu accept, holding every write acknowledged before a completed flush.

The writer is `vessel disk io` fed a stream of writes and flushes; the
test reads its acknowledgements and kills it after a random number of
them, so the kill lands inside whatever the writer is doing next (block
allocation, bitmap update, BAT update, footer move).  Every write goes to
its own region, so later writes never hide earlier ones."""
import os
import random
import signal
import subprocess

import pytest

from disk_helpers import disk, have_qemu, io, ok, pattern, qemu_accepts, qemu_to_raw

ROUNDS = 30               # kills per image
WRITES_PER_ROUND = 50
REGION = 8192             # bytes per write region
SIZE = 32 << 20


def run_and_kill(vessel_bin, img, cmds, kill_after, kill_writes):
    """Starts the writer, waits for kill_after answers, SIGKILLs it and
    returns all answers it printed.  With kill_writes the writer kills
    itself after that many file writes instead (whichever comes first):
    this lands between any two metadata writes, windows too short to hit
    from outside."""
    env = dict(os.environ)
    if kill_writes:
        env["VESSEL_TEST_KILL_AFTER_WRITES"] = str(kill_writes)
    p = subprocess.Popen([vessel_bin, "disk", "io", str(img)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    p.stdin.write("".join(c + "\n" for c in cmds))
    p.stdin.flush()
    answers = []
    while len(answers) < kill_after:
        line = p.stdout.readline()
        if not line:
            break
        answers.append(line.strip())
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    answers += p.stdout.read().splitlines()
    for f in (p.stdin, p.stdout, p.stderr):
        try:
            f.close()
        except BrokenPipeError:
            pass
    return answers


def crash_rounds(vessel_bin, img, rng, regions, durable, check_qemu_data):
    for _ in range(ROUNDS):
        plan, cmds = [], []
        for j in range(WRITES_PER_ROUND):
            region = regions.pop()
            sectors = rng.choice([1, 3, 8, 16])
            off = region * REGION + rng.randrange(0, REGION // 512 - sectors + 1) * 512
            seed = rng.randrange(1, 1 << 40)
            plan.append(("write", off, sectors * 512, seed))
            cmds.append(f"write {off} {sectors * 512} {seed}")
            if rng.random() < 0.2:
                plan.append(("flush",))
                cmds.append("flush")
        kill_writes = rng.randrange(1, 4 * WRITES_PER_ROUND) if rng.random() < 0.6 else 0
        answers = run_and_kill(vessel_bin, img, cmds, rng.randrange(0, len(cmds)), kill_writes)
        assert all(a == "ok" for a in answers), answers
        done = len(answers)
        last_flush = max((i for i in range(done) if plan[i][0] == "flush"), default=-1)
        for step in plan[:last_flush + 1]:
            if step[0] == "write":
                durable.append(step[1:])

        r = disk(vessel_bin, "check", img)
        assert r.returncode == 0, r.stdout + r.stderr
        good, why = qemu_accepts(img) if have_qemu() else (True, "")
        assert good, why
        _, lines = io(vessel_bin, img, [f"verify {o} {n} {s}" for o, n, s in durable], "-r")
        assert lines == ["ok"] * len(durable)
    if check_qemu_data and have_qemu():
        data = qemu_to_raw(img, str(img) + ".raw")
        for o, n, s in durable:
            assert data[o:o + n] == pattern(o, n, s)


def test_killed_writers_leave_valid_images_with_flushed_data(vessel_bin, tmp_path):
    rng = random.Random(20260)
    regions = list(range(SIZE // REGION))
    rng.shuffle(regions)
    durable = []
    base = tmp_path / "base.vhd"
    # small blocks: most writes allocate, so kills hit allocations often
    ok(disk(vessel_bin, "create", "--exact-size", "--block-size", "64K", base, SIZE))
    crash_rounds(vessel_bin, base, rng, regions, durable, check_qemu_data=True)
    assert durable, "no flush completed in any round"
    child = tmp_path / "child.vhd"
    ok(disk(vessel_bin, "create", "-b", base, child))
    crash_rounds(vessel_bin, child, rng, regions, durable, check_qemu_data=False)
    # repair leaves the same data
    ok(disk(vessel_bin, "check", "--repair", child))
    r = ok(disk(vessel_bin, "check", child))
    assert "warning" not in r.stdout
    _, lines = io(vessel_bin, child, [f"verify {o} {n} {s}" for o, n, s in durable], "-r")
    assert lines == ["ok"] * len(durable)
