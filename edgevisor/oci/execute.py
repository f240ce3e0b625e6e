"""`exec`: a new process in a running container, as runc 1.1 takes it.

    exec [--process P.json | --tty --cwd D --env K=V --user U[:G] --additional-gids G
          --cap C] [--detach] [--pid-file F] [--console-socket S] ID [ARGS...]

The process is a process.json (or the container's own, with the flags on top), reduced here
to numbers: argv, env, cwd, uid, gid, groups, capabilities (checked as create checks them).
It goes over the control socket with our stdio to the holder, which hands it to the guest's
spawner (oci/spawner.py). With --console-socket the process gets a new pty of the guest's
own devpts instead, as runc makes it in the container's: its master comes back on the
connection and goes on to the socket.
The answer is "started" or one error; then the process's wait status.

The pid-file process is ours: with --detach, a child that holds the connection and ends as
the process did (exit N, or death by its signal); without, this process itself.
"""

import fcntl
import json
import os
import resource
import signal
import socket
import stat

from .. import abi
from . import OCIError, console, spawner, spec, state
from .address import short
from .client import read_answer
from .lifecycle import write_pid_file

SPEC_FILE = "config.json"


def exec_process(g, container_id: str, args: list[str]) -> int:
    current = state.load(g.root, container_id)
    status = current.current_status()
    if status != "running":
        raise OCIError(f"cannot exec in a {status} container")
    process = _process(g, current)
    if args:
        process["args"] = args
    request = _reduce(process)
    if request["terminal"] and not g.console_socket:
        raise OCIError("cannot allocate tty if runc will detach without setting console socket")
    if g.console_socket and not request["terminal"]:
        raise OCIError("cannot use console socket if runc will not detach or allocate tty")
    connection = _send(state.socket_path(g.root, container_id), request, g.console_socket,
                       process.get("consoleSize"))
    reader = connection.makefile("rb")
    read_answer(reader)  # started, or its error
    if not g.detach:
        if g.pid_file:
            write_pid_file(g.pid_file, os.getpid())
        return _exit_code(_status(reader))
    waiter = os.fork()
    if waiter == 0:
        _wait_and_end_as(reader)
    if g.pid_file:
        write_pid_file(g.pid_file, waiter)
    return 0


def _process(g, current: state.State) -> dict:
    """process.json, or the container's process with runc's flags on top."""
    if g.process:
        try:
            with open(g.process) as f:
                return json.load(f)
        except OSError as e:
            raise OCIError(f"--process {g.process}: {e.strerror}") from None
        except ValueError as e:
            raise OCIError(f"--process {g.process}: not JSON: {e}") from None
    try:
        with open(os.path.join(current.bundle, SPEC_FILE)) as f:
            process = dict(json.load(f).get("process") or {})
    except (OSError, ValueError) as e:
        raise OCIError(f"the container's {SPEC_FILE}: {e}") from None
    process["terminal"] = g.tty
    if g.cwd:
        process["cwd"] = g.cwd
    process["env"] = [*(process.get("env") or ()), *g.env]
    if g.user:
        uid, _, gid = g.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise OCIError(f"--user {g.user}: expected uid[:gid] in numbers")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if g.additional_gids:
        process.setdefault("user", {})["additionalGids"] = g.additional_gids
    if g.cap:
        caps = process.setdefault("capabilities", {})
        for kind in ("bounding", "effective", "permitted"):
            caps[kind] = [*(caps.get(kind) or ()), *g.cap]
    return process


def _reduce(process: dict) -> dict:
    if not isinstance(process, dict) or not process.get("args"):
        raise OCIError("process.args must not be empty")
    user = process.get("user") or {}
    if user.get("username"):
        raise OCIError("process.user.username is not supported (Windows only)")
    try:
        return {
            "args": [str(a) for a in process["args"]],
            "env": dict(e.split("=", 1) for e in process.get("env") or () if "=" in e),
            "cwd": process.get("cwd") or "/",
            "uid": int(user.get("uid", 0)), "gid": int(user.get("gid", 0)),
            "groups": [int(g) for g in user.get("additionalGids") or ()],
            "capabilities": sorted(spec.capabilities(process.get("capabilities"))),
            "terminal": bool(process.get("terminal")),
        }
    except (TypeError, ValueError) as e:
        raise OCIError(f"process: {e}") from None


def _send(path: str, request: dict, console_socket: str | None, size) -> socket.socket:
    if console_socket and size:
        request = {**request, "console_size": [int(size.get("height", 0)),
                                               int(size.get("width", 0))]}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with short(path) as address:
            s.connect(address)
        # Our stdio; with a console socket the process's is a pty of the guest's own devpts
        # instead, made in the guest, whose master comes back first (spawner.open_terminal).
        socket.send_fds(s, [json.dumps({"op": "exec", "process": request}).encode() + b"\n"],
                        [0, 1, 2])
    except OSError:
        s.close()
        raise OCIError("the container's sandbox is not running") from None
    if console_socket:
        try:
            _pass_terminal(s, console_socket)
        except BaseException:
            s.close()
            raise
    return s


def _pass_terminal(s: socket.socket, console_socket: str) -> None:
    """The guest's pty master, from the connection, on to --console-socket with its name
    (as runc, whose container init sends it back the same way). Anything but a pty master
    is refused: the spawner is a guest task. An answer that comes first is an error, left
    for read_answer."""
    if s.recv(1, socket.MSG_PEEK) != b"/":
        return
    message, fds = spawner.receive_fds(s, spawner.TERMINAL_MESSAGE, 1)
    while len(message) < spawner.TERMINAL_MESSAGE:
        more = s.recv(spawner.TERMINAL_MESSAGE - len(message))
        if not more:
            break
        message += more
    try:
        if len(fds) != 1 or not _is_pty_master(fds[0]):
            raise OCIError("the sandbox sent no terminal")
        console.send_master(console_socket, fds[0], message.rstrip(b"\0"))
    finally:
        for fd in fds:
            os.close(fd)


def _is_pty_master(fd: int) -> bool:
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(5, 2):
        return False
    try:
        fcntl.ioctl(fd, abi.TIOCGPTN, b"\0" * 4)
    except OSError:
        return False
    return True


def _status(reader) -> int | None:
    """The process's wait status; None when the sandbox went first (it took the process)."""
    try:
        return int(read_answer(reader)["status"])
    except (OCIError, KeyError, ValueError):
        return None


def _exit_code(status: int | None) -> int:
    if status is None:
        return 128 + signal.SIGKILL
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _wait_and_end_as(reader):
    """The pid-file process: its stdio is not the process's to keep open, and its end is
    the process's end: exit N, or death by the same signal (without a core file)."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        status = _status(reader)
        if status is not None and os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
        else:
            sig = signal.SIGKILL if status is None else os.WTERMSIG(status)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if sig != signal.SIGKILL:  # which has no handler to reset
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
            os.kill(os.getpid(), sig)
            code = 128 + sig
    finally:
        os._exit(code)
