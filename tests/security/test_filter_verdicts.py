"""The generated seccomp filter, run by the kernel, agrees with the syscall table for every
number from 0 to past the highest; foreign ABIs are killed."""

import errno
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgevisor import abi
from edgevisor.platform.bpf import build_filter
from edgevisor.platform.linux import pidfd_getfd
from edgevisor.sentry.net.policy import direct_sockets
from edgevisor.syscall_tables import load

from .verdict_child import SECCOMP_EXEMPT

ROOT = str(Path(__file__).resolve().parents[2])
CHILD = str(Path(__file__).with_name("verdict_child.py"))
MARKER = 4000  # not an errno the kernel uses: the answer of our stand-in Sentry
MAGIC = 0x5EC0FFEE_0DDBA11

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 table")


def _serve(listener: int, stop: threading.Event) -> None:
    """A stand-in Sentry: marked calls get MARKER; the child's own calls run (CONTINUE)."""
    notif = bytearray(abi.SECCOMP_NOTIF.size)
    while not stop.is_set():
        if not select.select([listener], [], [], 0.1)[0]:
            continue
        notif[:] = bytes(len(notif))
        try:
            fcntl.ioctl(listener, abi.SECCOMP_IOCTL_NOTIF_RECV, notif, True)
        except OSError:
            continue
        nid, _, _, _, _, _, *args = abi.SECCOMP_NOTIF.unpack(notif)
        if args[5] == MAGIC:
            resp = abi.SECCOMP_NOTIF_RESP.pack(nid, 0, -MARKER, 0)
        else:
            resp = abi.SECCOMP_NOTIF_RESP.pack(nid, 0, 0, abi.SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        try:
            fcntl.ioctl(listener, abi.SECCOMP_IOCTL_NOTIF_SEND, resp)
        except OSError:
            pass


def _verdicts(program: bytes, *args: str) -> list[tuple[int, object]]:
    """(number, verdict) of each call the child makes: args are verdict_child's."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    child = subprocess.Popen([sys.executable, CHILD, *args], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    child.stdin.write(b"%d\n" % len(program) + program)
    child.stdin.flush()
    number = int(child.stdout.readline())
    pidfd = os.pidfd_open(child.pid)
    for _ in range(10000):
        try:
            listener = pidfd_getfd(pidfd, number)
            break
        except OSError as e:
            assert e.errno == errno.EBADF
    os.close(pidfd)
    stop = threading.Event()
    server = threading.Thread(target=_serve, args=(listener, stop), daemon=True)
    server.start()
    child.stdin.write(b"go\n")
    child.stdin.flush()
    out = child.stdout.readline()
    child.wait(timeout=60)
    stop.set()
    server.join()
    os.close(listener)
    assert child.returncode == 0
    return [tuple(verdict) for verdict in json.loads(out)]


@pytest.mark.parametrize("stop_actions", [False, True], ids=["pipe", "terminal"])
def test_every_number_gets_the_tables_verdict(stop_actions):
    table = load("x86_64")
    program = build_filter(table, abi.SECCOMP_RET_USER_NOTIF, stop_actions=stop_actions)
    last = table.max_nr + 64
    verdicts = dict(_verdicts(program, "0", str(last)))
    for nr in range(last):
        if nr in SECCOMP_EXEMPT:
            continue
        row = table.by_nr.get(nr)
        if row is None or row.action == "emulate":
            expected = MARKER  # trapped to the Sentry
        elif row.action == "passthrough":
            expected = errno.ENOSYS  # allowed by our filter: the probe filter's TRACE answered
        else:
            expected = row.errno
        name = row.name if row else "(none)"
        assert verdicts[nr] == expected, f"{nr} {name}: got {verdicts[nr]}, want {expected}"


def test_on_a_terminal_the_setting_of_a_stop_signals_action_is_trapped():
    """The one verdict that depends on arguments, for job control (job_control.py):
    rt_sigaction(SIGTSTP, SIGTTIN or SIGTTOU, act) goes to the Sentry; a query (act NULL)
    and any other signal are the kernel's."""
    table = load("x86_64")
    nr = table.by_name["rt_sigaction"].nr
    program = build_filter(table, abi.SECCOMP_RET_USER_NOTIF, stop_actions=True)
    calls = [[nr, sig, act] for sig in (2, 19, 20, 21, 22, 23, 64) for act in (0, 0x1000)]
    verdicts = _verdicts(program, json.dumps(calls))
    trapped = {(sig, act) for (_, sig, act), (_, v) in zip(calls, verdicts) if v == MARKER}
    assert trapped == {(20, 0x1000), (21, 0x1000), (22, 0x1000)}
    assert all(v in (MARKER, errno.ENOSYS) for _, v in verdicts)


def test_ptrace_filter_differs_only_in_the_trap_action():
    table = load("x86_64")
    notify = build_filter(table, abi.SECCOMP_RET_USER_NOTIF)
    trace = build_filter(table, abi.SECCOMP_RET_TRACE)
    a = list(abi.SOCK_FILTER.iter_unpack(notify))
    b = list(abi.SOCK_FILTER.iter_unpack(trace))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x != y:
            assert x[:3] == y[:3] == (abi.BPF_RET_K, 0, 0)
            assert (x[3], y[3]) == (abi.SECCOMP_RET_USER_NOTIF, abi.SECCOMP_RET_TRACE)


def test_passthrough_verdicts_depend_on_the_number_alone():
    """So the kernel's seccomp action cache can skip the filter for them: the filter reads
    only the arch and the number, never the instruction pointer or the arguments."""
    program = build_filter(load("x86_64"), abi.SECCOMP_RET_USER_NOTIF)
    loads = {k for code, _, _, k in abi.SOCK_FILTER.iter_unpack(program) if code == abi.BPF_LD_W_ABS}
    assert loads <= {abi.SECCOMP_DATA_NR, abi.SECCOMP_DATA_ARCH}


@pytest.mark.parametrize("abi_name", ["x32", "int80"])
def test_foreign_abi_kills_the_process(sandbox, programs, abi_name):
    r = sandbox(programs["foreign_abi"], abi_name)
    assert r.returncode == 128 + signal.SIGSYS, (r.stdout, r.stderr)
    assert "survived" not in r.stdout


@pytest.mark.parametrize("network", ["sandbox", "host"])
def test_only_the_ordinary_sockets_bypass_the_sentry(network):
    """The other verdicts that depend on arguments: socket(2) calls net/policy.direct_sockets
    lists are the kernel's, and so is a unix socketpair; any other family, type or protocol,
    and a listed one with a high bit set in a register, goes to the Sentry."""
    table = load("x86_64")
    sock, pair = table.by_name["socket"].nr, table.by_name["socketpair"].nr
    program = build_filter(table, abi.SECCOMP_RET_USER_NOTIF,
                           sockets=direct_sockets(network))
    stream, dgram, high = abi.SOCK_STREAM, abi.SOCK_DGRAM, 1 << 32
    direct = [[sock, abi.AF_UNIX, stream, 0], [sock, abi.AF_UNIX, abi.SOCK_SEQPACKET, 0],
              [pair, abi.AF_UNIX, stream, 0]]
    inet = [[sock, abi.AF_INET, stream | abi.SOCK_CLOEXEC, 0],
            [sock, abi.AF_INET6, dgram | abi.SOCK_NONBLOCK, abi.IPPROTO_UDP],
            [sock, abi.AF_INET, dgram, abi.IPPROTO_ICMP]]
    trapped = [[sock, abi.AF_INET, abi.SOCK_RAW, 0], [sock, abi.AF_PACKET, abi.SOCK_RAW, 0],
               [sock, abi.AF_INET, stream, 132], [sock, abi.AF_NETLINK, abi.SOCK_RAW, 0],
               [sock, abi.AF_UNIX | high, stream, 0], [sock, abi.AF_INET, stream | high, 0],
               [sock, abi.AF_INET6, stream, abi.IPPROTO_TCP | high],
               [pair, abi.AF_INET, stream, 0], [pair, abi.AF_UNIX | high, stream, 0]]
    if network == "host":  # the Sentry makes the IP ones
        trapped, direct = trapped + inet, direct
    else:
        direct = direct + inet
    calls = direct + trapped
    verdicts = [v for _, v in _verdicts(program, json.dumps(calls))]
    assert verdicts == [errno.ENOSYS] * len(direct) + [MARKER] * len(trapped), verdicts
