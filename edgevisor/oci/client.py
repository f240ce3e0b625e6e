"""The control socket, the caller's side: one JSON request line to a container's holder,
one JSON answer line back (control.py is the holder's side).

Light on purpose: `start`, `kill`, `state` and `delete` import this and the state directory
only, so that each of docker's runtime calls starts quickly. That is why it speaks through
`_socket`: the socket module's import (its enums, selectors) is a fifth of such a call's.
"""

import _socket
import json

from . import OCIError
from .address import short

SOCKET_NAME = "control.sock"


def request(path: str, **fields) -> dict:
    """Ask the holder; OCIError with its answer's message when it refuses."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            with short(path) as address:
                s.connect(address)
        except OSError:
            raise OCIError("the container's sandbox is not running") from None
        s.sendall(json.dumps(fields).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n") and (chunk := s.recv(65536)):
            line += chunk
        return answer(line)
    finally:
        s.close()


def read_answer(reader) -> dict:
    """The holder's next answer line from `reader` (a file); see answer."""
    return answer(reader.readline())


def answer(line: bytes) -> dict:
    """The holder's answer; OCIError with its message when it refuses."""
    if not line:
        raise OCIError("the container's sandbox did not answer")
    said = json.loads(line)
    if not said.get("ok"):
        raise OCIError(said.get("error", "refused"))
    return said
