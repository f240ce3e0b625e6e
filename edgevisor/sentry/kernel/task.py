"""A guest thread as the Sentry's handlers see it."""

import os

from ...platform.linux import pidfd_getfd


class Task:
    """One guest thread: its ids in the sandbox's pid namespace, its memory and, where the
    platform has them, its registers at the syscall (None on the seccomp platform).

    The platform builds a Task for each captured syscall; handlers read `tid`, `tgid`,
    `ppid()`, `mem` and `regs`, take a guest descriptor with `getfd`, and never reach the
    platform themselves."""

    __slots__ = ("tid", "mem", "regs", "_host")

    def __init__(self, tid: int, mem, host, regs=None):
        self.tid = tid
        self.mem = mem
        self.regs = regs
        self._host = host

    @property
    def tgid(self) -> int:
        return self._host.tgid(self.tid)

    def ppid(self) -> int:
        return self._host.ppid(self.tid)

    def identity(self) -> tuple[int, int]:
        """(tid, the inode of its pidfd): pidfs numbers a task once, never again, so this
        tells a task from a later one that reuses its tid."""
        return self.tid, os.fstat(self._host.pidfd(self.tid)).st_ino

    def getfd(self, n: int) -> int:
        """A duplicate in the Sentry (close-on-exec, the caller closes it) of the task's
        descriptor `n`, through pidfd_getfd; OSError EBADF if the task has no descriptor `n`.

        Like a memory read, it is checked afterwards with the memory accessor's `validate`
        where there is one (the seccomp platform's NOTIF_ID_VALID): a descriptor taken from
        a task that died, its tid reused by another, is never handed out."""
        fd = pidfd_getfd(self._host.pidfd(self.tid), n)
        validate = getattr(self.mem, "validate", None)
        if validate is not None:
            try:
                validate()
            except BaseException:
                os.close(fd)
                raise
        return fd
