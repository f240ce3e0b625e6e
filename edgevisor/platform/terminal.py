"""The terminal watcher: ^C and ^\\ on the user's terminal for a guest whose pid 1 would
drop them.

The guest's command is init of its pid namespace, and the kernel drops every signal an init
has no handler for, even one its terminal sends: natively `sleep 10` dies of ^C, as pid 1
it would not. The Sentry delivers such a signal as an ordinary process would get it
(sys_signal.deliver_to_init), but the terminal's signal goes to the foreground process
group alone, never to the Sentry. So a small process of the Sentry's joins the guest's
process group (same session: the front end's) and waits for the terminal's signals there.
One that the kernel sent (SI_KERNEL: the terminal; a guest's kill(0) is SI_USER and is
ignored) is passed to the Sentry as a real-time signal of its own, SIGNALS' index above
SIGRTMIN.

The guest can reach it only with signals to its own process group, which at worst end it
(and with it ^C for pid 1): it is outside the guest's pid namespace, holds no descriptor,
has no capabilities and is not dumpable, and it runs under a filter of its own.
"""

import os
import signal

from .. import abi
from .bpf import export_bpf
from .helper import detach_helper
from .linux import prctl, seccomp_load, set_capabilities
from .sentry_filter import RUNTIME_CALLS

SIGNALS = (signal.SIGINT, signal.SIGQUIT)  # interrupt, quit: the terminal's killing keys
_SI_KERNEL = 0x80


def to_sentry(sig: int) -> int:
    """The real-time signal that tells the Sentry the terminal sent `sig`."""
    return signal.SIGRTMIN + SIGNALS.index(sig)


def from_watcher(rt_sig: int) -> int:
    return SIGNALS[rt_sig - signal.SIGRTMIN]


def wanted() -> bool:
    """Whether a run started now gets a watcher: when its stdin is a terminal."""
    return os.isatty(0)


def prepare() -> None:
    """Load libseccomp, for the watcher's filter, while the Sentry still has the host's root
    (only on a terminal: a start without one has no use for it)."""
    if wanted():
        import pyseccomp  # noqa: F401 - imported for _build_filter, later


def start_watcher(guest_pgrp: int, placeholder: int) -> None:
    """On a terminal, fork the watcher into the process group `guest_pgrp` (the guest's, in
    the caller's pid numbering). Call it from the Sentry's main thread before the Sentry
    confines itself; `placeholder` (an empty directory) stands in for the watcher's 0, 1
    and 2."""
    if not wanted():
        return
    program = _build_filter()
    parent = os.getpid()
    if os.fork() == 0:
        try:
            _watch(parent, guest_pgrp, placeholder, program)
        finally:
            os._exit(0)


def _watch(parent: int, guest_pgrp: int, placeholder: int, program: bytes) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    if not detach_helper(parent, set(), placeholder, session=False):
        return
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH, signal.SIGUSR1,
                signal.SIGCHLD, *(to_sentry(s) for s in SIGNALS)):
        signal.signal(sig, signal.SIG_DFL)  # not the Sentry's handlers
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)  # ^Z must not stop it (and ^C with it)
    try:
        os.setpgid(0, guest_pgrp)
    except OSError:
        return  # the guest left its process group already: nothing to watch
    set_capabilities(frozenset())
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    seccomp_load(program, 0)
    while True:
        info = signal.sigwaitinfo(SIGNALS)
        if info.si_code == _SI_KERNEL:
            os.kill(parent, to_sentry(info.si_signo))


def _build_filter() -> bytes:
    import pyseccomp  # loaded by prepare()

    f = pyseccomp.SyscallFilter(defaction=pyseccomp.KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    for name in (*RUNTIME_CALLS, "rt_sigtimedwait"):
        f.add_rule(pyseccomp.ALLOW, name)
    f.add_rule(pyseccomp.ALLOW, "kill", pyseccomp.Arg(0, pyseccomp.EQ, os.getpid()))
    return export_bpf(f)
