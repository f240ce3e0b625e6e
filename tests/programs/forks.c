/* Fork 50 children; each exits with its index; the parent checks every status. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t pids[50];
    for (int i = 0; i < 50; i++) {
        pids[i] = fork();
        if (pids[i] < 0) return 2;
        if (pids[i] == 0) {
            if (getppid() <= 0) _exit(255);
            _exit(i);
        }
    }
    int sum = 0;
    for (int i = 0; i < 50; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != i) return 3;
        sum += WEXITSTATUS(st);
    }
    printf("children=50 sum=%d\n", sum);
    return 0;
}
