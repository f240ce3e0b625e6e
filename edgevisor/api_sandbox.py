"""`edgevisor.Sandbox`: several commands, one after another or at once, in one sandbox.

    with edgevisor.Sandbox(volumes=["/srv/work:/work"], limits=edgevisor.Limits(pids=64)) as sb:
        sb.run(["sh", "-c", "echo hi > /tmp/x"])
        print(sb.run(["cat", "/tmp/x"], capture_output=True, text=True).stdout)   # hi

The sandbox is the one `edgevisor.run` would start with the same options (the same
RunConfig, validated in the caller, the same Sentry, filters and cgroup), held by a front end
process of its own (api_front_end.py, api_holder.py) with the OCI runtime's machinery: its
first guest process is an init of edgevisor's, and each command is an OCI `exec`, sent from
the caller straight to the holder's control socket (no process is started for it) and forked
by the spawner inside the sandbox. Nothing is done in the caller's process but pipes and
socket I/O: no fork, no signal handler, no namespace.
"""

import dataclasses
import json
import locale
import os
import pickle
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import IO

from .api import (
    _REPORT_PREFIX,
    SandboxError,
    _config,
    _front_end_environment,
    _kill_sandbox,
    _reports,
    _with_notes,
)
from .config import ConfigError, RunConfig, oom_report
from .oci import CREATED
from .oci.client import SOCKET_NAME
from .platform import cgroups
from .platform.cgroups import Limits
from .platform.isolation import Volume

# After a timeout's SIGKILLs, how long the command's end may take to be reported.
_KILL_GRACE = 10.0


class Sandbox:
    """One sandbox for several commands: the overlay, /tmp and every other in-memory file
    system, and any process left running, persist from one `run` to the next.

    The options are edgevisor.run's, with the same meanings and defaults; env, cwd and user
    are the defaults of each `run`, which may give its own. The sandbox is set up when the
    Sandbox is made (a bad option, or a sandbox that cannot be set up, raises SandboxError
    there) and ends at `close()` (or the `with` block's end, even by an exception): every
    process in it is killed, its cgroup and its private runtime directory removed. If the
    caller dies without closing it, the sandbox ends as well; a Sandbox garbage collected
    unclosed is closed then, with a ResourceWarning (as subprocess.Popen warns of a process
    still running).

    `run` may be called from several threads at once: each command has its own connection
    and pipes, and the commands run side by side in the sandbox. A `limits` applies to the
    whole sandbox: every command running at a time shares it.
    """

    def __init__(self, rootfs: str | None = None, volumes: Iterable[str | Volume] = (),
                 network: str = "sandbox", env: Mapping[str, str] | None = None,
                 cwd: str | None = None, user: str | int | None = None,
                 limits: Limits = Limits(), platform: str | None = None,
                 hostname: str = "edgevisor"):
        # argv is never run: the sandbox's init is edgevisor's own (api_holder.py).
        cfg = _config(["edgevisor-sandbox-init"], rootfs=rootfs, volumes=volumes,
                      network=network, env=env, cwd=cwd, user=user, limits=limits,
                      platform=platform, hostname=hostname)
        try:
            # Where the commands start unless told: resolved now, as edgevisor.run's front
            # end would (the caller's directory where the sandbox sees it), so that the init
            # and every command agree on it.
            cfg.cwd = cfg.working_directory()
        except ConfigError as e:
            raise SandboxError(str(e)) from None
        self._cfg = cfg
        self._lock = threading.Lock()
        self._closed = False
        self._proc: subprocess.Popen | None = None
        self._lifeline = -1
        self._report = -1
        self._report_seen = 0
        self._cgroups: list[str] = []  # the sandbox's own, where its OOM kills are counted
        self._root = tempfile.mkdtemp(prefix="edgevisor-sandbox-")  # 0700
        self._socket = os.path.join(self._root, SOCKET_NAME)
        # What the sandbox holds outside this object, for close() or, if the caller drops
        # the Sandbox unclosed, the finaliser (which must not refer to the Sandbox itself).
        self._held = _Held(self._root)
        self._finalizer = weakref.finalize(self, _abandoned, self._held)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # -- the holder ------------------------------------------------------------------------

    def _start(self) -> None:
        config_fd = os.memfd_create("edgevisor-config")
        self._report = os.memfd_create("edgevisor-report", os.MFD_CLOEXEC)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        lifeline_r, self._lifeline = os.pipe2(os.O_CLOEXEC)
        self._held.fds = [self._lifeline, self._report]
        try:
            os.write(config_fd, pickle.dumps(self._cfg) + pickle.dumps(self._socket))
            os.lseek(config_fd, 0, os.SEEK_SET)
            # A session of its own, as edgevisor.run's front end: no signal of the caller's
            # terminal reaches the sandbox, and it takes over no terminal.
            self._proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "edgevisor.api_front_end", str(config_fd),
                 str(self._report), str(ready_w), str(lifeline_r)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(config_fd, self._report, ready_w,
                                                     lifeline_r),
                start_new_session=True, env=_front_end_environment())
            self._held.proc = self._proc
        finally:
            for fd in (config_fd, ready_w, lifeline_r):
                os.close(fd)
        said = b""
        try:
            while not said.startswith(CREATED) and (chunk := os.read(ready_r, 4096)):
                said += chunk
        finally:
            os.close(ready_r)
        if not said.startswith(CREATED):
            self._proc.wait()
            raise SandboxError(self._reports() or "the sandbox failed to start")
        self._reports()  # its warnings, now
        sentry = self._sentry_pid()
        if self._cfg.limits.memory is not None and sentry is not None:
            try:
                self._cgroups = cgroups.of_process(sentry, self._proc.pid)
            except OSError:
                pass  # the sandbox is gone already: the next run says so

    def _reports(self) -> str | None:
        """The holder's reports since the last look: warnings go to the caller's stderr, as
        edgevisor.run's; the last other line, without its prefix, is returned (the memory
        limit's, when it killed the Sentry and so ended the sandbox)."""
        with self._lock:
            if self._report < 0:
                return None
            size = os.fstat(self._report).st_size
            text = os.pread(self._report, size - self._report_seen, self._report_seen)
            self._report_seen = size
        failure, notes = _reports(text)
        return failure or (notes[-1].removeprefix(_REPORT_PREFIX) if notes else None)

    @property
    def holder_pid(self) -> int:
        """The pid of the sandbox's holder, the process the Sentry and every process of the
        sandbox descend from."""
        return self._proc.pid

    @property
    def runtime_root(self) -> str:
        """The Sandbox's private runtime directory (0700): the control socket."""
        return self._root

    # -- commands --------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            cwd: str | None = None, user: str | int | None = None,
            stdin: bytes | str | int | IO | None = None, capture_output: bool = False,
            timeout: float | None = None, text: bool = False) -> subprocess.CompletedProcess:
        """Run argv in the sandbox and wait for it; a CompletedProcess, as edgevisor.run's.

        env: the command's whole environment (default: the Sandbox's). cwd: a guest path
        (default: the Sandbox's). user: as the Sandbox's (default: the Sandbox's). stdin:
        None (the caller's), a descriptor or file, subprocess.DEVNULL, or bytes or str to
        feed it. Death by signal N is returncode 128+N. When the memory limit's OOM killer
        killed a process of the sandbox meanwhile, edgevisor's line saying so follows the
        command's stderr, as edgevisor.run's (captured, or on the caller's stderr).

        `run` returns when the command exits: what it left running in the background goes on
        (until close), and what that writes later is not captured.

        A timeout (or a KeyboardInterrupt while waiting) SIGKILLs the command and every
        process of its session or below it, waits until the command is gone, then raises
        subprocess.TimeoutExpired; the sandbox survives, its files and other processes with
        it, and takes more commands. A daemon that left both the command's session and its
        tree (setsid, then its parent exited) is not the command's any more: it lives until
        close().

        Raises SandboxError with edgevisor's one-line message for what the sandbox cannot
        do: a bad option, a command that is not found or cannot be executed (as
        edgevisor.run), a Sandbox closed or a sandbox that ended (a root guest can end it).
        """
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv is a sequence of strings, such as ['sh', '-c', 'echo hi']")
        cfg = self._command(argv, env, cwd, user)
        request = self._request(cfg)
        data = None
        if isinstance(stdin, (bytes, str)):
            # as subprocess's text mode: str in the locale's encoding
            data = (stdin.encode(locale.getpreferredencoding(False)) if isinstance(stdin, str)
                    else stdin)
            stdin = subprocess.PIPE
        output = subprocess.PIPE if capture_output else None
        ours: dict[int, int] = {}  # our ends of the pipes, by the command's number
        close_after: list[int] = []  # the command's ends, which it has once it is sent
        connection = None
        kills_before = cgroups.oom_kills(self._cgroups)
        try:
            try:
                fds = [self._stdio(number, what, ours, close_after)
                       for number, what in enumerate((stdin, output, output))]
                connection = self._send(request, fds)
            finally:
                for fd in close_after:
                    os.close(fd)
            result = self._wait(cfg.argv, connection, ours, data, timeout, text)
            kills = cgroups.oom_kills(self._cgroups) - kills_before
            if kills:  # as edgevisor.run and `edgevisor do` say it, for this run
                result.stderr = _with_notes(
                    result.stderr, [oom_report(cfg.limits.memory, kills, result.returncode)],
                    text)
            return result
        finally:
            if connection is not None:
                connection.close()
            for fd in ours.values():
                os.close(fd)

    def _command(self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None,
                 user: str | int | None) -> RunConfig:
        """The command's RunConfig: the Sandbox's, with this run's options, checked as
        edgevisor.run checks them."""
        from .syscall_tables import load

        cfg = dataclasses.replace(
            self._cfg, argv=[os.fspath(a) for a in argv],
            env=self._cfg.env if env is None else dict(env),
            cwd=self._cfg.cwd if cwd is None else cwd,
            user=self._cfg.user if user is None else str(user))
        try:
            cfg.validate(load())
        except ConfigError as e:
            raise SandboxError(str(e)) from None
        return cfg

    @staticmethod
    def _request(cfg: RunConfig) -> dict:
        """What the spawner runs (oci/execute.py's reduced process): the user as `do` takes
        it, root with `do`'s capabilities when none is given."""
        uid, gid, groups = cfg.identity() or (0, 0, ())
        return {"args": cfg.argv, "env": cfg.env, "cwd": cfg.cwd, "uid": uid, "gid": gid,
                "groups": list(groups), "capabilities": sorted(cfg.capabilities()),
                "terminal": False}

    @staticmethod
    def _stdio(number: int, what, ours: dict, close_after: list) -> int:
        """The descriptor the command gets as `number`; a pipe's other end goes in `ours`."""
        if what is subprocess.PIPE:
            r, w = os.pipe2(os.O_CLOEXEC)
            ours[number] = w if number == 0 else r
            os.set_blocking(ours[number], False)
            close_after.append(r if number == 0 else w)
            return r if number == 0 else w
        if what is subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            close_after.append(fd)
            return fd
        if what is None:
            what = number
        elif not isinstance(what, int):
            what = what.fileno()
        try:
            os.fstat(what)
        except OSError:  # the caller has none: the command gets /dev/null
            return Sandbox._stdio(number, subprocess.DEVNULL, ours, close_after)
        return what

    def _send(self, request: dict, fds: list[int]) -> socket.socket:
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.connect(self._socket)
            socket.send_fds(s, [json.dumps({"op": "exec", "process": request}).encode()
                                + b"\n"], fds)
        except OSError:
            s.close()
            raise SandboxError(self._gone()) from None
        return s

    def _gone(self) -> str:
        if self._closed:
            return "the sandbox is closed"
        return self._reports() or "the sandbox has ended"

    def _wait(self, argv: list[str], connection: socket.socket, ours: dict[int, int],
              data: bytes | None, timeout: float | None,
              text: bool) -> subprocess.CompletedProcess:
        deadline = None if timeout is None else time.monotonic() + timeout
        output: dict[int, list[bytes]] = {1: [], 2: []}
        answers: list[dict] = []
        partial = [b""]
        pid = None
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(connection, selectors.EVENT_READ, "answer")
                if 0 in ours and not data:
                    os.close(ours.pop(0))  # nothing to feed: the command reads EOF
                for number, fd in ours.items():
                    sel.register(fd, selectors.EVENT_WRITE if number == 0
                                 else selectors.EVENT_READ, number)
                offset = 0
                status = None
                while status is None:
                    wait = None if deadline is None else deadline - time.monotonic()
                    if wait is not None and wait <= 0:
                        raise subprocess.TimeoutExpired(argv, timeout)
                    for key, _ in sel.select(wait):
                        if key.data == "answer":
                            for answer in self._answers(connection, partial, answers):
                                if not answer.get("ok"):
                                    raise SandboxError(self._exec_error(argv, answer))
                                if "pid" in answer:
                                    pid = int(answer["pid"])
                                if "status" in answer:
                                    status = int(answer["status"])
                        elif key.data == 0:
                            try:
                                offset += os.write(key.fd, data[offset:offset + 65536])
                            except BrokenPipeError:
                                offset = len(data)
                            if offset >= len(data):
                                sel.unregister(key.fd)
                                os.close(ours.pop(0))
                        else:
                            if not self._read(key.fd, output[key.data]):
                                sel.unregister(key.fd)
                # The command's own writes are in the pipes by now: take what is there,
                # without waiting for what it left in the background.
                for number in (1, 2):
                    if number in ours:
                        while self._read(ours[number], output[number]):
                            pass
        except BaseException as e:  # the timeout, the caller's ^C, an error reading
            if not isinstance(e, SandboxError):
                self._kill_command(pid, connection, partial, answers)
            if isinstance(e, subprocess.TimeoutExpired):
                raise subprocess.TimeoutExpired(
                    argv, timeout, self._result(output[1], 1 in ours, text),
                    self._result(output[2], 2 in ours, text)) from None
            raise
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        return subprocess.CompletedProcess(argv, code, self._result(output[1], 1 in ours, text),
                                           self._result(output[2], 2 in ours, text))

    def _answers(self, connection: socket.socket, partial: list, answers: list) -> list[dict]:
        """The answer lines that came in (the spawner's "started" or error, then the wait
        status); SandboxError when the connection ends without one: the sandbox went."""
        chunk = connection.recv(65536)
        if not chunk:
            raise SandboxError(self._gone())
        partial[0] += chunk
        *lines, partial[0] = partial[0].split(b"\n")
        new = [json.loads(line) for line in lines if line]
        answers += new
        return new

    @staticmethod
    def _exec_error(argv: list[str], answer: dict) -> str:
        """The spawner's error, said as `edgevisor do` says a command it cannot exec."""
        import errno

        code = answer.get("errno") or 0
        if code in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
            return f"{argv[0]}: {os.strerror(code)}"
        error = answer.get("error") or "the command could not be started"
        return error.removeprefix("exec failed: ")  # the OCI runtime's log line

    @staticmethod
    def _read(fd: int, into: list[bytes]) -> bool:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if chunk:
            into.append(chunk)
        return bool(chunk)

    @staticmethod
    def _result(chunks: list[bytes], captured: bool, text: bool):
        if not captured:
            return None
        out = b"".join(chunks)
        if not text:
            return out
        # as subprocess's text mode: the locale's encoding, universal newlines
        return out.decode(locale.getpreferredencoding(False)).replace(
            "\r\n", "\n").replace("\r", "\n")

    # -- a timeout -------------------------------------------------------------------------

    def _kill_command(self, guest_pid: int | None, connection: socket.socket, partial: list,
                      answers: list) -> None:
        """SIGKILL the command (a session of its own, which the spawner made it) and what is
        in its session or below it, until none is left; then wait for its status."""
        from .oci.procs import guest_processes, parent, session

        deadline = time.monotonic() + _KILL_GRACE
        connection.settimeout(_KILL_GRACE)
        try:  # not started yet: it will be, unless it cannot
            while guest_pid is None:
                for answer in self._answers(connection, partial, answers):
                    if not answer.get("ok"):
                        return
                    guest_pid = answer.get("pid")
        except (OSError, SandboxError, ValueError):
            return
        if any("status" in a for a in answers):
            return  # it ended meanwhile
        sentry = self._sentry_pid()
        leader = None
        while sentry and time.monotonic() < deadline:
            guest = guest_processes(sentry)
            if leader is None:
                leader = next((p for p in guest if _ns_pid(p) == guest_pid
                               and session(p) == p), None)
                if leader is None:
                    break  # gone already
            victims = set()
            parents = {p: parent(p) for p in guest}
            for p in guest:
                if session(p) == leader:
                    victims.add(p)
            grown = True
            while grown:  # and below it, whatever session they made
                more = {p for p, pp in parents.items() if pp in victims | {leader}} - victims
                grown = bool(more)
                victims |= more
            if not victims:
                break
            for p in victims:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        # The spawner reaps it and answers: the command is gone before the caller hears.
        connection.settimeout(max(0.0, deadline - time.monotonic()))
        try:
            while not any("status" in a for a in answers):
                self._answers(connection, partial, answers)
        except (OSError, SandboxError, ValueError):
            pass

    def _sentry_pid(self) -> int | None:
        pid = self._proc.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = f.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """End the sandbox: SIGKILL every process in it, wait until they are gone and its
        cgroup removed, remove the runtime directory. Idempotent; `run` raises SandboxError
        afterwards (and a `run` still waiting in another thread does too)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lifeline = self._report = -1  # to be closed by self._held.end()
        self._finalizer.detach()
        self._held.end()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Held:
    """A Sandbox's holder process, the descriptors it shares with it and its runtime
    directory: what ending the sandbox releases."""

    __slots__ = ("fds", "proc", "root")

    def __init__(self, root: str):
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.fds: list[int] = []

    def end(self) -> None:
        if self.proc is not None:
            _kill_sandbox(self.proc)
        for fd in self.fds:
            if fd >= 0:
                os.close(fd)
        self.fds = []
        shutil.rmtree(self.root, ignore_errors=True)


def _abandoned(held: _Held) -> None:
    """The finaliser of a Sandbox the caller dropped without closing it."""
    pid = held.proc.pid if held.proc is not None else None
    warnings.warn(f"edgevisor.Sandbox (holder pid {pid}) was not closed: ending it now",
                  ResourceWarning)
    held.end()


def _ns_pid(pid: int) -> int | None:
    """The process's pid in its own (innermost) pid namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None

