"""The OCI front end's pure parts: command-line dispatch, signals, cgroup paths, the
spec's mapping and refusals (no sandbox started)."""

import json
import os
import signal
import threading

import pytest
from hypothesis import given, settings, strategies as st

from edgevisor.oci import OCIError
from edgevisor.oci import cli as oci_cli
from edgevisor.oci.cgroup import path_of
from edgevisor.oci import wants
from edgevisor.oci.default_spec import default
from edgevisor.oci.manage import parse_signal
from edgevisor.oci.seccomp import compile_profile
from edgevisor.oci.spec import load
from edgevisor.oci.state import check_id


@pytest.mark.parametrize("argv, oci", [
    (["create", "--bundle", "b", "x"], True),
    (["--root", "/r", "--log", "l.json", "--log-format", "json", "start", "x"], True),
    (["--platform=ptrace", "--systemd-cgroup", "kill", "x", "9"], True),
    (["--root", "do", "state", "x"], True),  # "do" is --root's value here
    (["do", "--", "create"], False),
    (["syscalls"], False),
    ([], False),
])
def test_runc_command_lines_go_to_the_oci_front_end(argv, oci):
    assert wants(argv) is oci


# Words of runc command lines: flags, values, commands, ids and signals, and the things
# argparse reads its own way (abbreviations, --flag=value, --, a value that looks like a flag).
_WORDS = ["--root", "/r", "--log", "l.json", "--log-format", "json", "text", "xml", "--debug",
          "--systemd-cgroup", "--platform", "ptrace", "seccomp", "--platform=ptrace", "--network",
          "none", "bogus", "--strace", "--debug-log", "--rootless", "false", "--criu", "--ro",
          "--root=/s", "start", "state", "kill", "delete", "create", "pause", "--force", "-f",
          "--all", "-a", "-fa", "-h", "--", "-", "9", "TERM", "-9", "abc123", "x", "",
          "--bundle", "-b", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/s.sock",
          "--no-pivot", "--no-new-keyring", "--preserve-fds", "3", "--detach", "run"]


_COMMAND_LINES = st.builds(
    lambda before, command, after: [*before, command, *after],
    st.lists(st.sampled_from(_WORDS), max_size=6),
    st.sampled_from(["create", "start", "state", "kill", "delete", "pause", "run"]),
    st.lists(st.sampled_from(_WORDS), max_size=4))


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_COMMAND_LINES, st.lists(st.sampled_from(_WORDS), max_size=9)))
def test_the_quick_parse_reads_what_argparse_reads(argv):
    """create, start, state, kill and delete skip argparse: whatever the quick parse accepts,
    argparse accepts, with the same meaning; the rest goes to argparse."""
    quick = oci_cli._quick_parse(argv)
    if quick is None:
        return
    assert vars(oci_cli._parser(oci_cli.command_of(argv)).parse_args(argv)) == vars(quick)


@pytest.mark.parametrize("argv", [
    ["--root", "/var/run/docker/runtime-runc/moby", "--log", "/b/log.json", "--log-format",
     "json", "--systemd-cgroup", cmd, *extra, "0123abcd"]
    for cmd, extra in (("start", []), ("state", []), ("delete", []), ("delete", ["--force"]),
                       ("kill", []), ("kill", ["--all"]),
                       ("create", ["--bundle", "/b", "--pid-file", "/b/init.pid"]),
                       ("create", ["--bundle", "/b", "--pid-file", "/b/init.pid",
                                   "--console-socket", "/s.sock"]))] + [
    ["--platform=ptrace", "--root", "/r", "kill", "x", "9"][1:],
    ["--platform", "ptrace", "--network", "none", "kill", "x", "15"]])
def test_dockers_command_lines_take_the_quick_parse(argv):
    assert oci_cli._quick_parse(argv) is not None


def test_signals_by_number_and_name():
    assert parse_signal("15") == parse_signal("TERM") == parse_signal("SIGTERM") == 15
    assert parse_signal("kill") == signal.SIGKILL
    for bad in ("0", "99", "NOPE", ""):
        with pytest.raises(OCIError):
            parse_signal(bad)


def test_cgroup_paths_as_runc_places_them():
    assert path_of("/docker/abc", False, "abc") == "/docker/abc"
    assert path_of("", False, "abc") == "/edgevisor/abc"
    assert path_of("system.slice:docker:abc", True, "abc") == "/system.slice/docker-abc.scope"
    assert path_of("a-b-c.slice:p:n", True, "n") == "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"
    for bad in ("/docker/abc", "system.slice:..:x", "system.slice:p:../../x"):
        with pytest.raises(OCIError):
            path_of(bad, True, "abc")
    assert path_of("/../../x", False, "x") == "/x"  # never above the hierarchy's root


@pytest.mark.parametrize("bad", ["", "a/b", "..", ".", "a b", "x\n"])
def test_ids_cannot_name_another_path(bad):
    with pytest.raises(OCIError):
        check_id(bad)


@pytest.fixture
def bundle(tmp_path):
    os.makedirs(tmp_path / "rootfs/bin")
    os.symlink("busybox", tmp_path / "rootfs/bin/sh")
    spec = default()
    spec["root"]["readonly"] = False

    def write(change=lambda c: None):
        change(spec)
        (tmp_path / "config.json").write_text(json.dumps(spec))
        return load(str(tmp_path), "seccomp", "host")
    return write


def test_the_default_spec_maps_onto_a_run_config(bundle):
    plan = bundle()
    cfg = plan.run
    assert cfg.argv == ["sh"] and cfg.cwd == "/" and cfg.hostname == "runc"
    assert cfg.user == "0:0" and cfg.overlay and cfg.network == "host"
    assert cfg.spec_capabilities == frozenset({5, 10, 29})
    assert plan.netns is None and plan.terminal
    assert plan.rlimits == [(7, 1024, 1024)]  # RLIMIT_NOFILE


def test_docker_capabilities_are_accepted_less_the_two_edgevisor_withholds(bundle):
    docker = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
              "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
              "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
    plan = bundle(lambda c: c["process"]["capabilities"].update(bounding=docker))
    assert 27 not in plan.run.spec_capabilities and 13 not in plan.run.spec_capabilities  # MKNOD, NET_RAW
    assert len(plan.run.spec_capabilities) == 12


def test_a_seccomp_profile_compiles_and_an_unknown_action_is_refused():
    program = compile_profile({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                               "syscalls": [{"names": ["read", "no_such_call"],
                                             "action": "SCMP_ACT_ALLOW"},
                                            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                                             "args": [{"index": 0, "value": 2114060288,
                                                       "op": "SCMP_CMP_MASKED_EQ"}]}]})
    assert program and len(program) % 8 == 0
    with pytest.raises(OCIError, match="SCMP_ACT_NOTIFY"):
        compile_profile({"defaultAction": "SCMP_ACT_NOTIFY"})
    with pytest.raises(OCIError, match="SCMP_CMP_BOGUS"):
        compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]})


def test_a_seccomp_profile_compiles_once(tmp_path, monkeypatch):
    """docker sends the same profile with every container: the second create takes the
    program from the BPF cache, without libseccomp; another profile compiles anew."""
    from edgevisor.oci import seccomp

    monkeypatch.setenv("EDGEVISOR_BPF_CACHE", str(tmp_path / "cache"))
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
    first = compile_profile(profile)
    compiled = []
    monkeypatch.setattr(seccomp, "_compile", lambda p: compiled.append(p) or b"\0" * 8)
    assert compile_profile(dict(reversed(profile.items()))) == first and not compiled
    other = {**profile, "defaultAction": "SCMP_ACT_KILL"}
    assert compile_profile(other) == b"\0" * 8 and compiled == [other]


@pytest.mark.parametrize("change", [
    lambda c: c.__setitem__("process", {"args": []}),
    lambda c: c["root"].update(path="missing"),
    lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
    lambda c: c["linux"]["resources"].update(cpu={"cpus": "0-1"}),
    lambda c: c.update(hooks={"prestart": [{"args": ["x"]}]}),
    lambda c: c.update(hooks={"startContainer": [{"path": "/bin/true"}]}),
    lambda c: c["process"].update(user="root"),
], ids=["no-args", "no-rootfs", "rlimit", "cpuset", "hook-path", "start-hook", "malformed"])
def test_refusals(bundle, change):
    with pytest.raises(OCIError):
        bundle(change)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_an_error_is_one_line_in_the_log_in_its_format(tmp_path, capsys, fmt):
    from edgevisor.oci.cli import main

    log = tmp_path / "log"
    assert main(["--root", str(tmp_path), "--log", str(log), "--log-format", fmt,
                 "start", "nope"]) == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    if fmt == "json":
        entry = json.loads(lines[0])
        assert entry["level"] == "error" and entry["msg"] == "container does not exist: nope"
    else:
        assert 'level=error msg="container does not exist: nope"' in lines[0]
    assert capsys.readouterr().err == "edgevisor: container does not exist: nope\n"


def test_a_usage_error_is_logged_too(tmp_path, capsys):
    from edgevisor.oci.cli import main

    log = tmp_path / "log"
    assert main(["--log", str(log), "--log-format", "json", "kill"]) == 1
    assert json.loads(log.read_text())["level"] == "error"
    assert "Traceback" not in capsys.readouterr().err


def test_features_and_spec_print_json(tmp_path, capsys):
    from edgevisor.oci.cli import main

    assert main(["features"]) == 0
    features = json.loads(capsys.readouterr().out)
    assert "prestart" in features["hooks"] and "startContainer" not in features["hooks"]
    assert main(["spec", "--bundle", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == default()
    assert main(["spec", "--bundle", str(tmp_path)]) == 1  # as runc: never overwritten


def test_a_control_socket_past_sun_path_is_served_and_reached(tmp_path):
    """Docker's root and a 64-digit id put the socket past sockaddr_un's 108 bytes."""
    from edgevisor.oci import client, control

    where = tmp_path / ("d" * 60) / ("e" * 64)
    where.mkdir(parents=True)
    path = str(where / client.SOCKET_NAME)
    assert len(path) > 108

    class Hold:
        answering = threading.Lock()
        sentry_pid = 0  # still being created: every request is refused, with an answer

    listener = control.serve(path, Hold())
    try:
        assert os.stat(path).st_mode & 0o777 == 0o600
        with pytest.raises(OCIError, match="still being created"):
            client.request(path, op="start")
    finally:
        listener.close()
