"""Helpers shared by the test modules."""

import subprocess
import sys

EDGEVISOR = [sys.executable, "-m", "edgevisor.cli"]


def edgevisor(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([*EDGEVISOR, *args], timeout=timeout, **kw)
