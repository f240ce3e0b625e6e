/* Strict-mode seccomp as an attacker asks for it (test_strict_mode.py).
 *
 *   strict_mode bad-stack
 *     a child asks for strict mode with its stack pointer on an unmapped page (the Sentry
 *     writes the filter below it), then reports the answer and exits with exit(2) alone;
 *     the parent prints "answer R" and the child's status, then "served" once a call the
 *     Sentry answers still works.
 *   strict_mode threads
 *     a thread asks for strict mode while its sibling keeps calling getppid (emulated); the
 *     sibling is unharmed until the strict thread makes a forbidden call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oracle.h"

static void bad_stack(void) {
    int fds[2];
    if (pipe(fds)) die("pipe");
    pid_t p = fork();
    if (p == 0) {
        long r;
        /* prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) with rsp at 4096, then rsp back. */
        __asm__ volatile("mov %%rsp, %%r12\n\t"
                         "mov $4096, %%rsp\n\t"
                         "syscall\n\t"
                         "mov %%r12, %%rsp"
                         : "=a"(r)
                         : "a"((long)SYS_prctl), "D"((long)PR_SET_SECCOMP),
                           "S"((long)SECCOMP_MODE_STRICT)
                         : "rcx", "r11", "r12", "memory");
        char line[32];
        int n = snprintf(line, sizeof line, "answer %ld\n", r);
        syscall(SYS_write, fds[1], line, n);
        syscall(SYS_exit, 0);
    }
    close(fds[1]);
    relay(fds[0]);
    int status;
    waitpid(p, &status, 0);
    say("child %s", WIFEXITED(status) ? "exited" : "killed");
    say("served %d", getppid() >= 0);
}

static volatile int strict_now, forbidden_now;
static volatile long sibling_calls;

static void *sibling(void *arg) {
    (void)arg;
    for (;;) {
        syscall(SYS_getppid);
        sibling_calls++;
    }
    return NULL;
}

static void threads(void) {
    int fds[2];
    if (pipe(fds)) die("pipe");
    pid_t p = fork();
    if (p == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, sibling, NULL)) die("pthread_create");
        while (sibling_calls < 100) ;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) syscall(SYS_exit, 2);
        long before = sibling_calls;
        /* spin, with calls strict mode allows, while the sibling goes on */
        while (sibling_calls < before + 1000) ;
        const char line[] = "sibling unharmed\n";
        syscall(SYS_write, fds[1], line, sizeof line - 1);
        syscall(SYS_getpid); /* forbidden */
        syscall(SYS_exit, 1);
    }
    close(fds[1]);
    relay(fds[0]);
    int status;
    waitpid(p, &status, 0);
    say("process %s", WIFSIGNALED(status) ? "killed" : "exited");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "bad-stack")) bad_stack();
    else if (argc > 1 && !strcmp(argv[1], "threads")) threads();
    else die("usage: strict_mode bad-stack|threads");
    return 0;
}
