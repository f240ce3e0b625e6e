"""The Sentry's file system with real programs, on both platforms (issue 3's "Done when")."""

import os
import subprocess

import pytest


def test_writes_to_the_rootfs_stay_in_the_overlay(sandbox):
    assert not os.path.exists("/etc/hello")
    r = sandbox("sh", "-c", "echo x > /etc/hello && cat /etc/hello")
    assert (r.returncode, r.stdout) == (0, "x\n"), r.stderr
    assert not os.path.exists("/etc/hello")


def test_a_volume_is_written_through_and_a_read_only_one_refuses(sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = sandbox("sh", "-c", "echo y > /out/f && cat /out/f", flags=("-v", f"{out}:/out"))
    assert (r.returncode, r.stdout) == (0, "y\n"), r.stderr
    assert (out / "f").read_text() == "y\n"

    r = sandbox("sh", "-c", "echo z > /out/g", flags=("-v", f"{out}:/out:ro"))
    assert r.returncode != 0
    assert "Read-only file system" in r.stderr
    assert not (out / "g").exists()


def test_a_volume_shows_host_changes(sandbox, tmp_path):
    (tmp_path / "before").write_text("1\n")
    r = sandbox("sh", "-c", "cat /v/before; echo 2 > /v/after; ls /v",
                flags=("-v", f"{tmp_path}:/v"))
    assert r.stdout.split() == ["1", "after", "before"], r.stderr


def test_gcc_builds_and_runs_a_program_in_tmp(sandbox):
    script = ("printf '#include <stdio.h>\\nint main(void){puts(\"built here\");return 3;}\\n'"
              " > /tmp/h.c && gcc /tmp/h.c -o /tmp/h && /tmp/h")
    r = sandbox("sh", "-c", script)
    assert (r.returncode, r.stdout) == (3, "built here\n"), r.stderr


def test_sqlite3_database_in_tmp(sandbox):
    sql = ("create table t(n integer, s text);"
           "with recursive c(x) as (select 1 union all select x+1 from c where x<1000)"
           " insert into t select x, 'row'||x from c;"
           "select count(*), sum(n) from t where s like 'row%';")
    r = sandbox("sh", "-c", f"sqlite3 /tmp/db.sqlite \"{sql}\" && ls /tmp/db.sqlite")
    assert r.stdout == "1000|500500\n/tmp/db.sqlite\n", r.stderr


def test_python_compileall_of_a_tree(sandbox):
    r = sandbox("sh", "-c", "cp -r /usr/lib/python3*/json /tmp/j && python3 -m compileall -q /tmp/j"
                " && ls /tmp/j/__pycache__ | grep -c pyc")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 5


def test_tar_round_trip_of_usr_share_doc(sandbox):
    script = """
        set -e
        tar -C /usr/share -cf /tmp/doc.tar doc
        mkdir /tmp/x
        tar -C /tmp/x -xf /tmp/doc.tar
        cd /usr/share && find doc -type f -print0 | sort -z | xargs -0 md5sum > /tmp/a
        cd /tmp/x && find doc -type f -print0 | sort -z | xargs -0 md5sum > /tmp/b
        cmp /tmp/a /tmp/b && wc -l < /tmp/a
    """
    r = sandbox("sh", "-c", script, timeout=600)
    assert r.returncode == 0, r.stderr
    native = subprocess.run("cd /usr/share && find doc -type f | wc -l", shell=True,
                            capture_output=True, text=True)
    assert r.stdout == native.stdout


def test_git_init_and_commit_in_tmp(sandbox):
    script = """
        set -e
        cd /tmp && mkdir repo && cd repo
        git init -q
        echo hello > a.txt && mkdir d && echo there > d/b.txt
        git add . && git -c user.name=t -c user.email=t@e commit -qm first
        git log --format=%s && git ls-files
    """
    r = sandbox("sh", "-c", script)
    assert (r.returncode, r.stdout) == (0, "first\na.txt\nd/b.txt\n"), r.stderr


def test_ls_of_proc_self_fd_and_dev(sandbox):
    r = sandbox("sh", "-c", "ls -la /proc/self/fd /dev")
    assert r.returncode == 0, r.stderr
    for name in ("null", "zero", "full", "random", "urandom", "pts", "shm", "stdin", "fd"):
        assert f" {name}" in r.stdout, name


def test_find_usr_counts_as_natively(sandbox):
    native = subprocess.run(["sh", "-c", "find /usr -xdev | wc -l"], capture_output=True,
                            text=True)
    r = sandbox("sh", "-c", "find /usr -xdev | wc -l", timeout=600)
    assert (r.returncode, r.stdout) == (0, native.stdout), r.stderr


def test_relative_paths_follow_the_working_directory(sandbox):
    r = sandbox("sh", "-c", "mkdir -p /tmp/a/b && cd /tmp/a && touch b/f && cd b && ls && pwd"
                " && (cd .. && pwd) && pwd && /bin/pwd")
    assert r.stdout.split() == ["f", "/tmp/a/b", "/tmp/a", "/tmp/a/b", "/tmp/a/b"], r.stderr


def test_a_script_written_to_tmp_runs(sandbox):
    r = sandbox("sh", "-c", "printf '#!/bin/sh\\necho script $1\\n' > /tmp/s.sh && chmod +x /tmp/s.sh"
                " && /tmp/s.sh arg && cd /tmp && ./s.sh rel")
    assert r.stdout == "script arg\nscript rel\n", r.stderr


def test_missing_and_not_executable(sandbox):
    r = sandbox("sh", "-c", "/nonexistent; echo $?; touch /tmp/f; /tmp/f; echo $?")
    assert r.stdout.split() == ["127", "126"], r.stderr


@pytest.mark.parametrize("overlay", ["none"])
def test_read_only_rootfs(sandbox, overlay):
    r = sandbox("sh", "-c", "echo x > /etc/ro-test; echo $?; echo y > /tmp/f && cat /tmp/f",
                flags=(f"--overlay={overlay}",))
    assert r.stdout.split() == ["2", "y"], r.stderr
    assert "Read-only file system" in r.stderr


def test_a_minimal_sys_and_procs_global_files(sandbox):
    r = sandbox("sh", "-c", "cat /sys/devices/system/cpu/online; ls /sys/class | wc -l;"
                " head -c 12 /proc/version; echo; head -c 4 /proc/stat; echo;"
                " python3 -c 'import os; print(os.cpu_count())'")
    cpus = len(os.sched_getaffinity(0))
    span = "0" if cpus == 1 else f"0-{cpus - 1}"
    assert r.stdout.split("\n")[:5] == [span, "0", "Linux versio", "cpu ", str(os.cpu_count())], r.stderr


TMPFILE_CHECK = """
import os, tempfile
for where in ("/tmp", "/var/tmp"):
    fd = os.open(where, os.O_TMPFILE | os.O_RDWR, 0o666)  # the umask applies
    os.write(fd, b"abc")
    st = os.fstat(fd)
    print(where, oct(st.st_mode), st.st_nlink, os.pread(fd, 3, 0), "tmpfile" in str(os.listdir(where)))
for flags in (os.O_TMPFILE | os.O_RDONLY, os.O_TMPFILE | os.O_RDWR | os.O_CREAT):
    try:
        os.open("/tmp", flags)
    except OSError as e:
        print("refused", e.errno)
with tempfile.TemporaryFile() as f:
    f.write(b"x")
    f.seek(0)
    print(f.read())
"""


def test_o_tmpfile_as_linux(sandbox):
    native = subprocess.run(["python3", "-c", TMPFILE_CHECK], capture_output=True, text=True)
    r = sandbox("python3", "-c", TMPFILE_CHECK)
    assert (r.returncode, r.stdout) == (0, native.stdout), r.stderr


UNIX_SOCKET_NAME = """
import os, socket
for where in ("/tmp/s1", "/var/tmp/edgevisor-s1-%d" % os.getpid()):
    before = os.path.exists(where)  # remembered absent by the Sentry, then made by bind
    s = socket.socket(socket.AF_UNIX)
    s.bind(where)
    s.listen()
    os.chmod(where, 0o600)
    c = socket.socket(socket.AF_UNIX)
    c.connect(where)
    print(before, os.path.exists(where), os.path.basename(where) in os.listdir(os.path.dirname(where)))
    os.unlink(where)
"""


def test_a_unix_socket_bound_after_a_failed_lookup_is_found(sandbox):
    r = sandbox("python3", "-c", UNIX_SOCKET_NAME)
    assert (r.returncode, r.stdout) == (0, "False True True\n" * 2), r.stderr


def test_a_named_pipe_opens_when_its_peer_comes(sandbox):
    """Opening a fifo waits for the other end, as on Linux: the reader's open blocks until
    the writer opens, so the line goes through (a non-blocking open would see EOF or ENXIO)."""
    script = ("cd /tmp && mkfifo p && (cat p; echo reader-done) & sleep 0.3;"
              " echo through-the-fifo > /tmp/p; wait; (exec 3<>/tmp/p; echo rw-ok)")
    r = sandbox("sh", "-c", script)
    assert (r.returncode, r.stdout) == (0, "through-the-fifo\nreader-done\nrw-ok\n"), r.stderr


DELETED_CWD = """
import os, tempfile
d = tempfile.mkdtemp(dir="/tmp")
os.chdir(d)
os.rmdir(d)
for what, call in (("chdir .", lambda: os.chdir(".")), ("getcwd", os.getcwd),
                   ("create", lambda: open("x", "w"))):
    try:
        call()
        print(what, "ok")
    except OSError as e:
        print(what, e.errno)
"""


def test_a_removed_working_directory_as_linux(sandbox):
    native = subprocess.run(["python3", "-c", DELETED_CWD], capture_output=True, text=True)
    r = sandbox("python3", "-c", DELETED_CWD)
    assert (r.returncode, r.stdout) == (0, native.stdout), r.stderr
