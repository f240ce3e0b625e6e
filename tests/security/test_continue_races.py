"""Check, then CONTINUE: the race of issue 10's finding 6, on both platforms.

For exec, execveat, chdir, chroot, inotify_add_watch, a fifo's open and a unix socket's bind
and connect, the Sentry resolves and checks the path (or, for bind and connect, leaves it
to the kernel), and the kernel then reads the path from the guest's memory again and
resolves it in the guest's host view. tests/programs/continue_race.c flips the path in a racing thread
between a target the Sentry allows and one in /proc that the Sentry refuses or hides, a fixed
number of times per call, and counts each time the kernel reached the refused one. Before the
view's /proc was mounted subset=pid, 20 000 attempts gave tens of hits for each (every one for
connect, which the kernel alone resolves); now the view has no such file and there must be
none. The task directories are the kernel's in the view, so the Sentry's /proc shows every
name they hold: a call that lands on one lands where the Sentry would have let it go, which
the program takes as allowed (it asks the Sentry about REFUSED once, without the race).
"""

import os

import pytest

ATTEMPTS = 20_000
# The task directories' entries the Sentry once hid: fewer attempts, as more targets.
TASK_ENTRY_ATTEMPTS = 5_000

# (call, the refused target): /proc/sys/fs and /proc/slabinfo are in no /proc of the Sentry's;
# /proc/self/cgroup and mountstats are the kernel's task files it does not show, mountinfo
# and mounts ones it renders itself (the kernel's show the view's scratch paths).
CASES = [
    ("fifo", "/proc/sys/fs/file-nr"),
    ("fifo", "/proc/slabinfo"),
    ("fifo", "/proc/self/mountinfo"),
    ("fifo", "/proc/self/mounts"),
    ("fifo", "/proc/self/cgroup"),
    ("fifo", "/proc/self/mountstats"),
    ("execve", "/proc/slabinfo"),
    ("execveat", "/proc/slabinfo"),
    ("chdir", "/proc/sys/fs"),
    ("chroot", "/proc/sys/fs"),
    ("inotify", "/proc/sys/fs"),
    ("bind", "/proc/slabinfo"),
    ("connect", "/proc/slabinfo"),
]
# (call, a task directory's entry the Sentry's /proc did not show): attr/ and map_files/ as
# a cwd, a root and a watch; attr/current and timerslack_ns as files.
TASK_ENTRY_CASES = [
    ("chdir", "/proc/self/attr"),
    ("chroot", "/proc/self/attr"),
    ("inotify", "/proc/self/attr"),
    ("chdir", "/proc/self/map_files"),
    ("chroot", "/proc/self/map_files"),
    ("inotify", "/proc/self/map_files"),
    ("execve", "/proc/self/timerslack_ns"),
    ("execveat", "/proc/self/attr/current"),
    ("bind", "/proc/self/timerslack_ns"),
    ("connect", "/proc/self/attr/current"),
    ("fifo", "/proc/self/timerslack_ns"),
]
ALL_CASES = ([(c, r, ATTEMPTS) for c, r in CASES]
             + [(c, r, TASK_ENTRY_ATTEMPTS) for c, r in TASK_ENTRY_CASES])


@pytest.mark.parametrize("call,refused,attempts", ALL_CASES,
                         ids=[f"{c}-{r}" for c, r, _ in ALL_CASES])
def test_the_kernel_never_resolves_what_the_sentry_refuses(sandbox, programs, call, refused,
                                                            attempts):
    host_tmp = set(os.listdir("/tmp"))
    r = sandbox(programs["continue_race"], call, str(attempts), refused, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    line = r.stdout.splitlines()[0]
    words = line.split()
    counts = dict(zip(words[1::2], map(int, words[2::2])))
    assert counts["attempts"] == attempts, line
    # The race ran: the allowed target was reached, so the path was flipping under the calls.
    assert counts["allowed"] > 0, line
    assert counts["hits"] == 0, r.stdout
    # The host is untouched: the guest's /tmp is its own.
    assert not {n for n in set(os.listdir("/tmp")) - host_tmp if n.startswith("x")}
