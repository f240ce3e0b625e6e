"""Whole-sandbox costs that a syscall loop cannot show: the wall time of starting a command
(`/bin/true`, `python3 -c pass`) and the memory of the sandbox's own processes.

Memory is the PSS (proportional set size: each shared page divided among the processes
sharing it) from /proc/PID/smaps_rollup, summed over the runner's process tree while the
guest runs `python3 -c 'import time; time.sleep(5)'` (which first prints one line), sampled
once the guest has said it is up, so that a slow start on a loaded machine is not measured
half-way.
"own" leaves out the guest's own processes (those whose command line is the guest's): what
the sandbox costs on top of the program. Under runsc the guest has no host process of its
own (its memory is in the Sentry and its stub processes), so all of runsc's count.
"""

import os
import subprocess
import time

SLEEP = ["python3", "-c", "import sys, time; print('up', flush=True); time.sleep(5)"]
COMMANDS = {"do_true": ["/bin/true"], "do_python": ["python3", "-c", "pass"]}


def wall_ms(prefix, argv, cwd, env, timeout=120):
    """Wall time of one run, in ms; None if it failed."""
    start = time.perf_counter()
    p = subprocess.run(prefix + argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    elapsed = (time.perf_counter() - start) * 1e3
    return elapsed if p.returncode == 0 else None


def _children():
    """parent pid -> child pids, for every process."""
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return []


def pss_mib(prefix, cwd, env, settle=0.5):
    """(own, whole tree) PSS in MiB of the runner's processes around a sleeping python3,
    or None if the guest did not come up."""
    p = subprocess.Popen(prefix + SLEEP, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        if p.stdout.readline() != b"up\n":
            return None
        time.sleep(settle)
        if p.poll() is not None:
            return None
        tree, pids, todo = _children(), [], [p.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(tree.get(pid, ()))
        guest = [arg.encode() for arg in SLEEP]
        own = sum(_pss_kib(pid) for pid in pids if _cmdline(pid) != guest)
        whole = sum(_pss_kib(pid) for pid in pids)
        return own / 1024, whole / 1024
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
