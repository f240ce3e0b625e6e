"""`edgevisor do` end to end, on both platforms, with real programs."""

import os
import signal
import subprocess
import time
import sys

import pytest

from ..support import EDGEVISOR


def test_pipeline(sandbox):
    r = sandbox("/bin/sh", "-c", "echo hi | tr a-z A-Z")
    assert (r.returncode, r.stdout) == (0, "HI\n"), r.stderr


def test_python_stdlib(sandbox):
    r = sandbox("python3", "-c", "import sqlite3, json, ssl; print(json.dumps([1]))")
    assert (r.returncode, r.stdout) == (0, "[1]\n"), r.stderr


def test_sqlite_cli(sandbox):
    script = "create table t(x); insert into t values (1),(2),(3); select sum(x) from t;"
    r = sandbox("sqlite3", ":memory:", script)
    assert (r.returncode, r.stdout) == (0, "6\n"), r.stderr


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_exit_status_propagates(sandbox, code):
    assert sandbox("sh", "-c", f"exit {code}").returncode == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_death_by_signal_is_128_plus_n(sandbox, sig):
    assert sandbox("sh", "-c", f"kill -{int(sig)} $$").returncode == 128 + sig


def test_hostname(sandbox):
    r = sandbox("uname", "-n", flags=("--hostname", "edge1"))
    assert (r.returncode, r.stdout) == (0, "edge1\n"), r.stderr


def test_default_hostname_is_not_the_hosts(sandbox):
    assert sandbox("uname", "-n").stdout.strip() == "edgevisor"


def test_sethostname_needs_cap_sys_admin(sandbox, programs):
    """The sandbox's root has Docker's capabilities, without CAP_SYS_ADMIN: Linux answers its
    sethostname EPERM, and neither the sandbox's name nor the host's changes. (What a guest
    that may set it sees is tests/unit/test_dispatch.py's.)"""
    host = os.uname().nodename
    r = sandbox(programs["identity"], "inner")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1] == "sethostname=-1 errno=1"
    assert lines[2] == "nodename=edgevisor"
    assert lines[3] == "efault=-1 errno=14"   # EFAULT for an unmapped buffer
    assert os.uname().nodename == host


def test_identity_matches_the_guests_own_namespace(sandbox, programs):
    # The command is init (pid 1) of the sandbox's pid namespace, as in a container; its
    # parent, the Sentry, is outside that namespace, so getppid says 0; a thread-group
    # leader's tid is its pid.
    r = sandbox(programs["identity"])
    assert r.stdout.splitlines()[-1] == "pid=1 tid=1 ppid=0", r.stderr


def test_sixteen_threads(sandbox, programs):
    r = sandbox(programs["threads"])
    assert (r.returncode, r.stdout) == (0, f"threads=16 total={sum(range(1_600_000))}\n"), r.stderr


def test_fifty_forks(sandbox, programs):
    r = sandbox(programs["forks"])
    assert (r.returncode, r.stdout) == (0, "children=50 sum=1225\n"), r.stderr


def test_stdin_passes_through(sandbox):
    r = sandbox("tr", "a-z", "A-Z", input="stdin data\n")
    assert r.stdout == "STDIN DATA\n"


def test_sigpipe_is_default_in_the_guest(sandbox):
    # Python ignores SIGPIPE; the guest must not inherit that.
    r = sandbox("sh", "-c", "yes | head -n 2")
    assert (r.returncode, r.stdout) == (0, "y\ny\n"), r.stderr


def test_command_not_found(sandbox):
    r = sandbox("/no/such/command")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == ["edgevisor: /no/such/command: No such file or directory"]


def test_command_not_executable(sandbox):
    r = sandbox("/etc/hostname")
    assert r.returncode == 126
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGWINCH])
def test_signals_to_edgevisor_reach_the_guest(platform, sig):
    script = f"trap 'echo caught; exit 42' {sig.name[3:]}; echo ready; while :; do sleep 0.05; done"
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out) == (42, "caught\n"), err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_edgevisor_ends_a_guest_without_a_handler(platform, sig):
    """The guest's command is init of its pid namespace, which the kernel would shield from
    a signal it has no handler for; edgevisor's user expects `edgevisor do -- sleep` to stop."""
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                          "echo ready; exec sleep 100"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    time.sleep(0.2)  # the exec of sleep
    p.send_signal(sig)
    p.communicate(timeout=30)
    assert p.returncode == 128 + sig


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_pid_1_blocks_ends_it_once_it_unblocks_it(platform, sig):
    """A signal to edgevisor that finds pid 1 blocking it (dash blocks signals around its
    fork) stays pending, and ends the command when it unblocks it, as natively (the oracle),
    though the kernel drops such a signal for an init once it is unblocked."""
    script = ("import signal, sys, time\n"
              f"signal.pthread_sigmask(signal.SIG_BLOCK, {{{int(sig)}}})\n"
              "print('ready', flush=True)\n"
              "time.sleep(1)\n"
              f"signal.pthread_sigmask(signal.SIG_UNBLOCK, {{{int(sig)}}})\n"
              "time.sleep(30)\n"
              "print('survived', flush=True)\n")
    codes = []
    for prefix in ([], [*EDGEVISOR, "do", f"--platform={platform}", "--"]):
        p = subprocess.Popen([*prefix, "python3", "-c", script], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "ready\n"
        p.send_signal(sig)
        start = time.monotonic()
        out, _ = p.communicate(timeout=60)
        codes.append((p.returncode, out, time.monotonic() - start < 10))
    assert codes == [(-sig, "", True), (128 + sig, "", True)]


def test_a_signal_while_the_sentry_injects_still_ends_the_guest(platform, programs):
    """pid 1 execs itself without pause: on ptrace the Sentry plants a courier after each
    exec, by injection, with the thread's signals blocked meanwhile. A SIGTERM to edgevisor
    is judged by the guest's own mask, never by the one the Sentry set, and ends it."""
    for _ in range(5):
        p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--",
                              programs["exec_loop"]], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "ready\n"
        time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
        assert p.returncode == 128 + signal.SIGTERM


def test_host_root_is_not_written(sandbox):
    marker = f"/var/tmp/edgevisor-overlay-{os.getpid()}"
    r = sandbox("sh", "-c", f"echo x > {marker} && cat {marker}")
    assert (r.returncode, r.stdout) == (0, "x\n"), r.stderr
    assert not os.path.exists(marker)


def test_overlay_none_is_read_only(sandbox):
    r = sandbox("sh", "-c", "echo x > /var/tmp/ro-test", flags=("--overlay=none",))
    assert r.returncode != 0
    assert "Read-only file system" in r.stderr


def test_guest_tmp_is_private(sandbox):
    r = sandbox("ls", "-A", "/tmp")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def test_ignored_signals_and_the_mask_are_inherited(platform):
    """As with any exec: under nohup (SIGHUP ignored) the guest ignores SIGHUP too, and a
    blocked signal stays blocked; SIGPIPE is back to its default."""
    code = ("import signal, subprocess, sys\n"
            "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "print(r.stdout, end='')\n")
    probe = ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]  # not a shell: they reset masks
    r = subprocess.run([sys.executable, "-c", code, *EDGEVISOR, "do", f"--platform={platform}", "--",
                        *probe], capture_output=True, text=True, timeout=60)
    fields = dict(line.split(":") for line in r.stdout.splitlines())
    ignored, blocked = int(fields["SigIgn"], 16), int(fields["SigBlk"], 16)
    bit = lambda sig: 1 << (sig - 1)  # noqa: E731
    assert ignored & bit(signal.SIGHUP)
    assert not ignored & bit(signal.SIGPIPE)
    assert blocked & bit(signal.SIGUSR2)


def test_vfork_and_exec_chains(sandbox, programs):
    r = sandbox(programs["vfork_exec"], "3")
    assert r.returncode == 0, r.stderr
    leaves = r.stdout.splitlines()
    assert len(leaves) == 2
    for line in leaves:
        _, pid, tid = line.split()
        assert pid.split("=")[1] == tid.split("=")[1]
    assert leaves[-1] == "leaf pid=1 tid=1"  # the exec that replaced the main process
