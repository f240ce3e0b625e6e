"""The gofer's wire format: pure encoding and decoding, no I/O (the server and the client own
the socket).

One message is one SOCK_SEQPACKET datagram, so the kernel keeps message boundaries and ties
SCM_RIGHTS descriptors to the reply that carries them. A message is a header

    u32 length   (of the whole message; must equal the datagram's size)
    u32 id       (request id, echoed by the reply)
    u16 kind     (request: the operation's code; reply: OK, ERRNO or PROTOCOL)
    u16 zero

followed by the values of a fixed per-operation schema, each a

    i  signed 64-bit integer          u  unsigned 64-bit integer
    p  u32 length + a path or name: no NUL byte, at most PATH_MAX bytes
    b  u32 length + raw bytes

all little-endian or native ("=") as the two ends share a host. A message of more than
MAX_MESSAGE bytes, a length that disagrees, an unknown kind, a non-zero pad, a value that
runs past the end, trailing bytes: each is a ProtocolError, never a traceback.
"""

import struct
from dataclasses import dataclass
from typing import NamedTuple

from .. import abi

MAX_MESSAGE = 64 * 1024
# Follows every reply that carries descriptors, once the gofer has closed its own copies:
# until then the gofer holds the file description the guest gets, and the guest's close
# would not be its last (inotify's IN_CLOSE_WRITE would come late, at the gofer's close).
RELEASED = b"released"
HEADER = struct.Struct("=IIHH")
_LEN = struct.Struct("=I")
_INT = {"i": struct.Struct("=q"), "u": struct.Struct("=Q")}

# Reply kinds.
OK = 0
ERRNO = 1
PROTOCOL = 2


class ProtocolError(Exception):
    """A malformed message. `request_id` is the id of the request if it could be read."""

    def __init__(self, reason: str, request_id: int = 0):
        super().__init__(reason)
        self.request_id = request_id


@dataclass(frozen=True)
class Op:
    code: int
    name: str
    args: str  # schema of the request values
    results: str  # schema of an OK reply's values
    fds: int = 0  # descriptors an OK reply carries


_STAT = "uuuuuuuiiiiii"  # see StatResult
_STATFS = "iiuuuuuiiiii"  # see StatfsResult

OPS = {op.name: op for op in (
    Op(1, "open", "ipii", "", fds=1),  # mount, path, flags, mode
    Op(2, "stat", "ipi", _STAT),  # mount, path, follow
    Op(3, "mkdir", "ipi", ""),  # mount, path, mode
    Op(4, "mknod", "ipi", ""),  # mount, path, mode (type | permissions)
    Op(5, "unlink", "ip", ""),
    Op(6, "rmdir", "ip", ""),
    Op(7, "rename", "ipipi", ""),  # mount, old, mount2, new, flags
    Op(8, "link", "ipip", ""),  # mount, old, mount2, new
    Op(9, "symlink", "ipp", ""),  # mount, target, path
    Op(10, "readlink", "ip", "b"),
    Op(11, "listdir", "ipi", "iib"),  # mount, path, cookie -> next cookie, eof, entries
    Op(12, "chmod", "ipi", ""),
    Op(13, "chown", "ipiii", ""),  # mount, path, uid, gid, follow
    Op(14, "utimens", "ipiiiii", ""),  # mount, path, atime s, ns, mtime s, ns, follow
    Op(15, "truncate", "ipi", ""),
    Op(16, "statfs", "ip", _STATFS),
    Op(17, "getxattr", "ippi", "b"),  # mount, path, name, follow
    Op(18, "setxattr", "ippbii", ""),  # mount, path, name, value, flags, follow
    Op(19, "listxattr", "ipi", "b"),  # names, each NUL-terminated, as listxattr(2)
    Op(20, "removexattr", "ippi", ""),
)}
OPS_BY_CODE = {op.code: op for op in OPS.values()}


class StatResult(NamedTuple):
    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_rdev: int
    st_size: int
    st_blksize: int
    st_blocks: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int


class StatfsResult(NamedTuple):
    f_type: int
    f_bsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_fsid0: int
    f_fsid1: int
    f_namelen: int
    f_frsize: int
    f_flags: int


class DirEntry(NamedTuple):
    name: bytes
    ino: int
    type: int  # DT_* as getdents64 reports it
    cookie: int  # the host's d_off: listing again from here resumes after this entry


_DIRENT = struct.Struct("=QqBH")  # ino, cookie, type, name length; then the name


def pack_dirents(entries: list[DirEntry]) -> bytes:
    return b"".join(_DIRENT.pack(e.ino, e.cookie, e.type, len(e.name)) + e.name for e in entries)


def unpack_dirents(blob: bytes) -> list[DirEntry]:
    entries, pos = [], 0
    while pos < len(blob):
        if pos + _DIRENT.size > len(blob):
            raise ProtocolError("truncated directory entry")
        ino, cookie, kind, length = _DIRENT.unpack_from(blob, pos)
        pos += _DIRENT.size
        name = blob[pos:pos + length]
        if len(name) != length or not name or b"/" in name or b"\0" in name:
            raise ProtocolError("bad directory entry name")
        pos += length
        entries.append(DirEntry(name, ino, kind, cookie))
    return entries


def _encode_values(schema: str, values) -> bytes:
    if len(values) != len(schema):
        raise ProtocolError(f"expected {len(schema)} values, got {len(values)}")
    out = []
    for kind, value in zip(schema, values):
        if kind in _INT:
            if not isinstance(value, int):
                raise ProtocolError(f"value {value!r} is not an integer")
            try:
                out.append(_INT[kind].pack(value))
            except struct.error:
                raise ProtocolError(f"integer {value} out of range") from None
        else:
            if not isinstance(value, bytes):
                raise ProtocolError(f"value {value!r} is not bytes")
            _check_path(kind, value)
            out.append(_LEN.pack(len(value)) + value)
    return b"".join(out)


def _check_path(kind: str, value: bytes) -> None:
    # A NUL would silently cut the path short at the C boundary; PATH_MAX bounds it as the
    # kernel would.
    if kind == "p" and (b"\0" in value or len(value) > abi.PATH_MAX):
        raise ProtocolError("path contains NUL or exceeds PATH_MAX")


def _decode_values(schema: str, data: bytes, pos: int) -> list:
    values = []
    for kind in schema:
        if kind in _INT:
            if pos + 8 > len(data):
                raise ProtocolError("message ends inside an integer")
            values.append(_INT[kind].unpack_from(data, pos)[0])
            pos += 8
        else:
            if pos + 4 > len(data):
                raise ProtocolError("message ends inside a length")
            (length,) = _LEN.unpack_from(data, pos)
            pos += 4
            if pos + length > len(data):
                raise ProtocolError("bytes run past the end of the message")
            value = bytes(data[pos:pos + length])
            _check_path(kind, value)
            values.append(value)
            pos += length
    if pos != len(data):
        raise ProtocolError("trailing bytes after the last value")
    return values


def _frame(request_id: int, kind: int, body: bytes) -> bytes:
    length = HEADER.size + len(body)
    if length > MAX_MESSAGE:
        raise ProtocolError(f"message of {length} bytes exceeds {MAX_MESSAGE}", request_id)
    return HEADER.pack(length, request_id, kind, 0) + body


def _unframe(data: bytes) -> tuple[int, int]:
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message exceeds {MAX_MESSAGE} bytes")
    if len(data) < HEADER.size:
        raise ProtocolError("message shorter than its header")
    length, request_id, kind, pad = HEADER.unpack_from(data)
    if length != len(data) or pad:
        raise ProtocolError("bad message header", request_id)
    return request_id, kind


def encode_request(request_id: int, op: Op, args) -> bytes:
    return _frame(request_id, op.code, _encode_values(op.args, args))


def decode_request(data: bytes) -> tuple[int, Op, list]:
    request_id, code = _unframe(data)
    op = OPS_BY_CODE.get(code)
    if op is None:
        raise ProtocolError(f"unknown operation {code}", request_id)
    try:
        return request_id, op, _decode_values(op.args, data, HEADER.size)
    except ProtocolError as e:
        raise ProtocolError(f"{op.name}: {e}", request_id) from None


def encode_ok(request_id: int, op: Op, results) -> bytes:
    return _frame(request_id, OK, _encode_values(op.results, results))


def encode_errno(request_id: int, err: int) -> bytes:
    return _frame(request_id, ERRNO, _INT["i"].pack(err))


def encode_protocol_error(request_id: int, reason: str) -> bytes:
    return _frame(request_id, PROTOCOL, _encode_values("b", [reason.encode()[:1024]]))


def decode_reply(data: bytes, op: Op) -> tuple[int, int, list]:
    """(request id, kind, values): values per `op.results` for OK, [errno] for ERRNO,
    [reason] for PROTOCOL."""
    request_id, kind = _unframe(data)
    schema = {OK: op.results, ERRNO: "i", PROTOCOL: "b"}.get(kind)
    if schema is None:
        raise ProtocolError(f"unknown reply kind {kind}", request_id)
    return request_id, kind, _decode_values(schema, data, HEADER.size)
