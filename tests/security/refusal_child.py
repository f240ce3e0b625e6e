"""Child half of test_refusal_filter: loads a probe filter (SECCOMP_RET_TRACE for marked calls,
which fail with ENOSYS without running, as no tracer is attached) and the refusal filter, then
issues each marked call it reads from stdin and prints the errno. A call the refusal filter
refuses comes back EPERM (ERRNO outranks TRACE); any other comes back ENOSYS. Nothing runs."""

import ctypes
import sys

from edgevisor import abi
from edgevisor.platform.bpf import build_refusals
from edgevisor.platform.linux import prctl, seccomp_load
from edgevisor.syscall_tables import load

from verdict_child import MAGIC, probe_filter  # noqa: E402 - same directory

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def main() -> None:
    refusals = build_refusals(load())
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    seccomp_load(probe_filter(), 0)
    seccomp_load(refusals, 0)
    for line in sys.stdin:
        nr, *args = (int(x) for x in line.split())
        ctypes.set_errno(0)
        libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a) for a in args), ctypes.c_ulong(MAGIC))
        print(ctypes.get_errno(), flush=True)


if __name__ == "__main__":
    main()
