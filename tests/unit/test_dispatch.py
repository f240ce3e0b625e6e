"""The Sentry's dispatch and identity handlers, driven without a traced process (sans-IO)."""

import errno
import os
import signal

import pytest
from hypothesis import given, strategies as st

from edgevisor import abi
from edgevisor.sentry.dispatch import CONTINUE, Sentry
from edgevisor.sentry.kernel.kernel import Kernel
from edgevisor.sentry.strace import Strace
from edgevisor.sentry.syscalls import HANDLERS
from edgevisor.syscall_tables import ARCHES, load

TABLE = load("x86_64")
NR = {name: row.nr for name, row in TABLE.by_name.items()}


class FakeMemory:
    """A sparse guest address space: pages of a dict; anything else faults."""

    def __init__(self):
        self.bytes = {}

    def map(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.bytes[addr + i] = b

    def read(self, addr, n):
        try:
            return bytes(self.bytes[a] for a in range(addr, addr + n))
        except KeyError:
            raise OSError(errno.EFAULT, "Bad address") from None

    def read_cstring(self, addr, maxlen):
        out = bytearray()
        while len(out) < maxlen:
            if addr + len(out) not in self.bytes:
                raise OSError(errno.EFAULT, "Bad address")
            b = self.bytes[addr + len(out)]
            if b == 0:
                return bytes(out)
            out.append(b)
        raise OSError(errno.ENAMETOOLONG, "File name too long")

    def write(self, addr, data):
        for a in range(addr, addr + len(data)):
            if a not in self.bytes:
                raise OSError(errno.EFAULT, "Bad address")
        self.map(addr, data)


class FakeTask:
    def __init__(self, tid=7, tgid=5, ppid=1):
        self.tid, self.tgid, self._ppid = tid, tgid, ppid
        self.mem = FakeMemory()

    def ppid(self):
        return self._ppid


class FakePids:
    """The guest's pid namespace, as far as the identity handlers ask: ids as given, and the
    capabilities every task has."""

    def __init__(self, caps: set[int]):
        self.caps = caps

    def virtual(self, tid):
        return tid

    def capable(self, tid, cap):
        return cap in self.caps


def sentry(caps=None, **kw):
    kernel = Kernel(hostname="box")
    kernel.pids = FakePids({abi.CAP_SYS_ADMIN} if caps is None else caps)
    return Sentry(TABLE, kernel, **kw)


def test_every_emulated_row_has_a_handler_and_every_handler_a_row():
    emulated = {arch: {row.name for row in load(arch).by_nr.values() if row.action == "emulate"}
                for arch in ARCHES}
    for names in emulated.values():
        assert names <= set(HANDLERS)
    assert set(HANDLERS) == set().union(*emulated.values())  # x86_64 has the legacy names


def test_pids():
    s, t = sentry(), FakeTask(tid=7, tgid=5, ppid=3)
    assert s.handle(t, NR["getpid"], [0] * 6) == 5
    assert s.handle(t, NR["gettid"], [0] * 6) == 7
    assert s.handle(t, NR["getppid"], [0] * 6) == 3


def test_uname_writes_the_sandbox_hostname():
    s, t = sentry(), FakeTask()
    t.mem.map(0x1000, bytes(390))
    assert s.handle(t, NR["uname"], [0x1000, 0, 0, 0, 0, 0]) == 0
    fields = [t.mem.read(0x1000 + 65 * i, 65).rstrip(b"\0") for i in range(6)]
    assert fields[0] == os.uname().sysname.encode()
    assert fields[1] == b"box"
    assert fields[4] == os.uname().machine.encode()
    assert fields[5] == b"(none)"


def test_uname_bad_pointer_is_efault():
    s, t = sentry(), FakeTask()
    t.mem.map(0x1000, bytes(100))  # too short for struct utsname
    assert s.handle(t, NR["uname"], [0x1000, 0, 0, 0, 0, 0]) == -errno.EFAULT


@given(name=st.binary(min_size=0, max_size=64))
def test_sethostname_then_uname_round_trips(name):
    s, t = sentry(), FakeTask()
    t.mem.map(0x2000, name)
    t.mem.map(0x3000, bytes(390))
    assert s.handle(t, NR["sethostname"], [0x2000, len(name), 0, 0, 0, 0]) == 0
    s.handle(t, NR["uname"], [0x3000, 0, 0, 0, 0, 0])
    assert t.mem.read(0x3000 + 65, 65) == name.ljust(65, b"\0")


@pytest.mark.parametrize("length", [65, 1000, 2**32 - 1, 2**64 - 1])
def test_sethostname_too_long_or_negative_is_einval(length):
    s, t = sentry(), FakeTask()
    t.mem.map(0x2000, b"x" * 100)
    assert s.handle(t, NR["sethostname"], [0x2000, length, 0, 0, 0, 0]) == -errno.EINVAL
    assert s.kernel.hostname == b"box"


@pytest.mark.parametrize("call", ["sethostname", "setdomainname"])
def test_uts_names_need_cap_sys_admin(call):
    s, t = sentry(caps={abi.CAP_SYS_PTRACE}), FakeTask()
    t.mem.map(0x2000, b"other")
    assert s.handle(t, NR[call], [0x2000, 5, 0, 0, 0, 0]) == -errno.EPERM
    assert (s.kernel.hostname, s.kernel.domainname) == (b"box", b"(none)")


def test_setdomainname():
    s, t = sentry(), FakeTask()
    t.mem.map(0x2000, b"example.org")
    assert s.handle(t, NR["setdomainname"], [0x2000, 11, 0, 0, 0, 0]) == 0
    assert s.kernel.domainname == b"example.org"


def test_unknown_number_is_enosys_and_logged_once():
    lines = []
    s, t = sentry(log=lines.append), FakeTask()
    for _ in range(3):
        assert s.handle(t, 1000, [0] * 6) == -errno.ENOSYS
    assert lines == ["unsupported syscall 1000 from tid 7: answered ENOSYS"]


def test_unlisted_kernel_syscall_is_enosys_and_named():
    lines = []
    nr, name = TABLE.unlisted[0]
    assert sentry(log=lines.append).handle(FakeTask(), nr, [0] * 6) == -errno.ENOSYS
    assert lines == [f"unsupported syscall {nr} ({name}) from tid 7: answered ENOSYS"]


def test_trapped_passthrough_row_continues():
    assert sentry().handle(FakeTask(), NR["read"], [0] * 6) is CONTINUE


def traced_sentry(only=None):
    """A Sentry with --strace whose guest has already exec'd its command."""
    lines = []
    s = sentry(strace=Strace(lines.append, only))
    s._before_exec = False
    return s, lines


def test_strace_lines():
    s, lines = traced_sentry()
    t = FakeTask(tid=2)
    t.mem.map(0x2000, b"edge1")
    s.handle(t, NR["sethostname"], [0x2000, 5, 0, 0, 0, 0])
    s.handle(t, NR["read"], [3, 0x5000, 10, 0, 0, 0])
    s.handle(t, 1000, [1, 2, 3, 4, 5, 6])
    assert lines == [
        '[pid 2] sethostname("edge1", 5) = 0 [emulate]\n',
        "[pid 2] read(3, 0x5000, 10) = ? [passthrough]\n",
        "[pid 2] syscall_0x3e8(0x1, 0x2, 0x3, 0x4, 0x5, 0x6) = -1 ENOSYS (Function not implemented) [unsupported]\n",
    ]


def test_strace_only_filters_but_still_dispatches():
    s, lines = traced_sentry(frozenset({"getpid"}))
    t = FakeTask(tid=2, tgid=2)
    assert s.handle(t, NR["gettid"], [0] * 6) == 2
    assert s.handle(t, NR["getpid"], [0] * 6) == 2
    assert lines == ["[pid 2] getpid() = 2 [emulate]\n"]


def test_strace_starts_at_the_guests_exec():
    lines = []
    s = sentry(strace=Strace(lines.append, None))
    t = FakeTask(tid=2)
    s.handle(t, NR["read"], [4, 0x5000, 1, 0, 0, 0])  # edgevisor's own start-up
    assert s.handle(t, NR["getpid"], [0] * 6) == 5    # still answered, just not shown
    t.mem.map(0x6000, b"/bin/true\0")
    t.mem.map(0x7000, bytes(8))
    s._handlers[NR["execve"]] = lambda k, t, a: CONTINUE  # no file system here
    s.handle(t, NR["execve"], [0x6000, 0x7000, 0x7000, 0, 0, 0])
    s.handle(t, NR["getpid"], [0] * 6)
    assert [line.split("(")[0] for line in lines] == ["[pid 2] execve", "[pid 2] getpid"]


def test_a_tasks_guest_id_is_read_once_while_it_lives(monkeypatch):
    """getppid asks the guest id of the parent at every call: read from /proc/TID/status
    once, then remembered while that very task lives (its pidfd), never for a reused tid."""
    from edgevisor.sentry.kernel import pids

    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    ns = pids.PidNamespace(proc)
    reads = []
    real_status = ns.status
    monkeypatch.setattr(ns, "status", lambda tid: reads.append(tid) or real_status(tid))
    child = os.fork()
    if child == 0:
        try:
            signal.pause()
        finally:
            os._exit(0)
    try:
        first = ns.virtual(child)
        answers = [ns.virtual(child) for _ in range(3)]
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    try:
        assert answers == [first] * 3 and reads == [child]
        with pytest.raises(ProcessLookupError):  # gone: asked again, and not there
            ns.virtual(child)
    finally:
        os.close(proc)
