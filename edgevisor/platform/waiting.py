"""Answers that wait (WaitFd): each waits in threads of its own, so the platform's loop goes
on serving the guest's other tasks (a fifo's open waits for its peer as long as it takes).

How a waiting call learns that its task was interrupted by a signal, or died, differs per
platform (`still_waiting`); it is asked every POLL seconds, which only bounds how late the
wait is released, never what the guest sees.
"""

import os
import threading

POLL = 0.02


def wait_in_thread(answer, still_waiting, done) -> None:
    """Runs `answer.wait()` in a thread, and from another one asks `still_waiting()` (False,
    or an OSError: the task no longer waits) until it returns, releasing the wait once the
    task no longer waits. Then calls `done(result)` from that thread: the descriptor to
    install, -errno, or None when the wait was released (nobody is to be answered)."""
    threading.Thread(target=_watch, args=(answer, still_waiting, done), daemon=True).start()


def _watch(answer, still_waiting, done) -> None:
    outcome = []

    def opener():
        try:
            outcome.append(answer.wait())
        except OSError as e:
            outcome.append(-e.errno)

    thread = threading.Thread(target=opener, daemon=True)
    thread.start()
    released = False
    try:
        while True:
            thread.join(POLL)
            if not thread.is_alive():
                break
            if not released:
                try:
                    released = not still_waiting()
                except OSError:
                    released = True
            if released:
                try:
                    answer.release()
                except OSError:
                    pass  # not yet possible (see the answer's release): again next time
    finally:
        thread.join()
        answer.close()
    result = outcome[0]
    if released:
        if result >= 0:
            os.close(result)
        result = None
    done(result)
