/* Symlink-swap races on a writable volume, one operation per run:
 *
 *   escape_race OP HOST_DIR ROUNDS
 *
 * /v/race/d is a directory holding `victim`. A second thread swaps it, with
 * renameat2(RENAME_EXCHANGE), for a symlink to "/" and for a symlink to HOST_DIR (the host's
 * path of the directory beside the volume, which holds a file named `victim` too), as fast as
 * it can, while this thread runs OP on /v/race/d/victim (or on new names beside it) ROUNDS
 * times. Each call may resolve through the directory or through a symlink; through a symlink
 * it must land in the guest's own root ("/", the sandbox's) or nowhere (HOST_DIR does not
 * exist in the guest's view), never in the host's. The guest cannot tell, so it prints
 * `OP: ok raced` once both threads ran, and the test checks the host. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "oracle.h"

static atomic_int done;
static atomic_long swaps;

static void *swapper(void *arg) {
    (void)arg;
    for (long i = 0; !atomic_load(&done); i++) {
        const char *link = i % 2 ? "/v/race/to_host" : "/v/race/to_root";
        if (renameat2(AT_FDCWD, "/v/race/d", AT_FDCWD, link, RENAME_EXCHANGE) == 0) {
            renameat2(AT_FDCWD, "/v/race/d", AT_FDCWD, link, RENAME_EXCHANGE); /* and back */
            atomic_fetch_add(&swaps, 1);
        }
    }
    return NULL;
}

static void make_victim(void) {
    int fd = open("/v/race/d/victim", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
}

static void run(const char *op) {
    const char *v = "/v/race/d/victim";
    if (!strcmp(op, "open")) {
        int fd = open(v, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (write(fd, "PWNED", 5) < 0) {}
            close(fd);
        }
    } else if (!strcmp(op, "rename")) {
        rename(v, "/v/race/d/renamed");
        rename("/v/race/d/renamed", v);
    } else if (!strcmp(op, "mkdir")) {
        mkdir("/v/race/d/edgevisor-escape-dir", 0755);
        rmdir("/v/race/d/edgevisor-escape-dir");
    } else if (!strcmp(op, "unlink")) {
        unlink(v);
        make_victim();
    } else if (!strcmp(op, "chmod")) {
        chmod(v, 0777);
    } else if (!strcmp(op, "chmod_setid")) {
        chmod(v, 06777);
    } else if (!strcmp(op, "chown")) {
        chown(v, 4242, 4343);
    } else if (!strcmp(op, "truncate")) {
        truncate(v, 0);
    } else if (!strcmp(op, "utimensat")) {
        struct timespec t[2] = {{981158400, 0}, {981158400, 0}}; /* 2001-02-03 */
        utimensat(AT_FDCWD, v, t, 0);
    } else if (!strcmp(op, "link")) {
        link("/v/race/outside", "/v/race/d/edgevisor-escape-link");
        unlink("/v/race/d/edgevisor-escape-link");
    } else if (!strcmp(op, "symlink")) {
        symlink("/etc/passwd", "/v/race/d/edgevisor-escape-symlink");
        unlink("/v/race/d/edgevisor-escape-symlink");
    } else {
        fprintf(stderr, "escape_race: unknown operation %s\n", op);
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: escape_race OP HOST_DIR ROUNDS\n");
        return 2;
    }
    long rounds = atol(argv[3]);
    mkdir("/v/race", 0755);
    mkdir("/v/race/d", 0755);
    make_victim();
    int fd = open("/v/race/outside", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) die("outside");
    close(fd);
    if (symlink("/", "/v/race/to_root") < 0 || symlink(argv[2], "/v/race/to_host") < 0)
        die("symlink");
    pthread_t t;
    pthread_create(&t, NULL, swapper, NULL);
    while (atomic_load(&swaps) == 0) sched_yield();
    for (long i = 0; i < rounds; i++) run(argv[1]);
    long during = atomic_load(&swaps);
    atomic_store(&done, 1);
    pthread_join(t, NULL);
    /* The swaps must have interleaved with the operations, or nothing was raced. */
    say("%s: ok %s", argv[1], during > 1 ? "raced" : "NOT RACED");
    return 0;
}
