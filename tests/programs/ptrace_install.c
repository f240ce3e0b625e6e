/* Descriptors the Sentry installs (InstallFd), checked from the guest's side.
 *
 * usage: ptrace_install MODE PATH [BAD_PATH | N | GETFD_PREFIX]
 *
 * Every mode opens PATH. Under tests/integration/test_ptrace_install.py that is a magic path
 * the stub Sentry answers with a descriptor of its own file; run natively, it is that file,
 * so both runs must print the same. Any failure prints FAIL and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONTENT "edgevisor install check\n"
#define MAXFD 1024

static const char *path;
static char *self;

static void fail(const char *what, long got) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "FAIL %s (got %ld, errno %d)\n", what, got, errno);
    write(2, buf, n);
    _exit(1);
}

static int install(int flags) { return open(path, O_RDONLY | flags); }

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int lowest_free(void) {
    for (int i = 0;; i++)
        if (!is_open(i)) return i;
}

static void check(int fd) {
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n != (ssize_t)strlen(CONTENT) || memcmp(buf, CONTENT, n)) fail("content", n);
}

/* Single-threaded only: the number must be the lowest free one, as for open(). */
static int install_checked(int flags) {
    int want = lowest_free();
    int fd = install(flags);
    if (fd != want) fail("lowest free number", fd);
    check(fd);
    int cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
    if (cloexec != ((flags & O_CLOEXEC) != 0)) fail("close-on-exec flag", cloexec);
    return fd;
}

/* "WHO fds: 0 1 2 ..." with write(2) only, so that a vfork child may use it. */
static void print_fds(const char *who, int from) {
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "%s fds:", who);
    for (int fd = from; fd < MAXFD; fd++)
        if (is_open(fd)) n += snprintf(buf + n, sizeof buf - n, " %d", fd);
    buf[n++] = '\n';
    write(1, buf, n);
}

static int wait_exit(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) fail("waitpid", pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void mode_lowest(void) {
    int a = install_checked(0);
    int b = install_checked(O_CLOEXEC);
    int c = install_checked(0);
    close(a);
    close(c);
    install_checked(0);
    dup2(b, 7);
    dup2(b, 10);
    for (int i = 0; i < 5; i++) install_checked(i & 1 ? O_CLOEXEC : 0);  /* holes first */
    close(0);
    if (install_checked(0) != 0) fail("stdin's number", -1);
    printf("ok lowest\n");
}

static void mode_cloexec(void) {
    int keep = install_checked(0), gone = install_checked(O_CLOEXEC);
    char k[16], g[16];
    snprintf(k, sizeof k, "%d", keep);
    snprintf(g, sizeof g, "%d", gone);
    execl(self, self, "exec-check", path, k, g, (char *)NULL);
    fail("exec", -1);
}

static void mode_exec_check(int keep, int gone) {
    if (is_open(gone)) fail("close-on-exec descriptor survived exec", gone);
    check(keep);
    if (fcntl(keep, F_GETFD) & FD_CLOEXEC) fail("descriptor became close-on-exec", keep);
    if (install_checked(O_CLOEXEC) != gone) fail("number after exec", -1);
    printf("ok cloexec\n");
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void mode_loop(int n) {
    long *ns = malloc(n * sizeof *ns);
    for (int i = 0; i < n; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int fd = install(O_CLOEXEC);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (fd != 3) fail("number in the loop", fd);
        check(fd);
        close(fd);
        ns[i] = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    }
    qsort(ns, n, sizeof *ns, cmp_long);
    printf("ok loop n=%d\n", n);
    fprintf(stderr, "median_ns=%ld\n", ns[n / 2]);
}

#define THREADS 8
#define EACH 50

static void *installer(void *arg) {
    int held[4] = {-1, -1, -1, -1};
    (void)arg;
    for (int i = 0; i < EACH; i++) {
        int slot = i % 4;
        if (held[slot] >= 0) close(held[slot]);
        int fd = install(i & 1 ? O_CLOEXEC : 0);
        if (fd < 0) fail("install in a thread", fd);
        check(fd);
        if (((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0) != (i & 1)) fail("cloexec in a thread", fd);
        held[slot] = fd;
    }
    for (int slot = 0; slot < 4; slot++) close(held[slot]);
    return NULL;
}

static void mode_threads(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, installer, NULL)) fail("pthread_create", i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    if (lowest_free() != 3) fail("a descriptor leaked", lowest_free());
    print_fds("threads", 3);
}

static void mode_fork(void) {
    int a = install_checked(0);
    pid_t pid = fork();
    if (pid == 0) {
        print_fds("child", 0);
        install_checked(0);
        check(a);
        _exit(0);
    }
    if (wait_exit(pid) != 0) fail("fork child", -1);
    install_checked(0);
    printf("ok fork\n");
}

static void mode_vfork(void) {
    install_checked(0);
    pid_t pid = vfork();
    if (pid == 0) {
        print_fds("vfork child", 0);
        int fd = install(0);
        _exit(fd == 4 ? 0 : 3);
    }
    if (wait_exit(pid) != 0) fail("vfork child", -1);
    install_checked(0);  /* the child's install went to its own table */
    printf("ok vfork\n");
}

static int clone_child(void *arg) {
    (void)arg;
    int fd = install(0);
    return fd < 0 ? 255 : fd;
}

static void mode_clone_files(void) {
    install_checked(0);
    size_t size = 1 << 16;
    char *stack = malloc(size);
    pid_t pid = clone(clone_child, stack + size, CLONE_FILES | SIGCHLD, NULL);
    if (pid < 0) fail("clone", pid);
    int fd = wait_exit(pid);
    if (fd != 4 || !is_open(fd)) fail("install in a CLONE_FILES child", fd);
    check(fd);
    install_checked(0);
    printf("ok clone-files\n");
}

static void mode_forks(void) {
    install_checked(0);
    pid_t pids[20];
    for (int i = 0; i < 20; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            for (int fd = 64; fd < MAXFD; fd++)
                if (is_open(fd)) _exit(10);  /* an inherited courier */
            install_checked(0);
            _exit(0);
        }
        close(install_checked(O_CLOEXEC));
    }
    for (int i = 0; i < 20; i++)
        if (wait_exit(pids[i]) != 0) fail("forked child", i);
    printf("ok forks\n");
}

static void *replanter(void *arg) {
    (void)arg;
    for (;;) {
        int fd = install(0);
        if (fd >= 0) close(fd);
        syscall(SYS_close_range, 64, ~0U, 0);  /* the next install plants a courier anew */
    }
    return NULL;
}

/* Children forked while another thread's installs keep planting couriers: whatever moment
   the fork copies the table at, the child holds no socket at all once it runs. */
static void mode_fork_race(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, replanter, NULL)) fail("pthread_create", -1);
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int type;
            socklen_t len = sizeof type;
            for (int fd = 0; fd < MAXFD; fd++)
                if (is_open(fd) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
                    fprintf(stderr, "child holds socket %d\n", fd);
                    _exit(10);
                }
            _exit(0);
        }
        if (wait_exit(pid) != 0) fail("a child held a socket", i);
    }
    printf("ok fork-race\n");
    _exit(0);
}

static void mode_close_range(void) {
    install_checked(0);
    syscall(SYS_close_range, 3, ~0U, 0);
    int a = install_checked(0);
    for (int n = 4; n < MAXFD; n++) dup2(a, n);  /* over every number the courier might have */
    for (int n = 4; n < MAXFD; n++) close(n);
    install_checked(O_CLOEXEC);
    printf("ok close-range\n");
}

static void mode_kill(void) {
    install_checked(0);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;) {
                int fd = install(O_CLOEXEC);
                if (fd < 0) _exit(2);
                if (round & 1)
                    syscall(SYS_close_range, 3, ~0U, 0);  /* the next install plants anew */
                else
                    close(fd);
            }
        }
        usleep(1000 * (1 + round % 7));
        kill(pid, SIGKILL);
        if (wait_exit(pid) != 128 + SIGKILL) fail("killed child", round);
    }
    for (int i = 0; i < 10; i++) close(install_checked(0));
    printf("ok kill\n");
}

static void *spin_installs(void *arg) {
    for (long i = 0;; i++) {
        int fd = install(0);
        if (fd >= 0) close(fd);
        if (arg && i % 8 == 0) syscall(SYS_close_range, 100, ~0U, 0);
    }
    return NULL;
}

static void mode_exit_group(void) {
    pthread_t t;
    for (long i = 0; i < 4; i++) pthread_create(&t, NULL, spin_installs, i == 0 ? (void *)1 : NULL);
    usleep(30000);
    _exit(7);
}

static volatile sig_atomic_t hits;
static void on_usr1(int sig) { (void)sig; hits++; }

static void mode_signals(void) {
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        for (;;) {
            kill(parent, SIGUSR1);
            usleep(20);
        }
    }
    for (int i = 0; i < 100 || (hits < 20 && i < 1000000); i++) {
        install_checked(i & 1 ? O_CLOEXEC : 0);
        syscall(SYS_close_range, 3, ~0U, 0);  /* every install plants a courier */
    }
    kill(pid, SIGKILL);
    wait_exit(pid);
    if (!hits) fail("no signal was handled", 0);
    printf("ok signals\n");
}

static void mode_bad(const char *bad) {
    int fd = open(bad, O_RDONLY);
    if (fd != -1 || errno != EIO) fail("a failed install answers EIO", fd);
    install_checked(0);
    printf("ok bad\n");
}

/* PREFIX/N: the Sentry takes the guest's descriptor N (Task.getfd) and installs its copy. */
static void mode_getfd(const char *prefix) {
    int p[2];
    char name[256], c;
    if (pipe(p)) fail("pipe", -1);
    write(p[1], "x", 1);
    snprintf(name, sizeof name, "%s%d", prefix, p[0]);
    int want = lowest_free(), fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd != want) fail("getfd's copy at the lowest free number", fd);
    if (read(fd, &c, 1) != 1 || c != 'x') fail("reading the pipe through the copy", fd);
    snprintf(name, sizeof name, "%s%d", prefix, 999);
    fd = open(name, O_RDONLY);
    if (fd != -1 || errno != EBADF) fail("getfd of a closed number", fd);
    printf("ok getfd\n");
}

static void mode_emfile(void) {
    struct rlimit rl = {32, 32};
    if (setrlimit(RLIMIT_NOFILE, &rl)) fail("setrlimit", -1);
    install_checked(0);
    while (open("/dev/null", O_RDONLY) >= 0) {
    }
    if (errno != EMFILE) fail("filling the table", -1);
    int fd = install(0);
    if (fd != -1 || errno != EMFILE) fail("EMFILE from a full table", fd);
    close(5);
    if (install_checked(0) != 5) fail("the freed number", -1);
    printf("ok emfile\n");
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    self = argv[0];
    path = argv[2];
    const char *mode = argv[1];
    if (!strcmp(mode, "lowest")) mode_lowest();
    else if (!strcmp(mode, "cloexec")) mode_cloexec();
    else if (!strcmp(mode, "exec-check") && argc == 5) mode_exec_check(atoi(argv[3]), atoi(argv[4]));
    else if (!strcmp(mode, "loop") && argc == 4) mode_loop(atoi(argv[3]));
    else if (!strcmp(mode, "threads")) mode_threads();
    else if (!strcmp(mode, "fork")) mode_fork();
    else if (!strcmp(mode, "vfork")) mode_vfork();
    else if (!strcmp(mode, "clone-files")) mode_clone_files();
    else if (!strcmp(mode, "forks")) mode_forks();
    else if (!strcmp(mode, "close-range")) mode_close_range();
    else if (!strcmp(mode, "fork-race")) mode_fork_race();
    else if (!strcmp(mode, "kill")) mode_kill();
    else if (!strcmp(mode, "exit-group")) mode_exit_group();
    else if (!strcmp(mode, "signals")) mode_signals();
    else if (!strcmp(mode, "bad") && argc == 4) mode_bad(argv[3]);
    else if (!strcmp(mode, "emfile")) mode_emfile();
    else if (!strcmp(mode, "getfd") && argc == 4) mode_getfd(argv[3]);
    else return 2;
    return 0;
}
