/* Issue a syscall through a foreign ABI: an x32 number, or int 0x80 (i386). The sandbox must
 * kill the process; if it returns, print what came back and exit 0 (the test then fails). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    long r = 0;
    if (argc > 1 && strcmp(argv[1], "x32") == 0) {
        long nr = 0x40000000L | 39; /* x32 getpid */
        __asm__ volatile("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
    } else {
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory"); /* i386 getpid */
    }
    printf("survived r=%ld\n", r);
    return 0;
}
