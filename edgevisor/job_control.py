"""Job control for a guest on the user's terminal: ^Z, fg and bg.

The user's shell knows one job, the front end (edgevisor), in a process group that holds
the Sentry too. It reports the job stopped when the front end stops, and its `fg` and `bg`
send that group SIGCONT (`fg` after handing it the terminal). The guest is elsewhere: in
process groups of its own, the first of which the terminal watcher shares (see
platform/terminal.py), and its command is pid 1 of its pid namespace, which the kernel does
not stop for a stop signal with its default action. So:

- ^Z reaches the guest's foreground group, and the watcher. The kernel stops the group's
  other members; the Sentry stops pid 1 as an ordinary process would be stopped
  (sys_signal.stop_init: unless it handles, ignores or blocks the signal), then writes the
  signal on a pipe to the front end. SIGTTIN and SIGTTOU, which the terminal sends a
  background group that reads or writes it, go the same way.
- The front end stops its process group with that signal (a script that runs edgevisor,
  the rest of a pipeline: what the terminal's ^Z would have stopped natively), itself
  among it with the signal's default action, but not the Sentry, which ignores them. So
  the shell says "Stopped" ("Stopped (tty input)" for SIGTTIN) and takes the terminal back.
- SIGCONT (`fg` or `bg`) continues the front end, which tells the Sentry whether its group
  has the terminal (`fg`: the shell handed it over first), with FOREGROUND or BACKGROUND
  (the Sentry, in a pid namespace of its own, sees neither group's id). On FOREGROUND the
  Sentry hands the terminal to pid 1's group; then it continues that group.
- `fg` of a job that runs in the background sends no SIGCONT: the shell only hands it the
  terminal. So while the guest runs in the background the front end looks at the
  terminal's foreground group every POLL seconds, and says FOREGROUND once it is its own.
  A guest that reads the terminal in between gets SIGTTIN, and the Sentry's request to
  stop for it finds the front end in the foreground: it says FOREGROUND instead.
- The kernel discards a stop signal for a process group that is orphaned (no member has a
  parent in another group of the session: a front end that leads its session, or whose
  shell is gone), as it discards the terminal's ^Z for such a group natively. The front
  end goes on at once, as if continued in the background: so does the guest.
"""

import os
import select
import signal

from . import abi
from .platform import terminal
from .sentry.syscalls.sys_signal import STOPS, deliver_to_init, stop_init

_FLUSH_TIMEOUT = 2.0  # seconds: the watcher answers at once, unless the guest killed it
# The front end's word to the Sentry after a SIGCONT: continue the guest, with the terminal.
FOREGROUND = terminal.FLUSH + 1
BACKGROUND = terminal.FLUSH + 2
POLL = 0.1  # seconds between the front end's looks at the terminal, while in the background


class GuestJob:
    """The Sentry's half: the guest, stopped and continued as one job with the front end."""

    def __init__(self, kernel, to_front_end: int):
        self.kernel = kernel
        self.to_front_end = to_front_end
        self.watcher = None  # a pidfd of the terminal watcher, once it runs
        self.stopped = False  # by us, until a SIGCONT: a second ^Z in between is the same stop
        # The stop signals whose action init last set to a handler that resets itself
        # (SA_RESETHAND): the kernel sets SIG_DFL again as it delivers one, unseen.
        self.resets: set[int] = set()

    def key(self, sig: int) -> None:
        """The terminal sent `sig` to the guest's first process group (the watcher says so):
        pid 1, if it is still in that group, gets it as an ordinary process would."""
        k = self.kernel
        try:
            if os.getpgid(k.init) != k.init:
                return
            if sig in (signal.SIGTTIN, signal.SIGTTOU) and _foreground() == k.init:
                return  # sent before `fg` handed the group the terminal: stale
            if sig in STOPS:
                self.stop(sig)
            else:
                deliver_to_init(k, sig)
        except ProcessLookupError:
            pass  # pid 1 is gone

    def stop(self, sig: int) -> None:
        """The stop signal `sig` reached pid 1 (the terminal's, or the guest's own kill)."""
        if sig in self.resets:
            # Its handler takes it and is reset (or was: its status shows SIG_DFL then, not
            # the action this signal found).
            self.resets.discard(sig)
            return
        if self.stopped:
            return
        # Set first: a handler of the Sentry's (another key) can run within this one.
        self.stopped, now = True, False
        try:
            now = stop_init(self.kernel, sig, lambda: self._stopped(sig))
        finally:
            if not now:  # not stopped, or not yet (blocked): then _stopped sets it
                self.stopped = False

    def sigaction(self, sig: int, handler: int, flags: int) -> None:
        """pid 1 is about to set the stop signal `sig`'s action, held in its rt_sigaction
        until this returns. The keys the terminal sent before are judged first, by the
        action they found: a handler that sets SIG_DFL and then stops its process itself
        (less, vim) is stopped once, by itself."""
        self._flush()
        if handler not in (signal.SIG_DFL, signal.SIG_IGN) and flags & abi.SA_RESETHAND:
            self.resets.add(sig)
        else:
            self.resets.discard(sig)

    def _flush(self) -> None:
        """Take every key the watcher has had: it answers FLUSH after the signals it had
        before it (the kernel hands out lower numbers first, and the terminal's are below
        the real-time ones), and the Sentry gets the keys it passes on before the answer,
        for the same reason. Their handlers wait meanwhile: they are taken here, in order."""
        if self.watcher is None:
            return
        keys = {terminal.to_sentry(s) for s in terminal.SIGNALS}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, keys)
        try:
            while signal.sigtimedwait({terminal.FLUSH}, 0):
                pass  # a late answer to an earlier flush
            try:
                signal.pidfd_send_signal(self.watcher, terminal.FLUSH)
            except ProcessLookupError:
                self.watcher = None  # the guest killed it (it is in the guest's group)
                return
            while True:
                info = signal.sigtimedwait({*keys, terminal.FLUSH}, _FLUSH_TIMEOUT)
                if info is None or info.si_signo == terminal.FLUSH:
                    break
                self.key(terminal.from_watcher(info.si_signo))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _stopped(self, sig: int) -> None:
        self.stopped = True
        try:
            os.write(self.to_front_end, bytes([sig]))
        except OSError:
            pass  # the front end is gone, and the Sentry with it

    def continued(self, foreground: bool) -> None:
        """The front end was continued, with the terminal or without (FOREGROUND or
        BACKGROUND): so is pid 1's process group. The terminal first, and only then no
        longer stopped: a SIGTTIN the group got in the background may still come (and
        find it in the foreground, or stopped)."""
        try:
            group = os.getpgid(self.kernel.init)
        except ProcessLookupError:
            return
        if foreground:
            try:
                os.tcsetpgrp(0, group)
            except OSError:
                pass
        self.stopped = False
        try:
            os.killpg(group, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _foreground() -> int | None:
    try:
        return os.tcgetpgrp(0)
    except OSError:
        return None


def stop_requests() -> tuple[int, int] | None:
    """The pipe from the Sentry to the front end, made before the Sentry is forked: on a
    terminal (where the watcher is) only."""
    return os.pipe2(os.O_CLOEXEC) if terminal.wanted() else None


def wait_for_sentry(sentry_pid: int, requests: int | None) -> int:
    """The front end's wait for the Sentry, whose wait status it returns; meanwhile it
    stops whenever the Sentry asks on `requests`."""
    pidfd = os.pidfd_open(sentry_pid)
    watched = [pidfd]
    job = _FrontEndJob(sentry_pid)
    if requests is not None:
        watched.append(requests)
        signal.signal(signal.SIGCONT, lambda _s, _f: job.continued())
    try:
        while True:
            ready = select.select(watched, [], [], POLL if job.background else None)[0]
            if pidfd in ready:
                break
            if ready:
                asked = os.read(requests, 64)
                if asked:
                    job.stop(asked[-1])
                else:
                    watched.remove(requests)
            job.poll()
    finally:
        os.close(pidfd)
    return os.waitpid(sentry_pid, 0)[1]


class _FrontEndJob:
    """The front end's half."""

    def __init__(self, sentry_pid: int):
        self.sentry_pid = sentry_pid
        self.background = False  # continued without the terminal

    def stop(self, sig: int) -> None:
        """The Sentry stopped the guest for `sig`: stop as it would have, unless the shell
        has handed the job the terminal meanwhile (`fg`)."""
        if not self._has_terminal():
            _stop(sig)
        self.continued()

    def continued(self) -> None:
        self.background = not self._has_terminal()
        try:
            os.kill(self.sentry_pid, BACKGROUND if self.background else FOREGROUND)
        except ProcessLookupError:
            pass

    def poll(self) -> None:
        if self.background and self._has_terminal():
            self.continued()

    @staticmethod
    def _has_terminal() -> bool:
        try:
            return os.tcgetpgrp(0) == os.getpgrp()
        except OSError:
            return False


def ignore_stops() -> None:
    """In the Sentry: the front end's stops are not for it, it must go on to continue the
    guest (and write to the terminal from the background)."""
    for sig in STOPS:
        signal.signal(sig, signal.SIG_IGN)


def _stop(sig: int) -> None:
    """Stop the front end's process group, the front end with `sig`'s default action, until
    a SIGCONT (or not at all: an orphaned group). SIGCONT, blocked meanwhile, still
    continues a stopped process; its handler does not run for it, the caller goes on."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCONT})
    old = signal.signal(sig, signal.SIG_DFL)
    try:
        os.kill(0, sig)  # stopped here, before kill returns
        while signal.sigtimedwait({signal.SIGCONT}, 0):
            pass
    finally:
        signal.signal(sig, old)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
