/* N threads each sum a slice; main joins and checks, and each thread's gettid is distinct. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N 16
static long sums[N];
static long tids[N];

static void *work(void *arg) {
    long i = (long)arg, s = 0;
    for (long k = i * 100000; k < (i + 1) * 100000; k++) s += k;
    sums[i] = s;
    tids[i] = syscall(SYS_gettid);
    return NULL;
}

int main(void) {
    pthread_t t[N];
    for (long i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, work, (void *)i)) return 2;
    long total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        total += sums[i];
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (tids[i] == tids[j] || tids[i] == getpid()) return 3;
    printf("threads=%d total=%ld\n", N, total);
    return 0;
}
