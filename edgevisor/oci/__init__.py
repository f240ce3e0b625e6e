"""The OCI runtime front end: runc's command line over the same Sentry as `edgevisor do`.

    shim ── create ──▶ holder (the pid-file process, in the spec's network namespace and
                        cgroup) ── boot.run ──▶ Sentry ──▶ guest, held before its filter

`create` forks the holder and returns once the guest waits at the start gate; the holder
serves the control socket in the state directory until the container is gone. See
docs/architecture.md, "The OCI front end".
"""


class OCIError(Exception):
    """What the runtime's caller did wrong or asked for that edgevisor cannot do: one line
    in --log and on stderr, exit status 1."""
