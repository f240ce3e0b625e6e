"""The refusal filter, run by the kernel on random arguments, refuses exactly what the table's
refusals describe: on the low 32 bits of the argument, whatever the high 32 bits hold."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edgevisor.syscall_tables import load

from .verdict_child import SECCOMP_EXEMPT

HERE = Path(__file__).parent
TABLE = load()
REFUSING = [row for row in TABLE.by_nr.values() if row.refuse]

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 table")


@pytest.fixture(scope="module")
def kernel():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}
    child = subprocess.Popen([sys.executable, str(HERE / "refusal_child.py")], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def verdict(nr: int, args: list[int]) -> int:
        child.stdin.write(" ".join(map(str, [nr, *args])) + "\n")
        child.stdin.flush()
        return int(child.stdout.readline())

    yield verdict
    child.stdin.close()
    child.wait(timeout=10)


def expected(nr: int, args: list[int]) -> int:
    row = TABLE.by_nr.get(nr)
    for r in row.refuse if row is not None else ():
        if (args[r.arg] & r.mask & 0xFFFFFFFF) == r.value:
            return r.errno
    return errno.ENOSYS


u64 = st.integers(min_value=0, max_value=2**64 - 1)
# Arguments near the refused values are where mistakes hide: mix exact ones, ones with bits of
# the high word set, and random ones.
interesting = st.sampled_from([r.value for row in REFUSING for r in row.refuse] + [0])
arg = st.one_of(u64, interesting, st.tuples(interesting, u64).map(lambda t: t[0] | (t[1] << 32 & (2**64 - 1))),
                st.tuples(interesting, u64).map(lambda t: t[0] | (t[1] & 0xFFFFFFFF)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.sampled_from(REFUSING), args=st.lists(arg, min_size=5, max_size=5))
def test_refusing_rows(kernel, row, args):
    assert kernel(row.nr, args) == expected(row.nr, args)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nr=st.sampled_from(sorted(set(TABLE.by_nr) - SECCOMP_EXEMPT)), args=st.lists(arg, min_size=5, max_size=5))
def test_other_rows_are_never_refused(kernel, nr, args):
    assert kernel(nr, args) == expected(nr, args)


def test_the_known_escapes_are_refused(kernel):
    ioctl, clone = TABLE.by_name["ioctl"].nr, TABLE.by_name["clone"].nr
    assert kernel(ioctl, [0, 0x5412, 0, 0, 0]) == errno.EPERM
    assert kernel(ioctl, [0, 0x5412 | 1 << 32, 0, 0, 0]) == errno.EPERM
    assert kernel(ioctl, [0, 0x5413, 0, 0, 0]) == errno.ENOSYS  # TIOCGWINSZ is fine
    assert kernel(clone, [0x10000000 | 17, 0, 0, 0, 0]) == errno.EPERM
    assert kernel(clone, [0x00010000 | 17, 0, 0, 0, 0]) == errno.ENOSYS  # CLONE_THREAD is fine
    seccomp = TABLE.by_name["seccomp"].nr
    assert kernel(seccomp, [1, 1 << 3, 0, 0, 0]) == errno.EBUSY  # a listener of the guest's own
    assert kernel(seccomp, [1, 1 << 3 | 1 << 32, 0, 0, 0]) == errno.EBUSY
    assert kernel(seccomp, [1, 1 << 1, 0, 0, 0]) == errno.ENOSYS  # SECCOMP_FILTER_FLAG_LOG
