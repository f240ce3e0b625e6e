"""An operation server for the file-system conformance tests: one JSON request per line on
stdin, one JSON answer per line on stdout, `["ok", value]` or `["err", "ENOENT"]`.

    fs_opserver.py ANCHOR [--chroot] [--no-reset]

The same script runs sandboxed (ANCHOR is /tmp/fsroot on the guest's tmpfs, or a volume's
mountpoint) and natively as root (with --chroot it first chroots into ANCHOR, so that `..`
and absolute paths cannot reach the host beyond it). Paths in requests are relative to the
server's working directory, or start with "@/", which stands for the base directory
BASE = ANCHOR/h1/.../h8 (as an absolute path, which differs per server); readlink and the tree
snapshot turn targets beneath BASE back into "@/...", so that both servers' answers compare.
The chain h1..h8 above BASE gives `..` room to climb while staying beneath ANCHOR on both sides.
At start the server empties ANCHOR and makes the chain (unless --no-reset: the resolution
property only reads a tree the test built).
"""

import ctypes
import errno
import json
import os
import stat
import sys

CHAIN = tuple(f"h{i}" for i in range(1, 9))
RENAME_FLAGS = {"plain": 0, "noreplace": 1, "exchange": 2}  # RENAME_NOREPLACE, RENAME_EXCHANGE

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint)
_AT_FDCWD = -100


class Server:
    def __init__(self, anchor: str, chrooted: bool = False):
        self.anchor = anchor.rstrip("/") or "/"
        self.chrooted = chrooted
        prefix = "" if self.anchor == "/" else self.anchor
        self.base = prefix + "/" + "/".join(CHAIN)

    # Paths ------------------------------------------------------------------------------

    def path(self, p: str) -> str:
        return self.base + p[1:] if p.startswith("@/") or p == "@" else p

    def unpath(self, target: str) -> str:
        if target == self.base or target.startswith(self.base + "/"):
            return "@" + target[len(self.base):]
        return target

    # Operations -------------------------------------------------------------------------

    def op_reset(self):
        if self.anchor == "/" and not self.chrooted:
            raise OSError(errno.EPERM, "refusing to empty the real /")
        os.chdir(self.anchor)
        remove_contents(self.anchor)
        os.makedirs(self.base, 0o755)
        os.chdir(self.base)

    def op_mkdir(self, p, mode):
        os.mkdir(self.path(p), mode)

    def op_symlink(self, target, p):
        os.symlink(self.path(target), self.path(p))

    def op_rename(self, old, new, how):
        if _libc.renameat2(_AT_FDCWD, os.fsencode(self.path(old)), _AT_FDCWD,
                           os.fsencode(self.path(new)), RENAME_FLAGS[how]) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def op_unlink(self, p):
        os.unlink(self.path(p))

    def op_rmdir(self, p):
        os.rmdir(self.path(p))

    def op_link(self, old, new, follow):
        os.link(self.path(old), self.path(new), follow_symlinks=follow)

    def op_open(self, p, flags, mode):
        fd = os.open(self.path(p), flags, mode)
        try:
            return summary(os.fstat(fd))
        finally:
            os.close(fd)

    def op_write(self, p, n):
        """Append n bytes; what fstat and then stat say."""
        fd = os.open(self.path(p), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"x" * n)
            after = summary(os.fstat(fd))
        finally:
            os.close(fd)
        return [after, summary(os.stat(self.path(p)))]

    def op_truncate(self, p, n):
        os.truncate(self.path(p), n)
        return summary(os.stat(self.path(p)))

    def op_stat(self, p):
        return summary(os.stat(self.path(p)))

    def op_lstat(self, p):
        return summary(os.lstat(self.path(p)))

    def op_readlink(self, p):
        return self.unpath(os.readlink(self.path(p)))

    def op_listdir(self, p):
        return sorted(os.listdir(self.path(p)))

    def op_chdir(self, p):
        """chdir, then where the cwd is relative to BASE; back to BASE when it left BASE's
        subtree, so that later relative paths cannot climb out of ANCHOR."""
        os.chdir(self.path(p))
        try:
            where = os.getcwd()
        except FileNotFoundError:
            return "deleted"
        rel = self.unpath(where)
        if not rel.startswith("@"):
            os.chdir(self.base)
            return "reset"
        return rel

    def op_getcwd(self):
        try:
            return self.unpath(os.getcwd())
        except FileNotFoundError:
            return "deleted"

    def op_tree(self):
        """Everything beneath ANCHOR: kind, permissions, link count, size, symlink target,
        and which names share an inode (as the index of the first name with it)."""
        out, first = [], {}
        for dirpath, dirnames, filenames in os.walk(self.anchor):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                entry = [os.path.relpath(full, self.anchor), *summary(st)]
                if stat.S_ISLNK(st.st_mode):
                    entry.append(self.unpath(os.readlink(full)))
                elif not stat.S_ISDIR(st.st_mode):
                    entry.append(first.setdefault((st.st_dev, st.st_ino), len(out)))
                out.append(entry)
        return out

    def op_resolve(self, start, p):
        """For the resolution property: where p leads from `start` (realpath), what
        p/marker and p hold, and the name the descriptor of p gets in /proc/self/fd."""
        os.chdir(self.path(start))
        p = self.path(p)
        return {
            "realpath": self.unpath(os.path.realpath(p)),
            "marker": attempt(read_text, os.path.join(p, "marker")),
            "file": attempt(read_text, p),
            "kind": attempt(lambda: summary(os.stat(p))[0]),
            "fd": attempt(self.fd_name, p),
        }

    def fd_name(self, p):
        fd = os.open(p, os.O_RDONLY)
        try:
            return self.unpath(os.readlink(f"/proc/self/fd/{fd}"))
        finally:
            os.close(fd)


def remove_contents(top: str) -> None:
    """rm -rf top/*, by lstat alone: shutil.rmtree would also insist that fstat and lstat
    agree, which is the escape tests' business."""
    for entry in os.scandir(top):
        if entry.is_dir(follow_symlinks=False):
            remove_contents(entry.path)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


def read_text(p):
    with open(p, "rb") as f:
        return f.read(200).decode(errors="replace")


def errname(e: OSError) -> str:
    if e.errno is None:  # not from a syscall (shutil's own complaints): say what it was
        return f"{type(e).__name__}: {e}"
    return errno.errorcode.get(e.errno, str(e.errno))


def attempt(call, *args):
    try:
        return ["ok", call(*args)]
    except OSError as e:
        return ["err", errname(e)]


def summary(st) -> list:
    """What must agree between the sandbox and Linux: kind, permission bits, link count,
    and a regular file's size (a directory's is the file system's business, a symlink's is
    its target's length, which differs with ANCHOR: readlink and the tree compare targets)."""
    mode = st.st_mode
    kind = ("d" if stat.S_ISDIR(mode) else "f" if stat.S_ISREG(mode)
            else "l" if stat.S_ISLNK(mode) else "o")
    out = [kind, stat.S_IMODE(mode), st.st_nlink]
    if kind == "f":
        out.append(st.st_size)
    return out


def main() -> int:
    anchor, options = sys.argv[1], sys.argv[2:]
    chrooted = "--chroot" in options
    if chrooted:
        os.chroot(anchor)
        anchor = "/"
    os.makedirs(anchor, exist_ok=True)
    os.umask(0o022)
    server = Server(anchor, chrooted)
    if "--no-reset" not in options:
        server.op_reset()
    print(json.dumps(["ready"]), flush=True)
    for line in sys.stdin:
        name, *args = json.loads(line)
        try:
            result = ["ok", getattr(server, "op_" + name)(*args)]
        except OSError as e:
            result = ["err", errname(e)]
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
