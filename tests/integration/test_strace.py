"""--strace through the real platforms."""

import re


def test_strace_shows_emulated_and_passthrough_calls(sandbox):
    r = sandbox("/bin/sh", "-c", "uname -n >/dev/null", flags=("--strace",))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any(re.fullmatch(r"\[pid \d+\] uname\(0x[0-9a-f]+\) = 0 \[emulate\]", line) for line in lines)
    assert any(re.match(r'\[pid \d+\] execve\("/bin/sh", \["/bin/sh", "-c", "uname -n >/dev/null"\], 0x[0-9a-f]+ /\* \d+ vars \*/\) = \? \[emulate\]', line)
               for line in lines), lines[:5]
    assert any(re.fullmatch(r"\[pid \d+\] brk\(NULL\) = \? \[passthrough\]", line) for line in lines)
    assert any("openat(AT_FDCWD, " in line for line in lines)


def test_strace_syscalls_limits_the_lines(sandbox):
    r = sandbox("sh", "-c", "echo $$; uname -n", flags=("--strace-syscalls=getpid",))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["[pid 1] getpid() = 1 [emulate]"]
    assert r.stdout.splitlines() == ["1", "edgevisor"]


def test_strace_to_a_log_file(sandbox, tmp_path):
    log = tmp_path / "trace.log"
    r = sandbox("sh", "-c", "echo $$", flags=("--strace-syscalls=getpid", "--log", str(log)))
    assert (r.returncode, r.stdout, r.stderr) == (0, "1\n", "")
    assert log.read_text() == "[pid 1] getpid() = 1 [emulate]\n"


def test_strace_follows_children_with_their_own_tids(sandbox):
    r = sandbox("sh", "-c", "sh -c 'echo $$'; echo $$", flags=("--strace-syscalls=getpid",))
    tids = re.findall(r"\[pid (\d+)\] getpid\(\) = (\d+)", r.stderr)
    assert len(tids) == 2 and tids[0] != tids[1]
    assert all(tid == result for tid, result in tids)


def test_strace_shows_installed_descriptors_and_socket_arguments(sandbox):
    """A descriptor the Sentry installs is shown by its number once installed (an open, and
    with --network=host a socket the Sentry made); socket() arguments are named."""
    script = ("import os, socket; os.close(os.open('/etc/hostname', os.O_RDONLY)); "
              "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)")
    r = sandbox("python3", "-c", script, flags=("--strace-syscalls=openat,socket",
                                               "--network=host"))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert re.fullmatch(r'\[pid 1\] openat\(AT_FDCWD, "/etc/hostname", O_RDONLY\|O_CLOEXEC\) = \d+ '
                        r'\[emulate\]', [ln for ln in lines if "/etc/hostname" in ln][0])
    assert re.fullmatch(r"\[pid 1\] socket\(AF_INET6, SOCK_DGRAM\|SOCK_NONBLOCK\|SOCK_CLOEXEC, "
                        r"0\) = \d+ \[emulate\]", lines[-1]), lines[-3:]


# unshare(CLONE_NEWUSER) three times and syslog(SYSLOG_ACTION_SIZE_BUFFER) twice: both rows
# the table denies with EPERM.
DENIED_CALLS = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "calls = [lambda: libc.unshare(0x10000000)] * 3 + [lambda: libc.klogctl(10, None, 0)] * 2\n"
    "for call in calls:\n"
    "    print(call(), os.strerror(ctypes.get_errno()))\n")


def test_strace_shows_denied_calls_with_their_errno(sandbox):
    r = sandbox("python3", "-c", DENIED_CALLS,
                flags=("--strace-syscalls=unshare,syslog,getpid",))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "-1 Operation not permitted\n" * 5
    assert r.stderr.splitlines() == (
        ["[pid 1] unshare(0x10000000) = -1 EPERM (Operation not permitted) [deny]"] * 3
        + ["[pid 1] syslog(10, NULL, 0) = -1 EPERM (Operation not permitted) [deny]"] * 2)


def test_the_log_names_each_denied_syscall_once(sandbox, tmp_path):
    log = tmp_path / "sentry.log"
    r = sandbox("python3", "-c", DENIED_CALLS, flags=("--log", str(log)))
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout == "-1 Operation not permitted\n" * 5
    lines = log.read_text().splitlines()
    assert [line.split(" from ")[0] for line in lines] == [
        "edgevisor: denied syscall unshare", "edgevisor: denied syscall syslog"], lines
    assert all(line.endswith(": answered EPERM") for line in lines)
