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
        int r = sethostname(argv[1], strlen(argv[1]));
        printf("sethostname=%d errno=%d\n", r, r ? errno : 0);
        uname(&u);
        printf("nodename=%s\n", u.nodename);
        r = (int)syscall(SYS_uname, (void *)8);
        printf("efault=%d errno=%d\n", r, errno);
    }
    printf("pid=%d tid=%ld ppid=%d\n", getpid(), syscall(SYS_gettid), getppid());
    return 0;
}
