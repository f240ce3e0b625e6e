/* Call a syscall number that no kernel defines; expect -1/ENOSYS. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long nr = argc > 1 ? atol(argv[1]) : 1000;
    errno = 0;
    long r = syscall(nr, 1, 2, 3, 4, 5, 6);
    printf("nr=%ld r=%ld errno=%d\n", nr, r, errno);
    return !(r == -1 && errno == ENOSYS);
}
