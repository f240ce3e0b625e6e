"""edgevisor run by an ordinary user: a user namespace of its own, same guarantees."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyseccomp
import pytest

import edgevisor

from ..security.test_dev_nodes import ATTACK, NAMES, host_devices, put_back, results

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def as_nobody():
    """Runs edgevisor as uid 65534 from a world-readable copy of the package (the test's own
    interpreter may live in root's home)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True)
    if version.stdout.strip() != "True":
        pytest.skip(f"{SYSTEM_PYTHON} is missing or older than 3.11")
    tree = Path(tempfile.mkdtemp(prefix="edgevisor-nobody-", dir="/var/tmp"))
    shutil.copytree(Path(edgevisor.__file__).parent, tree / "edgevisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(pyseccomp.__file__, tree)
    subprocess.run(["chmod", "-R", "a+rX", str(tree)], check=True)

    def run(*args):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                               SYSTEM_PYTHON, "-m", "edgevisor.cli", *args],
                              capture_output=True, text=True, env=env, cwd="/", timeout=60)

    yield run
    shutil.rmtree(tree, ignore_errors=True)


def test_unprivileged_run(as_nobody, platform):
    r = as_nobody("do", f"--platform={platform}", "--hostname", "edge1", "--",
                  "sh", "-c", "id -u; uname -n; echo x > /tmp/x && cat /tmp/x; kill -9 $$")
    assert r.returncode == 137, r.stderr
    assert r.stdout.splitlines() == ["65534", "edge1", "x"]
    # Without root overlayfs will not stack on the host's /: a read-only root, said once.
    assert r.stderr.count("read-only") == 1


def test_unprivileged_guest_cannot_write_the_root(as_nobody, platform):
    r = as_nobody("do", f"--platform={platform}", "--", "sh", "-c", "echo x > /var/tmp/nobody-was-here")
    assert r.returncode != 0
    assert not os.path.exists("/var/tmp/nobody-was-here")


def test_unprivileged_network_modes(as_nobody, platform):
    """Without root: -p carries a host connection to a guest listener, and --network=host
    reaches a server on the host's loopback."""
    import socket
    import threading

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got = []

    def host_client():
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    data = c.recv(100)
                    if data:
                        got.append(data)
                        return
            except OSError:
                pass
            threading.Event().wait(0.1)

    client = threading.Thread(target=host_client)
    client.start()
    serve_once = ("import socket; s = socket.create_server(('127.0.0.1', 9000)); "
                  "c, _ = s.accept(); c.sendall(b'published'); c.close()")
    r = as_nobody("do", f"--platform={platform}", "-p", f"{port}:9000", "--",
                  "python3", "-c", serve_once)
    client.join()
    assert r.returncode == 0, r.stderr
    assert got == [b"published"]

    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        host_port = server.getsockname()[1]

        def host_server():
            conn, _ = server.accept()
            conn.sendall(b"from the host")
            conn.close()

        t = threading.Thread(target=host_server)
        t.start()
        connect = ("import socket; c = socket.create_connection(('127.0.0.1', %d)); "
                   "print(c.recv(100).decode())" % host_port)
        r = as_nobody("do", f"--platform={platform}", "--network=host", "--",
                      "python3", "-c", connect)
        t.join()
    assert (r.returncode, r.stdout) == (0, "from the host\n"), r.stderr


def test_unprivileged_guest_cannot_change_the_hosts_device_nodes(as_nobody, platform):
    """Without CAP_MKNOD the guest's /dev holds the host's nodes, each bound read-only: every
    metadata change, by path or descriptor, is refused, unlink and rename reach only the
    sandbox's mountpoints, and the devices work."""
    if not NAMES:
        pytest.skip("no device nodes in the host's /dev")
    before = host_devices()
    try:
        r = as_nobody("do", f"--platform={platform}", "--", "python3", "-c", ATTACK, *NAMES)
        assert r.returncode == 0, r.stderr
        assert host_devices() == before
    finally:
        put_back(before)
    done = results(r.stdout)
    changes = {k: v for k, v in done.items()
               if not k.startswith("works ") and k.split()[-1] not in
               ("link", "rename", "rename_back", "rename_over", "unlink", "open", "lutime")}
    assert changes and set(changes.values()) <= {"EROFS", "EPERM"}, r.stdout
    assert {k: v for k, v in done.items() if k.startswith("works ")} == {
        "works zero": "ok", "works null_write": "ok", "works null_read": "ok",
        "works urandom": "ok", "works random": "ok", "works full_read": "ok",
        "works full_write": "ENOSPC"}, r.stdout
