"""The gofer's own seccomp filter: the syscalls it makes while serving, and nothing else.

Built with libseccomp (as the guest's filter is, platform/bpf.py) before the gofer forks, since
exporting BPF needs a temporary file; loaded by the gofer just before it serves. Everything not
listed kills the gofer (SECCOMP_RET_KILL_PROCESS), as does a foreign architecture: no exec,
no new sockets or connections, no ptrace, no mounts, no plain open/openat (every path goes
through openat2 with its RESOLVE flags). The file and socket calls are what the test suite's
gofers make under strace after loading the filter; the runtime calls are what CPython and glibc
need when the heap grows, which a freshly forked gofer rarely sees.
"""

import fcntl

from .. import abi
from ..platform import bpf_cache
from ..platform.bpf import export_bpf

# The file operations (fs.py): openat2 for every walk, the *at calls on a parent and a name,
# AT_EMPTY_PATH calls on O_PATH descriptors, and f*xattr on descriptors of regular files and
# directories. fstat is newfstatat(fd, "", AT_EMPTY_PATH) in glibc 2.33+.
FILE_CALLS = (
    "openat2", "close", "newfstatat", "fstatfs", "lseek", "getdents64", "ftruncate",
    "mkdirat", "mknodat", "unlinkat", "renameat2", "linkat", "symlinkat", "readlinkat",
    "fchmodat2", "fchownat", "utimensat",
    "fgetxattr", "fsetxattr", "flistxattr", "fremovexattr",
)
# The Python runtime: the allocator's memory, futex (glibc's locks, should one ever be
# contended), return from a signal handler, and os._exit. The gofer has one thread, so no exit.
RUNTIME_CALLS = ("brk", "mmap", "munmap", "mremap", "madvise", "futex", "rt_sigreturn", "exit_group")
# Allowed only with these arguments: the socket's messages on the socket alone, and fcntl only
# to read and set file status flags (clearing the O_NONBLOCK used to open).
SOCKET_CALLS = ("recvmsg", "sendmsg")
FCNTL_COMMANDS = (fcntl.F_GETFL, fcntl.F_SETFL)


def allowed_syscalls() -> tuple[str, ...]:
    return FILE_CALLS + RUNTIME_CALLS + SOCKET_CALLS + ("fcntl",)


# The socket's number in the program is a placeholder, set per gofer (for_socket): so the
# program is one cache entry, and it is built by the front end (`template()`), while the
# host's /tmp is still in view. The Sentry starts the gofer after its scratch tmpfs shadows
# /tmp, where a checkout or venv may live: it must import nothing (libseccomp) by then.
_PLACEHOLDER = 0x7E57_50CC  # never a descriptor: above any RLIMIT_NOFILE
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: how libseccomp compares an argument's low word


def template() -> bytes:
    """The gofer's program, with a placeholder for its socket's descriptor."""
    return bpf_cache.program("gofer", (_PLACEHOLDER,), lambda: _compile(_PLACEHOLDER))


def for_socket(program: bytes, sock_fd: int) -> bytes:
    """`template()`'s program for the socket at `sock_fd`: every comparison with the
    placeholder compares with it instead (the same program libseccomp would compile)."""
    out = bytearray(program)
    patched = 0
    for offset in range(0, len(out), abi.SOCK_FILTER.size):
        code, jt, jf, k = abi.SOCK_FILTER.unpack_from(out, offset)
        if code == _JEQ_K and k == _PLACEHOLDER:
            abi.SOCK_FILTER.pack_into(out, offset, code, jt, jf, sock_fd)
            patched += 1
    if not patched:
        raise RuntimeError("the gofer's program does not compare with its socket")
    return bytes(out)


def build_filter(sock_fd: int) -> bytes:
    return for_socket(template(), sock_fd)


def _compile(sock_fd: int) -> bytes:
    import pyseccomp  # only when no cached program will do

    f = pyseccomp.SyscallFilter(defaction=pyseccomp.KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)  # the gofer sets no_new_privs itself, just before
    for name in FILE_CALLS + RUNTIME_CALLS:
        f.add_rule(pyseccomp.ALLOW, name)
    for name in SOCKET_CALLS:
        f.add_rule(pyseccomp.ALLOW, name, pyseccomp.Arg(0, pyseccomp.EQ, sock_fd))
    for command in FCNTL_COMMANDS:
        f.add_rule(pyseccomp.ALLOW, "fcntl", pyseccomp.Arg(1, pyseccomp.EQ, command))
    return export_bpf(f)
