"""What the Sentry does with each syscall, keyed by name and shared by both arches.

Three actions:
  emulate      a Python handler in the Sentry answers the call;
  passthrough  the host kernel runs it (the note says why that is safe, or which
               issue takes it over);
  deny         the Sentry answers with an errno (never ENOSYS) and the note says why.

A syscall without a row is unsupported: the Sentry answers ENOSYS and logs one line
(fail closed). A name that exists on one arch only simply has no match on the other.
Every kernel syscall without a row must be listed in OMITTED with the reason, so
that nothing is left out by accident.
"""

from __future__ import annotations

import errno as errno_codes
from typing import NamedTuple

from edgevisor import abi


class Refusal(NamedTuple):
    """Refuse the call with `errno` when (args[arg] & mask) == value, compared on the
    argument's low 32 bits, which is all the kernel reads of an int argument."""

    arg: int
    mask: int
    value: int
    errno: int = errno_codes.EPERM


class Rule(NamedTuple):
    action: str
    errno: str | None  # a name from Python's errno module, for deny
    note: str
    refuse: tuple[Refusal, ...] = ()  # argument values refused in the kernel, with an errno


def emulate(note: str, refuse: tuple[Refusal, ...] = ()) -> Rule:
    return Rule("emulate", None, note, refuse)


def passthrough(note: str, refuse: tuple[Refusal, ...] = ()) -> Rule:
    return Rule("passthrough", None, note, refuse)


# clone(2) flags that make namespaces; CLONE_NEWTIME shares its bit with CSIGNAL in clone.
CLONE_NEW_FLAGS = (abi.CLONE_NEWNS, abi.CLONE_NEWCGROUP, abi.CLONE_NEWUTS, abi.CLONE_NEWIPC,
                   abi.CLONE_NEWUSER, abi.CLONE_NEWPID, abi.CLONE_NEWNET)


def deny(errno: str, note: str) -> Rule:
    return Rule("deny", errno, note)


_PROC = "process lifecycle: the kernel's, inside the guest's own pid namespace"
_NET = ("network: on a socket the Sentry allowed, in the guest's own loopback-only "
        "namespace or on a host socket the Sentry made (--network=host)")
_FD_IO = "I/O on a descriptor the guest holds"
_OWN_MM = "memory management of the task's own address space"
_NEW_FD = "creates a descriptor from nothing; I/O on it stays within the guest"

_GROUPS: tuple[tuple[Rule, str], ...] = (
    # --- emulated ---------------------------------------------------------
    (emulate("UTS namespace: the Sentry's hostname, domain name and uname fields"),
     "uname sethostname setdomainname"),
    (emulate("PID namespace: the guest sees its own pids, init is 1"),
     "getpid getppid gettid"),
    (emulate("signals: the kernel's inside the guest's pid namespace, except those aimed at "
             "its init, which the Sentry delivers from outside as to any process"),
     "kill tkill tgkill"),
    (emulate("file system: resolved in the Sentry's VFS; files reach the guest as host "
             "descriptors the gofer opened"), """
        open openat openat2 creat stat lstat newfstatat statx access faccessat faccessat2
        readlink readlinkat mkdir mkdirat rmdir mknod mknodat unlink unlinkat
        rename renameat renameat2 link linkat symlink symlinkat chmod fchmodat fchmodat2
        chown lchown fchownat truncate utime utimes futimesat utimensat statfs getcwd
        setxattr lsetxattr getxattr lgetxattr listxattr llistxattr removexattr
        lremovexattr"""),
    (emulate("file system: a change of a descriptor's metadata, made through the Sentry's "
             "VFS on the file the guest opened in its view; EPERM for a descriptor the front "
             "end handed (> out, a terminal) and for anything that is not a file of the "
             "view (pipes, sockets, memfds)"), "fchmod fchown fsetxattr fremovexattr"),
    (emulate("file system: decided in the Sentry's VFS, then run by the kernel on the same "
             "object in the guest's host view, which mirrors the Sentry's mounts"), """
        chdir chroot execve execveat inotify_add_watch"""),
    (emulate("network: the Sentry allows unix, IP stream and datagram, ping and route "
             "netlink sockets (others EAFNOSUPPORT, raw and packet EPERM) and makes them in "
             "the guest's loopback-only namespace, or on the host for --network=host"),
     "socket socketpair"),
    (emulate("network: options on the Sentry's list only (no socket filters, netfilter "
             "tables, kTLS, IPsec): ENOPROTOOPT otherwise"), "setsockopt getsockopt"),
    (emulate("network: run by the kernel; a unix socket's name is made known to the "
             "Sentry's VFS"), "bind"),
    (emulate("descriptors: the Sentry answers for its synthetic files (/proc) and lets the "
             "kernel answer for the others"), "fstat fstatfs getdents getdents64 fchdir"),

    # --- passthrough -------------------------------------------------------
    (passthrough(_FD_IO), """
        read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2
        lseek close close_range dup dup2 dup3 fcntl flock fsync fdatasync sync_file_range
        readahead fadvise64 fallocate sendfile splice tee vmsplice copy_file_range
        ftruncate fgetxattr flistxattr cachestat
        select pselect6 poll ppoll epoll_wait epoll_pwait epoll_pwait2 epoll_ctl
        timerfd_settime timerfd_gettime inotify_rm_watch"""),
    (passthrough(_FD_IO + "; TIOCSTI and TIOCLINUX are refused (EPERM): the guest shares "
                 "the user's terminal and could type into it; so are the namespace files' "
                 "ioctls, which lead to the namespaces above the guest's",
                 (Refusal(1, 0xFFFFFFFF, abi.TIOCSTI), Refusal(1, 0xFFFFFFFF, abi.TIOCLINUX),
                  Refusal(1, 0xFF00, abi.NSIO << 8))),
     "ioctl"),
    (passthrough("flushes to the host's disks: writes to a writable mount must be "
                 "durable (invariant 4)"), "sync syncfs"),
    (passthrough(_NEW_FD), """
        pipe pipe2 eventfd eventfd2 epoll_create epoll_create1 signalfd signalfd4
        timerfd_create inotify_init inotify_init1 memfd_create"""),
    (passthrough("legacy AIO on descriptors the guest holds"),
     "io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents"),
    (passthrough("the file mode creation mask is the kernel's; the Sentry reads it from "
                 "/proc when it creates a file"), "umask"),
    (passthrough(_OWN_MM), """
        brk mmap munmap mremap mprotect msync mincore madvise mlock mlock2 munlock
        mlockall munlockall remap_file_pages mseal map_shadow_stack memfd_secret
        pkey_mprotect pkey_alloc pkey_free membarrier"""),
    (passthrough("NUMA policy of the task's own memory"),
     "mbind get_mempolicy set_mempolicy set_mempolicy_home_node"),
    (passthrough("NUMA page placement; pid 0 is the caller, other pids need "
                 "CAP_SYS_NICE over the target; pid translation: issue 4"),
     "migrate_pages move_pages"),
    (passthrough("futexes, robust lists and rseq live in the task's own memory"), """
        futex futex_waitv futex_wake futex_wait futex_requeue set_robust_list
        get_robust_list set_tid_address rseq"""),
    (passthrough("signal state of the task itself"), """
        rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait
        rt_sigsuspend sigaltstack pause restart_syscall"""),
    (passthrough("signal state of the task itself; on a terminal, the setting of a stop "
                 "signal's action is trapped, for job control to see pid 1's first, then run"),
     "rt_sigaction"),
    (passthrough("signal delivery inside the guest's own pid namespace, which holds only "
                 "its tasks"), "rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal"),
    (passthrough(_PROC + "; CLONE_NEW* flags are refused (EPERM), as unshare is",
                 tuple(Refusal(0, f, f) for f in CLONE_NEW_FLAGS)),
     "clone"),
    (passthrough(_PROC), """
        fork vfork exit exit_group wait4 waitid
        setpgid getpgid getpgrp setsid getsid pidfd_open process_mrelease
        getrlimit setrlimit prlimit64 getrusage times getpriority setpriority"""),
    (passthrough("credentials: the kernel's, inside the guest's namespaces"), """
        getuid geteuid getgid getegid getresuid getresgid getgroups capget"""),
    (emulate("credentials: run by the kernel; the Sentry reads them afresh afterwards for "
             "its permission checks"), """
        setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid setgroups
        capset prctl"""),
    # A listener's CONTINUE would outrank the Sentry's RET_TRACE on ptrace; EBUSY is what the
    # kernel itself answers on the seccomp platform, where the Sentry's listener exists.
    (emulate("strict mode is installed by the Sentry as the filter it is (the kernel refuses it "
             "under a filter); other operations run in the kernel: guest filters stack on the "
             "Sentry's and can only restrict further. A filter with its own listener "
             "(SECCOMP_FILTER_FLAG_NEW_LISTENER) is refused (EBUSY): its CONTINUE answers "
             "would outrank the Sentry's trap",
             (Refusal(1, abi.SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      abi.SECCOMP_FILTER_FLAG_NEW_LISTENER, errno_codes.EBUSY),)),
     "seccomp"),
    (passthrough("the task's own FS/GS base and CPUID faulting"), "arch_prctl"),
    (passthrough("scheduling of the guest's own threads; pid translation: issue 4"), """
        sched_yield sched_setparam sched_getparam sched_setscheduler sched_getscheduler
        sched_get_priority_max sched_get_priority_min sched_rr_get_interval
        sched_setaffinity sched_getaffinity sched_setattr sched_getattr
        ioprio_set ioprio_get getcpu"""),
    (passthrough("reads clocks or arms the task's own timers"), """
        time gettimeofday clock_gettime clock_getres clock_nanosleep nanosleep
        alarm getitimer setitimer timer_create timer_settime timer_gettime
        timer_getoverrun timer_delete"""),
    (passthrough("read-only host load figures; issue 4 will emulate them"), "sysinfo"),
    (passthrough("draws from the host's CSPRNG; no state to leak"), "getrandom"),
    (passthrough(_NET), """
        listen accept accept4 connect getsockname getpeername
        sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown"""),
    (passthrough("SysV and POSIX IPC inside the guest's own IPC namespace"), """
        shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd
        msgrcv msgctl mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify
        mq_getsetattr"""),
    (passthrough("Landlock can only restrict the caller"),
     "landlock_create_ruleset landlock_add_rule landlock_restrict_self"),
    (passthrough("reads the caller's own LSM attributes"),
     "lsm_get_self_attr lsm_list_modules"),
    (passthrough("valid only from the kernel's uprobe trampoline, else SIGILL"),
     "uretprobe"),

    # --- denied ------------------------------------------------------------
    (deny("EPERM", "would replace the running host kernel"), "kexec_load kexec_file_load"),
    (deny("EPERM", "would reboot or halt the host"), "reboot"),
    (deny("EPERM", "loads code into the host kernel"), "init_module finit_module bpf"),
    (deny("EPERM", "unloads host kernel modules"), "delete_module"),
    (deny("EPERM", "the mount table belongs to the Sentry's VFS (issue 3)"), """
        mount umount2 pivot_root move_mount open_tree fsopen fsconfig fsmount fspick
        mount_setattr"""),
    (deny("EPERM", "would reveal the host's mount table; the Sentry's VFS will "
                   "answer (issue 3)"), "listmount statmount"),
    (deny("EPERM", "host-wide swap configuration"), "swapon swapoff"),
    (deny("EPERM", "host-wide process accounting into a file"), "acct"),
    (deny("EPERM", "host file system quotas"), "quotactl quotactl_fd"),
    (deny("EPERM", "sets the host clock"), "settimeofday clock_settime"),
    (deny("EPERM", "tunes the host clock; read-only queries (modes 0) are refused too"),
     "adjtimex clock_adjtime"),
    (deny("EPERM", "reads the host kernel log"), "syslog"),
    (deny("EPERM", "raw I/O port access"), "iopl ioperm"),
    (deny("EPERM", "LDT segments: rarely needed (16-bit code, Wine), often a kernel "
                   "bug's way in"), "modify_ldt"),
    (deny("EPERM", "kernel observability: a large attack surface and a host-wide view"),
     "perf_event_open"),
    (deny("EPERM", "lets a guest stall kernel page faults at will (a race amplifier)"),
     "userfaultfd"),
    (deny("EPERM", "io_uring operations run in the kernel without passing seccomp"),
     "io_uring_setup io_uring_enter io_uring_register"),
    (deny("EPERM", "opens any file on the host by handle, bypassing path checks"),
     "open_by_handle_at"),
    (deny("EOPNOTSUPP", "file handles are not offered, as for a file system "
                        "without export support"), "name_to_handle_at"),
    (deny("EPERM", "namespaces are the Sentry's; issue 4 may emulate them"),
     "setns unshare"),
    (deny("EPERM", "the host kernel keyring is shared across containers"),
     "add_key request_key keyctl"),
    (deny("EPERM", "the Sentry may be tracing the guest, and a task has one tracer"),
     "ptrace"),
    (deny("EPERM", "reaches into another process's memory or descriptors, like ptrace"),
     "process_vm_readv process_vm_writev process_madvise pidfd_getfd kcmp"),
    (deny("EPERM", "hangs up the controlling terminal, which may be the host's"),
     "vhangup"),
    (deny("EPERM", "watches host file system events; needs CAP_SYS_ADMIN for most uses"),
     "fanotify_init fanotify_mark"),
    (deny("EPERM", "execution domains change mmap and ASLR behaviour; issue 4 may allow "
                   "the query (0xffffffff) and PER_LINUX like Docker's profile"),
     "personality"),
    (deny("EPERM", "changing LSM attributes would alter the host's policy decisions"),
     "lsm_set_self_attr"),
)


# Deliberately without a row (ENOSYS), and why.
_GONE = "not implemented by the kernel either (no entry point in its table)"
OMITTED: dict[str, str] = {
    **{name: _GONE for name in """
        uselib create_module get_kernel_syms query_module nfsservctl lookup_dcookie
        _sysctl getpmsg putpmsg afs_syscall tuxcall security vserver epoll_ctl_old
        epoll_wait_old set_thread_area get_thread_area""".split()},
    "ustat": "obsolete (statfs replaced it); glibc no longer has a wrapper",
    "sysfs": "obsolete file system type enumeration; /proc/filesystems answers instead",
    # Reading the flags would be check-then-forward; clone(2) takes them in registers.
    "clone3": "its flags live in guest memory, out of the BPF filter's reach; "
              "on ENOSYS glibc falls back to clone(2)",
}


def _build(groups: tuple[tuple[Rule, str], ...]) -> dict[str, Rule]:
    policy: dict[str, Rule] = {}
    for rule, names in groups:
        for name in names.split():
            if name in policy:
                raise ValueError(f"policy: {name} has two rows")
            policy[name] = rule
    return policy


POLICY: dict[str, Rule] = _build(_GROUPS)
