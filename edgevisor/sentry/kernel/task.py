"""A guest thread as the Sentry's handlers see it."""


class Task:
    """One guest thread: its ids in the sandbox's pid namespace and its memory.

    The platform builds a Task for each captured syscall; handlers read `tid`, `tgid`,
    `ppid()` and `mem` and never reach the platform themselves."""

    __slots__ = ("tid", "mem", "_host")

    def __init__(self, tid: int, mem, host):
        self.tid = tid
        self.mem = mem
        self._host = host

    @property
    def tgid(self) -> int:
        return self._host.tgid(self.tid)

    def ppid(self) -> int:
        return self._host.ppid(self.tid)
