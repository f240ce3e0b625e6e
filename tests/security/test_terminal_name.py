"""The guest's name for its terminal (/dev/pts/N of its own devpts, standing for the host pty
it was handed: sentry/fsimpl/terminal.py) changes nothing of the host's and leads to no
other host pty.

On a real host pty that is its stdin and controlling terminal, a root guest tries, on that
name, on `tty`'s answer and through /proc/self/fd/0: chmod (with set-id bits), chown, utimes
to a fixed time, setxattr and removexattr, fchmod, fchown and futimens of a descriptor
opened by the name; and it opens every /dev/pts number up to past the host's own (another
host pty, a stand-in for another user's terminal, is open meanwhile). The host checks both
ptys' mode, owner, ctime and xattrs are as before, and that no number the guest opened was a
host pty other than its own terminal.
"""

import fcntl
import json
import os
import subprocess
import termios
import textwrap

from ..support import EDGEVISOR

GUEST = textwrap.dedent("""
    import errno, json, os, sys
    out = {}
    def attempt(name, call):
        try:
            call()
            out[name] = "ok"
        except OSError as e:
            out[name] = errno.errorcode[e.errno]
    name = os.ttyname(0)
    out["name"] = name
    mine = os.fstat(0)
    for label, path in (("name", name), ("dev0", "/dev/pts/0"), ("procfd", "/proc/self/fd/0")):
        attempt(f"chmod_{label}", lambda: os.chmod(path, 0o6777))
        attempt(f"chown_{label}", lambda: os.chown(path, 1234, 1234))
        attempt(f"utime_{label}", lambda: os.utime(path, (1_000_000_000, 1_000_000_000)))
        attempt(f"setxattr_{label}", lambda: os.setxattr(path, "user.x", b"1"))
        attempt(f"setxattr_security_{label}",
                lambda: os.setxattr(path, "security.capability", b"\\1\\0\\0\\2" + b"\\0" * 16))
        attempt(f"removexattr_{label}", lambda: os.removexattr(path, "security.selinux"))
        attempt(f"unlink_{label}", lambda: os.unlink(path))
    fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
    attempt("fchmod", lambda: os.fchmod(fd, 0o6777))
    attempt("fchown", lambda: os.fchown(fd, 1234, 1234))
    attempt("futimens", lambda: os.utime(fd, (1_000_000_000, 1_000_000_000)))
    attempt("fsetxattr", lambda: os.setxattr(fd, "user.x", b"1"))
    out["reopened_same"] = os.fstat(fd).st_rdev == mine.st_rdev
    os.close(fd)
    opened = {}
    for n in range(int(sys.argv[1])):
        try:
            fd = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            continue
        st = os.fstat(fd)
        opened[n] = [st.st_dev, st.st_ino, st.st_rdev]
        os.close(fd)
    out["opened"] = opened
    out["mine"] = [mine.st_dev, mine.st_ino, mine.st_rdev]
    print(json.dumps(out), flush=True)
""")


def _metadata(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_rdev, st.st_ctime_ns,
            sorted(os.listxattr(path)))


def test_the_terminals_name_changes_nothing_and_opens_no_other_pty(platform):
    master, slave = os.openpty()
    other_master, other_slave = os.openpty()  # another user's terminal, as it were
    try:
        mine, other = os.ttyname(slave), os.ttyname(other_slave)
        highest = max(int(mine.rsplit("/", 1)[1]), int(other.rsplit("/", 1)[1]))
        before = {path: _metadata(path) for path in (mine, other)}
        other_st = os.stat(other)

        def take_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        r = subprocess.run([*EDGEVISOR, "do", f"--platform={platform}", "--", "python3",
                            "-c", GUEST, str(highest + 8)],
                           stdin=slave, capture_output=True, text=True, timeout=120,
                           preexec_fn=take_terminal)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.splitlines()[-1])
        after = {path: _metadata(path) for path in (mine, other)}
    finally:
        for fd in (master, slave, other_master, other_slave):
            os.close(fd)

    assert after == before, (before, after, out)
    assert out["name"].startswith("/dev/pts/"), out
    refused = {k: v for k, v in out.items()
               if k.split("_")[0] in ("chmod", "chown", "utime", "setxattr", "removexattr",
                                      "fchmod", "fchown", "futimens", "fsetxattr")}
    assert refused and set(refused.values()) == {"EPERM"}, out
    # unlink reaches only the guest's devpts, which refuses it
    assert all(out[f"unlink_{label}"] != "ok" for label in ("name", "dev0", "procfd")), out
    assert out["reopened_same"] is True, out
    mine_st = out["mine"]
    for number, (dev, ino, rdev) in out["opened"].items():
        if [dev, ino, rdev] == mine_st:
            continue  # its own terminal, by the name the guest has for it
        assert dev != mine_st[0], f"/dev/pts/{number} is a host pty: {out}"
        assert rdev != other_st.st_rdev or dev != other_st.st_dev, out
