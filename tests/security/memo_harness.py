"""Runs a program under the real seccomp platform and Sentry, inside a pid namespace whose
pid_max is small, so that tids wrap around within seconds. Used by test_memo.py, which starts
this script in a fresh pid namespace (`unshare --pid --fork --mount-proc`)."""

import os
import sys

from edgevisor.platform.bpf import build_filter, build_refusals
from edgevisor.platform.linux import prctl, seccomp_load
from edgevisor.platform.seccomp import SeccompPlatform
from edgevisor import abi
from edgevisor.sentry.dispatch import CONTINUE, Sentry
from edgevisor.sentry.syscalls import sys_file
from edgevisor.sentry.kernel.kernel import Kernel
from edgevisor.syscall_tables import load


def main() -> int:
    with open("/proc/sys/kernel/pid_max", "w") as f:
        f.write(sys.argv[1])
    table = load()
    platform = SeccompPlatform()
    programs = build_refusals(table), build_filter(table, platform.trap)
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(go_r, 1)
        prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
        platform.load_filter(programs[1], ready_w, go_r)  # as boot.py: the listener first
        seccomp_load(programs[0], 0)
        os.execv(sys.argv[2], sys.argv[2:])
    os.write(go_w, b"g")
    platform.after_filter(pid, ready_r, go_w)
    sentry = Sentry(table, Kernel())
    # No file system here: file syscalls run on the host as issued; only pids matter.
    for nr, fn in list(sentry._handlers.items()):
        if fn.__module__ == sys_file.__name__:
            sentry._handlers[nr] = lambda k, t, a: CONTINUE
    status = platform.serve(pid, sentry)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
