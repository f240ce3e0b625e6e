"""Process semantics in the sandbox against Linux, with tests/programs/proc_conformance.c.

The program prints one line per check: fork, wait4 and waitid (exit codes, deaths by signal,
WNOHANG, ECHILD, P_PID, P_PGID, P_ALL, P_PIDFD, WSTOPPED/WCONTINUED, WNOWAIT, the siginfo),
orphans adopted by init or by a PR_SET_CHILD_SUBREAPER, process groups and sessions, kill,
tkill and tgkill (signal 0, ESRCH, EINVAL, tgid mismatches, kill(-pgid), kill(0), kill(-1)),
signals between threads, SIGCHLD (handler, sigwaitinfo, SA_NOCLDSTOP, SIG_IGN, SA_NOCLDWAIT),
and signals aimed at init itself. Pids are printed as roles ("init", "child", "grandchild"
...), never as numbers, and every event is ordered by a pipe, a wait or a blocked signal, so
that a run's output is a function of the kernel's semantics only.

The oracle is the same program run natively as init (pid 1) of a fresh pid namespace
(`unshare --pid --fork --mount-proc`, as root), which is what the sandbox makes of its
command. Each section of the program is a run of its own, so that a check that kills init in
one section does not hide the others; a sandboxed run must print exactly what the native one
printed and exit as it did. One difference of set-up is evened out by the program itself:
the sandbox gives its init a process group of its own (boot's _take_terminal), unshare leaves
it in the caller's, so the program starts with setpgid(0, 0). One check is a stress, not a
semantic: 500 children killed and reaped while they may be in their first, emulated, getpid;
the Sentry must answer for a task that dies under it and carry on.

Init protection, the one difference on purpose: Linux discards any signal its handler-less
init would die or stop of, when sent from inside its namespace (kill(getpid(), SIGTERM),
a child's kill(1, SIGTERM)). The sandbox's init is an ordinary process to its user
(`sh -c 'kill $$'` must end the sandbox), so there it dies. A signal that was blocked when
sent is the kernel's in the sandbox too, and is dropped on unblocking as Linux drops it.
The program prints the lines that only the protection lets through last, each beginning
"pid1.survived"; natively the run goes on to exit 0, and the sandboxed run must print
everything before the first of them, and nothing after, and exit 128 + SIGTERM. Everything
else about signals to init (handlers, si_pid, si_code, blocked signals, ignored ones) is
compared line for line, like any other process's.
"""

import difflib
import os
import signal
import subprocess

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the native oracle needs root (unshare --pid)")

SECTIONS = ("init", "wait4", "waitid", "orphans", "groups", "kill", "threads", "sigchld", "pid1")
KILLS_INIT = ("pid1-kill-self", "pid1-kill-from-child")
SURVIVED = "pid1.survived"
TIMEOUT = 60


class Run:
    def __init__(self, r: subprocess.CompletedProcess):
        self.lines, self.returncode, self.stderr = r.stdout.splitlines(), r.returncode, r.stderr


@pytest.fixture(scope="module")
def native(programs):
    """section → Run of the program as init of a fresh pid namespace, outside any sandbox."""
    runs = {}

    def run(section: str) -> Run:
        if section not in runs:
            argv = ["unshare", "--pid", "--fork", "--mount-proc",
                    programs["proc_conformance"], section]
            runs[section] = Run(subprocess.run(argv, check=False, stdin=subprocess.DEVNULL,
                                               capture_output=True, text=True,
                                               timeout=TIMEOUT))
        return runs[section]

    return run


def expected_in_sandbox(oracle: Run) -> tuple[list[str], int]:
    """What the sandbox must print and exit with, given the native run."""
    for i, line in enumerate(oracle.lines):
        if line.startswith(SURVIVED):
            return oracle.lines[:i], 128 + signal.SIGTERM
    return oracle.lines, 0


@pytest.mark.parametrize("section", SECTIONS + KILLS_INIT)
def test_native_oracle_is_sound(native, section):
    """Natively, every section completes, names every pid it meets, and prints the lines of
    init protection only at its end."""
    oracle = native(section)
    assert oracle.returncode == 0, oracle.stderr
    assert oracle.lines, oracle.stderr
    assert not [ln for ln in oracle.lines if "unknown:" in ln or ln.startswith("FATAL")]
    survived = [i for i, ln in enumerate(oracle.lines) if ln.startswith(SURVIVED)]
    assert survived == list(range(len(oracle.lines) - len(survived), len(oracle.lines)))
    assert bool(survived) == (section in KILLS_INIT)


@pytest.mark.parametrize("section", SECTIONS + KILLS_INIT)
def test_same_as_linux(sandbox, programs, native, section):
    oracle = native(section)
    assert oracle.returncode == 0, oracle.stderr
    lines, code = expected_in_sandbox(oracle)
    r = sandbox(programs["proc_conformance"], section, stdin=subprocess.DEVNULL,
                timeout=TIMEOUT)
    got = r.stdout.splitlines()
    diff = "\n".join(difflib.unified_diff(lines, got, "native", "sandboxed", lineterm=""))
    assert got == lines, f"{diff}\n(exit {r.returncode})\n{r.stderr[-2000:]}"
    assert r.returncode == code, r.stderr[-2000:]
