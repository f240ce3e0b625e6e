"""The terminal watcher: ^C, ^\\ and ^Z on the user's terminal for a guest whose pid 1 would
drop them.

The guest's command is init of its pid namespace, and the kernel drops every signal an init
has no handler for, even one its terminal sends: natively `sleep 10` dies of ^C, as pid 1
it would not. The Sentry delivers such a signal as an ordinary process would get it
(sys_signal.deliver_to_init), but the terminal's signal goes to the foreground process
group alone, never to the Sentry. So a small process of the Sentry's joins the guest's
process group (same session: the front end's) and waits for the terminal's signals there:
^C, ^\\, ^Z, and SIGTTIN and SIGTTOU, which the terminal sends a background group that reads
or writes it. One that the kernel sent (SI_KERNEL: the terminal; a guest's kill(0) is
SI_USER and is ignored) is passed to the Sentry as a real-time signal of its own, SIGNALS'
index above SIGRTMIN. The Sentry puts it in that group before the guest runs its command,
so that no key is missed.

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

# interrupt, quit (the terminal's killing keys); suspend, and a background group's read and
# write of the terminal (its stopping signals)
SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
_SI_KERNEL = 0x80


# The Sentry's question "have you passed on every key so far?", and the watcher's answer.
FLUSH = signal.SIGRTMIN + len(SIGNALS)


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


def start_watcher(guest_pgrp: int, placeholder: int) -> int | None:
    """On a terminal, fork the watcher into the process group `guest_pgrp` (the guest's, in
    the caller's pid numbering), and return its pid. Call it from the Sentry's main thread
    before the Sentry confines itself, with FLUSH blocked; `placeholder` (an empty
    directory) stands in for the watcher's 0, 1 and 2."""
    if not wanted():
        return None
    program = _build_filter()
    parent = os.getpid()
    # Forked with SIGNALS blocked, so that none of them reaches a handler of the Sentry's
    # there, and no stop signal stops it (and ^C with it), and put in the guest's group by
    # both (whichever comes first, as a shell does for a job): a key typed as soon as the
    # guest runs reaches it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        child = os.fork()
        if child == 0:
            try:
                _watch(parent, guest_pgrp, placeholder, program)
            finally:
                os._exit(0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        os.setpgid(child, guest_pgrp)
    except OSError:
        pass  # the watcher's own call reports it
    return child


def _watch(parent: int, guest_pgrp: int, placeholder: int, program: bytes) -> None:
    if not detach_helper(parent, set(), placeholder, session=False):
        return
    for sig in signal.valid_signals():
        if callable(signal.getsignal(sig)) or sig in SIGNALS:  # the Sentry's handlers, and
            signal.signal(sig, signal.SIG_DFL)  # what it ignores (SIGNALS are blocked)
    try:
        os.setpgid(0, guest_pgrp)
    except OSError:
        return  # the guest left its process group already: nothing to watch
    set_capabilities(frozenset())
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    seccomp_load(program, 0)
    while True:
        info = signal.sigwaitinfo((*SIGNALS, FLUSH))
        if info.si_signo == FLUSH:
            if info.si_pid == parent:  # not a guest's
                os.kill(parent, FLUSH)
        elif info.si_code == _SI_KERNEL:
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
