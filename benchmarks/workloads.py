#!/usr/bin/env python3
"""Real workloads: native vs edgevisor (seccomp, ptrace) vs runsc, wall time and ratios.

    python3 benchmarks/workloads.py [--only a,b] [--quick] [--runs N]
                                    [--runners native,seccomp,ptrace,runsc] [--json FILE]

Each workload is one command, timed whole (start-up included) under each runner; rounds go
through the runners in turn, and the table shows medians and the ratios issue 12 sets goals
for (seccomp / native, seccomp / runsc). The inputs (a git repository of 30 000 files, a
50-file C project, a wheel) are made once, under /var/tmp, which every runner shows its guest
(a sandbox's /tmp is its own); whatever a workload writes goes to a fresh directory it
removes. --quick makes smaller inputs and runs each once: a check that everything works, not
a measurement. See benchmarks/README.md.
"""
import argparse
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUNNERS = ("native", "seccomp", "ptrace", "runsc")
HTTP_REQUESTS = 2000
GUEST_PORT = 8000
SERVER_START_TIMEOUT = 120  # seconds until the sandboxed server must answer
# The stdlib's own tests, which hold files that must not compile (badsyntax_*.py, Python 2), and
# what was installed beside it.
SKIPPED_DIRS = "/(test|tests|idle_test|site-packages)/"
SCRATCH = 'd=$(mktemp -d) && trap \'rm -rf "$d"\' EXIT && '  # a directory the command may write


class Unavailable(Exception):
    pass


def runner_prefix(name, publish=None):
    """The command that runs a program under this runner; `publish` = (host port, guest
    port) makes the guest's port reachable from the host."""
    if name == "native":
        return []
    if name in ("seccomp", "ptrace"):
        ports = ["-p", "127.0.0.1:%d:%d" % publish] if publish else []
        return [sys.executable, "-m", "edgevisor.cli", "do", "--platform=" + name, *ports, "--"]
    if not shutil.which("runsc"):
        raise Unavailable("`runsc` not found on PATH")
    if publish:
        # Measured: with --network=host the server says it listens but the host cannot
        # connect, and runsc's own network needs a network namespace made beforehand.
        raise Unavailable("`runsc do` publishes no ports to the host")
    return ["runsc", "--platform=ptrace", "--network=none", "do"]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, e.get("PYTHONPATH")]))
    return e


# --- inputs ---------------------------------------------------------------------------

def make_git_repo(where, files):
    """A repository of `files` small files in 100 directories, in three commits (so that
    `git log -p` has history to show)."""
    repo = os.path.join(where, "repo")
    os.mkdir(repo)
    for i in range(files):
        d = os.path.join(repo, "d%03d" % (i % 100))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
            f.write("file %d\nline two\n" % i)
    git = ["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost",
           "-c", "gc.auto=0"]  # no gc of its own in the background: one, below
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "files"], check=True)
    for n in range(2):
        for i in range(0, files, 97):
            with open(os.path.join(repo, "d%03d" % (i % 100), "f%05d.txt" % i), "a") as f:
                f.write("change %d\n" % n)
        subprocess.run(git + ["commit", "-qam", "change %d" % n], check=True)
    # Packed, as a cloned repository is (loose objects would make `git log -p` open a file
    # per blob), with a fresh index: git status then only compares, as in daily use.
    subprocess.run(git + ["gc", "-q"], check=True)
    subprocess.run(git + ["status", "-s"], check=True, stdout=subprocess.DEVNULL)
    return repo


def make_c_project(where, files):
    src = os.path.join(where, "cproject")
    os.mkdir(src)
    objs = []
    for i in range(files):
        with open(os.path.join(src, "m%02d.c" % i), "w") as f:
            f.write('#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n'
                    'int f%d(int x) {\n  char b[64]; snprintf(b, sizeof b, "%%d", x);\n'
                    '  return (int)strlen(b) + atoi(b) * %d;\n}\n' % (i, i))
        objs.append("m%02d.o" % i)
    with open(os.path.join(src, "main.c"), "w") as f:
        f.write("".join("int f%d(int);\n" % i for i in range(files)))
        f.write("int main(void) { int s = 0;\n%s  return s == 42; }\n"
                % "".join("  s += f%d(%d);\n" % (i, i) for i in range(files)))
    with open(os.path.join(src, "Makefile"), "w") as f:
        f.write("CFLAGS = -O2\nprog: main.o %s\n\t$(CC) -o $@ $^\n" % " ".join(objs))
    return src


def make_wheel(where):
    """A pure-Python wheel, written directly (no build backend, no network)."""
    path = os.path.join(where, "benchpkg-1.0-py3-none-any.whl")
    dist = "benchpkg-1.0.dist-info"
    files = {
        "benchpkg/__init__.py": "VALUE = 1\n",
        dist + "/METADATA": "Metadata-Version: 2.1\nName: benchpkg\nVersion: 1.0\n",
        dist + "/WHEEL": "Wheel-Version: 1.0\nGenerator: workloads.py\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
        dist + "/top_level.txt": "benchpkg\n",
    }
    record = "".join("%s,,\n" % name for name in files) + dist + "/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(dist + "/RECORD", record)
    return path


# --- workloads ------------------------------------------------------------------------

def workloads(inputs, quick):
    """name -> (title, argv). Quick runs take smaller trees."""
    usr_share = "/usr/share/doc" if quick else "/usr/share"
    usr = "/usr/include" if quick else "/usr"
    stdlib = sysconfig.get_paths()["stdlib"]
    compile_dir = os.path.join(stdlib, "json") if quick else stdlib
    rows = 10000 if quick else 100000
    sql = ("create table t(id integer primary key, v text); begin; "
           "with recursive c(i) as (select 1 union all select i + 1 from c where i < %d) "
           "insert into t(v) select hex(randomblob(16)) from c; commit; "
           "create index tv on t(v); select count(*), max(length(v)) from t where v like 'A%%';"
           % rows)
    return {
        "git_status": ("`git status`, %d-file repository" % inputs["files"],
                       ["git", "-C", inputs["repo"], "status", "--porcelain"]),
        "git_log": ("`git log -p | wc`", ["sh", "-c", "git -C '%s' log -p | wc" % inputs["repo"]]),
        "du": ("`du -sh %s`" % usr, ["du", "-sh", usr]),
        "make": ("`make -j2`, %d C files" % inputs["c_files"],
                 ["sh", "-c", SCRATCH + "cp -r '%s/.' \"$d\" && make -s -j2 -C \"$d\""
                  % inputs["cproject"]]),
        "compileall": ("`python3 -m compileall` %s" % ("json" if quick else "the stdlib"),
                       ["sh", "-c", SCRATCH + "PYTHONPYCACHEPREFIX=\"$d\" python3 -m compileall"
                        " -q -f -j1 -x '%s' '%s' >/dev/null" % (SKIPPED_DIRS, compile_dir)]),
        "tar": ("`tar c %s | wc -c`" % usr_share,
                ["sh", "-c", "tar cf - %s 2>/dev/null | wc -c" % usr_share]),
        "find": ("`find %s | wc -l`" % usr, ["sh", "-c", "find %s | wc -l" % usr]),
        "sqlite3": ("sqlite3, %d rows inserted and queried" % rows,
                    ["sh", "-c", SCRATCH + "sqlite3 \"$d/db\" \"%s\"" % sql]),
        "pip": ("`pip install --no-index` of a local wheel",
                ["sh", "-c", SCRATCH + "python3 -m pip install -q --no-index --no-deps "
                 "--disable-pip-version-check --target \"$d\" '%s'" % inputs["wheel"]]),
        "http": ("http.server, %d requests through `-p`" % inputs["requests"],
                 ["python3", "-m", "http.server", str(GUEST_PORT), "--bind", "127.0.0.1",
                  "--directory", inputs["www"]]),
    }


def time_command(prefix, argv, timeout):
    start = time.perf_counter()
    p = subprocess.run(prefix + argv, env=env(), cwd=REPO, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        last = (p.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise Unavailable("exit status %d: %s" % (p.returncode, last))
    return elapsed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_http(runner, argv, requests, timeout):
    """Start the server, wait until it answers, then time `requests` GETs from the host."""
    port = free_port()
    if runner == "native":  # the server is on the host's network: its own port
        argv = [a if a != str(GUEST_PORT) else str(port) for a in argv]
    prefix = runner_prefix(runner, (port, GUEST_PORT))
    server = subprocess.Popen(prefix + argv, env=env(), cwd=REPO, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + min(timeout, SERVER_START_TIMEOUT)
        while True:
            if server.poll() is not None:
                raise Unavailable("the server exited with status %d" % server.returncode)
            try:
                _get(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Unavailable("the server did not answer within %d s" % timeout)
                time.sleep(0.05)
        start = time.perf_counter()
        for _ in range(requests):
            _get(port)
        return time.perf_counter() - start
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # and whatever the runner started
        server.wait()


def _get(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/index.html")
        r = c.getresponse()
        if r.status != 200 or r.read() != b"hello\n":
            raise OSError("bad answer %d" % r.status)
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--quick", action="store_true",
                    help="small inputs, one run: a check that each workload works")
    ap.add_argument("--runs", type=int, help="runs per runner (default 5, --quick 1)")
    ap.add_argument("--runners", default=",".join(RUNNERS), help="default: %(default)s")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per command")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 5)
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    if any(r not in RUNNERS for r in runners) or runs < 1:
        ap.error("runners are %s; --runs must be positive" % ", ".join(RUNNERS))
    for tool in ("git", "make", "cc", "sqlite3", "tar", "du", "find"):
        if not shutil.which(tool):
            sys.exit("workloads.py: `%s` not found on PATH" % tool)

    where = tempfile.mkdtemp(prefix="workloads-", dir="/var/tmp")
    try:
        os.chmod(where, 0o755)
        files, c_files = (3000, 10) if args.quick else (30000, 50)
        print("making inputs in %s ..." % where, file=sys.stderr, flush=True)
        www = os.path.join(where, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello\n")
        inputs = {"files": files, "repo": make_git_repo(where, files), "c_files": c_files,
                  "cproject": make_c_project(where, c_files), "wheel": make_wheel(where),
                  "www": www, "requests": 200 if args.quick else HTTP_REQUESTS}
        # As an installed package would be: compiled once, not at every start.
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "edgevisor")],
                       check=True, stdout=subprocess.DEVNULL)
        table = workloads(inputs, args.quick)
        names = list(table)
        if args.only:
            names = [n.strip() for n in args.only.split(",") if n.strip()]
            unknown = [n for n in names if n not in table]
            if unknown:
                sys.exit("workloads.py: unknown workload(s): %s (known: %s)"
                         % (", ".join(unknown), ", ".join(table)))
        report = measure(table, names, runners, runs, inputs, args.timeout)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    print(markdown(report, table, names, runners))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 1 if report["failed"] else 0


def measure(table, names, runners, runs, inputs, timeout):
    samples = {(n, r): [] for n in names for r in runners}
    failed, unavailable = {}, {}
    for i in range(runs):
        for n in names:
            for r in runners:
                if (n, r) in failed or (n, r) in unavailable:
                    continue
                print("run %d/%d: %-10s %-8s ..." % (i + 1, runs, n, r), end=" ",
                      file=sys.stderr, flush=True)
                try:
                    prefix = runner_prefix(r, (0, GUEST_PORT) if n == "http" else None)
                except Unavailable as e:
                    unavailable[(n, r)] = str(e)
                    print("unavailable: %s" % e, file=sys.stderr)
                    continue
                try:
                    if n == "http":
                        t = time_http(r, table[n][1], inputs["requests"], timeout)
                    else:
                        t = time_command(prefix, table[n][1], timeout)
                except (Unavailable, subprocess.TimeoutExpired) as e:
                    failed[(n, r)] = str(e)
                    print("failed: %s" % e, file=sys.stderr)
                    continue
                print("%.2f s" % t, file=sys.stderr)
                samples[(n, r)].append(t)
    medians = {"%s/%s" % key: statistics.median(v) for key, v in samples.items()
               if v and key not in failed}
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "runs": runs, "medians": medians,
            "samples": {"%s/%s" % k: v for k, v in samples.items()},
            "failed": {"%s/%s" % k: v for k, v in failed.items()},
            "unavailable": {"%s/%s" % k: v for k, v in unavailable.items()}}


def markdown(report, table, names, runners):
    med = report["medians"]
    ratios = [(a, b) for a, b in (("seccomp", "native"), ("seccomp", "runsc"),
                                  ("ptrace", "native"), ("ptrace", "runsc"))
              if a in runners and b in runners]
    head = ["workload", *runners, *("%s / %s" % pair for pair in ratios)]
    lines = ["Medians of %d runs, %s; wall seconds, start-up included."
             % (report["runs"], report["date"]),
             "", "| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for n in names:
        cells = [table[n][0].replace("|", "\\|")]  # a pipe in a command would end the cell
        for r in runners:
            v = med.get("%s/%s" % (n, r))
            key = "%s/%s" % (n, r)
            cells.append("%.2f s" % v if v is not None else
                         "n/a" if key in report.get("unavailable", {}) else "failed")
        for a, b in ratios:
            va, vb = med.get("%s/%s" % (n, a)), med.get("%s/%s" % (n, b))
            cells.append("%.2f×" % (va / vb) if va is not None and vb else "—")
        lines.append("| " + " | ".join(cells) + " |")
    for key, why in report.get("unavailable", {}).items():
        lines.append("\n%s: n/a, %s" % (key, why))
    for key, why in report["failed"].items():
        lines.append("\n%s failed: %s" % (key, why))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
