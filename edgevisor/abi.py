"""Linux ABI constants and struct layouts, defined once for the whole package.

Values are the kernel's uapi ones; where an architecture differs, the name says so.
"""

import os
import struct

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# seccomp(2)
SECCOMP_SET_MODE_STRICT = 0
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_MODE_STRICT = 1  # prctl(PR_SET_SECCOMP)'s
PR_SET_SECCOMP = 22
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF

SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1
SECCOMP_ADDFD_FLAG_SETFD = 1


def _ioc(direction: int, kind: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (kind << 8) | nr


_IOC_WRITE, _IOC_READ = 1, 2

# struct seccomp_notif { u64 id; u32 pid; u32 flags; struct seccomp_data data; }
# struct seccomp_data { s32 nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
SECCOMP_NOTIF = struct.Struct("=QIIiIQ6Q")
# struct seccomp_notif_resp { u64 id; s64 val; s32 error; u32 flags; }
SECCOMP_NOTIF_RESP = struct.Struct("=QqiI")
# struct seccomp_notif_addfd { u64 id; u32 flags; u32 srcfd; u32 newfd; u32 newfd_flags; }
SECCOMP_NOTIF_ADDFD = struct.Struct("=QIIII")

SECCOMP_IOCTL_NOTIF_RECV = _ioc(_IOC_READ | _IOC_WRITE, ord("!"), 0, SECCOMP_NOTIF.size)
SECCOMP_IOCTL_NOTIF_SEND = _ioc(_IOC_READ | _IOC_WRITE, ord("!"), 1, SECCOMP_NOTIF_RESP.size)
SECCOMP_IOCTL_NOTIF_ID_VALID = _ioc(_IOC_WRITE, ord("!"), 2, 8)
SECCOMP_IOCTL_NOTIF_ADDFD = _ioc(_IOC_WRITE, ord("!"), 3, SECCOMP_NOTIF_ADDFD.size)
SECCOMP_IOCTL_NOTIF_SET_FLAGS = _ioc(_IOC_WRITE, ord("!"), 4, 8)
# The kernel's own answer of an interrupted wait (include/linux/errno.h): signal delivery
# turns it into a restart (SA_RESTART, or no handler) or EINTR. Never seen by user space.
ERESTARTSYS = 512

# struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
SOCK_FILTER = struct.Struct("=HBBI")
BPF_MAXINSNS = 4096  # the most instructions a classic BPF program may have

# BPF opcodes used by the filter generator and its tests.
BPF_LD_W_ABS = 0x20
BPF_ALU_AND_K = 0x54
BPF_JMP_JEQ_K = 0x15
BPF_JMP_JGE_K = 0x35
BPF_RET_K = 0x06

# Offsets into struct seccomp_data.
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
SECCOMP_DATA_ARGS = 16

# The audit arch of each table is in the generated tables (AUDIT_ARCH).
# x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit set in the number.
X32_SYSCALL_BIT = 0x40000000

# ptrace(2)
PTRACE_TRACEME = 0
PTRACE_PEEKUSER = 3
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_TRACEME = 0
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208

PTRACE_O_TRACESYSGOOD = 1
PTRACE_O_TRACEFORK = 1 << 1
PTRACE_O_TRACEVFORK = 1 << 2
PTRACE_O_TRACECLONE = 1 << 3
PTRACE_O_TRACEEXEC = 1 << 4
PTRACE_O_TRACEVFORKDONE = 1 << 5
PTRACE_O_TRACEEXIT = 1 << 6
PTRACE_O_TRACESECCOMP = 1 << 7
PTRACE_O_EXITKILL = 1 << 20

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

NT_PRSTATUS = 1
NT_ARM_SYSTEM_CALL = 0x404

WALL = 0x40000000  # __WALL

# Namespaces (clone/unshare flags).
# The flags glibc's pthread_create passes to clone(2): a thread, nothing else.
CLONE_THREAD_FLAGS = (0x00000100 | 0x00000200 | 0x00000400 | 0x00000800  # VM FS FILES SIGHAND
                      | 0x00010000 | 0x00040000 | 0x00080000  # THREAD SYSVSEM SETTLS
                      | 0x00100000 | 0x00200000)  # PARENT_SETTID CHILD_CLEARTID
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# Terminal ioctls the guest may not issue (see the syscall policy).
TIOCSTI = 0x5412  # push bytes into a terminal's input queue
TIOCLINUX = 0x541C  # virtual-console commands, including pasting a selection
TIOCGPTN = 0x80045430  # a pty master's number in its devpts instance
TIOCSPTLCK = 0x40045431  # lock (nonzero) or unlock a pty's slave
TIOCGPTPEER = 0x5441  # open a pty master's slave, from the master's own devpts
NSIO = 0xB7  # the ioctl type of namespace files (NS_GET_USERNS, NS_GET_PARENT ...)

# mount(2)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# pidfd
PIDFD_THREAD = 0o200  # O_EXCL
# struct pidfd_info (first 64 bytes, PIDFD_INFO_SIZE_VER0): mask, cgroupid, pid, tgid, ppid, ...
PIDFD_INFO = struct.Struct("=QQIII44x")
PIDFD_INFO_PID = 1
PIDFD_GET_INFO = _ioc(_IOC_READ | _IOC_WRITE, 0xFF, 11, PIDFD_INFO.size)

# Linux capabilities v3 (two 32-bit words per set).
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_LAST_CAP = 40
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
# Every capability by its name in capabilities(7), less the CAP_ prefix, as docker's flags
# spell them; the number is the bit.
CAPABILITY_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)

# Paths and file system calls.
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_EACCESS = 0x200  # faccessat: shares its value with AT_REMOVEDIR
PATH_MAX = 4096
NAME_MAX = 255
SYMLOOP_MAX = 40  # symlinks followed in one resolution before ELOOP

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

# openat2(2): struct open_how { u64 flags; u64 mode; u64 resolve; }
OPEN_HOW = struct.Struct("=QQQ")
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20

# The gofer's host file system calls (edgevisor/gofer).
# open_tree(2) and mount_setattr(2): struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000  # O_CLOEXEC
AT_RECURSIVE = 0x8000
MOUNT_ATTR = struct.Struct("=QQQQ")
MOUNT_ATTR_RDONLY = 1
# struct statfs on 64-bit: f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree,
# f_fsid[2], f_namelen, f_frsize, f_flags, f_spare[4]
STATFS = struct.Struct("=qqQQQQQiiqqq32x")
# utimensat(2): tv_nsec values that mean "now" and "leave unchanged"
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
# struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
DIRENT64 = struct.Struct("=QqHB")

# open(2) flags (the Sentry's VFS). O_DIRECTORY and O_NOFOLLOW differ between x86_64 and
# aarch64; the guest always has the host's architecture, so those two come from the host.
O_ACCMODE = 0o3
O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_PATH = 0o10000000
O_TMPFILE_BIT = 0o20000000  # the kernel's __O_TMPFILE; O_TMPFILE is it plus O_DIRECTORY
O_DIRECTORY = os.O_DIRECTORY
O_NOFOLLOW = os.O_NOFOLLOW

# Syscall injection on the ptrace platform (platform/inject.py).
PTRACE_SYSCALL = 24
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_SYSCALL_STOP = 0x80 | 5  # WSTOPSIG of a syscall-stop under TRACESYSGOOD: SIGTRAP | 0x80
KCMP_FILE = 0
KCMP_FILES = 2
F_DUPFD_CLOEXEC = 1030
# 64-bit struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t iovlen;
# void *control; size_t controllen; int flags; } and struct iovec { void *base; size_t len; }
MSGHDR = struct.Struct("=QI4xQQQQi4x")
IOVEC = struct.Struct("=QQ")
# struct cmsghdr { size_t len; int level; int type; } carrying one int (a descriptor), padded
# to CMSG_SPACE(sizeof(int)) = 24
CMSG_ONE_INT = struct.Struct("=Qiii4x")

# Sockets (sentry/net). Address families, types and the socket-option levels and names the
# Sentry's policy names; the values are the kernel's (include/linux/socket.h, uapi/linux/in.h,
# in6.h, tcp.h, udp.h, netlink.h, asm-generic/socket.h).
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
AF_PACKET = 17
NPROTO = 46  # AF_MAX: families at or above it do not exist
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_SEQPACKET = 5
SOCK_MAX = 11
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = O_NONBLOCK
SOCK_CLOEXEC = O_CLOEXEC
IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMPV6 = 58
IPPROTO_UDPLITE = 136
NETLINK_ROUTE = 0
SOL_SOCKET = 1
SOL_NETLINK = 270

# struct sigaction as the kernel keeps it (rt_sigaction, x86_64): handler, flags, restorer,
# mask; and the flag that makes an interrupted call restart after the handler.
KERNEL_SIGACTION = struct.Struct("=QQQQ")
SA_RESTART = 0x10000000
SA_RESETHAND = 0x80000000  # the action goes back to SIG_DFL as the signal is delivered
# The stop signals of a terminal's job control: ^Z, and a background process group's read
# and write of the terminal (consecutive numbers).
SIGTSTP, SIGTTIN, SIGTTOU = 20, 21, 22
STOP_SIGNALS = frozenset({SIGTSTP, SIGTTIN, SIGTTOU})
# What begins a group-stop: those and SIGSTOP (a tracer keeps it with PTRACE_LISTEN).
GROUP_STOP_SIGNALS = STOP_SIGNALS | {19}
