/* The guest half of test_syscall_fuzz.py: one call per line of stdin, each in a fresh child,
 * so that nothing a call does (exit, execve, chroot, setuid, a write through a random
 * pointer) touches the worker itself. A line is "NR A0 A1 A2 A3 A4 A5"; an argument is a
 * decimal register value, "s<hex>" (a pointer to a NUL-terminated copy of those bytes) or
 * "b<offset>" (a pointer into a zeroed scratch buffer). One line back per call: "r=VALUE",
 * "e=ERRNO" (its number), "sig=N" (the child was killed) or "exit=N" (it exec'd or exited).
 * Descriptors 3 and 4 are /tmp/fuzz and /tmp/fuzz/file, open in every child. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char scratch[1 << 16];

static unsigned long arg(char *word) {
    if (word[0] == 'b') return (unsigned long)(scratch + strtoul(word + 1, NULL, 10) % sizeof scratch);
    if (word[0] == 's') {
        size_t n = strlen(word + 1) / 2;
        unsigned char *s = malloc(n + 1);
        for (size_t i = 0; i < n; i++) sscanf(word + 1 + 2 * i, "%2hhx", &s[i]);
        s[n] = 0;
        return (unsigned long)s;
    }
    return strtoul(word, NULL, 10);
}

int main(void) {
    static char line[1 << 20];
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/tmp/fuzz", 0777);
    if (chdir("/tmp/fuzz")) return 1;
    close(open("/tmp/fuzz/file", O_CREAT | O_WRONLY, 0644));
    if (dup2(open("/tmp/fuzz", O_RDONLY | O_DIRECTORY), 3) != 3) return 1;
    if (dup2(open("/tmp/fuzz/file", O_RDWR), 4) != 4) return 1;
    while (fgets(line, sizeof line, stdin)) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC)) return 1;
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            unsigned long a[7] = {0};
            char *save, *word = strtok_r(line, " \n", &save);
            for (int i = 0; i < 7 && word; i++, word = strtok_r(NULL, " \n", &save)) a[i] = arg(word);
            close(0);      /* an exec'd copy of this worker must not read the next calls */
            alarm(5);      /* a call that blocks (a fifo's open) is its child's problem */
            long r = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
            char out[64];
            int n = r == -1 ? snprintf(out, sizeof out, "e=%d", errno)
                            : snprintf(out, sizeof out, "r=%ld", r);
            if (write(pipefd[1], out, n) != n) _exit(3);
            _exit(0);
        }
        close(pipefd[1]);
        int status;
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR) return 1;
        char got[64];
        ssize_t n = read(pipefd[0], got, sizeof got - 1);
        close(pipefd[0]);
        if (n > 0) printf("%.*s\n", (int)n, got);
        else if (WIFSIGNALED(status)) printf("sig=%d\n", WTERMSIG(status));
        else printf("exit=%d\n", WEXITSTATUS(status));
    }
    return 0;
}
