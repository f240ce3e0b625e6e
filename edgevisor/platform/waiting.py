"""Answers that wait (WaitFd): each waits in a thread of its own, so the platform's loop goes
on serving the guest's other tasks (a fifo's open waits for its peer as long as it takes).

How a waiting call learns that its task was interrupted by a signal, or died, differs per
platform (`still_waiting`); it is asked every POLL seconds, which only bounds how late the
wait is let go, never what the guest sees. It is let go by WAKE, sent to the waiting thread
(the platforms' loops have a handler for it that does nothing but interrupt), until it has
returned: a signal that lands just before the thread blocks is not seen.
"""

import os
import signal
import threading

from ..sentry.kernel import procfs

POLL = 0.02
WAKE = signal.SIGUSR1


def start_thread(target, *args) -> threading.Thread:
    """A daemon thread of the Sentry's that takes none of the process's signals but WAKE
    (made with them blocked: no window). The Sentry's handlers (a forwarded signal, the
    terminal's) must run in the main thread, whose wait they interrupt: the kernel gives a
    process signal to another thread when the main one has one pending already, and there
    its handler would wait for the guest's next trapped call, for ever if the guest sleeps."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - {WAKE})
    try:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return thread


def wait_in_thread(answer, still_waiting, done) -> None:
    """Runs `answer.wait()` in a thread, and from another one asks `still_waiting()` (False,
    or an OSError: the task no longer waits) until it returns, letting it go once the task
    no longer waits. Then calls `done(result)` from that thread: the descriptor to install,
    -errno, or None when the wait was let go (nobody is to be answered)."""
    start_thread(_watch, answer, still_waiting, done)


def _watch(answer, still_waiting, done) -> None:
    outcome = []

    def waiter():
        try:
            outcome.append(answer.wait())
        except OSError as e:
            outcome.append(-e.errno)

    thread = start_thread(waiter)
    abandoned = False
    while True:
        thread.join(POLL)
        if not thread.is_alive():
            break
        if not abandoned:
            try:
                abandoned = not still_waiting()
            except OSError:
                abandoned = True
        if abandoned:
            signal.pthread_kill(thread.ident, WAKE)
    result = outcome[0]
    if abandoned:
        if result >= 0:
            os.close(result)
        result = None
    done(result)


def signals(proc: int, tid: int) -> tuple[int, int]:
    """(the signals pending for thread `tid` that it does not block, those it catches), as
    masks, from its status in the procfs at `proc`; ProcessLookupError when it is gone."""
    fields = {}
    for line in procfs.read(proc, f"{tid}/status").splitlines():
        key, _, value = line.partition(b":")
        if key in (b"SigPnd", b"ShdPnd", b"SigBlk", b"SigCgt"):
            fields[key] = int(value, 16)
    pending = (fields[b"SigPnd"] | fields[b"ShdPnd"]) & ~fields[b"SigBlk"]
    return pending, fields[b"SigCgt"]
