/* Process semantics, one line per check, for comparison between a native run and a sandboxed
 * one (tests/conformance/test_processes.py). The program expects to be init (pid 1) of a pid
 * namespace of its own, as it is in the sandbox and natively under
 * `unshare --pid --fork --mount-proc`.
 *
 * Nothing printed depends on timing or on absolute pids: pids are printed as roles ("init",
 * "child", "grandchild" ...), and every event is ordered by a pipe, a wait or a blocked signal
 * taken with sigwaitinfo. Any process may print, but only while the others wait for it.
 *
 * Lines that begin "pid1.survived" are printed only because Linux's init protection
 * discarded a SIGTERM that init left SIG_DFL: they are the last ones of a run. The sandbox's
 * init is an ordinary process to its user, and dies there (status 143).
 *
 * Usage: proc_conformance [SECTION]   every section, or one of init wait4 waitid orphans
 *                                      groups kill threads sigchld pid1
 *        proc_conformance pid1-kill-self        only init's kill(getpid(), SIGTERM), SIG_DFL
 *        proc_conformance pid1-kill-from-child  only a child's kill(1, SIGTERM), SIG_DFL
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oracle.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Above PID_MAX_LIMIT (4M): never a live pid in any namespace. */
#define NO_SUCH_PID 4194305

/* ---- output ------------------------------------------------------------------------------ */

static const char *signame(int sig) {
    static const char *names[] = {
        [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT", [SIGKILL] = "SIGKILL",
        [SIGUSR1] = "SIGUSR1", [SIGUSR2] = "SIGUSR2", [SIGPIPE] = "SIGPIPE",
        [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGCHLD] = "SIGCHLD",
        [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
        [SIGWINCH] = "SIGWINCH", [SIGSEGV] = "SIGSEGV", [SIGABRT] = "SIGABRT",
    };
    if (sig > 0 && sig < (int)(sizeof names / sizeof *names) && names[sig]) return names[sig];
    char *s = scratch();
    snprintf(s, 96, "sig%d", sig);
    return s;
}

static const char *codename(int signo, int code) {
    if (signo == SIGCHLD && code > 0) {
        switch (code) {
        case CLD_EXITED: return "CLD_EXITED";
        case CLD_KILLED: return "CLD_KILLED";
        case CLD_DUMPED: return "CLD_DUMPED";
        case CLD_STOPPED: return "CLD_STOPPED";
        case CLD_CONTINUED: return "CLD_CONTINUED";
        case CLD_TRAPPED: return "CLD_TRAPPED";
        }
    }
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_TKILL: return "SI_TKILL";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_KERNEL: return "SI_KERNEL";
    }
    char *s = scratch();
    snprintf(s, 96, "code%d", code);
    return s;
}

/* A syscall's result: its value, or the errno's name. */
static const char *res(long r) {
    if (r == -1) return errname(errno);
    char *s = scratch();
    snprintf(s, 96, "%ld", r);
    return s;
}

/* 0 or the errno's name, for calls whose success value is 0. */
static const char *ok(long r) {
    return r == -1 ? errname(errno) : r == 0 ? "ok" : res(r);
}

/* ---- pids as roles ----------------------------------------------------------------------- */

static struct { pid_t pid; char name[32]; } roles[128];
static int nroles;

static void name_pid(pid_t pid, const char *name) {
    if (nroles == 128) nroles = 0;
    roles[nroles].pid = pid;
    snprintf(roles[nroles].name, sizeof roles[nroles].name, "%s", name);
    nroles++;
}

static const char *role(long pid) {
    if (pid == -1) return errname(errno);
    if (pid == 0) return "0";
    if (pid == 1) return "init";
    for (int i = nroles - 1; i >= 0; i--)
        if (roles[i].pid == pid) return roles[i].name;
    char *s = scratch();
    snprintf(s, 96, "unknown:%ld", pid);
    return s;
}

static pid_t child(const char *name) {
    pid_t p = fork();
    if (p < 0) die("fork");
    name_pid(p ? p : getpid(), name);
    return p;
}

/* ---- ordering ---------------------------------------------------------------------------- */

typedef struct { int r, w; } gate;

static gate gate_new(void) {
    int fd[2];
    if (pipe2(fd, O_CLOEXEC)) die("pipe2");
    return (gate){fd[0], fd[1]};
}

static void gate_close(gate g) {
    close(g.r);
    close(g.w);
}

static void send_int(gate g, int v) {
    if (write(g.w, &v, sizeof v) != sizeof v) die("write");
}

static int recv_int(gate g) {
    int v;
    ssize_t n;
    while ((n = read(g.r, &v, sizeof v)) < 0 && errno == EINTR)
        ;
    if (n != sizeof v) die("read");
    return v;
}

static void pass(gate g) { send_int(g, 0); }
static void wait_gate(gate g) { recv_int(g); }

static const char *status(int st) {
    char *s = scratch();
    if (WIFEXITED(st))
        snprintf(s, 96, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(s, 96, "signaled %s core=%d", signame(WTERMSIG(st)), !!WCOREDUMP(st));
    else if (WIFSTOPPED(st))
        snprintf(s, 96, "stopped %s", signame(WSTOPSIG(st)));
    else if (WIFCONTINUED(st))
        snprintf(s, 96, "continued");
    else
        snprintf(s, 96, "status 0x%x", st);
    return s;
}

static pid_t wait4_retry(pid_t pid, int *st, int options) {
    pid_t r;
    while ((r = wait4(pid, st, options, NULL)) < 0 && errno == EINTR)
        ;
    return r;
}

/* "ROLE STATUS" of a wait4 that must block. */
static const char *reap(pid_t pid) {
    int st = 0;
    pid_t r = wait4_retry(pid, &st, 0);
    char *s = scratch();
    if (r < 0)
        snprintf(s, 96, "%s", errname(errno));
    else
        snprintf(s, 96, "%s %s", role(r), status(st));
    return s;
}

static int waitid_retry(idtype_t type, id_t id, siginfo_t *si, int options) {
    int r;
    do {
        memset(si, 0, sizeof *si);
        r = waitid(type, id, si, options);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* What a waitid answered: its result and the siginfo it filled. */
static const char *winfo(int r, const siginfo_t *si) {
    char *s = scratch();
    if (r < 0)
        snprintf(s, 96, "%s", errname(errno));
    else if (si->si_pid == 0)
        snprintf(s, 96, "ret=%d pid=0", r);
    else
        snprintf(s, 96, "ret=%d signo=%s code=%s pid=%s status=%s uid=%d", r,
                 signame(si->si_signo), codename(si->si_signo, si->si_code), role(si->si_pid),
                 si->si_code == CLD_EXITED ? res(si->si_status) : signame(si->si_status),
                 (int)si->si_uid);
    return s;
}

static const char *sinfo(const siginfo_t *si) {
    char *s = scratch();
    snprintf(s, 96, "signo=%s code=%s pid=%s", signame(si->si_signo),
             codename(si->si_signo, si->si_code), role(si->si_pid));
    return s;
}

static sigset_t just(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return set;
}

static void block(int sig) {
    sigset_t set = just(sig);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void unblock(int sig) {
    sigset_t set = just(sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static int pending(int sig) {
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, sig);
}

static const char *yesno(int b) { return b ? "yes" : "no"; }

/* sigwaitinfo, but the kernel's own: glibc's turns an SI_TKILL into SI_USER. */
static int take(int sig, siginfo_t *si) {
    sigset_t set = just(sig);
    long r;
    memset(si, 0, sizeof *si);
    while ((r = syscall(SYS_rt_sigtimedwait, &set, si, NULL, _NSIG / 8)) < 0 && errno == EINTR)
        ;
    return (int)r;
}

/* Drop a pending `sig` (setting SIG_IGN discards it) and leave it SIG_DFL and unblocked. */
static void reset_signal(int sig) {
    signal(sig, SIG_IGN);
    signal(sig, SIG_DFL);
    unblock(sig);
}

/* A handler that records its last delivery. */
static volatile sig_atomic_t hits;
static volatile pid_t hit_pid, hit_tid;
static volatile int hit_signo, hit_code, hit_value;

static void record(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    hits++;
    hit_signo = sig;
    hit_pid = si->si_pid;
    hit_code = si->si_code;
    hit_value = si->si_code == SI_QUEUE ? si->si_value.sival_int : 0;
    hit_tid = (pid_t)syscall(SYS_gettid);
}

static void handle(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = record;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) die("sigaction");
    hits = 0;
    hit_pid = hit_tid = hit_signo = hit_code = hit_value = 0;
}

static const char *handled(void) {
    char *s = scratch();
    snprintf(s, 96, "hits=%d pid=%s code=%s tid=%s", (int)hits, role(hit_pid),
             codename(hit_signo, hit_code), role(hit_tid));
    return s;
}

static long sys_tkill(pid_t tid, int sig) { return syscall(SYS_tkill, tid, sig); }
static long sys_tgkill(pid_t tgid, pid_t tid, int sig) {
    return syscall(SYS_tgkill, tgid, tid, sig);
}
static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void spin_us(long us) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

/* A child that waits at `g` and then exits with `code`. */
static pid_t idle_child(const char *name, gate g, int code) {
    pid_t p = child(name);
    if (p == 0) {
        wait_gate(g);
        _exit(code);
    }
    return p;
}

/* ---- init itself ------------------------------------------------------------------------- */

static void check_init(void) {
    say("init.getpid %d", getpid());
    say("init.gettid %d", gettid_());
    say("init.getppid %d", getppid());
    say("init.setpgid(0,0) again %s", ok(setpgid(0, 0)));
    say("init.getpgrp %s", role(getpgrp()));
    say("init.getpgid(0) %s", role(getpgid(0)));
    say("init.getsid(0) %s", role(getsid(0)));
    say("init.setsid as group leader %s", res(setsid()));
    say("init.wait4 without children %s", reap(-1));
    siginfo_t si;
    say("init.waitid P_ALL without children %s", winfo(waitid_retry(P_ALL, 0, &si, WEXITED), &si));
}

/* ---- fork and wait4 ---------------------------------------------------------------------- */

static void *exit_from_thread(void *arg) {
    _exit((int)(long)arg);
}

static void *exit_later(void *arg) {
    gate *g = arg;
    wait_gate(*g);
    exit(4);
}

static void check_wait4(void) {
    int codes[] = {0, 7, 255};
    for (int i = 0; i < 3; i++) {
        pid_t p = child("child");
        if (p == 0) _exit(codes[i]);
        say("wait4.exit(%d) %s", codes[i], reap(p));
    }

    pid_t p = child("child");
    if (p == 0) {
        if (getppid() != 1) _exit(1);
        _exit(0);
    }
    say("wait4.child sees getppid()==1: %s", reap(p));

    int sigs[] = {SIGTERM, SIGKILL, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        gate g = gate_new();
        p = idle_child("child", g, 0);
        say("wait4.kill(child,%s) %s", signame(sigs[i]), ok(kill(p, sigs[i])));
        say("wait4.killed by %s: %s", signame(sigs[i]), reap(p));
        gate_close(g);
    }
    p = child("child");
    if (p == 0) {
        raise(SIGUSR2);
        _exit(0);
    }
    say("wait4.raise(SIGUSR2) in child: %s", reap(p));

    /* Children killed, and reaped at once, while they may be in their first syscall (getpid,
     * which the sandbox answers): whatever the moment, each dies of SIGKILL, and nothing else
     * notices. */
    gate never = gate_new();
    int killed = 0, st;
    for (int i = 0; i < 500; i++) {
        p = idle_child("newborn", never, 0);
        spin_us(i % 50 * 2);  /* sweeps the moment the kill lands, not the outcome */
        kill(p, SIGKILL);
        killed += wait4_retry(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    }
    say("wait4.children killed at birth, signaled SIGKILL: %d of 500", killed);
    gate_close(never);

    /* WNOHANG with a live child, then with none at all. */
    gate g = gate_new();
    p = idle_child("child", g, 3);
    st = 0;
    say("wait4.WNOHANG child alive: %s", res(wait4_retry(p, &st, WNOHANG)));
    say("wait4.WNOHANG any, child alive: %s", res(wait4_retry(-1, &st, WNOHANG)));
    say("wait4.for self: %s", res(wait4_retry(getpid(), &st, 0)));
    say("wait4.for a pid that is not a child: %s", res(wait4_retry(NO_SUCH_PID, &st, 0)));
    pass(g);
    say("wait4.released: %s", reap(p));
    say("wait4.WNOHANG after reaping: %s", res(wait4_retry(-1, &st, WNOHANG)));
    say("wait4.same pid again: %s", reap(p));
    gate_close(g);

    /* wait4(0) is for the caller's group only; wait4(-pgid) for another. */
    g = gate_new();
    p = idle_child("grouped", g, 9);
    say("wait4.setpgid(child, child) %s", ok(setpgid(p, p)));
    pass(g);
    siginfo_t si;
    waitid_retry(P_PID, p, &si, WEXITED | WNOWAIT);  /* it is a zombie now */
    say("wait4.WNOHANG for own group, child in another: %s", res(wait4_retry(0, &st, WNOHANG)));
    say("wait4.for -pgid: %s", reap(-p));
    gate_close(g);

    /* A zombie still exists for kill and getpgid; a reaped child does not. */
    p = child("zombie");
    if (p == 0) _exit(0);
    waitid_retry(P_PID, p, &si, WEXITED | WNOWAIT);
    say("wait4.zombie kill(0) %s getpgid %s", ok(kill(p, 0)), role(getpgid(p)));
    say("wait4.zombie reaped: %s", reap(p));
    say("wait4.reaped kill(0) %s getpgid %s", ok(kill(p, 0)), role(getpgid(p)));

    /* Threads: any thread's exit_group ends the process; a process whose leader has gone
     * is reaped only when its last thread exits. */
    p = child("threaded");
    if (p == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_from_thread, (void *)9L);
        pthread_join(t, NULL);
        _exit(1);
    }
    say("wait4.exit_group from a thread: %s", reap(p));
    g = gate_new();
    p = child("threaded");
    if (p == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_later, &g);
        pthread_exit(NULL);
    }
    say("wait4.leader gone, thread alive: %s", res(wait4_retry(p, &st, WNOHANG)));
    pass(g);
    say("wait4.last thread exit(4): %s", reap(p));
    gate_close(g);
}

/* ---- waitid ------------------------------------------------------------------------------ */

static void check_waitid(void) {
    siginfo_t si;
    pid_t p = child("child");
    if (p == 0) _exit(5);
    say("waitid.P_PID exit(5) %s", winfo(waitid_retry(P_PID, p, &si, WEXITED), &si));

    gate g = gate_new();
    p = idle_child("child", g, 0);
    kill(p, SIGTERM);
    say("waitid.P_PID killed %s", winfo(waitid_retry(P_PID, p, &si, WEXITED), &si));
    gate_close(g);

    /* P_PGID: two members of a new group, released one at a time. */
    gate g1 = gate_new(), g2 = gate_new(), g3 = gate_new();
    pid_t leader = idle_child("leader", g1, 11);
    pid_t member = idle_child("member", g2, 12);
    pid_t outsider = idle_child("outsider", g3, 13);
    setpgid(leader, leader);
    setpgid(member, leader);
    say("waitid.P_ALL WNOHANG, nothing ready: %s",
        winfo(waitid_retry(P_ALL, 0, &si, WEXITED | WNOHANG), &si));
    say("waitid.P_PGID WNOHANG, nothing ready: %s",
        winfo(waitid_retry(P_PGID, leader, &si, WEXITED | WNOHANG), &si));
    pass(g3);
    waitid_retry(P_PID, outsider, &si, WEXITED | WNOWAIT);
    say("waitid.P_PGID WNOHANG, outsider exited: %s",
        winfo(waitid_retry(P_PGID, leader, &si, WEXITED | WNOHANG), &si));
    pass(g2);
    say("waitid.P_PGID member exits: %s", winfo(waitid_retry(P_PGID, leader, &si, WEXITED), &si));
    pass(g1);
    say("waitid.P_PGID leader exits: %s", winfo(waitid_retry(P_PGID, leader, &si, WEXITED), &si));
    say("waitid.P_PGID group empty: %s", winfo(waitid_retry(P_PGID, leader, &si, WEXITED), &si));
    say("waitid.P_ALL outsider: %s", winfo(waitid_retry(P_ALL, 0, &si, WEXITED), &si));
    gate_close(g1), gate_close(g2), gate_close(g3);

    /* Stopped and continued, with waitid and with wait4. */
    g = gate_new();
    p = idle_child("child", g, 0);
    kill(p, SIGSTOP);
    say("waitid.WSTOPPED|WNOWAIT %s", winfo(waitid_retry(P_PID, p, &si, WSTOPPED | WNOWAIT), &si));
    say("waitid.WSTOPPED %s", winfo(waitid_retry(P_PID, p, &si, WSTOPPED), &si));
    say("waitid.WSTOPPED again, WNOHANG %s",
        winfo(waitid_retry(P_PID, p, &si, WSTOPPED | WNOHANG), &si));
    say("waitid.WEXITED WNOHANG while stopped %s",
        winfo(waitid_retry(P_PID, p, &si, WEXITED | WNOHANG), &si));
    kill(p, SIGCONT);
    say("waitid.WCONTINUED %s", winfo(waitid_retry(P_PID, p, &si, WCONTINUED), &si));
    say("waitid.WCONTINUED again, WNOHANG %s",
        winfo(waitid_retry(P_PID, p, &si, WCONTINUED | WNOHANG), &si));
    int st = 0;
    kill(p, SIGSTOP);
    pid_t r = wait4_retry(p, &st, WUNTRACED);
    say("wait4.WUNTRACED %s %s", role(r), status(st));
    kill(p, SIGCONT);
    r = wait4_retry(p, &st, WCONTINUED);
    say("wait4.WCONTINUED %s %s", role(r), status(st));
    kill(p, SIGSTOP);
    waitid_retry(P_PID, p, &si, WSTOPPED | WNOWAIT);
    say("waitid.WEXITED|WSTOPPED|WCONTINUED, stopped %s",
        winfo(waitid_retry(P_PID, p, &si, WEXITED | WSTOPPED | WCONTINUED), &si));
    kill(p, SIGCONT);
    say("waitid.WEXITED|WSTOPPED|WCONTINUED, continued %s",
        winfo(waitid_retry(P_PID, p, &si, WEXITED | WSTOPPED | WCONTINUED), &si));
    pass(g);
    say("waitid.WEXITED|WSTOPPED|WCONTINUED, exited %s",
        winfo(waitid_retry(P_PID, p, &si, WEXITED | WSTOPPED | WCONTINUED), &si));
    gate_close(g);

    /* WNOWAIT leaves the zombie for the next wait. */
    p = child("child");
    if (p == 0) _exit(8);
    say("waitid.WNOWAIT %s", winfo(waitid_retry(P_PID, p, &si, WEXITED | WNOWAIT), &si));
    say("waitid.WNOWAIT again %s", winfo(waitid_retry(P_ALL, 0, &si, WEXITED | WNOWAIT), &si));
    say("waitid.then reaped %s", winfo(waitid_retry(P_PID, p, &si, WEXITED), &si));
    say("waitid.then gone %s", winfo(waitid_retry(P_PID, p, &si, WEXITED), &si));
    say("waitid.no options %s", winfo(waitid_retry(P_ALL, 0, &si, 0), &si));

    /* A pidfd names the child for waitid. */
    p = child("child");
    if (p == 0) _exit(10);
    int pidfd = (int)syscall(SYS_pidfd_open, p, 0);
    say("waitid.pidfd_open %s", pidfd < 0 ? errname(errno) : "ok");
    if (pidfd >= 0) {
        say("waitid.P_PIDFD %s", winfo(waitid_retry(P_PIDFD, pidfd, &si, WEXITED), &si));
        close(pidfd);
    } else {
        reap(p);
    }
}

/* ---- orphans and subreapers -------------------------------------------------------------- */

static void check_orphans(void) {
    /* A grandchild outlives its parent: init adopts it, and has its SIGCHLD. The grandchild
     * asked for a SIGUSR1 on its parent's death (PR_SET_PDEATHSIG). */
    gate pids = gate_new(), go = gate_new(), ready = gate_new();
    siginfo_t si;
    block(SIGCHLD);
    pid_t mid = child("parent");
    if (mid == 0) {
        pid_t g = child("grandchild");
        if (g == 0) {
            block(SIGUSR1);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            say("orphan.grandchild getppid before: %s", role(getppid()));
            pass(ready);
            wait_gate(go);
            say("orphan.grandchild getppid after its parent died: %s", role(getppid()));
            take(SIGUSR1, &si);
            say("orphan.grandchild's parent-death signal: %s", sinfo(&si));
            _exit(6);
        }
        wait_gate(ready);
        send_int(pids, g);
        _exit(0);
    }
    name_pid(recv_int(pids), "grandchild");
    say("orphan.parent %s", reap(mid));
    take(SIGCHLD, &si);
    say("orphan.SIGCHLD for the parent: %s", sinfo(&si));
    pass(go);
    take(SIGCHLD, &si);
    say("orphan.SIGCHLD for the grandchild: %s", sinfo(&si));
    say("orphan.init reaps the grandchild %s", winfo(waitid_retry(P_ALL, 0, &si, WEXITED), &si));
    say("orphan.nothing left %s", reap(-1));
    reset_signal(SIGCHLD);
    gate_close(pids), gate_close(go), gate_close(ready);

    /* A subreaper adopts its orphaned descendants instead of init. */
    pids = gate_new(), go = gate_new();
    pid_t sub = child("subreaper");
    if (sub == 0) {
        say("subreaper.PR_SET_CHILD_SUBREAPER %s", ok(prctl(PR_SET_CHILD_SUBREAPER, 1)));
        int on = -1;
        prctl(PR_GET_CHILD_SUBREAPER, &on);
        say("subreaper.PR_GET_CHILD_SUBREAPER %d", on);
        pid_t c = child("child");
        if (c == 0) {
            int inherited = -1;
            prctl(PR_GET_CHILD_SUBREAPER, &inherited);
            say("subreaper.child PR_GET_CHILD_SUBREAPER %d", inherited);
            pid_t g = child("grandchild");
            if (g == 0) {
                wait_gate(go);
                say("subreaper.grandchild getppid after its parent died: %s", role(getppid()));
                _exit(7);
            }
            send_int(pids, g);
            _exit(0);
        }
        name_pid(recv_int(pids), "grandchild");
        say("subreaper.child %s", reap(c));
        pass(go);
        say("subreaper.reaps the grandchild %s", reap(-1));
        say("subreaper.nothing left %s", reap(-1));
        _exit(0);
    }
    say("subreaper.exits %s", reap(sub));
    say("subreaper.init has nothing to reap %s", reap(-1));
    gate_close(pids), gate_close(go);

    /* A subreaper that dies leaves its adopted orphans to init. */
    pids = gate_new(), go = gate_new();
    sub = child("subreaper");
    if (sub == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        pid_t c = child("child");
        if (c == 0) {
            pid_t g = child("grandchild");
            if (g == 0) {
                wait_gate(go);
                say("subreaper.grandchild getppid after both died: %s", role(getppid()));
                _exit(8);
            }
            send_int(pids, g);
            _exit(0);
        }
        reap(c);
        _exit(0);
    }
    name_pid(recv_int(pids), "grandchild");
    say("subreaper.dies %s", reap(sub));
    pass(go);
    say("subreaper.init reaps the grandchild %s", reap(-1));
    gate_close(pids), gate_close(go);
}

/* ---- process groups and sessions --------------------------------------------------------- */

static void check_groups(void) {
    gate g1 = gate_new(), g2 = gate_new(), g3 = gate_new(), seen = gate_new();
    pid_t leader = idle_child("leader", g1, 0);
    pid_t member = idle_child("member", g2, 0);
    pid_t other = child("other");
    if (other == 0) {
        block(SIGUSR1);
        pass(seen);
        wait_gate(g3);
        _exit(pending(SIGUSR1) ? 1 : 0);
    }
    wait_gate(seen);
    say("pgrp.child starts in init's group: %s", role(getpgid(leader)));
    const char *r = ok(setpgid(leader, leader));
    say("pgrp.setpgid(leader, leader) %s -> %s", r, role(getpgid(leader)));
    r = ok(setpgid(member, leader));
    say("pgrp.setpgid(member, leader) %s -> %s", r, role(getpgid(member)));
    say("pgrp.setpgid(member, other), not a group: %s", ok(setpgid(member, other)));
    say("pgrp.setpgid(member, -1) %s", ok(setpgid(member, -1)));
    say("pgrp.setpgid(no such pid) %s", ok(setpgid(NO_SUCH_PID, 0)));
    say("pgrp.getpgid(no such pid) %s", res(getpgid(NO_SUCH_PID)));
    say("pgrp.getpgid(other) %s", role(getpgid(other)));
    say("pgrp.kill(-leader, 0) %s", ok(kill(-leader, 0)));
    say("pgrp.kill(-leader, SIGUSR1) %s", ok(kill(-leader, SIGUSR1)));
    say("pgrp.leader %s", reap(leader));
    say("pgrp.member %s", reap(member));
    pass(g3);
    say("pgrp.other, outside the group, saw SIGUSR1 (exit 1): %s", reap(other));
    say("pgrp.kill(-leader, 0) once empty %s", ok(kill(-leader, 0)));
    say("pgrp.kill(-(no such group), SIGUSR1) %s", ok(kill(-NO_SUCH_PID, SIGUSR1)));
    gate_close(g1), gate_close(g2), gate_close(g3), gate_close(seen);

    /* kill(0) reaches the caller's own group, not init's. */
    block(SIGUSR2);
    seen = gate_new(), g1 = gate_new();
    leader = child("leader");
    if (leader == 0) {
        setpgid(0, 0);
        pid_t m = child("member");
        if (m == 0) {
            pass(seen);
            wait_gate(g1);
            _exit(pending(SIGUSR2) ? 1 : 0);
        }
        wait_gate(seen);
        say("pgrp.kill(0, SIGUSR2) in the leader %s", ok(kill(0, SIGUSR2)));
        say("pgrp.leader has SIGUSR2 pending: %s", yesno(pending(SIGUSR2)));
        pass(g1);
        say("pgrp.member saw SIGUSR2 (exit 1): %s", reap(m));
        _exit(0);
    }
    say("pgrp.kill(0) leader %s", reap(leader));
    say("pgrp.init has SIGUSR2 pending: %s", yesno(pending(SIGUSR2)));
    reset_signal(SIGUSR2);
    gate_close(seen), gate_close(g1);

    /* Sessions. */
    pid_t p = child("child");
    if (p == 0) {
        setpgid(0, 0);
        say("session.setsid in a group leader %s", ok(setsid()));
        _exit(0);
    }
    reap(p);

    g1 = gate_new(), seen = gate_new();
    p = child("child");
    if (p == 0) {
        say("session.getsid(0) before %s", role(getsid(0)));
        say("session.setsid %s", role(setsid()));
        say("session.getsid(0) %s getpgrp %s", role(getsid(0)), role(getpgrp()));
        say("session.getsid(init) %s", role(getsid(1)));
        say("session.setsid again %s", ok(setsid()));
        say("session.setpgid into init's group, another session: %s", ok(setpgid(0, 1)));
        pid_t c = child("grandchild");
        if (c == 0) {
            say("session.grandchild getsid %s getpgrp %s", role(getsid(0)), role(getpgrp()));
            say("session.grandchild setsid %s", role(setsid()));
            say("session.grandchild getsid %s getpgrp %s", role(getsid(0)), role(getpgrp()));
            _exit(0);
        }
        reap(c);
        pass(seen);
        wait_gate(g1);
        _exit(0);
    }
    wait_gate(seen);
    say("session.init sees getsid(child) %s getpgid %s", role(getsid(p)), role(getpgid(p)));
    say("session.init setpgid(session leader) %s", ok(setpgid(p, p)));
    say("session.init setpgid(child, init's group) %s", ok(setpgid(p, 1)));
    pass(g1);
    say("session.child %s", reap(p));
    gate_close(g1), gate_close(seen);
}

/* ---- kill, tkill, tgkill, and signals between threads ------------------------------------ */

static void check_kill(void) {
    gate g = gate_new();
    pid_t p = idle_child("child", g, 0);
    say("kill.kill(child, 0) %s", ok(kill(p, 0)));
    say("kill.kill(child, 65) %s", ok(kill(p, 65)));
    say("kill.kill(child, -1) %s", ok(kill(p, -1)));
    say("kill.kill(init, 0) %s", ok(kill(1, 0)));
    say("kill.kill(init, 65) %s", ok(kill(1, 65)));
    say("kill.kill(init, -3) %s", ok(kill(1, -3)));
    say("kill.kill(no such pid, 0) %s", ok(kill(NO_SUCH_PID, 0)));
    say("kill.tkill(child, 0) %s", ok(sys_tkill(p, 0)));
    say("kill.tkill(init, 0) %s", ok(sys_tkill(1, 0)));
    say("kill.tkill(init, 65) %s", ok(sys_tkill(1, 65)));
    say("kill.tkill(0, 0) %s", ok(sys_tkill(0, 0)));
    say("kill.tkill(-1, 0) %s", ok(sys_tkill(-1, 0)));
    say("kill.tgkill(child, child, 0) %s", ok(sys_tgkill(p, p, 0)));
    say("kill.tgkill(init, init, 0) %s", ok(sys_tgkill(1, 1, 0)));
    say("kill.tgkill(init, init, 65) %s", ok(sys_tgkill(1, 1, 65)));
    say("kill.tgkill(init, child, 0) %s", ok(sys_tgkill(1, p, 0)));
    say("kill.tgkill(child, init, 0) %s", ok(sys_tgkill(p, 1, 0)));
    say("kill.tgkill(0, init, 0) %s", ok(sys_tgkill(0, 1, 0)));
    pid_t q = child("child2");
    if (q == 0) {
        say("kill.from a child: kill(init, 0) %s tgkill(init, init, 0) %s", ok(kill(1, 0)),
            ok(sys_tgkill(1, 1, 0)));
        _exit(0);
    }
    reap(q);
    pass(g);
    siginfo_t si;
    waitid_retry(P_PID, p, &si, WEXITED | WNOWAIT);
    say("kill.zombie kill(0) %s tkill(0) %s", ok(kill(p, 0)), ok(sys_tkill(p, 0)));
    reap(p);
    say("kill.reaped kill(0) %s tkill(0) %s tgkill(0) %s", ok(kill(p, 0)), ok(sys_tkill(p, 0)),
        ok(sys_tgkill(p, p, 0)));
    gate_close(g);

    /* kill(-1): every process of the namespace but init and the caller. */
    gate ga = gate_new(), gb = gate_new(), seen = gate_new();
    pid_t a = idle_child("sibling1", ga, 0);
    pid_t b = idle_child("sibling2", gb, 0);
    handle(SIGUSR1, 0);
    pid_t c = child("sender");
    if (c == 0) {
        block(SIGUSR1);
        long r = kill(-1, SIGUSR1);
        say("kill.kill(-1, SIGUSR1) from a child %s, reached itself: %s", ok(r),
            yesno(pending(SIGUSR1)));
        _exit(0);
    }
    say("kill.sender %s", reap(c));
    say("kill.sibling1 %s", reap(a));
    say("kill.sibling2 %s", reap(b));
    say("kill.init's handler ran: %s", hits ? handled() : "no");
    a = idle_child("sibling1", ga, 0);
    b = idle_child("sibling2", gb, 0);
    c = idle_child("sibling3", seen, 0);
    say("kill.kill(-1, SIGTERM) from init %s", ok(kill(-1, SIGTERM)));
    say("kill.sibling1 %s", reap(a));
    say("kill.sibling2 %s", reap(b));
    say("kill.sibling3 %s", reap(c));
    say("kill.kill(-1, 0) with no other process %s", ok(kill(-1, 0)));
    gate_close(ga), gate_close(gb), gate_close(seen);
    reset_signal(SIGUSR1);
}

/* Signals between the threads of init. Both block SIGUSR1 and SIGUSR2 unless a step says
 * otherwise; each step is ordered by the two gates. */

static gate to_thread, to_main;
static volatile pid_t thread_tid, main_tid;

static void *thread_body(void *arg) {
    (void)arg;
    siginfo_t si;
    thread_tid = gettid_();
    pass(to_main);

    /* 1: main sends to this thread with tgkill. */
    take(SIGUSR1, &si);
    say("threads.tgkill(self, thread) taken by the thread: %s", sinfo(&si));
    pass(to_main);

    /* 2: this thread sends to main with tgkill, to a handler: it must not run here, though
     * only here it is unblocked. */
    wait_gate(to_thread);
    unblock(SIGUSR1);
    long r = sys_tgkill(getpid(), main_tid, SIGUSR1);
    block(SIGUSR1);
    say("threads.tgkill(self, main, SIGUSR1) from the thread %s, handler ran: %s", ok(r),
        hits ? handled() : "no");
    pass(to_main);

    /* 3: a process-directed kill from here, only this thread unblocked: it is ours. */
    wait_gate(to_thread);
    unblock(SIGUSR1);
    r = kill(getpid(), SIGUSR1);
    block(SIGUSR1);
    say("threads.kill(self, SIGUSR1) from the thread %s, handled: %s", ok(r), handled());
    pass(to_main);

    /* 4: main tkills this thread while it waits in sigsuspend. */
    wait_gate(to_thread);
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    sigdelset(&mask, SIGUSR1);
    sigsuspend(&mask);
    say("threads.tkill(thread) in sigsuspend, handled: %s", handled());
    pass(to_main);

    /* 5: tgkill to main of a signal it blocks and leaves SIG_DFL: pending for main only. */
    wait_gate(to_thread);
    r = sys_tgkill(getpid(), main_tid, SIGUSR2);
    say("threads.tgkill(self, main, SIGUSR2) from the thread %s", ok(r));
    say("threads.SIGUSR2 pending in the sending thread: %s", yesno(pending(SIGUSR2)));
    pass(to_main);
    return NULL;
}

static void check_threads(void) {
    block(SIGUSR1);
    block(SIGUSR2);
    to_thread = gate_new(), to_main = gate_new();
    main_tid = gettid_();
    pthread_t t;
    pthread_create(&t, NULL, thread_body, NULL);
    wait_gate(to_main);
    name_pid(thread_tid, "thread");
    say("threads.main gettid %s", role(gettid_()));
    say("threads.thread tid: %s", role(thread_tid));

    gate g = gate_new();
    pid_t p = idle_child("child", g, 0);
    say("threads.tgkill(self, thread, 0) %s", ok(sys_tgkill(getpid(), thread_tid, 0)));
    say("threads.tkill(thread, 0) %s", ok(sys_tkill(thread_tid, 0)));
    say("threads.tgkill(child, thread, 0), tgid mismatch: %s", ok(sys_tgkill(p, thread_tid, 0)));
    say("threads.kill(thread, 0), a tid as a pid: %s", ok(kill(thread_tid, 0)));
    pid_t q = child("child2");
    if (q == 0) {
        say("threads.from a child: tgkill(init, thread, 0) %s tgkill(self, thread, 0) %s",
            ok(sys_tgkill(1, thread_tid, 0)), ok(sys_tgkill(getpid(), thread_tid, 0)));
        _exit(0);
    }
    reap(q);
    pass(g);
    reap(p);
    gate_close(g);

    const char *r = ok(sys_tgkill(getpid(), thread_tid, SIGUSR1));
    wait_gate(to_main);
    say("threads.tgkill(self, thread, SIGUSR1) %s", r);

    handle(SIGUSR1, 0);
    pass(to_thread);
    wait_gate(to_main);
    unblock(SIGUSR1);
    block(SIGUSR1);
    say("threads.main unblocks SIGUSR1, handled: %s", handled());

    handle(SIGUSR1, 0);
    pass(to_thread);
    wait_gate(to_main);

    handle(SIGUSR1, 0);
    pass(to_thread);
    r = ok(sys_tkill(thread_tid, SIGUSR1));
    wait_gate(to_main);
    say("threads.tkill(thread, SIGUSR1) %s", r);

    pass(to_thread);
    wait_gate(to_main);
    siginfo_t si;
    take(SIGUSR2, &si);
    say("threads.main takes SIGUSR2: %s", sinfo(&si));

    pthread_join(t, NULL);
    gate_close(to_thread), gate_close(to_main);
    reset_signal(SIGUSR1);
    reset_signal(SIGUSR2);
}

/* ---- SIGCHLD ----------------------------------------------------------------------------- */

/* The kernel releases an auto-reaped child just after wait4 can return ECHILD, so its pid
 * may still name it for a moment: kill(p, 0) must fail with ESRCH within a few seconds. */
static const char *released(pid_t p) {
    for (int i = 0; i < 5000 && kill(p, 0) == 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return ok(kill(p, 0));
}

static void check_sigchld(void) {
    siginfo_t si;
    int st = 0;

    /* Delivered to a handler: it has run by the time wait4 returns. */
    handle(SIGCHLD, 0);
    pid_t p = child("child");
    if (p == 0) _exit(2);
    const char *r = reap(p);
    say("sigchld.handler, exit(2): %s; handled %s", r, handled());

    /* Taken with sigwaitinfo, for its siginfo. */
    block(SIGCHLD);
    p = child("child");
    if (p == 0) _exit(3);
    take(SIGCHLD, &si);
    say("sigchld.exit(3) %s status=%d", sinfo(&si), si.si_status);
    reap(p);
    gate g = gate_new();
    p = idle_child("child", g, 0);
    kill(p, SIGKILL);
    take(SIGCHLD, &si);
    say("sigchld.SIGKILL %s status=%s", sinfo(&si), signame(si.si_status));
    reap(p);
    p = idle_child("child", g, 0);
    kill(p, SIGSTOP);
    take(SIGCHLD, &si);
    say("sigchld.SIGSTOP %s status=%s", sinfo(&si), signame(si.si_status));
    waitid_retry(P_PID, p, &si, WSTOPPED);
    kill(p, SIGCONT);
    take(SIGCHLD, &si);
    say("sigchld.SIGCONT %s status=%s", sinfo(&si), signame(si.si_status));
    waitid_retry(P_PID, p, &si, WCONTINUED);
    pass(g);
    take(SIGCHLD, &si);
    say("sigchld.then exit(0) %s", sinfo(&si));
    reap(p);
    say("sigchld.nothing pending: %s", yesno(pending(SIGCHLD)));

    /* SA_NOCLDSTOP: no SIGCHLD for a stop or a continue, one for the exit. */
    handle(SIGCHLD, SA_NOCLDSTOP);
    p = idle_child("child", g, 0);
    kill(p, SIGSTOP);
    waitid_retry(P_PID, p, &si, WSTOPPED);
    say("sigchld.SA_NOCLDSTOP stopped, SIGCHLD pending: %s", yesno(pending(SIGCHLD)));
    kill(p, SIGCONT);
    waitid_retry(P_PID, p, &si, WCONTINUED);
    pass(g);
    take(SIGCHLD, &si);  /* a CLD_CONTINUED would have been first and the exit merged into it */
    say("sigchld.SA_NOCLDSTOP continued then exited, first SIGCHLD: %s", sinfo(&si));
    reap(p);
    reset_signal(SIGCHLD);
    gate_close(g);

    /* SIG_IGN: children are reaped by the kernel; wait4 waits for them, then ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    g = gate_new();
    p = idle_child("child", g, 4);
    pass(g);
    say("sigchld.SIG_IGN wait4 %s", res(wait4_retry(p, &st, 0)));
    say("sigchld.SIG_IGN kill(child, 0) %s", released(p));
    p = child("child");
    if (p == 0) _exit(4);
    say("sigchld.SIG_IGN waitid P_ALL %s", winfo(waitid_retry(P_ALL, 0, &si, WEXITED), &si));
    reset_signal(SIGCHLD);

    /* SA_NOCLDWAIT with a handler: reaped by the kernel, yet SIGCHLD is still sent. */
    handle(SIGCHLD, SA_NOCLDWAIT);
    block(SIGCHLD);
    p = idle_child("child", g, 5);
    pass(g);
    say("sigchld.SA_NOCLDWAIT wait4 %s", res(wait4_retry(p, &st, 0)));
    say("sigchld.SA_NOCLDWAIT kill(child, 0) %s", released(p));
    take(SIGCHLD, &si);
    say("sigchld.SA_NOCLDWAIT still signalled: %s status=%d", sinfo(&si), si.si_status);
    reset_signal(SIGCHLD);
    gate_close(g);

    /* SIGCHLD goes to the parent only, not to init. */
    handle(SIGCHLD, 0);
    p = child("child");
    if (p == 0) {
        pid_t c = child("grandchild");
        if (c == 0) _exit(1);
        say("sigchld.grandchild to its parent: %s", reap(c));
        _exit(0);
    }
    r = reap(p);
    say("sigchld.child %s; init handled %s", r, handled());
    reset_signal(SIGCHLD);
}

/* ---- signals aimed at init --------------------------------------------------------------- */

static void check_pid1(void) {
    /* Terminating default actions, as any process sees them: done in a child. */
    pid_t p = child("child");
    if (p == 0) {
        kill(getpid(), SIGTERM);
        _exit(0);
    }
    say("pid1.child kill(self, SIGTERM): %s", reap(p));
    p = child("child");
    if (p == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    say("pid1.child raise(SIGTERM): %s", reap(p));
    gate g = gate_new();
    p = child("child");
    if (p == 0) {
        pid_t c = child("grandchild");
        if (c == 0) {
            kill(getppid(), SIGTERM);
            wait_gate(g);  /* for init, not its parent, to reap it */
            _exit(0);
        }
        reap(c);
        _exit(0);
    }
    say("pid1.child killed by its own child: %s", reap(p));
    pass(g);
    int st = 0;
    pid_t orphan = wait4_retry(-1, &st, 0);
    say("pid1.that orphan, reaped by init: %s %s", orphan > 0 ? "ok" : errname(errno),
        status(st));
    gate_close(g);

    /* A handler of init sees the sender and the kind of sending. */
    handle(SIGUSR1, 0);
    const char *r = ok(kill(getpid(), SIGUSR1));
    say("pid1.kill(self, SIGUSR1) %s, handled %s", r, handled());
    handle(SIGUSR1, 0);
    r = ok(sys_tkill(gettid_(), SIGUSR1));
    say("pid1.tkill(self, SIGUSR1) %s, handled %s", r, handled());
    handle(SIGUSR1, 0);
    r = ok(sys_tgkill(getpid(), gettid_(), SIGUSR1));
    say("pid1.tgkill(self, self, SIGUSR1) %s, handled %s", r, handled());
    handle(SIGUSR1, 0);
    r = ok(raise(SIGUSR1));
    say("pid1.raise(SIGUSR1) %s, handled %s", r, handled());
    handle(SIGUSR1, 0);
    p = child("child");
    if (p == 0) _exit(kill(1, SIGUSR1) ? 1 : 0);
    r = reap(p);
    say("pid1.child kill(init, SIGUSR1): %s, handled %s", r, handled());
    handle(SIGUSR1, 0);
    p = child("child");
    if (p == 0) _exit(sigqueue(1, SIGUSR1, (union sigval){.sival_int = 42}) ? 1 : 0);
    r = reap(p);
    say("pid1.child sigqueue(init, SIGUSR1, 42): %s, handled %s value=%d", r, handled(),
        hit_value);
    reset_signal(SIGUSR1);

    /* Signals ignored, explicitly or by default, are ignored by init as by anyone. */
    signal(SIGTERM, SIG_IGN);
    say("pid1.kill(self, SIGTERM) with SIG_IGN %s, survived", ok(kill(getpid(), SIGTERM)));
    p = child("child");
    if (p == 0) _exit(kill(1, SIGTERM) ? 1 : 0);
    say("pid1.child kill(init, SIGTERM) with SIG_IGN: %s, survived", reap(p));
    signal(SIGTERM, SIG_DFL);
    p = child("child");
    if (p == 0) _exit(kill(1, SIGCHLD) || kill(1, SIGWINCH) || kill(1, SIGCONT) ? 1 : 0);
    say("pid1.child kill(init, SIGCHLD|SIGWINCH|SIGCONT), default ignored: %s, survived",
        reap(p));

    /* Last: init blocks SIGTERM, left SIG_DFL, and sends it to itself. A blocked signal
     * waits, for init as for any process, and sigwaitinfo can take it. Sent again and then
     * unblocked, Linux's init protection discards it where any other process would die (as
     * the sandbox's init, an ordinary process to its user, does). */
    block(SIGTERM);
    say("pid1.kill(self, SIGTERM) blocked, SIG_DFL %s", ok(kill(getpid(), SIGTERM)));
    say("pid1.SIGTERM pending: %s", yesno(pending(SIGTERM)));
    siginfo_t si;
    take(SIGTERM, &si);
    say("pid1.taken: %s", sinfo(&si));
    r = ok(kill(getpid(), SIGTERM));
    say("pid1.kill(self, SIGTERM) blocked again %s, pending: %s", r, yesno(pending(SIGTERM)));
    unblock(SIGTERM);
    /* The sandbox leaves a signal blocked when sent to the kernel, which drops it on
     * unblocking as Linux drops it for any init: the same line on both sides. */
    say("pid1.unblocked SIGTERM dropped, SIG_DFL (init protection)");
}

/* ---- init killed by a terminating default action (separate runs) ------------------------- */

static int kill_self(void) {
    say("init.getpid %d", getpid());
    say("pid1.survived kill(self, SIGTERM), SIG_DFL (init protection): %s",
        ok(kill(getpid(), SIGTERM)));
    return 0;
}

static int kill_from_child(void) {
    say("init.getpid %d", getpid());
    pid_t p = child("child");
    if (p == 0) _exit(kill(1, SIGTERM) ? 1 : 0);
    say("pid1.survived a child's kill(init, SIGTERM), SIG_DFL (init protection): %s", reap(p));
    return 0;
}

static const struct { const char *name; void (*run)(void); } sections[] = {
    {"init", check_init},     {"wait4", check_wait4},     {"waitid", check_waitid},
    {"orphans", check_orphans}, {"groups", check_groups}, {"kill", check_kill},
    {"threads", check_threads}, {"sigchld", check_sigchld}, {"pid1", check_pid1},
};

int main(int argc, char **argv) {
    name_pid(getpid(), "init");
    if (argc > 1 && strcmp(argv[1], "pid1-kill-self") == 0) return kill_self();
    if (argc > 1 && strcmp(argv[1], "pid1-kill-from-child") == 0) return kill_from_child();
    /* A core dump would change a status's core flag, and take time. */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    /* The sandbox gives its init a process group of its own (as a shell gives a job), unshare
     * does not: start alike. The session stays the one above the namespace in both. */
    setpgid(0, 0);
    int ran = 0;
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        if (argc > 1 && strcmp(argv[1], sections[i].name) != 0) continue;
        sections[i].run();
        ran = 1;
    }
    if (!ran) {
        say("unknown section %s", argv[1]);
        return 2;
    }
    return 0;
}
