"""A guest thread as the Sentry's handlers see it."""


class Task:
    """One guest thread: its ids in the sandbox's pid namespace, its memory and, where the
    platform has them, its registers at the syscall (None on the seccomp platform).

    The platform builds a Task for each captured syscall; handlers read `tid`, `tgid`,
    `ppid()`, `mem` and `regs` and never reach the platform themselves."""

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
