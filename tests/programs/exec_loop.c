/* Execs itself for ever, as pid 1 with no signal handler: after each exec the dynamic
 * loader's first open gives the ptrace platform a new courier to plant (an injection of
 * several calls with the thread's signals blocked). Prints "ready" once. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 1) {
        puts("ready");
        fflush(stdout);
    }
    execl("/proc/self/exe", argv[0], "again", (char *)NULL);
    perror("execl");
    return 1;
}
