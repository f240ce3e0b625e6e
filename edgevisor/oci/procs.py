"""Host processes, by pid, without trusting a number to stay the same process."""

import os


def _stat(pid: int) -> list[bytes] | None:
    """/proc/PID/stat's fields after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None if it is gone or a zombie):
    with the pid, it names one process, whatever pid reuse does later."""
    fields = _stat(pid)
    return None if fields is None or fields[0] in (b"Z", b"X") else int(fields[19])


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[1])


def session(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[3])


def pid_namespace(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def guest_processes(sentry_pid: int) -> list[int]:
    """The guest's processes, init first: those in the pid namespace of the Sentry's child
    that is not in the Sentry's own (the gofer is)."""
    own = pid_namespace(sentry_pid)
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    init = next((p for p in pids if parent(p) == sentry_pid
                 and pid_namespace(p) not in (None, own)), None)
    if init is None:
        return []
    ns = pid_namespace(init)
    return [init, *(p for p in pids if p != init and pid_namespace(p) == ns
                    and start_time(p) is not None)]
