"""The controlling terminal passes through: the guest is the foreground job, ^C reaches it once."""

import os
import pty
import select
import time

from ..support import EDGEVISOR


def _spawn_on_pty(argv):
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    return pid, master


def _read_until(master, needle: bytes, timeout=30) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_guest_is_the_foreground_job_and_gets_ctrl_c_once(platform):
    script = ("import os, signal, sys, time\n"
              "hits = []\n"
              "signal.signal(signal.SIGINT, lambda *a: hits.append(1))\n"
              "print('tty', os.isatty(0), 'fg', os.tcgetpgrp(0) == os.getpgrp(), flush=True)\n"
              "print('ready', flush=True)\n"
              "time.sleep(1.5)\n"
              "print('hits', len(hits), flush=True)\n")
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--",
                                 "python3", "-c", script])
    out = _read_until(master, b"ready")
    assert b"tty True fg True" in out, out
    os.write(master, b"\x03")  # ^C from the terminal
    out += _read_until(master, b"hits")
    out += _read_until(master, b"\n", timeout=5)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert b"hits 1" in out, out
    assert os.waitstatus_to_exitcode(status) == 0


def test_dev_tty_is_the_guests_terminal(platform):
    """/dev/tty opens the guest's controlling terminal (not the gofer's, which has none)."""
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                                 "echo via-dev-tty > /dev/tty && echo done"])
    out = _read_until(master, b"done")
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert b"via-dev-tty" in out and b"done" in out, out
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_signal_to_edgevisor_reaches_the_foreground_job_on_a_terminal(platform):
    """SIGTERM to edgevisor goes to the job in the terminal's foreground, as ^C would: here
    a child of pid 1 (which has a trap of its own and waits for it)."""
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: (print('child caught', flush=True),"
             " sys.exit(3)))\n"
             "print('ready', flush=True)\n"
             "time.sleep(30)\n")
    script = f"trap 'echo sh caught' TERM; python3 -c \"{child}\"; echo child exited $?"
    pid, master = _spawn_on_pty([*EDGEVISOR, "do", f"--platform={platform}", "--", "sh", "-c",
                                 script])
    out = _read_until(master, b"ready")
    os.kill(pid, 15)
    out += _read_until(master, b"child exited", timeout=20)
    out += _read_until(master, b"sh caught", timeout=5)
    os.waitpid(pid, 0)
    os.close(master)
    assert b"child caught" in out and b"child exited 3" in out and b"sh caught" in out, out
