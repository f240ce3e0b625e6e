"""create and run: a container's birth, as runc's commands drive it (the holder, which runs
the sandbox). manage.py has what the other commands do to a container that exists."""

import os
import resource
import signal
import sys

from . import CREATED, NETWORK_READY, OCIError, cgroup, client, hooks, state
from .bundle import Plan, read as read_bundle
from .manage import delete, kill, start
from .procs import start_time
from .. import abi
from ..platform import SENTRY_THREADS
from ..platform.cgroups import join as join_cgroups
from ..platform.linux import loopback_up, mount, setns, unshare
from ..errors import EXIT_SETUP_FAILED
from ..startup import CLOCK


def create(g, container_id: str, bundle: str | None, pid_file: str | None,
           console_socket: str | None) -> int:
    """Set the container up and return with its guest held before user code; the holder's
    pid goes to the pid file. On any failure nothing is left: process, cgroup or state."""
    CLOCK.mark("imports")  # --debug's start-up line names the runtime's steps too
    state.check_id(container_id)
    plan = read_bundle(bundle or os.getcwd())  # the host's part: the holder reads the rest
    CLOCK.mark("spec")
    if plan.terminal and not console_socket:
        raise OCIError("cannot allocate tty if runc will detach without setting console socket")
    if console_socket and not plan.terminal:
        raise OCIError("cannot use console socket if runc will not detach or allocate tty")
    # the holder, the gofer and exec's spawner
    own_tasks = SENTRY_THREADS[g.platform] + 3
    dirs = cgroup.directories(cgroup.path_of(plan.cgroups_path, g.systemd_cgroup,
                                             container_id))
    where = state.make(g.root, container_id)
    holder, report = 0, None
    try:
        cgroup.create(dirs, plan.resources, own_tasks)
        freezer = cgroup.freezer(dirs)
        guest_cgroup = cgroup.make_guest_cgroup(freezer) if freezer else None
        CLOCK.mark("cgroup")
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        holder = os.fork()
        if holder == 0:
            os.close(report_r)
            _holder(g, plan, dirs, report_w, where, console_socket, guest_cgroup)
        os.close(report_w)
        report = _Report(report_r)
        report.expect(NETWORK_READY)
        current = state.State(container_id, holder, plan.bundle, plan.rootfs, "creating",
                              state.now(), plan.annotations, start_time(holder), dirs,
                              cgroup.freezer(dirs), plan.hooks, own_tasks=own_tasks)
        state.save(g.root, current)
        # The hooks run while the holder starts the sandbox: they need only its network
        # namespace, and docker's prestart hook (eth0 there) takes as long as all the rest.
        try:
            for name in ("createRuntime", "prestart", "createContainer"):
                hooks.run(plan.hooks, name, current.oci())
        except OCIError as e:  # the holder's own failure, if it had one, is the cause
            raise OCIError(report.failure_so_far() or str(e)) from None
        report.expect(CREATED)
        current.status = "created"
        state.save(g.root, current)
        if pid_file:
            write_pid_file(pid_file, holder)
    except BaseException:
        if holder:
            os.kill(holder, signal.SIGKILL)
            os.waitpid(holder, 0)
            cgroup.kill_all(dirs)  # whatever the holder had started by then
        cgroup.remove(dirs)
        state.remove(g.root, container_id)
        raise
    finally:
        if report:
            report.close()
    return 0


class _Report:
    """What the holder tells create, in order: NETWORK_READY once it is in the container's
    network namespace, then CREATED once the guest waits at the gate; or, at any point
    instead, a line that says why it failed, then EOF."""

    def __init__(self, fd: int):
        self.fd, self.said = fd, b""

    def expect(self, what: bytes) -> None:
        while not self.said.startswith(what) and (chunk := os.read(self.fd, 4096)):
            self.said += chunk
        if not self.said.startswith(what):
            raise OCIError(self._reason() or "the sandbox failed to start")
        self.said = self.said[len(what):]

    def failure_so_far(self) -> str:
        """Why the holder failed, if it has said so by now (without waiting for it)."""
        os.set_blocking(self.fd, False)
        try:
            while chunk := os.read(self.fd, 4096):
                self.said += chunk
        except BlockingIOError:
            pass
        return "" if CREATED.startswith(self.said) else self._reason()

    def _reason(self) -> str:
        lines = self.said.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self) -> None:
        os.close(self.fd)


def write_pid_file(path: str, pid: int) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(str(pid))
    os.replace(path + ".tmp", path)


def _holder(g, plan: Plan, dirs: list[str], report_w: int, where: str,
            console_socket: str | None, guest_cgroup: str | None):
    """The pid-file process: it enters what the spec asks of the host (cgroup, network
    namespace, rlimits, sysctls), then runs the sandbox as `do` would, held before user
    code, and exits with the container's status."""
    code = EXIT_SETUP_FAILED
    try:
        if console_socket:
            from . import console

            console.attach(console_socket, plan.console_size)
        else:
            os.setsid()  # the caller's process group and its signals are not the container's
        join_cgroups(dirs)
        if plan.oom_score_adj is not None:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(plan.oom_score_adj))
        for number, soft, hard in plan.rlimits:
            resource.setrlimit(number, (soft, hard))
        _enter_network(plan.netns)
        for key, value in plan.sysctl.items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
        CLOCK.mark("holder: console, cgroup, network")
        os.write(report_w, NETWORK_READY)  # create runs the hooks meanwhile
        # Imported and read here, not by create: while the hooks run.
        from .. import boot
        from .hold import Hold
        from .spec import complete

        CLOCK.mark("holder: the Sentry's imports")
        complete(plan, g.platform, g.network)
        plan.run.debug, plan.run.strace, plan.run.log = g.debug, g.strace, g.debug_log
        CLOCK.mark("holder: spec")
        _mount_tmpfs(plan, where)
        hold = Hold(report_w, os.path.join(where, client.SOCKET_NAME))
        hold.guest_cgroup = guest_cgroup
        plan.run.hold = hold
        code = boot.run(plan.run)
        hold.finish()
        if hold.killed_by:
            code = 128 + hold.killed_by
    except BaseException as e:  # noqa: BLE001 - the holder reports to create, then exits
        message = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        if isinstance(e, OSError) and e.filename:
            message += f": {e.filename}"
        try:
            os.write(report_w, f"{message}\n".encode())
        except OSError:
            pass
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _enter_network(path: str | None) -> None:
    """The guest's sockets are the Sentry's (--network=host's mechanism), made here: in the
    namespace at the spec's path, or a new one with only loopback."""
    if path:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd, abi.CLONE_NEWNET)
        finally:
            os.close(fd)
    else:
        unshare(abi.CLONE_NEWNET)
        loopback_up()


def _mount_tmpfs(plan: Plan, where: str) -> None:
    """tmpfs mounts (`docker run --tmpfs`) as volumes of tmpfs mounted in the holder's own
    mount namespace: no host user sees them, and they go with the holder."""
    if not plan.tmpfs:
        return
    from ..platform.isolation import Volume

    unshare(abi.CLONE_NEWNS)
    mount(None, "/", None, abi.MS_REC | abi.MS_PRIVATE)
    volumes = list(plan.run.volumes)
    for number, (target, options) in enumerate(plan.tmpfs):
        host = os.path.join(where, f"tmpfs{number}")
        os.mkdir(host, 0o700)
        mount("tmpfs", host, "tmpfs", abi.MS_NOSUID | abi.MS_NODEV, options or None)
        volumes.append(Volume(host, target))
    plan.run.volumes = tuple(volumes)


def run(g, container_id: str, bundle: str | None, pid_file: str | None,
        console_socket: str | None, detach: bool) -> int:
    """create and start; without --detach, wait for the container and delete it."""
    create(g, container_id, bundle, pid_file, console_socket)
    try:
        start(g, container_id)
    except OCIError:
        delete(g, container_id, force=True)
        raise
    if detach:
        return 0
    from ..boot import FORWARDED_SIGNALS

    holder = state.load(g.root, container_id).pid
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda s, _f: kill(g, container_id, s, False))
    _, status = os.waitpid(holder, 0)
    delete(g, container_id, force=True)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
