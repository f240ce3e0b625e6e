"""The guest's pid namespace, as the Sentry sees it from the one above.

The guest's first process is init (pid 1) of a pid namespace of its own, nested in the
Sentry's, as a container's first process is. The kernel then gives every id the guest sees
its own numbering: fork's and wait's results, siginfo, /proc, and kill, which cannot reach
past the namespace. The Sentry, one namespace up, is told tids in its own numbering (a
notification's pid, waitpid, ptrace); `virtual` turns one into the guest's.
"""

import os
from signal import pidfd_send_signal

from ... import abi
from . import procfs

# Guest ids remembered (getppid asks one at every call): each holds a pidfd.
_KEPT = 4096


class PidNamespace:
    def __init__(self, proc_fd: int):
        self.proc_fd = proc_fd  # a procfs of the Sentry's namespace
        # tid -> (pidfd, guest id). A task's id never changes while it lives; a tid reused
        # by another task is noticed by the pidfd, whose task is then gone (ESRCH).
        self._known: dict[int, tuple[int, int]] = {}

    def status(self, tid: int) -> bytes:
        """/proc/TID/status, in the Sentry's numbering."""
        return procfs.read(self.proc_fd, f"{tid}/status")

    def virtual(self, tid: int) -> int:
        """Task `tid`'s id in the guest's namespace; 0 for a task outside it (the Sentry
        itself, as getppid shows a parent in an ancestor namespace)."""
        known = self._known.get(tid)
        if known is not None:
            try:
                pidfd_send_signal(known[0], 0)
                return known[1]
            except ProcessLookupError:
                self._forget(tid)
        pidfd = os.pidfd_open(tid, abi.PIDFD_THREAD)
        try:
            guest_id = 0
            for line in self.status(tid).splitlines():
                if line.startswith(b"NSpid:"):
                    ids = line.split()[1:]
                    guest_id = int(ids[-1]) if len(ids) > 1 else 0
                    break
            pidfd_send_signal(pidfd, 0)  # the status read by name was this task's
        except BaseException:
            os.close(pidfd)
            raise
        if len(self._known) >= _KEPT:
            self._forget(next(iter(self._known)))
        self._known[tid] = (pidfd, guest_id)
        return guest_id

    def _forget(self, tid: int) -> None:
        os.close(self._known.pop(tid)[0])

    def capable(self, tid: int, cap: int) -> bool:
        """Whether task `tid` has `cap` in its effective set, which is relative to its own
        user namespace: the one that owns the guest's uts, ipc and net namespaces."""
        for line in self.status(tid).splitlines():
            if line.startswith(b"CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
        return False
