"""The platform interface and the parts of a guest's life both platforms share."""

import os
import select
import signal
from abc import ABC, abstractmethod

from .. import abi
from .linux import prctl


class UnsupportedPlatform(Exception):
    """The host kernel cannot run this platform."""


class Platform(ABC):
    name: str
    trap: int  # the seccomp action that hands a syscall to the Sentry

    # In the guest, before exec ---------------------------------------------------------
    @abstractmethod
    def load_filter(self, program: bytes, to_sentry: int, from_sentry: int) -> None:
        """Install the seccomp filter in the calling (guest) process."""

    # In the Sentry ----------------------------------------------------------------------
    def attach(self, pid: int) -> None:
        """Called right after fork, before the guest does anything."""

    def after_filter(self, pid: int, from_guest: int, to_guest: int) -> None:
        """Called once the guest was told to go on; the filter is being loaded."""

    @abstractmethod
    def serve(self, pid: int, sentry) -> int:
        """Answer the guest's trapped syscalls until process `pid` exits; return its wait status."""


class ChildReaper:
    """The Sentry is init of the guest's pid namespace, so every orphaned guest process ends
    up as its child: reap them all, and report when the guest's main process has exited."""

    def __init__(self, main_pid: int):
        self.main_pid = main_pid
        self.status: int | None = None
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def reap(self) -> bool:
        """Reap every exited child; True once the main process is among them."""
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | abi.WALL)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == self.main_pid:
                self.status = status
        return self.status is not None

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        os.close(self.wake_r)
        os.close(self.wake_w)


def wait_readable(fd: int) -> None:
    select.select([fd], [], [])


def die_with_parent() -> None:
    prctl(abi.PR_SET_PDEATHSIG, signal.SIGKILL)
