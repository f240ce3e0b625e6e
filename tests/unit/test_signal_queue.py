"""Signals queued for a guest init that blocked them (sys_signal._watch_queued)."""

import signal
import types

from edgevisor.sentry.syscalls import sys_signal

STATUS_UNBLOCKED = b"Name:\tsh\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n" \
                   b"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" \
                   b"SigCgt:\t0000000000000000\n"


def test_an_init_reaped_before_the_delivery_ends_the_watch_quietly():
    """init unblocked the signal (its status says so), then was reaped before the Sentry's
    kill: the kill's ESRCH is no error of the Sentry's (it used to end the watching thread
    with a traceback, which the confined Sentry cannot print: it died of SIGSYS)."""
    def deliver():
        raise ProcessLookupError(3, "No such process")

    k = types.SimpleNamespace(init=1, init_queued={signal.SIGUSR2: deliver},
                              pids=types.SimpleNamespace(status=lambda pid: STATUS_UNBLOCKED))
    sys_signal._watch_queued(k)  # returns once the queue is empty
    assert k.init_queued == {}
