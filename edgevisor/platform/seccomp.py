"""The seccomp user-notification platform.

The guest's filter returns SECCOMP_RET_USER_NOTIF for the syscalls the Sentry handles; the
Sentry reads each one from the listener fd (NOTIF_RECV), dispatches it and answers with
NOTIF_SEND: a value, an errno, or FLAG_CONTINUE to let the kernel run the call as issued.
Children, threads and exec'd images inherit the filter, so the whole guest tree reports to
the one listener without being followed explicitly.

The listener is created in the guest by seccomp(2). Handing it over with SCM_RIGHTS would
be a syscall the filter may trap (under --strace) before anyone listens, so the Sentry takes
it with pidfd_getfd(2) instead: the guest announces the fd number the listener will get,
loads the filter, and waits until the Sentry has it.
"""

import errno
import fcntl
import os
import signal
import struct
import threading
import time
from collections import deque

from .. import abi
from . import SENTRY_THREADS, strict
from ..sentry.dispatch import CONTINUE, ENTER_STRICT, InstallFd, WaitFd
from ..sentry.kernel.task import Task
from ..sentry.syscalls.sys_identity import utsname
from .base import Platform
from .linux import pidfd_getfd, seccomp_load, tkill, wait_any
from ._notify import ffi, lib
from .memory import ProcessMemory
from .tasks import HostTasks
from .waiting import WAKE, signals, start_thread, wait_in_thread

class SeccompPlatform(Platform):
    name = "seccomp"
    trap = abi.SECCOMP_RET_USER_NOTIF
    sentry_threads = SENTRY_THREADS["seccomp"]  # the hot loop and the reaper

    def __init__(self):
        self.listener = -1
        self._proc = -1
        # Strict-mode seccomp (strict.py): the threads in it, whose emulated calls end them,
        # and the requests to enter it, for the reaper to take.
        self._strict: set[int] = set()
        self._to_attach: deque = deque()

    def load_filter(self, program: bytes, to_sentry: int, from_sentry: int) -> None:
        probe = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        os.close(probe)  # the listener will get the lowest free number, which is this one
        os.write(to_sentry, b"%d\n" % probe)
        # Once the Sentry has received a call, only a fatal signal may end the guest's wait:
        # an interrupted wait would drop the answer of a call the Sentry has carried out (a
        # rename done, then restarted into ENOENT, or EINTR from a chmod, which Linux never
        # interrupts). Before it is received, an interruption is Linux's ERESTARTSYS.
        listener = seccomp_load(program, abi.SECCOMP_FILTER_FLAG_NEW_LISTENER
                                | abi.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
        if listener != probe:
            raise OSError(errno.EBADFD, "seccomp listener got an unexpected descriptor")
        os.read(from_sentry, 1)  # the Sentry now holds its own copy
        os.close(listener)

    def after_filter(self, pid: int, from_guest: int, to_guest: int) -> None:
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(from_guest, 16)
            if not chunk:
                raise OSError(errno.ECHILD, "the guest exited before loading its filter")
            line += chunk
        number = int(line)
        pidfd = os.pidfd_open(pid)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.listener = pidfd_getfd(pidfd, number)
                    break
                except OSError as e:
                    if e.errno != errno.EBADF or time.monotonic() > deadline:
                        raise
                    time.sleep(0.0001)
        finally:
            os.close(pidfd)
        os.set_inheritable(self.listener, False)
        # Whether a task whose call waits (WaitFd) has a signal to take: its status. Opened
        # now, while the Sentry may still open a path.
        self._proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:  # 6.6+: switch to the waiting side on this CPU instead of waking another one
            fcntl.ioctl(self.listener, abi.SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                        abi.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)  # by value, not a pointer
        except OSError:
            pass
        os.write(to_guest, b"g")

    def serve(self, pid: int, sentry) -> int:
        """The hot loop (in C, see c/notify.c) blocks in NOTIF_RECV itself, with no poll per
        syscall: a reaper thread waits for the guest's processes and ends the loop when the
        main one exits. Answers the Sentry marks per-task constant are remembered in C."""
        listener = self.listener
        done = threading.Event()
        signal.signal(WAKE, lambda *_: None)  # only to interrupt NOTIF_RECV and waiting threads
        reaper = start_thread(self._reap, pid, done)
        host = HostTasks()
        memo = sentry.per_task_constant
        memo_nrs = ffi.new("int32_t[]", sorted(memo))
        lib.ev_set_memo(memo_nrs, len(memo))
        strict_tids = self._strict
        out = ffi.new("struct ev_notif *")
        handle = sentry.handle
        CONTINUE_FLAG = abi.SECCOMP_USER_NOTIF_FLAG_CONTINUE
        gone = (-errno.ENOENT, -errno.EINTR)
        kernel = _answered_from(sentry)
        fs, view_fds = self._answer_in_view(kernel, pid)
        epoch = fs.trust_epoch if fs is not None else 0
        # uname is answered in C, from the names as they are; the calls that set one give
        # C the new answer.
        uts_nrs = frozenset(sentry.table.by_name[name].nr for name in
                            ("sethostname", "setdomainname")) if kernel is not None else ()
        if uts_nrs:
            _set_uts(kernel)
        try:
            while not done.is_set():
                err = lib.ev_next(listener, out)
                if err:
                    if err in gone:  # interrupted, or the task died meanwhile
                        continue
                    raise OSError(-err, os.strerror(-err))
                nid, tid, nr = out.id, out.tid, out.nr
                if strict_tids and tid in strict_tids and nr not in strict.ALLOWED:
                    tkill(tid, signal.SIGKILL)  # as the kernel ends a strict task's call
                    continue
                result = handle(_NotifiedTask(tid, host, listener, nid), nr, list(out.args))
                if nr in uts_nrs and result == 0:
                    _set_uts(kernel)
                if fs is not None and (fs.trust_epoch != epoch or fs.chrooted):
                    # Credentials may change (set*id, capset, exec) once this call is
                    # answered: C reads them again. A chroot gives tasks roots other than
                    # the view's.
                    lib.ev_forget_trust()
                    epoch = fs.trust_epoch
                    if fs.chrooted:
                        lib.ev_view_off()
                        fs = None
                if result is CONTINUE:
                    err = lib.ev_send(listener, nid, 0, 0, CONTINUE_FLAG)
                elif type(result) is InstallFd:
                    err = _install(listener, nid, result)
                elif type(result) is WaitFd:
                    _answer_later(listener, nid, tid, self._proc, result)
                    continue
                elif result is ENTER_STRICT:
                    # Its answers are not to be remembered any more (a strict getpid ends
                    # it): the memo is cleared, for every task, as rarely as this happens,
                    # and uname is Python's again.
                    lib.ev_set_memo(memo_nrs, len(memo))
                    lib.ev_self_trust(0)
                    lib.ev_set_uts(ffi.NULL, 0)
                    uts_nrs = ()
                    self._hand_to_reaper(reaper, (tid, nid), done)
                    continue
                elif result < 0:
                    err = lib.ev_send(listener, nid, 0, result, 0)
                else:
                    if nr in memo:
                        try:
                            lib.ev_remember(tid, host.pidfd(tid), nr, result)
                        except ProcessLookupError:
                            pass  # killed meanwhile: nothing to remember, the send fails too
                    err = lib.ev_send(listener, nid, result, 0, 0)
                if err and err not in gone:
                    raise OSError(-err, os.strerror(-err))
            return self._status
        finally:
            lib.ev_view_off()
            lib.ev_self_trust(0)
            lib.ev_set_uts(ffi.NULL, 0)
            lib.ev_set_memo(ffi.NULL, 0)
            for fd in view_fds:
                os.close(fd)
            host.close()

    @staticmethod
    def _answer_in_view(kernel, pid: int):
        """Lets the C loop answer stats and read-opens of host files on the view's mounts
        itself (c/notify.c, in_view): (the file system, the descriptors it holds), or
        (None, []) when it may not (kernel/fs.py's view_plan says when)."""
        fs = kernel.fs if kernel is not None else None
        plan = fs.view_plan(pid) if fs is not None else None
        if plan is None:
            return None, []
        fds = [plan.root] + [fd for _, _, fd in plan.mounts]
        if lib.ev_mnt_id(plan.root) != plan.root_mount:
            for fd in fds:
                os.close(fd)
            return None, []
        mounts = [(path, mount_id, fd) for path, mount_id, fd in plan.mounts
                  if lib.ev_mnt_id(fd) == mount_id]
        ids = [plan.root_mount] + [mount_id for _, mount_id, _ in mounts]
        lib.ev_view_on(plan.root, fs.proc_fd, ffi.new("uint64_t[]", ids), len(ids),
                       os.sysconf("SC_PAGE_SIZE"))
        for path, mount_id, fd in mounts:
            lib.ev_view_prefix(path, fd, mount_id)
        for dev, ino, mount_id, path in plan.covered:
            lib.ev_view_covered(dev, ino, mount_id, path)
        lib.ev_self_trust(1)
        return fs, fds

    _status = 0

    def _hand_to_reaper(self, reaper: threading.Thread, item: tuple[int, int],
                        done: threading.Event) -> None:
        """Strict mode for thread `item[0]`, whose notification `item[1]` the reaper answers
        once it has attached to it; woken until it has taken the request (a signal just
        before its wait would be missed)."""
        if not strict.SUPPORTED:
            lib.ev_send(self.listener, item[1], 0, -errno.EINVAL, 0)
            return
        self._to_attach.append(item)
        while item in self._to_attach and not done.is_set():
            signal.pthread_kill(reaper.ident, WAKE)
            time.sleep(0.0005)

    def _reap(self, pid: int, done: threading.Event) -> None:
        """Reap every child (orphans of the guest are reparented to the Sentry, its pid
        namespace's init); when the main process goes, wake the loop with SIGUSR1 until it
        notices, since a signal that lands just before NOTIF_RECV would be missed. Also the
        tracer of the threads in strict mode (strict.Tracer), which only this thread can be:
        it receives their stops."""
        tracer = None
        pending = deque()  # statuses reaped while injecting into a strict thread
        while True:
            if self._to_attach:
                if tracer is None:
                    tracer = strict.Tracer(self._strict)
                tid, nid = self._to_attach[0]
                result = tracer.attach(tid, lambda: _valid(self.listener, nid))
                self._to_attach.popleft()
                lib.ev_send(self.listener, nid, 0, result, 0)  # it then stops, if attached
                continue
            if pending:
                child, status = pending.popleft()
            else:
                try:
                    got = wait_any()
                except ChildProcessError:
                    time.sleep(0.01)
                    continue
                if got is None:  # WAKE: a request to attach
                    continue
                child, status = got
            if tracer is not None:
                if os.WIFSTOPPED(status):
                    tracer.stopped(child, status, pending)
                    continue
                tracer.exited(child)
            if child == pid:
                self._status = status
                break
        done.set()
        while True:
            signal.pthread_kill(threading.main_thread().ident, WAKE)
            time.sleep(0.01)


def _set_uts(kernel) -> None:
    uts = utsname(kernel)
    lib.ev_set_uts(uts, len(uts))


def _answered_from(sentry):
    """The kernel whose state the C loop may answer calls from (uname, in_view), or None:
    under --strace every call must reach the Sentry, and a Sentry without a kernel of its
    own (a test's stub) has nothing to answer from."""
    if getattr(sentry, "strace", None) is not None:
        return None
    return getattr(sentry, "kernel", None)


def _valid(listener: int, nid: int) -> bool:
    """Whether notification `nid` still waits for its answer (its task lives)."""
    try:
        fcntl.ioctl(listener, abi.SECCOMP_IOCTL_NOTIF_ID_VALID, struct.pack("=Q", nid))
    except OSError:
        return False
    return True


def _install(listener: int, nid: int, answer: InstallFd) -> int:
    """NOTIF_ADDFD installs the descriptor at the lowest free number; the Sentry closes its
    own copy before the call is answered with that number, so that the guest's close is the
    description's last, as after a native open (inotify reports IN_CLOSE_WRITE then, not at
    the Sentry's close). Returns 0 or -errno, as ev_send."""
    request = bytearray(abi.SECCOMP_NOTIF_ADDFD.pack(nid, 0, answer.fd, 0,
                                                     os.O_CLOEXEC if answer.cloexec else 0))
    try:
        number = fcntl.ioctl(listener, abi.SECCOMP_IOCTL_NOTIF_ADDFD, request, True)
    except OSError as e:
        if e.errno in (errno.EMFILE, errno.EBADF):  # the guest's table is full: its error
            if answer.report is not None:
                answer.report(-e.errno)
            return lib.ev_send(listener, nid, 0, -e.errno, 0)
        return -e.errno
    finally:
        os.close(answer.fd)
    if answer.report is not None:
        answer.report(number)
    return lib.ev_send(listener, nid, number, 0, 0)


def _answer_later(listener: int, nid: int, tid: int, proc: int, answer: WaitFd) -> None:
    """Answers notification `nid` once `answer` has its descriptor, from a thread of its own.
    The task's death ends the notification; the wait is then let go, and the answer, sent to
    a notification that is gone, dropped. A signal does not end it (the filter waits
    killably once the Sentry has received a call), so a signal pending for the task lets
    the wait go too and answers ERESTARTSYS, as an interrupted wait in the kernel does: the
    kernel restarts the call after a SA_RESTART handler (or none) and fails it with EINTR
    after any other."""
    idbuf = struct.pack("=Q", nid)
    interrupted = []

    def still_waiting() -> bool:
        fcntl.ioctl(listener, abi.SECCOMP_IOCTL_NOTIF_ID_VALID, idbuf)
        if signals(proc, tid)[0]:
            interrupted.append(True)
            return False
        return True

    def done(result) -> None:
        if result is None:
            if interrupted:
                lib.ev_send(listener, nid, 0, -abi.ERESTARTSYS, 0)
            return
        if result >= 0:
            _install(listener, nid, InstallFd(result, answer.cloexec, answer.report))
            return
        if answer.report is not None:
            answer.report(result)
        lib.ev_send(listener, nid, 0, result, 0)  # ENOENT when the task went meanwhile

    wait_in_thread(answer, still_waiting, done)


class _NotifiedTask(Task):
    """A task whose memory accessor, built on first use, re-validates the notification after
    every read: if the task died and its tid was reused, the read's result is discarded."""

    __slots__ = ("_listener", "_nid", "_mem")

    def __init__(self, tid: int, host, listener: int, nid: int):
        self.tid = tid
        self.regs = None
        self._host = host
        self._listener = listener
        self._nid = nid
        self._mem = None

    @property
    def mem(self):
        if self._mem is None:
            idbuf = struct.pack("=Q", self._nid)
            listener = self._listener

            def still_valid():
                fcntl.ioctl(listener, abi.SECCOMP_IOCTL_NOTIF_ID_VALID, idbuf)

            self._mem = ProcessMemory(self.tid, still_valid)
        return self._mem
