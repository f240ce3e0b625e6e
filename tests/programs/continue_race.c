/* continue_race CALL ATTEMPTS REFUSED: a racing thread flips one path buffer between a
 * target the Sentry allows (made here, under /tmp/race) and REFUSED, one it refuses or hides,
 * while the main thread issues CALL on that buffer ATTEMPTS times. The Sentry checks the
 * path and lets the kernel run the call (CONTINUE), which reads the buffer again: each time
 * the kernel reached REFUSED is a hit, unless the Sentry itself gives the same answer for
 * REFUSED (asked once, before the race: a file it shows too, with the same bytes, the same
 * errno, the same directory). Prints "CALL: attempts N allowed A hits H" and the first
 * hit's evidence. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "oracle.h"

#define SLOT 64
/* The flipped buffer is the sun_path of a sockaddr_un, so bind and connect race on it too.
 * It starts on an 8-byte boundary: REFUSED is "/proc/..." and the allowed target is
 * "/tmp/x..." with the same tail, so one aligned 8-byte store flips the whole path and no
 * read ever sees a torn mix of the two. */
static struct {
    char pad[6];
    sa_family_t family;
    char path[SLOT];
} __attribute__((packed, aligned(8))) addr = {.family = AF_UNIX};
#define path addr.path
#define PREFIX "/proc/"
#define ALLOWED_PREFIX "/tmp/x"
static char allowed_path[SLOT], refused_path[SLOT];
static atomic_int stop;

/* Each target stays for a while (some microseconds), so that flips fall between the Sentry's
 * read of the path and the kernel's. */
static void hold(void) {
    for (volatile unsigned i = 0; i < 3000; i++) {
    }
}

/* The racing thread on a CPU of its own, where there are two: it keeps flipping while the
 * caller waits for the Sentry. */
static void pin(int which) {
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all) || CPU_COUNT(&all) < 2) return;
    CPU_ZERO(&one);
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &all) && seen++ == which) CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
}

static void *flip(void *arg) {
    (void)arg;
    pin(1);
    _Atomic uint64_t *head = (_Atomic uint64_t *)path;
    uint64_t allowed_head, refused_head;
    memcpy(&allowed_head, allowed_path, 8);
    memcpy(&refused_head, refused_path, 8);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        atomic_store_explicit(head, allowed_head, memory_order_relaxed);
        hold();
        atomic_store_explicit(head, refused_head, memory_order_relaxed);
        hold();
    }
    return NULL;
}

static long hits, allowed;
static char evidence[256];

static void hit(const char *fmt, const char *what) {
    if (!hits++) snprintf(evidence, sizeof evidence, fmt, what);
}

/* What the Sentry itself shows at REFUSED (nothing where it has no such file): reading that
 * through the fifo's open is the Sentry's answer, not the kernel's. */
static char shown[128];
static ssize_t shown_len;

static int attempt_fifo(void) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return -1;
    char buf[128] = {0};
    /* Our fifo has no writer: it reads nothing. Other bytes than the Sentry's are the
     * kernel's file. */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n > 0 && (n != shown_len || memcmp(buf, shown, n))) {
        for (char *c = buf; *c; c++) if (*c == '\n') *c = ' ';
        hit("read %s", buf);
    } else if (n <= 0) {
        allowed++;
    }
    close(fd);
    return 0;
}

static char *exec_argv[] = {"x", NULL};

/* The Sentry's own answer for REFUSED, the call made once without the race: its errno (0:
 * it succeeded), and for chdir, chroot and inotify where that left the task. */
static int refused_errno;
static char refused_cwd[200];
static struct stat refused_root;
static int refused_wd = -1;

static int exec_result(long r) {
    /* The allowed target is not a program (ENOEXEC); any other answer than the Sentry's
     * for REFUSED comes from the kernel's resolving REFUSED. */
    if (r == 0) _exit(122);
    if (errno == ENOEXEC) allowed++;
    else if (errno != refused_errno) hit("errno %s", errname(errno));
    return 0;
}

static int attempt_execve(void) {
    return exec_result(syscall(SYS_execve, path, exec_argv, environ));
}

static int attempt_execveat(void) {
    return exec_result(syscall(SYS_execveat, AT_FDCWD, path, exec_argv, environ, 0));
}

static int proc_fd;

static int landed(const char *link, const char *want) {
    char got[200];
    ssize_t n = readlinkat(proc_fd, link, got, sizeof got - 1);
    if (n < 0) {
        hit("readlink %s", errname(errno));
        return 0;
    }
    got[n] = 0;
    if (!strcmp(got, refused_cwd)) return 0;  /* where the Sentry itself lets it go */
    if (strcmp(got, want)) hit("landed in %s", got);
    else allowed++;
    return 0;
}

static int attempt_chdir(void) {
    if (chdir(path)) return -1;
    landed("self/cwd", allowed_path);
    if (chdir("/")) die("chdir /");
    return 0;
}

static int root_fd;

static int attempt_chroot(void) {
    if (chroot(path)) return -1;
    /* The Sentry finds the new root from the kernel's: only the allowed one holds /inside,
     * and only REFUSED, if the Sentry lets a task chroot there, is that same directory. */
    struct stat root;
    if (!access("/inside", F_OK)) allowed++;
    else if (refused_errno || stat("/", &root) || root.st_dev != refused_root.st_dev
             || root.st_ino != refused_root.st_ino)
        hit("no /inside: %s", errname(errno));
    /* Back to the old root: its descriptor as the cwd, then chroot("."). */
    if (fchdir(root_fd) || chroot(".") || chdir("/")) die("back to the root");
    return 0;
}

static int inotify, allowed_wd = -1;

static int attempt_inotify(void) {
    int wd = inotify_add_watch(inotify, path, IN_ATTRIB);
    if (wd < 0) return -1;
    /* One inode, one watch descriptor: another number is another object. */
    if (allowed_wd < 0) allowed_wd = wd;
    if (wd == allowed_wd) allowed++;
    else if (wd != refused_wd) hit("watch on another object%s", "");
    return 0;
}

static int attempt_bind(void) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (bind(s, (struct sockaddr *)&addr.family, sizeof addr - sizeof addr.pad) == 0) {
        allowed++;
        /* The Sentry must find the name the kernel bound, whichever it read: if it had kept
         * the name as absent, the unlink would fail, and every later EADDRINUSE would be
         * ours, not REFUSED's. */
        if (unlink(allowed_path)) die("unlink of the name bound");
    } else if (errno == EADDRINUSE && refused_errno) {
        /* The kernel found REFUSED, an existing file the Sentry does not show. */
        hit("errno %s", errname(errno));
    }
    close(s);
    return 0;
}

static int listener;

static int attempt_connect(void) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (struct sockaddr *)&addr.family, sizeof addr - sizeof addr.pad) == 0) {
        allowed++;
        close(accept(listener, NULL, NULL));  /* the backlog never fills */
    }
    /* A file, not a socket: the kernel found REFUSED, which the Sentry does not show. */
    else if (errno == ECONNREFUSED && refused_errno) hit("errno %s", errname(errno));
    close(s);
    return 0;
}
/* mkdir -p of ALLOWED's parent. */
static void parents(const char *allowed) {
    char dir[SLOT];
    strcpy(dir, allowed);
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        if (mkdir(dir, 0755) && errno != EEXIST) die("mkdir");
        *slash = '/';
    }
}

static void make(const char *call, const char *refused) {
    if (strncmp(refused, PREFIX, strlen(PREFIX)) || strlen(refused) >= SLOT) {
        say("REFUSED must be a path in " PREFIX);
        _exit(2);
    }
    strcpy(refused_path, refused);
    strcpy(allowed_path, ALLOWED_PREFIX);
    strcat(allowed_path, refused + strlen(PREFIX));
    parents(allowed_path);
    if (!strcmp(call, "fifo")) {
        if (mkfifo(allowed_path, 0666)) die("mkfifo");
        int fd = open(refused, O_RDONLY);
        if (fd >= 0) {
            shown_len = read(fd, shown, sizeof shown - 1);
            close(fd);
        }
    } else if (!strncmp(call, "exec", 4)) {
        int fd = open(allowed_path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (fd < 0 || write(fd, "junk\n", 5) != 5) die("junk");
        close(fd);
    } else if (!strcmp(call, "chdir") || !strcmp(call, "chroot") || !strcmp(call, "inotify")) {
        if (mkdir(allowed_path, 0755)) die("mkdir");
        char inside[SLOT + 8];
        snprintf(inside, sizeof inside, "%s/inside", allowed_path);
        int fd = open(inside, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) die("inside");
        close(fd);
    } else if (!strcmp(call, "connect")) {
        int l = listener = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        strcpy(sun.sun_path, allowed_path);
        if (l < 0 || bind(l, (struct sockaddr *)&sun, sizeof sun) || listen(l, 64))
            die("listen");
    } else if (strcmp(call, "bind")) {
        say("unknown call %s", call);
        _exit(2);
    }
}

/* The Sentry's answer for REFUSED, unraced (the kernel alone resolves bind's and connect's
 * names: there, whether the Sentry shows REFUSED at all). */
static void ask_the_sentry(const char *call) {
    int r;
    struct stat st;
    if (!strncmp(call, "exec", 4)) {
        r = syscall(SYS_execve, refused_path, exec_argv, environ);
        if (r == 0) _exit(122);
    } else if (!strcmp(call, "chdir")) {
        r = chdir(refused_path);
        if (!r) {
            ssize_t n = readlinkat(proc_fd, "self/cwd", refused_cwd, sizeof refused_cwd - 1);
            if (n < 0 || chdir("/")) die("the Sentry's cwd for REFUSED");
            refused_cwd[n] = 0;
        }
    } else if (!strcmp(call, "chroot")) {
        r = chroot(refused_path);
        if (!r && (stat("/", &refused_root) || fchdir(root_fd) || chroot(".") || chdir("/")))
            die("the Sentry's root for REFUSED");
    } else if (!strcmp(call, "inotify")) {
        r = refused_wd = inotify_add_watch(inotify, refused_path, IN_ATTRIB);
    } else {
        r = lstat(refused_path, &st);
    }
    refused_errno = r ? errno : 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        say("usage: continue_race CALL ATTEMPTS REFUSED");
        return 2;
    }
    const char *call = argv[1];
    long attempts = atol(argv[2]);
    make(call, argv[3]);
    memcpy(path, allowed_path, SLOT);
    int (*attempt)(void) =
        !strcmp(call, "fifo") ? attempt_fifo : !strcmp(call, "execve") ? attempt_execve
        : !strcmp(call, "execveat") ? attempt_execveat : !strcmp(call, "chdir") ? attempt_chdir
        : !strcmp(call, "chroot") ? attempt_chroot : !strcmp(call, "inotify") ? attempt_inotify
        : !strcmp(call, "bind") ? attempt_bind : attempt_connect;
    proc_fd = open("/proc", O_RDONLY | O_DIRECTORY);
    root_fd = open("/", O_RDONLY | O_DIRECTORY);
    inotify = inotify_init1(IN_CLOEXEC);
    if (proc_fd < 0 || root_fd < 0 || inotify < 0) die("setup");
    ask_the_sentry(call);
    if (!strcmp(call, "inotify") && attempt()) die("the allowed watch");
    pin(0);
    pthread_t t;
    if (pthread_create(&t, NULL, flip, NULL)) die("pthread_create");
    long done = 0;
    while (done < attempts) {
        attempt();
        done++;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    say("%s: attempts %ld allowed %ld hits %ld", call, done, allowed, hits);
    if (hits) say("first hit: %s", evidence);
    return 0;
}
