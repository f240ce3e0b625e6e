/* vfork + exec, and a chain of execs of this same program: every process keeps being served.
 * Usage: vfork_exec [depth]. At depth 0 it prints its pid as the Sentry reports it. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 3;
    if (depth > 0) {
        char next[16];
        snprintf(next, sizeof next, "%d", depth - 1);
        pid_t child = vfork();
        if (child == 0) {
            execl("/proc/self/exe", argv[0], next, (char *)NULL);
            _exit(127);
        }
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 2;
        if (depth == 3) {
            /* and an exec that replaces this very process */
            execl("/proc/self/exe", argv[0], "0", (char *)NULL);
            return 3;
        }
        return WEXITSTATUS(status);
    }
    printf("leaf pid=%ld tid=%ld\n", (long)syscall(SYS_getpid), (long)syscall(SYS_gettid));
    return 0;
}
