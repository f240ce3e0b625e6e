"""The strict-mode filter (platform/strict.py): exactly read, write, exit and rt_sigreturn of
the host's architecture are allowed; anything else is RET_TRACE with the strict marker. Read
by a small classic-BPF interpreter for every number and architecture hypothesis draws, then
loaded for real in a child without a tracer, where RET_TRACE skips the call with ENOSYS."""

import ctypes
import errno
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevisor import abi
from edgevisor.platform import strict
from edgevisor.platform.linux import prctl, seccomp_load
from edgevisor.syscall_tables import load

TABLE = load()
OPS = {abi.BPF_LD_W_ABS, abi.BPF_JMP_JEQ_K, abi.BPF_RET_K}


def verdict(program: bytes, arch: int, nr: int) -> int:
    data = struct.pack("=iIQ6Q", nr, arch, 0, *[0] * 6)
    ins = [abi.SOCK_FILTER.unpack_from(program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = ins[pc]
        assert code in OPS, code
        if code == abi.BPF_RET_K:
            return k
        if code == abi.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        else:
            pc += 1 + (jt if acc == k else jf)


TRACE = abi.SECCOMP_RET_TRACE | strict.STRICT_TRAP_DATA


@settings(max_examples=2000)
@given(arch=st.one_of(st.just(TABLE.audit_arch), st.integers(0, 2**32 - 1)),
       nr=st.one_of(st.sampled_from(sorted(TABLE.by_nr)), st.integers(-2**31, 2**31 - 1)))
def test_only_the_four_calls_of_the_hosts_abi_pass(arch, nr):
    allowed = arch == TABLE.audit_arch and nr in strict.ALLOWED
    assert verdict(strict.PROGRAM, arch, nr) == (abi.SECCOMP_RET_ALLOW if allowed else TRACE)


def test_the_four_calls_are_linuxs():
    names = {TABLE.by_nr[nr].name for nr in strict.ALLOWED}
    assert names == {"read", "write", "exit", "rt_sigreturn"}


@pytest.mark.skipif(not strict.SUPPORTED, reason="x86_64 only")
def test_loaded_without_a_tracer_it_refuses_the_rest():
    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # from the load on, only the four calls (a refused one is ENOSYS)
        try:
            os.close(r)
            prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
            seccomp_load(strict.PROGRAM, 0)
            got = libc.syscall(TABLE.by_name["getppid"].nr)
            line = b"%d %d\n" % (got, ctypes.get_errno())
            libc.syscall(TABLE.by_name["write"].nr, w, line, len(line))
        finally:
            libc.syscall(TABLE.by_name["exit"].nr, 0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert out == b"-1 %d\n" % errno.ENOSYS, out
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
