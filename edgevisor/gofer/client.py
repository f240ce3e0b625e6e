"""The Sentry's side of the gofer: one method per operation, OSError(errno) for the gofer's
errors, received descriptors returned to the caller, who owns them."""

import array
import errno
import os
import socket
import threading

from .. import abi
from . import protocol
from .protocol import DirEntry, StatfsResult, StatResult


class GoferProtocolError(OSError):
    """The gofer could not parse a request, or its reply could not be parsed: a bug on one
    side, not a file system error. An OSError (EPROTO) so that callers that map OSErrors to
    guest errnos still do something sane with it."""

    def __init__(self, reason: str):
        super().__init__(errno.EPROTO, reason)


class GoferClient:
    """Thread-safe: one request is in flight at a time."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._lock = threading.Lock()
        self._next_id = 1

    def close(self) -> None:
        self._sock.close()

    def _call(self, name: str, *args) -> tuple[list, list[int]]:
        op = protocol.OPS[name]
        with self._lock:
            request_id = self._next_id
            self._next_id = self._next_id % 0xFFFFFFFF + 1
            try:
                message = protocol.encode_request(request_id, op, args)
            except protocol.ProtocolError as e:
                raise GoferProtocolError(f"{name}: {e}") from None
            self._sock.sendmsg([message])
            data, fds = self._receive(op.fds)
        try:
            reply_id, kind, values = protocol.decode_reply(data, op)
            if reply_id != request_id and not (kind == protocol.PROTOCOL and reply_id == 0):
                raise protocol.ProtocolError(f"reply {reply_id} to request {request_id}")
            if kind == protocol.ERRNO:
                raise OSError(values[0], os.strerror(values[0]))
            if kind == protocol.PROTOCOL:
                raise GoferProtocolError(f"{name}: {values[0].decode(errors='replace')}")
            if len(fds) != op.fds:
                raise protocol.ProtocolError(f"{len(fds)} descriptors, expected {op.fds}")
        except protocol.ProtocolError as e:
            _close_all(fds)
            raise GoferProtocolError(f"{name}: {e}") from None
        except BaseException:
            _close_all(fds)
            raise
        return values, fds

    def _wait_released(self, fds: list[int]) -> None:
        """Returns once the gofer has closed its copies of `fds` (protocol.RELEASED)."""
        try:
            released = self._sock.recv(len(protocol.RELEASED) + 1)
        except BaseException:
            _close_all(fds)
            raise
        if released != protocol.RELEASED:
            _close_all(fds)
            if not released:
                raise ConnectionError("the gofer closed its socket")
            raise GoferProtocolError("descriptors not released")

    def _receive(self, max_fds: int) -> tuple[bytes, list[int]]:
        fds = array.array("i")
        space = socket.CMSG_SPACE(max(max_fds, 1) * fds.itemsize)
        data, ancdata, flags, _ = self._sock.recvmsg(protocol.MAX_MESSAGE + 1, space, socket.MSG_CMSG_CLOEXEC)
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        if max_fds and (fds or flags & socket.MSG_CTRUNC):  # the gofer sent descriptors
            self._wait_released(fds)
        if not data:
            _close_all(fds)
            raise ConnectionError("the gofer closed its socket")
        if flags & socket.MSG_CTRUNC and not fds and max_fds:
            # The kernel could not install the donated descriptor: our table is full (its
            # scm_detach_fds sets MSG_CTRUNC on EMFILE), as open(2) at the limit says.
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            _close_all(fds)
            raise GoferProtocolError("reply truncated")
        return data, list(fds)

    # One method per operation. Paths are bytes relative to the mount's root.

    def open(self, mount: int, path: bytes, flags: int, mode: int = 0) -> int:
        """A host descriptor (close-on-exec) for path, opened with flags."""
        return self._call("open", mount, path, flags, mode)[1][0]

    def stat(self, mount: int, path: bytes, follow: bool = True) -> StatResult:
        return StatResult(*self._call("stat", mount, path, int(follow))[0])

    def mkdir(self, mount: int, path: bytes, mode: int) -> None:
        self._call("mkdir", mount, path, mode)

    def mknod(self, mount: int, path: bytes, mode: int) -> None:
        self._call("mknod", mount, path, mode)

    def unlink(self, mount: int, path: bytes) -> None:
        self._call("unlink", mount, path)

    def rmdir(self, mount: int, path: bytes) -> None:
        self._call("rmdir", mount, path)

    def rename(self, mount: int, old: bytes, mount2: int, new: bytes, flags: int = 0) -> None:
        self._call("rename", mount, old, mount2, new, flags)

    def link(self, mount: int, old: bytes, mount2: int, new: bytes) -> None:
        self._call("link", mount, old, mount2, new)

    def symlink(self, mount: int, target: bytes, path: bytes) -> None:
        self._call("symlink", mount, target, path)

    def readlink(self, mount: int, path: bytes) -> bytes:
        return self._call("readlink", mount, path)[0][0]

    def listdir(self, mount: int, path: bytes, cookie: int = 0) -> tuple[list[DirEntry], int, bool]:
        """One page: (entries, the cookie to continue from, whether the end was reached)."""
        next_cookie, eof, blob = self._call("listdir", mount, path, cookie)[0]
        try:
            return protocol.unpack_dirents(blob), next_cookie, bool(eof)
        except protocol.ProtocolError as e:
            raise GoferProtocolError(f"listdir: {e}") from None

    def listdir_all(self, mount: int, path: bytes) -> list[DirEntry]:
        entries, cookie, eof = self.listdir(mount, path)
        while not eof:
            page, cookie, eof = self.listdir(mount, path, cookie)
            entries += page
        return entries

    def chmod(self, mount: int, path: bytes, mode: int) -> None:
        self._call("chmod", mount, path, mode)

    def chown(self, mount: int, path: bytes, uid: int, gid: int, follow: bool = True) -> None:
        self._call("chown", mount, path, uid, gid, int(follow))

    def utimens(self, mount: int, path: bytes, atime: tuple[int, int] = (0, abi.UTIME_NOW),
                mtime: tuple[int, int] = (0, abi.UTIME_NOW), follow: bool = True) -> None:
        """Times as (seconds, nanoseconds); nanoseconds may be UTIME_NOW or UTIME_OMIT."""
        self._call("utimens", mount, path, *atime, *mtime, int(follow))

    def truncate(self, mount: int, path: bytes, length: int) -> None:
        self._call("truncate", mount, path, length)

    def statfs(self, mount: int, path: bytes) -> StatfsResult:
        return StatfsResult(*self._call("statfs", mount, path)[0])

    def getxattr(self, mount: int, path: bytes, name: bytes, follow: bool = True) -> bytes:
        return self._call("getxattr", mount, path, name, int(follow))[0][0]

    def setxattr(self, mount: int, path: bytes, name: bytes, value: bytes, flags: int = 0,
                 follow: bool = True) -> None:
        self._call("setxattr", mount, path, name, value, flags, int(follow))

    def listxattr(self, mount: int, path: bytes, follow: bool = True) -> list[bytes]:
        names = self._call("listxattr", mount, path, int(follow))[0][0]
        return [n for n in names.split(b"\0") if n]

    def removexattr(self, mount: int, path: bytes, name: bytes, follow: bool = True) -> None:
        self._call("removexattr", mount, path, name, int(follow))


def _close_all(fds) -> None:
    for fd in fds:
        os.close(fd)
