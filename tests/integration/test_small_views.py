"""Small /proc views programs read: /proc/self/cgroup (as in a cgroup namespace of the
sandbox's own, the native oracle being `unshare --cgroup`) and /proc/self/statm (top's VIRT
and RES)."""

import subprocess


def test_proc_self_cgroup_is_as_in_a_cgroup_namespace(sandbox):
    native = subprocess.run(["unshare", "--cgroup", "cat", "/proc/self/cgroup"],
                            capture_output=True, text=True, check=True)
    r = sandbox("cat", "/proc/self/cgroup")
    assert (r.returncode, r.stdout) == (0, native.stdout), r.stderr


def test_statm_has_the_tasks_own_sizes(sandbox):
    native = open("/proc/self/statm").read().split()
    r = sandbox("cat", "/proc/self/statm")
    assert r.returncode == 0, r.stderr
    fields = r.stdout.split()
    assert len(fields) == len(native) and all(f.isdigit() for f in fields)
    size, resident = int(fields[0]), int(fields[1])
    assert size > 0 and 0 < resident <= size


def test_top_shows_virt_and_res(sandbox):
    r = sandbox("sh", "-c", "top -b -n 1 | awk '$NF == \"top\"'")
    assert r.returncode == 0, r.stderr
    pid, user, pr, ni, virt, res = r.stdout.split()[:6]
    assert int(virt) > 0 and int(res) > 0, r.stdout
