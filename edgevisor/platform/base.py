"""The platform interface and the parts of a guest's life both platforms share."""

import signal
from abc import ABC, abstractmethod

from .. import abi
from . import SENTRY_THREADS
from .linux import prctl


class Platform(ABC):
    name: str
    trap: int  # the seccomp action that hands a syscall to the Sentry
    sentry_threads: int = SENTRY_THREADS["ptrace"]  # the Sentry's threads while it serves

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


def die_with_parent() -> None:
    prctl(abi.PR_SET_PDEATHSIG, signal.SIGKILL)
