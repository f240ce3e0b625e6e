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

import os

from .. import abi
from . import bpf_cache


def build_filter(table, trap: int, also_trap: frozenset[int] = frozenset(),
                 stop_actions: bool = False, sockets: tuple[tuple[int, ...], ...] = ()) -> bytes:
    """BPF for `table` on the host architecture. `trap` is the seccomp action that hands a
    syscall to the Sentry; numbers in `also_trap` are trapped even if the table passes them
    through (for --strace, which then lets the kernel run them) or denies them (for --strace
    and the log, the Sentry then answering the row's errno). With `stop_actions` (on a
    terminal, for job control) an rt_sigaction that sets a stop signal's action is trapped
    too: a few calls per program, the Sentry then lets the kernel run it. `sockets` are the
    socket(2) calls allowed outright (net/policy.direct_sockets: (family,) or (family, type,
    protocol)); with them socketpair(2) of unix sockets, which the Sentry only checks."""
    inputs = (bpf_cache.table_digest(table), trap, tuple(sorted(also_trap)), stop_actions,
              sockets)
    return bpf_cache.program("guest", inputs,
                             lambda: _compile(table, trap, also_trap, stop_actions, sockets))


def _compile(table, trap: int, also_trap: frozenset[int], stop_actions: bool,
             sockets: tuple[tuple[int, ...], ...]) -> bytes:
    import pyseccomp  # only when no cached program will do

    f = pyseccomp.SyscallFilter(defaction=trap)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    # The platform sets no_new_privs itself, just before loading.
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    # A binary tree keeps the worst case at a few dozen instructions for ~450 numbers.
    f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    sigaction = table.by_name["rt_sigaction"].nr
    for row in table.by_nr.values():
        if row.nr == sigaction and stop_actions and row.nr not in also_trap:
            # Allowed unless it sets (act != NULL) the action of a stop signal. libseccomp
            # compares all 64 bits of `sig`, the kernel the low 32: a guest that sets high
            # bits escapes only its own job control's bookkeeping.
            f.add_rule(pyseccomp.ALLOW, row.nr, pyseccomp.Arg(1, pyseccomp.EQ, 0))
            f.add_rule(pyseccomp.ALLOW, row.nr, pyseccomp.Arg(0, pyseccomp.LT,
                                                             min(abi.STOP_SIGNALS)))
            f.add_rule(pyseccomp.ALLOW, row.nr, pyseccomp.Arg(0, pyseccomp.GT,
                                                             max(abi.STOP_SIGNALS)))
        elif row.name in ("socket", "socketpair") and sockets and row.nr not in also_trap:
            # The emulated row's calls that need no Sentry; each register compared whole
            # (libseccomp's 64 bits), so that one with high bits set is still trapped.
            for call in sockets if row.name == "socket" else ((abi.AF_UNIX,),):
                f.add_rule(pyseccomp.ALLOW, row.nr,
                           *(pyseccomp.Arg(i, pyseccomp.EQ, v) for i, v in enumerate(call)))
        elif row.action == "passthrough" and row.nr not in also_trap:
            f.add_rule(pyseccomp.ALLOW, row.nr)
        elif row.action == "deny" and row.nr not in also_trap:
            f.add_rule(pyseccomp.ERRNO(row.errno), row.nr)
    return export_bpf(f)


def export_bpf(f) -> bytes:
    """The classic-BPF program libseccomp compiled (from a pyseccomp.SyscallFilter), to load
    with flags of our choosing."""
    # An anonymous memory file, not a temporary one: start-up must not depend on the
    # caller's TMPDIR (which may not exist in the Sentry's mount namespace, or at all).
    with open(os.memfd_create("edgevisor-bpf", os.MFD_CLOEXEC), "w+b") as out:
        f.export_bpf(out)
        out.seek(0)
        program = out.read()
    if not program or len(program) % abi.SOCK_FILTER.size:
        raise RuntimeError("libseccomp produced an invalid filter")
    return program


def build_refusals(table) -> bytes:
    """A second, hand-assembled filter for the passthrough rows that refuse some argument
    values (ioctl TIOCSTI, clone with CLONE_NEW*, seccomp's NEW_LISTENER), loaded after the
    main one (the seccomp platform's own filter needs a listener).

    libseccomp lets a syscall-wide rule override argument rules for the same syscall, and
    compares all 64 bits where the kernel reads only the low 32 of an int argument (so
    TIOCSTI | 1 << 32 would slip past). Here each refusal tests the low word alone. Stacked
    filters all run and the strictest verdict wins, so this filter's ERRNO beats the main
    filter's ALLOW, while every other number still gets a verdict that depends on the
    number alone and stays in the kernel's action cache."""
    ins: list[tuple[int, int, int, int]] = []
    ret_allow = (abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_ALLOW)
    rows = [row for row in table.by_nr.values() if row.refuse]
    # Jumps are filled in once the length is known: (target, index, taken_if), where the
    # target is "allow" or the errno of a refusal's return.
    fixups: list[tuple[int, str | int, str]] = []
    ins.append((abi.BPF_LD_W_ABS, 0, 0, abi.SECCOMP_DATA_ARCH))
    fixups.append((len(ins), "allow", "false"))
    ins.append((abi.BPF_JMP_JEQ_K, 0, 0, table.audit_arch))
    ins.append((abi.BPF_LD_W_ABS, 0, 0, abi.SECCOMP_DATA_NR))
    for row in rows:
        block = 3 * len(row.refuse) + 1
        ins.append((abi.BPF_JMP_JEQ_K, 0, block, row.nr))
        for r in row.refuse:
            ins.append((abi.BPF_LD_W_ABS, 0, 0, abi.SECCOMP_DATA_ARGS + 8 * r.arg))
            ins.append((abi.BPF_ALU_AND_K, 0, 0, r.mask))
            fixups.append((len(ins), r.errno, "true"))
            ins.append((abi.BPF_JMP_JEQ_K, 0, 0, r.value))
        ins.append(ret_allow)
    at = {"allow": len(ins)}
    ins.append(ret_allow)
    for code in sorted({r.errno for row in rows for r in row.refuse}):
        at[code] = len(ins)
        ins.append((abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_ERRNO | code))
    for index, target, when in fixups:
        code, jt, jf, k = ins[index]
        offset = at[target] - index - 1
        if not 0 <= offset <= 255:
            raise ValueError("refusal filter too long for an 8-bit jump")
        ins[index] = (code, offset, jf, k) if when == "true" else (code, jt, offset, k)
    return b"".join(abi.SOCK_FILTER.pack(*i) for i in ins)
