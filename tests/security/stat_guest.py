"""Run in a sandbox by test_stat_in_view.py: the guest side.

`tree`: builds the same small tree in the rootfs (/t), the sandbox's /tmp (/tmp/t) and a
volume (/vol/t): directories, a file, a directory of another user's with mode 0700, and
symlinks that lead within it, across mounts, into /proc and /sys, nowhere and in a loop.

`dump SPECS`: each spec (`CALL START PATH` joined by tabs, CALL one of newfstatat,
newfstatat-nofollow, statx, statx-nofollow, readlink, or one of the opens in OPENS; START
`cwd`, a directory to open as the dirfd, or `fd:N`, a descriptor the guest was handed)
answered, one line each. Identities (`Identities`) and the absence of times let two
sandboxes' dumps compare equal when every call named the same file.

`drop`, `setuid`: stats of the 0700 directories' file, before and after the task gave up its
capabilities over files (capset) or became uid 1000 (which drops them). `chroot`: stats
before and after a chroot to /t."""

import ctypes
import errno
import fcntl
import os
import struct
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
SYS_STATX = 332 if os.uname().machine == "x86_64" else 291
SYS_CAPSET = 126 if os.uname().machine == "x86_64" else 91
AT_SYMLINK_NOFOLLOW = 0x100
OWNER = 1234

LINKS = {
    "rel": "d/f", "abs": "/t/d", "up": "../..", "proc": "/proc/self", "sys": "/sys",
    "tmp": "/tmp/t", "vol": "/vol/t", "dangling": "nope", "loop": "loop", "dir": "d/",
    "mtab": "/etc/mtab", "exe": "/proc/self/exe",
}


def tree() -> None:
    for top in ("/t", "/tmp/t", "/vol/t"):
        if os.path.exists(f"{top}/d/f"):
            continue  # the volume's, made by an earlier sandbox
        os.makedirs(f"{top}/d/sub", exist_ok=True)
        with open(f"{top}/d/f", "w") as f:
            f.write("x" * 100)
        os.makedirs(f"{top}/secret", mode=0o700, exist_ok=True)
        with open(f"{top}/secret/inner", "w") as f:
            f.write("s")
        os.chown(f"{top}/secret", OWNER, OWNER)
        os.chmod(f"{top}/secret", 0o700)
        for name, target in LINKS.items():
            os.symlink(target, f"{top}/{name}")
            os.symlink(target, f"{top}/d/{name}")


class Identities:
    """A file's identity as two sandboxes can compare it: its file system by name (where
    the dump's anchors are), and, on the file systems each sandbox makes afresh (the overlay,
    the scratch tmpfs, devpts, the Sentry's /proc and /sys), its inode by order of
    appearance (the overlay's files made in the sandbox are on its upper layer's); elsewhere
    (the host's root and volumes) the inode number itself."""

    ANCHORS = (("root", "/"), ("upper", "/t/d/f"), ("tmp", "/tmp"), ("dev", "/dev"),
               ("pts", "/dev/pts"), ("proc", "/proc"), ("sys", "/sys"), ("vol", "/vol"),
               ("host", "/usr/bin/env"))
    FRESH = ("root", "upper", "tmp", "dev", "pts", "proc", "sys")

    def __init__(self):
        self.labels: dict[int, str] = {}
        for label, path in self.ANCHORS:
            fd = os.open(path, os.O_PATH)
            self.labels.setdefault(os.fstat(fd).st_dev, label)
            os.close(fd)
        self.inos: dict[tuple[int, int], int] = {}

    def __call__(self, dev: int, ino: int) -> str:
        label = self.labels.get(dev, f"other{os.major(dev)}:{os.minor(dev)}")
        if label in self.FRESH:
            return f"{label}:{self.inos.setdefault((dev, ino), len(self.inos))}"
        return f"{label}:{ino}"


def newfstatat(dirfd: int, path: bytes, nofollow: bool, ids=None) -> str:
    try:
        st = os.stat(path, dir_fd=None if dirfd < 0 else dirfd, follow_symlinks=not nofollow)
    except OSError as e:
        return errno.errorcode[e.errno]
    identity = f"{st.st_dev}:{st.st_ino}" if ids is None else ids(st.st_dev, st.st_ino)
    return (f"{identity} {st.st_mode:o} {st.st_nlink} {st.st_uid} {st.st_gid} "
            f"{st.st_rdev} {st.st_size} {st.st_blocks} {st.st_blksize}")


def statx(dirfd: int, path: bytes, nofollow: bool, ids) -> str:
    buf = ctypes.create_string_buffer(256)
    if LIBC.syscall(SYS_STATX, dirfd, path, AT_SYMLINK_NOFOLLOW if nofollow else 0, 0xFFF, buf):
        return errno.errorcode[ctypes.get_errno()]
    raw = buf.raw
    mask, blksize, attrs, nlink, uid, gid, mode = struct.unpack_from("=IIQIIIH", raw, 0)
    ino, size, blocks, attrs_mask = struct.unpack_from("=QQQQ", raw, 32)
    btime = struct.unpack_from("=qI", raw, 80)
    rmaj, rmin, dmaj, dmin = struct.unpack_from("=IIII", raw, 128)
    return (f"{mask:x} {ids(os.makedev(dmaj, dmin), ino)} {mode:o} {nlink} {uid} {gid} "
            f"{rmaj}:{rmin} {size} {blocks} {blksize} {attrs:x} {attrs_mask:x} {btime} "
            f"{raw[144:].hex()}")


def open_(dirfd: int, path: bytes, flags: int, ids=None) -> str:
    """An open's answer: the descriptor's number, flags, close-on-exec, host stat and (for
    a directory) its names, or the errno."""
    try:
        fd = os.open(path, flags, dir_fd=None if dirfd < 0 else dirfd)
    except OSError as e:
        return errno.errorcode[e.errno]
    try:
        st = os.fstat(fd)
        identity = f"{st.st_dev}:{st.st_ino}" if ids is None else ids(st.st_dev, st.st_ino)
        names = sorted(os.listdir(fd)) if os.path.stat.S_ISDIR(st.st_mode) else []
        return (f"fd {fd} flags {fcntl.fcntl(fd, fcntl.F_GETFL):o} "
                f"cloexec {fcntl.fcntl(fd, fcntl.F_GETFD)} {identity} "
                f"{st.st_mode:o} {st.st_size} {len(names)} {names[:5]}")
    finally:
        os.close(fd)


def readlink(dirfd: int, path: bytes) -> str:
    try:
        return os.readlink(path, dir_fd=None if dirfd < 0 else dirfd).decode(errors="replace")
    except OSError as e:
        return errno.errorcode[e.errno]


OPENS = {b"open": os.O_RDONLY | os.O_CLOEXEC, b"open-nofollow": os.O_RDONLY | os.O_NOFOLLOW,
         b"open-dir": os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
         b"open-nonblock": os.O_RDONLY | os.O_NONBLOCK, b"open-write": os.O_WRONLY,
         b"open-path": os.O_PATH}


def dump(specs_file: str) -> None:
    """One line per spec: its answer, identities as `Identities` gives them."""
    ids = Identities()
    starts: dict[bytes, int | None] = {}
    os.chdir("/t")
    for line in open(specs_file, "rb").read().splitlines():
        call, start, path = line.split(b"\t")
        if start == b"cwd":
            dirfd = -100  # AT_FDCWD
        elif start.startswith(b"fd:"):
            dirfd = int(start[3:])  # one the guest was handed
        else:
            if start not in starts:
                try:
                    starts[start] = os.open(start, os.O_PATH | os.O_DIRECTORY)
                except OSError:
                    starts[start] = None
            dirfd = starts[start]
            if dirfd is None:
                print("no start")
                continue
        if call == b"readlink":
            print(readlink(dirfd, path))
        elif call in OPENS:
            print(open_(dirfd, path, OPENS[call], ids))
        elif call.startswith(b"statx"):
            print(statx(dirfd, path, call.endswith(b"-nofollow"), ids))
        else:
            print(newfstatat(dirfd, path, call.endswith(b"-nofollow"), ids))


def drop_file_capabilities() -> None:
    """capset: keep nothing (the guest is root, so it still owns root's files)."""
    header = struct.pack("=Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = bytes(24)  # effective, permitted, inheritable: 0, in two 32-bit halves
    if LIBC.syscall(SYS_CAPSET, header, data):
        raise OSError(ctypes.get_errno(), "capset")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "tree":
        tree()
    elif what == "dump":
        dump(sys.argv[2])
    elif what in ("drop", "setuid"):
        # First as root, which the Sentry may come to answer from its C loop; then without
        # the capabilities that search every directory: each answer must be the new one.
        path = "/t/secret/inner"
        before = [newfstatat(-1, path.encode(), False) for _ in range(3)]
        if what == "drop":
            drop_file_capabilities()
        else:
            os.setgroups([])
            os.setgid(1000)
            os.setuid(1000)
        after = [newfstatat(-1, p.encode(), False) for p in (path, "/tmp/t/secret/inner", "/vol/t/secret/inner", path)]
        after += [open_(-1, p.encode(), os.O_RDONLY) for p in (path, "/vol/t/secret")]
        print(" ".join(s.split()[0] for s in before), "|", " ".join(after))
    elif what == "chroot":
        # Trusted first; then a root of its own, which absolute paths, `..` and absolute
        # symlinks must now start from.
        before = [newfstatat(-1, b"/t/d/f", False) for _ in range(3)]
        os.chroot("/t")
        os.chdir("/d")
        after = [newfstatat(-1, p, nofollow) for p, nofollow in (
            (b"/d/f", False), (b"/t/d/f", False), (b"../../../d/f", False), (b"rel", False),
            (b"abs", False), (b"/abs", True), (b"/up/d/f", False))]
        print(" ".join(s.split()[0] for s in before), "|", " | ".join(after))
    else:
        raise SystemExit(f"unknown: {what}")
