/* many_files DIR N: in DIR, creates N files, then stats, opens and reopens each (closing
 * every descriptor at once), as a build tree or node_modules does. Prints "PHASE ok" after
 * each phase; the first failure exits 1 naming the call, the file and the errno. */
#define _GNU_SOURCE
#include "oracle.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void name(char *buf, size_t size, const char *dir, long i) {
    snprintf(buf, size, "%s/f%ld", dir, i);
}

static void fail(const char *call, const char *path) {
    say("FATAL %s %s: %s", call, path, errname(errno));
    _exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) { say("usage: many_files DIR N"); return 2; };
    const char *dir = argv[1];
    long n = atol(argv[2]);
    char path[4096];
    if (mkdir(dir, 0755) && errno != EEXIST) fail("mkdir", dir);
    for (long i = 0; i < n; i++) {
        name(path, sizeof path, dir, i);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) fail("create", path);
        close(fd);
    }
    say("create ok");
    for (long i = 0; i < n; i++) {
        struct stat st;
        name(path, sizeof path, dir, i);
        if (stat(path, &st)) fail("stat", path);
        if (!S_ISREG(st.st_mode)) { errno = EINVAL; fail("stat", path); }
    }
    say("stat ok");
    for (int round = 0; round < 2; round++) {
        for (long i = 0; i < n; i++) {
            name(path, sizeof path, dir, i);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) fail("open", path);
            struct stat st;
            if (fstat(fd, &st)) fail("fstat", path);
            close(fd);
        }
        say(round ? "reopen ok" : "open ok");
    }
    return 0;
}
