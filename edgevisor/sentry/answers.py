"""What a handler may answer besides a number: run the call as issued, install a descriptor,
or enter strict-mode seccomp."""

CONTINUE = object()  # let the host kernel run the syscall exactly as issued
# Put the asking thread in strict-mode seccomp (platform/strict.py); the platform answers 0
# or the errno of the filter's installation.
ENTER_STRICT = object()


class InstallFd:
    """An answer that installs the Sentry's host descriptor `fd` in the asking task's fd table
    at the lowest free number, close-on-exec if `cloexec`, and makes that number the
    syscall's result. The platform closes `fd` once it has been installed (or has failed),
    and tells `report`, when set (--strace), the syscall's result: the number, or -errno."""

    __slots__ = ("fd", "cloexec", "report")

    def __init__(self, fd: int, cloexec: bool, report=None):
        self.fd = fd
        self.cloexec = cloexec
        self.report = report

    def __repr__(self) -> str:
        return f"InstallFd({self.fd}, cloexec={self.cloexec})"


class WaitFd:
    """An answer whose descriptor is not there yet: opening a fifo waits for its peer, and
    the Sentry must go on serving its other tasks meanwhile. The platform calls `wait()` in a
    thread of its own and installs the descriptor it returns as for InstallFd (an OSError is
    the call's error). If the task dies or a signal interrupts it first, the platform
    signals that thread, and `wait()` then fails with EINTR at once."""

    __slots__ = ("wait", "cloexec", "report")

    def __init__(self, wait, cloexec: bool):
        self.wait = wait
        self.cloexec = cloexec
        self.report = None
