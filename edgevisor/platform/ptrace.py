"""The ptrace platform.

The guest's filter returns SECCOMP_RET_TRACE for the syscalls the Sentry handles; each one
stops the thread with PTRACE_EVENT_SECCOMP. The Sentry reads the registers, dispatches, and
either skips the syscall (number set to -1) with the result in the return register, or lets
the kernel run it. The guest is seized right after fork, before it runs any of its own code,
with options that follow fork, vfork, clone and exec through the whole tree and kill every
tracee if the Sentry dies (PTRACE_O_EXITKILL).
"""

import ctypes
import os
import platform as _pyplatform
import signal

from .. import abi
from ..sentry.dispatch import CONTINUE
from ..sentry.kernel.task import Task
from .base import Platform
from .linux import iovec, ptrace, seccomp_load
from .memory import ProcessMemory
from .tasks import HostTasks

OPTIONS = (abi.PTRACE_O_TRACESECCOMP | abi.PTRACE_O_TRACEFORK | abi.PTRACE_O_TRACEVFORK
           | abi.PTRACE_O_TRACECLONE | abi.PTRACE_O_TRACEEXEC | abi.PTRACE_O_EXITKILL)
_GROUP_STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
_U64 = (1 << 64) - 1


class _X86_64Regs:
    """struct user_regs_struct through PTRACE_GETREGS/SETREGS."""

    ORIG_RAX, RAX = 15, 10
    ARGS = (14, 13, 12, 7, 9, 8)  # rdi, rsi, rdx, r10, r8, r9

    def __init__(self):
        self.regs = (ctypes.c_ulonglong * 27)()
        self._addr = ctypes.addressof(self.regs)

    def syscall(self, tid: int) -> tuple[int, list[int]]:
        ptrace(abi.PTRACE_GETREGS, tid, 0, self._addr)
        r = self.regs
        nr = ctypes.c_int64(r[self.ORIG_RAX]).value
        return nr, [r[i] for i in self.ARGS]

    def skip(self, tid: int, result: int) -> None:
        self.regs[self.ORIG_RAX] = _U64  # -1: the kernel skips the syscall
        self.regs[self.RAX] = result & _U64
        ptrace(abi.PTRACE_SETREGS, tid, 0, self._addr)


class _Aarch64Regs:
    """struct user_pt_regs through PTRACE_GETREGSET(NT_PRSTATUS); the syscall number is
    changed through the NT_ARM_SYSTEM_CALL regset, as x8 is not consulted again."""

    def __init__(self):
        self.regs = (ctypes.c_ulonglong * 34)()  # x0..x30, sp, pc, pstate
        self._iov = iovec(ctypes.addressof(self.regs), ctypes.sizeof(self.regs))
        self._nr = ctypes.c_int(-1)
        self._nr_iov = iovec(ctypes.addressof(self._nr), ctypes.sizeof(self._nr))

    def syscall(self, tid: int) -> tuple[int, list[int]]:
        self._iov.iov_len = ctypes.sizeof(self.regs)
        ptrace(abi.PTRACE_GETREGSET, tid, abi.NT_PRSTATUS, ctypes.addressof(self._iov))
        r = self.regs
        return ctypes.c_int64(r[8]).value, [r[i] for i in range(6)]

    def skip(self, tid: int, result: int) -> None:
        self._nr.value = -1
        ptrace(abi.PTRACE_SETREGSET, tid, abi.NT_ARM_SYSTEM_CALL, ctypes.addressof(self._nr_iov))
        self.regs[0] = result & _U64
        ptrace(abi.PTRACE_SETREGSET, tid, abi.NT_PRSTATUS, ctypes.addressof(self._iov))


class PtracePlatform(Platform):
    name = "ptrace"
    trap = abi.SECCOMP_RET_TRACE

    def load_filter(self, program: bytes, to_sentry: int, from_sentry: int) -> None:
        seccomp_load(program, 0)

    def attach(self, pid: int) -> None:
        # The guest is blocked reading its go-ahead, so seizing it races with nothing.
        ptrace(abi.PTRACE_SEIZE, pid, 0, OPTIONS)

    def serve(self, pid: int, sentry) -> int:
        regs = _X86_64Regs() if _pyplatform.machine() == "x86_64" else _Aarch64Regs()
        host = HostTasks()
        handle = sentry.handle
        WALL = abi.WALL
        EVENT_SECCOMP, EVENT_STOP = abi.PTRACE_EVENT_SECCOMP, abi.PTRACE_EVENT_STOP
        CONT, LISTEN = abi.PTRACE_CONT, abi.PTRACE_LISTEN
        try:
            while True:
                # Orphans are reparented to the Sentry (init of the pid namespace), so this
                # also reaps guest processes that are not traced any more.
                tid, status = os.waitpid(-1, WALL)
                if not os.WIFSTOPPED(status):
                    if tid == pid:
                        return status
                    host.forget(tid)
                    continue
                sig, event = os.WSTOPSIG(status), status >> 16
                try:
                    if event == EVENT_SECCOMP:
                        nr, args = regs.syscall(tid)
                        result = handle(Task(tid, ProcessMemory(tid), host, regs.regs), nr, args)
                        if result is not CONTINUE:
                            regs.skip(tid, result)
                        ptrace(CONT, tid, 0, 0)
                    elif event == EVENT_STOP:
                        # A group-stop is kept (LISTEN) until SIGCONT; any other event-stop
                        # (a new tracee's first stop, an interrupt) just resumes.
                        ptrace(LISTEN if sig in _GROUP_STOP_SIGNALS else CONT, tid, 0, 0)
                    elif event:
                        ptrace(CONT, tid, 0, 0)  # fork, vfork, clone, exec
                    else:
                        ptrace(CONT, tid, 0, sig)  # signal-delivery-stop: deliver it
                except ProcessLookupError:
                    pass  # killed while stopped (SIGKILL, or another thread's exit_group)
        finally:
            host.close()
