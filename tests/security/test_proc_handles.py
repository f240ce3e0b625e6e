"""What a root guest can do with the kernel's own /proc files the Sentry hands it: namespace
files (/proc/PID/ns/*) and memory (/proc/PID/mem, pagemap).

A namespace descriptor is a setns handle, and its ioctls walk to the namespaces that own it
and lie above it: the guest must get only its own namespaces, setns must stay refused, and
NS_GET_PARENT / NS_GET_USERNS must not hand it the host's (natively, root gets both).
A memory descriptor reads (and, natively for root, writes) another process's memory: the
guest gets read-only ones, and only of processes it may ptrace-read. The task files that
set the task's own kernel state (its security label in attr/, OOM score, timer slack, audit
login, id maps, core dump filter, page reference bits) are shown read-only: a write would
reach the kernel through the Sentry's reading of them.
"""

import os
import subprocess
import sys

GUEST = r"""
import ctypes, errno, fcntl, os, sys
libc = ctypes.CDLL(None, use_errno=True)
NS_GET_USERNS, NS_GET_PARENT = 0xB701, 0xB702
out = []

def tried(what, fn):
    try:
        r = fn()
        out.append(f"{what} ok {r}")
    except OSError as e:
        out.append(f"{what} {errno.errorcode[e.errno]}")

def ioctl(fd, request):
    r = libc.ioctl(fd, request, 0)
    if r < 0:
        raise OSError(ctypes.get_errno(), "ioctl")
    os.close(r)
    return "an fd"

def setns(fd):
    if libc.setns(fd, 0) < 0:
        raise OSError(ctypes.get_errno(), "setns")

for name in ("user", "pid", "net", "mnt", "uts", "ipc", "cgroup"):
    fd = os.open(f"/proc/self/ns/{name}", os.O_RDONLY)
    link = os.readlink(f"/proc/self/ns/{name}")
    out.append(f"{name} ino-matches {link == f'{name}:[{os.fstat(fd).st_ino}]'} {link}")
    tried(f"{name} NS_GET_USERNS", lambda: ioctl(fd, NS_GET_USERNS))
    tried(f"{name} NS_GET_PARENT", lambda: ioctl(fd, NS_GET_PARENT))
    tried(f"{name} setns", lambda: setns(fd))
    os.close(fd)
tried("ns write-open", lambda: os.open("/proc/self/ns/net", os.O_RDWR))
tried("mem write-open", lambda: os.open("/proc/self/mem", os.O_RDWR))
pid = os.fork()
if pid == 0:
    os.setgid(1000)
    os.setuid(1000)
    tried("mem of init as a user", lambda: os.open("/proc/1/mem", os.O_RDONLY))
    tried("pagemap of init as a user", lambda: os.open("/proc/1/pagemap", os.O_RDONLY))
    print("\n".join(out), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_namespace_and_memory_handles(sandbox):
    r = sandbox("python3", "-c", GUEST)  # the guest's: a venv under /tmp is not in its view
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    host = {name: os.readlink(f"/proc/self/ns/{name}")
            for name in ("pid", "net", "mnt", "uts", "ipc")}
    for name in ("user", "pid", "net", "mnt", "uts", "ipc", "cgroup"):
        ino_line = next(ln for ln in lines if ln.startswith(f"{name} ino-matches"))
        assert ino_line.startswith(f"{name} ino-matches True"), ino_line
        if name in host:  # the guest's own namespace, not the host's
            assert not ino_line.endswith(host[name]), ino_line
        assert f"{name} NS_GET_USERNS EPERM" in lines
        assert f"{name} NS_GET_PARENT EPERM" in lines
        assert f"{name} setns EPERM" in lines
    assert "ns write-open EACCES" in lines
    assert "mem write-open EACCES" in lines
    assert "mem of init as a user EACCES" in lines
    assert "pagemap of init as a user EACCES" in lines


def test_natively_root_reaches_further():
    """The same program natively, as a check that its attempts are real: root's ioctls
    give descriptors, and the write-open of its own memory succeeds."""
    r = subprocess.run(["unshare", "--pid", "--net", "--uts", "--ipc", "--fork",
                        "--mount-proc", sys.executable, "-c", GUEST],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "net NS_GET_USERNS ok an fd" in r.stdout
    assert "mem write-open ok" in r.stdout


# The task's own kernel state that natively its root may write, and a value that takes.
TASK_STATE = r"""
import errno, os
WRITES = [("oom_score_adj", b"1000"), ("oom_adj", b"15"), ("timerslack_ns", b"100000"),
          ("coredump_filter", b"0x3f"), ("clear_refs", b"1"), ("autogroup", b"0"), ("loginuid", b"1234"), ("setgroups", b"deny"),
          ("uid_map", b"0 0 1"), ("gid_map", b"0 0 1"), ("projid_map", b"0 0 1"),
          ("attr/current", b"unconfined"), ("attr/exec", b"unconfined"),
          ("attr/fscreate", b"unconfined")]

def read(name):
    try:
        with open(f"/proc/self/{name}", "rb") as f:
            return f.read()
    except OSError as e:
        return errno.errorcode[e.errno]

for name, value in WRITES:
    before = read(name)
    try:
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, value)
            result = "written"
        finally:
            os.close(fd)
    except OSError as e:
        result = errno.errorcode[e.errno]
    print(name, result, "unchanged" if read(name) == before else "changed")
"""


def test_the_task_state_files_are_read_only(sandbox):
    r = sandbox("python3", "-c", TASK_STATE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 14, r.stdout
    for line in lines:
        name, result, after = line.split()
        assert result == "EACCES" and after == "unchanged", line


def test_natively_root_writes_its_task_state():
    """The same program natively: the attempts are real, root changes its OOM score and
    timer slack."""
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c",
                        TASK_STATE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "oom_score_adj written changed" in r.stdout
    assert "timerslack_ns written changed" in r.stdout
