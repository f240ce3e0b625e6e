"""The host's side of an escape attempt: what it looked like before, and whether it changed.

A test builds a HOST directory with `build_host`, snapshots it with `HostState.take`, runs
an attempt in a sandbox and calls `assert_unchanged`, which compares:

- the host marker HOST/marker and HOST/victim, outside every mount (content, mode, owner,
  mtime, ctime), and HOST's own listing;
- the host's device nodes /dev/{null,zero,full,random,urandom,tty} (kind, mode, owner, rdev,
  and that no mtime went back: the host's own programs move /dev/null's and /dev/tty's times
  forward all the time, while a guest that reached them set them to any date it liked);
- the rootfs HOST/root (a busybox tree) and a few files of the host's own / with its listing;
- the read-only volume HOST/ro (every name, its stat and content);
- host-wide kernel settings an escape would change (host name, domain name, core_pattern,
  modprobe, uevent_helper where they exist);
and checks the writable volume HOST/vol for what would turn it into host privilege: no file
with S_ISUID or S_ISGID, no security.* or trusted.* xattr, no device node, and no name for a
file from outside it (a hard link)."""

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import NamedTuple

MARKER = b"HOST-MARKER: outside every mount\n"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
HOST_FILES = ("/etc/passwd", "/etc/shadow", "/etc/hostname", "/usr/bin/busybox", "/bin/sh")
KNOBS = ("/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname",
         "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
         "/sys/kernel/uevent_helper")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


class Host(NamedTuple):
    dir: Path   # HOST: the marker and victim, and the three below
    root: Path  # the rootfs (--rootfs)
    vol: Path   # -v HOST/vol:/v
    ro: Path    # -v HOST/ro:/ro:ro

    def flags(self) -> tuple[str, ...]:
        return ("--rootfs", str(self.root), "-v", f"{self.vol}:/v", "-v", f"{self.ro}:/ro:ro")


def build_host(top: Path, binaries: dict[str, str]) -> Host:
    """HOST with a busybox rootfs holding `binaries` (name -> static executable) in /bin."""
    host = Host(top, top / "root", top / "vol", top / "ro")
    top.mkdir(parents=True)
    (host.dir / "marker").write_bytes(MARKER)
    (host.dir / "victim").write_bytes(b"HOST-VICTIM\n")
    for d in ("bin", "etc", "tmp", "proc", "dev", "sys", "v", "ro"):
        (host.root / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, host.root / "bin/busybox")
    for name, exe in binaries.items():
        shutil.copy(exe, host.root / "bin" / name)
    (host.root / "bin/sh").symlink_to("busybox")
    (host.root / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    host.vol.mkdir()
    (host.vol / "file").write_text("vol\n")
    host.ro.mkdir()
    (host.ro / "file").write_text("ro\n")
    shutil.copy(BUSYBOX, host.ro / "busybox")
    return host


def _stat(path: str, times: bool = True) -> tuple:
    st = os.lstat(path)
    fields = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
              st.st_nlink, st.st_rdev, st.st_size)
    return fields + ((st.st_mtime_ns, st.st_ctime_ns) if times else ())


def _content(path: str) -> str | None:
    if os.path.islink(path):
        return os.readlink(path)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    return None


def tree(top: Path) -> dict[str, tuple]:
    """Every name under `top` (and top itself): its stat and content (or link target)."""
    found = {".": _stat(str(top))}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            found[os.path.relpath(p, top)] = (_stat(p), _content(p))
    return found


def _knobs() -> dict[str, str]:
    values = {}
    for path in KNOBS:
        try:
            with open(path) as f:
                values[path] = f.read()
        except OSError:
            pass
    return values


def _identities(top: Path) -> set[tuple[int, int]]:
    ids = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            ids.add((st.st_dev, st.st_ino))
    return ids


def volume_privileges(host: Host) -> list[str]:
    """What on the writable volume a host user could turn into privilege, one line each."""
    outside = {(st.st_dev, st.st_ino) for st in map(os.lstat, (
        host.dir / "marker", host.dir / "victim", *HOST_FILES))}
    outside |= _identities(host.root) | _identities(host.ro)
    found = []
    for dirpath, dirnames, filenames in os.walk(host.vol):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISDIR(st.st_mode):
                found.append(f"{p}: set-id mode {oct(st.st_mode)}")
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(f"{p}: device node {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
            if (st.st_dev, st.st_ino) in outside:
                found.append(f"{p}: a name for a file outside the volume")
            if not stat.S_ISLNK(st.st_mode):
                found += [f"{p}: xattr {x}" for x in os.listxattr(p)
                          if x.startswith(("security.", "trusted."))]
    return found


def _device_mtimes() -> list[int]:
    return [os.lstat(f"/dev/{d}").st_mtime_ns for d in DEVICES]


class HostState(NamedTuple):
    parts: dict[str, object]
    device_mtimes: list[int]

    @classmethod
    def take(cls, host: Host) -> "HostState":
        return cls({
            "host dir": sorted(os.listdir(host.dir)) + [_stat(str(host.dir))],
            "marker": (_stat(str(host.dir / "marker")), (host.dir / "marker").read_bytes()),
            "victim": (_stat(str(host.dir / "victim")), (host.dir / "victim").read_bytes()),
            "devices": {d: _stat(f"/dev/{d}", times=False) for d in DEVICES},
            "rootfs": tree(host.root),
            "host /": (sorted(os.listdir("/")),
                       {p: (_stat(p), _content(p)) for p in HOST_FILES if os.path.lexists(p)}),
            "ro volume": tree(host.ro),
            "kernel settings": _knobs(),
        }, _device_mtimes())

    def changes(self, host: Host) -> list[str]:
        now = HostState.take(host).parts
        problems = [f"{part} changed: {self.parts[part]!r} -> {now[part]!r}"[:2000]
                    for part in self.parts if now[part] != self.parts[part]]
        problems += [f"/dev/{d}: mtime went back from {before} to {after}"
                     for d, before, after in zip(DEVICES, self.device_mtimes, _device_mtimes())
                     if after < before]
        return problems + volume_privileges(host)

    def assert_unchanged(self, host: Host) -> None:
        problems = self.changes(host)
        assert not problems, "the host changed:\n" + "\n".join(problems)
