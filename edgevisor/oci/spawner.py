"""`exec`'s way into a running sandbox: a guest process that forks the new ones.

The Sentry forks nothing once it has locked itself down, and a process entering the guest's
namespaces from the host would be under neither its filters nor the Sentry. So the guest's
first process, once under every filter (the spec's profile, the platform's, the refusals,
no_new_privs) and before it becomes the spec's user, forks this spawner: a guest task like
any other, which the platform adopted at the fork, root with the container's bounding set.
It blocks on a socket pair whose other end only the holder has. Each request is a process,
reduced by `exec` to numbers (oci/execute.py), with the caller's stdio and its control
connection as SCM_RIGHTS; a child of the spawner becomes that process, and its wait status
goes back on the connection.

What the guest can do to it: see it in ps, and signal it if it is root (then `exec` fails:
a denial of `exec` only). ptrace, pidfd_getfd and process_vm_* are refused by the Sentry;
it keeps only sockets (and /dev/null as stdio), which nothing opens through /proc/2/fd; and
it holds no capability the guest's root lacks. The holder reads nothing from it: the answers go to the `exec` caller alone.
"""

import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios

from .. import abi
from ..platform.isolation import become
from ..platform.linux import prctl

# A request: its JSON, then stdin, stdout, stderr and the caller's connection.
_MAX_REQUEST = 1 << 20
_FDS = 4
READY = b"r"
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
MAX_FD = 2**31 - 1  # close_range(2)'s whole range, as boot.keep_inherited_fds
TERMINAL_MESSAGE = 64  # a terminal's master on the connection: its name, padded with NULs


def forward(to_spawner: socket.socket, process: dict, fds: list[int]) -> None:
    """In the holder: hand a request to the spawner (fds: stdio, then the connection)."""
    try:
        socket.send_fds(to_spawner, [json.dumps(process).encode()], fds)
    except OSError as e:
        raise OSError(e.errno, "the sandbox's exec helper is gone (the guest killed it)") from None


def receive_fds(sock: socket.socket, size: int, most: int) -> tuple[bytes, list[int]]:
    """A message and its descriptors, close-on-exec (socket.recv_fds drops its flags)."""
    width = struct.calcsize("i")
    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(most * width),
                                         socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, payload in ancillary:
        if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
            fds += struct.unpack(f"{len(payload) // width}i",
                                 payload[:len(payload) - len(payload) % width])
    return data, fds


def host_pid(to_spawner: socket.socket) -> int:
    """In the holder: the spawner's pid, from the kernel's credentials on its first message
    (the spawner cannot choose them); 0 if it died first."""
    _, ancillary, _, _ = to_spawner.recvmsg(len(READY), socket.CMSG_SPACE(_UCRED.size))
    for level, kind, data in ancillary:
        if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
            return _UCRED.unpack(data[:_UCRED.size])[0]
    return 0


def serve(requests: socket.socket):
    """In the guest: serve until the holder closes its end. Never returns."""
    # Not dumpable, for the kernel's ptrace-mode checks on a guest process (the guest's root
    # lacks CAP_SYS_PTRACE). Its children are dumpable again once they exec.
    prctl(abi.PR_SET_DUMPABLE, 0)
    os.setsid()  # out of the guest's terminal job: ^C is not for the spawner
    # Nothing of the guest's start-up stays: the Sentry's pid namespace, its hand-over pipes
    # and the container's stdio (whose pipes close when the guest's processes are done).
    # What it keeps is sockets, which no one opens through /proc/2/fd.
    keep = requests.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, MAX_FD)
    null = os.open("/dev/null", os.O_RDWR)
    for number in (0, 1, 2):
        os.dup2(null, number)
    os.close(null)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a caller that went away is no reason to die
    requests.send(READY)  # the kernel adds who sent it: the holder learns our host pid
    wake_r, wake_w = socket.socketpair(
        socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)
    callers: dict[int, int] = {}  # a child's pid: its caller's connection
    while True:
        ready = select.select([requests, wake_r], [], [])[0]
        if wake_r in ready:
            while _drain(wake_r):
                pass
            _reap(callers)
        if requests in ready:
            try:
                message, fds = receive_fds(requests, _MAX_REQUEST, _FDS)
            except InterruptedError:
                continue
            if not message:
                os._exit(0)  # the holder is gone, and the sandbox with it
            try:
                process = json.loads(message)
            except ValueError:
                process = None
            if len(fds) != _FDS or not isinstance(process, dict):
                for fd in fds:
                    os.close(fd)
                continue
            _spawn(process, fds[:3], fds[3], callers)


def _drain(wake: socket.socket) -> bool:
    try:
        return bool(wake.recv(512))
    except BlockingIOError:
        return False


def _spawn(process: dict, stdio: list[int], connection: int, callers: dict[int, int]) -> None:
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            _become_process(process, stdio, report_w, connection)
        except BaseException as e:  # noqa: BLE001 - the caller hears why, then exit
            code = getattr(e, "errno", None)
            if isinstance(e, OSError) and code in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
                text = f"exec: {process['args'][0]!r}: {e.strerror}"
            else:
                text = f"exec failed: {e.strerror if isinstance(e, OSError) else e}"
            os.write(report_w, f"{code or 0}\0{text}".encode())
        finally:
            os._exit(127)
    os.close(report_w)
    for fd in stdio:
        os.close(fd)
    failure = b""
    while chunk := os.read(report_r, 4096):
        failure += chunk
    os.close(report_r)
    if failure:
        os.waitpid(pid, 0)
        code, _, text = failure.partition(b"\0")
        # errno: the Python API says a missing command as `edgevisor do` does (api_sandbox.py)
        _answer(connection, ok=False, error=text.decode(errors="replace"), errno=int(code))
        os.close(connection)
        return
    _answer(connection, ok=True, pid=pid)
    callers[pid] = connection


def _become_process(process: dict, stdio: list[int], report_w: int, connection: int):
    """In the spawner's child: the request's session, stdio, user and directory; then exec.
    It gets its stdio alone."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    os.setsid()
    if process["terminal"]:
        stdio = [open_terminal(connection, process.get("console_size"))] * 3
    for number, fd in enumerate(stdio):
        os.dup2(fd, number)
    # Whatever else the spawner holds goes, close-on-exec or not: only the stdio is the
    # process's. The report pipe (close-on-exec) stays for an exec that fails.
    os.closerange(3, report_w)
    os.closerange(report_w + 1, MAX_FD)
    if process["terminal"]:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    identity = (process["uid"], process["gid"], tuple(process["groups"]))
    become(identity, frozenset(process["capabilities"]), frozenset(process["capabilities"]))
    try:
        os.chdir(process["cwd"])
    except OSError as e:
        raise RuntimeError(f"cannot enter the working directory {process['cwd']}: "
                           f"{e.strerror}") from None
    os.execvpe(process["args"][0], process["args"], process["env"])


def open_terminal(connection: int, size) -> int:
    """A new pty of the guest's own devpts, as runc makes one in the container's: its slave
    is returned (the caller's stdio is not used), its master goes to the `exec` caller on
    the connection, ahead of every answer, with its name as the guest sees it, padded to
    TERMINAL_MESSAGE bytes. The guest's /dev/ptmx is opened like any guest open, through
    the Sentry, so the name is a name of the guest's /dev/pts and nothing of the host's
    devpts is made or shown."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, abi.TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, abi.TIOCGPTN, b"\0" * 4))[0]
        if size:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
        name = f"/dev/pts/{number}".encode()
        slave = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        with socket.socket(fileno=os.dup(connection)) as caller:
            socket.send_fds(caller, [name.ljust(TERMINAL_MESSAGE, b"\0")], [master])
    finally:
        os.close(master)
    return slave


def _reap(callers: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = callers.pop(pid, None)
        if connection is not None:
            _answer(connection, ok=True, status=status)
            os.close(connection)


def _answer(connection: int, **fields) -> None:
    try:
        os.write(connection, json.dumps(fields).encode() + b"\n")
    except OSError:
        pass  # the caller is gone: nobody waits for this status
