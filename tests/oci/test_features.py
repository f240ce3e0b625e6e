"""ps, pause/resume, update, events; a console socket with a real pty; hooks; a network
namespace joined by path; and the control socket refusing anyone but root."""

import json
import select
import os
import re
import socket
import struct
import subprocess
import termios
import time
import fcntl

import pytest

from .conftest import receive_console
from .test_lifecycle import _wait_for, create, leftovers, new_id, wait_exit



def test_ps_pause_resume_update_and_events(runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "sleep 1000 & sleep 1000 & echo up > /out/up; wait")
    bundle.edit(lambda c: c["linux"]["resources"].update(pids={"limit": 50}))
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")

    r = runtime("ps", "--format", "json", container)
    pids = json.loads(r.stdout)
    assert len(pids) == 3, pids  # sh and its two sleeps: the guest's, not edgevisor's
    names = {open(f"/proc/{p}/comm").read().strip() for p in pids}
    assert names == {"sh", "sleep"}
    table = runtime("ps", container).stdout.splitlines()
    assert "PID" in table[0] and len(table) == 4

    cgroup = f"/sys/fs/cgroup/pids/edgevisor/{container}"
    assert str(pid) in open(f"{cgroup}/cgroup.procs").read().split()  # everything inside
    own = int(open(f"{cgroup}/pids.max").read()) - 50
    assert own > 0  # the limit has room for edgevisor's own tasks
    assert runtime("update", "--resources", "-", container,
                   input=json.dumps({"pids": {"limit": 20}})).returncode == 0
    assert int(open(f"{cgroup}/pids.max").read()) == 20 + own

    assert runtime("pause", container).returncode == 0
    assert runtime.state(container)["status"] == "paused"
    assert open(f"/sys/fs/cgroup/freezer/edgevisor/{container}/freezer.state").read() \
        .strip() == "FROZEN"
    assert runtime("resume", container).returncode == 0
    assert runtime.state(container)["status"] == "running"

    event = json.loads(runtime("events", "--stats", container).stdout)
    assert event["type"] == "stats" and event["id"] == container
    assert event["data"]["pids"]["current"] >= 3
    assert event["data"]["memory"]["usage"]["usage"] > 0

    assert runtime("kill", container, "KILL").returncode == 0
    assert wait_exit(pid) == 137
    assert runtime("delete", container).returncode == 0


def test_pause_of_a_guest_busy_with_emulated_calls(runtime, bundle, out):
    """A guest that opens files without pause has a call waiting for the Sentry's answer at
    almost any moment (a wait the freezer cannot stop): frozen with the Sentry, the cgroup
    would never be frozen, and the container could not be resumed or killed. The guest's
    tasks are frozen first, so every pause completes, and the container goes on after it."""
    container = new_id()
    bundle.command("sh", "-c", "echo up > /out/up; i=0; while :; do read x < /out/up; "
                   "i=$((i+1)); echo $i > /out/count; done")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/count")
    for _ in range(10):
        r = runtime("pause", container)
        assert r.returncode == 0, r.stderr
        assert runtime.state(container)["status"] == "paused"
        r = runtime("resume", container)
        assert r.returncode == 0, r.stderr
    count = open(f"{out}/count").read()
    deadline = time.monotonic() + 30
    while open(f"{out}/count").read() == count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open(f"{out}/count").read() != count  # it runs on
    assert runtime("kill", container, "KILL").returncode == 0
    assert wait_exit(pid) == 137
    assert runtime("delete", container).returncode == 0
    assert leftovers(runtime, container) == []


def test_console_socket_gets_the_pty_master_of_the_guest_terminal(runtime, bundle):
    container = new_id()
    bundle.edit(lambda c: c["process"].update(terminal=True,
                                              consoleSize={"height": 33, "width": 101}))
    bundle.command("sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; tty; stty size; "
                   "read line; echo got $line; stty size")
    path = os.path.join(bundle.path, "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    try:
        pid = create(runtime, bundle, container, "--console-socket", path)
        msg, master = receive_console(listener)
    finally:
        listener.close()
    assert msg.startswith(b"/dev/pts/")
    assert runtime("start", container).returncode == 0
    output = _read_until(master, b"33 101")
    assert b"on-a-tty" in output and b"33 101" in output
    # `tty` names the pty by a name of the guest's own /dev/pts
    assert re.search(rb"^/dev/pts/\d+\r?$", output, re.M), output
    # a resize by the caller reaches the guest's terminal
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.write(master, b"hello\n")
    output = _read_until(master, b"40 120")
    assert b"got hello" in output and b"40 120" in output
    assert wait_exit(pid) == 0
    os.close(master)
    assert runtime("delete", container).returncode == 0


def _read_until(fd: int, needle: bytes) -> bytes:
    out = b""
    deadline = time.monotonic() + 60
    while needle not in out and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_hooks_get_the_state_and_a_failing_one_fails_create(runtime, bundle, out):
    container = new_id()
    seen = os.path.join(bundle.path, "seen")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {seen}; echo >> {seen}"]}
    bundle.edit(lambda c: c.update(hooks={"prestart": [hook], "createRuntime": [hook],
                                          "poststart": [hook], "poststop": [hook]}))
    bundle.command("sh", "-c", "exit 0")
    pid = create(runtime, bundle, container)
    states = [json.loads(line) for line in open(seen).read().split("\n") if line]
    # as runc's: the container is still being created when they run (here, while the holder
    # starts the sandbox: they need only its network namespace)
    assert [s["status"] for s in states] == ["creating", "creating"]
    assert all(s["pid"] == pid and s["id"] == container for s in states)
    assert runtime("start", container).returncode == 0
    assert wait_exit(pid) == 0
    assert runtime("delete", container).returncode == 0
    states = [json.loads(line) for line in open(seen).read().split("\n") if line]
    assert len(states) == 4  # and poststart, poststop

    container = new_id()
    bad = {"path": "/bin/sh", "args": ["sh", "-c", "echo no network for you >&2; exit 3"]}
    bundle.edit(lambda c: c.update(hooks={"prestart": [bad]}))
    r = runtime("create", "--bundle", bundle.path, container)
    assert r.returncode != 0
    msg = runtime.log_lines()[-1]["msg"]
    assert "prestart hook /bin/sh failed (exit status 3): no network for you" == msg
    assert leftovers(runtime, container) == []


def test_a_prestart_hook_configures_the_network_the_guest_gets(runtime, bundle, out):
    """create's hooks run while the holder starts the sandbox; what docker's prestart hook
    does to the holder's network namespace (here an address on its loopback) is what the
    guest's sockets have."""
    container = new_id()
    hook = {"path": "/bin/sh", "args": [
        "sh", "-c", 'pid=$(sed -n "s/.*\\"pid\\": *\\([0-9]*\\).*/\\1/p"); '
                    "exec nsenter -t $pid -n ip addr add 192.0.2.88/32 dev lo"]}
    bundle.edit(lambda c: c.update(hooks={"prestart": [hook]}))
    bundle.command("sh", "-c", "ip addr > /out/links")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    assert wait_exit(pid) == 0
    assert "192.0.2.88" in open(f"{out}/links").read()
    assert runtime("delete", container).returncode == 0


@pytest.fixture
def netns():
    name = f"edgevisor-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    # an address no other namespace has, to tell this one apart (no dummy module needed)
    subprocess.run(["ip", "-n", name, "addr", "add", "192.0.2.77/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "delete", name], check=True)


def test_a_network_namespace_joined_by_path_holds_the_guest_sockets(runtime, bundle, out,
                                                                     netns):
    """docker's prestart hook finds the namespace through the pid-file process: it is in the
    spec's namespace, and so are the guest's sockets (its interfaces, and a listener)."""
    container = new_id()
    bundle.edit(lambda c: c["linux"].update(namespaces=[
        {"type": t} if t != "network" else {"type": t, "path": netns}
        for t in ("pid", "network", "ipc", "uts", "mount")]))
    bundle.command("sh", "-c", "echo served > /out/page; ip addr > /out/links; "
                   "exec httpd -f -p 192.0.2.77:8080 -h /out")
    pid = create(runtime, bundle, container)
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns).st_ino
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/links")
    fetch = ["ip", "netns", "exec", os.path.basename(netns), "busybox", "wget", "-qO-",
             "http://192.0.2.77:8080/page"]
    deadline = time.monotonic() + 60
    while True:  # until the guest listens
        got = subprocess.run(fetch, capture_output=True, text=True)
        if got.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got.stdout == "served\n", got.stderr
    assert runtime("kill", container, "9").returncode == 0
    assert wait_exit(pid) == 137
    assert "192.0.2.77" in open(f"{out}/links").read()
    assert runtime("delete", container).returncode == 0


def _names(table: str) -> list[str]:
    return sorted(line.split(":")[0].strip() for line in table.splitlines()[2:])


def test_proc_net_shows_the_namespace_of_the_guests_sockets(runtime, bundle, out, netns):
    """/proc/net/* is the kernel's for the spec's namespace, where the Sentry makes the
    guest's sockets (docker's eth0 is there), read natively in that namespace as the oracle:
    not the guest task's own loopback-only one, and nothing of the host's."""
    name = os.path.basename(netns)
    subprocess.run(["ip", "-n", name, "link", "add", "evnet0", "type", "veth", "peer", "name",
                    "evnet1"], check=True)
    subprocess.run(["ip", "-n", name, "addr", "add", "198.51.100.7/24", "dev", "evnet0"],
                   check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "evnet0", "up"], check=True)
    bundle.edit(lambda c: c["linux"].update(namespaces=[
        {"type": t} if t != "network" else {"type": t, "path": netns}
        for t in ("pid", "network", "ipc", "uts", "mount")]))
    tables = ("dev", "route", "if_inet6", "ipv6_route", "snmp")
    bundle.command("sh", "-c", "; ".join(f"cat /proc/net/{t} > /out/{t}" for t in tables))
    container = new_id()
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    assert wait_exit(pid) == 0
    assert runtime("delete", container).returncode == 0
    guest = {t: open(f"{out}/{t}").read() for t in tables}
    native = {t: subprocess.run(["ip", "netns", "exec", name, "cat", f"/proc/net/{t}"],
                                capture_output=True, text=True, check=True).stdout
              for t in tables}
    assert _names(guest["dev"]) == _names(native["dev"]) == ["evnet0", "evnet1", "lo"]
    assert guest["route"] == native["route"] and "evnet0" in guest["route"]
    for t in ("if_inet6", "ipv6_route"):  # no host interface is named
        assert {line.split()[-1] for line in guest[t].splitlines()} == \
            {line.split()[-1] for line in native[t].splitlines()}
    assert guest["snmp"].splitlines()[0] == native["snmp"].splitlines()[0]


def test_a_new_network_namespace_has_loopback_only(runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "ip link > /out/links")
    pid = create(runtime, bundle, container)
    assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    assert runtime("start", container).returncode == 0
    assert wait_exit(pid) == 0
    links = open(f"{out}/links").read()
    assert "lo:" in links and "eth0" not in links
    assert runtime("delete", container).returncode == 0


def test_the_control_socket_answers_root_only(runtime, bundle, out):
    """An unprivileged host user who reaches the socket (here its modes are opened up for
    the attempt) still cannot start, kill or list the container."""
    container = new_id()
    bundle.command("sh", "-c", "echo ran > /out/marker")
    pid = create(runtime, bundle, container)
    where = os.path.join(runtime.root, container)
    assert os.stat(where).st_mode & 0o777 == 0o700
    assert os.stat(f"{where}/control.sock").st_mode & 0o777 == 0o600
    os.chmod(runtime.root, 0o755)
    os.chmod(where, 0o755)
    os.chmod(f"{where}/control.sock", 0o777)
    child = os.fork()
    if child == 0:
        os.setgid(65534)
        os.setuid(65534)
        answered = b""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(f"{where}/control.sock")
                s.sendall(b'{"op": "start"}\n')
                answered = s.recv(100)
        finally:
            os._exit(0 if answered == b"" else 1)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 0  # the connection closed without an answer
    assert runtime.state(container)["status"] == "created"
    assert not os.path.exists(f"{out}/marker")
    assert runtime("delete", "--force", container).returncode == 0
    wait_exit(pid)
