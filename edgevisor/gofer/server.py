"""The gofer process: owns the host roots of the sandbox's mounts and serves one Sentry over a
SOCK_SEQPACKET unix socket until the Sentry closes it."""

import array
import errno
import os
import socket

from .. import abi
from ..platform.helper import detach_helper
from ..platform.linux import prctl, seccomp_load
from . import fs, protocol
from . import allowlist

# (host path, read only[, shared: host users reach its files; True unless said]), by mount id
Mounts = list[tuple]


def handle(roots: list[fs.Root], data: bytes, msg_flags: int) -> tuple[bytes, list[int]]:
    """The reply to one received message, and the descriptors it donates (the caller closes
    them once sent). Never raises: whatever the bytes, the answer is a reply."""
    request_id = protocol.HEADER.unpack_from(data)[1] if len(data) >= protocol.HEADER.size else 0
    if msg_flags & socket.MSG_TRUNC:
        return protocol.encode_protocol_error(request_id, f"message exceeds {protocol.MAX_MESSAGE} bytes"), []
    if msg_flags & socket.MSG_CTRUNC:
        return protocol.encode_protocol_error(request_id, "the gofer accepts no descriptors"), []
    try:
        request_id, op, args = protocol.decode_request(data)
    except protocol.ProtocolError as e:
        return protocol.encode_protocol_error(e.request_id, str(e)), []
    fds = []
    try:
        result = fs.OPERATIONS[op.name](roots, *args)
        if op.fds:
            fds, result = [result], ()
        return protocol.encode_ok(request_id, op, result), fds
    except OSError as e:
        return protocol.encode_errno(request_id, e.errno or errno.EIO), []
    except Exception as e:  # noqa: BLE001 - a bug costs one request, not the session
        for fd in fds:
            os.close(fd)
        return protocol.encode_protocol_error(request_id, f"{op.name}: internal error {type(e).__name__}"), []


def serve_roots(sock: socket.socket, roots: list[fs.Root]) -> None:
    """Answer requests until the peer closes the socket (or sends an empty message, which
    SOCK_SEQPACKET cannot tell from the end)."""
    while True:
        try:
            # No room for ancillary data: descriptors sent to the gofer are never installed.
            data, _, msg_flags, _ = sock.recvmsg(protocol.MAX_MESSAGE + 1)
        except OSError:
            return
        if not data:
            return
        reply, fds = handle(roots, data, msg_flags)
        try:
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            sock.sendmsg([reply], rights)
        except OSError:
            return
        finally:
            for fd in fds:
                os.close(fd)
        if fds:
            try:
                sock.sendmsg([protocol.RELEASED])
            except OSError:
                return


def serve(sock: socket.socket, mounts: Mounts) -> None:
    """Open each mount's root, then serve `sock` until it closes. Takes over the process's
    umask: modes arrive with the guest's umask applied and must not be masked twice."""
    os.umask(0)
    roots = [fs.open_root(*mount) for mount in mounts]
    try:
        serve_roots(sock, roots)
    finally:
        for root in roots:
            os.close(root.fd)


def start_gofer(mounts: Mounts, program: bytes | None = None) -> tuple[int, socket.socket]:
    """Fork the gofer; returns its pid and the Sentry's end of its socket. The roots are opened
    here, so a missing or unreadable mount is an OSError in the caller, not a dead child.
    `program`: allowlist.template(), built before (the Sentry's own start cannot build it).

    The gofer follows the thread that calls this (PR_SET_PDEATHSIG fires when that thread
    exits), so call it from a thread that lives as long as the sandbox."""
    roots = [fs.open_root(*mount) for mount in mounts]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        program = allowlist.for_socket(program or allowlist.template(), theirs.fileno())
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                _become_gofer(theirs, roots, program, parent)
                status = 0
            finally:
                os._exit(status)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
        for root in roots:
            os.close(root.fd)
    return pid, ours


def _become_gofer(sock: socket.socket, roots: list[fs.Root], program: bytes, parent: int) -> None:
    null = os.open("/dev/null", os.O_RDWR)
    if not detach_helper(parent, {sock.fileno(), *(root.fd for root in roots)}, null):
        return
    os.umask(0)  # as in serve()
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    seccomp_load(program, 0)
    serve_roots(sock, roots)

