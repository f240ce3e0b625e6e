"""The Sentry's dispatch: one syscall event in, one result out.

The table decides: an `emulate` row runs its handler; a trapped `passthrough` row (trapped
only so --strace can show it) is handed back to the kernel to run, but rt_sigaction, which
on a terminal is trapped as it sets a stop signal's action, is seen by job control first; a
number with no row is answered ENOSYS and named in the log. A `deny` row gets here only when trapped for --strace
or the log (the filter answers it otherwise): it is answered its errno, never run, and
named in the log once.
"""

import errno

from .answers import CONTINUE, ENTER_STRICT, InstallFd, WaitFd  # noqa: F401 - the platforms take them from here
from .syscalls import HANDLERS
from .syscalls.sys_signal import stop_action

# Under --strace the trace starts at the guest's first of these: before it, the calls are
# edgevisor's own start-up code. They are always trapped when tracing.
EXEC_SYSCALLS = ("execve", "execveat")

_ENOSYS = -errno.ENOSYS


class Sentry:
    def __init__(self, table, kernel, strace=None, log=None, stop_actions=False):
        self.table = table
        self.kernel = kernel
        self.strace = strace
        self.log = log  # callable(str) for one line, or None
        self._reported: set[int] = set()
        self._unlisted = dict(table.unlisted)  # kernel syscalls the table has no row for
        self._handlers = {}
        self._generation = kernel.generation
        for row in table.by_nr.values():
            if row.action == "emulate":
                self._handlers[row.nr] = HANDLERS[row.name]
        if stop_actions:  # the filter traps their setting (platform/bpf.py)
            self._handlers[table.by_name["rt_sigaction"].nr] = stop_action
        if strace is not None:
            self._before_exec = True
            self.handle = self._handle_traced
        # Numbers whose answers a platform may remember per task; none under --strace, which
        # must see every call.
        self.per_task_constant = frozenset() if strace is not None else frozenset(
            nr for nr, fn in self._handlers.items() if getattr(fn, "per_task_constant", False))

    def handle(self, task, nr: int, args) -> object:
        fn = self._handlers.get(nr)
        if fn is not None:
            self._generation.value += 1
            self.kernel.current = task
            try:
                return fn(self.kernel, task, args)
            except OSError as e:
                return -e.errno
        return self._other(task, nr)

    def _other(self, task, nr: int) -> object:
        row = self.table.by_nr.get(nr)
        if row is not None and row.action == "deny":
            self._report_once(nr, f"denied syscall {row.name} from tid {task.tid}: answered "
                                  f"{errno.errorcode[row.errno]}")
            return -row.errno
        if row is not None and row.action != "emulate":
            return CONTINUE
        name = self._unlisted.get(nr)
        what = f"{nr} ({name})" if name else str(nr)
        self._report_once(nr, f"unsupported syscall {what} from tid {task.tid}: answered ENOSYS")
        return _ENOSYS

    def _report_once(self, nr: int, line: str) -> None:
        if nr not in self._reported and self.log is not None:
            self._reported.add(nr)
            self.log(line)

    def _shown_tid(self, task) -> int:
        try:
            return self.kernel.virtual(task.tid)
        except ProcessLookupError:
            return task.tid

    def _handle_traced(self, task, nr: int, args) -> object:
        row = self.table.by_nr.get(nr)
        if self._before_exec:
            if row is None or row.name not in EXEC_SYSCALLS:
                return Sentry.handle(self, task, nr, args)
            self._before_exec = False
        if row is not None and not self.strace.wants(row.name):
            return Sentry.handle(self, task, nr, args)
        if row is None:
            from .strace import unknown_syscall_name  # loaded by --strace already

            pending = self.strace.enter(self._shown_tid(task), unknown_syscall_name(nr), None,
                                        args, task.mem)
        else:
            pending = self.strace.enter(self._shown_tid(task), row.name, row.args, args, task.mem)
        result = Sentry.handle(self, task, nr, args)
        action = "unsupported" if row is None else row.action
        if type(result) in (InstallFd, WaitFd):  # its number is known once it is installed
            result.report = lambda number: self.strace.exit(pending, number, action)
        else:
            self.strace.exit(pending, result if type(result) is int else None, action)
        return result
