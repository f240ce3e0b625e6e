"""Child half of test_filter_verdicts: runs under a probe filter plus the sandbox's filter and
issues every syscall number once, marked so that none of them actually executes.

Stacked seccomp filters all run and the strictest action wins (KILL > TRAP > ERRNO >
USER_NOTIF > TRACE > ALLOW). The probe filter returns SECCOMP_RET_TRACE for marked calls;
with no tracer attached that fails the call with ENOSYS without running it. So a marked call
comes back as: ENOSYS where the sandbox filter allows it, the row's errno where it denies it,
and the parent's marker errno where it notifies the Sentry.
"""

import ctypes
import json
import os
import sys

from edgevisor import abi
from edgevisor.platform.linux import prctl, seccomp_load

MAGIC = 0x5EC0FFEE_0DDBA11
# The kernel runs these without consulting seccomp at all (they are only valid from its own
# uprobe trampolines, and raise SIGILL anywhere else), so no filter verdict exists for them.
SECCOMP_EXEMPT = {335, 336}  # uretprobe, uprobe
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def probe_filter() -> bytes:
    lo_off = abi.SECCOMP_DATA_ARGS + 5 * 8
    ins = [
        (abi.BPF_LD_W_ABS, 0, 0, lo_off),
        (abi.BPF_JMP_JEQ_K, 0, 3, MAGIC & 0xFFFFFFFF),
        (abi.BPF_LD_W_ABS, 0, 0, lo_off + 4),
        (abi.BPF_JMP_JEQ_K, 0, 1, MAGIC >> 32),
        (abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_TRACE),
        (abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_ALLOW),
    ]
    return b"".join(abi.SOCK_FILTER.pack(*i) for i in ins)


def main() -> None:
    """argv: FIRST LAST (every number between, with zero arguments), or a JSON list of
    [number, arg0, arg1[, arg2]] to issue."""
    program = sys.stdin.buffer.read(int(sys.stdin.buffer.readline()))
    if sys.argv[1].startswith("["):
        calls = [(*call, 0)[:4] for call in json.loads(sys.argv[1])]
    else:
        calls = [(nr, 0, 0, 0) for nr in range(int(sys.argv[1]), int(sys.argv[2]))
                 if nr not in SECCOMP_EXEMPT]
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    seccomp_load(probe_filter(), 0)
    probe = os.open("/dev/null", os.O_RDONLY)
    os.close(probe)
    print(probe, flush=True)  # the listener's fd number, for the parent's pidfd_getfd
    listener = seccomp_load(program, abi.SECCOMP_FILTER_FLAG_NEW_LISTENER)
    assert listener == probe
    sys.stdin.buffer.readline()  # the parent holds the listener now
    verdicts = []
    for nr, arg0, arg1, arg2 in calls:
        ctypes.set_errno(0)
        ret = libc.syscall(ctypes.c_long(nr), ctypes.c_ulong(arg0), ctypes.c_ulong(arg1),
                           ctypes.c_ulong(arg2), 0, 0, ctypes.c_ulong(MAGIC))
        verdicts.append([nr, ctypes.get_errno() if ret == -1 else f"returned {ret}"])
    sys.stdout.write(json.dumps(verdicts) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
