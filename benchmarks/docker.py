#!/usr/bin/env python3
"""Wall time of a whole container through docker: `docker run --rm --runtime=R IMAGE CMD`.

    python3 benchmarks/docker.py [--runs N] [--runtimes runc,edgevisor-seccomp,...]
                                 [--tree DIR | --binary PATH] [--json FILE]

Starts a dockerd and containerd of its own (tests/docker/daemon.py, as the docker tests do),
imports the busybox and python3 images the tests use, and registers runc, edgevisor on each
platform (runtimeArgs `--platform=P`; `--tree` runs another checkout's edgevisor, `--binary`
an installed `edgevisor` command, as the README installs it in a venv) and runsc
where it is installed (Debian's runsc needs `--network=none`). Each runtime runs each workload
once to warm up (a failure makes it unavailable, with the reason), then `--runs` rounds go
through the runtimes in turn, so drift on the machine hits all of them alike. The report gives
medians and each median's ratio to runc's. Needs root.
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import machine_info

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.docker import images  # noqa: E402
from tests.docker.daemon import (Daemon, edgevisor_runtimes, missing,  # noqa: E402
                                 runtime_wrapper)

RUNTIMES = ["runc", "edgevisor-seccomp", "edgevisor-ptrace", "runsc"]
WORKLOADS = {
    "busybox true": ("busybox", ["true"]),
    "python3 -c pass": ("python3", ["python3", "-c", "pass"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--tree", type=Path, default=REPO,
                        help="the edgevisor checkout the runtime wrapper runs")
    parser.add_argument("--binary", type=Path,
                        help="an installed edgevisor command (a venv's bin/edgevisor) to "
                             "register instead of a wrapper around --tree")
    parser.add_argument("--json", help="also write the samples and medians here")
    args = parser.parse_args()
    why = missing()
    if why:
        sys.exit(f"docker.py: {why}")
    wanted = args.runtimes.split(",")

    if not args.binary:
        # As an installed package would be: compiled once, not at every runtime call (the
        # environment may say PYTHONDONTWRITEBYTECODE).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(args.tree / "edgevisor")],
                       check=True, stdout=subprocess.DEVNULL)
    daemon = Daemon(prefix="edgevisor-bench-")
    runtimes = edgevisor_runtimes(args.binary.resolve() if args.binary
                                  else runtime_wrapper(daemon.dir, args.tree))
    runsc = shutil.which("runsc")
    if runsc:
        runtimes["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none"]}
    try:
        daemon.start(runtimes)
        tags = {"busybox": images.docker_import(daemon, images.busybox_tar(
                    daemon.dir / "busybox.tar"), "edgevisor-bench/busybox"),
                "python3": images.docker_import(daemon, images.python_tar(
                    daemon.dir / "python3.tar"), "edgevisor-bench/python3")}
        report = measure(daemon, tags, wanted, args.runs)
    finally:
        left = daemon.stop()
        if left:
            print(f"docker.py: left behind: {left}", file=sys.stderr)
    report["machine"] = machine_info(None)
    report["edgevisor"] = str(args.binary or args.tree)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def measure(daemon, tags, wanted, runs):
    unavailable = {}
    for runtime in wanted:
        if runtime != "runc" and runtime not in daemon.runtimes:
            unavailable[runtime] = "not installed"
            continue
        for name, (image, argv) in WORKLOADS.items():
            result = run_once(daemon, runtime, tags[image], argv)[1]
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["?"])[-1]
                unavailable[runtime] = f"{name}: exit {result.returncode}: {last}"
                break
    runtimes = [r for r in wanted if r not in unavailable]
    samples = {name: {r: [] for r in runtimes} for name in WORKLOADS}
    for _ in range(runs):
        for name, (image, argv) in WORKLOADS.items():
            for runtime in runtimes:
                seconds, result = run_once(daemon, runtime, tags[image], argv)
                if result.returncode != 0:
                    raise SystemExit(f"docker.py: {runtime} {name} failed: {result.stderr}")
                samples[name][runtime].append(seconds)
    medians = {name: {r: statistics.median(s) for r, s in by.items()}
               for name, by in samples.items()}
    return {"runs": runs, "runtimes": runtimes, "unavailable": unavailable,
            "samples": samples, "medians": medians}


def run_once(daemon, runtime, image, argv):
    command = daemon.docker_argv("run", "--rm", f"--runtime={runtime}", image, *argv)
    start = time.perf_counter()
    result = subprocess.run(command, env=daemon.env, capture_output=True, text=True,
                            timeout=300)
    return time.perf_counter() - start, result


def print_report(report):
    machine = report["machine"]
    print(f"{machine['date']}, {machine['kernel']}, {machine['cpu']}, "
          f"{report['runs']} runs, medians (ratio to runc); edgevisor: {report['edgevisor']}")
    runtimes = report["runtimes"]
    print("| workload | " + " | ".join(runtimes) + " |")
    print("|---|" + "---:|" * len(runtimes))
    for name, by in report["medians"].items():
        base = by.get("runc")
        cells = []
        for r in runtimes:
            ratio = f" ({by[r] / base:.2f})" if base and r != "runc" else ""
            cells.append(f"{by[r] * 1000:.0f} ms{ratio}")
        print(f"| `docker run --rm {name}` | " + " | ".join(cells) + " |")
    for runtime, why in report["unavailable"].items():
        print(f"unavailable: {runtime}: {why}")


if __name__ == "__main__":
    main()
