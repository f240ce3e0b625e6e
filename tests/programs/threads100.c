/* 100 threads alive at once: each waits at a barrier (so that all 100 exist together), sums a
 * slice, bumps a shared counter under a mutex, and records its gettid and getpid. Main counts
 * its threads in /proc/self/status while they wait at a second barrier, joins them, checks
 * every answer and prints one deterministic line:
 *   threads=100 live=101 total=... counter=... tids=distinct pid=shared */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N 100
#define SLICE 20000
#define BUMPS 1000

static pthread_barrier_t started, counted;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static long sums[N];
static pid_t tids[N], pids[N];

static void *work(void *arg) {
    long i = (long)arg, s = 0;
    pthread_barrier_wait(&started);
    for (long k = i * SLICE; k < (i + 1) * SLICE; k++) s += k;
    for (int b = 0; b < BUMPS; b++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    sums[i] = s;
    tids[i] = syscall(SYS_gettid);
    pids[i] = syscall(SYS_getpid);
    pthread_barrier_wait(&counted);
    return (void *)(i + 1);
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

int main(void) {
    pthread_t t[N];
    pthread_barrier_init(&started, NULL, N);
    pthread_barrier_init(&counted, NULL, N + 1);
    for (long i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, work, (void *)i)) {
            printf("pthread_create %ld failed\n", i);
            return 2;
        }
    /* Every thread is parked at `counted` only after it has done its work, so none can have
     * exited yet: the count is exact. */
    while (1) {
        pthread_mutex_lock(&lock);
        long c = counter;
        pthread_mutex_unlock(&lock);
        if (c == (long)N * BUMPS) break;
        usleep(1000);
    }
    int live = live_threads();
    pthread_barrier_wait(&counted);
    long total = 0;
    for (long i = 0; i < N; i++) {
        void *ret;
        if (pthread_join(t[i], &ret) || ret != (void *)(i + 1)) {
            printf("join %ld failed\n", i);
            return 3;
        }
        total += sums[i];
    }
    pid_t me = syscall(SYS_getpid);
    const char *distinct = "distinct", *shared = "shared";
    for (int i = 0; i < N; i++) {
        if (pids[i] != me) shared = "differs";
        if (tids[i] == me || tids[i] <= 0) distinct = "clash";
        for (int j = i + 1; j < N; j++)
            if (tids[i] == tids[j]) distinct = "clash";
    }
    printf("threads=%d live=%d total=%ld counter=%ld tids=%s pid=%s\n", N, live, total, counter,
           distinct, shared);
    return 0;
}
