"""Networking in the sandbox (sentry/net): the guest has a network namespace of its own with
only `lo`, where the sockets the Sentry allows are the kernel's. Loopback TCP (IPv4 and IPv6)
between processes and between threads, UDP addresses, unix sockets carrying descriptors,
isolation from the host's loopback and from the outside in both directions, and what
--network=host changes. Escape attempts are in tests/security/test_net_escapes.py, -p in
test_publish.py."""

import errno
import os
import socket
import subprocess
import textwrap

import pytest

from ..support import EDGEVISOR

TIMEOUT = 60


def guest_python(sandbox, script, **kw):
    return sandbox("python3", "-c", textwrap.dedent(script), timeout=TIMEOUT, **kw)


# -- TCP ------------------------------------------------------------------------------------

# http.server runs as a background job of the shell; the client retries until it listens.
HTTP_CLIENT = """
import time, urllib.request
for _ in range(200):
    try:
        with urllib.request.urlopen('http://{host}:8080/', timeout=10) as r:
            print('status', r.status)
            break
    except OSError:
        time.sleep(0.05)
else:
    print('server never answered')
"""


@pytest.mark.parametrize("bind,host", [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")])
def test_http_server_and_client_in_one_sandbox(sandbox, bind, host):
    script = (f"cd /tmp && python3 -m http.server 8080 --bind {bind} >/dev/null 2>&1 & "
              'python3 -c "$1"; kill $!; wait')
    r = sandbox("sh", "-c", script, "sh", HTTP_CLIENT.format(host=host), timeout=TIMEOUT)
    assert r.returncode in (0, 128 + 15), r.stderr   # `wait` reports the killed job's status
    assert r.stdout.splitlines() == ["status 200"], (r.stdout, r.stderr)


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_echo_server_200_concurrent_clients(sandbox, programs, addr):
    """200 client threads, all connected at once, each sending 1 MiB and checking its echo."""
    r = sandbox(programs["net_echo"], "200", str(2**20), addr, timeout=TIMEOUT)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"ok 200 {2**20}\n", "")


# -- UDP ------------------------------------------------------------------------------------

UDP_ECHO = """
import socket
for family, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
    srv = socket.socket(family, socket.SOCK_DGRAM)
    srv.bind((host, 0))
    cli = socket.socket(family, socket.SOCK_DGRAM)
    cli.bind((host, 0))
    cli.settimeout(10)
    srv.settimeout(10)
    for i in range(3):
        msg = b'datagram %d' % i
        cli.sendto(msg, srv.getsockname())
        data, peer = srv.recvfrom(100)
        assert data == msg, data
        assert peer == cli.getsockname(), (peer, cli.getsockname())
        srv.sendto(data.upper(), peer)
        data, peer = cli.recvfrom(100)
        assert data == msg.upper(), data
        assert peer == srv.getsockname(), (peer, srv.getsockname())
    print(family.name, 'ok')
"""


def test_udp_echo_peer_addresses(sandbox):
    r = guest_python(sandbox, UDP_ECHO)
    assert (r.returncode, r.stdout, r.stderr) == (0, "AF_INET ok\nAF_INET6 ok\n", "")


# -- unix sockets -----------------------------------------------------------------------------

# The sender opens the file and unlinks it before passing the descriptor, so the receiver, a
# forked process that never opened it, can only read it through the descriptor it was passed.
SCM_RIGHTS = """
import os, socket, sys
path, sock_path = '/tmp/passed-file', '/tmp/scm.sock'
with open(path, 'w') as f:
    f.write('through SCM_RIGHTS\\n')
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sock_path)
listener.listen(1)
pid = os.fork()
if pid == 0:
    listener.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    msg, fds, flags, addr = socket.recv_fds(s, 100, 4)
    assert msg == b'fd' and len(fds) == 1, (msg, fds)
    os.lseek(fds[0], 0, os.SEEK_SET)
    sys.stdout.write(os.read(fds[0], 100).decode())
    sys.stdout.flush()
    os._exit(0)
conn, _ = listener.accept()
fd = os.open(path, os.O_RDONLY)
os.unlink(path)
socket.send_fds(conn, [b'fd'], [fd])
_, status = os.waitpid(pid, 0)
print('receiver status', status)
"""


def test_unix_socket_passes_descriptor(sandbox):
    r = guest_python(sandbox, SCM_RIGHTS)
    assert (r.returncode, r.stdout, r.stderr) == (0, "through SCM_RIGHTS\nreceiver status 0\n", "")


# -- isolation ------------------------------------------------------------------------------

CONNECT = """
import socket
s = socket.socket(socket.{family})
s.settimeout(10)
try:
    s.connect(({host!r}, {port}))
    print('connected')
except OSError as e:
    print(e.errno)
"""


def test_host_loopback_not_reachable(sandbox):
    """The sandbox's 127.0.0.1 is its own: a server on the host's loopback is not there."""
    with socket.socket() as host_server:
        host_server.bind(("127.0.0.1", 0))
        host_server.listen(8)
        port = host_server.getsockname()[1]
        r = guest_python(sandbox, CONNECT.format(family="AF_INET", host="127.0.0.1", port=port))
        host_server.setblocking(False)
        with pytest.raises(BlockingIOError):
            host_server.accept()[0].close()   # the host server saw no connection
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{errno.ECONNREFUSED}\n", "")


def test_outside_address_unreachable(sandbox):
    """With only `lo` there is no route out: 192.0.2.1 (TEST-NET-1) fails at once."""
    r = guest_python(sandbox, CONNECT.format(family="AF_INET", host="192.0.2.1", port=80))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{errno.ENETUNREACH}\n", "")


def test_only_loopback_interface(sandbox):
    r = sandbox("busybox", "ip", "addr", timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    links = [line.split(":")[1].strip() for line in r.stdout.splitlines() if line[:1].isdigit()]
    assert links == ["lo"], r.stdout
    assert "inet 127.0.0.1/8" in r.stdout and "inet6 ::1/128" in r.stdout, r.stdout

    r = guest_python(sandbox, "import socket; print(socket.if_nameindex())")
    assert (r.returncode, r.stdout, r.stderr) == (0, "[(1, 'lo')]\n", "")


GUEST_LISTENS = """
import socket, sys
srv = socket.create_server(('127.0.0.1', {port}))
print('listening', flush=True)
srv.settimeout(5)
try:
    conn, _ = srv.accept()
    conn.sendall(b'from the guest')
    conn.close()
    print('accepted')
except OSError:
    print('nobody came')
"""


def _connect_to_guest(platform, mode, port):
    """Start a guest listening on 127.0.0.1:port; return what a host client read from that
    port (None if it could not connect) and what the guest said."""
    proc = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", f"--network={mode}",
                             "--", "python3", "-c", GUEST_LISTENS.format(port=port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "listening\n"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                got = c.recv(100)
        except ConnectionRefusedError:
            got = None
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.communicate()
    return got, out, err


@pytest.mark.parametrize("mode", ["sandbox", "none"])
def test_guest_listener_not_reachable_from_host(platform, mode):
    """Nothing comes in either: a guest server is not on the host's loopback without -p."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got, out, err = _connect_to_guest(platform, mode, port)
    assert got is None and out == "nobody came\n", (out, err)


def test_host_network_guest_listener_is_on_the_host(platform):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got, out, err = _connect_to_guest(platform, "host", port)
    assert got == b"from the guest" and out == "accepted\n", (got, out, err)


def test_host_network_names_come_from_the_rootfs(sandbox):
    """With --network=host, name resolution reads the guest's own files (here its in-memory
    /etc/hosts), not the host's."""
    script = ("echo '127.0.0.9 edgevisor-only.invalid' >> /etc/hosts && "
              "python3 -c \"import socket; print(socket.gethostbyname('edgevisor-only.invalid'))\"")
    r = sandbox("sh", "-c", script, flags=("--network=host",), timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, "127.0.0.9\n"), r.stderr
    with open("/etc/hosts") as f:
        assert "edgevisor-only.invalid" not in f.read()


def test_host_network_socket_is_the_users(platform):
    """--network=host with --user 1000: the host sees the guest's listener as uid 1000's
    (the Sentry made it under the task's ids), as host firewall owner rules would."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--network=host",
                             "--user", "1000", "--", "python3", "-c",
                             GUEST_LISTENS.format(port=port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "listening\n", proc.stderr.read()
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        owners = {int(row[7]) for row in rows
                  if row[1] == f"0100007F:{port:04X}" and row[3] == "0A"}  # LISTEN
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.recv(100)
        proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.communicate()
    assert owners == {1000}


def test_host_network_proc_net_shows_nothing_of_the_hosts(platform):
    """--network=host: the guest's IP sockets are the host's, but /proc/net stays the guest's
    own namespace's: a root guest reading it finds none of the host's interfaces and none of
    its sockets (a host listener, with its owner and inode), which the kernel lists for
    everyone in the host's namespace."""
    with socket.create_server(("127.0.0.1", 0)) as host_listener:
        port = host_listener.getsockname()[1]
        r = subprocess.run([*EDGEVISOR, "do", f"--platform={platform}", "--network=host",
                            "-w", "/", "--", "sh", "-c",
                            "cat /proc/net/dev; echo =; cat /proc/net/tcp"],
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    dev, tcp = r.stdout.split("=\n")
    assert [line.split(":")[0].strip() for line in dev.splitlines()[2:]] == ["lo"], dev
    assert f"0100007F:{port:04X}" not in tcp and len(tcp.splitlines()) == 1, tcp
    with open("/proc/net/dev") as f:
        assert len(f.readlines()) > 3  # the host has interfaces to hide


def test_namespace_links(sandbox):
    """/proc/PID/ns names the guest's own namespaces, as lsns and container checks read
    them: one network namespace for every guest process, not the host's; opening one is
    refused (ENXIO), as namespace descriptors serve only setns."""
    script = ("readlink /proc/self/ns/net /proc/1/ns/net; sh -c 'readlink /proc/$$/ns/net'; "
              "echo $(ls /proc/self/ns); cat /proc/self/ns/net 2>/dev/null || echo refused")
    r = sandbox("sh", "-c", script, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(set(lines[:3])) == 1 and lines[0].startswith("net:["), lines
    assert lines[0] != os.readlink("/proc/self/ns/net")
    assert lines[3].split() == ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
                                "time", "time_for_children", "user", "uts"]
    assert lines[4] == "refused"


def test_proc_net_is_the_guests(sandbox):
    """/proc/net shows the guest's own network namespace: busybox netstat finds the guest's
    listener (and nothing of the host's), /proc/net/dev and ifconfig know only lo."""
    script = """
import socket, subprocess
srv = socket.create_server(('127.0.0.1', 8123))
print(subprocess.run(['busybox', 'netstat', '-ltn'], capture_output=True, text=True).stdout)
print(open('/proc/net/dev').read())
"""
    r = guest_python(sandbox, script)
    assert r.returncode == 0, r.stderr
    listeners = [line.split()[3] for line in r.stdout.splitlines() if "LISTEN" in line]
    assert listeners == ["127.0.0.1:8123"], r.stdout
    devices = [line.split(":")[0].strip() for line in r.stdout.splitlines() if ":" in line
               and "|" not in line and "LISTEN" not in line and "Address" not in line]
    assert devices == ["lo"], r.stdout
