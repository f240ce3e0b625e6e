"""How the Sentry captures guest syscalls: one interface, two implementations.

`seccomp` answers seccomp user notifications (SECCOMP_RET_USER_NOTIF); `ptrace` answers
PTRACE_EVENT_SECCOMP stops (SECCOMP_RET_TRACE). Both load the same filter, generated from
the syscall table, and hand the Sentry the same (task, number, args) events. Nothing outside
this package knows which one runs.
"""

NAMES = ("seccomp", "ptrace")
# The Sentry's threads while it serves, per platform: room a pids limit makes for them
# (each Platform's sentry_threads; here for those who do not import the platform).
SENTRY_THREADS = {"seccomp": 2, "ptrace": 1}


def __getattr__(name: str):
    # Platform (and the ctypes bindings under it) only for those who use it: the runtime's
    # light commands import platform.cgroups without them.
    if name == "Platform":
        from .base import Platform
        return Platform
    raise AttributeError(name)


def get_platform(name: str):
    if name == "seccomp":
        from .seccomp import SeccompPlatform
        return SeccompPlatform()
    if name == "ptrace":
        from .ptrace import PtracePlatform
        return PtracePlatform()
    raise ValueError(f"unknown platform {name!r} (choose from {', '.join(NAMES)})")


def default_platform_name() -> str:
    """seccomp where the kernel has seccomp user notifications, ptrace otherwise: asked of
    the kernel (SECCOMP_GET_ACTION_AVAIL), like selectors.DefaultSelector."""
    from .. import abi
    from .linux import seccomp_action_available

    return "seccomp" if seccomp_action_available(abi.SECCOMP_RET_USER_NOTIF) else "ptrace"


__all__ = ["NAMES", "SENTRY_THREADS", "Platform", "default_platform_name", "get_platform"]
