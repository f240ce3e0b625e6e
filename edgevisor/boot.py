"""Starting a sandbox: the three processes of one run and how they hand over.

    edgevisor (front end) ── fork ──▶ Sentry (pid 1 of a new pid namespace)
                                         └── fork ──▶ guest (pid 2): namespaces, root,
                                                      capabilities, filter, exec CMD

The Sentry is init of the guest's pid namespace. That buys three things from the kernel:
when the Sentry dies, every guest process dies with it; orphans are reparented to it; and
the ids the kernel reports to it are the ids the guest sees. The Sentry dies with the front
end (PR_SET_PDEATHSIG), so `kill -9` of edgevisor leaves nothing behind. The guest's command
is not pid 1 itself: a pid-namespace init is immune to signals it has no handler for, and
`sh -c 'kill -9 $$'` must die as it does on a host.
"""

import dataclasses
import errno
import os
import resource
import select
import signal
import sys
import traceback  # imported now: the Sentry leaves the host's root before it may report

from . import abi
from .job_control import (BACKGROUND, FOREGROUND, GuestJob, ignore_stops, stop_requests,
                          wait_for_sentry)
from .startup import CLOCK
from .config import (
    EXIT_CANNOT_EXECUTE,
    EXIT_NOT_FOUND,
    EXIT_SETUP_FAILED,
    RunConfig,
    SetupError,
    oom_report,
)
from .platform import cgroups
from .platform import get_platform
from .platform.base import die_with_parent
from .platform.bpf import build_filter, build_refusals
from .gofer.client import GoferClient
from .gofer import allowlist
from .gofer.server import start_gofer
from .platform.isolation import (
    FILE_VOLUME_ENTRY,
    RootfsSpec,
    become,
    build_storage,
    drop_privileges,
    enter_namespaces,
    enter_view,
    is_file_volume,
    leave_host_root,
    shared_with_host,
)
from .platform.linux import mount, prctl, seccomp_load, setns, unshare
from .platform import sentry_filter, terminal
from .platform.sysvipc import open_sysvipc
from .sentry.dispatch import EXEC_SYSCALLS, Sentry
from .sentry.fsimpl.terminal import reserve_names
from .sentry.kernel.handed import handed_identities, handed_terminals
from .sentry.kernel.kernel import Kernel
from .sentry.kernel.pids import PidNamespace
from .sentry.syscalls.sys_signal import deliver_to_init
from .sentry.mounts import build_file_system
from .sentry.net import publish
from .sentry.net.policy import direct_sockets
from .sentry.net.stack import Network
from .syscall_tables import load as load_table

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH)


def run(cfg: RunConfig, report_fd: int | None = None) -> int:
    """Run cfg.argv in a sandbox; return the exit code the front end should exit with.
    report_fd: where the caller pointed sys.stderr, edgevisor's own one-line reports, apart
    from the guest's stderr (the Python API's channel); kept open, close-on-exec."""
    CLOCK.mark_once("imports")
    table = load_table()
    cfg.validate(table)
    cfg = dataclasses.replace(cfg, cwd=cfg.working_directory())
    own = (*(cfg.hold.fds if cfg.hold else ()), *(() if report_fd is None else (report_fd,)))
    keep_inherited_fds(cfg.preserve_fds, own)
    platform = get_platform(cfg.platform)
    CLOCK.mark("table")
    # Under --strace every socket call is shown, so none bypasses the Sentry.
    sockets = () if cfg.strace else direct_sockets(cfg.network)
    programs = (build_refusals(table), build_filter(table, platform.trap, _traced(cfg, table),
                                                    stop_actions=terminal.wanted(),
                                                    sockets=sockets),
                publish.build_filter() if cfg.publish else None,
                sentry_filter.build_filter(cfg.platform, cfg.network, cfg.debug, cfg.directfs),
                allowlist.template())
    CLOCK.mark("filters")

    # What the guest inherits as if edgevisor were not there: the caller's signal mask, and
    # "ignored" for the signals the caller ignored (nohup). The Sentry itself needs SIGCHLD
    # delivered and every signal it uses unblocked.
    inherited = _InheritedSignals.capture()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {*FORWARDED_SIGNALS, signal.SIGCHLD, signal.SIGUSR1})

    try:  # in the caller's network namespace, before anything runs: a port in use is an error
        published = publish.bind_host_ports(cfg.publish)
    except OSError as e:
        raise SetupError(e.strerror) from None
    cgroup = []
    if cfg.limits:
        # the gofer, the publisher, the terminal watcher
        # (and a held sandbox's: exec's spawner, the Python API's init)
        own_tasks = (platform.sentry_threads + 1 + bool(published) + terminal.wanted()
                     + (cfg.hold.own_tasks if cfg.hold else 0))
        try:
            cgroup = cgroups.create(cfg.limits, own_tasks=own_tasks)
        except cgroups.Unavailable as e:
            print(f"edgevisor: warning: --pids-limit, --memory and --cpus need a cgroup: {e}; "
                  "running without limits", file=sys.stderr)
    if os.geteuid() != 0:
        _become_namespace_root()
    if cfg.hold:  # before the pid namespace: the front end can start no thread after it
        cfg.hold.open()
    unshare(abi.CLONE_NEWPID)
    lifeline_r, lifeline_w = os.pipe2(os.O_CLOEXEC)
    requests = stop_requests()
    sentry_pid = os.fork()
    if sentry_pid == 0:
        os.close(lifeline_w)
        to_front_end = None
        if requests:
            os.close(requests[0])
            to_front_end = requests[1]
        if cfg.hold:
            cfg.hold.in_sentry()
        code = EXIT_SETUP_FAILED
        try:
            cgroups.join(cgroup)  # before anything is forked: the whole sandbox is inside
            code = _sentry_main(cfg, table, platform, programs, inherited, lifeline_r,
                                published, to_front_end)
        except BaseException as e:  # noqa: BLE001 - the Sentry reports and exits, always
            _report(cfg, f"sentry: {e}", e)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(lifeline_r)
    if requests:
        os.close(requests[1])
    for s in published:
        s.close()
    if cfg.hold:
        cfg.hold.in_front_end(sentry_pid)
    try:
        return _front_end(sentry_pid, cfg, cgroup, requests and requests[0])
    finally:
        cgroups.remove(cgroup)


def _traced(cfg: RunConfig, table) -> frozenset[int]:
    """Numbers the filter hands to the Sentry though the table decides them by number alone:
    the passthrough calls --strace shows (the kernel then runs them), and the denied ones
    --strace shows or the log names once (the Sentry then answers their errno)."""
    rows = []
    if cfg.strace:
        names = {*(cfg.strace_syscalls or table.by_name.keys()), *EXEC_SYSCALLS}
        rows = [table.by_name[n] for n in names if n in table.by_name]
    if cfg.log or cfg.debug:
        rows += [row for row in table.by_nr.values() if row.action == "deny"]
    return frozenset(row.nr for row in rows if row.action in ("passthrough", "deny"))


def keep_inherited_fds(count: int, own: tuple[int, ...] = ()) -> None:
    """Close every descriptor the caller gave us above 2 but the `count` from 3 on, which
    the guest inherits in place (runc's --preserve-fds), and edgevisor's `own` (close-on-exec
    ones: an OCI create's, the Python API's report channel). Whatever else a caller leaves open
    (a secret, a directory or binary outside the view) would otherwise reach the guest as a
    descriptor it could read, fchdir or execveat through. First, before the Sentry, the gofer
    or the guest exist: runc and runsc do the same."""
    low = 3 + count
    for fd in sorted(fd for fd in own if fd >= low):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 2**31 - 1)  # close_range(2): every number, however high
    for fd in range(3, 3 + count):
        os.set_inheritable(fd, True)


def _become_namespace_root() -> None:
    """Unprivileged: a user namespace of our own, mapping only our ids, lets us create the
    other namespaces and mount the guest's root."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(abi.CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def _front_end(sentry_pid: int, cfg: RunConfig, cgroup: list[str],
               stop_requests: int | None) -> int:
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda s, _f: os.kill(sentry_pid, s))
    status = wait_for_sentry(sentry_pid, stop_requests)
    _reclaim_terminal()
    kills = cgroups.oom_kills(cgroup)
    if kills:
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        print(oom_report(cfg.limits.memory, kills, code), file=sys.stderr)
        return code
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS:
        print("edgevisor: the sentry made a system call its seccomp filter forbids (SIGSYS; "
              "--debug logs where)", file=sys.stderr)
        return 128 + signal.SIGSYS
    if os.WIFSIGNALED(status):
        if not (cfg.hold and cfg.hold.killed_by):  # not `kill` of a container never started
            print(f"edgevisor: the sentry was killed by signal {os.WTERMSIG(status)}",
                  file=sys.stderr)
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _reclaim_terminal() -> None:
    if not os.isatty(0):
        return
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)


def _sentry_main(cfg: RunConfig, table, platform, programs, inherited, lifeline: int,
                 published, to_front_end: int | None) -> int:
    die_with_parent()
    if select.select([lifeline], [], [], 0)[0]:
        return EXIT_SETUP_FAILED  # the front end died before we could follow it
    # A /proc of our own shows the guest's pid namespace, where the Sentry is pid 1.
    unshare(abi.CLONE_NEWNS)
    mount(None, "/", None, abi.MS_REC | abi.MS_PRIVATE)
    mount("proc", "/proc", "proc", abi.MS_NOSUID | abi.MS_NODEV | abi.MS_NOEXEC)
    proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    log = _open_log(cfg)  # before the storage's tmpfs shadows /tmp
    terminal.prepare()
    strace = None
    if cfg.strace:  # imported before then too: a checkout or venv may live under /tmp
        from .sentry.strace import Strace
        strace = Strace(log, cfg.strace_syscalls)
    CLOCK.mark("fork, namespaces, /proc")
    storage = build_storage(RootfsSpec(cfg.rootfs, cfg.overlay, cfg.volumes, cfg.scratch_bound(),
                                       cfg.files, cfg.tmpfs))
    CLOCK.mark("storage")
    kernel = Kernel(cfg.hostname)
    kernel.net = Network(cfg.network, cfg.container_netns)
    sentry = Sentry(table, kernel, strace, log if (cfg.debug or cfg.log) else None,
                    stop_actions=terminal.wanted())

    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    # The guest is init (pid 1) of a pid namespace of its own, as a container's first process
    # is; the gofer, forked later, stays in the Sentry's.
    handed = handed_identities(proc_fd)
    # Each host pty handed to the guest gets a number of the guest's devpts, held by the
    # Sentry, under which the guest's /dev/pts shows it (fsimpl/terminal.py).
    terminals = handed_terminals(proc_fd)
    devpts = {guest: host for guest, host, _ in storage.mounts}["/dev"] + "/pts"
    reserved = reserve_names(f"{devpts}/ptmx", len(terminals))
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    unshare(abi.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        _guest_main(cfg, storage, platform, programs, inherited, go_r, ready_w, err_w)
    setns(own_pid_ns, abi.CLONE_NEWPID)
    os.close(own_pid_ns)
    if cfg.hold:
        cfg.hold.guest_forked(pid)
    kernel.pids, kernel.init = PidNamespace(proc_fd), pid
    # Not dumpable: the guest (root, in the same pid namespace) can neither ptrace the Sentry
    # nor open its /proc/1/{mem,root,environ,fd}. Set after the fork, so that the guest stays
    # dumpable and an unprivileged Sentry can still attach to it (ptrace, pidfd_getfd); the
    # guest runs none of its own code before the go-ahead below.
    prctl(abi.PR_SET_DUMPABLE, 0)
    # The Sentry holds descriptors for the guest's files, pidfds and couriers: its own limit
    # rises to the hard one (the guest keeps the caller's).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for fd in (go_r, ready_w, err_w):
        os.close(fd)
    os.closerange(3, 3 + cfg.preserve_fds)  # the guest's now, not the Sentry's
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda s, _f: _forward(kernel, s))
    if to_front_end is not None:  # on a terminal
        kernel.job = job = GuestJob(kernel, to_front_end)
        ignore_stops()
        for sig in terminal.SIGNALS:
            signal.signal(terminal.to_sentry(sig),
                          lambda s, _f: job.key(terminal.from_watcher(s)))
        signal.signal(FOREGROUND, lambda _s, _f: job.continued(True))
        signal.signal(BACKGROUND, lambda _s, _f: job.continued(False))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {FOREGROUND, BACKGROUND,
                                                    *map(terminal.to_sentry, terminal.SIGNALS)})
        signal.pthread_sigmask(signal.SIG_BLOCK, {terminal.FLUSH})  # taken by sigtimedwait
    CLOCK.mark("kernel state, guest fork")
    platform.attach(pid)
    CLOCK.mark("attach")
    os.write(go_w, b"g")
    try:
        if os.read(ready_r, 1) != b"v":
            raise OSError(errno.ECHILD, "the guest failed before building its root")
        # The guest's own /proc, of its pid namespace: what the Sentry's /proc shows.
        guest_proc = os.open(f"{pid}/root/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                             dir_fd=proc_fd)
        kernel.sysvipc = open_sysvipc(proc_fd, pid)
        CLOCK.mark("guest view")
        platform.after_filter(pid, ready_r, go_w)
        CLOCK.mark("guest filter")
        # The gofer holds the host side of every mount, and the guest's own root (its view,
        # built by now), where the descriptors the guest gets are opened. From here on the
        # Sentry reaches files only through it.
        mounts = [(host, read_only, shared_with_host(host),
                   FILE_VOLUME_ENTRY if is_file_volume(host) else None)
                  for _, host, read_only in storage.mounts]
        _, gofer = start_gofer([*mounts, (f"/proc/{pid}/root", False, True)], programs[4])
        CLOCK.mark("gofer")
        kernel.fs = build_file_system(storage, GoferClient(gofer), proc_fd, guest_proc, kernel,
                                      directfs=cfg.directfs,
                                      terminals=[(name, fd) for (name, _), fd
                                                 in zip(reserved, terminals)])
        kernel.fs.reserved_ptys = [master for _, master in reserved]
        CLOCK.mark("file system")
        kernel.fs.handed = handed
        guest_net = os.open(f"{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
        leave_host_root()
        nothing = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        watcher = terminal.start_watcher(pid, nothing)  # the guest has its group by now
        if watcher is not None:
            kernel.job.watcher = os.pidfd_open(watcher)
        os.close(nothing)
        if published:
            publish.start_publisher(cfg.publish, published, guest_net, programs[2])
        os.close(guest_net)
        for s in published:
            s.close()
    except OSError:
        # Either the guest failed before loading its filter (its report is on err_r), or we
        # could not take over; either way it goes no further.
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        failure = _read_all(err_r)
        if not failure:
            raise
    else:
        # Start-up is over: nothing more to fork, mount or open by path.
        sentry_filter.install(programs[3], cfg.network, log.stream if cfg.debug else None)
        CLOCK.mark("publisher, Sentry filter")
        if cfg.debug:
            log(CLOCK.breakdown())
        status = platform.serve(pid, sentry)
        failure = _read_all(err_r)
    if failure:
        stage, code, message = failure.split(b"\0", 2)
        print(f"edgevisor: {message.decode(errors='replace')}", file=sys.stderr)
        if cfg.hold:
            cfg.hold.failed(message.decode(errors="replace"))
        if stage == b"exec":
            return EXIT_NOT_FOUND if int(code) == errno.ENOENT else EXIT_CANNOT_EXECUTE
        return EXIT_SETUP_FAILED
    if os.WIFSIGNALED(status):
        if os.WTERMSIG(status) == signal.SIGKILL and kernel.init_killed_by:
            return 128 + kernel.init_killed_by  # the signal the Sentry delivered as SIGKILL
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _forward(kernel, sig: int) -> None:
    """A signal sent to edgevisor goes where the user means it: on a terminal, to the job in
    its foreground (as ^C would), else to the guest's pid 1; pid 1, among them or not, as to
    an ordinary process (see sys_signal)."""
    group = _foreground_group()
    if group is not None:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            group = None
    try:
        in_group = group is not None and os.getpgid(kernel.init) == group
    except ProcessLookupError:
        return
    if group is None or in_group:
        if not deliver_to_init(kernel, sig) and group is None:
            os.kill(kernel.init, sig)


def _foreground_group() -> int | None:
    """The guest's foreground process group on the terminal edgevisor was started on."""
    try:
        group = os.tcgetpgrp(0)
    except OSError:
        return None
    return group if group > 0 and group != os.getpgrp() else None


def _guest_main(cfg: RunConfig, storage, platform, programs, inherited, go_r: int,
                ready_w: int, err_w: int):
    stage = "setup"
    try:
        die_with_parent()
        if os.read(go_r, 1) != b"g":
            os._exit(EXIT_SETUP_FAILED)
        inherited.restore()
        enter_namespaces(cfg.hostname)
        enter_view(storage)
        os.write(ready_w, b"v")  # the Sentry may now take hold of this root
        try:
            os.chdir(cfg.cwd)
        except OSError as e:
            raise OSError(e.errno, f"cannot enter the working directory: {e.strerror}",
                          cfg.cwd) from None
        _take_terminal()
        drop_privileges(cfg.capabilities())
        identity = cfg.identity()
        if not cfg.hold:
            become(identity, cfg.spec_capabilities, cfg.capabilities())
        prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
        if cfg.seccomp is not None:  # the OCI spec's own profile, beneath edgevisor's filters
            seccomp_load(cfg.seccomp, 0)
        refusals, program = programs[:2]
        # The platform's filter first: the refusals forbid the listener the seccomp one makes.
        platform.load_filter(program, ready_w, go_r)
        seccomp_load(refusals, 0)
        if cfg.hold:  # an OCI create: `exec`'s spawner, still root, under every filter
            cfg.hold.fork_spawner()
            become(identity, cfg.spec_capabilities, cfg.capabilities())
            cfg.hold.wait()  # user code waits for `start`
        stage = "exec"
        env = os.environ if cfg.env is None else cfg.env
        os.execvpe(cfg.argv[0], cfg.argv, env)
    except BaseException as e:  # noqa: BLE001 - report anything, then exit
        code = getattr(e, "errno", None) or 0
        if stage == "exec":
            text = f"{cfg.argv[0]}: {os.strerror(code) if code else e}"
        elif isinstance(e, OSError) and e.strerror:
            where = f" ({e.filename})" if e.filename else ""
            text = f"sandbox setup failed: {e.strerror}{where}"
        else:
            text = f"sandbox setup failed: {e}"
        try:
            os.write(err_w, f"{stage}\0{code}\0{text}".encode())
        finally:
            os._exit(EXIT_SETUP_FAILED)


class _InheritedSignals:
    """The signal state the caller gave edgevisor, to hand on to the guest."""

    # Python itself ignores SIGPIPE and SIGXFSZ at start-up, so what the caller gave for
    # those is unknown: the guest gets the default, as nearly every caller means.
    RESET = (*FORWARDED_SIGNALS, signal.SIGCHLD, signal.SIGUSR1, signal.SIGPIPE, signal.SIGXFSZ)

    def __init__(self, mask, ignored):
        self.mask = mask
        self.ignored = ignored

    @classmethod
    def capture(cls) -> "_InheritedSignals":
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        ignored = {s for s in (*FORWARDED_SIGNALS, signal.SIGCHLD, signal.SIGUSR1)
                   if signal.getsignal(s) is signal.SIG_IGN}
        return cls(mask, ignored)

    def restore(self) -> None:
        for sig in self.RESET:
            signal.signal(sig, signal.SIG_IGN if sig in self.ignored else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)


def _take_terminal() -> None:
    """The guest gets a process group of its own; on a terminal, it becomes the foreground
    group, so ^C reaches the guest alone (and once), as it would reach a shell job."""
    os.setpgid(0, 0)
    if not os.isatty(0):
        return
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass  # not our controlling terminal
    finally:
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)


def _read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 4096):
        out += chunk
    os.close(fd)
    return out


def _open_log(cfg: RunConfig):
    stream = open(cfg.log, "a", buffering=1) if cfg.log else sys.stderr

    def write(line: str) -> None:
        if not line.endswith("\n"):
            line = f"edgevisor: {line}\n"
        stream.write(line)
        stream.flush()

    write.stream = stream  # where the Sentry's filter reports a violation
    return write


def _report(cfg: RunConfig, message: str, exc: BaseException) -> None:
    if cfg.debug:
        traceback.print_exception(exc)
    print(f"edgevisor: {message}", file=sys.stderr)
    if cfg.hold:
        cfg.hold.failed(message)
