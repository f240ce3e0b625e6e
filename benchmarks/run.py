#!/usr/bin/env python3
"""Syscall microbenchmarks: native vs edgevisor (seccomp, ptrace) vs runsc vs proot.

    python3 benchmarks/run.py [--runs N] [--only a,b] [--runners native,seccomp,...]
                              [--scale X] [--binary PATH] [--json FILE] [--plot FILE.png]
                              [--update-readme]

Compiles syscall_bench.c with `cc -O2`, then for every run and every runner starts
ONE process, `syscall_bench all SCALE [names]`, which runs all the benchmarks and
prints one "NAME ns_per_op" line each, so sandbox start-up cost stays out of the
numbers. Start-up (do_true, do_python) and memory (pss) are measured apart, one
sandbox per sample (startup.py). Runs are interleaved across runners so that drift in a
noisy machine hits all of them alike. See benchmarks/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import startup

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SOURCE = os.path.join(HERE, "syscall_bench.c")
# Bytes one operation moves, for a throughput column: read100m reads its whole file
# (READ_CHUNKS * MIB in syscall_bench.c), tcp_1g sends TCP_1G_BYTES.
BYTES_PER_OP = {"read100m": 100 * 2**20, "tcp_1g": 2**30}

# Iterations = the program's default (about 0.2-1 s natively) * this scale. Sandboxes
# that stop on every syscall cost 10-100 us per call, so they get far fewer.
SCALE = {"native": 1.0, "native-tmpfs": 1.0, "allow-all": 1.0, "seccomp": 0.02, "ptrace": 0.01,
         "runsc": 0.01, "proot": 0.005}
RUNNERS = list(SCALE)
UNSANDBOXED = ("native", "native-tmpfs", "allow-all")
# native-tmpfs puts the scratch files on this host tmpfs: edgevisor's /tmp is a tmpfs, the
# host's may not be, and file systems differ (on ext4, 1 MiB reads are 3-4x faster).
HOST_TMPFS = "/dev/shm"


# Measured by startup.py rather than by syscall_bench: name -> unit.
WHOLE_RUN = {"do_true": "ms", "do_python": "ms", "pss": "MiB"}
WHOLE_RUN_RUNNERS = ("native", "seccomp", "ptrace", "runsc", "proot")
# The rows and columns of the summary (issue 12's table), which --update-readme puts in
# README.md between these two lines.
SUMMARY_ROWS = [
    ("open_close_rootfs", "open + close (/usr/bin/env, in the rootfs)"),
    ("stat_rootfs", "stat (/usr/bin/env)"),
    ("getpid", "getpid (emulated)"),
    ("getppid", "getppid (emulated)"),
    ("gettid", "gettid (emulated)"),
    ("uname", "uname (emulated)"),
    ("socket", "socket + close (AF_UNIX)"),
    ("do_true", "`do /bin/true`, wall"),
    ("do_python", "`do python3 -c pass`, wall"),
    ("pss", "PSS of the sandbox's own processes, `python3` sleeping"),
]
SUMMARY_RUNNERS = ("native", "seccomp", "ptrace", "runsc", "proot")
README_BEGIN = "<!-- benchmarks/run.py --update-readme: begin -->"
README_END = "<!-- benchmarks/run.py --update-readme: end -->"


class Unavailable(Exception):
    pass


BINARY = None  # --binary: an installed edgevisor command to time instead of this checkout


def edgevisor_cmd():
    """This checkout's edgevisor, run by this interpreter: an `edgevisor` on PATH may be
    another checkout's, or a shim (pyenv's) whose own start-up would be timed with it.
    With --binary, that command (a venv's bin/edgevisor, as the README installs it)."""
    if BINARY:
        return [BINARY]
    probe = subprocess.run([sys.executable, "-m", "edgevisor.cli", "--help"], cwd=REPO,
                           capture_output=True, text=True, env=edgevisor_env())
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["exit status %d" % probe.returncode])[-1]
        raise Unavailable("`python3 -m edgevisor.cli` fails: " + last)
    # As an installed package would be: compiled once, not at every start (the environment
    # may say PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "edgevisor")],
                   check=True, stdout=subprocess.DEVNULL)
    return [sys.executable, "-m", "edgevisor.cli"]


def edgevisor_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return env


def runner_prefix(name):
    """The command that runs a program under this runner, or raise Unavailable."""
    if name == "native":
        return []
    if name == "native-tmpfs":
        if mount_type(HOST_TMPFS) != "tmpfs":
            raise Unavailable("%s is not a tmpfs here" % HOST_TMPFS)
        return ["env", "BENCH_TMPDIR=" + HOST_TMPFS]
    if name == "allow-all":  # native under a trivial seccomp filter: the kernel's fixed cost
        return ["env", "BENCH_SECCOMP_FLOOR=1"]
    if name in ("seccomp", "ptrace"):
        return edgevisor_cmd() + ["do", "--platform=" + name, "--"]
    tool = {"runsc": "runsc", "proot": "proot"}[name]
    if not shutil.which(tool):
        raise Unavailable("`%s` not found on PATH" % tool)
    if name == "runsc":
        return ["runsc", "--network=none", "--platform=ptrace", "do"]
    return ["proot", "-r", "/"]


def mount_type(path):
    """The file system type of the mount at exactly `path`, or None."""
    with open("/proc/self/mounts") as f:
        types = [fields[2] for fields in map(str.split, f) if fields[1] == path]
    return types[-1] if types else None


def pin_and_check_compiler(ap, pin, script):
    """--pin CPU for this process and everything it starts; a C compiler must exist."""
    if pin is not None:
        try:
            os.sched_setaffinity(0, {pin})  # inherited by everything we start
        except OSError as e:
            ap.error("--pin %d: %s" % (pin, e.strerror))
    if not shutil.which("cc"):
        sys.exit("%s: no C compiler: `cc` not found on PATH" % script)


def machine_info(pin):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    u = platform.uname()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kernel": "%s %s %s" % (u.system, u.release, u.machine),
        "cpu": "%s (%d CPUs)" % (cpu, os.cpu_count() or 0),
        "cpus used": "all (not pinned)" if pin is None else "pinned to CPU %d" % pin,
        "host /tmp": mount_type("/tmp") or "part of " + (mount_type("/") or "?"),
        "note": "shared, noisy VM: expect run-to-run spread; compare medians and "
                "orders of magnitude, not small differences",
    }


def measure_whole_runs(samples, prefix, runner, names):
    """One sample of each start-up and memory benchmark in `names` under this runner."""
    if runner not in WHOLE_RUN_RUNNERS:
        return
    env = edgevisor_env()
    for name in names:
        if name == "pss":
            both = startup.pss_mib(prefix, REPO, env)
            value = both[0] if runner != "native" and both else both and both[1]
        elif name in startup.COMMANDS:
            value = startup.wall_ms(prefix, startup.COMMANDS[name], REPO, env)
        else:
            continue
        samples[(name, runner)].append("FAIL" if value is None else float(value))


def run_all(prefix, binary, scale, names, timeout):
    """One sandboxed process running every benchmark. Returns (env_line, {name: ns or 'FAIL ...'})."""
    cmd = prefix + [binary, "all", repr(scale), ",".join(names)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=REPO, env=edgevisor_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Unavailable("timed out after %d s: %s" % (timeout, " ".join(cmd)))
    env_line, results = None, {}
    for line in p.stdout.splitlines():
        if line.startswith("# "):
            env_line = line[2:]
            continue
        name, _, rest = line.partition(" ")
        if name in names:
            results[name] = float(rest) if not rest.startswith("FAIL") else rest
    if env_line is None or not results:
        why = (p.stderr.strip().splitlines() or [p.stdout.strip() or "no output"])[-1]
        raise Unavailable("exit status %d: %s" % (p.returncode, why))
    return env_line, results


def fmt(ns):
    return "%.1f" % ns if ns < 1000 else "{:,.0f}".format(ns)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per runner (default 5)")
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument("--runners", default=",".join(RUNNERS), help="default: %(default)s")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every runner's iteration counts by this")
    ap.add_argument("--pin", type=int, metavar="CPU",
                    help="pin every process (and so sandbox and guest) to this one CPU")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per process")
    ap.add_argument("--binary", metavar="PATH",
                    help="time this installed edgevisor command (a venv's bin/edgevisor) "
                         "instead of this checkout run by this interpreter")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--plot", metavar="FILE.png",
                    help="draw the summary as a bar chart (needs matplotlib: pip install .[bench])")
    ap.add_argument("--update-readme", action="store_true",
                    help="rewrite the benchmark table in README.md with this run's summary")
    args = ap.parse_args()
    global BINARY
    BINARY = args.binary and os.path.abspath(args.binary)
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    bad = [r for r in runners if r not in SCALE]
    if bad or args.runs < 1 or args.scale <= 0:
        ap.error("unknown runner(s): %s" % ", ".join(bad) if bad else "--runs and --scale must be positive")
    pin_and_check_compiler(ap, args.pin, "run.py")

    # The binary must be readable inside every sandbox. /var/tmp is part of the host
    # root that runsc and proot show the guest; a sandbox's /tmp may be a fresh tmpfs.
    tmp = tempfile.mkdtemp(prefix="syscall_bench-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None)
    try:
        binary = os.path.join(tmp, "syscall_bench")
        subprocess.run(["cc", "-O2", "-pthread", "-o", binary, SOURCE], check=True)
        os.chmod(tmp, 0o755)
        listing = subprocess.run([binary, "list"], capture_output=True, text=True, check=True).stdout
        # name -> (default iterations, minimum iterations in `all` mode)
        defaults = {name: (int(iters), int(least)) for name, iters, least in map(str.split, listing.splitlines())}
        names = [*defaults, *WHOLE_RUN]
        if args.only:
            names = [n.strip() for n in args.only.split(",") if n.strip()]
            unknown = [n for n in names if n not in defaults and n not in WHOLE_RUN]
            if unknown:
                sys.exit("run.py: unknown benchmark(s): %s (known: %s)" % (", ".join(unknown), ", ".join(defaults)))
        report = run(args, runners, binary, names, defaults)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print_report(report, runners, names)
    table = summary_markdown(report)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.plot:
        plot(report, args.plot)
    if args.update_readme:
        update_readme(report, table, args.plot)
    failed = any(isinstance(v, str) for r in report["results"] for v in r["runs"])
    return 1 if failed or "native" in report["unavailable"] else 0


def run(args, runners, binary, names, defaults):
    info = machine_info(args.pin)
    for key, value in info.items():
        print("%-10s %s" % (key + ":", value))
    print(flush=True)
    prefixes, unavailable, seen = {}, {}, {}
    for r in runners:
        try:
            prefixes[r] = runner_prefix(r)
        except Unavailable as e:
            unavailable[r] = str(e)
    samples = {(b, r): [] for b in names for r in runners}
    looped = [n for n in names if n not in WHOLE_RUN]
    for i in range(args.runs):
        for r in runners:
            if r in unavailable:
                continue
            measure_whole_runs(samples, prefixes[r], r, names)
            if not looped:
                continue
            scale = SCALE[r] * args.scale
            print("run %d/%d: %-12s ..." % (i + 1, args.runs, r), end=" ", file=sys.stderr, flush=True)
            try:
                seen[r], results = run_all(prefixes[r], binary, scale, looped, args.timeout)
            except Unavailable as e:
                unavailable[r] = str(e) if i == 0 else "failed on run %d: %s" % (i + 1, e)
                print("unavailable", file=sys.stderr)
                continue
            print("done", file=sys.stderr)
            for b, v in results.items():
                samples[(b, r)].append(v)

    results = []
    for b in names:
        native = samples[(b, "native")] if "native" in runners else []
        native_med = statistics.median(native) if native and all(isinstance(v, float) for v in native) else None
        for r in runners:
            vals = samples[(b, r)]
            if r in unavailable or not vals:
                continue
            row = {"benchmark": b, "runner": r, "runs": vals, "unit": WHOLE_RUN.get(b, "ns"),
                   "iters": 1 if b in WHOLE_RUN else
                   max(defaults[b][1], int(defaults[b][0] * SCALE[r] * args.scale))}
            ok = [v for v in vals if isinstance(v, float)]
            if len(ok) == len(vals):
                row.update(min=min(ok), median=statistics.median(ok), max=max(ok))
                row["ratio"] = row["median"] / native_med if native_med and b != "pss" else None
                if b in BYTES_PER_OP:
                    row["MiB/s"] = BYTES_PER_OP[b] / 2**20 / (row["median"] / 1e9)
            results.append(row)
    return {"machine": info, "runners": {r: " ".join(prefixes[r] + ["BIN", "all", "SCALE"])
                                         for r in prefixes if r not in unavailable},
            "seen_inside": seen, "unavailable": unavailable, "results": results}


def unsandboxed_warning(env, sandboxed):
    """A warning for a sandboxed runner whose program saw what a plain process sees ("" else).
    A sandbox shows another kernel (runsc), a tracer (ptrace, proot) or a pid namespace of its
    own (edgevisor's guest is pid 1 of its own, as runsc's)."""
    fields = dict(kv.split("=", 1) for kv in env.split() if "=" in kv)
    plain = fields.get("kernel") == platform.uname().release \
        and fields.get("tracer_pid") in ("0", "-1") and fields.get("pid") != "1"
    return "   <-- WARNING: looks unsandboxed" if sandboxed and plain else ""


def print_report(report, runners, names):
    for r in runners:
        if r in report["unavailable"]:
            print("%-12s unavailable: %s" % (r, report["unavailable"][r]))
        elif r in report["seen_inside"]:
            env = report["seen_inside"][r]
            warn = unsandboxed_warning(env, r not in UNSANDBOXED)
            print("%-12s %s   [inside: %s]%s" % (r, report["runners"][r], env, warn))
    print()
    head = ("benchmark", "runner", "iters", "min ns", "median ns", "max ns", "x native")
    line = "%-17s %-12s %8s %14s %14s %14s %9s"
    print(line % head)
    print("-" * 94)
    for b in names:
        rows = [row for row in report["results"] if row["benchmark"] == b]
        for k, row in enumerate(rows):
            label = b if k == 0 else ""
            if "median" not in row:
                fail = next(v for v in row["runs"] if isinstance(v, str))
                print("%-17s %-12s %8d   %s" % (label, row["runner"], row["iters"], fail))
                continue
            ratio = "-" if row["ratio"] is None else "%.2f" % row["ratio"] if row["ratio"] < 10 \
                else "{:,.0f}".format(row["ratio"])
            rate = "   %s MiB/s" % "{:,.0f}".format(row["MiB/s"]) if "MiB/s" in row else ""
            unit = "" if row.get("unit", "ns") == "ns" else " " + row["unit"]
            print(line % (label, row["runner"], row["iters"], fmt(row["min"]),
                          fmt(row["median"]) + unit, fmt(row["max"]), ratio) + rate)
    print()
    print("ns = nanoseconds per operation (pipe_pingpong, tcp_rr: per round trip; getdents1000: "
          "per listing of the directory; read100m: per read of the whole file, tcp_1g: per 1 GiB "
          "transfer, and MiB/s from the median); x native = median / native median. do_true, "
          "do_python: wall ms of one whole run; pss: MiB of the sandbox's own processes "
          "(native: the program itself).")


def _medians(report):
    return {(row["benchmark"], row["runner"]): row["median"]
            for row in report["results"] if "median" in row}


def _with_unit(value, unit):
    if unit == "ns":
        return "%.0f ns" % value if value < 1000 else "%.1f µs" % (value / 1e3) \
            if value < 1e6 else "%.1f ms" % (value / 1e6)
    return "%.1f %s" % (value, unit) if value < 100 else "%.0f %s" % (value, unit)


def summary_markdown(report):
    """Issue 12's table: the chosen ops, each runner's median, and edgevisor / runsc."""
    med = _medians(report)
    runners = [r for r in SUMMARY_RUNNERS if any((b, r) in med for b, _ in SUMMARY_ROWS)]
    head = ["op", *(RUNNER_TITLES[r] for r in runners)]
    ratios = [r for r in ("seccomp", "ptrace") if r in runners and "runsc" in runners]
    head += ["%s / runsc" % r for r in ratios]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for name, title in SUMMARY_ROWS:
        if not any((name, r) in med for r in runners):
            continue
        unit = WHOLE_RUN.get(name, "ns")
        cells = [_with_unit(med[(name, r)], unit) if (name, r) in med else "—" for r in runners]
        for r in ratios:
            both = (name, r) in med and med.get((name, "runsc"))
            cells.append("%.2f×" % (med[(name, r)] / med[(name, "runsc")]) if both else "—")
        lines.append("| " + " | ".join([title, *cells]) + " |")
    return "\n".join(lines) + "\n"


RUNNER_TITLES = {"native": "native", "seccomp": "edgevisor seccomp",
                 "ptrace": "edgevisor ptrace", "runsc": "runsc-ptrace", "proot": "proot",
                 "native-tmpfs": "native (tmpfs)", "allow-all": "allow-all"}


def plot(report, path):
    """The summary as a bar chart: one group per op, one bar per runner, log scale."""
    try:
        import matplotlib
    except ImportError:
        sys.exit("run.py: --plot needs matplotlib (pip install '.[bench]')")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    med = _medians(report)
    rows = [(n, t) for n, t in SUMMARY_ROWS if any((n, r) in med for r in SUMMARY_RUNNERS)]
    runners = [r for r in SUMMARY_RUNNERS if any((n, r) in med for n, _ in rows)]
    width = 0.8 / max(len(runners), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(rows)), 4.5))
    for k, r in enumerate(runners):
        xs = [i + (k - (len(runners) - 1) / 2) * width for i, (n, _) in enumerate(rows)
              if med.get((n, r))]
        ys = [med[(n, r)] for n, _ in rows if med.get((n, r))]
        ax.bar(xs, ys, width, label=RUNNER_TITLES[r])
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(["%s\n(%s)" % (n, WHOLE_RUN.get(n, "ns")) for n, _ in rows], fontsize=8)
    ax.set_ylabel("median, log scale (unit under each op); lower is better")
    ax.set_title("edgevisor vs runsc vs proot, %s" % report["machine"]["date"][:10])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("run.py: wrote %s" % path)


def update_readme(report, table, image):
    """Rewrite the block between README_BEGIN and README_END in README.md."""
    readme = os.path.join(REPO, "README.md")
    with open(readme) as f:
        text = f.read()
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        sys.exit("run.py: README.md needs exactly one %s ... %s block" % (README_BEGIN, README_END))
    info = report["machine"]
    runs = max((len(row["runs"]) for row in report["results"]), default=0)
    block = ["", "Medians of %d runs, %s, %s, %s (`python3 benchmarks/run.py --update-readme`)."
             % (runs, info["date"][:10], info["kernel"], info["cpu"]), "", table.rstrip("\n")]
    if image:
        block += ["", "![benchmark chart](%s)" % os.path.relpath(os.path.abspath(image), REPO)]
    head, rest = text.split(README_BEGIN)
    tail = rest.split(README_END)[1]
    with open(readme, "w") as f:
        f.write(head + README_BEGIN + "\n".join(block) + "\n" + README_END + tail)
    print("run.py: updated %s" % readme)


if __name__ == "__main__":
    sys.exit(main())
