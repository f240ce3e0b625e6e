"""Shared fixtures: the edgevisor command, both platforms, and C test programs.

The sandbox's /tmp is its own tmpfs, so anything a guest must run is built under /var/tmp,
which it sees through the read-only host root."""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from .support import edgevisor

PROGRAMS = Path(__file__).parent / "programs"
PLATFORMS = ("seccomp", "ptrace")


@pytest.fixture(scope="session", autouse=True)
def _signals_as_from_a_terminal():
    """edgevisor hands its guest the signals its caller ignored, as ignored (nohup's
    meaning), and a shell cannot trap a signal ignored on entry. A suite run under nohup,
    or as a background job of a script (which ignores SIGINT and SIGQUIT), would otherwise
    see its guests deaf to ^C, SIGHUP and SIGQUIT: the suite's sandboxes start as from a
    terminal, whatever its caller ignored."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    yield


@pytest.fixture(scope="session", autouse=True)
def _a_working_directory_the_guest_sees():
    """Sandboxes start in their caller's working directory, and edgevisor refuses one the
    guest cannot see (exit 125). A checkout under /tmp is such a one (the sandbox's /tmp is
    its own): the suite runs from a scratch directory under /var/tmp instead, wherever the
    checkout lives (tests/support.py puts the checkout on PYTHONPATH for `-m edgevisor.cli`)."""
    where = tempfile.mkdtemp(prefix="edgevisor-tests-cwd-", dir="/var/tmp")
    before = os.getcwd()
    os.chdir(where)
    yield
    os.chdir(before)
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def programs():
    out = Path(tempfile.mkdtemp(prefix="edgevisor-tests-", dir="/var/tmp"))
    built = {}
    for src in sorted(PROGRAMS.glob("*.c")):
        exe = out / src.stem
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(src)], check=True)
        built[src.stem] = str(exe)
    yield built
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(params=PLATFORMS)
def platform(request):
    return request.param


@pytest.fixture
def sandbox(platform):
    """run(CMD...) → CompletedProcess of `edgevisor do --platform=P -- CMD...`."""

    def run(*cmd, flags=(), **kw):
        return edgevisor("do", f"--platform={platform}", *flags, "--", *cmd, **kw)

    return run


def pytest_report_header(config):
    return f"edgevisor tests as uid {os.geteuid()} on {os.uname().release}"
