"""Signals aimed at the guest's init.

Everything else about kill, tkill and tgkill is the kernel's: the guest's pid namespace holds
only its own tasks, so an id outside it is ESRCH and kill(-1) reaches only the sandbox. But
the kernel protects a namespace's init from every signal it has no handler for (from its own
namespace even SIGKILL; from above, all but SIGKILL and SIGSTOP), as it protects a machine's
init. To its user the guest's pid 1 is an ordinary command: `sh -c 'kill -9 $$'` and
`kill -15 $$` die, and ^C or a SIGTERM to edgevisor stops `edgevisor do -- sleep 100`. So
such a signal is delivered by the Sentry, from the namespace above, with the default action
the kernel would have taken for any other process: SIGKILL (remembered, so that the exit
status still says which signal) for one that terminates, SIGSTOP for one that stops.
"""

import signal

from ..answers import CONTINUE
from ..kernel.fs import int32
from ...platform.linux import syscall

_IGNORED_BY_DEFAULT = frozenset({signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH, signal.SIGCONT})
_STOPS = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


def deliver_to_init(k, sig: int) -> None:
    """Send `sig` to the guest's init as to an ordinary process."""
    caught, ignored = _dispositions(k, k.init)
    bit = 1 << (sig - 1)
    if sig in (signal.SIGKILL, signal.SIGSTOP) or (caught | ignored) & bit:
        syscall("kill", k.init, sig)  # delivered (or ignored) by the kernel as for anyone
    elif sig in _STOPS:
        syscall("kill", k.init, signal.SIGSTOP)
    elif sig not in _IGNORED_BY_DEFAULT:
        k.init_killed_by = sig
        syscall("kill", k.init, signal.SIGKILL)


def _dispositions(k, pid: int) -> tuple[int, int]:
    """(caught, ignored) signal masks of `pid`, from its /proc status."""
    caught = ignored = 0
    for line in k.pids.status(pid).splitlines():
        if line.startswith(b"SigCgt:"):
            caught = int(line.split()[1], 16)
        elif line.startswith(b"SigIgn:"):
            ignored = int(line.split()[1], 16)
    return caught, ignored


def _to_init(k, sig: int) -> int:
    if not 0 < sig < 65:
        return CONTINUE  # the kernel's EINVAL, or kill(1, 0)'s existence check
    deliver_to_init(k, sig)
    return 0


def sys_kill(k, t, a):
    if int32(a[0]) != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[1]))


def sys_tkill(k, t, a):
    if int32(a[0]) != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[1]))


def sys_tgkill(k, t, a):
    if int32(a[0]) != 1 or int32(a[1]) != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[2]))
