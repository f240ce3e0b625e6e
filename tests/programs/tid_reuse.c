/* Stress remembered per-task answers across tid reuse: alternately fork a child that asks
 * getpid() (its answer is its own pid) and start a thread that asks getpid() (its answer is
 * the parent's pid), until tids wrap around the pid space, so that threads get tids which
 * child processes used before. A sandbox that remembered answers by tid alone would hand a
 * thread a dead child's pid. Prints "ok wrapped=N" (N: thread tids seen again) or the error. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t parent;
static long bad;
static char seen[4 * 1024 * 1024];

static void *ask(void *tidp) {
    pid_t tid = syscall(SYS_gettid);
    if (syscall(SYS_getpid) != parent || syscall(SYS_getpid) != parent) bad++;
    *(pid_t *)tidp = tid;
    return NULL;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    long wrapped = 0;
    parent = getpid();
    for (long i = 0; i < rounds; i++) {
        pid_t child = fork();
        if (child == 0) _exit(syscall(SYS_getpid) == syscall(SYS_getpid) ? 0 : 1);
        int status;
        if (child < 0 || waitpid(child, &status, 0) != child || status != 0) {
            printf("child %d failed\n", child);
            return 1;
        }
        if (child < (pid_t)sizeof seen) seen[child] = 1;
        if (i % 11 == 0) { /* shift which tids children and threads get, round after round */
            pid_t extra = fork();
            if (extra == 0) _exit(0);
            waitpid(extra, &status, 0);
        }
        pthread_t t;
        pid_t tid = 0;
        if (pthread_create(&t, NULL, ask, &tid) || pthread_join(t, NULL)) return 2;
        if (tid < (pid_t)sizeof seen && seen[tid]) wrapped++;
    }
    if (bad) {
        printf("%ld threads got a wrong getpid\n", bad);
        return 1;
    }
    printf("ok wrapped=%ld\n", wrapped);
    return 0;
}
