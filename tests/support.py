"""Helpers shared by the test modules.

EDGEVISOR_TEST_DIRECTFS=false runs every sandbox the tests start with --directfs=false (every
open and lookup through the gofer), so that the suite, above all tests/security and
tests/conformance, holds in both modes (docs/architecture.md, "directfs")."""

import os
import subprocess
import sys

# This checkout's edgevisor, from any working directory (conftest.py runs the suite from one
# the guest sees), whether or not it is the one installed.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join([CHECKOUT, *filter(None, [os.environ.get("PYTHONPATH")])])
# `python3` in a guest (and in its native oracle) is this interpreter's own binary: first on
# PATH by its real path, since a venv's bin under /tmp is out of the guest's view and a pyenv
# shim there is a shell script that forks (against a pids limit) and shows in --strace.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(os.path.realpath(sys.executable)),
                                      *filter(None, [os.environ.get("PATH")])])

DIRECTFS = os.environ.get("EDGEVISOR_TEST_DIRECTFS", "true")
if DIRECTFS not in ("true", "false"):
    raise SystemExit(f"EDGEVISOR_TEST_DIRECTFS={DIRECTFS!r}: expected true or false")
# The front end, as the tests start it. In the brokered mode a small launcher puts the flag
# right after `do`, so that every test, whichever way it spells its command, runs that way.
_BROKERED = ("import runpy, sys; sys.argv[0] = 'edgevisor'; "
             "sys.argv[2:2] = ['--directfs=false'] if sys.argv[1:2] == ['do'] else []; "
             "runpy.run_module('edgevisor.cli', run_name='__main__')")
EDGEVISOR = ([sys.executable, "-m", "edgevisor.cli"] if DIRECTFS == "true"
             else [sys.executable, "-c", _BROKERED])


def edgevisor(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([*EDGEVISOR, *args], timeout=timeout, **kw)
