"""Signals aimed at the guest's init.

Everything else about kill, tkill and tgkill is the kernel's: the guest's pid namespace holds
only its own tasks, so an id outside it is ESRCH and kill(-1) reaches only the sandbox. But
the kernel protects a namespace's init from every signal it has no handler for (from its own
namespace even SIGKILL; from above, all but SIGKILL and SIGSTOP), as it protects a machine's
init. To its user the guest's pid 1 is an ordinary command: `sh -c 'kill -9 $$'` and
`kill -15 $$` die, and ^C or a SIGTERM to edgevisor stops `edgevisor do -- sleep 100`. So a
signal the protection would drop whose default action terminates (one init neither handles
nor ignores) is delivered by the Sentry, from the namespace above, as a SIGKILL, remembered
so that the exit status still says which signal. One that init blocks (dash blocks signals
while it waits for a child) the kernel keeps pending and drops once init unblocks it with no
handler: the Sentry watches for that moment (`_queue`) and delivers it then. Every other
signal is the kernel's to deliver, with its true sender: handled and ignored ones as for
anyone; and, as in a container, signals whose default is to stop do not stop pid 1, but for
the terminal's own (^Z, a background read or write), for which stop_init stops it as the
rest of its process group is stopped (see job_control).
Only kill, tkill and tgkill aimed at pid 1 itself are seen here, and on a terminal a kill(0)
with a stop signal from pid 1's group: other kill(0) or kill(-pgid) that include it get the
kernel's init protection.
"""

import os
import signal
import threading
import time

from ... import abi
from ..answers import CONTINUE
from ..kernel.fs import int32
from ...platform.linux import syscall
from ...platform.waiting import start_thread

# The stop signals a terminal's job control sends, which init's protection drops too, and
# which stop_init stops it for on a terminal.
STOPS = abi.STOP_SIGNALS
# Default action: nothing, continue, or stop.
_NOT_TERMINATING = frozenset({signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH, signal.SIGCONT,
                              signal.SIGSTOP, *STOPS})


def deliver_to_init(k, sig: int) -> bool:
    """Send `sig` to the guest's init as to an ordinary process, when the kernel's init
    protection would drop it: a signal it neither handles, ignores nor blocks, whose default
    action terminates it, is a SIGKILL (remembered for the exit status); a blocked one is
    that once init unblocks it with no handler. Returns False when the kernel's own delivery
    is right (a handled, ignored or blocked signal, one whose default is to do nothing or to
    stop, or SIGKILL and SIGSTOP from outside): a blocked one must be pending there too, for
    a handler init installs before it unblocks."""
    if sig in _NOT_TERMINATING:
        return False
    return _as_for_an_ordinary_process(k, sig, lambda: _kill_init(k, sig))


def _kill_init(k, sig: int) -> None:
    k.init_killed_by = sig
    syscall("kill", k.init, signal.SIGKILL)


def stop_init(k, sig: int, stopped) -> bool:
    """Stop the guest's init for the stop signal `sig` (the terminal's, to its process
    group) as an ordinary process is stopped, when the kernel's init protection drops it:
    when it neither handles nor ignores it, at once, or once it unblocks it; with SIGSTOP
    from the namespace above, which the protection lets through. Then calls `stopped()`.
    Returns whether it stopped it now."""
    return _as_for_an_ordinary_process(k, sig, lambda: _stop_init(k, stopped))


def _as_for_an_ordinary_process(k, sig: int, act) -> bool:
    """act() now, for a `sig` init neither handles nor ignores nor blocks; once init
    unblocks it, for one it blocks (queued); never for one it handles or ignores, which the
    kernel delivers itself. Returns whether it acted now."""
    blocked, caught, ignored = _dispositions(k, k.init)
    bit = 1 << (sig - 1)
    if (caught | ignored) & bit:
        return False
    if blocked & bit:
        _queue(k, sig, act)
        return False
    act()
    return True


def _stop_init(k, stopped) -> None:
    syscall("kill", k.init, signal.SIGSTOP)
    stopped()


# Signals sent to init while it blocked them, each with what to do once init takes it with
# no handler (the kernel then drops it), watched by one thread while there are any. Polled:
# no event tells the Sentry that a task changed its mask, and trapping every rt_sigprocmask
# (and sigreturn, sigsuspend, pselect ...) for it would slow every guest.
_POLL = 0.005
_queued_lock = threading.Lock()


def _queue(k, sig: int, deliver) -> None:
    with _queued_lock:
        watching = bool(k.init_queued)
        k.init_queued[sig] = deliver
    if not watching:
        start_thread(_watch_queued, k)


def _watch_queued(k) -> None:
    while True:
        time.sleep(_POLL)
        try:
            blocked, caught, ignored, pending = _dispositions(k, k.init, pending=True)
            alive = True
        except ProcessLookupError:
            alive = False
        taken = []
        with _queued_lock:
            for sig in list(k.init_queued):
                bit = 1 << (sig - 1)
                if alive and (blocked | pending) & bit:
                    continue  # still blocked, or unblocked and not yet taken
                deliver = k.init_queued.pop(sig)
                if alive and not (caught | ignored) & bit:
                    taken.append(deliver)
            done = not k.init_queued
        for deliver in taken:
            try:
                deliver()
            except ProcessLookupError:
                pass  # init was reaped since its status was read: nothing to deliver to
        if done:
            return


def _dispositions(k, pid: int, pending: bool = False) -> tuple[int, ...]:
    """(blocked, caught, ignored) signal masks of `pid`'s main thread, from its status;
    with `pending`, then its pending signals (its own and its process's)."""
    masks = {b"SigBlk:": 0, b"SigCgt:": 0, b"SigIgn:": 0, b"SigPnd:": 0, b"ShdPnd:": 0}
    for line in k.pids.status(pid).splitlines():
        key = line[:7]
        if key in masks:
            masks[key] = int(line.split()[1], 16)
    found = masks[b"SigBlk:"], masks[b"SigCgt:"], masks[b"SigIgn:"]
    return (*found, masks[b"SigPnd:"] | masks[b"ShdPnd:"]) if pending else found


def stop_action(k, t, a):
    """rt_sigaction(sig, act, ...) setting the action of a stop signal, which the filter
    traps on a terminal only (platform/bpf.py) for the guest's job: one of init's is seen
    by it before the kernel applies it (job_control.GuestJob.sigaction)."""
    sig = int32(a[0])
    if k.job and k.init and sig in STOPS and a[1]:
        try:
            if t.tgid == k.init:
                act = t.mem.read(a[1], abi.KERNEL_SIGACTION.size)
                handler, flags = abi.KERNEL_SIGACTION.unpack(act)[:2]
                k.job.sigaction(sig, handler, flags)
        except OSError:
            pass  # a bad pointer (the kernel's EFAULT follows), or the task is gone
    return CONTINUE


def _to_init(k, sig: int):
    if not 0 < sig < 65:
        return CONTINUE  # the existence check (0), or the kernel's EINVAL
    if sig in STOPS:
        if k.job:
            k.job.stop(sig)
        return CONTINUE  # and the kernel's delivery, to a handler
    return 0 if deliver_to_init(k, sig) else CONTINUE


def sys_kill(k, t, a):
    pid = int32(a[0])
    if pid == 0 and k.job and int32(a[1]) in STOPS and k.init:
        # kill(0) by a task of init's process group (vim's suspend): the kernel stops the
        # others and drops it for init, which stop_init stops as one of them.
        try:
            if os.getpgid(t.tid) == os.getpgid(k.init) == k.init:
                k.job.stop(int32(a[1]))
        except ProcessLookupError:
            pass
        return CONTINUE
    if pid != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[1]))


sys_tkill = sys_kill  # tkill(tid, sig): tid 1 is init's main thread, as pid 1 is init


def sys_tgkill(k, t, a):
    if int32(a[0]) != 1 or int32(a[1]) != 1 or not k.init:
        return CONTINUE
    return _to_init(k, int32(a[2]))
