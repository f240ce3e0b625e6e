"""Facts about guest threads that only the host kernel knows: thread group and parent.

The Sentry is init of the guest's pid namespace, so the ids the kernel reports to it (the
`pid` of a seccomp notification, waitpid results, ptrace event messages) are already the ids
the guest sees. What a notification does not carry is the thread group of a thread, or its
current parent; those are asked of the kernel through a pidfd.

A tid can be reused once its task is gone (pid_max may be as low as 32768), so a cached tid
keeps the pidfd it was learnt from: signalling a pidfd of a dead task fails with ESRCH, and
the entry is then learnt again.
"""

import errno
import fcntl
import os

from .. import abi
from signal import pidfd_send_signal


class HostTasks:
    SWEEP_AT = 1024  # drop entries of dead tasks once this many are cached

    def __init__(self, proc: str = "/proc"):
        self._proc = proc
        self._cache: dict[int, tuple[int, int]] = {}  # tid -> (pidfd, tgid)
        self._info = bytearray(abi.PIDFD_INFO.size)
        self._have_info = True

    def _open(self, tid: int) -> int:
        return os.pidfd_open(tid, abi.PIDFD_THREAD)

    def _query(self, pidfd: int, tid: int) -> tuple[int, int]:
        """(tgid, ppid) of the task behind pidfd, in the Sentry's (= the guest's) pid namespace."""
        if self._have_info:
            buf = self._info
            abi.PIDFD_INFO.pack_into(buf, 0, abi.PIDFD_INFO_PID, 0, 0, 0, 0)
            try:
                fcntl.ioctl(pidfd, abi.PIDFD_GET_INFO, buf, True)
                _, _, _, tgid, ppid = abi.PIDFD_INFO.unpack_from(buf)
                return tgid, ppid
            except OSError as e:
                if e.errno not in (errno.ENOTTY, errno.EINVAL):
                    raise
                self._have_info = False  # kernel older than 6.13
        fields = {}
        with open(f"{self._proc}/{tid}/status", "rb") as f:
            for line in f:
                key, _, value = line.partition(b":")
                if key in (b"Tgid", b"PPid"):
                    fields[key] = int(value)
        # The status file was read by path: make sure it still belongs to the pidfd's task.
        pidfd_send_signal(pidfd, 0)
        return fields[b"Tgid"], fields[b"PPid"]

    def _entry(self, tid: int) -> tuple[int, int]:
        entry = self._cache.get(tid)
        if entry is not None:
            try:
                pidfd_send_signal(entry[0], 0)
                return entry
            except ProcessLookupError:
                self.forget(tid)
        if len(self._cache) >= self.SWEEP_AT:
            self._sweep()
        pidfd = self._open(tid)
        try:
            tgid, _ = self._query(pidfd, tid)
        except BaseException:
            os.close(pidfd)
            raise
        entry = self._cache[tid] = (pidfd, tgid)
        return entry

    def pidfd(self, tid: int) -> int:
        """A pidfd of the live task `tid` (owned by this cache)."""
        return self._entry(tid)[0]

    def tgid(self, tid: int) -> int:
        return self._entry(tid)[1]

    def ppid(self, tid: int) -> int:
        pidfd, _ = self._entry(tid)
        return self._query(pidfd, tid)[1]

    def forget(self, tid: int) -> None:
        entry = self._cache.pop(tid, None)
        if entry is not None:
            os.close(entry[0])

    def _sweep(self) -> None:
        for tid, (pidfd, _) in list(self._cache.items()):
            try:
                pidfd_send_signal(pidfd, 0)
            except ProcessLookupError:
                self.forget(tid)

    def close(self) -> None:
        for tid in list(self._cache):
            self.forget(tid)
