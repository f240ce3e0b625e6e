"""The Sentry's own seccomp filter and capabilities, applied once start-up is over.

The Sentry parses hostile input all day (guest memory, paths, socket addresses), so, as the
gofer and the publisher are, it runs confined: after it has forked the guest, the gofer and
the publisher, and pivoted into its empty root, it drops the capabilities it does not use and
loads an allowlist of the syscalls it makes while serving. What is not on the list never runs:

- no exec, no fork (threads only: clone with glibc's thread flags; clone3, whose flags are
  behind a pointer, gets ENOSYS so that glibc falls back to clone, as gVisor does);
- no mount, pivot_root, unshare, setns, chroot, bpf, keyctl, io_uring, userfaultfd;
- no open of a path: open(2) is absent and openat(2) (and, with directfs, openat2(2)) takes
  only a descriptor the Sentry holds (its /proc and the guest's, the gofer's files), never
  AT_FDCWD;
- sockets: unix (socketpairs for guest sockets) always, IP and netlink with --network=host,
  where the Sentry makes the guest's host sockets;
- ptrace: on the ptrace platform never to attach (new guest tasks are traced from birth
  through PTRACE_O_TRACECLONE and its kin); on the seccomp platform only to attach to a guest
  thread that asks for strict-mode seccomp (strict.py). Its pid namespace holds only the
  sandbox's processes, and with CAP_SYS_PTRACE it already reads and writes their memory and
  takes their descriptors: attaching reaches nothing new.

A forbidden call kills the Sentry (SECCOMP_RET_KILL_PROCESS), and with it the sandbox, as
gVisor's filters do: a Sentry that makes a call it never makes is either buggy or taken over,
and neither should go on serving. The front end names the cause (death by SIGSYS) in one line;
the kernel's audit log names the syscall. With --debug the call is trapped instead
(SECCOMP_RET_TRAP): faulthandler writes the Python stack of the thread that made it to the
log, and the call fails with ENOSYS, refused all the same. A trap cannot be made fatal: the
Sentry is init of its pid namespace, which ignores a SIGSYS it raises itself.
"""

import faulthandler
import signal
import termios

from .. import abi
from . import bpf_cache
from .bpf import export_bpf
from .linux import prctl, seccomp_load, set_capabilities

# What CPython, glibc and the Sentry's threads need whatever they serve.
RUNTIME_CALLS = (
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "lseek",
    "brk", "mmap", "munmap", "mremap", "madvise", "mprotect",
    "futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity",
    "rt_sigreturn", "rt_sigaction", "rt_sigprocmask", "sigaltstack", "tgkill", "tkill",
    # A sleep or timed futex wait that a signal interrupted (the waiting threads' WAKE)
    # resumes through it: the kernel continues the call it had allowed.
    "restart_syscall",
    "getpid", "gettid", "getppid", "getpgid", "getpgrp", "getsid", "getuid", "geteuid", "getgid", "getegid", "getrandom",
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday",
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "exit", "exit_group", "uname", "getrlimit", "prlimit64", "sysinfo",
    "getrusage", "times",
)
# Serving the guest: its memory, its processes and their /proc, the descriptors it is
# given (memfd-backed tmpfs files, pipes, socketpairs) and the gofer's answers.
SERVING_CALLS = (
    "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "kill", "wait4", "waitid", "kcmp",
    "rt_sigtimedwait",  # the terminal watcher's answers (job_control.py)
    "newfstatat", "statx", "fstatfs", "readlinkat", "getdents64", "fchmod", "ftruncate",
    "fallocate", "fsync", "fdatasync", "memfd_create", "pipe2", "eventfd2", "dup", "dup3",
    "socketpair", "sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown",
    "getsockname", "getpeername", "getsockopt", "setsockopt",
    "sendfile", "copy_file_range", "splice", "fcntl",
)
# ioctl requests by number: the listener's (seccomp platform), the pidfd's, and the terminal
# reads the Sentry makes to forward signals to the foreground job, and its hand-over of the
# terminal to the guest at `fg` (job_control.py).
IOCTLS = (
    abi.SECCOMP_IOCTL_NOTIF_RECV, abi.SECCOMP_IOCTL_NOTIF_SEND, abi.SECCOMP_IOCTL_NOTIF_ID_VALID,
    abi.SECCOMP_IOCTL_NOTIF_ADDFD, abi.SECCOMP_IOCTL_NOTIF_SET_FLAGS, abi.PIDFD_GET_INFO,
    termios.TCGETS, termios.TIOCGPGRP, termios.TIOCSPGRP, termios.FIONBIO, termios.FIOCLEX,
)
# The ptrace platform's requests on the tasks it traces (ptrace.py, inject.py): never
# PTRACE_TRACEME, PTRACE_ATTACH or PTRACE_SEIZE, which would take a new tracee.
PTRACE_REQUESTS = (
    abi.PTRACE_PEEKUSER, abi.PTRACE_CONT, abi.PTRACE_KILL, abi.PTRACE_GETREGS,
    abi.PTRACE_SETREGS, abi.PTRACE_SETOPTIONS, abi.PTRACE_GETEVENTMSG, abi.PTRACE_GETSIGINFO,
    abi.PTRACE_GETREGSET, abi.PTRACE_SETREGSET, abi.PTRACE_INTERRUPT, abi.PTRACE_LISTEN,
    abi.PTRACE_SYSCALL, abi.PTRACE_GETSIGMASK, abi.PTRACE_SETSIGMASK,
)
# The seccomp platform's, on a thread entering strict mode and then while it lives (strict.py,
# inject.py).
STRICT_MODE_PTRACE_REQUESTS = (
    abi.PTRACE_SEIZE, abi.PTRACE_INTERRUPT, abi.PTRACE_CONT, abi.PTRACE_LISTEN,
    abi.PTRACE_DETACH, abi.PTRACE_GETREGS, abi.PTRACE_SETREGS, abi.PTRACE_SYSCALL,
    abi.PTRACE_GETEVENTMSG, abi.PTRACE_GETSIGMASK, abi.PTRACE_SETSIGMASK,
)
HOST_NETWORK_FAMILIES = (abi.AF_INET, abi.AF_INET6, abi.AF_NETLINK)

# The capabilities the Sentry keeps (see docs/architecture.md): ptrace access to guests that
# changed their credentials (pidfd_getfd, process_vm_*, /proc/PID/fd), signals to them,
# reopening their files through /proc whatever their modes, and, with --network=host, making
# a socket under the asking task's file system ids (setfsuid, setfsgid).
KEPT_CAPABILITIES = frozenset({abi.CAP_SYS_PTRACE, abi.CAP_KILL, abi.CAP_DAC_OVERRIDE,
                               abi.CAP_DAC_READ_SEARCH})
HOST_NETWORK_CAPABILITIES = frozenset({abi.CAP_SETUID, abi.CAP_SETGID})


def allowed_syscalls(platform: str, network: str) -> tuple[str, ...]:
    """The names allowed outright (ioctl, clone, openat and socket are allowed with
    the arguments build_filter checks)."""
    names = RUNTIME_CALLS + SERVING_CALLS
    if network == "host":
        names += ("setfsuid", "setfsgid")
    return names


def capabilities(network: str) -> frozenset[int]:
    return KEPT_CAPABILITIES | (HOST_NETWORK_CAPABILITIES if network == "host" else frozenset())


def build_filter(platform: str, network: str, debug: bool = False,
                 directfs: bool = False) -> bytes:
    """BPF for the Sentry on `platform` with --network=`network`, trapping rather than
    killing with `debug`, allowing openat2 with `directfs`."""
    return bpf_cache.program("sentry", (platform, network, debug, directfs),
                             lambda: _compile(platform, network, debug, directfs))


def _compile(platform: str, network: str, debug: bool, directfs: bool) -> bytes:
    import pyseccomp  # only when no cached program will do

    f = pyseccomp.SyscallFilter(defaction=pyseccomp.TRAP if debug else pyseccomp.KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)  # install() sets no_new_privs itself
    f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    for name in allowed_syscalls(platform, network):
        f.add_rule(pyseccomp.ALLOW, name)
    # On ptrace the guests it traces already, never a new tracee; on seccomp the threads in
    # strict mode.
    for request in PTRACE_REQUESTS if platform == "ptrace" else STRICT_MODE_PTRACE_REQUESTS:
        f.add_rule(pyseccomp.ALLOW, "ptrace", pyseccomp.Arg(0, pyseccomp.EQ, request))
    f.add_rule(pyseccomp.ERRNO(38), "clone3")  # ENOSYS: glibc then uses clone
    f.add_rule(pyseccomp.ALLOW, "clone", pyseccomp.Arg(0, pyseccomp.EQ, abi.CLONE_THREAD_FLAGS))
    # Descriptor-relative only: a dirfd in 0..INT_MAX. AT_FDCWD, sign-extended or not, is
    # above that in the 64 bits libseccomp compares.
    f.add_rule(pyseccomp.ALLOW, "openat", pyseccomp.Arg(0, pyseccomp.LE, 0x7FFFFFFF))
    if directfs:
        # The same bound. Its RESOLVE_* flags sit behind a pointer the filter cannot read,
        # so it reaches no more than openat does from the same descriptors (see
        # docs/security.md, "directfs").
        f.add_rule(pyseccomp.ALLOW, "openat2", pyseccomp.Arg(0, pyseccomp.LE, 0x7FFFFFFF))
    for request in IOCTLS:
        f.add_rule(pyseccomp.ALLOW, "ioctl", pyseccomp.Arg(1, pyseccomp.EQ, request))
    families = (abi.AF_UNIX,) + (HOST_NETWORK_FAMILIES if network == "host" else ())
    for family in families:
        f.add_rule(pyseccomp.ALLOW, "socket", pyseccomp.Arg(0, pyseccomp.EQ, family))
    return export_bpf(f)


def install(program: bytes, network: str, report=None) -> None:
    """Confine the calling Sentry, all its threads: capabilities first (capset is not on the
    list), then no_new_privs and the filter. `report`, with a --debug filter, is the file a
    trapped call's stack is written to."""
    set_capabilities(capabilities(network))
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    if report is not None:
        faulthandler.register(signal.SIGSYS, file=report, all_threads=False)
    seccomp_load(program, abi.SECCOMP_FILTER_FLAG_TSYNC)
