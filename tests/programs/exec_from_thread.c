/* execve from a thread that is not the thread-group leader. The kernel kills the other threads
 * (the leader among them), gives the exec'ing thread the leader's tid, and the new image runs
 * as the same process: same pid, same parent, one thread.
 *
 *   exec_from_thread echo   a thread execs /bin/echo
 *   exec_from_thread self   a thread execs this program again, which checks who it is
 *
 * Three more threads sleep and the leader blocks in pthread_join on the exec'ing thread, so
 * that there is something for the exec to kill. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char **args;
static pid_t leader_tid;

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void *exec_it(void *arg) {
    (void)arg;
    pid_t tid = syscall(SYS_gettid);
    if (tid == leader_tid) {
        printf("exec thread is the leader\n");
        fflush(stdout);
        _exit(4);
    }
    if (strcmp(args[1], "echo") == 0) {
        execl("/bin/echo", "echo", "echoed", "from", "a", "thread", (char *)NULL);
    } else {
        char pid[32], ppid[32];
        snprintf(pid, sizeof pid, "%ld", (long)syscall(SYS_getpid));
        snprintf(ppid, sizeof ppid, "%ld", (long)getppid());
        execl("/proc/self/exe", args[0], "after", pid, ppid, (char *)NULL);
    }
    perror("execl");
    _exit(5);
}

static int live_threads(void) {
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
    fclose(f);
    return n;
}

static const char *yes(int b) { return b ? "yes" : "no"; }

int main(int argc, char **argv) {
    args = argv;
    if (argc == 4 && strcmp(argv[1], "after") == 0) {
        long pid = syscall(SYS_getpid), tid = syscall(SYS_gettid);
        printf("after exec: pid==tid %s, same pid %s, same parent %s, threads=%d\n",
               yes(pid == tid), yes(pid == atol(argv[2])), yes(getppid() == atol(argv[3])),
               live_threads());
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: exec_from_thread echo|self\n");
        return 2;
    }
    leader_tid = syscall(SYS_gettid);
    pthread_t t;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t, NULL, sleeper, NULL)) return 3;
    if (pthread_create(&t, NULL, exec_it, NULL)) return 3;
    pthread_join(t, NULL); /* never returns: the exec replaces the process */
    return 6;
}
