#!/usr/bin/env python3
"""Cost of a published port (-p): a host client talks to a server in the sandbox.

    python3 benchmarks/publish.py [--runs N] [--runners native,seccomp,ptrace] [--only a,b]
                                  [--bytes N] [--seconds S] [--pin CPU] [--json FILE]

Compiles a small C server and client with `cc -O2`. For every run and every runner it starts
the server ONCE: natively on the host's loopback, or in `edgevisor do --platform=P -p
HOSTPORT:GUESTPORT -- SERVER`. It waits until the server's greeting comes through the port,
runs every benchmark against it from the host (so sandbox start-up stays out of the numbers),
and asks the server to quit. Runs are interleaved across runners. See benchmarks/README.md.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from run import (Unavailable, edgevisor_cmd, edgevisor_env, machine_info,
                 pin_and_check_compiler, unsandboxed_warning)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUNNERS = ["native", "seccomp", "ptrace"]
BENCHMARKS = ["tcp_rr", "tcp_rr64", "tcp_1g"]
RR_SIZE = {"tcp_rr": 1, "tcp_rr64": 64}
GUEST_PORT = 8080  # the guest has a network namespace of its own: any port is free there

# One program, several modes:
#   server PORT            listen on 127.0.0.1:PORT; one connection at a time, each greeted
#                          with 'G'; the client's first byte picks what happens next:
#                          'E' echo everything until EOF; 'S' read an 8-byte count, then that
#                          many bytes (checked against the pattern), reply count + 'K' or 'X';
#                          'Q' exit 0.
#   rr HOST PORT SIZE SECONDS   round trips of SIZE bytes for SECONDS after a warm-up
#   bulk HOST PORT BYTES        send BYTES in 1 MiB writes, wait for the count
SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MIB (1 << 20)
#define PATTERN 251 /* byte at stream offset o is o % 251: a drop or a shift shows */
#define MAX_SAMPLES 4000000

static unsigned char *pattern_buf(void) {
    unsigned char *p = malloc(MIB + PATTERN);
    if (!p) { perror("malloc"); exit(1); }
    for (size_t i = 0; i < MIB + PATTERN; i++) p[i] = (unsigned char)(i % PATTERN);
    return p;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -1 : 0;
        got += r;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, (const char *)buf + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        put += w;
    }
    return 0;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void describe(void) {
    long tracer = -1;
    char line[256];
    struct utsname u;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %ld", &tracer) == 1) break;
    if (f) fclose(f);
    if (uname(&u) < 0) strcpy(u.release, "?");
    printf("# pid=%ld ppid=%ld tracer_pid=%ld kernel=%s\n", (long)getpid(),
           (long)getppid(), tracer, u.release);
    fflush(stdout);
}

static int serve(int port) {
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 16) < 0) {
        perror("server: listen");
        return 1;
    }
    describe();
    unsigned char *ref = pattern_buf(), *buf = malloc(MIB);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) { if (errno == EINTR) continue; perror("server: accept"); return 1; }
        nodelay(c);
        unsigned char mode;
        if (write_full(c, "G", 1) < 0 || read_full(c, &mode, 1) <= 0) { close(c); continue; }
        if (mode == 'Q') { close(c); return 0; }
        if (mode == 'E') {
            ssize_t r;
            while ((r = read(c, buf, MIB)) > 0 || (r < 0 && errno == EINTR))
                if (r > 0 && write_full(c, buf, r) < 0) break;
        } else if (mode == 'S') {
            uint64_t want, got = 0;
            unsigned char bad = 0;
            if (read_full(c, &want, 8) > 0) {
                while (got < want) {
                    size_t n = want - got < MIB ? want - got : MIB;
                    ssize_t r = read(c, buf, n);
                    if (r < 0 && errno == EINTR) continue;
                    if (r <= 0) break;
                    if (memcmp(buf, ref + got % PATTERN, r)) bad = 1;
                    got += r;
                }
                unsigned char reply[9];
                memcpy(reply, &got, 8);
                reply[8] = bad ? 'X' : 'K';
                write_full(c, reply, 9);
            }
        }
        close(c);
    }
}

static int dial(const char *host, int port, char mode) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 30}; /* a stalled relay fails the run instead of hanging it */
    unsigned char g;
    inet_pton(AF_INET, host, &a.sin_addr);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { printf("FAIL connect: %s\n", strerror(errno)); exit(1); }
    nodelay(s);
    int r = read_full(s, &g, 1);
    if (r <= 0 || g != 'G') { printf("FAIL no greeting: %s\n", r < 0 ? strerror(errno) : "connection closed"); exit(1); }
    if (write_full(s, &mode, 1) < 0) { printf("FAIL write: %s\n", strerror(errno)); exit(1); }
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int rr(const char *host, int port, int size, double seconds) {
    int s = dial(host, port, 'E');
    char out[4096], in[4096];
    memset(out, 'x', sizeof out);
    double *lat = malloc(sizeof(double) * MAX_SAMPLES);
    double start = now_ns(), end = start + seconds * 1e9, total = 0;
    long n = 0, warm = 0;
    for (;;) {
        double t0 = now_ns();
        errno = 0;
        if (write_full(s, out, size) < 0 || read_full(s, in, size) <= 0) {
            printf("FAIL round trip %ld: %s\n", n + warm + 1, errno ? strerror(errno) : "connection closed");
            return 1;
        }
        double t1 = now_ns();
        if (t0 < start + seconds * 1e8 || warm < 20) { warm++; end = t1 + seconds * 1e9; continue; }
        lat[n++] = t1 - t0;
        total += t1 - t0;
        if (t1 >= end || n == MAX_SAMPLES) break;
    }
    qsort(lat, n, sizeof(double), cmp_double);
    printf("n=%ld warmup=%ld mean_ns=%.1f p50_ns=%.1f p99_ns=%.1f\n", n, warm, total / n,
           lat[n / 2], lat[(long)(n * 0.99)]);
    return 0;
}

static int bulk(const char *host, int port, uint64_t bytes) {
    int s = dial(host, port, 'S');
    unsigned char *ref = pattern_buf(), reply[9];
    uint64_t got;
    double t0 = now_ns();
    if (write_full(s, &bytes, 8) < 0) { printf("FAIL write: %s\n", strerror(errno)); return 1; }
    for (uint64_t sent = 0; sent < bytes;) {
        size_t n = bytes - sent < MIB ? bytes - sent : MIB;
        if (write_full(s, ref + sent % PATTERN, n) < 0) {
            printf("FAIL write after %llu bytes: %s\n", (unsigned long long)sent, strerror(errno));
            return 1;
        }
        sent += n;
    }
    errno = 0;
    if (read_full(s, reply, 9) <= 0) { printf("FAIL no reply: %s\n", errno ? strerror(errno) : "connection closed"); return 1; }
    double t1 = now_ns();
    memcpy(&got, reply, 8);
    if (got != bytes || reply[8] != 'K') {
        printf("FAIL server read %llu of %llu bytes, %s\n", (unsigned long long)got,
               (unsigned long long)bytes, reply[8] == 'K' ? "all as sent" : "some NOT as sent");
        return 1;
    }
    printf("ns=%.0f\n", t1 - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "server")) return serve(atoi(argv[2]));
    if (argc == 6 && !strcmp(argv[1], "rr")) return rr(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "bulk")) return bulk(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0));
    fprintf(stderr, "usage: %s server PORT | rr HOST PORT SIZE SECONDS | bulk HOST PORT BYTES\n", argv[0]);
    return 2;
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cmd(runner, binary, host_port):
    """The command that starts the server so that it answers on 127.0.0.1:host_port."""
    if runner == "native":
        return [binary, "server", str(host_port)]
    return edgevisor_cmd() + ["do", "--platform=" + runner, "-p",
                              "127.0.0.1:%d:%d" % (host_port, GUEST_PORT), "--",
                              binary, "server", str(GUEST_PORT)]


class Server:
    """One server process (native or sandboxed), from start to quit."""

    def __init__(self, runner, binary, timeout):
        self.port = free_port()
        self.cmd = server_cmd(runner, binary, self.port)
        self.err = tempfile.TemporaryFile()
        self.started = time.monotonic()
        # A session of its own, so that a stuck sandbox can be stopped whole.
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, cwd=REPO, env=edgevisor_env(),
                                     start_new_session=True)
        self.ready_s, self.probes = self.wait_ready(timeout)
        self.inside = self.proc.stdout.readline().decode().strip()
        self.inside = self.inside[2:] if self.inside.startswith("# ") else "?"

    def stderr_tail(self):
        self.err.seek(0)
        lines = self.err.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def wait_ready(self, timeout):
        """Connect until the server's greeting arrives. Before the guest listens, the
        publisher accepts and closes at once, so an accepted connection is not yet enough."""
        probes = {"refused": 0, "closed": 0, "other": 0}
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable("exited with status %d before it answered: %s"
                                  % (self.proc.returncode, self.stderr_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
                    if c.recv(1) == b"G":
                        return time.monotonic() - self.started, probes
                    probes["closed"] += 1
            except ConnectionRefusedError:
                probes["refused"] += 1
            except OSError:
                probes["other"] += 1
            time.sleep(0.01)
        self.kill()
        raise Unavailable("no greeting on 127.0.0.1:%d within %d s (%s)"
                          % (self.port, timeout, probes))

    def client(self, binary, args, timeout):
        cmd = [binary] + [a if a != "PORT" else str(self.port) for a in args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None, "FAIL client timed out after %d s" % timeout
        out = p.stdout.strip() or "FAIL exit status %d: %s" % (p.returncode, p.stderr.strip())
        if out.startswith("FAIL") or p.returncode != 0:
            return None, out
        return dict(kv.split("=", 1) for kv in out.split()), None

    def quit(self, timeout=15):
        """Ask the server to exit; returns (seconds until the runner exited, problem or None)."""
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
                if c.recv(1) != b"G":
                    raise OSError("no greeting")
                c.sendall(b"Q")
        except OSError as e:
            self.kill()
            return None, "quit failed: %s" % e
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, "still running %d s after the server quit" % timeout
        problem = None if status == 0 else "exit status %d: %s" % (status, self.stderr_tail())
        return time.monotonic() - t0, problem

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def one_run(runner, binary, names, args):
    """Start the server under `runner`, run the benchmarks, quit. Returns
    ({name: {"us": ..., ...} or "FAIL ..."}, {"ready_s", "probes", "exit_s", "inside"})."""
    server = Server(runner, binary, args.timeout)
    results = {}
    try:
        for name in names:
            if name in RR_SIZE:
                vals, fail = server.client(binary, ["rr", "127.0.0.1", "PORT", str(RR_SIZE[name]),
                                                    repr(args.seconds)], args.timeout)
                if vals:
                    results[name] = {"us": float(vals["mean_ns"]) / 1e3, "n": int(vals["n"]),
                                     "p50_us": float(vals["p50_ns"]) / 1e3,
                                     "p99_us": float(vals["p99_ns"]) / 1e3}
            else:
                vals, fail = server.client(binary, ["bulk", "127.0.0.1", "PORT", str(args.bytes)],
                                           args.timeout)
                if vals:
                    us = float(vals["ns"]) / 1e3
                    results[name] = {"us": us, "n": 1,
                                     "MiB/s": args.bytes / 2**20 / (us / 1e6)}
            if fail:
                results[name] = fail
    finally:
        exit_s, problem = server.quit()
    info = {"ready_s": server.ready_s, "probes": server.probes, "exit_s": exit_s,
            "inside": server.inside, "command": " ".join(server.cmd)}
    if problem:
        info["problem"] = problem
    return results, info


def fmt(us):
    return "%.1f" % us if us < 1000 else "{:,.0f}".format(us)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per runner (default 3)")
    ap.add_argument("--runners", default=",".join(RUNNERS), help="default: %(default)s")
    ap.add_argument("--only", help="comma-separated benchmark names (%s)" % ", ".join(BENCHMARKS))
    ap.add_argument("--bytes", type=parse_size, default=2**30,
                    help="tcp_1g's transfer size, as 256m or 1g (default 1g)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="how long each tcp_rr* measures, after a tenth as long of warm-up "
                         "(default 2)")
    ap.add_argument("--pin", type=int, metavar="CPU",
                    help="pin every process (client, server, sandbox, publisher) to this CPU")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per start-up and per client")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    names = [n.strip() for n in args.only.split(",")] if args.only else BENCHMARKS
    bad = [r for r in runners if r not in RUNNERS] + [n for n in names if n not in BENCHMARKS]
    if bad or args.runs < 1 or args.seconds <= 0 or args.bytes < 1:
        ap.error("unknown runner(s) or benchmark(s): %s" % ", ".join(bad) if bad
                 else "--runs, --seconds and --bytes must be positive")
    pin_and_check_compiler(ap, args.pin, "publish.py")

    # The server must be readable inside the sandbox, whose /tmp is private: /var/tmp is
    # the host's, shown read-only.
    tmp = tempfile.mkdtemp(prefix="publish_bench-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None)
    try:
        source, binary = os.path.join(tmp, "publish_bench.c"), os.path.join(tmp, "publish_bench")
        with open(source, "w") as f:
            f.write(SOURCE)
        subprocess.run(["cc", "-O2", "-o", binary, source], check=True)
        os.chmod(tmp, 0o755)
        report = run(args, runners, binary, names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print_report(report, runners, names, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    failed = any(isinstance(v, str) for r in report["results"] for v in r["runs"])
    return 1 if failed or report["problems"] or "native" in report["unavailable"] else 0


def parse_size(text):
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    text = text.strip().lower()
    for suffix in ("ib", "b"):
        if text.endswith(suffix) and text[:-len(suffix)][-1:] in units:
            text = text[:-len(suffix)]
            break
    try:
        if text[-1:] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a size: %r (try 256m or 1g)" % text) from None


def run(args, runners, binary, names):
    info = machine_info(args.pin)
    for key, value in info.items():
        print("%-10s %s" % (key + ":", value))
    print(flush=True)
    unavailable, seen, commands, problems = {}, {}, {}, []
    samples = {(b, r): [] for b in names for r in runners}
    starts = {r: [] for r in runners}
    for i in range(args.runs):
        for r in runners:
            if r in unavailable:
                continue
            print("run %d/%d: %-8s ..." % (i + 1, args.runs, r), end=" ", file=sys.stderr, flush=True)
            try:
                results, run_info = one_run(r, binary, names, args)
            except Unavailable as e:
                unavailable[r] = str(e) if i == 0 else "failed on run %d: %s" % (i + 1, e)
                print("unavailable", file=sys.stderr)
                continue
            print("ready in %.2f s, done" % run_info["ready_s"], file=sys.stderr)
            seen[r], commands[r] = run_info["inside"], run_info["command"]
            starts[r].append(run_info)
            if "problem" in run_info:
                problems.append("%s run %d: %s" % (r, i + 1, run_info["problem"]))
            for b in names:
                samples[(b, r)].append(results.get(b, "FAIL no result"))

    results = []
    for b in names:
        native = samples[(b, "native")] if "native" in runners else []
        native_med = statistics.median(v["us"] for v in native) \
            if native and not any(isinstance(v, str) for v in native) else None
        for r in runners:
            vals = samples[(b, r)]
            if r in unavailable or not vals:
                continue
            row = {"benchmark": b, "runner": r, "runs": vals}
            if not any(isinstance(v, str) for v in vals):
                us = [v["us"] for v in vals]
                row.update(n=statistics.median(v["n"] for v in vals), min=min(us),
                           median=statistics.median(us), max=max(us))
                row["ratio"] = row["median"] / native_med if native_med else None
                if b in RR_SIZE:
                    row["p50_us"] = statistics.median(v["p50_us"] for v in vals)
                    row["p99_us"] = statistics.median(v["p99_us"] for v in vals)
                else:
                    row["MiB/s"] = args.bytes / 2**20 / (row["median"] / 1e6)
            results.append(row)
    return {"machine": info, "bytes": args.bytes, "seconds": args.seconds, "runners": commands,
            "seen_inside": seen, "unavailable": unavailable, "start": starts,
            "problems": problems, "results": results}


def print_report(report, runners, names, args):
    for r in runners:
        if r in report["unavailable"]:
            print("%-8s unavailable: %s" % (r, report["unavailable"][r]))
        elif r in report["seen_inside"]:
            warn = unsandboxed_warning(report["seen_inside"][r], r != "native")
            print("%-8s %s   [inside: %s]%s" % (r, report["runners"][r], report["seen_inside"][r], warn))
    print()
    head = ("benchmark", "runner", "count", "min us", "median us", "max us", "x native")
    line = "%-10s %-8s %9s %12s %12s %12s %9s"
    print(line % head)
    print("-" * 78)
    for b in names:
        rows = [row for row in report["results"] if row["benchmark"] == b]
        for k, row in enumerate(rows):
            label = b if k == 0 else ""
            if "median" not in row:
                fail = next(v for v in row["runs"] if isinstance(v, str))
                print("%-10s %-8s %9s   %s" % (label, row["runner"], "-", fail))
                continue
            ratio = "-" if row["ratio"] is None else "%.2f" % row["ratio"] if row["ratio"] < 10 \
                else "{:,.0f}".format(row["ratio"])
            extra = "   p50 %s, p99 %s" % (fmt(row["p50_us"]), fmt(row["p99_us"])) if "p50_us" in row \
                else "   %s MiB/s" % "{:,.0f}".format(row["MiB/s"])
            print(line % (label, row["runner"], "{:,.0f}".format(row["n"]), fmt(row["min"]),
                          fmt(row["median"]), fmt(row["max"]), ratio) + extra)
    print()
    for r in runners:
        runs = report["start"].get(r)
        if r in report["unavailable"] or not runs:
            continue
        ready = [x["ready_s"] for x in runs]
        exits = [x["exit_s"] for x in runs if x["exit_s"] is not None]
        closed = sum(x["probes"]["closed"] for x in runs)
        print("start-up %-8s until the greeting: median %.2f s (min %.2f, max %.2f); probes "
              "accepted then closed: %d; exit after quit: %s" % (
                  r, statistics.median(ready), min(ready), max(ready), closed,
                  "median %.2f s" % statistics.median(exits) if exits else "-"))
    for p in report["problems"]:
        print("PROBLEM  " + p)
    print()
    print("us = microseconds: tcp_rr, tcp_rr64: mean per round trip of 1 or 64 bytes in one run "
          "(count = round trips per run; p50/p99 of single round trips, median over runs); "
          "tcp_1g: per transfer of %s (count = 1), and MiB/s from the median; min/median/max "
          "over %d runs; x native = median / native median." % (size_name(report["bytes"]), args.runs))


def size_name(n):
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size and n % size == 0:
            return "%d %s" % (n // size, unit)
    return "%d bytes" % n


if __name__ == "__main__":
    sys.exit(main())
