"""The gofer: the only part of edgevisor that touches host files.

A separate process (server.py) holds a descriptor for the host root of each of the sandbox's
mounts and opens, creates, stats, lists, renames and unlinks files strictly beneath those roots
(fs.py), answering the Sentry over a unix socket (protocol.py) and donating the descriptors it
opens with SCM_RIGHTS; the Sentry's side is client.py.
"""

from .client import GoferClient, GoferProtocolError
from .server import serve, start_gofer

__all__ = ["GoferClient", "GoferProtocolError", "serve", "start_gofer"]
