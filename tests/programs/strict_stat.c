/* Stats a file (so that the seccomp platform's C loop comes to answer this thread's stats),
 * enters strict-mode seccomp, and stats it again: strict mode allows read, write, exit and
 * rt_sigreturn only, so that stat must end the thread, whoever would answer it. */
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    struct stat st;
    for (int i = 0; i < 3; i++)
        if (stat("/usr/bin/env", &st)) return 2;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) return 3;
    stat("/usr/bin/env", &st);
    syscall(SYS_write, 1, "survived\n", 9);
    syscall(SYS_exit, 0);
    return 0;
}
