"""Answers remembered per task (the seccomp platform's C fast path) never outlive the task:
with tids wrapping every few hundred tasks, threads reuse tids that child processes had, and
each must still get its own process's pid."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
HARNESS = str(Path(__file__).with_name("memo_harness.py"))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_remembered_getpid_survives_tid_reuse(programs):
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, HARNESS,
                        "600", programs["tid_reuse"], "1500"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok wrapped="), r.stdout
    assert int(r.stdout.split("=")[1]) > 100  # the wrap really happened, many times
