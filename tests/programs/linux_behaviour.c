/* Single calls whose answers once differed between Linux and the sandbox, one line per check,
 * for comparison between a native run and a sandboxed one (tests/conformance/
 * test_linux_behaviour.py). The program expects to be root and init of pid, uts and ipc
 * namespaces of its own, as it is in the sandbox and natively under
 * `unshare --pid --uts --ipc --fork --mount-proc`.
 *
 * Nothing printed depends on timing, on absolute pids or on the machine: a signal storm is
 * reported as the number of calls that failed with EINTR (none, on Linux), /proc files as
 * whether they open and what shape their contents have.
 *
 * Usage: linux_behaviour SECTION [DIR]   DIR: a writable directory (inotify, F_CREATED_QUERY)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "oracle.h"

#ifndef F_CREATED_QUERY
#define F_CREATED_QUERY (1024 + 4)
#endif

static const char *dir = "/tmp";

static const char *res(long r) {
    if (r == -1) return errname(errno);
    char *s = scratch();
    snprintf(s, 96, "%ld", r);
    return s;
}

static char *path_in(const char *name) {
    char *s = scratch();
    snprintf(s, 96, "%s/%s", dir, name);
    return s;
}

static const char *status_of(int status) {
    char *s = scratch();
    if (WIFEXITED(status)) snprintf(s, 96, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(s, 96, "signal %d", WTERMSIG(status));
    else snprintf(s, 96, "status %#x", status);
    return s;
}

/* ---- signals during emulated calls --------------------------------------------------------- */

static volatile sig_atomic_t caught;
static void count(int sig) { (void)sig; caught++; }

/* A child that sends `sig` to its parent without pause until it is killed. */
static pid_t storm(int sig) {
    pid_t parent = getpid();
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        for (;;) kill(parent, sig);
    }
    while (!caught) sched_yield();  /* the storm has begun */
    return p;
}

static void end_storm(pid_t p) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

static void handle(int sig, int flags) {
    struct sigaction sa = {.sa_handler = count, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) die("sigaction");
}

#define ROUNDS 300

static void signals_during(int flags, const char *how) {
    handle(SIGUSR1, flags);
    caught = 0;
    pid_t p = storm(SIGUSR1);
    int eintr_chmod = 0, eintr_rename = 0, eintr_kill = 0, eintr_open = 0, other = 0;
    char *a = path_in("storm.a"), *b = path_in("storm.b");
    int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0) die("open");
    close(fd);
    for (int i = 0; i < ROUNDS; i++) {
        if (chmod(a, i & 1 ? 0600 : 0640)) { if (errno == EINTR) eintr_chmod++; else other++; }
        if (rename(a, b)) { if (errno == EINTR) eintr_rename++; else other++; }
        else if (rename(b, a)) { if (errno == EINTR) eintr_rename++; else other++; }
        if (kill(getpid(), 0)) { if (errno == EINTR) eintr_kill++; else other++; }
        fd = open(a, O_RDONLY);
        if (fd < 0) { if (errno == EINTR) eintr_open++; else other++; } else close(fd);
    }
    end_storm(p);
    unlink(a);
    unlink(b);
    say("signals.%s chmod EINTR %d rename EINTR %d kill EINTR %d open EINTR %d other %d",
        how, eintr_chmod, eintr_rename, eintr_kill, eintr_open, other);
}

/* kill(getpid()) in a loop, each signal handled, while another process storms: it ends. */
static void kill_self_loop(void) {
    handle(SIGUSR1, SA_RESTART);
    handle(SIGUSR2, SA_RESTART);
    caught = 0;
    pid_t p = storm(SIGUSR2);
    int failed = 0;
    for (int i = 0; i < ROUNDS * 4; i++)
        if (kill(getpid(), SIGUSR1)) failed++;
    end_storm(p);
    say("signals.kill-self-loop failed %d", failed);
}

static void section_signals(void) { signals_during(SA_RESTART, "restart"); }
static void section_signals_no_restart(void) { signals_during(0, "no-restart"); }

/* ---- limits ----------------------------------------------------------------------------- */

static void section_emfile(void) {
    struct rlimit rl = {16, 16};
    if (setrlimit(RLIMIT_NOFILE, &rl)) die("setrlimit");
    char *a = path_in("emfile");
    int fd, last = 0, n = 0;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) { last = fd; n++; }
    say("emfile.open %s highest %d", errname(errno), last);
    say("emfile.open-creat %s", res(open(a, O_CREAT | O_WRONLY, 0600)));
    say("emfile.creat %s", res(creat(a, 0600)));
    say("emfile.openat %s", res(openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY)));
    say("emfile.dup %s", res(dup(0)));
    int fds[2];
    say("emfile.pipe %s", res(pipe(fds)));
    for (int i = 3; i <= last; i++) close(i);
    (void)n;
    unlink(a);
}

static void section_fsize(void) {
    handle(SIGXFSZ, 0);
    caught = 0;
    char *a = path_in("fsize");
    int fd = open(a, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0) die("open");
    struct rlimit rl = {4096, 4096};
    if (setrlimit(RLIMIT_FSIZE, &rl)) die("setrlimit");
    const char *r = res(truncate(a, 4096));
    say("fsize.truncate-below %s SIGXFSZ %d", r, (int)caught);
    r = res(truncate(a, 8192));
    say("fsize.truncate-above %s SIGXFSZ %d", r, (int)caught);
    r = res(ftruncate(fd, 8192));
    say("fsize.ftruncate-above %s SIGXFSZ %d", r, (int)caught);
    struct stat st;
    fstat(fd, &st);
    say("fsize.size %ld", (long)st.st_size);
    close(fd);
    unlink(a);
}

/* ---- inotify ------------------------------------------------------------------------------ */

static void print_events(int in, const char *what) {
    char buf[4096] __attribute__((aligned(8)));
    char line[400] = "";
    ssize_t n = read(in, buf, sizeof buf);
    for (char *p = buf; n > 0 && p < buf + n;) {
        struct inotify_event *ev = (struct inotify_event *)p;
        static const struct { uint32_t bit; const char *name; } names[] = {
            {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
            {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
            {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
            {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"},
            {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
        };
        strcat(line, " ");
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (ev->mask & names[i].bit) {
                strcat(line, names[i].name);
                strcat(line, ev->len ? ":" : "");
            }
        if (ev->len) strncat(line, ev->name, 32);
        p += sizeof *ev + ev->len;
    }
    say("inotify.%s%s", what, n > 0 ? line : n == 0 ? " EOF" : errname(errno));
}

static void section_inotify(void) {
    char *a = path_in("watched");
    int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0) die("open");
    close(fd);
    int in = inotify_init1(IN_NONBLOCK);
    if (in < 0) die("inotify_init1");
    say("inotify.watch-file %s", res(inotify_add_watch(in, a, IN_ALL_EVENTS) >= 0 ? 0 : -1));
    print_events(in, "nothing-yet");
    fd = open(a, O_WRONLY);
    if (write(fd, "x", 1) != 1) die("write");
    close(fd);
    print_events(in, "write-close");
    fd = open(a, O_RDONLY);
    char c;
    if (read(fd, &c, 1) != 1) die("read");
    close(fd);
    print_events(in, "read-close");
    chmod(a, 0640);
    print_events(in, "chmod");
    struct stat st;
    stat(a, &st);
    print_events(in, "stat");
    int d = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                           IN_CLOSE_WRITE | IN_OPEN);
    say("inotify.watch-dir %s", res(d >= 0 ? 0 : -1));
    char *b = path_in("watched.new");
    fd = open(b, O_CREAT | O_WRONLY, 0600);
    close(fd);
    print_events(in, "create-close");
    rename(b, path_in("watched.moved"));
    print_events(in, "rename");
    unlink(path_in("watched.moved"));
    print_events(in, "unlink");
    close(in);
    unlink(a);
}

/* A watched file's IN_DELETE_SELF (then IN_IGNORED) comes when the last reference to it goes
 * after its last name: at that unlink when no one holds it open, at the last close if one does;
 * a file replaced by a rename gets it too, and one with another name left does not. */
static void touch(const char *path) {
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd < 0) die("open");
    close(fd);
}

static void watch(int in, const char *path) {
    if (inotify_add_watch(in, path, IN_ALL_EVENTS) < 0) die("inotify_add_watch");
}

static void section_inotify_unlink(void) {
    char *a = path_in("doomed"), *b = path_in("doomed.link"), *c = path_in("doomed.over");
    int in = inotify_init1(IN_NONBLOCK);
    if (in < 0) die("inotify_init1");
    touch(a);
    watch(in, a);
    say("inotify-unlink.unlink %s", res(unlink(a)));
    print_events(in, "unlink");

    int fd = open(a, O_CREAT | O_RDWR, 0600);
    if (fd < 0) die("open");
    watch(in, a);
    say("inotify-unlink.unlink-held %s", res(unlink(a)));
    print_events(in, "unlink-held");
    close(fd);
    print_events(in, "close-held");

    touch(a);
    if (link(a, b)) die("link");
    watch(in, a);
    say("inotify-unlink.unlink-linked %s", res(unlink(a)));
    print_events(in, "unlink-linked");
    say("inotify-unlink.unlink-last-link %s", res(unlink(b)));
    print_events(in, "unlink-last-link");

    touch(a);
    touch(c);
    watch(in, c);
    say("inotify-unlink.renamed-over %s", res(rename(a, c)));
    print_events(in, "renamed-over");
    unlink(c);
    close(in);
}

/* ---- identity and processes ---------------------------------------------------------------- */

static void drop_cap(int cap) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) die("capget");
    d[cap / 32].effective &= ~(1u << (cap % 32));
    d[cap / 32].permitted &= ~(1u << (cap % 32));
    if (syscall(SYS_capset, &h, d)) die("capset");
}

/* Without CAP_SYS_ADMIN (which the sandbox's root does not have, as in Docker), the uts
 * names cannot change. */
static void section_hostname(void) {
    char before[65] = "", after[65] = "", long_name[100];
    memset(long_name, 'x', sizeof long_name);
    gethostname(before, sizeof before);
    drop_cap(CAP_SYS_ADMIN);
    say("hostname.set-without-cap %s", res(sethostname("other", 5)));
    say("hostname.setdomain-without-cap %s", res(setdomainname("other", 5)));
    say("hostname.too-long-without-cap %s", res(sethostname(long_name, sizeof long_name)));
    gethostname(after, sizeof after);
    say("hostname.unchanged %d", !strcmp(before, after));
}

static void section_pidfd(void) {
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        pause();
        _exit(0);
    }
    int pidfd = syscall(SYS_pidfd_open, p, 0);
    say("pidfd.open %s", res(pidfd >= 0 ? 0 : -1));
    say("pidfd.send-signal-0 %s", res(syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0)));
    say("pidfd.send-signal %s", res(syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0)));
    int status;
    waitpid(p, &status, 0);
    say("pidfd.child %s", status_of(status));
    say("pidfd.send-signal-reaped %s",
        res(syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0)));
    say("pidfd.send-signal-not-pidfd %s",
        res(syscall(SYS_pidfd_send_signal, 0, SIGTERM, NULL, 0)));
    close(pidfd);
}

static void section_calls(void) {
    struct open_how how = {.flags = O_RDONLY, .resolve = 1ULL << 40};
    say("openat2.unknown-resolve %s", res(syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how)));
    how.resolve = 0;
    how.flags = 1ULL << 40;
    say("openat2.unknown-flag %s", res(syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how)));
    char buf[64];
    say("readlink.missing %s", res(readlink("/nonexistent", buf, sizeof buf)));
    say("readlink.missing-parent %s", res(readlink("/nonexistent/x", buf, sizeof buf)));
    say("readlink.empty %s", res(readlink("", buf, sizeof buf)));
    say("readlink.not-link %s", res(readlink("/", buf, sizeof buf)));
    say("readlinkat.missing %s", res(readlinkat(AT_FDCWD, "nonexistent", buf, sizeof buf)));
    static const struct { int family, type, protocol; const char *name; } socks[] = {
        {AF_INET, SOCK_STREAM, 99, "inet-stream-99"},
        {AF_INET, SOCK_STREAM, IPPROTO_UDP, "inet-stream-udp"},
        {AF_INET, SOCK_DGRAM, IPPROTO_TCP, "inet-dgram-tcp"},
        {AF_INET6, SOCK_STREAM, 99, "inet6-stream-99"},
        {AF_INET6, SOCK_DGRAM, IPPROTO_TCP, "inet6-dgram-tcp"},
        {AF_UNIX, SOCK_STREAM, 5, "unix-stream-5"},
        {AF_UNIX, SOCK_DGRAM, 1, "unix-dgram-1"},
        {AF_INET, SOCK_STREAM, IPPROTO_SCTP, "inet-stream-sctp"},
        {AF_INET, SOCK_SEQPACKET, 0, "inet-seqpacket-0"},
        {AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP, "inet-seqpacket-sctp"},
        {AF_INET, SOCK_DCCP, 0, "inet-dccp-0"},
        {AF_INET, SOCK_STREAM, 2, "inet-stream-2"},
        {AF_INET, SOCK_DGRAM, 2, "inet-dgram-2"},
        {AF_INET, SOCK_STREAM, IPPROTO_TCP, "inet-stream-tcp"},
        {AF_INET, SOCK_DGRAM, IPPROTO_UDP, "inet-dgram-udp"},
        {AF_UNIX, SOCK_STREAM, 0, "unix-stream-0"},
    };
    for (size_t i = 0; i < sizeof socks / sizeof *socks; i++) {
        int s = socket(socks[i].family, socks[i].type, socks[i].protocol);
        say("socket.%s %s", socks[i].name, res(s >= 0 ? 0 : -1));
        if (s >= 0) close(s);
        int pair[2];
        if (socks[i].family == AF_UNIX) {
            int r = socketpair(socks[i].family, socks[i].type, socks[i].protocol, pair);
            say("socketpair.%s %s", socks[i].name, res(r));
            if (!r) { close(pair[0]); close(pair[1]); }
        }
    }
}

static int strict_out = -1;

static void strict_handler(int sig) {
    static const char line[] = "seccomp.strict-handler ran\n";
    (void)sig;
    if (write(strict_out, line, sizeof line - 1) < 0) syscall(SYS_exit, 4);
}

static void section_seccomp(void) {
    int fds[2];
    if (pipe(fds)) die("pipe");
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        close(fds[0]);
        long r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
        char line[64];
        int n = snprintf(line, sizeof line, "seccomp.strict %s\n", r ? errname(errno) : "0");
        /* Only read, write, _exit and sigreturn from here on. */
        if (write(fds[1], line, n) != n) syscall(SYS_exit, 3);
        n = snprintf(line, sizeof line, "seccomp.read-closed %ld\n", (long)read(99, line, 1));
        if (write(fds[1], line, n) != n) syscall(SYS_exit, 3);
        if (r) syscall(SYS_exit, 2);
        getppid();  /* killed here */
        syscall(SYS_exit, 1);
    }
    close(fds[1]);
    relay(fds[0]);
    int status;
    waitpid(p, &status, 0);
    say("seccomp.child %s", status_of(status));

    /* A strict task that forks, opens or execs is killed; its parent is unharmed. */
    static const char *attempts[] = {"open", "fork", "execve", "exit_group"};
    for (size_t i = 0; i < sizeof attempts / sizeof *attempts; i++) {
        p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) syscall(SYS_exit, 2);
            switch (i) {
            case 0: syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY); break;
            case 1: syscall(SYS_fork); break;
            case 2: syscall(SYS_execve, "/bin/true", NULL, NULL); break;
            case 3: syscall(SYS_exit_group, 0); break;
            }
            syscall(SYS_exit, 1);
        }
        waitpid(p, &status, 0);
        say("seccomp.strict-%s %s", attempts[i], status_of(status));
    }

    /* The same through seccomp(2); its flags and pointer must be 0. */
    say("seccomp.op-strict-flags %s", res(syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL)));
    p = fork();
    if (p == 0) {
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL)) syscall(SYS_exit, 2);
        getppid();
        syscall(SYS_exit, 1);
    }
    waitpid(p, &status, 0);
    say("seccomp.op-strict-getppid %s", status_of(status));

    /* A strict task still takes a handled signal: its handler runs and returns through
     * rt_sigreturn, and the read it interrupted fails with EINTR (no SA_RESTART). */
    if (pipe(fds)) die("pipe");
    int idle[2];
    if (pipe(idle)) die("pipe");
    p = fork();
    if (p == 0) {
        close(fds[0]);
        strict_out = fds[1];
        struct sigaction sa = {.sa_handler = strict_handler};
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval soon = {.it_value = {.tv_usec = 50000}};
        setitimer(ITIMER_REAL, &soon, NULL);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) syscall(SYS_exit, 2);
        char c;
        long r = read(idle[0], &c, 1);
        const char *line = r < 0 && errno == EINTR ? "seccomp.strict-read EINTR\n"
                                                   : "seccomp.strict-read other\n";
        if (write(fds[1], line, strlen(line)) < 0) syscall(SYS_exit, 3);
        syscall(SYS_exit, 0);
    }
    close(fds[1]);
    close(idle[0]);
    relay(fds[0]);
    close(idle[1]);
    waitpid(p, &status, 0);
    say("seccomp.strict-signal %s", status_of(status));

    /* Job control of a strict task: stopped and continued by its parent, which sees both;
     * then its read sees the end of the pipe and it exits. */
    if (pipe(idle)) die("pipe");
    p = fork();
    if (p == 0) {
        close(idle[1]);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) syscall(SYS_exit, 2);
        char c;
        syscall(SYS_exit, read(idle[0], &c, 1) == 0 ? 0 : 1);
    }
    close(idle[0]);
    usleep(50000);
    kill(p, SIGSTOP);
    waitpid(p, &status, WUNTRACED);
    say("seccomp.strict-stop %s", WIFSTOPPED(status) ? "stopped" : status_of(status));
    kill(p, SIGCONT);
    waitpid(p, &status, WCONTINUED);
    say("seccomp.strict-cont %s", WIFCONTINUED(status) ? "continued" : status_of(status));
    close(idle[1]);
    waitpid(p, &status, 0);
    say("seccomp.strict-after-stop %s", status_of(status));
}

static void section_created(void) {
    char *a = path_in("created");
    unlink(a);
    int fd = open(a, O_CREAT | O_RDWR, 0600);
    say("created.new %s", res(fcntl(fd, F_CREATED_QUERY, 0)));
    close(fd);
    fd = open(a, O_CREAT | O_RDWR, 0600);
    say("created.existing %s", res(fcntl(fd, F_CREATED_QUERY, 0)));
    close(fd);
    fd = open(a, O_RDWR);
    say("created.plain-open %s", res(fcntl(fd, F_CREATED_QUERY, 0)));
    close(fd);
    unlink(a);
    fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0600);
    say("created.excl %s", res(fcntl(fd, F_CREATED_QUERY, 0)));
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    say("created.dup %s", res(fcntl(dup, F_CREATED_QUERY, 0)));
    close(dup);
    close(fd);
    unlink(a);
}

/* ---- views ---------------------------------------------------------------------------------- */

/* "ok N" with N the count of whitespace-separated fields of its first line, or the errno. */
static void show_file(const char *what, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        say("%s %s", what, errname(errno));
        return;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        say("%s read %s", what, errname(errno));
        return;
    }
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    int fields = 0;
    for (char *p = buf, *end = nl ? nl : buf + n; p < end; p++)
        if (*p != ' ' && *p != '\t' && (p == buf || p[-1] == ' ' || p[-1] == '\t')) fields++;
    say("%s ok fields %d newline %d", what, fields, nl != NULL);
}

static void section_procsys(void) {
    static const char *files[] = {
        "kernel/pid_max", "kernel/ns_last_pid", "kernel/threads-max", "kernel/ostype",
        "kernel/osrelease", "kernel/version", "kernel/hostname", "kernel/domainname",
        "kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/sem", "kernel/shmall",
        "kernel/shmmax", "kernel/shmmni", "kernel/random/boot_id", "kernel/random/uuid",
        "kernel/random/entropy_avail", "kernel/random/poolsize", "kernel/ngroups_max",
        "kernel/cap_last_cap", "kernel/overflowuid", "kernel/overflowgid", "kernel/pty/max",
        "fs/pipe-max-size", "fs/file-max", "fs/nr_open", "fs/inotify/max_user_watches",
        "fs/inotify/max_user_instances", "fs/inotify/max_queued_events",
        "fs/mqueue/msg_max", "fs/mqueue/msgsize_max", "fs/mqueue/queues_max",
        "vm/overcommit_memory", "vm/max_map_count", "vm/mmap_min_addr",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char what[96], path[96];
        snprintf(what, sizeof what, "procsys.%s", files[i]);
        snprintf(path, sizeof path, "/proc/sys/%s", files[i]);
        show_file(what, path);
    }
    int fd;
    /* With a child alive, the last pid allocated is the child's. */
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        pause();
        _exit(0);
    }
    fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY);
    char last[32] = "";
    if (fd >= 0 && read(fd, last, sizeof last - 1) >= 0) close(fd);
    say("procsys.ns_last_pid-is-the-child %d", atoi(last) == p);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    /* Values of the guest's own ipc namespace: a fresh one's. */
    static const char *ipc[] = {"kernel/msgmax", "kernel/msgmnb", "kernel/msgmni",
                                "kernel/sem", "kernel/shmmni", "fs/mqueue/queues_max"};
    for (size_t i = 0; i < sizeof ipc / sizeof *ipc; i++) {
        char path[96], value[96] = "";
        snprintf(path, sizeof path, "/proc/sys/%s", ipc[i]);
        fd = open(path, O_RDONLY);
        if (fd >= 0 && read(fd, value, sizeof value - 1) >= 0) close(fd);
        value[strcspn(value, "\n")] = 0;
        say("procsys.value %s %s", ipc[i], value);
    }
}

/* The line of /proc/sysvipc/`file` whose column `idcol` is `id`, its fields in `out`. */
static int ipc_line(const char *file, int idcol, long id, long out[16]) {
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", file);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    for (char *line = strchr(buf, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        int k = 0;
        char *p = line + 1;
        while (k < 16) {
            char *end;
            out[k] = strtol(p, &end, 0);
            if (end == p || *end == '\n' || !*end) { if (end != p) k++; break; }
            p = end;
            k++;
        }
        if (k > idcol && out[idcol] == id) return 1;
    }
    return 0;
}

/* Whose the objects are: a host segment with this key must never show. */
#define HOST_KEY 0x5eed1234

static void section_sysvipc(void) {
    show_file("sysvipc.msg", "/proc/sysvipc/msg");
    show_file("sysvipc.sem", "/proc/sysvipc/sem");
    show_file("sysvipc.shm", "/proc/sysvipc/shm");
    long f[16];
    int fds[2];
    if (pipe(fds)) die("pipe");
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {  /* creates and attaches a segment, sends a message, and waits */
        int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        int msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        struct { long type; char text[8]; } m = {1, "hello"};
        if (shm < 0 || msq < 0 || !shmat(shm, NULL, 0) || msgsnd(msq, &m, 6, 0)) _exit(1);
        int ids[2] = {shm, msq};
        if (write(fds[1], ids, sizeof ids) != sizeof ids) _exit(1);
        pause();
        _exit(0);
    }
    int ids[2];
    if (read(fds[0], ids, sizeof ids) != sizeof ids) die("read");
    /* shm: key shmid perms size cpid lpid nattch ...; msg: key msqid perms cbytes qnum
     * lspid lrpid ... */
    int found = ipc_line("shm", 1, ids[0], f);
    say("sysvipc.shm-line %d cpid-is-child %d lpid-is-child %d nattch %ld size %ld", found,
        found && f[4] == p, found && f[5] == p, found ? f[6] : -1, found ? f[3] : -1);
    found = ipc_line("msg", 1, ids[1], f);
    say("sysvipc.msg-line %d cbytes %ld qnum %ld lspid-is-child %d", found, found ? f[3] : -1,
        found ? f[4] : -1, found && f[5] == p);
    say("sysvipc.host-key-visible %d", ipc_line("shm", 0, HOST_KEY, f));
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    shmctl(ids[0], IPC_RMID, NULL);
    msgctl(ids[1], IPC_RMID, NULL);
    found = ipc_line("shm", 1, ids[0], f);
    say("sysvipc.after-rmid %d", found);
}

static void section_ns(void) {
    static const char *kinds[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
                                  "time", "time_for_children", "user", "uts"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char path[64], link[64] = "";
        snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[i]);
        ssize_t n = readlink(path, link, sizeof link - 1);
        char *bracket = n > 0 ? strchr(link, '[') : NULL;
        if (bracket) bracket[1] = 0;
        int fd = open(path, O_RDONLY);
        say("ns.%s readlink %s open %s", kinds[i], n > 0 ? link : errname(errno),
            fd >= 0 ? "ok" : errname(errno));
        if (fd >= 0) close(fd);
    }
}

static int probe = 0x5eed;

static void section_mem(void) {
    int fd = open("/proc/self/mem", O_RDONLY);
    int got = 0;
    say("mem.open %s", fd >= 0 ? "ok" : errname(errno));
    const char *r = res(pread(fd, &got, sizeof got, (off_t)(uintptr_t)&probe));
    say("mem.pread %s value-matches %d", r, got == probe);
    close(fd);
    fd = open("/proc/self/smaps", O_RDONLY);
    char buf[8192];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (n >= 0) buf[n] = 0;
    say("smaps.read %s has-rss %d", fd >= 0 ? (n >= 0 ? "ok" : errname(errno)) : errname(errno),
        n > 0 && strstr(buf, "\nRss:") != NULL);
    close(fd);
    fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t entry = 0;
    long page = sysconf(_SC_PAGESIZE);
    off_t at = (off_t)((uintptr_t)&probe / page) * 8;
    r = res(fd >= 0 ? pread(fd, &entry, 8, at) : -1);
    say("pagemap.pread %s present %d", r, (int)(entry >> 63));
    close(fd);
}

static void show_fd_link(const char *what, int fd) {
    char path[64], link[128] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    char *bracket = n > 0 ? strchr(link, '[') : NULL;
    if (bracket) bracket[1] = 0;
    say("fdlink.%s %s", what, n > 0 ? link : errname(errno));
}

static void section_fdlinks(void) {
    int m = memfd_create("probe", 0);
    show_fd_link("memfd", m);
    int fds[2];
    if (pipe(fds)) die("pipe");
    show_fd_link("pipe-read", fds[0]);
    show_fd_link("pipe-write", fds[1]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    show_fd_link("socket", s);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair)) die("socketpair");
    show_fd_link("socketpair", pair[0]);
    int in = inotify_init1(0);
    show_fd_link("inotify", in);
}

static void section_splice(void) {
    int from[2], to[2];
    if (pipe(from) || pipe(to)) die("pipe");
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        close(from[0]);
        if (write(from[1], "hello", 5) != 5) _exit(1);
        _exit(0);
    }
    close(from[1]);
    waitpid(p, NULL, 0);
    say("splice.data %s", res(splice(from[0], NULL, to[1], NULL, 64, 0)));
    say("splice.eof %s", res(splice(from[0], NULL, to[1], NULL, 64, 0)));
    int null = open("/dev/null", O_WRONLY);
    say("splice.to-file %s", res(splice(to[0], NULL, null, NULL, 64, 0)));
}

static const struct { const char *name; void (*run)(void); } sections[] = {
    {"signals", section_signals}, {"signals-no-restart", section_signals_no_restart},
    {"kill-storm", kill_self_loop}, {"emfile", section_emfile}, {"fsize", section_fsize},
    {"inotify", section_inotify}, {"inotify-unlink", section_inotify_unlink},
    {"hostname", section_hostname}, {"pidfd", section_pidfd},
    {"calls", section_calls}, {"seccomp", section_seccomp}, {"created", section_created},
    {"procsys", section_procsys}, {"sysvipc", section_sysvipc}, {"ns", section_ns},
    {"mem", section_mem}, {"fdlinks", section_fdlinks}, {"splice", section_splice},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SECTION [DIR]\n", argv[0]);
        return 2;
    }
    if (argc > 2) dir = argv[2];
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (!strcmp(argv[1], sections[i].name)) {
            sections[i].run();
            return 0;
        }
    fprintf(stderr, "%s: no section %s\n", argv[0], argv[1]);
    return 2;
}
