"""runc's command line: global flags, then a subcommand, as containerd-shim-runc-v2 calls it.

    edgevisor [--root DIR] [--log FILE] [--log-format text|json] [--debug]
              [--systemd-cgroup] [--platform P] [--network N] [--strace] COMMAND ...

An error is one line on stderr and, with --log, one line there (a JSON object with
--log-format json, which is what the shim shows the user); the exit status is 1.
"""

import json
import sys

from . import COMMANDS, OCIError, command_of
from .state import now
from ..errors import ConfigError
from ..platform import NAMES as PLATFORMS
from ..sentry.net import MODES

DEFAULT_ROOT = "/run/edgevisor"


def _parser(command: str | None = None):
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):
            raise OCIError(message)

    p = _Parser(prog="edgevisor", description="edgevisor as an OCI runtime (runc's CLI)")
    p.add_argument("--root", default=DEFAULT_ROOT, help="the containers' state directory")
    p.add_argument("--log", help="where errors go too (the shim's log.json)")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true", help="tracebacks on errors; Sentry events")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="linux.cgroupsPath is slice:prefix:name")
    p.add_argument("--rootless", default="auto", help="accepted, as runc's (edgevisor runs as root)")
    p.add_argument("--criu", help="accepted and unused, as runc's without checkpoints")
    p.add_argument("--platform", choices=PLATFORMS,
                   help="default: seccomp where the kernel has user notifications, else ptrace")
    p.add_argument("--network", choices=MODES, default="host",
                   help="host (default): the guest's IP sockets live in the spec's network "
                        "namespace; sandbox or none: loopback of the sandbox's own only")
    p.add_argument("--strace", action="store_true", help="log the syscalls the Sentry sees")
    p.add_argument("--debug-log", help="where --strace and --debug write (default: stderr)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # Only the command's own subparser (all of them for an unknown one): each costs argparse's
    # gettext lookups, and docker waits for every runtime call to start.
    wanted = (lambda name: name == command) if command in COMMANDS else (lambda name: True)

    for name in ("create", "run"):
        if not wanted(name):
            continue
        c = sub.add_parser(name)
        c.add_argument("--bundle", "-b")
        c.add_argument("--console-socket")
        c.add_argument("--pid-file")
        c.add_argument("--no-pivot", action="store_true")
        c.add_argument("--no-new-keyring", action="store_true")
        c.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            c.add_argument("--detach", "-d", action="store_true")
            c.add_argument("--keep", action="store_true")
        c.add_argument("id")
    for name in ("start", "state", "pause", "resume"):
        if wanted(name):
            sub.add_parser(name).add_argument("id")
    if wanted("kill"):
        k = sub.add_parser("kill")
        k.add_argument("--all", "-a", action="store_true")
        k.add_argument("id")
        k.add_argument("signal", nargs="?", default="SIGTERM")
    if wanted("delete"):
        d = sub.add_parser("delete")
        d.add_argument("--force", "-f", action="store_true")
        d.add_argument("id")
    if wanted("list"):
        ls = sub.add_parser("list")
        ls.add_argument("--format", "-f", choices=("table", "json"), default="table")
        ls.add_argument("--quiet", "-q", action="store_true")
    if wanted("ps"):
        ps = sub.add_parser("ps")
        ps.add_argument("--format", "-f", choices=("table", "json"), default="table")
        ps.add_argument("id")
        ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    if wanted("update"):
        u = sub.add_parser("update")
        u.add_argument("--resources", "-r")
        for flag, section, key in _UPDATE_FLAGS:
            u.add_argument(flag, dest=f"{section}_{key}", type=int)
        u.add_argument("id")
    if wanted("events"):
        e = sub.add_parser("events")
        e.add_argument("--stats", action="store_true")
        e.add_argument("--interval", type=float, default=5.0)
        e.add_argument("id")
    if wanted("spec"):
        s = sub.add_parser("spec")
        s.add_argument("--bundle", "-b")
        s.add_argument("--rootless", action="store_true")
    if wanted("features"):
        sub.add_parser("features")
    if wanted("exec"):
        x = sub.add_parser("exec")
        x.add_argument("--process", "-p", help="a process.json: the process to run")
        x.add_argument("--detach", "-d", action="store_true")
        x.add_argument("--pid-file")
        x.add_argument("--console-socket")
        x.add_argument("--tty", "-t", action="store_true")
        x.add_argument("--cwd")
        x.add_argument("--env", "-e", action="append", default=[])
        x.add_argument("--user", "-u", help="uid[:gid]")
        x.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
        x.add_argument("--cap", "-c", action="append", default=[])
        x.add_argument("--no-new-privs", action="store_true", help="always so in edgevisor")
        x.add_argument("--process-label", help="accepted and unused, as runc's without SELinux")
        x.add_argument("--apparmor", help="accepted and unused, as runc's without AppArmor")
        x.add_argument("id")
        x.add_argument("args", nargs=argparse.REMAINDER)
    return p


# The global flags, with their defaults as _parser gives them, for _quick_parse.
_GLOBAL_VALUES = {"--root": ("root", DEFAULT_ROOT), "--log": ("log", None),
                  "--log-format": ("log_format", "text"), "--rootless": ("rootless", "auto"),
                  "--criu": ("criu", None), "--platform": ("platform", None),
                  "--network": ("network", "host"), "--debug-log": ("debug_log", None)}
_GLOBAL_SWITCHES = {"--debug": "debug", "--systemd-cgroup": "systemd_cgroup",
                    "--strace": "strace"}
_CHOICES = {"log_format": ("text", "json"), "platform": PLATFORMS, "network": MODES}
# The commands docker runs for every container, as _parser reads them: their switches, their
# options that take a value, their positional arguments, and the defaults of those that
# may be left out.
_QUICK = {
    "create": ({"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"},
               {"--bundle": "bundle", "-b": "bundle", "--console-socket": "console_socket",
                "--pid-file": "pid_file"}, ("id",),
               {"bundle": None, "console_socket": None, "pid_file": None, "preserve_fds": 0}),
    "start": ({}, {}, ("id",), {}),
    "state": ({}, {}, ("id",), {}),
    "delete": ({"--force": "force", "-f": "force"}, {}, ("id",), {}),
    "kill": ({"--all": "all", "-a": "all"}, {}, ("id", "signal"), {"signal": "SIGTERM"}),
}


class _Namespace:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def _quick_parse(argv: list[str]):
    """The plain command lines of create, start, state, delete and kill, read as _parser
    reads them, without argparse (a fifth of such a call's start-up); None for anything
    else, which _parser then reads, and refuses with its own message where it is wrong."""
    fields = {name: default for name, default in _GLOBAL_VALUES.values()}
    fields.update((name, False) for name in _GLOBAL_SWITCHES.values())
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_SWITCHES:
            fields[_GLOBAL_SWITCHES[word]] = True
        elif word in _GLOBAL_VALUES:
            if (value := _value(words)) is None:
                return None
            fields[_GLOBAL_VALUES[word][0]] = value
        else:
            break
    else:
        return None
    if word not in _QUICK or any(fields[name] is not None and fields[name] not in choices
                                 for name, choices in _CHOICES.items()):
        return None
    switches, options, positional, defaults = _QUICK[word]
    fields.update(command=word, **{name: False for name in switches.values()}, **defaults)
    given = []
    for word in words:
        if given and word.startswith("-"):  # argparse reads a flag between two
            return None                     # positionals its own way
        if word in switches:
            fields[switches[word]] = True
        elif word in options:
            if (value := _value(words)) is None:
                return None
            fields[options[word]] = value
        elif word.startswith("-"):
            return None
        else:
            given.append(word)
    optional = sum(name in defaults for name in positional)
    if not len(positional) - optional <= len(given) <= len(positional):
        return None
    fields.update(zip(positional, given))
    return _Namespace(**fields)


def _value(words) -> str | None:
    """An option's value, unless it is missing or could be read as a flag."""
    value = next(words, None)
    return None if value is None or value.startswith("-") else value


_UPDATE_FLAGS = (("--memory", "memory", "limit"), ("--memory-reservation", "memory",
                 "reservation"), ("--memory-swap", "memory", "swap"),
                 ("--cpu-shares", "cpu", "shares"), ("--cpu-quota", "cpu", "quota"),
                 ("--cpu-period", "cpu", "period"), ("--pids-limit", "pids", "limit"))


def _dispatch(g) -> int:
    """Each command imports what it needs alone: docker runs one process per command, and
    `start`, `kill`, `state` and `delete` need no Sentry."""
    c = g.command
    if c in ("create", "run", "exec") and g.platform is None:
        from ..platform import default_platform_name

        g.platform = default_platform_name()
    if c in ("create", "run"):
        from . import lifecycle

        if g.preserve_fds:
            raise OCIError("--preserve-fds is not supported by edgevisor's create")
        if c == "create":
            return lifecycle.create(g, g.id, g.bundle, g.pid_file, g.console_socket)
        return lifecycle.run(g, g.id, g.bundle, g.pid_file, g.console_socket, g.detach)
    if c in ("start", "state", "kill", "delete"):
        from . import manage

        if c == "start":
            return manage.start(g, g.id)
        if c == "state":
            return manage.show_state(g, g.id)
        if c == "kill":
            return manage.kill(g, g.id, manage.parse_signal(g.signal), g.all)
        return manage.delete(g, g.id, g.force)
    if c == "exec":
        from .execute import exec_process

        return exec_process(g, g.id, g.args)
    if c in ("spec", "features"):
        from .default_spec import features, write_spec

        return write_spec(g.bundle) if c == "spec" else features()
    from . import inspect

    if c == "list":
        return inspect.list_containers(g, g.format, g.quiet)
    if c == "ps":
        return inspect.ps(g, g.id, g.format, g.ps_args)
    if c == "events":
        return inspect.events(g, g.id, g.stats, g.interval)
    if c == "pause":
        return inspect.pause(g, g.id)
    if c == "resume":
        return inspect.resume(g, g.id)
    if c == "update":
        flags = {(s, k): getattr(g, f"{s}_{k}") for _, s, k in _UPDATE_FLAGS}
        return inspect.update(g, g.id, g.resources, flags)
    raise OCIError(f"{c} is not supported by edgevisor")


def main(argv: list[str]) -> int:
    g = None
    try:
        g = _quick_parse(argv) or _parser(command_of(argv)).parse_args(argv)
        return _dispatch(g)
    except (OCIError, ConfigError) as e:
        _error(g, argv, str(e))
    except OSError as e:
        if g is not None and g.debug:
            import traceback

            traceback.print_exc()
        _error(g, argv, (e.strerror or str(e)) + (f": {e.filename}" if e.filename else ""))
    except KeyboardInterrupt:
        return 130
    return 1


def _error(g, argv: list[str], message: str) -> None:
    print(f"edgevisor: {message}", file=sys.stderr)
    log, fmt = _log_flags(g, argv)
    if not log:
        return
    if fmt == "json":
        line = json.dumps({"level": "error", "msg": message, "time": now()}, separators=(",", ":"))
    else:
        line = f'time="{now()}" level=error msg={json.dumps(message)}'
    try:
        with open(log, "a") as f:
            f.write(line + "\n")
    except OSError as e:
        print(f"edgevisor: --log {log}: {e.strerror}", file=sys.stderr)


def _log_flags(g, argv: list[str]) -> tuple[str | None, str]:
    """--log and --log-format, even when the command line itself did not parse."""
    if g is not None:
        return g.log, g.log_format
    found = {"--log": None, "--log-format": "text"}
    for i, word in enumerate(argv):
        name, eq, value = word.partition("=")
        if name in found:
            found[name] = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
    return found["--log"], found["--log-format"] or "text"
