"""The holder's side of `create`: the start gate, the report to `create`, the control socket.

The holder is the process `create` forks and names in --pid-file. It runs boot.run like
`edgevisor do`; this object is the few hooks boot.run calls for an OCI container:

- `open()`, in the holder before its pid namespace: the gate pipe and the control thread.
- the guest, under its filters, forks `exec`'s spawner (oci/spawner.py) before it becomes
  the spec's user; the holder keeps the other end of the spawner's socket.
- the guest then `wait()`s: it tells `create` "created" and blocks on the gate until `start`
  writes to it (or the holder dies, and it exits unstarted), before any user code runs.
- the Sentry closes the holder's end of the gate, and reports a failed set-up to `create`.
- the holder serves the control socket on that thread while boot.run waits for the Sentry
  (requests before `in_front_end` has the Sentry's pid are refused; `create` returns only
  once the guest waits at the gate, by which time it is set).
"""

import os
import socket
import threading

from . import CREATED, control, spawner


class Hold:
    # Tasks of edgevisor's in the guest that a `do`-style pids limit makes room for (the
    # spawner); an OCI container's limits are its cgroup's, which create sizes itself.
    own_tasks = 1

    def __init__(self, report_w: int, socket_path: str):
        self.report_w = report_w  # create reads "created", or the reason set-up failed
        self.socket_path = socket_path
        self.gate_r = self.gate_w = -1
        self.spawner = self.to_spawner = None  # a socket pair: the guest's end, the holder's
        self.sentry_pid = 0
        self.started = False
        self.killed_by = 0  # a signal that ended the container before `start`
        self.guest_cgroup: str | None = None  # where the guest's tasks go (cgroup.GUEST)
        # Held while the control thread answers: a `kill` ends the container, and the holder
        # must not exit before the answer has gone (`finish`).
        self.answering = threading.Lock()

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.report_w,)

    def open(self) -> None:
        """Before the Sentry is forked, in the holder: the gate, and the control socket's
        thread (no thread can start once the holder has made its pid namespace)."""
        self.gate_r, self.gate_w = os.pipe2(os.O_CLOEXEC)
        self.spawner, self.to_spawner = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        # The kernel names the sender of each message it passes (SCM_CREDENTIALS): the
        # spawner's host pid, which `ps` leaves out (spawner.host_pid).
        self.to_spawner.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._spawner_pid: int | None = None
        self.listener = control.serve(self.socket_path, self)

    def in_sentry(self) -> None:
        os.close(self.gate_w)  # only the holder may open the gate; its death shuts it
        self.listener.close()
        self.to_spawner.close()

    def guest_forked(self, pid: int) -> None:
        """In the Sentry: the guest (`pid`) is forked, and has run nothing of its own."""
        os.close(self.gate_r)
        self.spawner.close()
        if self.guest_cgroup:
            with open(os.path.join(self.guest_cgroup, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def in_front_end(self, sentry_pid: int) -> None:
        os.close(self.gate_r)
        os.close(self.report_w)  # create sees EOF once the Sentry and guest are gone too
        self.spawner.close()
        self.sentry_pid = sentry_pid

    def fork_spawner(self) -> None:
        """In the guest, under its filters: the spawner, which serves until the holder goes."""
        if os.fork() == 0:
            os.close(self.report_w)
            os.close(self.gate_r)
            spawner.serve(self.spawner)
        self.spawner.close()

    @property
    def spawner_pid(self) -> int:
        """The spawner's host pid (0 if it died before saying it), read once, on the control
        thread, its only reader."""
        if self._spawner_pid is None:
            self._spawner_pid = spawner.host_pid(self.to_spawner)
        return self._spawner_pid

    def wait(self) -> None:
        """In the guest: report "created", then hold until `start` (or exit with the holder)."""
        os.write(self.report_w, CREATED)
        os.close(self.report_w)
        if os.read(self.gate_r, 1) != b"s":
            os._exit(0)  # deleted before it was started: no user code ran
        os.close(self.gate_r)

    def failed(self, message: str) -> None:
        try:
            os.write(self.report_w, message.encode() + b"\n")
        except OSError:
            pass  # create is gone: the message is on stderr as well

    def finish(self) -> None:
        """In the holder, before it exits: let an answer being written go out."""
        self.answering.acquire(timeout=10)

    def release(self) -> None:
        """`start`: let the guest go on to its filter and exec."""
        os.write(self.gate_w, b"s")
        os.close(self.gate_w)
        self.started = True
