"""The control socket, the holder's side: `start`, `kill`, `ps` and `exec` reach the holder
of a container through it (client.py is the caller's side).

One JSON request line, one JSON answer line; `exec`'s request carries the caller's stdio
(SCM_RIGHTS), and its connection goes on with them to the spawner, which answers on it. The
socket is in the state directory (0700, root's) and is itself 0600; the holder answers only
a peer with its own uid (SO_PEERCRED), so the file modes are not the only gate.
"""

import json
import os
import signal
import socket
import struct
import threading

from . import OCIError, spawner
from .address import short
from .procs import guest_processes
from ..boot import FORWARDED_SIGNALS

# Signals whose default action is to do nothing: for a container not yet started, they
# change nothing (as for runc's init waiting on its exec fifo).
_IGNORED_BY_DEFAULT = {signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH}


def serve(path: str, hold) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        with short(path) as address:
            listener.bind(address)
    finally:
        os.umask(old)
    listener.listen(8)
    threading.Thread(target=_accept, args=(listener, hold), daemon=True).start()
    return listener


def _accept(listener: socket.socket, hold) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the listener was closed: the sandbox is going away
        with conn:
            pid, uid, gid = struct.unpack("3i", conn.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            if uid != os.geteuid():
                continue
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                continue
            with hold.answering:
                try:
                    if request["op"] == "exec":
                        _exec(hold, request, fds, conn)
                        continue  # the spawner answers
                    answer = {"ok": True, **_handle(hold, request)}
                except (OCIError, ValueError, KeyError, TypeError) as e:
                    answer = {"ok": False, "error": str(e)}
                except OSError as e:
                    answer = {"ok": False, "error": e.strerror or str(e)}
                finally:
                    for fd in fds:
                        os.close(fd)
                try:
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                except OSError:
                    pass
                if request.get("op") == "start" and answer["ok"]:
                    # After the answer: `start` returns while the guest goes on to its exec,
                    # not after (the Sentry's exec work would hold up docker's next step).
                    hold.release()


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """The request line, and the descriptors that came with it (close-on-exec)."""
    data, fds = spawner.receive_fds(conn, 1 << 16, 3)
    try:
        while data and not data.endswith(b"\n"):
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        request = json.loads(data)
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
        return request, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _exec(hold, request: dict, fds: list[int], conn: socket.socket) -> None:
    if not hold.started:
        raise OCIError("cannot exec in a container that has not been started")
    if len(fds) != 3:
        raise OCIError("exec: stdin, stdout and stderr must come with the request")
    spawner.forward(hold.to_spawner, request["process"], [*fds, conn.fileno()])


def _handle(hold, request: dict) -> dict:
    op = request["op"]
    if not hold.sentry_pid:
        raise OCIError("the container is still being created")
    if op == "start":
        if hold.started:
            raise OCIError("cannot start an already started container")
        hold.started = True  # the gate opens once the answer has gone (_accept)
        return {}
    if op == "kill":
        _kill(hold, int(request["signal"]), bool(request.get("all")))
        return {}
    if op == "pids":
        # the guest's own: the spawner is edgevisor's
        return {"pids": [p for p in guest_processes(hold.sentry_pid) if p != hold.spawner_pid]}
    raise OCIError(f"unknown request {op!r}")


def _kill(hold, sig: int, everyone: bool) -> None:
    if not hold.started:
        if sig not in _IGNORED_BY_DEFAULT:
            hold.killed_by = sig
            os.kill(hold.sentry_pid, signal.SIGKILL)  # its guest and gofer die with it
        return
    guest = guest_processes(hold.sentry_pid)
    if not guest:
        return
    if everyone:
        for pid in guest[1:]:
            _signal(pid, sig)
    if sig in FORWARDED_SIGNALS:
        # The guest's init, a pid namespace's init, ignores a signal it has no handler for;
        # the Sentry delivers it as an ordinary process would get it (sys_signal).
        os.kill(hold.sentry_pid, sig)
    else:
        _signal(guest[0], sig)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
