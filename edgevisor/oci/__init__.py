"""The OCI runtime front end: runc's command line over the same Sentry as `edgevisor do`.

    shim ── create ──▶ holder (the pid-file process, in the spec's network namespace and
                        cgroup) ── boot.run ──▶ Sentry ──▶ guest, held before its filter

`create` forks the holder and returns once the guest waits at the start gate; the holder
serves the control socket in the state directory until the container is gone. See
docs/architecture.md, "The OCI front end".

Light on purpose: `edgevisor do` asks `wants` at every start.
"""


class OCIError(Exception):
    """What the runtime's caller did wrong or asked for that edgevisor cannot do: one line
    in --log and on stderr, exit status 1."""


# What the holder tells `create` on its report pipe (lifecycle._Report), in order, unless it
# says why it failed instead: it is in the container's network namespace (the hooks may
# run), then the guest waits at the start gate.
NETWORK_READY = b"network\n"
CREATED = b"created\n"

COMMANDS = ("create", "start", "run", "state", "list", "kill", "delete", "exec", "ps",
            "pause", "resume", "update", "events", "spec", "features")


def wants(argv: list[str]) -> bool:
    """Whether argv is a runc-style call: its first word that is not a global flag (or a
    global flag's value) is one of COMMANDS."""
    return command_of(argv) is not None


def command_of(argv: list[str]) -> str | None:
    """The runc command argv names, if its first word that is not a global flag (or a
    global flag's value) is one of COMMANDS."""
    takes_value = {"--root", "--log", "--log-format", "--platform", "--network",
                   "--strace-syscalls", "--debug-log", "--criu"}
    words = iter(argv)
    for word in words:
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None
