"""config.json honoured: the process, root, mounts, cgroup, sysctls and seccomp; what
edgevisor cannot honour is one clear error and leaves nothing behind."""

import errno
import json
import os

import pytest

from .test_lifecycle import _wait_for, create, leftovers, new_id, wait_exit



def run_to_end(runtime, bundle, *flags) -> int:
    container = new_id()
    pid = create(runtime, bundle, container, *flags)
    assert runtime("start", container).returncode == 0
    status = wait_exit(pid)
    assert runtime("delete", container).returncode == 0
    assert leftovers(runtime, container) == []
    return status


def test_process_fields(runtime, bundle, out):
    def change(c):
        c["process"].update(env=["PATH=/bin", "GREETING=hello there"], cwd="/out",
                            user={"uid": 1000, "gid": 1001, "additionalGids": [5, 7]},
                            rlimits=[{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}],
                            oomScoreAdj=250)
        c["hostname"] = "box1"
    bundle.edit(change)
    os.chmod(out, 0o777)
    bundle.command("sh", "-c", 'echo "$GREETING|$(pwd)|$(id)|$(hostname)|$(ulimit -n)|'
                   '$(ulimit -Hn)" > result; exec sleep 1000')
    container = new_id()
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/result")
    assert open(f"{out}/result").read() == \
        "hello there|/out|uid=1000 gid=1001 groups=5,7|box1|123|456\n"
    guest = json.loads(runtime("ps", "--format", "json", container).stdout)
    assert open(f"/proc/{guest[0]}/oom_score_adj").read() == "250\n"  # the Sentry's /proc
    assert runtime("kill", container, "KILL").returncode == 0          # shows its own
    assert wait_exit(pid) == 137
    assert runtime("delete", container).returncode == 0


def test_root_readonly_binds_files_and_tmpfs(runtime, bundle, out):
    shared = os.path.join(bundle.path, "shared")
    os.mkdir(shared)
    open(f"{shared}/in", "w").write("from host\n")
    resolv = os.path.join(bundle.path, "resolv.conf")
    open(resolv, "w").write("nameserver 192.0.2.53\n")
    bundle.edit(lambda c: c["mounts"].extend([
        {"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "ro",
                                                                                 "rprivate"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": resolv,
         "options": ["rbind", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "size=1m", "mode=1777"]}]))
    bundle.command("sh", "-c", "cat /shared/in /etc/resolv.conf > /out/r; "
                   "echo x > /shared/no 2>/dev/null || echo shared-ro >> /out/r; "
                   "echo x > /bin/no 2>/dev/null || echo root-ro >> /out/r; "
                   "echo x > /etc/resolv.conf 2>/dev/null || echo file-ro >> /out/r; "
                   "echo scratch > /run/f && cat /run/f >> /out/r")
    assert run_to_end(runtime, bundle) == 0
    assert open(f"{out}/r").read() == ("from host\nnameserver 192.0.2.53\nshared-ro\nroot-ro\n"
                                       "file-ro\nscratch\n")
    assert os.listdir(shared) == ["in"]
    assert open(resolv).read() == "nameserver 192.0.2.53\n"


@pytest.mark.parametrize("readonly", [False, True])
def test_a_command_bound_as_a_single_file_runs_without_its_set_id_bits(runtime, bundle, out,
                                                                       readonly):
    """docker --init binds its docker-init at /sbin/docker-init, where the image has no /sbin:
    create finds the command in the mount, the guest executes the copy (its permission bits
    kept, set-user-ID dropped, as the attacker would have it otherwise), and the host file
    and rootfs are unchanged."""
    init = os.path.join(bundle.path, "init")
    with open(init, "w") as f:
        f.write('#!/bin/sh\necho "init $(stat -c %a /sbin/edgevisor-init) $*" > /out/r\n')
    os.chmod(init, 0o4755)
    bundle.edit(lambda c: (c["root"].update(readonly=readonly), c["mounts"].append(
        {"destination": "/sbin/edgevisor-init", "type": "bind", "source": init,
         "options": ["rbind", "ro"]})))
    bundle.command("/sbin/edgevisor-init", "--", "true")
    assert run_to_end(runtime, bundle) == 0
    assert open(f"{out}/r").read() == "init 755 -- true\n"
    assert os.stat(init).st_mode & 0o7777 == 0o4755
    # a read-only rootfs gets its mountpoint as runc makes it; a writable one keeps it in
    # its in-memory layer
    assert os.path.exists(f"{bundle.path}/rootfs/sbin/edgevisor-init") == readonly


def test_a_writable_root_keeps_the_host_rootfs_unchanged(runtime, bundle, out):
    bundle.edit(lambda c: c["root"].update(readonly=False))
    bundle.command("sh", "-c", "echo new > /bin/made && cat /bin/made > /out/r")
    assert run_to_end(runtime, bundle) == 0
    assert open(f"{out}/r").read() == "new\n"
    assert not os.path.exists(f"{bundle.path}/rootfs/bin/made")


def test_seccomp_profile_is_stacked_under_edgevisors_filters(runtime, bundle, out):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EACCES}]}
    bundle.edit(lambda c: c["linux"].update(seccomp=profile))
    bundle.command("sh", "-c", "mkdir /out/d 2> /out/err; echo $? > /out/status")
    assert run_to_end(runtime, bundle) == 0
    assert open(f"{out}/status").read() == "1\n"
    assert "Permission denied" in open(f"{out}/err").read()
    assert not os.path.exists(f"{out}/d")


def test_sysctl_is_written_in_the_containers_network_namespace(runtime, bundle, out):
    bundle.edit(lambda c: c["linux"].update(
        sysctl={"net.ipv4.ip_unprivileged_port_start": "0"}))
    before = open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read()
    assert run_to_end(runtime, bundle) == 0
    assert open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read() == before


def test_cgroups_path_and_memory_limit(runtime, bundle):
    container = new_id()
    bundle.edit(lambda c: c["linux"].update(
        cgroupsPath=f"/edgevisor-test/{container}",
        resources={"memory": {"limit": 64 << 20}, "cpu": {"quota": 50000, "period": 100000}}))
    bundle.command("sleep", "1000")
    pid = create(runtime, bundle, container)
    where = f"/sys/fs/cgroup/memory/edgevisor-test/{container}"
    assert int(open(f"{where}/memory.limit_in_bytes").read()) == 64 << 20
    assert str(pid) in open(f"{where}/cgroup.procs").read().split()
    assert open(f"/sys/fs/cgroup/cpu/edgevisor-test/{container}/cpu.cfs_quota_us").read() \
        .strip() == "50000"
    assert runtime("delete", "--force", container).returncode == 0
    wait_exit(pid)
    assert not os.path.exists(where)
    for hierarchy in os.listdir("/sys/fs/cgroup"):  # the parent, as docker's /docker, stays
        if os.path.isdir(f"/sys/fs/cgroup/{hierarchy}/edgevisor-test"):
            os.rmdir(f"/sys/fs/cgroup/{hierarchy}/edgevisor-test")


def test_systemd_cgroups_path(runtime, bundle):
    container = new_id()
    bundle.edit(lambda c: c["linux"].update(cgroupsPath=f"evtest-a.slice:ev:{container}"))
    bundle.command("sleep", "1000")
    runtime.global_flags = ["--systemd-cgroup"]
    pid = create(runtime, bundle, container)
    # systemd's nesting: a-b.slice lives in a.slice
    where = f"/sys/fs/cgroup/pids/evtest.slice/evtest-a.slice/ev-{container}.scope"
    assert str(pid) in open(f"{where}/cgroup.procs").read().split()
    assert runtime("delete", "--force", container).returncode == 0
    wait_exit(pid)
    assert not os.path.exists(where)
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        if os.path.isdir(f"/sys/fs/cgroup/{hierarchy}/evtest.slice"):
            os.rmdir(f"/sys/fs/cgroup/{hierarchy}/evtest.slice/evtest-a.slice")
            os.rmdir(f"/sys/fs/cgroup/{hierarchy}/evtest.slice")


@pytest.mark.parametrize("change, message", [
    (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
     "capabilities edgevisor does not grant: CAP_SYS_ADMIN"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}),
     "a user namespace in the spec is not supported by edgevisor"),
    (lambda c: c["linux"]["namespaces"].__setitem__(0, {"type": "pid", "path": "/proc/1/ns/pid"}),
     "joining a pid namespace by path is not supported by edgevisor"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "nfs", "source": "h:/x"}),
     "mount /x: type 'nfs' is not supported by edgevisor"),
    (lambda c: c["linux"].update(sysctl={"kernel.panic": "1"}),
     "sysctl 'kernel.panic' is not allowed in edgevisor (only net.*)"),
    (lambda c: c["linux"].update(maskedPaths=["/etc/shadow"]),
     "masked or read-only path /etc/shadow"),
    (lambda c: c["linux"]["namespaces"].remove({"type": "network"}),
     "the host's network namespace (no network namespace in the spec) is not supported"),
], ids=["cap", "userns", "pidns-path", "mount-type", "sysctl", "masked", "host-net"])
def test_what_cannot_be_honoured_is_one_clear_error(runtime, bundle, change, message):
    container = new_id()
    bundle.edit(change)
    r = runtime("create", "--bundle", bundle.path, container)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = runtime.log_lines()
    assert len(lines) == 1 and message in lines[0]["msg"]
    assert leftovers(runtime, container) == []


def test_a_permissive_seccomp_profile_does_not_loosen_edgevisors_filters(runtime, bundle, out):
    """Attack: a spec whose profile allows everything, and a root guest that asks the host
    kernel for new namespaces (edgevisor's refusals filter says no)."""
    bundle.edit(lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW"}))
    bundle.command("sh", "-c", "unshare -n -m true 2> /out/err; echo $? > /out/status")
    host_ns = os.stat("/proc/self/ns/net").st_ino
    assert run_to_end(runtime, bundle) == 0
    assert open(f"{out}/status").read() != "0\n"
    assert os.stat("/proc/self/ns/net").st_ino == host_ns


@pytest.mark.parametrize("victim_exists", [False, True], ids=["dangling", "existing"])
def test_a_file_bind_never_follows_an_image_symlink_out_of_the_rootfs(runtime, bundle,
                                                                      victim_exists):
    """Attack: the image's /etc/hosts is a symlink to a host path; the spec binds a file
    there (as docker binds its hosts file). The host path is neither made nor covered."""
    victim = os.path.join(bundle.path, "victim")
    if victim_exists:
        open(victim, "w").write("host data\n")
    os.makedirs(f"{bundle.path}/rootfs/etc")
    os.symlink(victim, f"{bundle.path}/rootfs/etc/hosts")
    hosts = os.path.join(bundle.path, "hosts")
    open(hosts, "w").write("192.0.2.1 evil\n")
    bundle.edit(lambda c: (c["root"].update(readonly=False), c["mounts"].append(
        {"destination": "/etc/hosts", "type": "bind", "source": hosts,
         "options": ["rbind", "rw"]})))
    bundle.command("sh", "-c", "echo written > /etc/hosts")
    container = new_id()
    r = runtime("create", "--bundle", bundle.path, container)
    if r.returncode == 0:  # resolved inside the rootfs instead: then the guest writes there
        runtime("start", container)
        runtime("delete", "--force", container)
    if victim_exists:
        assert open(victim).read() == "host data\n"
    else:
        assert not os.path.lexists(victim)
    assert open(hosts).read() == "192.0.2.1 evil\n"
    assert os.readlink(f"{bundle.path}/rootfs/etc/hosts") == victim
    assert leftovers(runtime, container) == []


def test_capabilities_are_the_specs_as_far_as_edgevisor_grants_them(runtime, bundle, out):
    """runc spec's three (AUDIT_WRITE, KILL, NET_BIND_SERVICE), read from the host."""
    bundle.command("sh", "-c", "echo up > /out/up; exec sleep 1000")
    container = new_id()
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")
    guest = json.loads(runtime("ps", "--format", "json", container).stdout)[0]
    status = dict(line.split(":\t") for line in open(f"/proc/{guest}/status").read()
                  .splitlines() if ":\t" in line)
    wanted = (1 << 29) | (1 << 5) | (1 << 10)
    assert int(status["CapEff"], 16) == wanted and int(status["CapBnd"], 16) == wanted
    assert runtime("delete", "--force", container).returncode == 0
    assert wait_exit(pid) == 137
