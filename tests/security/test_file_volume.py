"""-v HOST_FILE:GUEST_FILE[:ro]: a single host file bound on a file of the guest's tree.

The guest's writes to a rw one reach that host file and nothing else; the host-metadata
rules of every shared mount hold for it (no set-id bit by chmod, none kept by a write-open,
no security.* or trusted.* xattr); unlink and rename of the mountpoint are EBUSY, as Linux
answers for a bind-mounted file; :ro refuses every write with EROFS."""

import os
import stat

import pytest

from ..support import edgevisor

# Every call on the file volume at argv[1], as the guest's root: "name: ok" or the errno.
ATTACKS = r"""
import errno, os, sys
path = sys.argv[1]
def attempt(name, call):
    try:
        call()
        print(f"{name}: ok")
    except OSError as e:
        print(f"{name}: {errno.errorcode[e.errno]}")
def rewrite():
    with open(path, "w") as f:
        f.write("guest\n")
def through_fd(call):
    fd = os.open(path, os.O_RDONLY)
    try:
        call(fd)
    finally:
        os.close(fd)
attempt("write", rewrite)
attempt("mode_after_write", lambda: print(oct(os.stat(path).st_mode & 0o7777)))
attempt("chmod_suid", lambda: os.chmod(path, 0o4755))
attempt("fchmod_sgid", lambda: through_fd(lambda fd: os.fchmod(fd, 0o2755)))
attempt("setxattr_cap", lambda: os.setxattr(path, "security.capability", b"\1\0\0\2" + bytes(16)))
attempt("fsetxattr_trusted", lambda: through_fd(lambda fd: os.setxattr(fd, "trusted.x", b"1")))
attempt("setxattr_user", lambda: os.setxattr(path, "user.x", b"1"))
attempt("chmod", lambda: os.chmod(path, 0o640))
attempt("unlink", lambda: os.unlink(path))
attempt("rename_from", lambda: os.rename(path, path + ".moved"))
attempt("rename_onto", lambda: (open(path + ".new", "w").close(), os.rename(path + ".new", path)))
attempt("link", lambda: os.link(path, path + ".link"))
attempt("mounts", lambda: print(*[l for l in open("/proc/self/mounts") if f" {path} " in l]))
"""


def _results(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def _host_setuid_file(path) -> None:
    path.write_text("host\n")
    os.chown(path, 1000, 1000)
    os.chmod(path, 0o4755)


def test_a_rw_file_volume_reaches_its_host_file_and_nothing_else(sandbox, tmp_path):
    host = tmp_path / "hosts"
    _host_setuid_file(host)
    before = sorted(os.listdir(tmp_path))
    r = sandbox("python3", "-c", ATTACKS, "/etc/hosts", flags=("-v", f"{host}:/etc/hosts"))
    assert r.returncode == 0, r.stderr
    got = _results(r.stdout)
    assert got["write"] == "ok", r.stdout
    assert "0o755" in r.stdout  # the write-open dropped S_ISUID
    for name in ("chmod_suid", "fchmod_sgid", "setxattr_cap", "fsetxattr_trusted"):
        assert got[name] == "EPERM", (name, r.stdout)
    assert (got["setxattr_user"], got["chmod"]) == ("ok", "ok"), r.stdout
    for name in ("unlink", "rename_from", "rename_onto"):
        assert got[name] == "EBUSY", (name, r.stdout)
    assert got["link"] == "EXDEV", r.stdout  # another mount, as a bind mount is on Linux
    assert "volume /etc/hosts bind rw,nosuid,nodev" in r.stdout
    # On the host: the guest's content, its plain mode and user.* xattr, nothing else.
    assert host.read_text() == "guest\n"
    st = os.stat(host)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1000, 0o640)
    assert os.listxattr(host) == ["user.x"]
    assert sorted(os.listdir(tmp_path)) == before
    assert open("/etc/hosts").read() != "guest\n"


def test_a_ro_file_volume_is_read_only(sandbox, tmp_path):
    host = tmp_path / "hosts"
    _host_setuid_file(host)
    r = sandbox("python3", "-c", "import sys; print(open(sys.argv[1]).read(), end='')\n" + ATTACKS,
                "/etc/hosts", flags=("-v", f"{host}:/etc/hosts:ro"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("host\n"), r.stdout
    got = _results(r.stdout)
    for name in ("write", "chmod_suid", "fchmod_sgid", "setxattr_user", "chmod"):
        assert got[name] == "EROFS", (name, r.stdout)
    for name in ("unlink", "rename_from", "rename_onto"):
        assert got[name] == "EBUSY", (name, r.stdout)
    assert "volume /etc/hosts bind ro,nosuid,nodev" in r.stdout
    st = os.stat(host)
    assert (host.read_text(), stat.S_IMODE(st.st_mode), os.listxattr(host)) == (
        "host\n", 0o4755, [])


def test_a_file_volume_runs_and_sits_where_the_rootfs_had_none(sandbox, tmp_path):
    """A file the rootfs lacks is made in the overlay (and in the sandbox's /tmp), with the
    directories on its way, never on the host; the kernel's own view has it too, so it
    runs."""
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho ran\n")
    tool.chmod(0o755)
    r = sandbox("sh", "-c", "/opt/edgevisor-new/bin/tool && /tmp/d/t",
                flags=("-v", f"{tool}:/opt/edgevisor-new/bin/tool:ro", "-v", f"{tool}:/tmp/d/t"))
    assert (r.returncode, r.stdout) == (0, "ran\nran\n"), r.stderr
    assert not os.path.exists("/opt/edgevisor-new")


@pytest.mark.parametrize("target, message", [
    ("/etc", "mountpoint /etc is not a regular file"),
    ("/bin/edgevisor-tool", "mountpoint /bin/edgevisor-tool passes a symlink"),
])
def test_a_file_volume_on_a_directory_or_through_a_symlink_is_refused(tmp_path, target,
                                                                      message):
    if target.startswith("/bin/") and not os.path.islink("/bin"):
        pytest.skip("/bin is not a symlink on this host")
    (tmp_path / "f").write_text("x\n")
    r = edgevisor("do", "-v", f"{tmp_path / 'f'}:{target}", "--", "true")
    assert r.returncode == 125 and message in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
