"""Guest half of test_dev_nodes: run inside the sandbox as root, it tries to change each device
node of the guest's /dev by path, through an O_PATH descriptor, and through an open one; checks
that the devices still work; then unlinks, renames and replaces them. One line per attempt:
`name: ok` or `name: ERRNO`, and `state DEVICE MODE UID GID MTIME` for what the guest saw last.

argv: the device names to attack."""

import ctypes
import errno
import os
import sys

from edgevisor import abi
from edgevisor.gofer import hostcalls

UID, GID, MODE = 4242, 4343, 0o606
WHEN = 981158400  # 2001-02-03, as `touch -d 2001-02-03`
XATTRS = ((b"user.edgevisor", b"x"), (b"trusted.edgevisor", b"x"),
          # a v2 file capability granting cap_setuid: what would make a binary privileged
          (b"security.capability", bytes.fromhex("0000000280000000000000000000000000000000")))

libc = ctypes.CDLL(None, use_errno=True)


def attempt(name: str, call) -> None:
    try:
        call()
        print(f"{name}: ok", flush=True)
    except OSError as e:
        print(f"{name}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)


def metadata(prefix: str, target, *, empty_path: bool = False) -> None:
    """Every metadata change on `target`, a path or a descriptor."""
    if empty_path:  # the *at calls on a descriptor with AT_EMPTY_PATH
        attempt(f"{prefix}fchownat", lambda: hostcalls.fchownat(target, b"", UID, GID,
                                                                abi.AT_EMPTY_PATH))
        attempt(f"{prefix}fchmodat2", lambda: hostcalls.fchmodat2(target, b"", MODE,
                                                                  abi.AT_EMPTY_PATH))
        attempt(f"{prefix}utimensat", lambda: hostcalls.utimensat(target, b"", (WHEN, 0),
                                                                  (WHEN, 0), abi.AT_EMPTY_PATH))
        return
    attempt(f"{prefix}chown", lambda: os.chown(target, UID, GID))
    attempt(f"{prefix}chmod", lambda: os.chmod(target, MODE))
    attempt(f"{prefix}utime_now", lambda: os.utime(target))
    attempt(f"{prefix}utime", lambda: os.utime(target, (WHEN, WHEN)))
    for key, value in XATTRS:
        attempt(f"{prefix}setxattr_{key.decode().split('.')[0]}",
                lambda: os.setxattr(target, key, value))
    if isinstance(target, str):
        attempt(f"{prefix}lchown", lambda: os.chown(target, UID, GID, follow_symlinks=False))
        attempt(f"{prefix}lutime", lambda: os.utime(target, (WHEN, WHEN),
                                                    follow_symlinks=False))


def attack(name: str) -> None:
    path = f"/dev/{name}"
    metadata(f"{name} path ", path)
    try:
        fd = os.open(path, os.O_PATH)
    except OSError as e:
        print(f"{name} open_path: {errno.errorcode[e.errno]}", flush=True)
    else:
        metadata(f"{name} o_path ", fd, empty_path=True)
        metadata(f"{name} proc_fd ", f"/proc/self/fd/{fd}")
        os.close(fd)
    try:  # /dev/tty without a controlling terminal: ENXIO, as on Linux
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        print(f"{name} open: {errno.errorcode[e.errno]}", flush=True)
    else:
        metadata(f"{name} fd ", fd)
        metadata(f"{name} fd ", fd, empty_path=True)
        os.close(fd)
    try:
        st = os.stat(path)
        print(f"state {name} {st.st_mode & 0o7777:o} {st.st_uid} {st.st_gid} {st.st_mtime_ns}",
              flush=True)
    except OSError as e:
        print(f"state {name} {errno.errorcode[e.errno]}", flush=True)


def read(path: str, n: int) -> bytes:
    with open(path, "rb", buffering=0) as f:
        return f.read(n)


def write(path: str, data: bytes) -> int:
    fd = os.open(path, os.O_WRONLY)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def still_works() -> None:
    def check(name, ok):
        try:
            print(f"works {name}: {'ok' if ok() else 'WRONG'}", flush=True)
        except OSError as e:
            print(f"works {name}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)

    check("zero", lambda: read("/dev/zero", 4096) == bytes(4096))
    check("null_write", lambda: write("/dev/null", b"x" * 100) == 100)
    check("null_read", lambda: read("/dev/null", 10) == b"")
    check("urandom", lambda: len(set(read("/dev/urandom", 64))) > 8)
    check("random", lambda: len(read("/dev/random", 16)) == 16)
    check("full_read", lambda: read("/dev/full", 8) == bytes(8))
    check("full_write", lambda: write("/dev/full", b"x"))  # ENOSPC, always


def replace(names) -> None:
    """unlink, rename and replace, which must touch only the sandbox's /dev."""
    for name in names:
        path = f"/dev/{name}"
        attempt(f"{name} link", lambda: os.link(path, f"{path}.link"))
        attempt(f"{name} rename", lambda: os.rename(path, f"{path}.moved"))
        attempt(f"{name} rename_back", lambda: os.rename(f"{path}.moved", path))
        attempt(f"{name} mknod", lambda: os.mknod(f"{path}.node", 0o20666, os.stat(path).st_rdev))
        with open("/dev/replacement", "w") as f:
            f.write("not a device\n")
        attempt(f"{name} rename_over", lambda: os.rename("/dev/replacement", path))
        attempt(f"{name} unlink", lambda: os.unlink(path))


def main() -> None:
    names = sys.argv[1:]
    for name in names:
        attack(name)
    still_works()
    replace(names)


if __name__ == "__main__":
    main()
