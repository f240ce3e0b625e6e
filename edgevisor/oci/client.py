"""The control socket, the caller's side: one JSON request line to a container's holder,
one JSON answer line back (control.py is the holder's side).

Light on purpose: `start`, `kill`, `state` and `delete` import this and the state directory
only, so that each of docker's runtime calls starts quickly.
"""

import json
import socket

from . import OCIError
from .address import short

SOCKET_NAME = "control.sock"


def request(path: str, **fields) -> dict:
    """Ask the holder; OCIError with its answer's message when it refuses."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        try:
            with short(path) as address:
                s.connect(address)
        except OSError:
            raise OCIError("the container's sandbox is not running") from None
        s.sendall(json.dumps(fields).encode() + b"\n")
        return read_answer(s.makefile("rb"))


def read_answer(reader) -> dict:
    """The holder's next answer line; OCIError with its message when it refuses."""
    line = reader.readline()
    if not line:
        raise OCIError("the container's sandbox did not answer")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise OCIError(answer.get("error", "refused"))
    return answer
