/* Print what the identity syscalls answer, for comparison with the Sentry's view. */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct utsname u;
    if (uname(&u)) return 2;
    printf("nodename=%s sysname=%s\n", u.nodename, u.sysname);
    if (argc > 1) {
        if (sethostname(argv[1], strlen(argv[1]))) { perror("sethostname"); return 3; }
        uname(&u);
        printf("nodename=%s\n", u.nodename);
        char big[100]; memset(big, 'a', sizeof big);
        int r = sethostname(big, sizeof big);
        printf("toolong=%d errno=%d\n", r, errno);
        r = (int)syscall(SYS_uname, (void *)8);
        printf("efault=%d errno=%d\n", r, errno);
    }
    printf("pid=%d tid=%ld ppid=%d\n", getpid(), syscall(SYS_gettid), getppid());
    return 0;
}
