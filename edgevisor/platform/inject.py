"""InstallFd on the ptrace platform (x86_64): descriptors delivered by syscall injection.

The seccomp platform installs a Sentry descriptor in a guest with SECCOMP_IOCTL_NOTIF_ADDFD;
ptrace has no such request, so the stopped thread is made to receive it itself. Each guest
process gets a *courier*: one end of an AF_UNIX SOCK_SEQPACKET socketpair, close-on-exec, at
a high number (900) of its fd table. The Sentry keeps the other end, and a duplicate of the
guest's end to drain it. To install, the Sentry sends the descriptor with SCM_RIGHTS and has
the thread run recvmsg(courier, MSG_DONTWAIT [| MSG_CMSG_CLOEXEC]) in place of its trapped
syscall: the kernel puts the descriptor at the lowest free number, exactly as open() would,
and writes that number into a msghdr on the thread's stack (below the red zone), whence it
becomes the result of the original syscall; every other register is restored.

What the Sentry trusts: the number read back from guest memory only ever becomes the guest's
own syscall result (another thread scribbling on the scratch area confuses that thread, no
one else). Where a descriptor can go is decided by the courier's identity, checked with kcmp
before every install (the guest may have closed it, dup2'd over it, or exec'd), and by its
queue, drained from the Sentry's side after every install, so a message never outlives the
install it was sent for. A process that forks without CLONE_FILES passes its courier on; the
child is made to close it at its first stop, before it runs an instruction of its own, or is
killed if that cannot be done.

Injection itself: at a PTRACE_EVENT_SECCOMP stop the syscall number and arguments are simply
replaced (since 4.8 the kernel re-runs the filter for the new number; the injected calls are
all passthrough) and PTRACE_SYSCALL runs it to its exit stop. Another call from there, or
from an event stop, re-executes the `syscall` instruction just before rip, with the thread's
signals blocked (PTRACE_SETSIGMASK) so that nothing runs in between.

aarch64 is not done: there InstallFd is answered ENOSYS (see `unsupported_install`).
"""

import array
import ctypes
import errno
import os
import resource
import signal
import socket
import struct
from collections import deque

from .. import abi
from ..syscall_tables import numbers
from .linux import kcmp, pidfd_getfd, ptrace, tkill
from .memory import ProcessMemory

# struct user_regs_struct (x86_64) as PTRACE_GETREGS/SETREGS see it.
NREGS = 27
R10, R9, R8, RAX, RDX, RSI, RDI, ORIG_RAX, RIP, RSP = 7, 8, 9, 10, 12, 13, 14, 15, 16, 19
ARGS = (RDI, RSI, RDX, R10, R8, R9)
_REGS_SIZE = NREGS * 8
U64 = (1 << 64) - 1

SYSCALL_INSN = b"\x0f\x05"  # `syscall`; at a syscall stop rip points just after it
RED_ZONE = 128

_NR = numbers()
NR_CLOSE, NR_FCNTL = _NR["close"], _NR["fcntl"]
NR_RECVMSG, NR_SOCKETPAIR = _NR["recvmsg"], _NR["socketpair"]

# The scratch area on the tracee's stack, just below the red zone (within 256 bytes of rsp,
# as little as fits: a Go goroutine's stack guarantees little more): a msghdr, its one iovec,
# room for one SCM_RIGHTS descriptor, the data byte.
_IOV = abi.MSGHDR.size
_CMSG = _IOV + abi.IOVEC.size
_BYTE = _CMSG + abi.CMSG_ONE_INT.size
_SCRATCH = struct.Struct(abi.MSGHDR.format + abi.IOVEC.format[1:]
                         + f"{abi.CMSG_ONE_INT.size + 1}x")
_SCRATCH_SPAN = (_SCRATCH.size + 15) & ~15
_CMSG_LEN_ONE = socket.CMSG_LEN(4)
_DRAIN_CMSG_SPACE = socket.CMSG_SPACE(4 * 8)  # our messages carry one; room for strays
# Plain ints: the socket module's MsgFlag enums cost microseconds per operation.
_DONTWAIT = int(socket.MSG_DONTWAIT)
_DONTWAIT_CLOEXEC = int(socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
_CTRUNC = int(socket.MSG_CTRUNC)
_ONE_BYTE = [b"\0"]

# Errors of the injected calls that mean for the guest what they would mean for open():
# passed on. Anything else that goes wrong with the mechanism is answered EIO.
_MEANINGFUL = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})


class InjectionFailed(Exception):
    """The thread did not run an injected syscall as asked (its code changed under us, or
    it stopped for something else); it is killed rather than left half-way."""


class _CourierLost(Exception):
    """The injected recvmsg failed and the message is still queued: another thread closed
    (or replaced) the courier between the check and the receive."""


class Injection:
    """A session of injected syscalls in one stopped thread.

    `saved` is the platform's register buffer at a PTRACE_EVENT_SECCOMP stop, left untouched
    here (the platform writes the result into it and restores it); without it, the thread is
    at an event-stop and its registers are saved and restored here. `pending` receives the
    wait statuses of other tracees (and of this one, if it dies) that turn up meanwhile, for
    the serve loop to handle in order."""

    __slots__ = (
        "_addr",
        "_at_seccomp",
        "_deferred",
        "_mask",
        "_pending",
        "_restore",
        "_sentry_mask",
        "_work",
        "saved",
        "tid",
    )

    def __init__(self, tid: int, pending, saved=None):
        self.tid = tid
        self._pending = pending
        self._work = (ctypes.c_ulonglong * NREGS)()
        self._addr = ctypes.addressof(self._work)
        self._at_seccomp = saved is not None
        self._restore = saved is None
        if saved is None:
            ptrace(abi.PTRACE_GETREGS, tid, 0, self._addr)
            saved = (ctypes.c_ulonglong * NREGS)()
            ctypes.memmove(saved, self._work, _REGS_SIZE)
        self.saved = saved
        self._mask = None
        self._sentry_mask = None
        self._deferred: list[int] = []

    @property
    def scratch(self) -> int:
        return (self.saved[RSP] - RED_ZONE - _SCRATCH_SPAN) & ~15

    def call(self, nr: int, *args: int) -> int:
        """Run syscall `nr` in the thread; its return value (negative errno on failure)."""
        tid, work, saved = self.tid, self._work, self.saved
        ctypes.memmove(work, saved, _REGS_SIZE)
        for reg, value in zip(ARGS, args):
            work[reg] = value & U64
        work[ORIG_RAX] = nr
        if self._at_seccomp:
            # Still inside the trapped syscall: only its number and arguments change.
            self._at_seccomp = False
            ptrace(abi.PTRACE_SETREGS, tid, 0, self._addr)
            ptrace(abi.PTRACE_SYSCALL, tid, 0, 0)
        else:
            if self._mask is None:
                self._prepare_rerun()
            work[RAX] = nr
            work[RIP] = saved[RIP] - len(SYSCALL_INSN)
            ptrace(abi.PTRACE_SETREGS, tid, 0, self._addr)
            ptrace(abi.PTRACE_SYSCALL, tid, 0, 0)
            self._wait_syscall_stop()  # entry
            ptrace(abi.PTRACE_SYSCALL, tid, 0, 0)
        self._wait_syscall_stop()  # exit
        ptrace(abi.PTRACE_GETREGS, tid, 0, self._addr)
        if work[ORIG_RAX] != nr or work[RIP] != saved[RIP]:
            raise InjectionFailed(f"tid {tid} ran syscall {ctypes.c_int64(work[ORIG_RAX]).value}"
                                  f" instead of {nr}")
        return ctypes.c_int64(work[RAX]).value

    def _prepare_rerun(self) -> None:
        """Before the thread returns to user mode to run `syscall` again: make sure the
        instruction before rip is one, and block its signals, so that no handler runs with
        our registers (SIGKILL and SIGSTOP cannot be blocked; see _wait_syscall_stop)."""
        try:
            insn = ProcessMemory(self.tid).read(self.saved[RIP] - len(SYSCALL_INSN), 2)
        except OSError as e:
            if isinstance(e, ProcessLookupError):
                raise
            insn = b""
        if insn != SYSCALL_INSN:
            raise InjectionFailed(f"tid {self.tid}: no syscall instruction before rip")
        mask = ctypes.c_uint64()
        ptrace(abi.PTRACE_GETSIGMASK, self.tid, 8, ctypes.addressof(mask))
        # Until finish() the thread's mask is ours, not the guest's: the Sentry's own signal
        # handlers (a forwarded ^C, the terminal's) read guest masks to decide a delivery, so
        # they wait too, and run once the guest's mask is back.
        self._sentry_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        blocked = ctypes.c_uint64(U64)
        ptrace(abi.PTRACE_SETSIGMASK, self.tid, 8, ctypes.addressof(blocked))
        self._mask = mask

    def _wait_syscall_stop(self) -> None:
        tid, pending = self.tid, self._pending
        while True:
            t, status = os.waitpid(-1, abi.WALL)
            if t != tid:
                pending.append((t, status))
                continue
            if not os.WIFSTOPPED(status):
                pending.append((t, status))  # the serve loop must learn of the exit too
                raise ProcessLookupError(errno.ESRCH, f"tid {tid} died while injecting")
            sig, event = os.WSTOPSIG(status), status >> 16
            if sig == abi.PTRACE_SYSCALL_STOP:
                return
            if event in (abi.PTRACE_EVENT_SECCOMP, abi.PTRACE_EVENT_STOP):
                # The injected call is one the filter traps (--strace traces passthrough
                # calls; the recheck lets it run), or a group-stop began: this thread finishes
                # its syscall first, as it would in a long system call.
                ptrace(abi.PTRACE_SYSCALL, tid, 0, 0)
            elif event == 0 and sig == signal.SIGSTOP:
                self._deferred.append(sig)  # unblockable: delivered once we are done
                ptrace(abi.PTRACE_SYSCALL, tid, 0, 0)
            else:
                raise InjectionFailed(f"tid {tid} stopped with {status:#x} while injecting")

    def finish(self) -> None:
        """Give the thread back its registers (event-stop) and signal mask."""
        tid = self.tid
        try:
            if self._restore:
                ctypes.memmove(self._work, self.saved, _REGS_SIZE)
                ptrace(abi.PTRACE_SETREGS, tid, 0, self._addr)
            if self._mask is not None:
                ptrace(abi.PTRACE_SETSIGMASK, tid, 8, ctypes.addressof(self._mask))
            for sig in self._deferred:
                tkill(tid, sig)
        except ProcessLookupError:
            pass
        finally:
            if self._sentry_mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, self._sentry_mask)


class Courier:
    """One process's courier: the number it has in the guest, the Sentry's end, and a
    duplicate of the guest's end (to drain it). `transient` are the numbers the pair had in
    the guest while it was being planted, which a child forked meanwhile may hold."""

    __slots__ = ("guest_end", "identities", "number", "sentry_end", "tgid", "transient")

    def __init__(self, tgid: int, number: int, sentry_end: socket.socket,
                 guest_end: socket.socket, transient: tuple[int, int]):
        self.tgid = tgid
        self.number = number
        self.sentry_end = sentry_end
        self.guest_end = guest_end
        self.transient = transient
        self.identities = tuple(_identity(s.fileno()) for s in (guest_end, sentry_end))

    def close(self) -> None:
        self.sentry_end.close()
        self.guest_end.close()


class Couriers:
    """The couriers of all guest processes (keyed by thread group), and InstallFd with them.
    False while there are none, so the serve loop pays nothing until the first install."""

    HIGH = 900  # below the usual soft RLIMIT_NOFILE of 1024
    LOWEST = 64  # never plant below this when falling back under a low limit
    RETIRED = 1024

    def __init__(self, host, pending):
        self._host = host
        self._pending = pending
        self._by_tgid: dict[int, Courier] = {}
        # Every courier a new process might hold: the live ones, and the last RETIRED that
        # were replaced or forgotten (a child forked while one was current may reach its
        # first stop only later, holding it: dead, but still not its own). By identity, and
        # the numbers they had in the guest (how often each, to know when one goes).
        self._known: dict[tuple[int, int], Courier] = {}
        self._numbers: dict[int, int] = {}
        self._retired: deque[Courier] = deque()
        self._me = os.getpid()
        try:
            self._have_kcmp = kcmp(self._me, self._me, abi.KCMP_FILES) == 0
        except OSError:
            self._have_kcmp = False  # CONFIG_KCMP=n: compare inodes through pidfd_getfd

    def __bool__(self) -> bool:
        return bool(self._known)

    # The answer ---------------------------------------------------------------------------
    def install(self, tid: int, regs, answer) -> int:
        """Install answer.fd in thread `tid`, stopped at PTRACE_EVENT_SECCOMP with `regs`;
        the result for the trapped syscall (the number, or a negative errno). The thread is
        left at a syscall stop, its registers in `regs` still to be written back by the
        caller. ProcessLookupError if the thread died (or had to be killed) meanwhile."""
        fd = answer.fd
        inj = Injection(tid, self._pending, regs)
        try:
            tgid = self._host.tgid(tid)
            courier = self._by_tgid.get(tgid)
            for _ in range(2):
                if courier is None or not self._holds(tid, courier):
                    self.forget(tgid)
                    courier = self._plant(inj, tgid)
                try:
                    return self._deliver(inj, courier, fd, answer.cloexec)
                except _CourierLost:
                    courier = None  # closed by another thread since the check: once more
            return -errno.EIO
        except InjectionFailed:
            self._kill(tid)
            raise ProcessLookupError(errno.ESRCH, f"tid {tid} killed: injection failed") from None
        except OSError as e:
            if isinstance(e, ProcessLookupError):
                raise
            return -(e.errno if e.errno in _MEANINGFUL else errno.EIO)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
            inj.finish()

    def _deliver(self, inj: Injection, courier: Courier, fd: int, cloexec: bool) -> int:
        mem = ProcessMemory(inj.tid)
        base = inj.scratch
        mem.write(base, _SCRATCH.pack(0, 0, base + _IOV, 1, base + _CMSG, abi.CMSG_ONE_INT.size,
                                      0, base + _BYTE, 1))
        courier.sentry_end.sendmsg(_ONE_BYTE, [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               struct.pack("=i", fd))], _DONTWAIT)
        got, raw = 0, None
        try:
            flags = _DONTWAIT_CLOEXEC if cloexec else _DONTWAIT
            got = inj.call(NR_RECVMSG, courier.number, base, flags)
            if got == 1:
                raw = mem.read(base, _BYTE)
        finally:
            undelivered = self._drain(courier)
        if undelivered and got < 0:
            raise _CourierLost  # nothing was received: the courier went away meanwhile
        if raw is None or undelivered:
            return -errno.EIO  # the thread received something else, or nothing
        return _received_fd(raw)

    @staticmethod
    def _drain(courier: Courier) -> bool:
        """Empty the courier's queue from the Sentry's side, closing whatever descriptors it
        held; whether there was anything (a message the guest did not take)."""
        found = False
        while True:
            try:
                data, ancillary, _, _ = courier.guest_end.recvmsg(1, _DRAIN_CMSG_SPACE,
                                                                  _DONTWAIT_CLOEXEC)
            except BlockingIOError:
                return found
            fds = array.array("i")
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for f in fds:
                os.close(f)
            if not data and not ancillary:
                return found
            found = True

    # Planting -------------------------------------------------------------------------------
    def _plant(self, inj: Injection, tgid: int) -> Courier:
        """A new courier for the thread's process: socketpair in the guest, the Sentry takes
        one end (pidfd_getfd) and has the guest close it and move the other one up high."""
        tid = inj.tid
        pair = inj.scratch
        r = inj.call(NR_SOCKETPAIR, socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC,
                     0, pair)
        if r < 0:
            raise OSError(-r, os.strerror(-r))
        a, b = struct.unpack("=ii", ProcessMemory(tid).read(pair, 8))
        in_guest = [a, b]  # closed again if planting fails
        ends: list[socket.socket] = []
        try:
            pidfd = self._host.pidfd(tid)
            for n in (b, a):
                ends.append(_socket(pidfd_getfd(pidfd, n)))
            sentry_end, guest_end = ends
            _check_pair(sentry_end, guest_end)
            if inj.call(NR_CLOSE, b) != 0:
                raise OSError(errno.EIO, "close of the courier's far end failed")
            in_guest.remove(b)
            number = self._move_up(inj, a, tgid)
            if number < 0:
                raise OSError(-number, os.strerror(-number))
            in_guest.append(number)
            inj.call(NR_CLOSE, a)
            in_guest.remove(a)
            courier = Courier(tgid, number, sentry_end, guest_end, (a, b))
            if not self._holds(tid, courier):
                raise OSError(errno.EIO, "the planted courier is not in place")
        except BaseException as e:
            for s in ends:
                s.close()
            if isinstance(e, OSError) and not isinstance(e, ProcessLookupError):
                for n in in_guest:
                    inj.call(NR_CLOSE, n)
            raise
        self._by_tgid[tgid] = courier
        self._remember(courier)
        return courier

    def _move_up(self, inj: Injection, fd: int, tgid: int) -> int:
        """fcntl(fd, F_DUPFD_CLOEXEC, high) at HIGH, or lower under a low RLIMIT_NOFILE."""
        try:
            soft = resource.prlimit(tgid, resource.RLIMIT_NOFILE)[0]
        except OSError:
            soft = resource.RLIM_INFINITY
        start = self.HIGH if soft == resource.RLIM_INFINITY else min(self.HIGH, soft - 1)
        while True:
            r = inj.call(NR_FCNTL, fd, abi.F_DUPFD_CLOEXEC, start)
            if r >= 0 or -r not in (errno.EINVAL, errno.EMFILE) or start // 2 < self.LOWEST:
                return r
            start //= 2

    def _holds(self, tid: int, courier: Courier) -> bool:
        """Whether the thread's descriptor courier.number still is this courier."""
        if self._have_kcmp:
            try:
                return kcmp(self._me, tid, abi.KCMP_FILE, courier.guest_end.fileno(),
                            courier.number) == 0
            except OSError as e:
                if e.errno == errno.EBADF:
                    return False
                raise
        return self._identity_in(self._host.pidfd(tid), courier.number) == courier.identities[0]

    # Other stops -----------------------------------------------------------------------------
    def first_stop(self, tid: int) -> None:
        """At a thread's event-stop (a new tracee's first one among them): a process that is
        not a courier's owner must not hold one, as a child forked without CLONE_FILES does;
        it closes it now, before running an instruction of its own, or is killed."""
        try:
            strays = self._strays(tid)
            if not strays:
                return
            inj = Injection(tid, self._pending)
            try:
                for n in strays:
                    if inj.call(NR_CLOSE, n) != 0:
                        raise InjectionFailed(f"tid {tid} could not close an inherited courier")
            finally:
                inj.finish()
        except (InjectionFailed, OSError) as e:
            if isinstance(e, ProcessLookupError):
                raise
            self._kill(tid)  # fail closed: it must not run holding another's courier
            raise ProcessLookupError(errno.ESRCH, f"tid {tid} killed: {e}") from None

    def _strays(self, tid: int) -> list[int]:
        """The numbers at which the thread holds a courier that is not its process's own."""
        tgid = self._host.tgid(tid)
        if tgid in self._by_tgid:
            return []  # the owner, or a thread sharing its table
        pidfd = self._host.pidfd(tid)
        strays = []
        for n in sorted(self._numbers):
            owner = self._known.get(self._identity_in(pidfd, n))
            if owner is not None and not self._shares_files(tid, owner.tgid):
                strays.append(n)
        return strays

    def _shares_files(self, tid: int, owner: int) -> bool:
        """CLONE_FILES without CLONE_THREAD: the child's table is its creator's own."""
        if not self._have_kcmp:
            return False  # closing a shared courier only makes its owner plant another
        try:
            return kcmp(tid, owner, abi.KCMP_FILES) == 0
        except OSError:
            return False

    @staticmethod
    def _identity_in(pidfd: int, n: int) -> tuple[int, int] | None:
        try:
            fd = pidfd_getfd(pidfd, n)
        except OSError as e:
            if e.errno == errno.EBADF:
                return None
            raise
        try:
            return _identity(fd)
        finally:
            os.close(fd)

    # Bookkeeping -------------------------------------------------------------------------------
    def forget(self, tgid: int) -> None:
        """The process is gone, exec'd (the courier was close-on-exec), or lost its courier."""
        courier = self._by_tgid.pop(tgid, None)
        if courier is not None:
            courier.close()
            self._retired.append(courier)
            if len(self._retired) > self.RETIRED:
                self._remember(self._retired.popleft(), -1)

    def _remember(self, courier: Courier, count: int = 1) -> None:
        for identity in courier.identities:
            if count > 0:
                self._known[identity] = courier
            else:
                del self._known[identity]
        for n in {courier.number, *courier.transient}:
            left = self._numbers.get(n, 0) + count
            if left:
                self._numbers[n] = left
            else:
                del self._numbers[n]

    def _kill(self, tid: int) -> None:
        try:
            signal.pidfd_send_signal(self._host.pidfd(tid), signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for tgid in list(self._by_tgid):
            self.forget(tgid)


def unsupported_install(tid: int, regs, answer) -> int:
    """InstallFd where the platform cannot inject syscalls (aarch64 for now): ENOSYS."""
    os.close(answer.fd)
    return -errno.ENOSYS


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _socket(fd: int) -> socket.socket:
    try:
        return socket.socket(fileno=fd)
    except BaseException:
        os.close(fd)
        raise


def _check_pair(sentry_end: socket.socket, guest_end: socket.socket) -> None:
    """The two numbers read back from the guest's memory must name the two ends of one
    SEQPACKET pair: what the Sentry sends on its end arrives on the end it will drain."""
    for s in (sentry_end, guest_end):
        if s.family != socket.AF_UNIX or s.type != socket.SOCK_SEQPACKET:
            raise OSError(errno.EIO, "the new courier is not a SEQPACKET socket")
    sentry_end.send(b"?", socket.MSG_DONTWAIT)
    if guest_end.recv(2, socket.MSG_DONTWAIT) != b"?":
        raise OSError(errno.EIO, "the courier's ends are not a pair")


def _received_fd(raw: bytes) -> int:
    """The descriptor number recvmsg wrote into the scratch msghdr, checked for form only."""
    *_, controllen, flags = abi.MSGHDR.unpack_from(raw, 0)
    if flags & _CTRUNC:
        return -errno.EMFILE  # the kernel dropped the descriptor: no free number
    length, level, kind, fd = abi.CMSG_ONE_INT.unpack_from(raw, _CMSG)
    if (controllen < _CMSG_LEN_ONE or length != _CMSG_LEN_ONE or level != socket.SOL_SOCKET
            or kind != socket.SCM_RIGHTS or fd < 0):
        return -errno.EIO
    return fd


def sigaction_flags(tid: int, regs, pending, sig: int) -> int:
    """The sa_flags thread `tid` (stopped at PTRACE_EVENT_SECCOMP with `regs`) has for
    signal `sig`, read by running rt_sigaction(sig, NULL, &old) in it in place of its trapped
    syscall, which is then over: the caller answers it (its registers, in `regs`, still to
    be written back)."""
    inj = Injection(tid, pending, regs)
    try:
        if inj.call(_NR["rt_sigaction"], sig, 0, inj.scratch, 8) < 0:
            return 0
        raw = ProcessMemory(tid).read(inj.scratch, abi.KERNEL_SIGACTION.size)
        return abi.KERNEL_SIGACTION.unpack(raw)[1]
    except InjectionFailed:
        tkill(tid, signal.SIGKILL)
        raise ProcessLookupError(errno.ESRCH, f"tid {tid} killed: injection failed") from None
    finally:
        inj.finish()
