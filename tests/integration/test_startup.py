"""Start-up: --debug says where the time went, and a warm cache of compiled filters spares
the front end libseccomp (issue 12)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile


STEPS = ["interpreter", "imports", "table", "filters", "fork, namespaces, /proc", "storage",
         "kernel state, guest fork", "attach", "guest view", "guest filter", "gofer",
         "file system", "publisher, Sentry filter"]


def test_debug_logs_each_start_up_step(sandbox):
    r = sandbox("/bin/true", flags=("--debug",))
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "start-up" in line]
    assert len(lines) == 1, r.stderr
    m = re.fullmatch(r"edgevisor: start-up ([\d.]+) ms: (.*) \(ms\)", lines[0])
    assert m, lines[0]
    steps = [step.rsplit(" ", 1) for step in m.group(2).split("; ")]
    names = [name for name, _ in steps]
    assert names == STEPS, lines[0]
    assert abs(sum(float(ms) for _, ms in steps) - float(m.group(1))) < 0.1 * len(steps)


def test_without_debug_no_start_up_line(sandbox):
    r = sandbox("/bin/true")
    assert (r.returncode, r.stderr) == (0, "")


FRONT_END = """
import sys
from edgevisor.cli import main
code = main(sys.argv[1:])
print("pyseccomp" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def test_a_warm_cache_spares_the_front_end_libseccomp(platform):
    cache = tempfile.mkdtemp(prefix="edgevisor-bpf-", dir="/var/tmp")  # the Sentry's /tmp is its own
    try:
        os.chmod(cache, 0o755)
        env = {**os.environ, "EDGEVISOR_BPF_CACHE": cache}
        runs = [subprocess.run([sys.executable, "-c", FRONT_END, "do", f"--platform={platform}",
                                "--", "/bin/true"], env=env, capture_output=True, text=True,
                               timeout=120) for _ in range(2)]
        assert [(r.returncode, r.stderr) for r in runs] == [(0, "True\n"), (0, "False\n")]
    finally:
        shutil.rmtree(cache)
