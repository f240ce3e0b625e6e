"""Drive a command through a real pseudo-terminal, as a user at a shell would."""

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time


def converse(argv, typed: bytes, prompt=b"# ", resize=None, env=None, timeout=120):
    """Run argv with a 24x80 pty as its stdio; once `prompt` shows, resize the terminal to
    `resize` (rows, columns) as a user dragging the window would, and type `typed`; read until
    the command exits: (exit status, everything the terminal showed)."""
    master, slave = os.openpty()
    _set_size(slave, (24, 80))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    pending = typed
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if master in ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last holder of the slave has gone
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and prompt in shown:
                    if resize:
                        _set_size(master, resize)
                        proc.send_signal(signal.SIGWINCH)
                    os.write(master, pending)
                    pending = b""
            elif proc.poll() is not None:
                break
            elif resize and not pending:
                # docker drops a resize that comes before its exec is marked running, and
                # resizes only on SIGWINCH: say it again until the shell has seen it.
                proc.send_signal(signal.SIGWINCH)
        status = proc.wait(max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, shown.decode(errors="replace")


def _set_size(fd, size):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
