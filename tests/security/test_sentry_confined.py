"""The Sentry runs under its own seccomp filter, with only the capabilities it uses (issue 10,
finding 10).

Read from the host: /proc/<Sentry>/status of a running sandbox shows seccomp mode 2,
no_new_privs and the documented CapEff, on both platforms and in each network mode. Then the
filter itself: a child of the test installs it with the Sentry's own function
(platform/sentry_filter.install) and makes one forbidden call, which must end it with SIGSYS
and leave the host as it was.
"""

import ctypes
import os
import signal
import subprocess

import pytest

from edgevisor import abi
from edgevisor.platform import sentry_filter
from edgevisor.platform.linux import libc, mount, syscall, unshare

from ..support import EDGEVISOR


def status_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def cap_mask(caps) -> str:
    return f"{sum(1 << c for c in caps):016x}"


@pytest.mark.parametrize("network", ["sandbox", "host"])
def test_running_sentry_is_confined(platform, network):
    guest = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}",
                              f"--network={network}", "--", "sh", "-c", "echo ready; read x"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        # The guest's exec is a call the Sentry answers, so by this line it is serving.
        assert guest.stdout.readline() == "ready\n"
        with open(f"/proc/{guest.pid}/task/{guest.pid}/children") as f:
            (sentry,) = map(int, f.read().split())
        status = status_of(sentry)
    finally:
        guest.communicate("\n", timeout=60)
    assert guest.returncode == 0
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == cap_mask(sentry_filter.capabilities(network))
    assert status["CapBnd"] == status["CapEff"]


def confined_child(tmp_path, platform, network, attempt, debug=False,
                   directfs=True) -> tuple[int, str]:
    """Fork; the child installs the Sentry's filter and runs attempt(): exit 0 if it returns,
    1 if it raises. Returns the child's wait status and what the filter wrote about it."""
    program = sentry_filter.build_filter(platform, network, debug, directfs)
    report_path = tmp_path / "report"
    pid = os.fork()
    if pid == 0:
        try:
            with open(report_path, "w") as report:
                sentry_filter.install(program, network, report if debug else None)
                attempt()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return status, report_path.read_text()


def test_allowed_calls_still_work(tmp_path, platform):
    (tmp_path / "file").write_text("content")
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)

    def attempt():
        fd = os.open("file", os.O_RDONLY, dir_fd=directory)  # descriptor-relative
        if os.read(fd, 100) != b"content":
            os._exit(3)
    status, _ = confined_child(tmp_path, platform, "sandbox", attempt)
    os.close(directory)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _execve(tmp_path):
    os.execv("/bin/touch", ["touch", str(tmp_path / "executed")])


def _open_path(tmp_path):
    os.open("/etc/passwd", os.O_RDONLY)


def _open_syscall(tmp_path):
    syscall("open", b"/etc/passwd", 0)


def _openat_cwd_low_word(tmp_path):
    # AT_FDCWD in the low 32 bits alone, which the kernel reads as the int it is.
    syscall("openat", ctypes.c_long(abi.AT_FDCWD & 0xFFFFFFFF), b"/etc/passwd", 0)


def _openat2(dirfd: int, path: bytes) -> int:
    how = ctypes.create_string_buffer(abi.OPEN_HOW.pack(os.O_RDONLY, 0, 0), abi.OPEN_HOW.size)
    return syscall("openat2", ctypes.c_long(dirfd), path, how, abi.OPEN_HOW.size)


def _openat2_cwd(tmp_path):
    # No RESOLVE flag: the filter cannot see them, so the dirfd alone is what it checks.
    _openat2(abi.AT_FDCWD, b"/etc/passwd")


def _openat2_cwd_low_word(tmp_path):
    _openat2(abi.AT_FDCWD & 0xFFFFFFFF, b"/etc/passwd")


def _mount(tmp_path):
    (tmp_path / "m").mkdir()
    mount("tmpfs", str(tmp_path / "m"), "tmpfs")


def _packet_socket(tmp_path):
    syscall("socket", abi.AF_PACKET, abi.SOCK_RAW, 0)


def _inet_socket(tmp_path):
    syscall("socket", abi.AF_INET, abi.SOCK_STREAM, 0)


def _fork(tmp_path):
    if os.fork() == 0:
        (tmp_path / "forked").touch()
        os._exit(0)


def _unshare(tmp_path):
    unshare(abi.CLONE_NEWUSER)


def _ptrace_attach(tmp_path):
    victim = int((tmp_path / "victim").read_text())
    libc.ptrace(abi.PTRACE_ATTACH, victim, None, None)


FORBIDDEN = [_execve, _open_path, _open_syscall, _openat_cwd_low_word, _openat2_cwd,
             _openat2_cwd_low_word, _mount, _packet_socket, _inet_socket, _fork, _unshare,
             _ptrace_attach]


def _attempt(tmp_path, platform, attempt, debug=False):
    """Run `attempt` in a child under the Sentry's filter, beside a host process it may try
    to trace; assert nothing happened on the host. Returns the child's status and report."""
    victim = subprocess.Popen(["sleep", "60"])
    (tmp_path / "victim").write_text(str(victim.pid))
    try:
        status, report = confined_child(tmp_path, platform, "sandbox",
                                        lambda: attempt(tmp_path), debug=debug)
        victim_status = status_of(victim.pid)
    finally:
        victim.kill()
        victim.wait()
    assert not (tmp_path / "executed").exists()
    assert not (tmp_path / "forked").exists()
    assert not os.path.ismount(tmp_path / "m")
    assert victim_status["TracerPid"] == "0"
    return status, report


@pytest.mark.parametrize("attempt", FORBIDDEN, ids=lambda f: f.__name__.lstrip("_"))
def test_forbidden_call_kills_the_sentry(tmp_path, platform, attempt):
    status, _ = _attempt(tmp_path, platform, attempt)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, status


def test_openat2_only_with_directfs_and_only_descriptor_relative(tmp_path, platform):
    """directfs opens beneath descriptors with openat2; without it the Sentry never calls it."""
    (tmp_path / "file").write_text("content")
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)

    def attempt():
        fd = _openat2(directory, b"file")
        if os.read(fd, 100) != b"content":
            os._exit(3)
    try:
        status, _ = confined_child(tmp_path, platform, "sandbox", attempt)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        status, _ = confined_child(tmp_path, platform, "sandbox", attempt, directfs=False)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, status
    finally:
        os.close(directory)


def test_host_network_allows_ip_sockets_only(tmp_path, platform):
    status, _ = confined_child(tmp_path, platform, "host", lambda: _inet_socket(tmp_path))
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    status, _ = confined_child(tmp_path, platform, "host", lambda: _packet_socket(tmp_path))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


@pytest.mark.parametrize("attempt", FORBIDDEN, ids=lambda f: f.__name__.lstrip("_"))
def test_debug_filter_refuses_and_reports(tmp_path, platform, attempt):
    """With --debug the call is trapped: it fails, and the log shows where it was made."""
    status, report = _attempt(tmp_path, platform, attempt, debug=True)
    assert attempt.__name__ in report, report
    assert os.WIFEXITED(status) or os.WTERMSIG(status) == signal.SIGSYS


def test_only_the_seccomp_platform_attaches_and_only_with_seize(tmp_path, platform):
    """ptrace(PTRACE_SEIZE) is the seccomp platform's, for strict-mode seccomp
    (platform/strict.py); the ptrace platform never takes a new tracee. PTRACE_ATTACH is
    refused on both (FORBIDDEN above)."""
    victim = subprocess.Popen(["sleep", "60"])

    def attempt():
        if libc.ptrace(abi.PTRACE_SEIZE, victim.pid, None, None) != 0:
            os._exit(3)
    try:
        status, _ = confined_child(tmp_path, platform, "sandbox", attempt)
    finally:
        victim.kill()
        victim.wait()
    if platform == "ptrace":
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, status
    else:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
