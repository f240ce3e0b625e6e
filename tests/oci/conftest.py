"""An OCI caller without docker: a bundle from `edgevisor spec` with a busybox-static rootfs,
a runtime root and log of the test's own, and the test process as a subreaper (as
containerd-shim-runc-v2 is), so that it can wait for the pid-file process."""

import array
import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile

import pytest

from ..support import EDGEVISOR

BUSYBOX = shutil.which("busybox")
APPLETS = ("sh", "echo", "cat", "ls", "sleep", "id", "hostname", "ip", "stty", "true", "tty",
           "test", "[", "grep", "httpd", "unshare")
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def bundle():
    """A bundle directory: config.json from `edgevisor spec`, made to run without a
    terminal, and a rootfs of busybox-static; `edit(fn)` rewrites config.json."""
    if BUSYBOX is None:
        pytest.skip("needs busybox")
    path = tempfile.mkdtemp(prefix="edgevisor-oci-", dir="/var/tmp")
    os.makedirs(f"{path}/rootfs/bin")
    shutil.copy(BUSYBOX, f"{path}/rootfs/bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", f"{path}/rootfs/bin/{applet}")
    subprocess.run([*EDGEVISOR, "spec", "--bundle", path], check=True)
    b = Bundle(path)
    b.edit(lambda c: c["process"].update(terminal=False))
    yield b
    shutil.rmtree(path, ignore_errors=True)


class Bundle:
    def __init__(self, path: str):
        self.path = path

    def edit(self, change) -> None:
        with open(f"{self.path}/config.json") as f:
            config = json.load(f)
        change(config)
        with open(f"{self.path}/config.json", "w") as f:
            json.dump(config, f)

    def command(self, *argv: str) -> None:
        self.edit(lambda c: c["process"].update(args=list(argv)))


@pytest.fixture
def runtime(platform):
    """runtime(*args) → CompletedProcess of `edgevisor --root R --log L --log-format json
    --platform=P args...`; runtime.log_lines() → the JSON lines logged."""
    root = tempfile.mkdtemp(prefix="edgevisor-oci-root-", dir="/run")
    log = os.path.join(root + ".log")
    if hasattr(ctypes.CDLL(None), "prctl"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    r = Runtime(root, log, platform)
    yield r
    for container in os.listdir(root):
        r("delete", "--force", container)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    _reap()
    shutil.rmtree(root, ignore_errors=True)
    if os.path.exists(log):
        os.unlink(log)


class Runtime:
    def __init__(self, root: str, log: str, platform: str):
        self.root, self.log, self.platform = root, log, platform
        self.global_flags = []  # more flags before the subcommand, as runtimeArgs are

    def argv(self, *args: str) -> list[str]:
        return [*EDGEVISOR, "--root", self.root, "--log", self.log, "--log-format", "json",
                f"--platform={self.platform}", *self.global_flags, *args]

    def __call__(self, *args: str, timeout=60, **kw) -> subprocess.CompletedProcess:
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        if not {"create", "run"} & set(args):
            return subprocess.run(self.argv(*args), timeout=timeout, capture_output=True,
                                  text=True, **kw)
        # The container keeps create's stdout and stderr (as the shim's pipes) after create
        # returns: files, which need no reader, stand for them here.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run(self.argv(*args), timeout=timeout, stdout=out, stderr=err,
                               text=True, **kw)
            out.seek(0)
            err.seek(0)
            r.stdout, r.stderr = out.read(), err.read()
        return r

    def state(self, container: str) -> dict:
        r = self("state", container)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def log_lines(self) -> list[dict]:
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]


def _reap() -> None:
    """Pid-file processes this test left to its subreaper."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture
def out(bundle):
    """A host directory bound read-write at /out in the container."""
    path = os.path.join(bundle.path, "out")
    os.mkdir(path)
    bundle.edit(lambda c: c["mounts"].append(
        {"destination": "/out", "type": "bind", "source": path, "options": ["rbind", "rw"]}))
    return path


def receive_console(listener) -> tuple[bytes, int]:
    """The runtime's console-socket message, as runc sends it: (the pty's name, its master
    received with SCM_RIGHTS)."""
    conn, _ = listener.accept()
    with conn:
        fds = array.array("i")
        msg, ancillary, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    level, kind, data = ancillary[0]
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    return msg, struct.unpack("i", data[:4])[0]
