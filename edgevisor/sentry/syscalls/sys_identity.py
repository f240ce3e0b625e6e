"""Who the task is and what machine it runs on: uname, hostnames, pids.

Handlers take (kernel, task, args) and return the syscall's result, or raise OSError.
"""

import errno

from . import per_task_constant
from ... import abi
from ..answers import CONTINUE, ENTER_STRICT

_UTS_FIELD = 65  # __NEW_UTS_LEN + 1
_HOST_NAME_MAX = 64


def _field(value: bytes) -> bytes:
    return value[: _UTS_FIELD - 1].ljust(_UTS_FIELD, b"\0")


def utsname(k) -> bytes:
    """struct new_utsname, as uname(2) writes it."""
    return b"".join(_field(v) for v in (k.sysname, k.hostname, k.release, k.version, k.machine,
                                        k.domainname))


def sys_uname(k, t, a) -> int:
    t.mem.write(a[0], utsname(k))
    return 0


def _read_name(t, addr: int, length: int) -> bytes:
    # The kernel takes `len` as an int: a negative one is EINVAL, like an oversized one.
    length &= 0xFFFFFFFF
    if length > _HOST_NAME_MAX:
        raise OSError(errno.EINVAL, "name too long")
    return t.mem.read(addr, length)


def _set_uts_name(k, t, a) -> bytes:
    # Linux checks the capability before it looks at the name.
    if k.pids is None or not k.pids.capable(t.tid, abi.CAP_SYS_ADMIN):
        raise OSError(errno.EPERM, "sethostname needs CAP_SYS_ADMIN")
    return _read_name(t, a[0], a[1])


def sys_sethostname(k, t, a) -> int:
    k.hostname = _set_uts_name(k, t, a)
    return 0


def sys_setdomainname(k, t, a) -> int:
    k.domainname = _set_uts_name(k, t, a)
    return 0


@per_task_constant
def sys_getpid(k, t, a) -> int:
    return k.virtual(t.tgid)


@per_task_constant
def sys_gettid(k, t, a) -> int:
    return k.virtual(t.tid)


def sys_getppid(k, t, a) -> int:
    return k.virtual(t.ppid())


def _changes_credentials(k, t, a):
    """Run by the kernel; the Sentry only forgets the credentials it read."""
    if k.fs is not None:
        k.fs.forget_creds()
    return CONTINUE


for _name in ("setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid "
              "setgroups capset").split():
    globals()[f"sys_{_name}"] = _changes_credentials


def sys_prctl(k, t, a):
    # The option is an int; the mode an unsigned long, compared whole (prctl_set_seccomp).
    if a[0] & 0xFFFFFFFF == abi.PR_SET_SECCOMP and a[1] == abi.SECCOMP_MODE_STRICT:
        return ENTER_STRICT
    return _changes_credentials(k, t, a)


def sys_seccomp(k, t, a):
    """Strict mode is the Sentry's to install; every other operation runs in the kernel."""
    if a[0] & 0xFFFFFFFF == abi.SECCOMP_SET_MODE_STRICT:
        if a[1] & 0xFFFFFFFF or a[2]:  # flags, uargs: as do_seccomp checks them
            return -errno.EINVAL
        return ENTER_STRICT
    return CONTINUE
