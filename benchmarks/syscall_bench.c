/* syscall_bench: system call microbenchmarks for edgevisor (native vs sandboxed).
 *
 *   syscall_bench list                  names, default and minimum iteration counts
 *   syscall_bench NAME ITERS            run one benchmark; prints "NAME ns_per_op"
 *   syscall_bench all SCALE [a,b,...]   run every (or the listed) benchmark with
 *                                       default iterations * SCALE in this one
 *                                       process; prints a "# ..." line describing
 *                                       the environment, then "NAME ns_per_op" each
 *
 * Each benchmark runs a warm-up of ITERS/10 operations, then ITERS timed with
 * clock_gettime(CLOCK_MONOTONIC). A failing benchmark prints "NAME FAIL reason"
 * and the rest still run; the exit status is then 1.
 * Scratch files live in /tmp (or $BENCH_TMPDIR) and are removed at exit; the *_rootfs
 * benchmarks use /usr/bin/env (or $BENCH_ROOTFS_FILE), a file of the root file system.
 * Build: cc -O2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIN_ITERS 20

static const char *tmpdir = "/tmp";
static char small_path[PATH_MAX], big_path[PATH_MAX];
static int big_fd = -1;
static const char *true_path = "/bin/true";
static const char *rootfs_path = "/usr/bin/env";
static const char *current;
static jmp_buf on_fail;

/* Fills `out` with a mkstemp/mkdtemp template for a scratch file called `what`. */
static void scratch_template(char out[PATH_MAX], const char *what)
{
    snprintf(out, PATH_MAX, "%s/syscall_bench_%s_XXXXXX", tmpdir, what);
}

/* Prints "NAME FAIL what: strerror(errno)" (no errno text if errno is 0). */
static void fail(const char *what)
{
    printf("%s FAIL %s%s%s\n", current, what, errno ? ": " : "", errno ? strerror(errno) : "");
    fflush(stdout);
    longjmp(on_fail, 1);
}

static void b_getpid(long n)
{
    for (long i = 0; i < n; i++)
        if (syscall(SYS_getpid) < 0) fail("getpid");
}

static void b_gettid(long n)
{
    for (long i = 0; i < n; i++)
        if (syscall(SYS_gettid) < 0) fail("gettid");
}

static void b_uname(long n)
{
    struct utsname u;
    for (long i = 0; i < n; i++)
        if (syscall(SYS_uname, &u) < 0) fail("uname");
}

static void b_socket(long n)
{
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket");
        close(fd);
    }
}

static void b_getppid(long n)
{
    for (long i = 0; i < n; i++)
        if (syscall(SYS_getppid) < 0) fail("getppid");
}

static void b_passthrough(long n)
{
    struct timespec ts;
    for (long i = 0; i < n; i++)   /* raw syscall: no vDSO */
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) < 0) fail("clock_gettime");
}

static void open_close(const char *path, long n)
{
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) fail("open");
        if (close(fd) < 0) fail("close");
    }
}

static void stat_path(const char *path, long n)
{
    struct stat st;
    for (long i = 0; i < n; i++)
        if (stat(path, &st) < 0) fail("stat");
}

static void b_open_close(long n) { open_close(small_path, n); }
static void b_stat(long n) { stat_path(small_path, n); }
/* The same on the root file system: a lookup through several components of a
 * mount that, in a sandbox, is usually an overlay of the host's root. */
static void b_open_close_rootfs(long n) { open_close(rootfs_path, n); }
static void b_stat_rootfs(long n) { stat_path(rootfs_path, n); }

static void b_pread4k(long n)
{
    static char buf[4096];
    for (long i = 0; i < n; i++)
        if (pread(big_fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) fail("pread");
}

/* getdents1000: a directory of DIR_ENTRIES empty files, listed whole each time. */
#define DIR_ENTRIES 1000
static char dir_path[PATH_MAX];
static int dir_made, dir_files;

static void entry_path(char *out, size_t size, int i)
{
    snprintf(out, size, "%s/f%04d", dir_path, i);
}

static void dir_teardown(void)
{
    char path[PATH_MAX + 16];
    while (dir_files > 0) {
        entry_path(path, sizeof path, --dir_files);
        unlink(path);
    }
    if (dir_made) rmdir(dir_path);
    dir_made = 0;
}

static void dir_setup(void)
{
    char path[PATH_MAX + 16];
    scratch_template(dir_path, "dir");
    if (!mkdtemp(dir_path)) fail("mkdtemp");
    dir_made = 1;
    for (dir_files = 0; dir_files < DIR_ENTRIES; dir_files++) {
        entry_path(path, sizeof path, dir_files);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || close(fd) < 0) fail("creating directory entries");
    }
}

static void b_getdents1000(long n)
{
    static char buf[32768] __attribute__((aligned(8)));
    for (long i = 0; i < n; i++) {
        int fd = open(dir_path, O_RDONLY | O_DIRECTORY);
        if (fd < 0) fail("open");
        long r, entries = 0;
        while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
            for (long off = 0; off < r; entries++) {
                unsigned short reclen;  /* glibc's dirent64 has the kernel's layout */
                memcpy(&reclen, buf + off + offsetof(struct dirent64, d_reclen), sizeof reclen);
                if (reclen == 0) {
                    errno = 0;
                    fail("getdents64: an entry with d_reclen 0");
                }
                off += reclen;
            }
        if (r < 0) fail("getdents64");
        if (entries != DIR_ENTRIES + 2) {       /* with . and .. */
            static char msg[64];
            snprintf(msg, sizeof msg, "getdents64 listed %ld entries, not %d", entries, DIR_ENTRIES + 2);
            errno = 0;
            fail(msg);
        }
        if (close(fd) < 0) fail("close");
    }
}

/* read100m: a READ_CHUNKS MiB file read whole, 1 MiB at a time, from offset 0. Chunk k is
 * filled with the byte 'a' + k % 26, so a read that returns the wrong data is noticed. */
#define MIB (1024 * 1024)
#define READ_CHUNKS 100
static char read_path[PATH_MAX];
static int read_fd = -1;
static char *read_buf;

static void read_teardown(void)
{
    if (read_fd >= 0) {
        close(read_fd);
        unlink(read_path);
    }
    read_fd = -1;
    free(read_buf);
    read_buf = NULL;
}

static void read_setup(void)
{
    scratch_template(read_path, "100m");
    read_fd = mkstemp(read_path);
    if (read_fd < 0) fail("mkstemp");
    if (!(read_buf = malloc(MIB))) fail("malloc");
    for (int k = 0; k < READ_CHUNKS; k++) {
        memset(read_buf, 'a' + k % 26, MIB);
        if (write(read_fd, read_buf, MIB) != MIB) fail("writing the 100 MiB file");
    }
}

static void b_read100m(long n)
{
    for (long i = 0; i < n; i++) {
        if (lseek(read_fd, 0, SEEK_SET) != 0) fail("lseek");
        long total = 0;
        ssize_t r;
        while ((r = read(read_fd, read_buf, MIB)) > 0) {
            if (read_buf[0] != 'a' + (total / MIB) % 26 || read_buf[r - 1] != 'a' + ((total + r - 1) / MIB) % 26) {
                errno = 0;
                fail("read returned the wrong bytes");
            }
            total += r;
        }
        if (r < 0) fail("read");
        if (total != (long)READ_CHUNKS * MIB) {
            static char msg[64];
            snprintf(msg, sizeof msg, "read %ld bytes, not %ld", total, (long)READ_CHUNKS * MIB);
            errno = 0;
            fail(msg);
        }
    }
}

/* pipe_pingpong: a child echoes one byte from pipe `to` back through `from`. */
static int to[2] = {-1, -1}, from[2] = {-1, -1};
static pid_t echo_pid = -1;

static void pingpong_setup(void)
{
    if (pipe(to) < 0 || pipe(from) < 0) fail("pipe");
    echo_pid = fork();
    if (echo_pid < 0) fail("fork");
    if (echo_pid == 0) {
        char c;
        close(to[1]);
        close(from[0]);
        while (read(to[0], &c, 1) == 1 && write(from[1], &c, 1) == 1)
            ;
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
}

static void pingpong_teardown(void)
{
    close(to[1]);       /* child sees EOF and exits */
    close(from[0]);
    if (echo_pid > 0) waitpid(echo_pid, NULL, 0);
    echo_pid = -1;
}

static void b_pipe_pingpong(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (write(to[1], &c, 1) != 1) fail("write");
        if (read(from[0], &c, 1) != 1) fail("read");
    }
}

/* tcp_rr and tcp_1g: a forked peer at the other end of a loopback TCP connection, which is
 * set up (listen, fork, connect, accept) before the warm-up. tcp_rr's peer echoes each byte;
 * tcp_1g's peer reads TCP_1G_BYTES and answers each transfer with one byte, so the sender's
 * time covers delivery of the last byte. */
#define TCP_1G_BYTES (1024L * MIB)
static int tcp_fd = -1;
static pid_t tcp_peer = -1;
static char *tcp_buf;

/* Connects a forked peer running `serve` to tcp_fd over 127.0.0.1. */
static void tcp_setup(void (*serve)(int fd))
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) fail("socket");
    if (bind(lfd, (struct sockaddr *)&addr, len) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) {
        close(lfd);
        fail("bind/listen on 127.0.0.1");
    }
    fflush(stdout);
    tcp_peer = fork();
    if (tcp_peer < 0) fail("fork");
    if (tcp_peer == 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        close(lfd);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, len) < 0) _exit(1);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        serve(fd);
        _exit(0);
    }
    tcp_fd = accept(lfd, NULL, NULL);
    close(lfd);
    if (tcp_fd < 0) fail("accept");
    if (setsockopt(tcp_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) fail("TCP_NODELAY");
}

static void tcp_teardown(void)
{
    if (tcp_fd >= 0) close(tcp_fd);     /* the peer sees EOF and exits */
    tcp_fd = -1;
    if (tcp_peer > 0) waitpid(tcp_peer, NULL, 0);
    tcp_peer = -1;
    free(tcp_buf);
    tcp_buf = NULL;
}

static void tcp_echo(int fd)
{
    char c;
    while (read(fd, &c, 1) == 1 && write(fd, &c, 1) == 1)
        ;
}

static void tcp_rr_setup(void) { tcp_setup(tcp_echo); }

static void b_tcp_rr(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (write(tcp_fd, &c, 1) != 1) fail("write");
        if (read(tcp_fd, &c, 1) != 1) fail("read (did the peer die?)");
    }
}

/* Reads whole transfers of TCP_1G_BYTES; after each, answers 'k' if every read's first and
 * last byte were the sender's 'x', else 'e'. */
static void tcp_sink(int fd)
{
    static char buf[MIB];
    for (;;) {
        char ok = 'k';
        for (long total = 0; total < TCP_1G_BYTES;) {
            long want = TCP_1G_BYTES - total < MIB ? TCP_1G_BYTES - total : MIB;
            ssize_t r = read(fd, buf, want);
            if (r <= 0) return;
            if (buf[0] != 'x' || buf[r - 1] != 'x') ok = 'e';
            total += r;
        }
        if (write(fd, &ok, 1) != 1) return;
    }
}

static void tcp_1g_setup(void)
{
    if (!(tcp_buf = malloc(MIB))) fail("malloc");
    memset(tcp_buf, 'x', MIB);
    tcp_setup(tcp_sink);
}

static void b_tcp_1g(long n)
{
    for (long i = 0; i < n; i++) {
        ssize_t w;
        for (long sent = 0; sent < TCP_1G_BYTES; sent += w)   /* every byte of tcp_buf is 'x' */
            if ((w = write(tcp_fd, tcp_buf, TCP_1G_BYTES - sent < MIB ? TCP_1G_BYTES - sent : MIB)) <= 0)
                fail("write");
        char ack;
        if (read(tcp_fd, &ack, 1) != 1) fail("reading the peer's answer (did it die?)");
        if (ack != 'k') {
            errno = 0;
            fail("the peer received the wrong bytes");
        }
    }
}

static void wait_ok(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid) fail("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        static char msg[64];
        snprintf(msg, sizeof msg, "child wait status 0x%x, not exit 0", st);
        errno = 0;
        fail(msg);
    }
}

static void *thread_body(void *arg)
{
    return arg;
}

/* Start 100 threads and join them: the thread creation (clone) and exit path. */
static void b_threads100(long n)
{
    pthread_t threads[100];
    for (long i = 0; i < n; i++) {
        for (int t = 0; t < 100; t++)
            if (pthread_create(&threads[t], NULL, thread_body, NULL)) fail("pthread_create");
        for (int t = 0; t < 100; t++) pthread_join(threads[t], NULL);
    }
}

static void b_fork_wait(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) fail("fork");
        if (pid == 0) _exit(0);
        wait_ok(pid);
    }
}

static void b_fork_exec_wait(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) fail("fork");
        if (pid == 0) {
            execl(true_path, "true", (char *)NULL);
            _exit(127);
        }
        wait_ok(pid);
    }
}

struct bench {
    const char *name;
    long iters;                 /* default: roughly 0.2-1 s natively */
    void (*run)(long n);
    void (*setup)(void), (*teardown)(void);
    long min_iters;             /* floor in `all` mode instead of MIN_ITERS, if set: higher
                                   for the benchmarks that cost about as much in every
                                   sandbox, lower for the ones that take long each time */
};

static const struct bench benches[] = {
    {"getpid", 2000000, b_getpid},
    {"getppid", 2000000, b_getppid},
    {"gettid", 2000000, b_gettid},
    {"uname", 2000000, b_uname},
    {"socket", 300000, b_socket},
    {"passthrough", 2000000, b_passthrough},
    {"open_close", 300000, b_open_close},
    {"open_close_rootfs", 300000, b_open_close_rootfs},
    {"stat", 500000, b_stat},
    {"stat_rootfs", 500000, b_stat_rootfs},
    {"pread4k", 1000000, b_pread4k},
    {"getdents1000", 2000, b_getdents1000, dir_setup, dir_teardown, 200},
    {"read100m", 50, b_read100m, read_setup, read_teardown},
    {"pipe_pingpong", 10000, b_pipe_pingpong, pingpong_setup, pingpong_teardown},
    {"tcp_rr", 20000, b_tcp_rr, tcp_rr_setup, tcp_teardown},
    {"tcp_1g", 5, b_tcp_1g, tcp_1g_setup, tcp_teardown, 3},
    {"threads100", 100, b_threads100},
    {"fork_wait", 3000, b_fork_wait},
    {"fork_exec_wait", 1000, b_fork_exec_wait},
};
#define NBENCH (sizeof benches / sizeof benches[0])

static long min_iters(const struct bench *b)
{
    return b->min_iters ? b->min_iters : MIN_ITERS;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Returns 0 on success, 1 if the benchmark failed (its FAIL line is printed). */
static int run_one(const struct bench *b, long n)
{
    current = b->name;
    if (setjmp(on_fail)) {
        if (b->teardown) b->teardown();
        return 1;               /* its FAIL line is already printed */
    }
    if (b->setup) b->setup();
    b->run(n / 10 + 1);         /* warm-up */
    double t0 = now_ns();
    b->run(n);
    double t1 = now_ns();
    if (b->teardown) b->teardown();
    printf("%s %.1f\n", b->name, (t1 - t0) / n);
    fflush(stdout);
    return 0;
}

static void setup_files(void)
{
    static char chunk[65536];
    scratch_template(small_path, "small");
    scratch_template(big_path, "big");
    int fd = mkstemp(small_path);
    if (fd < 0 || write(fd, "hello\n", 6) != 6 || close(fd) < 0) {
        fprintf(stderr, "syscall_bench: creating a file in %s: %s\n", tmpdir, strerror(errno));
        exit(2);
    }
    big_fd = mkstemp(big_path);
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; big_fd >= 0 && i < 16; i++)     /* 1 MiB */
        if (write(big_fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) big_fd = -1;
    if (big_fd < 0) {
        fprintf(stderr, "syscall_bench: creating a 1 MiB file in %s: %s\n", tmpdir, strerror(errno));
        unlink(small_path);
        exit(2);
    }
}

static void cleanup_files(void)
{
    unlink(small_path);
    unlink(big_path);
}

static const struct bench *find(const char *name)
{
    for (size_t i = 0; i < NBENCH; i++)
        if (strcmp(benches[i].name, name) == 0) return &benches[i];
    return NULL;
}

/* Identifies the environment, so the runner can check the sandbox really ran us. */
static void describe(void)
{
    struct utsname u;
    char line[256];
    long tracer = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %ld", &tracer) == 1) break;
    if (f) fclose(f);
    if (uname(&u) < 0) strcpy(u.release, "?");
    printf("# pid=%ld ppid=%ld tracer_pid=%ld kernel=%s\n", (long)getpid(),
           (long)getppid(), tracer, u.release);
}

static int usage(void)
{
    fprintf(stderr, "usage: syscall_bench list | NAME ITERS | all SCALE [NAME,NAME...]\n");
    return 2;
}

/* BENCH_SECCOMP_FLOOR=1: run under a one-instruction allow-all seccomp filter. Any filter at
 * all sends every syscall through the kernel's slower seccomp entry path; this measures that
 * fixed cost, the floor under which no seccomp-based sandbox's passthrough can go. */
static int install_allow_all(void)
{
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { 1, allow };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
    if (getenv("BENCH_SECCOMP_FLOOR") && install_allow_all()) {
        perror("seccomp");
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < NBENCH; i++) printf("%s %ld %ld\n", benches[i].name, benches[i].iters, min_iters(&benches[i]));
        return 0;
    }
    if (argc < 3 || argc > 4) return usage();
    if (getenv("BENCH_TRUE")) true_path = getenv("BENCH_TRUE");
    if (getenv("BENCH_ROOTFS_FILE")) rootfs_path = getenv("BENCH_ROOTFS_FILE");
    if (getenv("BENCH_TMPDIR")) tmpdir = getenv("BENCH_TMPDIR");

    int all = strcmp(argv[1], "all") == 0;
    double arg = strtod(argv[2], NULL);
    const struct bench *one = all ? NULL : find(argv[1]);
    if (arg <= 0 || (!all && (!one || argc != 3))) return usage();

    setup_files();
    int failed = 0;
    if (one) {
        failed = run_one(one, (long)arg);
    } else {
        describe();
        char *only = argc == 4 ? argv[3] : NULL;
        for (size_t i = 0; i < NBENCH; i++) {
            const struct bench *b = &benches[i];
            if (only) {     /* match a whole comma-separated item */
                size_t len = strlen(b->name);
                const char *p = only;
                while ((p = strstr(p, b->name)) &&
                       !((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == 0)))
                    p += len;
                if (!p) continue;
            }
            long n = (long)(b->iters * arg);
            failed |= run_one(b, n < min_iters(b) ? min_iters(b) : n);
        }
    }
    cleanup_files();
    return failed;
}
