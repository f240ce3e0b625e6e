"""The first steps of a process the Sentry forks to serve it (the gofer, the publisher, the
terminal watcher)."""

import gc
import os
import signal

from .. import abi
from .linux import prctl


def detach_helper(parent: int, keep: set[int], placeholder: int, session: bool = True) -> bool:
    """In a freshly forked helper: its own session (no terminal signals: ^C or ^Z aimed at
    the sandbox must not stop it; not with `session` False, for the terminal watcher, which
    wants them), death with `parent` (False if that already happened),
    not dumpable (no ptrace or /proc/PID/fd by same-uid processes), and no descriptors but
    `keep`. 0, 1 and 2 become `placeholder` rather than free numbers, which a file or socket
    opened later would take, receiving any stray write to stdout or stderr."""
    # The parent's objects stay alive (the helper's frame never returns), but a garbage
    # collection could still finalise one of its files and close an fd number now reused.
    gc.freeze()
    if session:
        os.setsid()
    prctl(abi.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before PDEATHSIG was armed
        return False
    prctl(abi.PR_SET_DUMPABLE, 0)
    for fd in {0, 1, 2} - keep - {placeholder}:
        os.dup2(placeholder, fd, inheritable=False)
    low = 0
    for fd in sorted(keep | {0, 1, 2}):
        if low < fd:  # os.closerange(0, 0) closes everything (close_range(0, ~0U))
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 30)
    try:
        signal.set_wakeup_fd(-1)  # a parent's wakeup fd is closed now
    except ValueError:
        pass
    return True
