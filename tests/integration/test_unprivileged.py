"""edgevisor run by an ordinary user: a user namespace of its own, same guarantees."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyseccomp
import pytest

import edgevisor

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def as_nobody():
    """Runs edgevisor as uid 65534 from a world-readable copy of the package (the test's own
    interpreter may live in root's home)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True)
    if version.stdout.strip() != "True":
        pytest.skip(f"{SYSTEM_PYTHON} is missing or older than 3.11")
    tree = Path(tempfile.mkdtemp(prefix="edgevisor-nobody-", dir="/var/tmp"))
    shutil.copytree(Path(edgevisor.__file__).parent, tree / "edgevisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(pyseccomp.__file__, tree)
    subprocess.run(["chmod", "-R", "a+rX", str(tree)], check=True)

    def run(*args):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                               SYSTEM_PYTHON, "-m", "edgevisor.cli", *args],
                              capture_output=True, text=True, env=env, cwd="/", timeout=60)

    yield run
    shutil.rmtree(tree, ignore_errors=True)


def test_unprivileged_run(as_nobody, platform):
    r = as_nobody("do", f"--platform={platform}", "--hostname", "edge1", "--",
                  "sh", "-c", "id -u; uname -n; echo x > /tmp/x && cat /tmp/x; kill -9 $$")
    assert r.returncode == 137, r.stderr
    assert r.stdout.splitlines() == ["65534", "edge1", "x"]
    # Without root overlayfs will not stack on the host's /: a read-only root, said once.
    assert r.stderr.count("read-only") == 1


def test_unprivileged_guest_cannot_write_the_root(as_nobody, platform):
    r = as_nobody("do", f"--platform={platform}", "--", "sh", "-c", "echo x > /var/tmp/nobody-was-here")
    assert r.returncode != 0
    assert not os.path.exists("/var/tmp/nobody-was-here")
