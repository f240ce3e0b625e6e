"""The guest's seccomp filter, generated from the syscall table and compiled by libseccomp.

One function turns the table into BPF so that the kernel's verdict and the Sentry's dispatch
cannot disagree:

- `passthrough` rows are allowed. Their verdict depends on the number alone, so the kernel's
  seccomp action cache (5.11+) lets them through without running the filter at all.
- `deny` rows fail in the kernel with the row's errno.
- `emulate` rows, and every number with no row, go to the Sentry (`trap`: a user
  notification or a ptrace stop). Unknown numbers must reach the Sentry so that it can log
  them before answering ENOSYS.
- Foreign ABIs kill the process: another architecture (`int 0x80` on x86_64 arrives as
  i386) through libseccomp's bad-arch action, and x32 numbers through libseccomp's own check
  for X32_SYSCALL_BIT, which it emits when x32 is not one of the filter's architectures.
"""

import tempfile

import pyseccomp

from .. import abi


def build_filter(table, trap: int, also_trap: frozenset[int] = frozenset()) -> bytes:
    """BPF for `table` on the host architecture. `trap` is the seccomp action that hands a
    syscall to the Sentry; numbers in `also_trap` are trapped even if the table passes them
    through (for --strace, which then lets the kernel run them)."""
    f = pyseccomp.SyscallFilter(defaction=trap)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    # The platform sets no_new_privs itself, just before loading.
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    # A binary tree keeps the worst case at a few dozen instructions for ~450 numbers.
    f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    for row in table.by_nr.values():
        if row.action == "passthrough" and row.nr not in also_trap:
            f.add_rule(pyseccomp.ALLOW, row.nr)
        elif row.action == "deny":
            f.add_rule(pyseccomp.ERRNO(row.errno), row.nr)
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        program = out.read()
    if not program or len(program) % abi.SOCK_FILTER.size:
        raise RuntimeError("libseccomp produced an invalid filter")
    return program


def trap_action(platform_name: str) -> int:
    if platform_name == "ptrace":
        return pyseccomp.TRACE(0)
    return pyseccomp.NOTIFY

