"""Socket semantics in the sandbox against Linux, with tests/programs/net_conformance.c.

The program prints one line per check: socket() and socketpair() with bad arguments; bind
(EADDRINUSE, SO_REUSEADDR with the first socket bound or listening, SO_REUSEPORT, short
lengths, wrong families, non-local addresses, port 0); listen and accept (autobinding,
non-blocking accept, accept4's flags, short address buffers); connect (refused, non-blocking,
EISCONN, unreachable, AF_UNSPEC, the names both ends see); IPv4 and IPv6 sharing ports by
IPV6_V6ONLY; shutdown (EOF at the peer, EPIPE and SIGPIPE); UDP (peer addresses, a connected
socket's filtering, ICMP errors on connected sockets only); socket options read back, and the
errors of unknown ones; unix sockets (pairs of every type, path and abstract names,
autobinding, SCM_RIGHTS, SCM_CREDENTIALS). Checks that depend on the family run for IPv4, IPv6
with IPV6_V6ONLY set, and IPv6 dual-stack on v4-mapped addresses. Ports, pids and descriptor
numbers are never printed, only compared, so a run's output is a function of the kernel's
semantics only.

The oracle is the same program run natively in a fresh network namespace whose lo is up,
which is what the sandbox gives its guest (`unshare -n`, as root). A sandboxed run must print
exactly what the native one printed. The program works in a directory of its own, made in the
one it is given: natively a temporary directory, in the sandbox the guest's private /tmp.
"""

import difflib
import os
import shutil
import subprocess
import tempfile

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the native oracle needs root (unshare -n)"),
]

TIMEOUT = 60
# unshare -n leaves lo down; the sandbox brings its own up before the guest runs. busybox
# (installed by run-tests) has the ip applet wherever iproute2 is missing.
LOOPBACK_UP = 'busybox ip link set lo up && exec "$0" "$@"'


class Run:
    def __init__(self, r: subprocess.CompletedProcess):
        self.lines, self.returncode, self.stderr = r.stdout.splitlines(), r.returncode, r.stderr


@pytest.fixture(scope="module")
def native(programs):
    """The program's run in a fresh network namespace, outside any sandbox."""
    workdir = tempfile.mkdtemp(prefix="edgevisor-net-")
    try:
        argv = ["unshare", "-n", "--", "sh", "-c", LOOPBACK_UP,
                programs["net_conformance"], workdir]
        yield Run(subprocess.run(argv, check=False, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=TIMEOUT))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_native_oracle_is_sound(native):
    """Natively, the program runs to its end and names every errno it meets."""
    assert native.returncode == 0, (native.lines[-3:], native.stderr)
    assert native.lines and native.lines[-1] == "done", native.stderr
    assert not [ln for ln in native.lines if ln.startswith("FATAL") or " errno" in ln]
    names = [ln.split(":", 1)[0] for ln in native.lines]
    assert len(names) == len(set(names)), "every check has a name of its own"


def test_same_as_linux(sandbox, programs, native):
    assert native.returncode == 0, native.stderr
    r = sandbox(programs["net_conformance"], "/tmp", stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    got = r.stdout.splitlines()
    diff = "\n".join(difflib.unified_diff(native.lines, got, "native", "sandboxed", lineterm=""))
    assert got == native.lines, f"{diff}\n(exit {r.returncode})\n{r.stderr[-2000:]}"
    assert r.returncode == 0, r.stderr[-2000:]
