"""Strict-mode seccomp (PR_SET_SECCOMP with SECCOMP_MODE_STRICT, or seccomp(2)'s
SECCOMP_SET_MODE_STRICT) for a guest thread that already runs under the sandbox's filter.

The kernel refuses strict mode (EINVAL) to a task that has a filter, and every guest task has
the Sentry's. So the Sentry stacks, in the asking thread, the filter that strict mode is: read,
write, exit and rt_sigreturn are allowed, and any other call returns SECCOMP_RET_TRACE with
STRICT_TRAP_DATA. The Sentry, that thread's tracer, then ends it with SIGKILL, as the kernel
ends a strict task (do_exit(SIGKILL)). Only the thread itself can install a filter, so it is
made to: the call is rewritten into seccomp(SECCOMP_SET_MODE_FILTER) at its ptrace stop on the
ptrace platform, and injected right after it on the seccomp platform (seccomp.py), whose
Sentry attaches to that one thread for the purpose.

Where it differs from Linux (docs/architecture.md): the whole thread group dies, where Linux
ends only the thread (SIGKILL cannot be sent to one thread); and a thread that already stacked
a filter of its own is given strict mode, where Linux answers EINVAL; a stack pointer that
points at no memory fails the call with EFAULT. x86_64 only: on aarch64 the request is still
EINVAL.
"""

import ctypes
import errno
import os
import signal
import struct

from .. import abi
from ..syscall_tables import load, numbers
from .inject import NREGS, ORIG_RAX, RAX, RED_ZONE, RSP, U64, Injection, InjectionFailed
from .linux import ptrace, tkill
from .memory import ProcessMemory

STRICT_TRAP_DATA = 0x5E5C  # SECCOMP_RET_DATA of the strict filter's RET_TRACE
SUPPORTED = os.uname().machine == "x86_64"

_NR = numbers()
NR_SECCOMP = _NR["seccomp"]
# What the kernel lets a strict task call (mode1_syscalls).
ALLOWED = frozenset(_NR[name] for name in ("read", "write", "exit", "rt_sigreturn"))
_FPROG = struct.Struct("=H6xQ")  # struct sock_fprog


def _program() -> bytes:
    """The strict filter, for threads of the host's architecture: another ABI is refused too
    (the Sentry's own filter kills it first)."""
    audit_arch = load().audit_arch
    trace = abi.SECCOMP_RET_TRACE | STRICT_TRAP_DATA
    allowed = sorted(ALLOWED)
    n = len(allowed)
    ins = [(abi.BPF_LD_W_ABS, 0, 0, abi.SECCOMP_DATA_ARCH),
           (abi.BPF_JMP_JEQ_K, 0, n + 1, audit_arch),  # else to the trace at the end
           (abi.BPF_LD_W_ABS, 0, 0, abi.SECCOMP_DATA_NR)]
    for i, nr in enumerate(allowed):
        ins.append((abi.BPF_JMP_JEQ_K, n - i, 0, nr))  # to the allow after the trace
    ins.append((abi.BPF_RET_K, 0, 0, trace))
    ins.append((abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_ALLOW))
    return b"".join(abi.SOCK_FILTER.pack(*i) for i in ins)


PROGRAM = _program()  # made at import: the Sentry imports nothing once it is confined


def enter(tid: int, pending, saved=None) -> int:
    """Make stopped thread `tid` stack the strict filter; the result of its seccomp(2) call
    (0 or -errno). `saved` is the platform's register buffer at the thread's seccomp stop,
    where the call is rewritten in place and the platform answers the result; None at an
    event stop just after the asking call returned, whose registers are restored here with
    the result as its return value. The program goes on the thread's stack below the red
    zone, where a signal frame would go; no handler runs meanwhile (Injection blocks them)."""
    injection = Injection(tid, pending, saved)
    try:
        addr = (injection.saved[RSP] - RED_ZONE - _FPROG.size - len(PROGRAM)) & ~15
        try:
            ProcessMemory(tid).write(addr, _FPROG.pack(len(PROGRAM) // abi.SOCK_FILTER.size,
                                                       addr + _FPROG.size) + PROGRAM)
        except ProcessLookupError:
            raise
        except OSError as e:  # a stack pointer that points nowhere: the call fails (EFAULT)
            result = -e.errno
        else:
            try:
                result = injection.call(NR_SECCOMP, abi.SECCOMP_SET_MODE_FILTER, 0, addr)
            except InjectionFailed:
                # Its code changed under us: it is not left half-way, nor without the mode
                # it asked for.
                tkill(tid, signal.SIGKILL)
                raise ProcessLookupError(errno.ESRCH, f"tid {tid} killed") from None
        if saved is None:
            injection.saved[RAX] = result & U64
        return result
    finally:
        injection.finish()


class Tracer:
    """The seccomp platform's side: its Sentry traces no one else, so it attaches to each
    thread that asks for strict mode, from the thread that reaps the guest (the tracer's
    thread must make the ptrace requests, and the reaper's wait receives the stops anyway).

    attach() is called while the thread's call is held (its notification not yet answered):
    PTRACE_INTERRUPT makes it stop as soon as the call returns, before it runs an instruction
    of its own, and there the filter is injected. `tids` (shared with the serving loop, which
    ends a strict thread's emulated calls itself) gets the thread once its filter is in."""

    OPTIONS = abi.PTRACE_O_TRACESECCOMP | abi.PTRACE_O_EXITKILL | abi.PTRACE_O_TRACESYSGOOD

    def __init__(self, tids: set):
        self.tids = tids
        self._entering: set[int] = set()
        self._released: set[int] = set()

    def attach(self, tid: int, still_asking) -> int:
        """0, or the -errno the asking call is to fail with. `still_asking()` is false once
        the asking thread is gone (its notification invalid): the tid may then be another
        thread's already, which is let go at its first stop, untouched."""
        try:
            ptrace(abi.PTRACE_SEIZE, tid, 0, self.OPTIONS)
            ptrace(abi.PTRACE_INTERRUPT, tid, 0, 0)
        except OSError as e:
            return -e.errno
        if not still_asking():
            self._released.add(tid)
            return -errno.ESRCH
        self._entering.add(tid)
        return 0

    def exited(self, tid: int) -> None:
        self.tids.discard(tid)
        self._entering.discard(tid)
        self._released.discard(tid)

    def stopped(self, tid: int, status: int, pending) -> None:
        """Handle a stop of a traced thread; statuses of others reaped meanwhile go to
        `pending`."""
        sig, event = os.WSTOPSIG(status), status >> 16
        deliver = sig if event == 0 and sig != abi.PTRACE_SYSCALL_STOP else 0
        try:
            if tid in self._released:
                self._released.discard(tid)
                ptrace(abi.PTRACE_DETACH, tid, 0, deliver)
            elif event == abi.PTRACE_EVENT_STOP and sig in abi.GROUP_STOP_SIGNALS:
                ptrace(abi.PTRACE_LISTEN, tid, 0, 0)  # kept stopped until SIGCONT
            elif tid in self._entering:
                self._entering.discard(tid)
                result = enter(tid, pending)
                if result:
                    ptrace(abi.PTRACE_DETACH, tid, 0, deliver)  # the call fails, untraced
                    return
                self.tids.add(tid)
                ptrace(abi.PTRACE_CONT, tid, 0, deliver)
            elif event == abi.PTRACE_EVENT_SECCOMP:
                message = ctypes.c_ulong()
                ptrace(abi.PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(message))
                regs = (ctypes.c_ulonglong * NREGS)()
                ptrace(abi.PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
                if message.value == STRICT_TRAP_DATA and regs[ORIG_RAX] not in ALLOWED:
                    tkill(tid, signal.SIGKILL)
                    return
                # An earlier filter of the guest's own returned RET_TRACE (its data may be
                # ours, forged): with no tracer of its own the kernel skips the call with
                # ENOSYS, and so does this one.
                regs[ORIG_RAX] = U64
                regs[RAX] = -errno.ENOSYS & U64
                ptrace(abi.PTRACE_SETREGS, tid, 0, ctypes.addressof(regs))
                ptrace(abi.PTRACE_CONT, tid, 0, 0)
            else:
                ptrace(abi.PTRACE_CONT, tid, 0, deliver)
        except ProcessLookupError:
            pass  # killed meanwhile
        except OSError:  # not to be left stopped, nor half-way into strict mode
            try:
                tkill(tid, signal.SIGKILL)
            except OSError:
                pass
