"""How the Sentry captures guest syscalls: one interface, two implementations.

`seccomp` answers seccomp user notifications (SECCOMP_RET_USER_NOTIF); `ptrace` answers
PTRACE_EVENT_SECCOMP stops (SECCOMP_RET_TRACE). Both load the same filter, generated from
the syscall table, and hand the Sentry the same (task, number, args) events. Nothing outside
this package knows which one runs.
"""

import os

from .base import Platform, UnsupportedPlatform

NAMES = ("seccomp", "ptrace")


def get_platform(name: str) -> Platform:
    if name == "seccomp":
        from .seccomp import SeccompPlatform
        return SeccompPlatform()
    if name == "ptrace":
        from .ptrace import PtracePlatform
        return PtracePlatform()
    raise ValueError(f"unknown platform {name!r} (choose from {', '.join(NAMES)})")


def default_platform_name() -> str:
    """seccomp where the kernel supports user notifications (5.0+, with
    SECCOMP_USER_NOTIF_FLAG_CONTINUE from 5.5), ptrace otherwise."""
    release = os.uname().release.split(".")
    try:
        major, minor = int(release[0]), int(release[1].split("-")[0])
    except (ValueError, IndexError):
        return "ptrace"
    return "seccomp" if (major, minor) >= (5, 9) else "ptrace"


__all__ = ["NAMES", "Platform", "UnsupportedPlatform", "default_platform_name", "get_platform"]
