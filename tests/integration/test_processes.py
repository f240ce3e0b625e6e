"""Processes in the sandbox with real programs: shell job control, Python's multiprocessing
and subprocess, pthreads, the guest's own pid namespace, orphans, and the end of the sandbox.

The command is pid 1 of a pid namespace of its own. Wherever output does not depend on
absolute pids, the oracle is the same command run natively; where it is about being pid 1
(orphans, `ps`), the oracle is the command run natively as init of a fresh pid namespace
(`unshare --pid --fork --mount-proc`, which needs root), and the expected lines are also
spelled out so that the test says something without root. Signals aimed at pid 1 are the
one difference on purpose: the sandbox's init dies of them as an ordinary process would, so
those are compared with a plain native run."""

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ..support import EDGEVISOR

TIMEOUT = 60


def native(*cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, check=False, timeout=TIMEOUT, **kw)


def native_init(*cmd, **kw) -> subprocess.CompletedProcess | None:
    """CMD run natively as pid 1 of a fresh pid namespace, or None where that needs a
    privilege we lack."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    return native("unshare", "--pid", "--fork", "--mount-proc", *cmd, **kw)


@pytest.fixture(scope="module")
def scripts():
    """A directory the guest can read (not /tmp, which is its own) for Python scripts that
    must be files: multiprocessing's spawn and forkserver import __main__ from its path."""
    out = Path(tempfile.mkdtemp(prefix="edgevisor-processes-", dir="/var/tmp"))
    out.chmod(0o755)
    yield out
    shutil.rmtree(out, ignore_errors=True)


# -- 1. a busybox shell: pipelines, jobs, wait, traps ------------------------------------------

# Every event is ordered by a wait or a file the other side polls for, never by a sleep's
# length alone, so that a native run always prints the same. The TERM trap of the main shell is
# set only after `kill %1`: a job forked while the shell has it starts with the shell's catching
# handler, and whether the kill lands before the job resets it is a race.
SHELL_SCRIPT = r"""
d=$(mktemp -d)
trap 's=$?; rm -rf "$d"; echo "exit trap, status $s"' EXIT
trap 'echo "usr1 trapped"' USR1

echo "one two three four" | tr ' ' '\n' | sort | head -n 3 | tr '\n' ,; echo
false | true; echo "false|true=$?"
true | false; echo "true|false=$?"
(exit 3) | (exit 5); echo "(3)|(5)=$?"
! true | false; echo "!(true|false)=$?"
echo piped | (read x; echo "read $x")
echo "$(echo sub $(echo nested))"

(sleep 0.2; exit 7) &
a=$!
(exit 9) &
b=$!
wait $b; echo "wait \$b=$?"
wait $a; echo "wait \$a=$?"
[ "$a" != "$b" ] && [ "$a" != "$$" ] && [ "$b" != "$$" ] && echo "\$! distinct"

sleep 100 &
kill %1; wait %1; echo "kill %1, wait=$?"
sleep 100 &
kill -KILL $!; wait $!; echo "kill -KILL \$!, wait=$?"

(trap 'echo "job: term trapped"; exit 42' TERM; touch "$d/ready"; while :; do sleep 0.02; done) &
c=$!
while [ ! -e "$d/ready" ]; do sleep 0.01; done
kill -TERM $c; echo "kill job=$?"; wait $c; echo "job after TERM=$?"

(trap 'echo "job: usr1 trapped"; touch "$d/seen"' USR1; touch "$d/ready2"
 while [ ! -e "$d/seen" ]; do sleep 0.01; done; exit 4) &
c=$!
while [ ! -e "$d/ready2" ]; do sleep 0.01; done
kill -USR1 $c; wait $c; echo "job after USR1=$?"

kill -USR1 $$; echo "kill -USR1 \$\$=$?"
trap 'echo "term trapped"' TERM
kill -TERM $$; echo "kill -TERM \$\$=$?"

for i in 1 2 3 4 5; do (exit $i) & done; wait; echo "wait for all=$?"
st=
for i in 1 2 3; do (exit $((i * 10))) & eval "p$i=\$!"; done
for i in 3 1 2; do eval "wait \$p$i"; st="$st $?"; done; echo "statuses:$st"

sh -c 'kill -KILL $$'; echo "child killed itself=$?"
busybox sh -c 'exit 77' & wait $!; echo "busybox job=$?"
exit 3
"""


def test_busybox_shell_script_as_natively(sandbox):
    oracle = native("busybox", "sh", "-c", SHELL_SCRIPT)
    assert oracle.returncode == 3 and "term trapped" in oracle.stdout, oracle.stderr
    r = sandbox("busybox", "sh", "-c", SHELL_SCRIPT, timeout=TIMEOUT)
    assert r.stdout == oracle.stdout, r.stderr
    assert r.returncode == oracle.returncode, r.stderr


# -- 2. Python's multiprocessing and subprocess ------------------------------------------------

POOL = """\
import multiprocessing, os, sys

def work(x):
    return x * x + 1, os.getpid()

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with ctx.Pool(8) as pool:
        results = pool.map(work, range(100), chunksize=3)
    print([value for value, _ in results])
    workers = {pid for _, pid in results}
    print("workers:", len(workers) <= 8, os.getpid() not in workers)
"""


# forkserver (Python 3.14's default on Linux) checks that a name in a fresh directory of /tmp
# is free, binds its listening unix socket there and chmods it.
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool(sandbox, scripts, method):
    script = scripts / "pool.py"
    script.write_text(POOL)
    expected = f"{[x * x + 1 for x in range(100)]}\nworkers: True True\n"
    assert native("python3", str(script), method).stdout == expected
    r = sandbox("python3", str(script), method, timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, expected), r.stderr[-3000:]


SUBPROCESS_TIMEOUT = """\
import os, subprocess, time
pids = []
class Recorded(subprocess.Popen):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        pids.append(self.pid)
subprocess.Popen = Recorded  # subprocess.run looks Popen up in its module
start = time.monotonic()
try:
    subprocess.run(["sleep", "10"], timeout=1)
    print("no timeout")
except subprocess.TimeoutExpired as e:
    print("TimeoutExpired")
print("within a few seconds:", time.monotonic() - start < 5)
(pid,) = pids
try:
    os.kill(pid, 0)
    print("child still there")
except ProcessLookupError:
    print("child gone")
try:
    print("waitpid", os.waitpid(-1, os.WNOHANG))
except ChildProcessError:
    print("no child left to reap")
"""


def test_subprocess_timeout_kills_the_child(sandbox):
    expected = ("TimeoutExpired\nwithin a few seconds: True\nchild gone\n"
                "no child left to reap\n")
    assert native("python3", "-c", SUBPROCESS_TIMEOUT).stdout == expected
    start = time.monotonic()
    r = sandbox("python3", "-c", SUBPROCESS_TIMEOUT, timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, expected), r.stderr
    assert time.monotonic() - start < 10


# -- 3. pthreads -------------------------------------------------------------------------------

def test_hundred_threads(sandbox, programs):
    oracle = native(programs["threads100"])
    total = sum(range(100 * 20000))
    assert oracle.stdout == (f"threads=100 live=101 total={total} counter=100000 "
                             "tids=distinct pid=shared\n"), oracle.stderr
    r = sandbox(programs["threads100"], timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, oracle.stdout), r.stderr


@pytest.mark.parametrize("mode", ["echo", "self"])
@pytest.mark.parametrize("as_pid1", [True, False], ids=["pid1", "child"])
def test_execve_from_a_non_leader_thread(sandbox, programs, mode, as_pid1):
    # As a child of a shell, the parent's wait must also see the exec'd process's exit.
    cmd = ((programs["exec_from_thread"], mode) if as_pid1 else
           ("sh", "-c", f'"$0" {mode}; echo "status $?"', programs["exec_from_thread"]))
    oracle = native(*cmd)
    assert oracle.returncode == 0 and oracle.stdout, oracle.stderr
    r = sandbox(*cmd, timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, oracle.stdout), r.stderr


# -- 4. the guest's own pids -------------------------------------------------------------------

@pytest.mark.parametrize("shell", [("sh",), ("busybox", "sh")], ids=["dash", "busybox"])
def test_the_shell_is_pid_1(sandbox, shell):
    r = sandbox(*shell, "-c", "echo $$")
    assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr


def test_a_child_of_pid_1(sandbox):
    # `; :` keeps the shell from exec'ing python3 in its own place.
    script = "echo $$; python3 -c 'import os; print(os.getpid(), os.getppid())'; :"
    r = sandbox("sh", "-c", script)
    assert r.returncode == 0, r.stderr
    shell, child = r.stdout.splitlines()
    pid, ppid = map(int, child.split())
    assert (shell, ppid) == ("1", 1)
    assert pid > 1


def test_ps_sees_only_the_sandbox(sandbox):
    # In a fresh namespace pids are handed out in order: sh 1, sleep 2, ps 3 (read and [ are
    # builtins). busybox runs its sleep applet by exec'ing /proc/self/exe, then names it: ps
    # waits for the name, or it might see the job before or amid its exec.
    script = ('sleep 30.5 & until read c </proc/$!/comm && [ "$c" = sleep ]; do :; done; '
              'busybox ps; kill $!')
    expected = ["PID   USER     COMMAND",
                f"    1 root     busybox sh -c {script}",
                "    2 root     sleep 30.5",
                "    3 root     busybox ps"]
    r = sandbox("busybox", "sh", "-c", script, timeout=TIMEOUT)
    assert (r.returncode, r.stdout.splitlines()) == (0, expected), r.stderr
    lowered = r.stdout.lower()
    for name in ("edgevisor", "gofer", "sentry", "python", "pytest"):
        assert name not in lowered
    oracle = native_init("busybox", "sh", "-c", script)
    if oracle is not None:
        assert (r.returncode, r.stdout) == (oracle.returncode, oracle.stdout)


@pytest.mark.parametrize("shell", [("sh",), ("busybox", "sh")], ids=["dash", "busybox"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pid_1_kills_itself(sandbox, shell, sig):
    """As a plain native run: an ordinary process dies of it (and edgevisor, like a shell,
    says so as 128 + the signal)."""
    cmd = (*shell, "-c", f"kill -{int(sig)} $$; echo survived")
    oracle = native(*cmd)
    assert (oracle.returncode, oracle.stdout) == (-sig, "")
    r = sandbox(*cmd)
    assert (r.returncode, r.stdout) == (128 + sig, ""), r.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1])
def test_a_child_kills_pid_1(sandbox, sig):
    # No native oracle: natively, pid 1 would be the host's init.
    r = sandbox("sh", "-c", f"sh -c 'kill -{int(sig)} 1; sleep 5'; echo survived", timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (128 + sig, ""), r.stderr


def test_signals_pid_1_handles_are_delivered_to_it(sandbox):
    code = """\
import os, signal, threading
got = []
for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
    signal.signal(sig, lambda n, f: got.append(signal.Signals(n).name))
os.kill(os.getpid(), signal.SIGTERM)
signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
if os.fork() == 0:
    os.kill(os.getppid(), signal.SIGHUP)
    os._exit(0)
os.wait()
while len(got) < 3:
    signal.pause()
print(got)
"""
    expected = "['SIGTERM', 'SIGUSR1', 'SIGHUP']\n"
    assert native("python3", "-c", code).stdout == expected
    r = sandbox("python3", "-c", code, timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, expected), r.stderr


# -- 5. orphans --------------------------------------------------------------------------------

# The reporting process alone prints, after the events it reports, so that the output is in
# one order. Children leave with os._exit, so that no buffer is printed twice.
ORPHANS = """\
import ctypes, os, sys, time

def until_reparented(parent):
    deadline = time.monotonic() + 10
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getppid()

def status(st):
    return os.waitstatus_to_exitcode(st)

def adopted_by_init():
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        me = os.getpid()  # the grandchild may only run once this child is gone
        grandchild = os.fork()
        if grandchild == 0:
            ppid = until_reparented(me)
            os.write(w, f"{os.getpid()} {ppid}\\n".encode())
            os._exit(7)
        os._exit(3)
    os.close(w)
    _, st = os.waitpid(child, 0)
    print("child exited", status(st))
    gpid, gppid = map(int, os.read(r, 100).split())
    print("grandchild's ppid", gppid, "(that is me)" if gppid == os.getpid() else "")
    pid, st = os.waitpid(-1, 0)
    print("waitpid(-1) reaped the grandchild:", pid == gpid, "status", status(st))
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        print("no child left")

def adopted_by_a_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    a = os.fork()
    if a == 0:
        if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
            print("PR_SET_CHILD_SUBREAPER failed", ctypes.get_errno())
        flag = ctypes.c_int(-1)
        libc.prctl(37, ctypes.byref(flag), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
        print("subreaper flag", flag.value)
        r, w = os.pipe()
        b = os.fork()
        if b == 0:
            me = os.getpid()
            c = os.fork()
            if c == 0:
                ppid = until_reparented(me)
                os.write(w, f"{os.getpid()} {ppid}\\n".encode())
                os._exit(6)
            os._exit(5)
        os.close(w)
        _, st = os.waitpid(b, 0)
        print("middle child exited", status(st))
        cpid, cppid = map(int, os.read(r, 100).split())
        print("orphan's ppid is the subreaper:", cppid == os.getpid(), "is 1:", cppid == 1)
        pid, st = os.waitpid(-1, 0)
        print("subreaper reaped the orphan:", pid == cpid, "status", status(st))
        sys.stdout.flush()
        os._exit(0)
    _, st = os.waitpid(a, 0)
    print("subreaper exited", status(st))
    try:
        os.waitpid(-1, os.WNOHANG)
        print("init has a child left")
    except ChildProcessError:
        print("init has no child left")

{"init": adopted_by_init, "subreaper": adopted_by_a_subreaper}[sys.argv[1]]()
"""

ORPHANS_EXPECTED = {
    "init": ["child exited 3",
             "grandchild's ppid 1 (that is me)",
             "waitpid(-1) reaped the grandchild: True status 7",
             "no child left"],
    "subreaper": ["subreaper flag 1",
                  "middle child exited 5",
                  "orphan's ppid is the subreaper: True is 1: False",
                  "subreaper reaped the orphan: True status 6",
                  "subreaper exited 0",
                  "init has no child left"],
}


@pytest.mark.parametrize("adopter", ["init", "subreaper"])
def test_orphans_are_adopted(sandbox, adopter):
    r = sandbox("python3", "-c", ORPHANS, adopter, timeout=TIMEOUT)
    assert (r.returncode, r.stdout.splitlines()) == (0, ORPHANS_EXPECTED[adopter]), r.stderr
    oracle = native_init("python3", "-c", ORPHANS, adopter)
    if oracle is not None:
        assert (r.returncode, r.stdout) == (oracle.returncode, oracle.stdout)


# -- 6. the end of pid 1 is the end of the sandbox ---------------------------------------------

def processes_with(marker: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                pass  # gone meanwhile
    return found


# The marker is a sleep's own argument ("1000.<digits>"), pieced together so that no other
# command line holds it whole: pid 1 gets only the digits. Four marked processes: a background
# sleep, a shell waiting on a sleep (both marked), and a double-forked, setsid'd sleep that
# ignores SIGTERM and SIGHUP, out of every process group and session the guest started.
# Pid 1 waits until all four run, says so, and exits when its stdin closes.
LINGERERS = r"""
m="1000.$1"
sleep "$m" </dev/null >/dev/null 2>&1 &
sh -c 'sleep "$0"; :' "$m" </dev/null >/dev/null 2>&1 &
python3 -c '
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
os.execvp("sleep", ["sleep", "1000." + sys.argv[1]])
' "$1" </dev/null >/dev/null 2>&1 &
while [ "$(grep -l "^1000[.]$1\$" /proc/[0-9]*/cmdline 2>/dev/null | wc -l)" -lt 4 ]; do
  sleep 0.02
done
echo started
read line
exit 0
"""


def test_exit_of_pid_1_kills_every_task(platform):
    digits = f"{os.getpid()}{secrets.randbelow(10**9):09d}"
    marker = f"1000.{digits}".encode()
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--",
                          "sh", "-c", LINGERERS, "sh", digits],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "started\n", p.stderr.read() if p.poll() is not None else ""
        assert len(processes_with(marker)) == 4  # seen from the host, while the sandbox runs
        p.stdin.close()
        assert p.wait(timeout=20) == 0, p.stderr.read()
        deadline = time.monotonic() + 5
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = processes_with(marker)
        assert not left, f"still running after the sandbox's pid 1 exited: {left}"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for pid in processes_with(marker):  # this test's own sleeps, if the sandbox left them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
