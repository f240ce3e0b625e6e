"""The syscall table of one architecture: the generated list of the kernel's syscalls joined
with the policy (the package's __init__ has what needs neither, for a quick start)."""

from __future__ import annotations

import errno as errno_module
import functools
import importlib
from dataclasses import dataclass

from edgevisor.syscall_tables import ACTIONS
from edgevisor.syscall_tables.policy import POLICY, Refusal


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str


@dataclass(frozen=True)
class Syscall:
    nr: int
    name: str
    args: tuple[Arg, ...]
    action: str
    errno: int | None
    note: str
    refuse: tuple[Refusal, ...] = ()  # passthrough argument values refused (EPERM, EBUSY)


@dataclass(frozen=True, eq=False)
class SyscallTable:
    arch: str
    audit_arch: int
    by_nr: dict[int, Syscall]
    by_name: dict[str, Syscall]
    max_nr: int  # highest number the kernel list defines for this arch (rows or not)
    unlisted: tuple[tuple[int, str], ...]  # kernel syscalls with no policy row: ENOSYS

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for syscall in self.by_nr.values():
            counts[syscall.action] += 1
        counts["unsupported"] = len(self.unlisted)
        return counts


def _errno(name: str | None, syscall: str) -> int | None:
    if name is None:
        return None
    number = getattr(errno_module, name, None)
    if not isinstance(number, int) or name == "ENOSYS":
        raise ValueError(f"policy for {syscall}: bad errno {name!r}")
    return number


@functools.cache
def _load(arch: str) -> SyscallTable:
    generated = importlib.import_module(f"edgevisor.syscall_tables.{arch}")
    rows, unlisted = [], []
    for nr, name, args in generated.SYSCALLS:
        rule = POLICY.get(name)
        if rule is None:
            unlisted.append((nr, name))
            continue
        if rule.action not in ACTIONS or (rule.action == "deny") != (rule.errno is not None):
            raise ValueError(f"policy for {name}: bad rule {rule}")
        if rule.refuse and rule.action == "deny":  # refused whatever the arguments
            raise ValueError(f"policy for {name}: a deny row refuses no particular arguments")
        rows.append(Syscall(nr, name, tuple(Arg(*a) for a in args), rule.action,
                            _errno(rule.errno, name), rule.note, rule.refuse))
    return SyscallTable(
        arch=arch,
        audit_arch=generated.AUDIT_ARCH,
        by_nr={s.nr: s for s in rows},
        by_name={s.name: s for s in rows},
        max_nr=max(nr for nr, _, _ in generated.SYSCALLS),
        unlisted=tuple(unlisted),
    )
