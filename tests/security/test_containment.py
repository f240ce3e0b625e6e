"""Escape attempts that must stay inside the sandbox, and lifecycle guarantees."""

import os
import signal
import subprocess
import time
import uuid

import pytest

from ..support import EDGEVISOR


def _guest_python(sandbox, code: str):
    return sandbox("python3", "-c", code)


def test_unknown_syscall_is_enosys_and_named_by_strace(sandbox, programs):
    r = sandbox(programs["nosys"], "1000", flags=("--strace",))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nr=1000 r=-1 errno=38" in r.stdout
    assert "syscall_0x3e8(0x1, 0x2, 0x3, 0x4, 0x5, 0x6) = -1 ENOSYS (Function not implemented) [unsupported]" in r.stderr


def test_unknown_syscall_is_named_in_the_log(sandbox, programs, tmp_path):
    log = tmp_path / "sentry.log"
    r = sandbox(programs["nosys"], "999", flags=("--log", str(log)))
    assert r.returncode == 0, r.stderr
    assert "unsupported syscall 999" in log.read_text()


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_kill_9_of_edgevisor_leaves_no_guest_process(platform):
    marker = f"edgevisor-orphan-{uuid.uuid4().hex}"
    # A guest tree with a background grandchild and a daemonised (re-parented) process.
    script = f"(sleep 1000 & exec -a {marker}-bg sleep 1000) & setsid sh -c 'exec -a {marker}-d sleep 1000' & echo ready; exec -a {marker}-fg sleep 1000"
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--", "bash", "-c", script],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 10
    while len(_processes_with(marker)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_processes_with(marker)) >= 3
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def test_host_processes_are_invisible_and_unsignallable(sandbox):
    host = subprocess.Popen(["sleep", "60"])
    try:
        code = f"import os\ntry:\n    os.kill({host.pid}, 9); print('sent')\nexcept ProcessLookupError:\n    print('ESRCH')"
        r = _guest_python(sandbox, code)
        assert r.stdout.strip() == "ESRCH", r.stderr
        assert host.poll() is None
        r = sandbox("sh", "-c", "ls /proc | grep -E '^[0-9]+$' | sort -n | head -1")
        # Only the sandbox's processes, its command first: not the host's, nor edgevisor's
        # Sentry and gofer, which live in the pid namespace above.
        assert r.stdout.strip() == "1"
    finally:
        host.kill()
        host.wait()


def test_guest_cannot_reach_the_sentry(sandbox):
    """The Sentry and the gofer live in the pid namespace above the guest's, which holds only
    the sandbox's tasks: no pid the guest can name is theirs, so their /proc entries (root,
    mem, environ, fd) are out of reach; ptrace is refused by the table besides."""
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print('ptrace', libc.ptrace(16, 1, 0, 0), ctypes.get_errno())  # PTRACE_ATTACH
marker = 'edgevisor' + '.cli'
for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit()):
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        if marker.encode() in f.read():
            print('edgevisor process visible', pid)
print('pid 1 is', open('/proc/1/comm').read().strip())
"""
    r = _guest_python(sandbox, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ptrace -1 1", "pid 1 is python3"]  # EPERM; only itself


@pytest.mark.parametrize("call,expect", [
    ("libc.mount(b'none', b'/mnt', b'tmpfs', 0, None)", 1),          # EPERM
    ("libc.syscall(425, 8, ctypes.create_string_buffer(120))", 1),    # io_uring_setup: EPERM
    ("libc.syscall(321, 0, 0, 0)", 1),                                 # bpf: EPERM
    ("libc.syscall(169, 0xfee1dead, 672274793, 0x1234567, 0)", 1),     # reboot: EPERM
    ("libc.syscall(272, 0x10000000)", 1),                              # unshare(CLONE_NEWUSER): EPERM
    ("libc.mknod(b'/tmp/sda', 0o60600, os.makedev(8, 0))", 1),         # block device: EPERM (no CAP_MKNOD)
    ("libc.syscall(304, 0, 0, 0)", 1),                                 # open_by_handle_at: EPERM
])
def test_dangerous_syscalls_fail(sandbox, call, expect):
    code = f"import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nr = {call}\nprint(r, ctypes.get_errno())"
    r = _guest_python(sandbox, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["-1", str(expect)]


def test_no_host_devices(sandbox):
    r = sandbox("ls", "/dev")
    names = set(r.stdout.split())
    assert {"null", "zero", "urandom", "pts", "shm"} <= names
    assert not any(n.startswith(("sd", "vd", "nvme", "mem", "kmsg", "loop")) for n in names)


@pytest.mark.parametrize("cmd", ["0x5412", "0x5412 | 1 << 32", "0x541C"])
def test_terminal_injection_is_refused(sandbox, cmd):
    """TIOCSTI would type into the user's terminal; the high bits of the int argument must
    not smuggle it past the filter (the kernel reads only the low 32)."""
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nc = ctypes.c_char(b'x')\n"
            f"r = libc.syscall(16, 0, ctypes.c_ulong({cmd}), ctypes.byref(c))\n"
            "print(r, ctypes.get_errno())")
    r = sandbox("python3", "-c", code)
    assert r.stdout.split() == ["-1", "1"], r.stderr


@pytest.mark.parametrize("flag", ["0x10000000", "0x20000000", "0x40000000", "0x00020000"])
def test_clone_into_new_namespaces_is_refused(sandbox, flag):
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"r = libc.syscall(56, ctypes.c_ulong({flag} | 17), 0, 0, 0, 0)\n"
            "print(r, ctypes.get_errno())")
    r = sandbox("python3", "-c", code)
    assert r.stdout.split() == ["-1", "1"], r.stderr


def test_ordinary_ioctls_and_clones_still_work(sandbox):
    r = sandbox("sh", "-c", "stty size </dev/null 2>&1; (echo sub) ; echo done")
    assert r.stdout.splitlines()[-2:] == ["sub", "done"], r.stderr


def _children(pid: int) -> list[int]:
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def test_killing_the_sentry_kills_every_guest_process(platform):
    marker = f"edgevisor-sentry-death-{uuid.uuid4().hex}"
    script = f"(exec -a {marker}-bg sleep 1000) & echo ready; exec -a {marker}-fg sleep 1000"
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--", "bash", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 10
    while len(_processes_with(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (sentry,) = _children(p.pid)
    os.kill(sentry, signal.SIGKILL)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGKILL
    assert "killed by signal 9" in err
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def test_the_sentry_and_the_gofer_keep_no_host_root(platform):
    """After start-up the Sentry's root is an empty read-only tmpfs, and so is the gofer's
    (it shares the Sentry's mount namespace): a compromised Sentry or gofer finds no host
    file by path. Checked from the host, through /proc/PID/root of each."""
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                          "echo ready; exec sleep 1000"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        (sentry,) = _children(p.pid)
        # The guest is init of its own namespace; the gofer is the Sentry's one other child
        # (its number depends on the short-lived helpers forked before it).
        children = _children(sentry)
        (guest,) = [c for c in children if _nspid(c) == 1]
        (gofer,) = [c for c in children if c != guest]
        for pid in (sentry, gofer):
            root = f"/proc/{pid}/root"
            assert os.listdir(root) == [], pid
            with pytest.raises(OSError):
                open(f"{root}/etc/passwd").close()
            with pytest.raises(OSError):  # read-only
                open(f"{root}/probe", "w").close()
        # The guest's own root is its view of the rootfs, as it should be.
        assert "etc" in os.listdir(f"/proc/{guest}/root")
    finally:
        p.kill()
        p.wait()


def _nspid(pid: int) -> int:
    """The pid in the innermost pid namespace (the sandbox's)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise AssertionError(f"no NSpid for {pid}")
