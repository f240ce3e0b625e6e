"""The Python API: `edgevisor.run`, shaped like subprocess.run, for graders, CI runners and
agent tools that embed a sandbox.

Each call starts a front end process of its own (edgevisor/api_front_end.py) that runs
boot.run, exactly what `edgevisor do` runs, on the same RunConfig. It cannot run in the
caller's process: boot unshares a pid namespace (which would catch the caller's later
children), replaces signal handlers and closes every descriptor above 2. The RunConfig
travels to the front end pickled in a memfd; edgevisor's own one-line reports come back in
another, apart from the guest's stderr, so a sandbox that could not be set up raises
SandboxError with that line, which no output of the command can forge.
"""

import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO

from .config import ConfigError, RunConfig
from .platform.cgroups import Limits
from .platform.isolation import Volume

_REPORT_PREFIX = "edgevisor: "
_WARNING_PREFIX = "edgevisor: warning: "
# A report about a command that did run (config.oom_report's): the caller gets its result,
# and the line where the command's stderr goes, as `edgevisor do` prints it.
_OOM_PREFIX = "edgevisor: the memory limit "


class SandboxError(Exception):
    """The sandbox could not be set up, or could not start the command: the one line
    `edgevisor do` prints for it, without the `edgevisor: ` prefix."""


def run(argv: Sequence[str], *, rootfs: str | None = None,
        volumes: Iterable[str | Volume] = (), network: str = "sandbox",
        env: Mapping[str, str] | None = None, cwd: str | None = None,
        user: str | int | None = None, limits: Limits = Limits(),
        stdin: bytes | str | int | IO | None = None, capture_output: bool = False,
        timeout: float | None = None, text: bool = False, platform: str | None = None,
        hostname: str = "edgevisor") -> subprocess.CompletedProcess:
    """Run argv in a sandbox of its own, as `edgevisor do` does, and wait for it.

    rootfs: the root file system (default: the host's /, read-only under an in-memory
    overlay). volumes: "HOST:GUEST[:ro]" specs, as -v, or Volume objects. env: the command's
    whole environment (default: the caller's). cwd: the command's working directory (default:
    the caller's, where the sandbox sees it). user: "UID[:GID]", a name from the rootfs, or a
    uid. stdin: None (the caller's), a descriptor or file, subprocess.DEVNULL, or bytes or
    str to feed it. A timeout kills the whole sandbox, every process in it, before
    subprocess.TimeoutExpired is raised. Death by signal N is returncode 128+N, as in a shell.
    Raises SandboxError with edgevisor's one-line message when the sandbox cannot run it.
    """
    cfg = _config(argv, rootfs=rootfs, volumes=volumes, network=network, env=env, cwd=cwd,
                  user=user, limits=limits, platform=platform, hostname=hostname)
    return _run(cfg, stdin, capture_output, timeout, text)


def _config(argv: Sequence[str], *, rootfs, volumes, network, env, cwd, user, limits,
            platform, hostname) -> RunConfig:
    from .platform import default_platform_name
    from .syscall_tables import load

    if isinstance(argv, (str, bytes)):
        raise TypeError("argv is a sequence of strings, such as ['sh', '-c', 'echo hi']")
    cfg = RunConfig(argv=[os.fspath(a) for a in argv],
                    platform=platform or default_platform_name(), hostname=hostname,
                    rootfs=rootfs or "/", network=network, cwd=cwd, limits=limits,
                    # The caller's environment as it is now, never the front end's own.
                    env=dict(os.environ if env is None else env),
                    user=None if user is None else str(user),
                    volumes=tuple(_volume(v) for v in volumes))
    try:
        cfg.validate(load())
    except ConfigError as e:
        raise SandboxError(str(e)) from None
    return cfg


def _volume(spec: str | Volume) -> Volume:
    if isinstance(spec, Volume):
        return spec
    try:
        return Volume.parse(spec)
    except ValueError as e:
        raise SandboxError(f"volume {spec!r}: {e}") from None


def _run(cfg: RunConfig, stdin, capture_output: bool, timeout: float | None,
         text: bool) -> subprocess.CompletedProcess:
    data = None
    if isinstance(stdin, (bytes, str)):
        data, stdin = stdin, subprocess.PIPE
        if text and isinstance(data, bytes):
            data = data.decode()
        elif not text and isinstance(data, str):
            data = data.encode()
    output = subprocess.PIPE if capture_output else None
    config_fd = os.memfd_create("edgevisor-config")
    report_fd = os.memfd_create("edgevisor-report")
    try:
        os.write(config_fd, pickle.dumps(cfg))
        os.lseek(config_fd, 0, os.SEEK_SET)
        # A session of its own: the front end, the Sentry and the gofer are one process
        # group that no signal from the caller's terminal reaches, and no terminal of the
        # caller's is taken over.
        with subprocess.Popen([sys.executable, "-P", "-m", "edgevisor.api_front_end",
                               str(config_fd), str(report_fd)],
                              stdin=stdin, stdout=output, stderr=output, text=text,
                              pass_fds=(config_fd, report_fd), start_new_session=True,
                              env=_front_end_environment()) as proc:
            try:
                stdout, stderr = proc.communicate(data, timeout)
            except BaseException as e:  # the timeout, or the caller's KeyboardInterrupt
                _kill_sandbox(proc)
                if isinstance(e, subprocess.TimeoutExpired):
                    e.cmd = cfg.argv
                raise
        failure, notes = _reports(os.pread(report_fd, os.fstat(report_fd).st_size, 0))
    finally:
        os.close(config_fd)
        os.close(report_fd)
    if failure:
        raise SandboxError(failure)
    return subprocess.CompletedProcess(cfg.argv, proc.returncode, stdout,
                                       _with_notes(stderr, notes, text))


def _front_end_environment() -> dict[str, str]:
    """The caller's environment, with this edgevisor first on the path: the front end must
    run the same code as the caller imported, wherever that came from."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here if not path else os.pathsep.join((here, path))}


def _kill_sandbox(proc: subprocess.Popen) -> None:
    """SIGKILL the Sentry: it is init of the sandbox's pid namespace, so the kernel kills
    every process in it (daemons and their children too) and reports the Sentry's death to
    the front end only once they are all gone; the front end then removes the cgroup and
    exits. Before the Sentry exists, the front end's process group goes instead (a Sentry
    forked meanwhile dies with its parent: PR_SET_PDEATHSIG)."""
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            sentries = [int(pid) for pid in f.read().split()]
    except OSError:
        sentries = []
    # Children of a front end that has not exited are not reaped: their pids are still theirs.
    for pid in sentries:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if not sentries:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _reports(text: bytes) -> tuple[str | None, list[str]]:
    """edgevisor's reports: warnings go on to the caller's stderr; the last line that says
    why the sandbox failed, without its prefix (None if none), and the lines about a
    command that did run (the memory limit's kills)."""
    failure, notes = None, []
    for line in filter(None, text.decode(errors="replace").splitlines()):
        if line.startswith(_WARNING_PREFIX):
            print(line, file=sys.stderr)
        elif line.startswith(_OOM_PREFIX):
            notes.append(line)
        else:
            failure = line.removeprefix(_REPORT_PREFIX)
    return failure, notes


def _with_notes(stderr: bytes | str | None, notes: list[str], text: bool):
    """The run's captured stderr with edgevisor's notes after the command's own output, or,
    not captured, the notes printed on the caller's stderr, as `edgevisor do` prints them."""
    if not notes:
        return stderr
    lines = "".join(f"{line}\n" for line in notes)
    if stderr is None:
        sys.stderr.write(lines)
        sys.stderr.flush()
        return None
    return stderr + (lines if text else lines.encode())
