"""The `edgevisor` command: `do` runs one command sandboxed, `syscalls` prints the table.

A runc-style command line goes to oci.cli before anything of `do` is imported: each of
docker's runtime calls is a process of its own, and its start-up is the user's wait."""

from __future__ import annotations

import os
import sys

from . import startup  # noqa: F401 - first: it marks where the interpreter's start ended
from . import __version__
from .errors import EXIT_SETUP_FAILED, ConfigError, SetupError
from .sentry.net import MODES as NETWORK_MODES

TYPE_CHECKING = False  # as typing's, without importing typing on every start
if TYPE_CHECKING:
    from .platform.isolation import Tmpfs, Volume
    from .sentry.net.publish import Port


def _parser():
    import argparse

    from .platform import NAMES, default_platform_name

    class _Parser(argparse.ArgumentParser):
        """argparse, but a usage error is one line on stderr and exit status 2."""

        def error(self, message: str):
            self.exit(2, f"{self.prog}: {message}\n")

    p = _Parser(prog="edgevisor", description="A gVisor-style user-space kernel sandbox.")
    p.add_argument("--version", action="version", version=f"edgevisor {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    do = sub.add_parser("do", help="run one command in a sandbox",
                        usage="edgevisor do [flags] -- CMD [ARGS...]")
    do.add_argument("--platform", choices=NAMES, default=default_platform_name(),
                    help="how syscalls are captured (default: %(default)s)")
    do.add_argument("--hostname", default="edgevisor", help="the sandbox's host name")
    do.add_argument("--rootfs", default="/", help="root file system (default: the host's /)")
    do.add_argument("--overlay", choices=("memory", "none"), default="memory",
                    help="writable in-memory layer over the rootfs, or none (read-only)")
    do.add_argument("--read-only", action="store_true",
                    help="the rootfs read-only, with no writable layer (Docker's spelling of "
                         "--overlay=none)")
    do.add_argument("-w", "--workdir", metavar="DIR",
                    help="the guest's working directory (default: the caller's, where the "
                         "guest sees it; / with another --rootfs)")
    do.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VAL]",
                    help="set KEY in the command's environment (KEY alone: the caller's value)")
    do.add_argument("--env-file", action="append", default=[], metavar="FILE",
                    help="read KEY=VAL lines from FILE, as -e (# starts a comment line)")
    do.add_argument("--clear-env", action="store_true",
                    help="start from an empty environment (default: the caller's whole "
                         "environment passes), then apply --env-file and -e")
    do.add_argument("--directfs", choices=("true", "false"), default="true",
                    help="the Sentry opens and looks up files itself, beneath descriptors "
                         "the gofer gives it; false: every one through the gofer "
                         "(default: %(default)s)")
    do.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:GUEST[:ro]",
                    help="bind the host directory or file HOST at GUEST (read-only with :ro)")
    do.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:size=N,mode=M]",
                    help="an empty in-memory file system at PATH (mode M in octal, default "
                         "1777); its size, or without one what it holds, counts in "
                         "--scratch-size")
    do.add_argument("-u", "--user", metavar="UID[:GID]",
                    help="run the command as this user (a number, or a name from the rootfs)")
    do.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                    help="an additional group for the command")
    do.add_argument("--network", choices=NETWORK_MODES, default="sandbox",
                    help="sandbox: a loopback-only network of its own, ports published with "
                         "-p (default); none: the same, nothing published; host: the host's "
                         "network for IP sockets")
    do.add_argument("-p", "--publish", action="append", default=[],
                    metavar="[HOSTIP:]HOSTPORT:GUESTPORT[/udp]",
                    help="make a guest port reachable at HOSTPORT on the host (on 127.0.0.1 "
                         "unless HOSTIP is given)")
    do.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                    help="give back a capability of the default set (after --cap-drop); "
                         "the others reach past the sandbox and are refused")
    do.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                    help="take this capability from the command (ALL: every one)")
    do.add_argument("--pids-limit", type=int, metavar="N",
                    help="at most N tasks in the sandbox (a cgroup; ignored with a warning "
                         "where edgevisor has none to use)")
    do.add_argument("--memory", metavar="SIZE", help="memory limit, as 512m or 2g (a cgroup)")
    do.add_argument("--cpus", type=float, metavar="N", help="CPU time limit, in CPUs (a cgroup)")
    do.add_argument("--scratch-size", metavar="SIZE",
                    help="what the in-memory file systems (the overlay, /tmp, /dev, /dev/shm) "
                         "may hold together, as 512m or 2g; past it writes fail with ENOSPC "
                         "(default: 1g, or a quarter of the host's RAM if less, and at most "
                         "--memory)")
    do.add_argument("--preserve-fds", type=int, default=0, metavar="N",
                    help="pass descriptors 3 to 3+N-1 on to the command, as runc does; every "
                         "other descriptor above 2 is closed (default: 0)")
    do.add_argument("--strace", action="store_true", help="log the syscalls the Sentry sees")
    do.add_argument("--strace-syscalls", metavar="A,B", help="with --strace: only these syscalls")
    do.add_argument("--log", metavar="FILE", help="write strace and Sentry logs here (default: stderr)")
    do.add_argument("--debug", action="store_true", help="log Sentry events; tracebacks on errors")
    do.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD [ARGS...]")

    sc = sub.add_parser("syscalls", help="print the syscall table")
    sc.add_argument("--arch", choices=("x86_64", "aarch64"), default=None,
                    help="architecture (default: the host's)")
    sc.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    return p


def _do(args) -> int:
    from .boot import run
    from .config import RunConfig
    from .platform.cgroups import Limits

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    only = None
    if args.strace_syscalls:
        only = frozenset(n.strip() for n in args.strace_syscalls.split(",") if n.strip())
    cfg = RunConfig(argv=argv, platform=args.platform, hostname=args.hostname,
                    rootfs=args.rootfs, overlay=args.overlay == "memory" and not args.read_only,
                    env=_environment(args), cwd=args.workdir,
                    directfs=args.directfs == "true",
                    strace=args.strace or only is not None, strace_syscalls=only,
                    log=args.log, debug=args.debug,
                    volumes=tuple(_volume(v) for v in args.volume),
                    tmpfs=tuple(_tmpfs(t) for t in args.tmpfs),
                    limits=Limits(args.pids_limit, _size(args.memory, "--memory"), args.cpus),
                    scratch_size=_size(args.scratch_size, "--scratch-size"),
                    user=args.user, group_add=tuple(args.group_add),
                    network=args.network, publish=tuple(_port(p) for p in args.publish),
                    preserve_fds=args.preserve_fds, cap_add=tuple(args.cap_add),
                    cap_drop=tuple(args.cap_drop))
    return run(cfg)


def _environment(args) -> dict[str, str] | None:
    """The command's environment: the caller's (or none with --clear-env), then each
    --env-file in order, then each -e, as docker run applies them. None: the caller's,
    unchanged."""
    if not (args.clear_env or args.env_file or args.env):
        return None
    env = {} if args.clear_env else dict(os.environ)
    for path in args.env_file:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--env-file {path!r}: {getattr(e, 'strerror', None) or e}") from None
        for number, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                _set_variable(env, line, f"--env-file {path!r} line {number}")
    for spec in args.env:
        _set_variable(env, spec, "-e")
    return env


def _set_variable(env: dict[str, str], spec: str, where: str) -> None:
    """KEY=VAL sets KEY; KEY alone passes the caller's KEY, or nothing if it has none."""
    key, equals, value = spec.partition("=")
    if not key or "\0" in spec or any(c.isspace() for c in key):
        raise ConfigError(f"{where}: {spec!r} is not KEY=VAL")
    if equals:
        env[key] = value
    elif key in os.environ:
        env[key] = os.environ[key]
    else:
        env.pop(key, None)


def _volume(spec: str) -> Volume:
    from .platform.isolation import Volume

    try:
        return Volume.parse(spec)
    except ValueError as e:
        raise ConfigError(f"-v {spec!r}: {e}") from None


def _tmpfs(spec: str) -> Tmpfs:
    """PATH or PATH:OPTIONS, OPTIONS a comma-separated list of size=SIZE and mode=OCTAL, as
    docker run --tmpfs takes them."""
    from .platform.isolation import Tmpfs

    target, _, options = spec.partition(":")
    size, mode = None, Tmpfs.mode
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key == "size":
            page = os.sysconf("SC_PAGE_SIZE")
            size = -(-_size(value, f"--tmpfs {spec!r}: size") // page) * page
            if not size:
                raise ConfigError(f"--tmpfs {spec!r}: size must be more than 0")
        elif key == "mode" and value and all(c in "01234567" for c in value) \
                and int(value, 8) <= 0o7777:
            mode = int(value, 8)
        else:
            raise ConfigError(f"--tmpfs {spec!r}: expected PATH[:size=N,mode=M], M in octal")
    return Tmpfs(os.path.normpath(target), size, mode)


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _port(spec: str) -> Port:
    from .sentry.net.publish import Port

    try:
        return Port.parse(spec)
    except ValueError as e:
        raise ConfigError(f"-p {spec!r}: {e}") from None


def _size(text: str | None, flag: str) -> int | None:
    """512m, 2g, 1048576 (bytes), as docker run --memory."""
    if text is None:
        return None
    number, unit = text.rstrip("bBkKmMgG"), text[len(text.rstrip("bBkKmMgG")):].lower()
    if not number.isdigit() or unit not in _UNITS:
        raise ConfigError(f"{flag} {text!r}: expected a size such as 512m or 2g")
    return int(number) * _UNITS[unit]


def _syscalls(args) -> int:
    from .syscall_tables import load
    from .syscall_tables.render import render

    sys.stdout.write(render(load(args.arch), args.format))
    return 0


def main(argv: list[str] | None = None) -> int:
    from . import oci

    argv = sys.argv[1:] if argv is None else argv
    if oci.wants(argv):  # runc's command line, as docker and containerd call it
        from .oci import cli as oci_cli

        return oci_cli.main(argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "do":
            return _do(args)
        return _syscalls(args)
    except ConfigError as e:
        print(f"edgevisor: {e}", file=sys.stderr)
        return EXIT_SETUP_FAILED if isinstance(e, SetupError) else 2
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        if getattr(args, "debug", False):
            raise
        print(f"edgevisor: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
