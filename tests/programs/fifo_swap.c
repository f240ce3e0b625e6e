/* A fifo swapped over a regular file while a sandbox opens that name (directfs).
 *
 * fifo_swap swap DIR: makes DIR/x a regular file and DIR/y a fifo, then swaps them
 * (renameat2 RENAME_EXCHANGE) without pause until killed. Run on the host, on a volume: the
 * Sentry serves one call at a time, so no guest thread can rename between its check of a
 * name and its open, but another sandbox sharing the volume, or a host process, can.
 *
 * fifo_swap open DIR ROUNDS: a thread opens DIR/x for reading, without O_NONBLOCK, ROUNDS
 * times. An open of a name that was a regular file when the Sentry checked it must never wait
 * for a fifo's writer in the Sentry: the whole sandbox would stop. One that opened the fifo
 * itself waits, as on Linux, until the main thread opens it for both ends to let it go.
 * Prints "fifo_swap: ok REG FIFO ERRORS", the counts of each outcome.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "oracle.h"

static int dir;
static long rounds;
static atomic_int done;
static long regular, fifo, errors;

static void *opener(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        int fd = openat(dir, "x", O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0) {
            errors++;  /* ENOENT or EAGAIN between a swap and its check: never a wait */
            continue;
        }
        if (fstat(fd, &st) < 0) die("fstat");
        if (S_ISFIFO(st.st_mode)) fifo++; else regular++;
        close(fd);
    }
    atomic_store(&done, 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || (argv[1][0] == 'o' && argc != 4)) {
        say("usage: fifo_swap swap DIR | fifo_swap open DIR ROUNDS");
        return 2;
    }
    dir = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (dir < 0) die("open DIR");
    if (argv[1][0] == 's') {
        int x = openat(dir, "x", O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (x < 0) die("create x");
        close(x);
        unlinkat(dir, "y", 0);
        if (mkfifoat(dir, "y", 0644) < 0) die("mkfifo y");
        say("swapping");
        for (;;)
            if (syscall(SYS_renameat2, dir, "x", dir, "y", RENAME_EXCHANGE) < 0) die("renameat2");
    }
    rounds = atol(argv[3]);
    pthread_t t;
    pthread_create(&t, NULL, opener, NULL);
    while (!atomic_load(&done)) {
        /* Lets the opener go if it waits on the fifo: a writer for it. */
        const char *names[] = {"x", "y"};
        for (int i = 0; i < 2; i++) {
            int fd = openat(dir, names[i], O_RDWR | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) close(fd);
        }
        usleep(1000);
    }
    pthread_join(t, NULL);
    say("fifo_swap: ok %ld %ld %ld", regular, fifo, errors);
    return 0;
}
