"""The ptrace platform.

The guest's filter returns SECCOMP_RET_TRACE for the syscalls the Sentry handles; each one
stops the thread with PTRACE_EVENT_SECCOMP. A filter the guest stacks on its own may return
RET_TRACE too, and the Sentry, the only tracer, sees that stop as well; so its own traps carry
SENTRY_TRAP_DATA in SECCOMP_RET_DATA. Among stacked filters returning the same action the
kernel reports the data of the most recently installed one, so other data means a guest filter
returned RET_TRACE, whatever the Sentry's own said: the call is skipped with ENOSYS, as the
kernel does for RET_TRACE with no tracer (the guest has none of its own), which is at least as
strict as any answer of the Sentry. The marker itself proves nothing (a guest filter may return
it too), so with it the Sentry decides from its own table, exactly as for its own trap.

The Sentry reads the registers, dispatches, and either skips the syscall (number set to -1)
with the result in the return register, or lets the kernel run it. The guest is seized right
after fork, before it runs any of its own code, with options that follow fork, vfork, clone
and exec through the whole tree and kill every tracee if the Sentry dies (PTRACE_O_EXITKILL).

An InstallFd answer is carried out by syscall injection over a per-process courier socket
(see inject.py; x86_64 only, ENOSYS on aarch64). Injection waits for its own thread's stops;
whatever else it reaps meanwhile is queued in `pending` and handled by the loop in order.
"""

import ctypes
import errno
import os
import signal
import threading
import time
from collections import deque

from .. import abi
from ..sentry.dispatch import CONTINUE, ENTER_STRICT, InstallFd, WaitFd
from ..sentry.kernel.task import Task
from .base import Platform
from .inject import (ARGS, NREGS, ORIG_RAX, RAX, RIP, SYSCALL_INSN, Couriers,
                     U64, sigaction_flags, unsupported_install)
from .linux import iovec, ptrace, seccomp_load, tkill, wait_any
from .memory import ProcessMemory
from . import strict
from .strict import STRICT_TRAP_DATA
from .tasks import HostTasks
from .waiting import WAKE, signals, wait_in_thread

# TRACESYSGOOD: the syscall-stops of injected calls are told apart from a real SIGTRAP.
OPTIONS = (abi.PTRACE_O_TRACESECCOMP | abi.PTRACE_O_TRACEFORK | abi.PTRACE_O_TRACEVFORK
           | abi.PTRACE_O_TRACECLONE | abi.PTRACE_O_TRACEEXEC | abi.PTRACE_O_EXITKILL
           | abi.PTRACE_O_TRACESYSGOOD)
SENTRY_TRAP_DATA = 0x5E17  # SECCOMP_RET_DATA of the Sentry's own RET_TRACE
_ENOSYS = -errno.ENOSYS


def _no_strict_mode(tid: int, pending, saved) -> int:
    return -errno.EINVAL  # as before: the kernel's answer under a filter (strict.py)


class _X86_64Regs:
    """struct user_regs_struct through PTRACE_GETREGS/SETREGS."""

    def __init__(self):
        self.regs = (ctypes.c_ulonglong * NREGS)()
        self._addr = ctypes.addressof(self.regs)

    def syscall(self, tid: int) -> tuple[int, list[int]]:
        ptrace(abi.PTRACE_GETREGS, tid, 0, self._addr)
        r = self.regs
        nr = ctypes.c_int64(r[ORIG_RAX]).value
        return nr, [r[i] for i in ARGS]

    def skip(self, tid: int, result: int) -> None:
        self.regs[ORIG_RAX] = U64  # -1: the kernel skips the syscall
        self.regs[RAX] = result & U64
        ptrace(abi.PTRACE_SETREGS, tid, 0, self._addr)

    def restart(self, tid: int) -> None:
        """Skip the syscall, and have the thread issue it again when it next runs (after
        the handler of a pending signal, as SA_RESTART does): back to the `syscall`
        instruction, with its number again in rax."""
        nr = self.regs[ORIG_RAX]
        self.regs[RIP] -= len(SYSCALL_INSN)
        self.skip(tid, nr)


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
        self.regs[0] = result & U64
        ptrace(abi.PTRACE_SETREGSET, tid, abi.NT_PRSTATUS, ctypes.addressof(self._iov))


class PtracePlatform(Platform):
    name = "ptrace"
    trap = abi.SECCOMP_RET_TRACE | SENTRY_TRAP_DATA

    def load_filter(self, program: bytes, to_sentry: int, from_sentry: int) -> None:
        seccomp_load(program, 0)

    def attach(self, pid: int) -> None:
        # The guest is blocked reading its go-ahead, so seizing it races with nothing.
        ptrace(abi.PTRACE_SEIZE, pid, 0, OPTIONS)
        # Whether a thread whose call waits (WaitFd) has a signal to take: its status. Opened
        # now, while the Sentry may still open a path.
        self._proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def serve(self, pid: int, sentry) -> int:
        x86_64 = os.uname().machine == "x86_64"
        regs = _X86_64Regs() if x86_64 else _Aarch64Regs()
        host = HostTasks()
        pending = deque()  # (tid, status) reaped while injecting, handled before waiting again
        couriers = Couriers(host, pending) if x86_64 else ()  # false while there are none
        install = couriers.install if x86_64 else unsupported_install
        enter_strict = strict.enter if x86_64 else _no_strict_mode
        handle = sentry.handle
        WALL = abi.WALL
        EVENT_SECCOMP, EVENT_STOP = abi.PTRACE_EVENT_SECCOMP, abi.PTRACE_EVENT_STOP
        EVENT_EXEC, SYSCALL_STOP = abi.PTRACE_EVENT_EXEC, abi.PTRACE_SYSCALL_STOP
        CONT, LISTEN, GETEVENTMSG = abi.PTRACE_CONT, abi.PTRACE_LISTEN, abi.PTRACE_GETEVENTMSG
        message = ctypes.c_ulong()
        message_addr = ctypes.addressof(message)
        waiting = {}  # tid -> the WaitFd its trapped call waits for
        strict_tids = set()  # threads in strict-mode seccomp (strict.py)
        finished = deque()  # (tid, answer, its outcome) from the waiting threads
        signal.signal(WAKE, lambda *_: None)  # only to interrupt wait_any and waiting threads
        try:
            while True:
                # Orphans are reparented to the Sentry (init of the pid namespace), so this
                # also reaps guest processes that are not traced any more.
                if finished:
                    self._finish(finished.popleft(), waiting, regs, install, pending)
                    continue
                if pending:
                    tid, status = pending.popleft()
                elif waiting:  # a finished wait interrupts this one (see _answer_later)
                    got = wait_any()
                    if got is None:
                        continue
                    tid, status = got
                else:
                    tid, status = os.waitpid(-1, WALL)
                if not os.WIFSTOPPED(status):
                    if tid == pid:
                        return status
                    waiting.pop(tid, None)
                    strict_tids.discard(tid)
                    host.forget(tid)
                    if couriers:
                        couriers.forget(tid)  # a leader is reported last: the process is gone
                    continue
                sig, event = os.WSTOPSIG(status), status >> 16
                try:
                    if event == EVENT_SECCOMP:
                        ptrace(GETEVENTMSG, tid, 0, message_addr)
                        if message.value != SENTRY_TRAP_DATA:
                            nr, _ = regs.syscall(tid)
                            if (message.value == STRICT_TRAP_DATA and tid in strict_tids
                                    and nr not in strict.ALLOWED):
                                tkill(tid, signal.SIGKILL)  # a strict thread's call ends it
                                continue
                            regs.skip(tid, _ENOSYS)  # a guest filter's own RET_TRACE
                            ptrace(CONT, tid, 0, 0)
                            continue
                        nr, args = regs.syscall(tid)
                        result = handle(Task(tid, ProcessMemory(tid), host, regs.regs), nr, args)
                        if result.__class__ is WaitFd:
                            waiting[tid] = result  # the thread stays in its seccomp-stop
                            self._answer_later(tid, result, finished)
                            continue
                        if result is not CONTINUE:
                            if result is ENTER_STRICT:
                                result = enter_strict(tid, pending, regs.regs)
                                if result == 0:
                                    strict_tids.add(tid)
                            elif result.__class__ is InstallFd:
                                answer, result = result, install(tid, regs.regs, result)
                                if answer.report is not None:
                                    answer.report(result)
                            regs.skip(tid, result)
                        ptrace(CONT, tid, 0, 0)
                    elif event == EVENT_STOP:
                        # A group-stop is kept (LISTEN) until SIGCONT; any other event-stop
                        # (a new tracee's first stop, an interrupt) resumes, once a new
                        # process has dropped any courier it inherited.
                        if sig in abi.GROUP_STOP_SIGNALS:
                            ptrace(LISTEN, tid, 0, 0)
                        else:
                            if couriers:
                                couriers.first_stop(tid)
                            ptrace(CONT, tid, 0, 0)
                    elif event:
                        if event == EVENT_EXEC and couriers:
                            couriers.forget(tid)  # close-on-exec; the execing thread now leads
                        ptrace(CONT, tid, 0, 0)  # fork, vfork, clone, exec
                    elif sig == SYSCALL_STOP:
                        ptrace(CONT, tid, 0, 0)  # never expected here: injection waits for its own
                    else:
                        ptrace(CONT, tid, 0, sig)  # signal-delivery-stop: deliver it
                except ProcessLookupError:
                    pass  # killed while stopped (SIGKILL, or another thread's exit_group)
        finally:
            if couriers:
                couriers.close()
            host.close()

    def _answer_later(self, tid: int, answer: WaitFd, finished: deque) -> None:
        """Waits for `answer` in threads of its own while `tid` stays stopped; the tracee
        is only ever touched by the loop's thread (ptrace requires it), so the outcome is
        queued in `finished`, and the loop woken until it has taken it."""
        def still_waiting() -> bool:
            pending, _ = signals(self._proc, tid)
            return not pending

        def done(outcome) -> None:
            item = (tid, answer, outcome)
            finished.append(item)
            main = threading.main_thread().ident
            while item in finished:  # a signal just before wait_any would be missed
                signal.pthread_kill(main, WAKE)
                time.sleep(0.01)

        wait_in_thread(answer, still_waiting, done)

    def _finish(self, item, waiting: dict, regs, install, pending) -> None:
        """Answers the call a WaitFd kept waiting: its descriptor or error, or, when a signal
        came first, EINTR or a restart after the handler, as Linux decides for a call that
        blocks (restart unless a handler without SA_RESTART runs)."""
        tid, answer, outcome = item
        if waiting.get(tid) is not answer:  # the thread died meanwhile
            if outcome is not None and outcome >= 0:
                os.close(outcome)
            return
        del waiting[tid]
        try:
            regs.syscall(tid)  # the loop's register buffer served other threads meanwhile
            if outcome is None:
                if self._restarts(tid, regs, pending):
                    regs.restart(tid)
                else:
                    regs.skip(tid, -errno.EINTR)
            else:
                if outcome >= 0:
                    outcome = install(tid, regs.regs, InstallFd(outcome, answer.cloexec))
                if answer.report is not None:
                    answer.report(outcome)
                regs.skip(tid, outcome)
            ptrace(abi.PTRACE_CONT, tid, 0, 0)
        except ProcessLookupError:
            pass

    def _restarts(self, tid: int, regs, pending) -> bool:
        pending_signals, caught = signals(self._proc, tid)
        for sig in range(1, 65):
            if pending_signals & caught & (1 << (sig - 1)):
                if not hasattr(regs, "restart"):
                    return False
                return bool(sigaction_flags(tid, regs.regs, pending, sig) & abi.SA_RESTART)
        return hasattr(regs, "restart")  # no handler runs: stopped, ignored or fatal
