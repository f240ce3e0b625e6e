"""The controlling terminal passes through: the guest is the foreground job, ^C reaches it once."""

import os
import pty
import re
import select
import shlex
import signal
import subprocess
import time

import pytest

from ..support import EDGEVISOR


def _spawn_on_pty(argv):
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    return pid, master


def _read_until(master, needle: bytes, timeout=30) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _reap(pid, timeout=30) -> int:
    """The exit status of pid once it ends, or its SIGKILL after `timeout` seconds: the
    terminal closes a moment before edgevisor exits, so one WNOHANG poll would race it."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:  # the key did nothing: fail, rather than wait on
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.05)


def test_guest_is_the_foreground_job_and_gets_ctrl_c_once(platform):
    script = ("import os, signal, sys, time\n"
              "hits = []\n"
              "signal.signal(signal.SIGINT, lambda *a: hits.append(1))\n"
              "print('tty', os.isatty(0), 'fg', os.tcgetpgrp(0) == os.getpgrp(), flush=True)\n"
              "print('ready', flush=True)\n"
              "time.sleep(1.5)\n"
              "print('hits', len(hits), flush=True)\n")
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--",
                                 "python3", "-c", script])
    out = _read_until(master, b"ready")
    assert b"tty True fg True" in out, out
    os.write(master, b"\x03")  # ^C from the terminal
    out += _read_until(master, b"hits")
    out += _read_until(master, b"\n", timeout=5)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert b"hits 1" in out, out
    assert os.waitstatus_to_exitcode(status) == 0


def test_dev_tty_is_the_guests_terminal(platform):
    """/dev/tty opens the guest's controlling terminal (not the gofer's, which has none)."""
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                                 "echo via-dev-tty > /dev/tty && echo done"])
    out = _read_until(master, b"done")
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert b"via-dev-tty" in out and b"done" in out, out
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_signal_to_edgevisor_reaches_the_foreground_job_on_a_terminal(platform):
    """SIGTERM to edgevisor goes to the job in the terminal's foreground, as ^C would: here
    a child of pid 1 (which has a trap of its own and waits for it)."""
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: (print('child caught', flush=True),"
             " sys.exit(3)))\n"
             "print('ready', flush=True)\n"
             "time.sleep(30)\n")
    script = f"trap 'echo sh caught' TERM; python3 -c \"{child}\"; echo child exited $?"
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                                 script])
    out = _read_until(master, b"ready")
    os.kill(pid, 15)
    out += _read_until(master, b"child exited", timeout=20)
    out += _read_until(master, b"sh caught", timeout=5)
    os.waitpid(pid, 0)
    os.close(master)
    assert b"child caught" in out and b"child exited 3" in out and b"sh caught" in out, out


def _wait_for_exec(master, timeout=30) -> None:
    """Until the terminal's foreground job runs a command that `exec sleep` or `exec cat`
    started: a key typed while pid 1 is still the shell, about to exec, is the shell's to
    take (dash catches SIGINT), and the command would never see it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group = os.tcgetpgrp(master)
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                if (os.getpgid(int(name)) == group
                        and open(f"/proc/{name}/comm").read().strip() in ("sleep", "cat")):
                    return
            except OSError:
                continue
        time.sleep(0.02)


def _status_after_key(argv, key: bytes) -> tuple[int, bytes]:
    """Start argv on a pty, wait for its "ready" (and its exec, if it has one), type `key`,
    and return its exit status."""
    pid, master = _spawn_on_pty(argv)
    out = _read_until(master, b"ready")
    if "exec " in argv[-1]:
        _wait_for_exec(master)
    os.write(master, key)
    out += _read_until(master, b"never printed", timeout=60)  # until the terminal closes
    status = _reap(pid)
    os.close(master)
    return os.waitstatus_to_exitcode(status), out


@pytest.mark.parametrize("key,sig", [(b"\x03", signal.SIGINT), (b"\x1c", signal.SIGQUIT)])
@pytest.mark.parametrize("command", ["exec sleep 1000", "exec cat"])
def test_the_terminals_interrupt_and_quit_end_a_direct_command(platform, key, sig, command):
    """^C and ^\\ end a command that has no handler, as natively (the oracle), though the
    guest's command is pid 1 of its namespace, which the kernel would shield from them."""
    script = f"echo ready; {command}"
    native, _ = _status_after_key(["sh", "-c", script], key)
    assert native == -sig
    code, out = _status_after_key([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh",
                                   "-c", script], key)
    assert code == 128 + sig, out


def test_interrupt_still_works_after_a_suspend_key(platform):
    """^Z must not stop the terminal watcher: a ^C after it still ends the command. (Here
    edgevisor leads its session, an orphaned process group, where the kernel discards
    stop signals, as it does natively for the terminal's ^Z to such a group: the command
    runs on.)"""
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh",
                                 "-c", "echo ready; exec sleep 1000"])
    out = _read_until(master, b"ready")
    _wait_for_exec(master)
    os.write(master, b"\x1a")
    out += _read_until(master, b"^Z")  # the terminal's echo: it has sent SIGTSTP by now
    os.write(master, b"\x03")
    out += _read_until(master, b"never printed", timeout=60)
    status = _reap(pid)
    os.close(master)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGINT, out


def test_a_guest_that_kills_the_terminal_watcher_ends_normally(platform):
    """kill(0, SIGKILL) from pid 1 reaches the terminal watcher in its process group (pid 1
    itself is shielded, as in a container): the sandbox goes on and ends as before."""
    code, out = _status_after_key(
        [*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
         "echo ready; kill -KILL 0; echo survived"], b"")
    assert code == 0 and b"survived" in out, out


def test_the_terminal_watcher_is_confined(platform):
    """Seen from the host: one process of the Sentry's pid namespace (two NSpid levels; the
    guest's have three) in the guest's foreground group, with no capability, no_new_privs,
    a seccomp filter, and only its empty root as 0, 1 and 2."""
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                                 "echo ready; exec sleep 1000"])
    try:
        _read_until(master, b"ready")
        group = os.tcgetpgrp(master)
        watchers = []
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                status = open(f"/proc/{name}/status").read()
                if os.getpgid(int(name)) != group:
                    continue
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if len(fields["NSpid"].split()) == 2:
                watchers.append((name, fields))
        assert len(watchers) == 1, watchers
        name, fields = watchers[0]
        assert (fields["Seccomp"], fields["NoNewPrivs"]) == ("2", "1")
        assert int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == 0
        assert sorted(os.listdir(f"/proc/{name}/fd")) == ["0", "1", "2"]
        assert {os.readlink(f"/proc/{name}/fd/{fd}") for fd in "012"} == {"/"}
        _wait_for_exec(master)
        os.write(master, b"\x03")
        _read_until(master, b"never printed", timeout=60)
    finally:
        status = _reap(pid)
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 130


_NAMES_ITS_TERMINAL = r"""
t=$(tty) && echo "name=$t"
test -c "$t" && echo is-char
[ "$(stat -Lc %t:%T /proc/self/fd/0)" = "$(stat -c %t:%T "$t")" ] && echo same-rdev
echo "link=$(readlink /proc/self/fd/0)"
python3 -c 'import os; print("py=" + os.ttyname(0))'
echo done
"""


def _run_on_pty(argv) -> tuple[int, str]:
    pid, master = _spawn_on_pty(argv)
    out = _read_until(master, b"done")
    out += _read_until(master, b"never printed", timeout=10)  # until the terminal closes
    status = _reap(pid)
    os.close(master)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace").replace("\r", "")


def test_tty_names_the_terminal_in_the_guests_own_devpts(platform):
    """`tty` (glibc's ttyname: /proc/self/fd/0's name, whose stat must be the descriptor's
    file) prints a /dev/pts name that exists in the guest and is the same terminal, as
    natively and as under runc with -t; python's os.ttyname agrees."""
    code, out = _run_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                             _NAMES_ITS_TERMINAL])
    lines = out.splitlines()
    assert code == 0, out
    names = [line.removeprefix("name=") for line in lines if line.startswith("name=")]
    assert names and re.fullmatch(r"/dev/pts/\d+", names[0]), out
    assert "is-char" in lines and "same-rdev" in lines, out
    assert f"link={names[0]}" in lines and f"py={names[0]}" in lines, out


def test_guest_ptys_are_named_beside_its_terminal(platform):
    """A pty the guest makes on its terminal gets a name of its own, which ttyname finds,
    even after the guest looked for that name before it existed (its devpts is looked up
    afresh: a pty's name appears at the open of ptmx, behind the Sentry's back)."""
    script = ("import os\n"
              "print([os.path.exists(f'/dev/pts/{n}') for n in range(4)])\n"
              "m, s = os.openpty()\n"
              "mine, term = os.ttyname(s), os.ttyname(0)\n"
              "print('distinct', mine != term, mine.startswith('/dev/pts/'), flush=True)\n"
              "print('done', flush=True)\n")
    code, out = _run_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "python3",
                             "-c", script])
    assert code == 0 and "distinct True True" in out, out


@pytest.mark.parametrize("on_pty", [True, False], ids=["pty", "pipe"])
def test_proc_self_fd_lists_every_link(platform, on_pty):
    """ls -l /proc/self/fd shows a link for 0-2 (no `l?????????`), on a pty and on pipes."""
    argv = [*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
            "ls -l /proc/self/fd/; echo done"]
    if on_pty:
        code, out = _run_on_pty(argv)
    else:
        r = subprocess.run(argv, stdin=subprocess.PIPE, capture_output=True, text=True,
                           timeout=60)
        code, out = r.returncode, r.stdout + r.stderr
    assert code == 0, out
    for fd in "012":
        line = [line for line in out.splitlines() if re.search(rf" {fd} -> ", line)]
        assert line and not line[0].startswith("l?"), out


class _JobShell:
    """An interactive bash, job control on, leading the session of a pty of its own: the
    user's shell, typed at. --noediting leaves the echo to the terminal; `set -b` reports a
    background job's stop at once; history goes to the test's own file and is off."""

    PROMPT = b"jobs$ "

    def __init__(self, tmp_path):
        env = {**os.environ, "PS1": self.PROMPT.decode(), "PS2": "",
               "HISTFILE": str(tmp_path / "hist"), "TERM": "dumb"}
        env.pop("PROMPT_COMMAND", None)
        self.pid, self.master = pty.fork()
        if self.pid == 0:
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "--noediting", "-i"], env)
        self.out, self.seen = b"", 0
        self.expect(self.PROMPT)
        self.type("set +o history -b")
        self.expect(self.PROMPT)

    def type(self, line: str, end: bytes = b"\n") -> None:
        os.write(self.master, line.encode() + end)

    def key(self, key: bytes) -> None:
        os.write(self.master, key)

    def expect(self, needle: bytes, timeout: float = 60) -> None:
        """Wait for `needle` in what the terminal showed since the last match."""
        deadline = time.monotonic() + timeout
        while (at := self.out.find(needle, self.seen)) < 0:
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} after {self.out[:self.seen]!r} in " \
                             f"{self.out[self.seen:]!r}"
            if select.select([self.master], [], [], min(left, 0.5))[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"the terminal closed before {needle!r}: {self.out!r}"
                self.out += chunk
        self.seen = at + len(needle)

    def status(self) -> int:
        """The exit status of the last command ($?), at a prompt."""
        self.type("echo status=$?")
        self.expect(b"\nstatus=")
        self.expect(b"\r\n")
        return int(self.out[self.out.rfind(b"status=", 0, self.seen) + 7:self.seen - 2])

    def job(self) -> int:
        """The pid (and process group) of the shell's one job."""
        children = open(f"/proc/{self.pid}/task/{self.pid}/children").read().split()
        assert len(children) == 1, children
        return int(children[0])

    def foreground(self) -> int:
        return os.tcgetpgrp(self.master)

    def command_group(self, native: bool) -> int:
        """The process group of the command the job runs, once it has the terminal: the
        job's own natively, a group of the guest's sandboxed (the front end's is the job's)."""
        if native:
            return self.wait_foreground(lambda g: g == self.job())
        return self.wait_foreground(lambda g: g not in (self.pid, self.job()))

    def wait_foreground(self, test, timeout: float = 30) -> int:
        """The terminal's foreground process group once test(it) holds, within `timeout`."""
        deadline = time.monotonic() + timeout
        while not test(group := self.foreground()):
            assert time.monotonic() < deadline, f"foreground group {group}: {self.out!r}"
            time.sleep(0.02)
        return group

    def __enter__(self) -> "_JobShell":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        try:
            children = open(f"/proc/{self.pid}/task/{self.pid}/children").read().split()
        except OSError:
            children = []
        for child in children:  # a front end: its Sentry and guest die with it
            os.kill(int(child), signal.SIGKILL)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.master)


_STOPPED = ("T", "t")  # stopped; a tracee's group-stop (ptrace) is a tracing stop


def _state(pid: int) -> str:
    """A process's state letter, from its stat."""
    stat = open(f"/proc/{pid}/stat").read()
    return stat[stat.rindex(")") + 2]


def _wait_state(pid: int, wanted, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not wanted(state := _state(pid)):
        assert time.monotonic() < deadline, f"pid {pid} stays in state {state}"
        time.sleep(0.02)
    return state


def _command(prefix, script: str) -> str:
    """A command line for the shell: `script` run by sh, natively or sandboxed."""
    return shlex.join([*prefix, "sh", "-c", script])


def _prefixes(platform):
    """How a command runs: natively first (the oracle), then sandboxed."""
    return [[], [*EDGEVISOR, "do", f"--platform={platform}", "--"]]


@pytest.mark.parametrize("program", ["sleep 30", "cat"])
def test_suspend_stops_the_job_and_fg_resumes_it(platform, tmp_path, program):
    """^Z stops the command (the shell reports the job Stopped, the command is in state T);
    `fg` gives it the terminal again and resumes it: cat echoes a line, then ends at ^D;
    sleep ends at ^C."""
    for prefix in _prefixes(platform):
        with _JobShell(tmp_path) as shell:
            shell.type(_command(prefix, f"echo ready; exec {program}"))
            shell.expect(b"\nready")
            guest = shell.command_group(not prefix)
            shell.key(b"\x1a")
            shell.expect(b"Stopped")
            shell.expect(shell.PROMPT)
            _wait_state(guest, lambda s: s in _STOPPED)  # on ptrace, a moment after the job
            shell.type("fg")
            assert shell.command_group(not prefix) == guest
            if program == "cat":
                shell.type("ping")
                shell.expect(b"ping\r\nping\r\n")
                shell.key(b"\x04")
                shell.expect(shell.PROMPT)
                assert shell.status() == 0, (prefix, shell.out)
            else:
                _wait_state(guest, lambda s: s not in _STOPPED)
                shell.key(b"\x03")
                shell.expect(shell.PROMPT)
                assert shell.status() == 130, (prefix, shell.out)


def test_bg_then_fg(platform, tmp_path):
    """`bg` continues the stopped command in the background, where its read of the terminal
    stops it again (SIGTTIN); `fg` then gives it the terminal."""
    for prefix in _prefixes(platform):
        with _JobShell(tmp_path) as shell:
            shell.type(_command(prefix, "echo ready; read line; echo got=$line"))
            shell.expect(b"\nready")
            shell.key(b"\x1a")
            shell.expect(b"Stopped")
            shell.expect(shell.PROMPT)
            shell.type("bg")
            shell.expect(b"Stopped")  # bash's word for SIGTTIN's stop too
            shell.type("fg")
            shell.type("ping")
            shell.expect(b"\ngot=ping")
            shell.expect(shell.PROMPT)
            assert shell.status() == 0, (prefix, shell.out)


def test_fg_after_bg_gives_the_running_command_the_terminal(platform, tmp_path):
    """`fg` of a job `bg` left running hands the command the terminal again (^C from the
    terminal then reaches it, and only it)."""
    for prefix in _prefixes(platform):
        with _JobShell(tmp_path) as shell:
            shell.type(_command(prefix, "echo ready; exec sleep 30"))
            shell.expect(b"\nready")
            guest = shell.command_group(not prefix)
            shell.key(b"\x1a")
            shell.expect(b"Stopped")
            shell.expect(shell.PROMPT)
            shell.type("bg")
            shell.expect(shell.PROMPT)
            _wait_state(guest, lambda s: s not in _STOPPED)
            assert shell.foreground() == shell.pid
            shell.type("fg")
            shell.wait_foreground(lambda g: g == guest)
            shell.key(b"\x03")
            shell.expect(shell.PROMPT)
            assert shell.status() == 130, (prefix, shell.out)


_TSTP_AND_READ = """import signal, sys
{setup}
print('ready', flush=True)
print('got', sys.stdin.readline().strip(), flush=True)
"""


@pytest.mark.parametrize("setup,shown", [
    ("signal.signal(signal.SIGTSTP, lambda *a: print('caught', flush=True))", b"caught"),
    ("signal.signal(signal.SIGTSTP, signal.SIG_IGN)", b"^Z"),
], ids=["handled", "ignored"])
def test_suspend_leaves_a_command_that_handles_or_ignores_it(platform, tmp_path, setup, shown):
    """A command with its own SIGTSTP handler gets ^Z and runs on; one that ignores it
    runs on: neither is stopped, and the shell never reports a stop."""
    for prefix in _prefixes(platform):
        with _JobShell(tmp_path) as shell:
            shell.type(shlex.join([*prefix, "python3", "-c",
                                   _TSTP_AND_READ.format(setup=setup)]))
            shell.expect(b"\nready")
            shell.key(b"\x1a")
            shell.expect(shown)
            shell.type("ping")
            shell.expect(b"\ngot ping")
            shell.expect(shell.PROMPT)
            assert shell.status() == 0, (prefix, shell.out)
            assert b"Stopped" not in shell.out, (prefix, shell.out)


_SUSPENDS_ITSELF = """import os, signal, sys
def suspend(*_):
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    os.kill({target}, signal.SIGTSTP)
    signal.signal(signal.SIGTSTP, suspend)
    print('resumed', flush=True)
signal.signal(signal.SIGTSTP, suspend)
print('ready', flush=True)
print('got', sys.stdin.readline().strip(), flush=True)
"""


@pytest.mark.parametrize("target", ["os.getpid()", "0"], ids=["self", "group"])
def test_a_command_that_suspends_itself_at_suspend_stops(platform, tmp_path, target):
    """A command whose SIGTSTP handler tidies up and then stops itself (less's and
    ncurses' way, kill(getpid()); vim's, kill(0)) stops, and goes on after `fg`."""
    for prefix in _prefixes(platform):
        with _JobShell(tmp_path) as shell:
            shell.type(shlex.join([*prefix, "python3", "-c",
                                   _SUSPENDS_ITSELF.format(target=target)]))
            shell.expect(b"\nready")
            shell.key(b"\x1a")
            shell.expect(b"Stopped")
            shell.expect(shell.PROMPT)
            shell.type("fg")
            shell.expect(b"\nresumed")
            shell.type("ping")
            shell.expect(b"\ngot ping")
            shell.expect(shell.PROMPT)
            assert shell.status() == 0, (prefix, shell.out)

