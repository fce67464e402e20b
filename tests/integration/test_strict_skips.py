"""`make check` runs pytest with --strict-skips (conftest.py): a test that
skips for anything but a missing /dev/kvm fails there, so that a skipped
test never stands for a passed one (issue 18, item 22)."""
import shutil
import subprocess
import sys

from conftest import ROOT

SAMPLE = '''
import pytest

def test_needs_kvm():
    pytest.skip("no usable /dev/kvm on this host")

def test_needs_guest():
    pytest.skip("no default guest: run scripts/build-guest")

@pytest.mark.skipif(True, reason="nasm is not installed")
def test_marked():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False

def test_passes():
    pass
'''


def run_sample(tmp_path, *opts, env=None):
    shutil.copy(ROOT / "tests" / "integration" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *opts,
                           str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def test_without_the_option_skips_stay_skips(tmp_path):
    r = run_sample(tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in r.stdout, r.stdout


def test_strict_skips_fail_all_but_the_kvm_ones(tmp_path):
    r = run_sample(tmp_path, "--strict-skips")
    assert r.returncode == 1, r.stdout
    # A skip in the call fails the test; a skip mark fails its set-up (an error).
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in r.stdout, r.stdout
    assert "no default guest: run scripts/build-guest" in r.stdout
    assert "nasm is not installed" in r.stdout
    assert "SKIPPED [1]" in r.stdout and "/dev/kvm" in r.stdout


def test_strict_skips_from_the_environment(tmp_path):
    r = run_sample(tmp_path, env={"PATH": "/usr/bin:/bin", "VESSEL_STRICT_SKIPS": "1"})
    assert r.returncode == 1 and "1 failed" in r.stdout and "1 error" in r.stdout, r.stdout
