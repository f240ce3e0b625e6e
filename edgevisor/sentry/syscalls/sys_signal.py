"""Signals aimed at the guest's init.

Everything else about kill, tkill and tgkill is the kernel's: the guest's pid namespace holds
only its own tasks, so an id outside it is ESRCH and kill(-1) reaches only the sandbox. But
the kernel protects a namespace's init from every signal it has no handler for (from its own
namespace even SIGKILL; from above, all but SIGKILL and SIGSTOP), as it protects a machine's
init. To its user the guest's pid 1 is an ordinary command: `sh -c 'kill -9 $$'` and
`kill -15 $$` die, and ^C or a SIGTERM to edgevisor stops `edgevisor do -- sleep 100`. So a
signal the protection would drop whose default action terminates (one init neither handles,
ignores nor blocks) is delivered by the Sentry, from the namespace above, as a SIGKILL,
remembered so that the exit status still says which signal. Every other signal is the
kernel's to deliver, with its true sender: handled, ignored and blocked ones as for anyone;
and, as in a container, signals whose default is to stop (^Z) do not stop pid 1.
Only kill, tkill and tgkill aimed at pid 1 itself are seen here: kill(0) or kill(-pgid) that
include it get the kernel's init protection.
"""

import signal

from ..answers import CONTINUE
from ..kernel.fs import int32
from ...platform.linux import syscall

# Default action: nothing, continue, or stop (which init's protection also drops: the guest's
# pid 1 is not stopped by ^Z, as in a container).
_NOT_TERMINATING = frozenset({signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH, signal.SIGCONT,
                              signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGSTOP})


def deliver_to_init(k, sig: int) -> bool:
    """Send `sig` to the guest's init as to an ordinary process, when the kernel's init
    protection would drop it: a signal it neither handles, ignores nor blocks, whose default
    action terminates it, is a SIGKILL (remembered for the exit status). Returns False when
    the kernel's own delivery is right (a handled, ignored or blocked signal, one whose
    default is to do nothing or to stop, or SIGKILL and SIGSTOP from outside)."""
    blocked, caught, ignored = _dispositions(k, k.init)
    bit = 1 << (sig - 1)
    if (blocked | caught | ignored) & bit or sig in _NOT_TERMINATING:
        return False
    k.init_killed_by = sig
    syscall("kill", k.init, signal.SIGKILL)
    return True


def _dispositions(k, pid: int) -> tuple[int, int, int]:
    """(blocked, caught, ignored) signal masks of `pid`'s main thread, from its status."""
    masks = {b"SigBlk:": 0, b"SigCgt:": 0, b"SigIgn:": 0}
    for line in k.pids.status(pid).splitlines():
        key = line[:7]
        if key in masks:
            masks[key] = int(line.split()[1], 16)
    return masks[b"SigBlk:"], masks[b"SigCgt:"], masks[b"SigIgn:"]


def _to_init(k, sig: int):
    if not 0 < sig < 65:
        return CONTINUE  # the existence check (0), or the kernel's EINVAL
    return 0 if deliver_to_init(k, sig) else CONTINUE


def sys_kill(k, t, a):
    if int32(a[0]) != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[1]))


sys_tkill = sys_kill  # tkill(tid, sig): tid 1 is init's main thread, as pid 1 is init


def sys_tgkill(k, t, a):
    if int32(a[0]) != 1 or int32(a[1]) != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[2]))
