"""A root guest must not turn host files into host privilege (issue 10, findings 2 and 3).

tests/programs/host_metadata.c performs each attack as the guest's root and reports every
call's result on stderr; the host side is then checked: no set-id bit, no security.* xattr,
and the user's own files (`> out`) keep their owner, mode, times and xattrs.

- On a rw volume (files host users reach), chmod, fchmodat, fchmodat2 (a path, an fd with
  AT_EMPTY_PATH, an O_PATH fd), fchmod and /proc/self/fd/N may not set S_ISUID or S_ISGID,
  and setxattr, lsetxattr, fsetxattr and /proc/self/fd/N may not write security.* or
  trusted.* (nor removexattr remove them). open(O_CREAT), creat, mknod and O_TMPFILE make
  the file without the bits. chown is allowed, as Docker allows it, and the kernel clears
  the bits. The private mounts (/tmp, the overlay) keep Linux's behaviour.
- On a descriptor the front end handed (stdout redirected to a host file), every metadata
  change is EPERM, by descriptor or AT_EMPTY_PATH; /proc/self/fd/1 and /dev/stdout do not
  reach it; write, ftruncate, lseek and fsync work.
"""

import errno
import os
import stat

import pytest

from edgevisor.gofer import fs as gofer_fs

CAPABILITY = "security.capability"
VOLUME_ATTACKS = """
    chmod_suid chmod_sgid fchmodat_suid fchmodat2_suid fchmodat2_empty fchmod_suid
    fchmod_sgid procfd_chmod_suid opath_fchmodat2_suid setxattr_cap lsetxattr_cap
    fsetxattr_cap procfd_setxattr_cap fsetxattr_trusted fremovexattr_security
    removexattr_security""".split()
CREATIONS = "open_creat_suid creat_suid mknod_suid tmpfile_suid".split()
ORDINARY = """
    write_elf chown_root chmod fchmod fchmodat2_empty_plain chown fchown setxattr_user
    fsetxattr_user fremovexattr_user futimens chown_setuid_file chmod_dir_sgid""".split()
STDOUT_ATTACKS = """
    fchown fchmod fchmod_suid fchmodat2_empty fchownat_empty fsetxattr_cap fsetxattr_user
    fremovexattr_user futimens utimensat_null""".split()
# A handed file outside the view is not changed through /proc/self/fd/1 nor /dev/stdout. It may
# be reopened there with the access its description has (cat /dev/stdin), never more: the
# reopened file is as foreign as the handed one.
STDOUT_PROC_ATTACKS = "procfd_chmod procfd_chown procfd_setxattr_cap".split()
STDOUT_IO = "write ftruncate lseek write_after fsync".split()


def _results(stderr: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stderr.splitlines() if ": " in line)


def _host_setuid_file(path) -> None:
    """A set-user-ID file of another host user, as a host might have on a volume."""
    path.write_bytes(b"#!/bin/sh\n")
    os.chown(path, 1000, 1000)
    os.chmod(path, 0o4755)


def _no_privilege_anywhere(root) -> None:
    for dirpath, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), (path, oct(st.st_mode))
            with pytest.raises(OSError) as e:
                os.getxattr(path, CAPABILITY, follow_symlinks=False)
            assert e.value.errno == errno.ENODATA, path
            assert not [n for n in os.listxattr(path) if n.startswith("trusted.")], path


def test_volume_files_never_become_host_privilege(sandbox, programs, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    _host_setuid_file(vol / "hostsuid")
    r = sandbox(programs["host_metadata"], "volume", "/v", flags=("-v", f"{vol}:/v"))
    assert r.returncode == 0, r.stderr
    got = _results(r.stderr)
    for name in VOLUME_ATTACKS:
        assert got[name] == "EPERM", (name, r.stderr)
    for name in CREATIONS + ORDINARY:
        assert got[name] == "ok", (name, r.stderr)
    # As the guest sees them: made, without the bits.
    assert got["mode_bin"] == "0755"
    assert got["mode_created"] == "0755" and got["mode_creat"] == "0711"
    assert got["mode_mknod"] == "0755" and got["mode_tmpfile"] == "0755"
    assert got["mode_hostsuid"] == "0755"  # the kernel's chown cleared S_ISUID
    assert got["mode_sgid_dir2"] == "2770"  # a directory's S_ISGID grants nothing
    # And on the host.
    _no_privilege_anywhere(vol)
    st = os.stat(vol / "bin")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o751)
    assert st.st_mtime == 1_000_000_000  # futimens on its own descriptor
    assert os.listxattr(vol / "bin") == ["user.b"]
    assert os.getxattr(vol / "bin", "user.b") == b"22"
    st = os.stat(vol / "hostsuid")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)
    assert stat.S_IMODE(os.stat(vol / "sgid").st_mode) == 0o2770


@pytest.mark.parametrize("where", ["/tmp", "/private"])
def test_private_mounts_keep_linux_behaviour(sandbox, programs, where):
    """/tmp and the overlay live in the sandbox's private tmpfs, which no host user
    reaches: set-id bits are Linux's there (inside, every mount is nosuid anyway)."""
    script = (f"mkdir -p {where} && cp /bin/true {where}/hostsuid && "
              f"chmod 4755 {where}/hostsuid && exec {programs['host_metadata']} volume {where}")
    r = sandbox("/bin/sh", "-c", script)
    assert r.returncode == 0, r.stderr
    got = _results(r.stderr)
    for name in ("chmod_suid", "fchmod_suid", "fchmodat2_empty", "procfd_chmod_suid",
                 *CREATIONS, *ORDINARY):
        assert got[name] == "ok", (name, r.stderr)
    assert got["mode_bin"] == "4755" and got["mode_created"] == "6755"
    # security.* and trusted.* are the gofer's to refuse on every mount.
    assert got["fsetxattr_cap"] == got["setxattr_cap"] == "EPERM"


def test_handed_stdout_keeps_its_metadata(sandbox, programs, tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"")
    os.chown(out, 1000, 1000)
    os.chmod(out, 0o600)
    os.setxattr(out, "user.keep", b"1")
    with open(out, "wb") as stdout:
        r = sandbox(programs["host_metadata"], "stdout", stdout=stdout, capture_output=False,
                    stderr=-1)
    assert r.returncode == 0, r.stderr
    got = _results(r.stderr)
    for name in STDOUT_ATTACKS:
        assert got[name] == "EPERM", (name, r.stderr)
    for name in STDOUT_PROC_ATTACKS:
        assert got[name] in ("EPERM", "ENOENT"), (name, r.stderr)
    assert got["reopen"] == "ok", r.stderr
    for name in STDOUT_IO:
        assert got[name] == "ok", (name, r.stderr)
    st = os.stat(out)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o600)
    assert int(st.st_mtime) != 981173106  # the date futimens asked for
    assert os.listxattr(out) == ["user.keep"]
    assert out.read_bytes() == b"\x7fELFtail"  # written, truncated to 4, appended to


def test_handed_descriptor_swapped_in_by_another_thread(sandbox, programs, tmp_path):
    """fchmod(5) while another thread dup2s the handed stdout and a file of the guest's onto
    5: whichever the Sentry looked at is the one it changes (its own copy of the
    description), so the handed file is never changed."""
    out = tmp_path / "out"
    out.write_bytes(b"")
    os.chmod(out, 0o600)
    with open(out, "wb") as stdout:
        r = sandbox(programs["host_metadata"], "race", "/tmp/own", stdout=stdout,
                    capture_output=False, stderr=-1)
    assert r.returncode == 0, r.stderr
    counts = dict(kv.split("=") for kv in _results(r.stderr)["race"].split())
    assert counts["other"] == "0", r.stderr
    assert int(counts["ok"]) + int(counts["refused"]) == 3000
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_anonymous_objects_metadata_is_refused(sandbox, programs):
    """The guest's own pipes and memfds: EPERM (they are not files of its view, and the
    Sentry cannot tell one it made from one a host process passed it); I/O works."""
    r = sandbox(programs["host_metadata"], "anon")
    assert r.returncode == 0, r.stderr
    got = _results(r.stderr)
    assert got["pipe_fchmod"] == got["memfd_fchmod"] == "EPERM"
    assert got["memfd_write"] == "ok"


# --- the gofer's own rule, without a sandbox ------------------------------------------------

@pytest.mark.parametrize("shared", [True, False])
def test_gofer_set_id_bits_only_on_private_mounts(tmp_path, shared):
    (tmp_path / "f").write_bytes(b"")
    (tmp_path / "d").mkdir()
    umask = os.umask(0)
    roots = [gofer_fs.open_root(str(tmp_path), False, shared)]
    try:
        ops = gofer_fs.OPERATIONS
        if shared:
            with pytest.raises(PermissionError):
                ops["chmod"](roots, 0, b"f", 0o4755)
            with pytest.raises(PermissionError):
                ops["chmod"](roots, 0, b"f", 0o2755)
        else:
            ops["chmod"](roots, 0, b"f", 0o4755)
        ops["chmod"](roots, 0, b"d", 0o2775)  # a directory's S_ISGID: allowed
        os.close(ops["open"](roots, 0, b"c", os.O_CREAT | os.O_WRONLY, 0o6755))
        ops["mknod"](roots, 0, b"n", stat.S_IFREG | 0o4700)
    finally:
        os.umask(umask)
        os.close(roots[0].fd)
    bits = stat.S_ISUID | stat.S_ISGID
    want = {"f": 0 if shared else stat.S_ISUID, "c": 0 if shared else bits,
            "n": 0 if shared else stat.S_ISUID}
    for name, expected in want.items():
        assert os.stat(tmp_path / name).st_mode & bits == expected, name
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o2775


def test_rewriting_a_host_setuid_file_drops_its_bits(sandbox, tmp_path):
    """The guest keeps CAP_FSETID (Docker's set), with which the kernel would leave a set-id
    file set-id after a write: a host setuid-root binary on a volume, rewritten by the guest,
    would stay setuid-root with the guest's code. Opening it for writing drops the bits."""
    vol = tmp_path / "vol"
    vol.mkdir()
    for name, mode in (("suid", 0o4755), ("sgid", 0o2755), ("append", 0o6755)):
        (vol / name).write_bytes(b"#!/bin/sh\n")
        os.chmod(vol / name, mode)
    r = sandbox("sh", "-c", "echo 'id' > /v/suid && echo 'id' > /v/sgid && "
                "echo 'id' >> /v/append && cat /v/suid", flags=("-v", f"{vol}:/v"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "id\n"
    for name in ("suid", "sgid", "append"):
        st = os.stat(vol / name)
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), (name, oct(st.st_mode))
        assert st.st_mode & 0o777 == 0o755, (name, oct(st.st_mode))
    # Read-only opens leave them alone.
    os.chmod(vol / "suid", 0o4755)
    r = sandbox("cat", "/v/suid", flags=("-v", f"{vol}:/v"))
    assert r.returncode == 0, r.stderr
    assert os.stat(vol / "suid").st_mode & stat.S_ISUID


def test_handed_input_reopens_read_only(sandbox, tmp_path):
    """`cat /dev/stdin < file` works; reopening the handed file for writing through
    /proc/self/fd/0 is refused, since the Sentry reopens with its own credentials."""
    src = tmp_path / "in"
    src.write_bytes(b"secret-ok\n")
    os.chmod(src, 0o444)
    with open(src, "rb") as stdin:
        r = sandbox("sh", "-c", "cat /dev/stdin; echo x > /proc/self/fd/0 && echo WROTE",
                    stdin=stdin)
    assert r.stdout == "secret-ok\n", (r.stdout, r.stderr)
    assert src.read_bytes() == b"secret-ok\n"
