/* What a guest can do with a descriptor edgevisor's caller left open (tests/security/
 * test_leaked_fds.py). One mode per run; each prints what it got, or the errno name:
 *   cat FD          the file's content
 *   exec FD         execveat(FD, "", AT_EMPTY_PATH): runs the binary FD names
 *   dir FD NAME     openat(FD, NAME) and fchdir(FD) + open(NAME), printing what was read,
 *                   then openat(FD, "planted", O_CREAT) to try to write beside it
 *   fds             the descriptors /proc/self/fd lists, its own directory's left out
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "oracle.h"

static void show(const char *what, int fd)
{
    char buf[256];
    ssize_t n;
    if (fd < 0) {
        say("%s: %s", what, errname(errno));
        return;
    }
    n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        say("%s: %s", what, errname(errno));
        return;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    say("%s: ok %s", what, buf);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "cat")) {
        show("cat", atoi(argv[2]));
    } else if (argc >= 3 && !strcmp(argv[1], "exec")) {
        char *args[] = {"leaked", NULL}, *env[] = {NULL};
        syscall(SYS_execveat, atoi(argv[2]), "", args, env, AT_EMPTY_PATH);
        say("exec: %s", errname(errno));
    } else if (argc >= 4 && !strcmp(argv[1], "dir")) {
        int dir = atoi(argv[2]), fd;
        show("openat", openat(dir, argv[3], O_RDONLY));
        if (fchdir(dir) < 0)
            say("fchdir: %s", errname(errno));
        else
            show("fchdir_open", open(argv[3], O_RDONLY));
        fd = openat(dir, "planted", O_WRONLY | O_CREAT | O_EXCL, 0644);
        say("plant: %s", fd < 0 ? errname(errno) : "ok");
    } else if (argc >= 2 && !strcmp(argv[1], "fds")) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        char line[400] = "fds:";
        if (!d)
            die("opendir");
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)
                && strlen(line) + strlen(e->d_name) + 2 < sizeof line)
                strcat(strcat(line, " "), e->d_name);
        say("%s", line);
    } else {
        fprintf(stderr, "usage: fd_leak cat FD | exec FD | dir FD NAME | fds\n");
        return 2;
    }
    return 0;
}
