"""InstallFd on the ptrace platform: descriptors delivered by syscall injection over a courier.

The real PtracePlatform serves a C program (tests/programs/ptrace_install.c) under a stub
Sentry that answers openat of /edgevisor-install/file with InstallFd of a file the Sentry
opened, and lets every other call run. The same program run natively, on the file itself,
must print the same thing, so each check is against the kernel's own behaviour: lowest free
numbers, close-on-exec, fork, vfork, CLONE_FILES, threads, close_range and dup2 over the
courier, a full table, and guests killed half-way.

Run as a script, this file is that harness:
    SENTRY_FILE [--platform=ptrace|seccomp] [--trap-all] PROGRAM ARGS...
(--trap-all traps every passthrough call too, as --strace does, so the injected calls
themselves stop at PTRACE_EVENT_SECCOMP; seccomp is there for Task.getfd).
"""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
CONTENT = b"edgevisor install check\n"
MAGIC = "/edgevisor-install/file"
MAGIC_BAD = "/edgevisor-install/bad"
MAGIC_GETFD = "/edgevisor-install/getfd/"

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="InstallFd on ptrace is x86_64 only (ENOSYS elsewhere)")


@pytest.fixture(scope="module")
def sentry_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("ptrace-install") / "file"
    f.write_bytes(CONTENT)
    return str(f)


def _harness(sentry_file, program, *args, trap_all=False, platform="ptrace", timeout=120):
    cmd = [sys.executable, __file__, sentry_file, f"--platform={platform}",
           *(["--trap-all"] if trap_all else []), program, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": ROOT})


def _both(programs, sentry_file, mode, trap_all=False):
    """(sandboxed, native) runs of one mode; both must succeed."""
    exe = programs["ptrace_install"]
    sandboxed = _harness(sentry_file, exe, mode, MAGIC, trap_all=trap_all)
    assert sandboxed.returncode == 0, sandboxed.stdout + sandboxed.stderr
    native = subprocess.run([exe, mode, sentry_file], capture_output=True, text=True, timeout=60,
                            check=False)
    assert native.returncode == 0, native.stdout + native.stderr
    return sandboxed.stdout, native.stdout


@pytest.mark.parametrize("mode", ["lowest", "cloexec", "fork", "vfork", "clone-files", "forks",
                                  "fork-race", "close-range", "kill", "signals", "emfile"])
def test_install_behaves_like_open(programs, sentry_file, mode):
    sandboxed, native = _both(programs, sentry_file, mode)
    assert sandboxed == native
    assert sandboxed.splitlines()[-1] == f"ok {mode}"


def test_forked_child_holds_no_courier(programs, sentry_file):
    """The parent has a courier when it forks; the child's table is exactly what it would be
    natively (probed over 0..1023), so it never sees the parent's courier."""
    sandboxed, native = _both(programs, sentry_file, "fork")
    assert "child fds: 0 1 2 3\n" in native
    assert sandboxed == native


def test_many_installs_in_a_loop(programs, sentry_file):
    r = _harness(sentry_file, programs["ptrace_install"], "loop", MAGIC, "200")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "ok loop n=200\n"


def test_installs_from_many_threads_at_once(programs, sentry_file):
    sandboxed, native = _both(programs, sentry_file, "threads")
    assert native == "threads fds:\n"
    # Only the process's courier may remain, at a high number.
    held = sandboxed.split(":")[1].split()
    assert len(held) <= 1 and all(int(n) >= 64 for n in held), sandboxed


@pytest.mark.parametrize("mode", ["lowest", "fork", "signals", "close-range"])
def test_injected_calls_that_are_trapped_too(programs, sentry_file, mode):
    """Under --strace every passthrough call is trapped, the injected ones included."""
    sandboxed, native = _both(programs, sentry_file, mode, trap_all=True)
    assert sandboxed == native


def test_failed_install_answers_eio_and_leaves_the_courier_healthy(programs, sentry_file):
    r = _harness(sentry_file, programs["ptrace_install"], "bad", MAGIC, MAGIC_BAD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "ok bad\n"


@pytest.mark.parametrize("platform", ["ptrace", "seccomp"])
def test_task_getfd(programs, sentry_file, platform):
    """A handler takes a copy of the guest's descriptor with Task.getfd (and installs it)."""
    r = _harness(sentry_file, programs["ptrace_install"], "getfd", MAGIC, MAGIC_GETFD,
                 platform=platform)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "ok getfd\n"


def test_exit_group_while_threads_install(programs, sentry_file):
    """Threads are mid-injection when another thread exits the process: the loop still
    learns of every death and returns the process's status."""
    for trap_all in (False, True):
        r = _harness(sentry_file, programs["ptrace_install"], "exit-group", MAGIC,
                     trap_all=trap_all, timeout=60)
        assert r.returncode == 7, r.stdout + r.stderr


# The harness ---------------------------------------------------------------------------------

def _main(argv: list[str]) -> int:
    from edgevisor import abi
    from edgevisor.platform import get_platform
    from edgevisor.platform.bpf import build_filter, build_refusals
    from edgevisor.platform.linux import prctl, seccomp_load
    from edgevisor.sentry.dispatch import CONTINUE, InstallFd
    from edgevisor.syscall_tables import load

    sentry_file, *argv = argv
    platform = get_platform("ptrace")
    if argv[0].startswith("--platform="):
        platform = get_platform(argv.pop(0).partition("=")[2])
    trap_all = argv[0] == "--trap-all"
    if trap_all:
        argv = argv[1:]
    table = load()
    openat = table.by_name["openat"].nr
    trapped = {openat}
    if trap_all:
        trapped |= {row.nr for row in table.by_nr.values() if row.action == "passthrough"}

    class StubSentry:
        per_task_constant = frozenset()

        def handle(self, task, nr, args):
            if nr != openat:
                return CONTINUE
            try:
                name = task.mem.read_cstring(args[1], abi.PATH_MAX)
            except OSError as e:
                return -e.errno
            if name == MAGIC.encode():
                fd = os.open(sentry_file, os.O_RDONLY | os.O_CLOEXEC)
                return InstallFd(fd, bool(args[2] & abi.O_CLOEXEC))
            if name == MAGIC_BAD.encode():
                return InstallFd(999_999, False)  # a descriptor the Sentry does not have
            if name.startswith(MAGIC_GETFD.encode()):
                try:
                    fd = task.getfd(int(name[len(MAGIC_GETFD):]))
                except OSError as e:
                    return -e.errno
                return InstallFd(fd, bool(args[2] & abi.O_CLOEXEC))
            return CONTINUE

    programs = build_refusals(table), build_filter(table, platform.trap, frozenset(trapped))
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.read(go_r, 1)
            prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
            platform.load_filter(programs[1], ready_w, go_r)  # as boot.py: the listener first
            seccomp_load(programs[0], 0)
            for fd in (go_r, go_w, ready_r, ready_w):
                os.close(fd)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    platform.attach(pid)
    os.write(go_w, b"g")
    platform.after_filter(pid, ready_r, go_w)
    for fd in (go_r, go_w, ready_r, ready_w):
        os.close(fd)
    return os.waitstatus_to_exitcode(platform.serve(pid, StubSentry()))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
