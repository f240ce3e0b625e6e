"""Every emulated syscall of the table, called from inside the sandbox with hostile arguments
(issue 10, finding 7): random registers, NULL, unmapped and kernel addresses, negative and
huge ints, paths of 4096+ bytes, non-UTF-8 names, valid descriptors and paths. Each call must
get a result or an errno, never a Sentry exception (the Sentry reports one as
"edgevisor: sentry: ..." and exits 125, which kills the guest), and the sandbox must still run
a command afterwards.

One sandbox per platform runs tests/programs/fuzz_worker.c, fed one call per line; the
worker makes each call in a fresh child, so no call can corrupt or replace the worker."""

import os
import re
import signal
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edgevisor.syscall_tables import load

from ..support import EDGEVISOR

TABLE = load()
EMULATED = sorted(row.name for row in TABLE.by_nr.values() if row.action == "emulate")
ANSWER = re.compile(r"(r=-?\d+|e=\d+|sig=\d+|exit=\d+)")
U64 = (1 << 64) - 1
HOST_NODES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 table")


class Worker:
    def __init__(self, platform: str, exe: str):
        self.proc = subprocess.Popen(
            [*EDGEVISOR, "do", f"--platform={platform}", "--debug", "--", exe],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def call(self, nr: int, args: list[str]) -> str:
        self.send(nr, args)
        return self.answer()

    def send(self, nr: int, args: list[str]) -> None:
        self.proc.stdin.write(" ".join([str(nr), *args]) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> str:
        answer = self.proc.stdout.readline().strip()
        if not answer:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
            pytest.fail(f"the sandbox died (exit {self.proc.returncode}):\n{self.proc.stderr.read()}")
        return answer


@pytest.fixture(scope="module", params=("seccomp", "ptrace"))
def worker(request, programs):
    before = {p: _metadata(p) for p in HOST_NODES}
    w = Worker(request.param, programs["fuzz_worker"])
    yield w
    # Still able to run a command: execve("/bin/true", [], []) in a child of the worker.
    assert w.call(TABLE.by_name["execve"].nr, [_string(b"/bin/true"), "b0", "b0"]) == "exit=0"
    w.proc.stdin.close()
    assert w.proc.wait(timeout=60) == 0
    assert "edgevisor: sentry" not in w.proc.stderr.read()
    assert {p: _metadata(p) for p in HOST_NODES} == before  # the host is unchanged


def _metadata(path: str):
    # Not the times: any host process writing /dev/null moves its mtime.
    s = os.stat(path)
    return s.st_mode, s.st_uid, s.st_gid, s.st_ino, s.st_rdev


def _string(b: bytes) -> str:
    return "s" + b.hex()


def _low_int(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


# Registers: random, small, negative (two's complement), huge; and addresses: NULL, the
# unmapped first page, an unmapped user address, kernel addresses, the worker's scratch buffer.
u64 = st.integers(0, U64)
register = st.one_of(
    u64, st.integers(-4096, 4096).map(lambda v: v & U64),
    st.sampled_from([0, 1, 0x1000, 0x7FFF_0000_0000, 0xFFFF_FFFF_8100_0000, 0xFFFF_8880_0000_0000,
                     0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 63, U64])).map(str)
scratch = st.integers(0, 65535).map(lambda o: f"b{o}")
VALID_PATHS = [b"/tmp/fuzz", b"/tmp/fuzz/file", b"/tmp/fuzz/new", b"/tmp/fuzz/d/", b".", b"..",
               b"", b"/", b"/proc/self/status", b"/proc/self/exe", b"/etc/passwd", b"/tmp",
               b"/proc/slabinfo", b"/proc/1/mem", b"/sys/kernel"]
name = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\0", b"x"))
path_bytes = st.one_of(
    st.sampled_from(VALID_PATHS),
    name,  # non-UTF-8 names, relative to /tmp/fuzz
    name.map(lambda b: b"/tmp/fuzz/" + b),
    st.integers(4090, 4200).map(lambda n: b"/tmp/fuzz/" + b"a" * n),  # past PATH_MAX
    st.integers(1, 300).map(lambda n: b"/tmp/fuzz/" + b"b" * n),  # past NAME_MAX
    st.integers(1, 50).map(lambda n: b"/".join([b".."] * n)))
path = st.one_of(path_bytes.map(_string), register, scratch)
descriptor = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 900, -1, -100, 1 << 31]).map(lambda v: v & U64),
                       u64).map(str)
# Never a signal that would kill the worker or its sandbox: kill(0, ...) reaches its group.
_HARMLESS = {0, signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH}
signo = u64.map(lambda v: v if not 0 < _low_int(v) <= 64 or _low_int(v) in _HARMLESS else 0).map(str)
pointer = st.one_of(register, scratch)

BY_KIND = {"path": path, "str": path, "dirfd": descriptor, "fd": descriptor, "signo": signo}


def _strategy(kind: str):
    if kind in BY_KIND:
        return BY_KIND[kind]
    if kind in ("ptr", "argv") or kind.startswith(("buf", "outbuf")):
        return pointer
    return register


ARGS = {name: st.tuples(*(_strategy(a.kind) for a in TABLE.by_name[name].args),
                        *([register] * (6 - len(TABLE.by_name[name].args))))
        for name in EMULATED}


# Hypothesis draws each syscall's calls once, while the first platform runs them; the second
# replays the same calls (generating them is most of the time on a loaded machine).
_DRAWN: dict[str, list[tuple[str, ...]]] = {}


@pytest.mark.parametrize("name", EMULATED)
def test_fuzz(worker, name):
    nr = TABLE.by_name[name].nr
    sent = _DRAWN.get(name)
    if sent is None:
        sent = []

        # Pipelined: hypothesis only generates the calls and the answers are read afterwards
        # (a round trip each would cost more than the call); a bad answer names its call.
        @settings(max_examples=200, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(args=ARGS[name])
        def run(args):
            sent.append(args)
            worker.send(nr, list(args))

        run()
        _DRAWN[name] = sent
    else:
        for args in sent:
            worker.send(nr, list(args))
    assert len(sent) >= 200
    for args in sent:
        answer = worker.answer()
        assert ANSWER.fullmatch(answer), (name, args, answer)


def test_mknod_of_a_mode_past_16_bits_is_einval(worker):
    """mknod's mode is a umode_t: 0xffffffff is S_IFMT 0xf000, no file type (EINVAL); the
    handler took it as a negative int and raised OverflowError."""
    for name, args in (("mknod", [_string(b"/tmp/fuzz/x"), str(0xFFFFFFFF), "0"]),
                       ("mknodat", [str(-100 & U64), _string(b"/tmp/fuzz/x"), str(0xFFFFFFFF), "0"])):
        assert worker.call(TABLE.by_name[name].nr, args) == "e=22"
