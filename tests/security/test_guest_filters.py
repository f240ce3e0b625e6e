"""A guest's own seccomp filters can never weaken the Sentry's verdict (issue 10, finding 5).

Stacked filters all run and the strictest action wins (KILL_PROCESS > KILL_THREAD > TRAP >
ERRNO > USER_NOTIF > TRACE > LOG > ALLOW); ties go to the most recently installed filter, the
guest's. On ptrace a guest listener's CONTINUE outranked the Sentry's RET_TRACE, and a guest's
RET_TRACE reached the Sentry (the only tracer) as if it were its own trap."""

import errno
import os
import signal

import pytest

from edgevisor.syscall_tables import load

TABLE = load()
ROWS = sorted(row.nr for row in TABLE.by_nr.values() if row.action in ("emulate", "deny"))
# Real arguments the Sentry refuses or hides, beside every row called with zeros.
PROBES = {"netlink_audit": "emulate", "packet": "emulate", "slabinfo": "emulate"}
SIGSYS = f"sig={signal.SIGSYS}"
_NAME = {errno.EOPNOTSUPP: "EOPNOTSUPP"}  # glibc's name for the number Python calls ENOTSUP

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 filters")


def test_the_reported_attack_fails(sandbox, programs):
    r = sandbox(programs["guest_filters"], "attack")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert lines == {
        "listener": "e=EBUSY",  # no listener of the guest's own, on either platform
        "netlink_audit": "e=EPROTONOSUPPORT",  # the socket policy's answer stands
        "netlink_netfilter": "e=EPROTONOSUPPORT",
        "packet": "e=EPERM",
        "clone3": "e=ENOSYS",  # no row: no child with a user and network namespace of its own
    }, r.stdout


def _expected(platform: str, action: str, kind: str, row_errno: int | None, alone: str) -> str:
    """What the call gets with a guest filter returning `action` for it; `alone` is what it
    gets from the Sentry with no guest filter."""
    if action in ("kill_process", "kill_thread", "trap"):
        return SIGSYS
    if action == "errno":
        return "e=EXDEV"  # the guest's own errno: the newest filter's data wins the tie
    if kind == "deny":
        return f"e={_NAME.get(row_errno, errno.errorcode[row_errno])}"  # ERRNO outranks the rest
    if action == "user_notif":
        return "e=ENOSYS"  # the guest's filter wins the tie and has no listener
    if action in ("trace", "trace_strict_forged") and platform == "ptrace":
        # No tracer of the guest's own: skipped, as the kernel does; strict mode's marker
        # (platform/strict.py) from a thread that is not in it is any other data.
        return "e=ENOSYS"
    # log and allow; RET_TRACE on seccomp, where the Sentry's USER_NOTIF outranks it; and on
    # ptrace a RET_TRACE carrying the Sentry's own marker, taken for the Sentry's trap.
    return alone


def test_guest_filters_never_weaken_the_sentry(sandbox, programs, platform):
    r = sandbox(programs["guest_filters"], "matrix", *map(str, ROWS), timeout=600)
    assert r.returncode == 0, r.stderr
    outcomes: dict[tuple[str, str], str] = {}
    for line in r.stdout.splitlines():
        action, call, outcome = line.split()
        outcomes[action, call] = outcome
    calls = {**PROBES, **{str(nr): TABLE.by_nr[nr].action for nr in ROWS}}
    assert len(outcomes) == 11 * len(calls), r.stdout[-2000:]
    wrong = []
    for (action, call), got in outcomes.items():
        kind = calls[call]
        alone = outcomes["none", call]
        if call in PROBES:
            assert alone.startswith("e="), (call, alone)  # refused or hidden by the Sentry
        if action == "none":
            continue
        row_errno = TABLE.by_nr[int(call)].errno if call not in PROBES else None
        want = _expected(platform, action, kind, row_errno, alone)
        if (got, want) != (want, want) and not (want == alone and got[:2] == alone[:2] == "r="):
            name = call if call in PROBES else TABLE.by_nr[int(call)].name
            wrong.append(f"{action} {name}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)
