/* Socket semantics, one line per check, for comparison between a native run and a sandboxed
 * one (tests/conformance/test_sockets.py). The program expects a network namespace of its own
 * with only `lo`, up: what the sandbox gives its guest, and natively `unshare -n` once lo is
 * brought up.
 *
 * Nothing printed depends on timing, ports or pids: results are errno names, ports are printed
 * as "port!=0", pids and ids as comparisons. Whatever crosses the loopback device is waited
 * for (a blocking call, or poll with a timeout) before it is looked at, since a packet may be
 * handled by ksoftirqd after the call that sent it has returned. Every check is run for IPv4,
 * IPv6 with IPV6_V6ONLY set ("inet6") and IPv6 with it clear, on v4-mapped addresses
 * ("inet6-dual"), where the family makes a difference.
 *
 * Usage: net_conformance DIR   DIR: a writable directory; the program works in a directory
 *                              of its own made inside it, and removes it at the end
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oracle.h"

/* TEST-NET-1 and the IPv6 documentation prefix: never local, never routed from a bare lo. */
#define REMOTE4 "192.0.2.1"
#define REMOTE6 "2001:db8::1"
#define WAIT_MS 5000

/* ---- output ------------------------------------------------------------------------------ */

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FATAL timeout\n";
    if (write(1, msg, sizeof msg - 1)) {}
    _exit(122);
}

/* A syscall's result: its value, or "-1 " and the errno's name. Call it on the syscall
 * itself, before anything else can change errno. */
static const char *res(long r) {
    char *s = scratch();
    if (r == -1)
        snprintf(s, 96, "-1 %s", errname(errno));
    else
        snprintf(s, 96, "%ld", r);
    return s;
}

/* The same for calls that return a descriptor, whose number is not printed. */
static const char *fdres(long r) {
    return r >= 0 ? "fd" : res(r);
}

static const char *yes(int b) { return b ? "1" : "0"; }

static int nonblocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }
static int cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

/* poll for EVENTS, WAIT_MS at most: the revents, or 0 on timeout. */
static int wait_for(int fd, short events, int ms) {
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    if (n < 0) die("poll");
    return n ? p.revents : 0;
}

static int getint(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len)) return -1000 - errno;
    return v;
}

static void setint(int fd, int level, int name, int v) {
    if (setsockopt(fd, level, name, &v, sizeof v)) die("setsockopt");
}

/* ---- addresses --------------------------------------------------------------------------- */

/* A family as the checks see it: the socket's, IPV6_V6ONLY's setting (-1: none), and the
 * addresses it reaches loopback and the outside by. */
struct fam {
    const char *name;
    int family, v6only;
    const char *loop, *remote, *any;
};

static const struct fam FAMS[] = {
    {"inet", AF_INET, -1, "127.0.0.1", REMOTE4, "0.0.0.0"},
    {"inet6", AF_INET6, 1, "::1", REMOTE6, "::"},
    {"inet6-dual", AF_INET6, 0, "::ffff:127.0.0.1", "::ffff:" REMOTE4, "::"},
};
#define NFAMS (int)(sizeof FAMS / sizeof *FAMS)

typedef struct sockaddr_storage addr_t;
#define SA(a) ((struct sockaddr *)(a))

static socklen_t mkaddr(int family, const char *host, int port, addr_t *a) {
    memset(a, 0, sizeof *a);
    if (family == AF_INET) {
        struct sockaddr_in *in = (void *)a;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) die(host);
        return sizeof *in;
    }
    struct sockaddr_in6 *in6 = (void *)a;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) die(host);
    return sizeof *in6;
}

static int port_of(const addr_t *a) {
    if (a->ss_family == AF_INET) return ntohs(((struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

static const char *port_str(const addr_t *a) {
    int p = port_of(a);
    return p < 0 ? "port?" : p ? "port!=0" : "port=0";
}

static const char *family_str(int family) {
    switch (family) {
    case AF_UNSPEC: return "unspec";
    case AF_UNIX: return "unix";
    case AF_INET: return "inet";
    case AF_INET6: return "inet6";
    }
    char *s = scratch();
    snprintf(s, 96, "family%d", family);
    return s;
}

static const char *ip_of(const addr_t *a) {
    char *s = scratch();
    const void *raw = a->ss_family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)a)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)a)->sin6_addr;
    if (!inet_ntop(a->ss_family, raw, s, 96)) snprintf(s, 96, "?%s", family_str(a->ss_family));
    return s;
}

/* Same family, address and port: what a peer's name must share with the socket's own. */
static int same(const addr_t *a, const addr_t *b) {
    if (a->ss_family != b->ss_family || port_of(a) != port_of(b)) return 0;
    if (a->ss_family == AF_INET)
        return ((struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((struct sockaddr_in *)b)->sin_addr.s_addr;
    return !memcmp(&((struct sockaddr_in6 *)a)->sin6_addr, &((struct sockaddr_in6 *)b)->sin6_addr,
                   sizeof(struct in6_addr));
}

static addr_t name_of(int fd) {
    addr_t a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    if (getsockname(fd, SA(&a), &len)) die("getsockname");
    return a;
}

static addr_t peer_of(int fd) {
    addr_t a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    if (getpeername(fd, SA(&a), &len)) die("getpeername");
    return a;
}

/* ---- sockets ----------------------------------------------------------------------------- */

static int fsock(const struct fam *f, int type) {
    int fd = socket(f->family, type, 0);
    if (fd < 0) die("socket");
    if (f->v6only >= 0) setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, f->v6only);
    return fd;
}

/* A socket bound to HOST:PORT (0: any port), its name in *A. */
static int fbound(const struct fam *f, int type, const char *host, int port, addr_t *a) {
    int fd = fsock(f, type);
    socklen_t len = mkaddr(f->family, host, port, a);
    if (bind(fd, SA(a), len)) die("bind");
    *a = name_of(fd);
    return fd;
}

static int flistener(const struct fam *f, addr_t *a) {
    int fd = fbound(f, SOCK_STREAM, f->loop, 0, a);
    if (listen(fd, 16)) die("listen");
    return fd;
}

static socklen_t len_of(const addr_t *a) {
    return a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* A connected TCP pair: *c the connecting end, *s the accepted one. */
static void fpair(const struct fam *f, int *c, int *s) {
    addr_t a;
    int l = flistener(f, &a);
    *c = fsock(f, SOCK_STREAM);
    if (connect(*c, SA(&a), len_of(&a))) die("connect");
    if ((*s = accept(l, NULL, NULL)) < 0) die("accept");
    close(l);
}

/* A port on loopback that nothing is bound to: one the kernel just handed out and took back. */
static int free_port(const struct fam *f, int type) {
    addr_t a;
    int fd = fbound(f, type, f->loop, 0, &a);
    close(fd);
    return port_of(&a);
}

/* ---- socket() and socketpair() ----------------------------------------------------------- */

static void check_socket(void) {
    int fd = socket(1000, SOCK_STREAM, 0);
    say("socket-bad-family: %s", fdres(fd));
    fd = socket(-1, SOCK_STREAM, 0);
    say("socket-negative-family: %s", fdres(fd));
    fd = socket(AF_INET, 1000, 0);
    say("socket-bad-type: %s", fdres(fd));
    fd = socket(AF_INET, SOCK_STREAM | 0x100, 0);
    say("socket-bad-type-flags: %s", fdres(fd));
    fd = socket(AF_INET, SOCK_STREAM, IPPROTO_UDP);
    say("socket-inet-stream-udp: %s", fdres(fd));
    fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP);
    say("socket-inet-dgram-tcp: %s", fdres(fd));
    fd = socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP);
    say("socket-inet6-stream-udp: %s", fdres(fd));
    fd = socket(AF_UNIX, SOCK_STREAM, 1);
    say("socket-unix-protocol: %s", fdres(fd));

    for (int i = 0; i < 2; i++) {
        int family = i ? AF_INET6 : AF_INET;
        fd = socket(family, SOCK_STREAM, IPPROTO_TCP);
        say("socket-%s-tcp: %s", family_str(family), fdres(fd));
        close(fd);
        fd = socket(family, SOCK_DGRAM, IPPROTO_UDP);
        say("socket-%s-udp: %s", family_str(family), fdres(fd));
        close(fd);
        int sv[2];
        say("socketpair-%s: %s", family_str(family), res(socketpair(family, SOCK_STREAM, 0, sv)));
    }

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    say("socket-flags: %s nonblock=%d cloexec=%d", fdres(fd), nonblocking(fd), cloexec(fd));
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    say("socket-no-flags: %s nonblock=%d cloexec=%d", fdres(fd), nonblocking(fd), cloexec(fd));
    close(fd);
}

/* ---- bind -------------------------------------------------------------------------------- */

/* Binds a first socket to loopback (with option OPT1 set, if any; listening if LISTEN1), then a
 * second, with OPT2, to the same address and port; then listens on the second, and on the first
 * if it was not listening yet, to see what each bind allowed. */
static void bind_pair(const struct fam *f, const char *what, int type, int opt1, int opt2,
                      int listen1) {
    addr_t a;
    int s1 = fsock(f, type), s2 = fsock(f, type);
    if (opt1) setint(s1, SOL_SOCKET, opt1, 1);
    if (opt2) setint(s2, SOL_SOCKET, opt2, 1);
    socklen_t len = mkaddr(f->family, f->loop, 0, &a);
    if (bind(s1, SA(&a), len)) die("bind");
    if (listen1 && listen(s1, 4)) die("listen");
    addr_t n = name_of(s1);
    mkaddr(f->family, f->loop, port_of(&n), &a);
    const char *b2 = res(bind(s2, SA(&a), len));
    if (type != SOCK_STREAM) {
        say("%s.%s: bind2=%s", what, f->name, b2);
    } else {
        const char *l2 = strcmp(b2, "0") ? "-" : res(listen(s2, 4));
        const char *l1 = listen1 ? "-" : res(listen(s1, 4));
        say("%s.%s: bind2=%s listen2=%s listen1=%s", what, f->name, b2, l2, l1);
    }
    close(s1);
    close(s2);
}

static void check_bind(const struct fam *f) {
    addr_t a, n;
    int s = fsock(f, SOCK_STREAM);
    socklen_t len = mkaddr(f->family, f->loop, 0, &a);
    const char *r = res(bind(s, SA(&a), len));
    n = name_of(s);
    say("bind-port0.%s: %s family=%s addr=%s %s", f->name, r, family_str(n.ss_family),
        ip_of(&n), port_str(&n));
    int port = port_of(&n);
    say("bind-bound.%s: %s", f->name, res(bind(s, SA(&a), len)));
    mkaddr(f->family, f->loop, port, &a);
    say("bind-bound-same.%s: %s", f->name, res(bind(s, SA(&a), len)));

    int t = fsock(f, SOCK_STREAM);
    say("bind-inuse.%s: %s", f->name, res(bind(t, SA(&a), len)));
    close(t);
    t = fsock(f, SOCK_STREAM);
    mkaddr(f->family, f->any, port, &a);
    say("bind-inuse-any.%s: %s", f->name, res(bind(t, SA(&a), len)));
    close(t);
    close(s);

    s = fsock(f, SOCK_STREAM);
    mkaddr(f->family, f->any, 0, &a);
    r = res(bind(s, SA(&a), len));
    n = name_of(s);
    say("bind-any.%s: %s addr=%s %s", f->name, r, ip_of(&n), port_str(&n));
    close(s);

    bind_pair(f, "bind-reuseaddr-bound", SOCK_STREAM, SO_REUSEADDR, SO_REUSEADDR, 0);
    bind_pair(f, "bind-reuseaddr-listening", SOCK_STREAM, SO_REUSEADDR, SO_REUSEADDR, 1);
    bind_pair(f, "bind-reuseaddr-second-only", SOCK_STREAM, 0, SO_REUSEADDR, 0);
    bind_pair(f, "bind-reuseport", SOCK_STREAM, SO_REUSEPORT, SO_REUSEPORT, 1);
    bind_pair(f, "bind-reuseport-second-only", SOCK_STREAM, 0, SO_REUSEPORT, 1);
    bind_pair(f, "bind-udp", SOCK_DGRAM, 0, 0, 0);
    bind_pair(f, "bind-udp-reuseaddr", SOCK_DGRAM, SO_REUSEADDR, SO_REUSEADDR, 0);

    s = fsock(f, SOCK_STREAM);
    len = mkaddr(f->family, f->loop, 0, &a);
    socklen_t short_len = f->family == AF_INET ? sizeof(struct sockaddr_in) - 1 : 23;
    say("bind-short-len.%s: %s", f->name, res(bind(s, SA(&a), short_len)));
    a.ss_family = f->family == AF_INET ? AF_INET6 : AF_INET;
    say("bind-wrong-family.%s: %s", f->name, res(bind(s, SA(&a), len)));
    mkaddr(f->family, f->remote, 0, &a);
    say("bind-nonlocal.%s: %s", f->name, res(bind(s, SA(&a), len)));
    close(s);

    s = fsock(f, SOCK_DGRAM);
    mkaddr(f->family, f->loop, 0, &a);
    r = res(bind(s, SA(&a), len));
    n = name_of(s);
    say("bind-udp-port0.%s: %s addr=%s %s", f->name, r, ip_of(&n), port_str(&n));
    close(s);
}

/* IPv4's own: AF_UNSPEC is taken for AF_INET with INADDR_ANY only, and all of 127/8 is local. */
static void check_bind_inet(void) {
    const struct fam *f = &FAMS[0];
    addr_t a;
    int s = fsock(f, SOCK_STREAM);
    socklen_t len = mkaddr(AF_INET, "127.0.0.1", 0, &a);
    a.ss_family = AF_UNSPEC;
    say("bind-unspec-loopback: %s", res(bind(s, SA(&a), len)));
    mkaddr(AF_INET, "0.0.0.0", 0, &a);
    a.ss_family = AF_UNSPEC;
    const char *r = res(bind(s, SA(&a), len));
    addr_t n = name_of(s);
    say("bind-unspec-any: %s family=%s addr=%s %s", r, family_str(n.ss_family), ip_of(&n),
        port_str(&n));
    close(s);
    s = fsock(f, SOCK_STREAM);
    mkaddr(AF_INET, "127.0.0.2", 0, &a);
    r = res(bind(s, SA(&a), len));
    n = name_of(s);
    say("bind-127.0.0.2: %s addr=%s", r, ip_of(&n));
    close(s);
}

/* ---- listen and accept ------------------------------------------------------------------- */

static void check_listen(const struct fam *f) {
    addr_t a, n;
    int s = fsock(f, SOCK_STREAM);
    const char *r = res(listen(s, 4));
    n = name_of(s);
    say("listen-unbound.%s: %s addr=%s %s", f->name, r, ip_of(&n), port_str(&n));
    say("listen-again.%s: %s", f->name, res(listen(s, 32)));
    close(s);

    s = fsock(f, SOCK_DGRAM);
    say("listen-udp.%s: %s", f->name, res(listen(s, 4)));
    say("accept-udp.%s: %s", f->name, fdres(accept(s, NULL, NULL)));
    close(s);

    s = fbound(f, SOCK_STREAM, f->loop, 0, &a);
    say("accept-not-listening.%s: %s", f->name, fdres(accept(s, NULL, NULL)));
    close(s);

    int l = flistener(f, &a);
    fcntl(l, F_SETFL, O_NONBLOCK);
    say("accept-nonblock-empty.%s: %s", f->name, fdres(accept(l, NULL, NULL)));
    say("accept4-bad-flags.%s: %s", f->name, fdres(accept4(l, NULL, NULL, O_APPEND)));

    /* O_NONBLOCK is not inherited from the listener. */
    int c = fsock(f, SOCK_STREAM);
    if (connect(c, SA(&a), len_of(&a))) die("connect");
    int ready = wait_for(l, POLLIN, WAIT_MS) & POLLIN;
    int s2 = accept(l, NULL, NULL);
    say("accept-from-nonblocking.%s: ready=%d %s nonblock=%d cloexec=%d", f->name, ready,
        fdres(s2), nonblocking(s2), cloexec(s2));
    close(s2);
    close(c);
    fcntl(l, F_SETFL, 0);

    c = fsock(f, SOCK_STREAM);
    if (connect(c, SA(&a), len_of(&a))) die("connect");
    addr_t p;
    socklen_t plen = sizeof p;
    s2 = accept4(l, SA(&p), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    addr_t cn = name_of(c);
    say("accept4-flags.%s: %s nonblock=%d cloexec=%d addrlen=%d peer==client=%s", f->name,
        fdres(s2), nonblocking(s2), cloexec(s2), (int)plen, yes(same(&p, &cn)));
    close(s2);
    close(c);

    /* A short buffer gets a truncated address and the full length. */
    c = fsock(f, SOCK_STREAM);
    if (connect(c, SA(&a), len_of(&a))) die("connect");
    memset(&p, 0xff, sizeof p);
    plen = 4;
    s2 = accept(l, SA(&p), &plen);
    unsigned char *raw = (unsigned char *)&p;
    say("accept-short-addrlen.%s: %s addrlen=%d untouched-after=%d", f->name, fdres(s2),
        (int)plen, raw[4] == 0xff && raw[5] == 0xff);
    close(s2);
    close(c);

    say("sockopt-acceptconn.%s: listening=%d", f->name, getint(l, SOL_SOCKET, SO_ACCEPTCONN));
    close(l);
}

static void check_accept_misc(void) {
    int p[2];
    if (pipe(p)) die("pipe");
    say("accept-not-socket: %s", fdres(accept(p[0], NULL, NULL)));
    say("listen-not-socket: %s", res(listen(p[0], 4)));
    close(p[0]);
    close(p[1]);
    say("accept-bad-fd: %s", fdres(accept(999, NULL, NULL)));
}

/* ---- connect ----------------------------------------------------------------------------- */

static void check_connect(const struct fam *f) {
    addr_t la, pa;
    int l = flistener(f, &la);
    int c = fsock(f, SOCK_STREAM);
    say("connect.%s: %s", f->name, res(connect(c, SA(&la), len_of(&la))));
    socklen_t plen = sizeof pa;
    int s = accept(l, SA(&pa), &plen);
    if (s < 0) die("accept");
    addr_t cn = name_of(c), cp = peer_of(c), sn = name_of(s), sp = peer_of(s);
    say("connect-names.%s: local==accepted-peer=%s peer==listener=%s accepted-local==peer=%s "
        "accepted-peer==getpeername=%s",
        f->name, yes(same(&cn, &pa)), yes(same(&cp, &la)), yes(same(&sn, &cp)),
        yes(same(&sp, &pa)));
    say("connect-local.%s: family=%s addr=%s %s", f->name, family_str(cn.ss_family), ip_of(&cn),
        port_str(&cn));
    say("connect-again.%s: %s", f->name, res(connect(c, SA(&la), len_of(&la))));
    /* AF_UNSPEC dissolves the association (and resets the connection). */
    addr_t u;
    memset(&u, 0, sizeof u);
    u.ss_family = AF_UNSPEC;
    const char *r = res(connect(c, SA(&u), sizeof(struct sockaddr)));
    socklen_t ulen = sizeof u;
    say("connect-unspec.%s: %s getpeername=%s", f->name, r,
        res(getpeername(c, SA(&u), &ulen)));
    close(c);
    close(s);

    c = fsock(f, SOCK_STREAM);
    ulen = sizeof u;
    say("getpeername-unconnected.%s: %s", f->name, res(getpeername(c, SA(&u), &ulen)));
    addr_t n = name_of(c);
    say("getsockname-unbound.%s: family=%s addr=%s %s", f->name, family_str(n.ss_family),
        ip_of(&n), port_str(&n));
    close(c);

    /* A port bound but not listening answers a SYN with a reset. */
    addr_t ca;
    int closed = fbound(f, SOCK_STREAM, f->loop, 0, &ca);
    c = fsock(f, SOCK_STREAM);
    say("connect-refused.%s: %s", f->name, res(connect(c, SA(&ca), len_of(&ca))));
    close(c);

    /* Non-blocking, to the listener: done at once or in progress, then writable and no error.
     * Linux's second connect() on such a socket reports the completion (0), the third
     * EISCONN. */
    c = socket(f->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (f->v6only >= 0) setint(c, IPPROTO_IPV6, IPV6_V6ONLY, f->v6only);
    int rc = connect(c, SA(&la), len_of(&la));
    int e = errno;
    int ev = wait_for(c, POLLOUT, WAIT_MS);
    int err = getint(c, SOL_SOCKET, SO_ERROR);
    if ((rc == 0 || e == EINPROGRESS) && (ev & POLLOUT) && err == 0)
        say("connect-nonblock.%s: ok", f->name);
    else
        say("connect-nonblock.%s: rc=%d errno=%s revents=%#x so_error=%d", f->name, rc,
            errname(e), ev, err);
    say("connect-nonblock-again.%s: %s", f->name, res(connect(c, SA(&la), len_of(&la))));
    say("connect-nonblock-third.%s: %s", f->name, res(connect(c, SA(&la), len_of(&la))));
    if ((s = accept(l, NULL, NULL)) < 0) die("accept");
    close(s);
    close(c);

    /* Non-blocking, to the closed port: refused at once or later, seen through SO_ERROR. */
    c = socket(f->family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (f->v6only >= 0) setint(c, IPPROTO_IPV6, IPV6_V6ONLY, f->v6only);
    rc = connect(c, SA(&ca), len_of(&ca));
    e = errno;
    if (rc == -1 && e == ECONNREFUSED) {
        err = ECONNREFUSED;
    } else {
        wait_for(c, POLLOUT, WAIT_MS);
        err = getint(c, SOL_SOCKET, SO_ERROR);
    }
    say("connect-nonblock-refused.%s: %s so_error=%s", f->name,
        rc == -1 && (e == EINPROGRESS || e == ECONNREFUSED) ? "pending" : res(rc),
        err ? errname(err) : "0");
    close(c);
    close(closed);

    c = fsock(f, SOCK_STREAM);
    socklen_t len = mkaddr(f->family, f->remote, 80, &u);
    say("connect-unreachable.%s: %s", f->name, res(connect(c, SA(&u), len)));
    close(c);
    c = fsock(f, SOCK_STREAM);
    socklen_t short_len = f->family == AF_INET ? sizeof(struct sockaddr_in) - 1 : 23;
    say("connect-short-len.%s: %s", f->name, res(connect(c, SA(&la), short_len)));
    u = la;
    u.ss_family = f->family == AF_INET ? AF_INET6 : AF_INET;
    say("connect-wrong-family.%s: %s", f->name, res(connect(c, SA(&u), len_of(&la))));
    close(c);
    close(l);
}

/* IPv6 and IPv4 sharing ports, and v4-mapped addresses, by IPV6_V6ONLY. */
static void check_dual_stack(void) {
    const struct fam *v4 = &FAMS[0];
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    say("v6only-default: %d", getint(s, IPPROTO_IPV6, IPV6_V6ONLY));
    close(s);

    for (int i = 1; i <= 2; i++) {
        const struct fam *f = &FAMS[i];
        addr_t a;
        s = fbound(f, SOCK_STREAM, "::", 0, &a);
        int port = port_of(&a);
        int t = fsock(v4, SOCK_STREAM);
        socklen_t len = mkaddr(AF_INET, "0.0.0.0", port, &a);
        say("v4-bind-after-v6-any.%s: %s", f->name, res(bind(t, SA(&a), len)));
        close(t);
        close(s);

        s = fsock(f, SOCK_STREAM);
        len = mkaddr(AF_INET6, "::ffff:127.0.0.1", 0, &a);
        say("bind-v4-mapped.%s: %s", f->name, res(bind(s, SA(&a), len)));
        close(s);
        s = fbound(f, SOCK_STREAM, "::", 0, &a);
        say("set-v6only-after-bind.%s: %s", f->name,
            res(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &(int){!f->v6only}, sizeof(int))));
        close(s);

        /* A v4 client of a listener on [::]. */
        int l = fbound(f, SOCK_STREAM, "::", 0, &a);
        if (listen(l, 4)) die("listen");
        int c = fsock(v4, SOCK_STREAM);
        addr_t to;
        len = mkaddr(AF_INET, "127.0.0.1", port_of(&a), &to);
        const char *r = res(connect(c, SA(&to), len));
        if (!strcmp(r, "0")) {
            addr_t p, cn = name_of(c);
            socklen_t plen = sizeof p;
            int a2 = accept(l, SA(&p), &plen);
            say("v4-client-of-v6-any.%s: connect=%s accept=%s peer=%s family=%s "
                "port==client=%d", f->name, r, fdres(a2), ip_of(&p), family_str(p.ss_family),
                port_of(&p) == port_of(&cn));
            close(a2);
        } else {
            say("v4-client-of-v6-any.%s: connect=%s", f->name, r);
        }
        close(c);
        close(l);

        /* A v6 client of a v4 listener, by its v4-mapped address. */
        l = flistener(v4, &a);
        c = fsock(f, SOCK_STREAM);
        len = mkaddr(AF_INET6, "::ffff:127.0.0.1", port_of(&a), &to);
        say("connect-v4-mapped.%s: %s", f->name, res(connect(c, SA(&to), len)));
        close(c);
        close(l);

        /* A v4 datagram to [::]: only a dual-stack socket is waited for long, since only one
         * should get it. */
        s = fbound(f, SOCK_DGRAM, "::", 0, &a);
        t = fsock(v4, SOCK_DGRAM);
        len = mkaddr(AF_INET, "127.0.0.1", port_of(&a), &to);
        r = res(sendto(t, "v4", 2, 0, SA(&to), len));
        int ready = wait_for(s, POLLIN, f->v6only ? 200 : WAIT_MS) & POLLIN;
        addr_t from;
        socklen_t flen = sizeof from;
        char buf[8];
        memset(&from, 0, sizeof from);
        const char *got = ready ? res(recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, SA(&from),
                                               &flen))
                                : "none";
        say("udp-v4-to-v6-any.%s: sendto=%s recvfrom=%s from=%s", f->name, r, got,
            ready ? ip_of(&from) : "-");
        close(t);
        close(s);
    }
}

/* ---- shutdown ---------------------------------------------------------------------------- */

static void check_shutdown(const struct fam *f) {
    int c, s;
    char buf[8];
    c = fsock(f, SOCK_STREAM);
    say("shutdown-unconnected.%s: %s", f->name, res(shutdown(c, SHUT_WR)));
    close(c);

    fpair(f, &c, &s);
    say("shutdown-bad-how.%s: %s", f->name, res(shutdown(c, 3)));
    say("shutdown-negative-how.%s: %s", f->name, res(shutdown(c, -1)));
    const char *r = res(shutdown(c, SHUT_WR));
    say("shutdown-wr.%s: %s peer-read=%s", f->name, r, res(read(s, buf, sizeof buf)));
    say("shutdown-wr-again.%s: %s", f->name, res(shutdown(c, SHUT_WR)));
    say("shutdown-wr-send.%s: %s", f->name, res(send(c, "x", 1, MSG_NOSIGNAL)));
    r = res(send(s, "y", 1, MSG_NOSIGNAL));
    say("shutdown-wr-peer-sends.%s: send=%s read=%s", f->name, r, res(read(c, buf, sizeof buf)));

    /* Without MSG_NOSIGNAL the writer gets SIGPIPE too; blocked, it stays pending. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_set, &old);
    r = res(send(c, "x", 1, 0));
    sigset_t pending;
    sigpending(&pending);
    int got = sigismember(&pending, SIGPIPE);
    struct timespec zero = {0, 0};
    if (got) sigtimedwait(&pipe_set, NULL, &zero);
    sigprocmask(SIG_SETMASK, &old, NULL);
    say("shutdown-wr-sigpipe.%s: %s sigpipe=%d", f->name, r, got);
    close(c);
    close(s);

    fpair(f, &c, &s);
    r = res(shutdown(c, SHUT_RD));
    say("shutdown-rd.%s: %s recv=%s", f->name, r, res(recv(c, buf, sizeof buf, MSG_DONTWAIT)));
    r = res(send(c, "z", 1, MSG_NOSIGNAL));
    say("shutdown-rd-send.%s: %s peer-read=%s", f->name, r, res(read(s, buf, sizeof buf)));
    close(c);
    close(s);

    fpair(f, &c, &s);
    r = res(shutdown(c, SHUT_RDWR));
    const char *peer = res(read(s, buf, sizeof buf));
    const char *own = res(recv(c, buf, sizeof buf, MSG_DONTWAIT));
    say("shutdown-rdwr.%s: %s peer-read=%s recv=%s send=%s", f->name, r, peer, own,
        res(send(c, "x", 1, MSG_NOSIGNAL)));
    close(c);
    close(s);

    s = fsock(f, SOCK_DGRAM);
    say("shutdown-udp-unconnected.%s: %s", f->name, res(shutdown(s, SHUT_RDWR)));
    close(s);
}

static void check_shutdown_misc(void) {
    int p[2];
    if (pipe(p)) die("pipe");
    say("shutdown-not-socket: %s", res(shutdown(p[0], SHUT_RD)));
    close(p[0]);
    close(p[1]);
}

/* ---- UDP --------------------------------------------------------------------------------- */

/* The next datagram on FD as text, waited for; "none" if nothing came. */
static const char *next_datagram(int fd, int ms) {
    char *s = scratch();
    if (!(wait_for(fd, POLLIN, ms) & POLLIN)) return "none";
    ssize_t n = recv(fd, s, 95, MSG_DONTWAIT);
    if (n < 0) return res(n);
    s[n] = 0;
    return s;
}

static void check_udp(const struct fam *f) {
    addr_t ra, to, from;
    char buf[16];
    int r = fbound(f, SOCK_DGRAM, f->loop, 0, &ra);

    /* A bound sender's name is what the receiver sees. */
    addr_t sn;
    int s = fbound(f, SOCK_DGRAM, f->loop, 0, &sn);
    const char *sent = res(sendto(s, "hello", 5, 0, SA(&ra), len_of(&ra)));
    socklen_t flen = sizeof from;
    memset(&from, 0, sizeof from);
    wait_for(r, POLLIN, WAIT_MS);
    const char *got = res(recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, SA(&from), &flen));
    say("udp-recvfrom.%s: sendto=%s recvfrom=%s from==sender=%s from=%s addrlen=%d", f->name,
        sent, got, yes(same(&from, &sn)), ip_of(&from), (int)flen);
    close(s);

    /* An unbound one is bound by its first sendto, to the wildcard address and a port: the
     * receiver sees that port and the address the datagram left from. */
    s = fsock(f, SOCK_DGRAM);
    sent = res(sendto(s, "hello", 5, 0, SA(&ra), len_of(&ra)));
    flen = sizeof from;
    memset(&from, 0, sizeof from);
    wait_for(r, POLLIN, WAIT_MS);
    got = res(recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, SA(&from), &flen));
    sn = name_of(s);
    say("udp-recvfrom-autobound.%s: sendto=%s recvfrom=%s port==sender=%d sender=%s from=%s",
        f->name, sent, got, port_of(&from) == port_of(&sn), ip_of(&sn), ip_of(&from));

    /* Truncation: MSG_TRUNC in flags asks for the real length; msg_flags reports it. */
    sendto(s, "hello", 5, 0, SA(&ra), len_of(&ra));
    wait_for(r, POLLIN, WAIT_MS);
    say("udp-recv-msg-trunc.%s: %s", f->name, res(recv(r, buf, 2, MSG_TRUNC | MSG_DONTWAIT)));
    sendto(s, "hello", 5, 0, SA(&ra), len_of(&ra));
    wait_for(r, POLLIN, WAIT_MS);
    struct iovec iov = {buf, 2};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    got = res(recvmsg(r, &mh, MSG_DONTWAIT));
    say("udp-recvmsg-truncated.%s: %s MSG_TRUNC=%d", f->name, got, !!(mh.msg_flags & MSG_TRUNC));
    close(s);

    /* Connected: send without an address; the receiver sees the connected socket's name. */
    int c = fsock(f, SOCK_DGRAM);
    const char *cr = res(connect(c, SA(&ra), len_of(&ra)));
    sent = res(send(c, "hi", 2, 0));
    flen = sizeof from;
    wait_for(r, POLLIN, WAIT_MS);
    got = res(recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, SA(&from), &flen));
    sn = name_of(c);
    addr_t cp = peer_of(c);
    say("udp-connected-send.%s: connect=%s send=%s recvfrom=%s from==sender=%s peer==target=%s",
        f->name, cr, sent, got, yes(same(&from, &sn)), yes(same(&cp, &ra)));
    /* An address given to sendto() overrides the connected one. */
    addr_t ya;
    int y = fbound(f, SOCK_DGRAM, f->loop, 0, &ya);
    sent = res(sendto(c, "other", 5, 0, SA(&ya), len_of(&ya)));
    say("udp-connected-sendto-other.%s: sendto=%s got=%s", f->name, sent,
        next_datagram(y, WAIT_MS));
    close(y);

    /* A connected socket takes datagrams from its peer only; what was queued before the
     * connect stays queued. */
    addr_t aa, ba, xa;
    int A = fbound(f, SOCK_DGRAM, f->loop, 0, &aa);
    int B = fbound(f, SOCK_DGRAM, f->loop, 0, &ba);
    int X = fbound(f, SOCK_DGRAM, f->loop, 0, &xa);
    sendto(X, "from-x-early", 12, 0, SA(&aa), len_of(&aa));
    wait_for(A, POLLIN, WAIT_MS);
    if (connect(A, SA(&ba), len_of(&ba))) die("connect");
    sendto(X, "from-x-late", 11, 0, SA(&aa), len_of(&aa));
    sendto(B, "from-b", 6, 0, SA(&aa), len_of(&aa));
    const char *first = next_datagram(A, WAIT_MS);
    const char *second = next_datagram(A, WAIT_MS);
    const char *third = next_datagram(A, 200);
    say("udp-connected-filter.%s: %s %s %s", f->name, first, second, third);
    close(A);
    close(B);
    close(X);

    /* AF_UNSPEC dissolves the association. */
    addr_t u;
    memset(&u, 0, sizeof u);
    u.ss_family = AF_UNSPEC;
    cr = res(connect(c, SA(&u), sizeof(struct sockaddr)));
    sent = res(send(c, "x", 1, 0));
    socklen_t ulen = sizeof u;
    say("udp-connect-unspec.%s: %s send=%s getpeername=%s", f->name, cr, sent,
        res(getpeername(c, SA(&u), &ulen)));
    close(c);

    s = fsock(f, SOCK_DGRAM);
    say("udp-send-unconnected.%s: %s", f->name, res(send(s, "x", 1, 0)));
    socklen_t len = mkaddr(f->family, f->loop, 0, &to);
    say("udp-sendto-port0.%s: %s", f->name, res(sendto(s, "x", 1, 0, SA(&to), len)));
    mkaddr(f->family, f->remote, 53, &to);
    say("udp-sendto-unreachable.%s: %s", f->name, res(sendto(s, "x", 1, 0, SA(&to), len)));
    close(s);

    /* To a closed port: the ICMP port unreachable is an error for a connected socket only,
     * taken by the next call, once. */
    int port = free_port(f, SOCK_DGRAM);
    c = fsock(f, SOCK_DGRAM);
    mkaddr(f->family, f->loop, port, &to);
    cr = res(connect(c, SA(&to), len));
    sent = res(send(c, "x", 1, 0));
    int ev = wait_for(c, POLLIN, WAIT_MS);
    got = res(recv(c, buf, sizeof buf, MSG_DONTWAIT));
    say("udp-refused.%s: connect=%s send=%s pollerr=%d recv=%s then=%s", f->name, cr, sent,
        !!(ev & POLLERR), got, res(recv(c, buf, sizeof buf, MSG_DONTWAIT)));
    close(c);
    s = fsock(f, SOCK_DGRAM);
    sent = res(sendto(s, "x", 1, 0, SA(&to), len));
    ev = wait_for(s, POLLIN, 200);
    say("udp-unconnected-to-closed.%s: sendto=%s revents=%#x recv=%s", f->name, sent, ev,
        res(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    close(s);

    c = fsock(f, SOCK_DGRAM);
    mkaddr(f->family, f->remote, 53, &to);
    say("udp-connect-unreachable.%s: %s", f->name, res(connect(c, SA(&to), len)));
    close(c);
    close(r);
}

/* ---- socket options ---------------------------------------------------------------------- */

static void ids(const char *what, int family, int type) {
    int s = socket(family, type, 0);
    if (s < 0) die("socket");
    say("sockopt-ids.%s: type=%d domain=%s protocol=%d", what, getint(s, SOL_SOCKET, SO_TYPE),
        family_str(getint(s, SOL_SOCKET, SO_DOMAIN)), getint(s, SOL_SOCKET, SO_PROTOCOL));
    close(s);
}

/* A boolean option: its default, the setsockopt result, what reads back; then off again. */
static void flag(const char *what, int s, int level, int name) {
    int before = getint(s, level, name);
    int one = 5;  /* any non-zero value turns a flag on */
    const char *r = res(setsockopt(s, level, name, &one, sizeof one));
    int after = getint(s, level, name);
    int zero = 0;
    const char *r0 = res(setsockopt(s, level, name, &zero, sizeof zero));
    say("sockopt-%s: default=%d set=%s get=%d clear=%s get=%d", what, before, r, after, r0,
        getint(s, level, name));
}

/* getsockopt's and setsockopt's results for an option, with a valid int buffer. */
static void option_errors(const char *what, int s, int level, int name) {
    int v = 0;
    socklen_t len = sizeof v;
    const char *g = res(getsockopt(s, level, name, &v, &len));
    v = 1;
    say("sockopt-%s: get=%s set=%s", what, g, res(setsockopt(s, level, name, &v, sizeof v)));
}

static void check_sockopts(void) {
    ids("tcp4", AF_INET, SOCK_STREAM);
    ids("udp4", AF_INET, SOCK_DGRAM);
    ids("tcp6", AF_INET6, SOCK_STREAM);
    ids("udp6", AF_INET6, SOCK_DGRAM);
    ids("unix-stream", AF_UNIX, SOCK_STREAM);
    ids("unix-dgram", AF_UNIX, SOCK_DGRAM);
    ids("unix-seqpacket", AF_UNIX, SOCK_SEQPACKET);

    int t4 = socket(AF_INET, SOCK_STREAM, 0), t6 = socket(AF_INET6, SOCK_STREAM, 0);
    int u4 = socket(AF_INET, SOCK_DGRAM, 0), ux = socket(AF_UNIX, SOCK_STREAM, 0);
    if (t4 < 0 || t6 < 0 || u4 < 0 || ux < 0) die("socket");
    flag("reuseaddr.tcp4", t4, SOL_SOCKET, SO_REUSEADDR);
    flag("reuseaddr.udp4", u4, SOL_SOCKET, SO_REUSEADDR);
    flag("reuseport.tcp4", t4, SOL_SOCKET, SO_REUSEPORT);
    flag("keepalive.tcp4", t4, SOL_SOCKET, SO_KEEPALIVE);
    flag("keepalive.tcp6", t6, SOL_SOCKET, SO_KEEPALIVE);
    flag("nodelay.tcp4", t4, IPPROTO_TCP, TCP_NODELAY);
    flag("nodelay.tcp6", t6, IPPROTO_TCP, TCP_NODELAY);
    flag("v6only.tcp6", t6, IPPROTO_IPV6, IPV6_V6ONLY);
    flag("passcred.unix", ux, SOL_SOCKET, SO_PASSCRED);
    say("sockopt-error: tcp4=%d udp4=%d unix=%d", getint(t4, SOL_SOCKET, SO_ERROR),
        getint(u4, SOL_SOCKET, SO_ERROR), getint(ux, SOL_SOCKET, SO_ERROR));
    say("sockopt-acceptconn: tcp4=%d udp4=%d unix=%d", getint(t4, SOL_SOCKET, SO_ACCEPTCONN),
        getint(u4, SOL_SOCKET, SO_ACCEPTCONN), getint(ux, SOL_SOCKET, SO_ACCEPTCONN));
    say("sockopt-set-error: %s", res(setsockopt(t4, SOL_SOCKET, SO_ERROR, &(int){1}, sizeof(int))));

    /* Linux doubles what it is given, for its own overhead (socket(7)), with a floor. */
    const char *r = res(setsockopt(t4, SOL_SOCKET, SO_RCVBUF, &(int){65536}, sizeof(int)));
    say("sockopt-rcvbuf.tcp4: set=%s get=%d", r, getint(t4, SOL_SOCKET, SO_RCVBUF));
    r = res(setsockopt(u4, SOL_SOCKET, SO_RCVBUF, &(int){65536}, sizeof(int)));
    say("sockopt-rcvbuf.udp4: set=%s get=%d", r, getint(u4, SOL_SOCKET, SO_RCVBUF));
    r = res(setsockopt(ux, SOL_SOCKET, SO_RCVBUF, &(int){65536}, sizeof(int)));
    say("sockopt-rcvbuf.unix: set=%s get=%d", r, getint(ux, SOL_SOCKET, SO_RCVBUF));
    r = res(setsockopt(t4, SOL_SOCKET, SO_RCVBUF, &(int){1}, sizeof(int)));
    say("sockopt-rcvbuf-tiny.tcp4: set=%s get=%d", r, getint(t4, SOL_SOCKET, SO_RCVBUF));

    /* Lengths: a longer buffer is cut to an int, a shorter one gets what fits. */
    long long big = -1;
    socklen_t len = sizeof big;
    r = res(getsockopt(t4, SOL_SOCKET, SO_TYPE, &big, &len));
    say("sockopt-long-optlen: %s optlen=%d", r, (int)len);
    unsigned char small[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    len = 1;
    r = res(getsockopt(t4, SOL_SOCKET, SO_TYPE, small, &len));
    say("sockopt-short-optlen: %s optlen=%d byte0=%d byte1-untouched=%d", r, (int)len, small[0],
        small[1] == 0xaa);
    len = 1;
    r = res(getsockopt(t4, IPPROTO_TCP, TCP_NODELAY, small, &len));
    say("sockopt-short-optlen.nodelay: %s optlen=%d", r, (int)len);
    int v;
    len = (socklen_t)-1;
    say("sockopt-negative-optlen: %s", res(getsockopt(t4, SOL_SOCKET, SO_TYPE, &v, &len)));
    short sv = 1;
    say("sockopt-set-short.reuseaddr: %s",
        res(setsockopt(t4, SOL_SOCKET, SO_REUSEADDR, &sv, sizeof sv)));
    say("sockopt-set-short.nodelay: %s",
        res(setsockopt(t4, IPPROTO_TCP, TCP_NODELAY, &sv, sizeof sv)));

    option_errors("unknown.sol-socket", t4, SOL_SOCKET, 9999);
    option_errors("unknown.tcp", t4, IPPROTO_TCP, 9999);
    option_errors("unknown.ip", t4, IPPROTO_IP, 9999);
    option_errors("unknown.ipv6", t6, IPPROTO_IPV6, 9999);
    option_errors("unknown-level.tcp4", t4, 9999, 1);
    option_errors("unknown-level.udp4", u4, 9999, 1);
    option_errors("nodelay.udp4", u4, IPPROTO_TCP, TCP_NODELAY);
    option_errors("nodelay.unix", ux, IPPROTO_TCP, TCP_NODELAY);
    option_errors("v6only.tcp4", t4, IPPROTO_IPV6, IPV6_V6ONLY);
    option_errors("unknown.tcp-level-on-unix", ux, IPPROTO_TCP, 9999);

    /* The descriptor is looked at before the option. */
    int p[2];
    if (pipe(p)) die("pipe");
    option_errors("not-socket", p[0], SOL_SOCKET, SO_TYPE);
    option_errors("unknown.not-socket", p[0], SOL_SOCKET, 9999);
    close(p[0]);
    close(p[1]);
    option_errors("bad-fd", 999, SOL_SOCKET, SO_TYPE);
    option_errors("unknown.bad-fd", 999, SOL_SOCKET, 9999);
    close(t4);
    close(t6);
    close(u4);
    close(ux);
}

/* ---- unix sockets ------------------------------------------------------------------------ */

static char dir[200];

static socklen_t unix_path(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name) >= (int)sizeof a->sun_path)
        die("unix socket path too long");
    return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

/* An abstract name, made unique to this process so that two runs never meet. */
static socklen_t unix_abstract(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "net-conformance-%d-%s",
                     (int)getpid(), name);
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static void put(int fd, const char *text) {
    ssize_t n = strlen(text);
    if (write(fd, text, n) != n) die("write");
}

static void check_unix_pairs(void) {
    int sv[2];
    char buf[16];
    say("socketpair-unix-stream: %s", res(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)));
    put(sv[0], "abc");
    put(sv[0], "defgh");
    say("unix-stream-coalesces: read=%s", res(read(sv[1], buf, sizeof buf)));
    close(sv[0]);
    say("unix-stream-eof: read=%s", res(read(sv[1], buf, sizeof buf)));
    say("unix-stream-write-closed: %s", res(send(sv[1], "x", 1, MSG_NOSIGNAL)));
    close(sv[1]);

    for (int i = 0; i < 2; i++) {
        int type = i ? SOCK_SEQPACKET : SOCK_DGRAM;
        const char *name = i ? "seqpacket" : "dgram";
        say("socketpair-unix-%s: %s", name, res(socketpair(AF_UNIX, type, 0, sv)));
        put(sv[0], "abc");
        put(sv[0], "defgh");
        const char *a = res(read(sv[1], buf, sizeof buf));
        say("unix-%s-boundaries: %s %s", name, a, res(read(sv[1], buf, sizeof buf)));
        put(sv[0], "defgh");
        struct iovec iov = {buf, 2};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        a = res(recvmsg(sv[1], &mh, 0));
        say("unix-%s-truncated: %s MSG_TRUNC=%d", name, a, !!(mh.msg_flags & MSG_TRUNC));
        say("unix-%s-empty: %s", name, res(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
        close(sv[0]);
        say("unix-%s-peer-closed: %s", name, res(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
        close(sv[1]);
    }
    say("socketpair-unix-bad-type: %s", res(socketpair(AF_UNIX, 1000, 0, sv)));
}

static void check_unix_paths(void) {
    struct sockaddr_un a, b, n;
    socklen_t len = unix_path(&a, "stream.sock");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-bind-path: %s", res(bind(s, (void *)&a, len)));
    struct stat st;
    memset(&st, 0, sizeof st);
    const char *r = res(stat(a.sun_path, &st));
    say("unix-bind-path-stat: %s socket=%d", r, S_ISSOCK(st.st_mode));
    socklen_t nlen = sizeof n;
    memset(&n, 0, sizeof n);
    getsockname(s, (void *)&n, &nlen);
    say("unix-getsockname-path: same=%d addrlen==bound=%d", !strcmp(n.sun_path, a.sun_path),
        nlen == len);
    socklen_t blen = unix_path(&b, "other.sock");
    say("unix-bind-bound: %s", res(bind(s, (void *)&b, blen)));
    int t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-bind-inuse: %s", res(bind(t, (void *)&a, len)));
    close(t);

    t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-connect-not-listening: %s", res(connect(t, (void *)&a, len)));
    close(t);
    say("unix-listen: %s", res(listen(s, 4)));
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-connect-path: %s", res(connect(t, (void *)&a, len)));
    struct sockaddr_un p;
    socklen_t plen = sizeof p;
    memset(&p, 0, sizeof p);
    int c = accept(s, (void *)&p, &plen);
    say("unix-accept: %s peer-addrlen=%d", fdres(c), (int)plen);
    nlen = sizeof n;
    memset(&n, 0, sizeof n);
    getpeername(t, (void *)&n, &nlen);
    say("unix-getpeername-path: same=%d", !strcmp(n.sun_path, a.sun_path));
    nlen = sizeof n;
    r = res(getsockname(t, (void *)&n, &nlen));
    say("unix-getsockname-unbound: %s addrlen=%d", r, (int)nlen);
    close(c);
    close(t);

    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    say("unix-connect-wrong-type: %s", res(connect(d, (void *)&a, len)));
    say("unix-listen-dgram: %s", res(listen(d, 4)));
    close(d);
    close(s);

    say("unix-unlink: %s", res(unlink(a.sun_path)));
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-connect-unlinked: %s", res(connect(t, (void *)&a, len)));
    say("unix-connect-missing: %s", res(connect(t, (void *)&b, blen)));
    close(t);

    /* A name that is a regular file: no socket behind it. */
    int fd = open(b.sun_path, O_CREAT | O_WRONLY, 0644);
    close(fd);
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-connect-regular-file: %s", res(connect(t, (void *)&b, blen)));
    say("unix-bind-existing-file: %s", res(bind(t, (void *)&b, blen)));
    close(t);
    unlink(b.sun_path);
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    len = unix_path(&a, "no-such-dir/x.sock");
    say("unix-bind-missing-dir: %s", res(bind(t, (void *)&a, len)));
    close(t);

    /* Datagrams to a path, from an unnamed sender. */
    len = unix_path(&a, "dgram.sock");
    d = socket(AF_UNIX, SOCK_DGRAM, 0);
    say("unix-bind-dgram: %s", res(bind(d, (void *)&a, len)));
    int e = socket(AF_UNIX, SOCK_DGRAM, 0);
    r = res(sendto(e, "hello", 5, 0, (void *)&a, len));
    char buf[16];
    plen = sizeof p;
    const char *got = res(recvfrom(d, buf, sizeof buf, 0, (void *)&p, &plen));
    say("unix-dgram-sendto: sendto=%s recvfrom=%s fromlen=%d", r, got, (int)plen);
    blen = unix_path(&b, "missing.sock");
    say("unix-dgram-sendto-missing: %s", res(sendto(e, "x", 1, 0, (void *)&b, blen)));
    close(e);
    close(d);
    unlink(a.sun_path);
}

static void check_unix_abstract(void) {
    struct sockaddr_un a, n;
    socklen_t len = unix_abstract(&a, "listener");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-abstract-bind: %s", res(bind(s, (void *)&a, len)));
    socklen_t nlen = sizeof n;
    memset(&n, 0, sizeof n);
    getsockname(s, (void *)&n, &nlen);
    say("unix-abstract-getsockname: same=%d", nlen == len && !memcmp(&n, &a, len));
    int t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-abstract-bind-inuse: %s", res(bind(t, (void *)&a, len)));
    close(t);
    listen(s, 4);
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-abstract-connect: %s", res(connect(t, (void *)&a, len)));
    int c = accept(s, NULL, NULL);
    say("unix-abstract-accept: %s", fdres(c));
    close(c);
    close(t);
    close(s);
    t = socket(AF_UNIX, SOCK_STREAM, 0);
    say("unix-abstract-connect-closed: %s", res(connect(t, (void *)&a, len)));
    len = unix_abstract(&a, "nobody");
    say("unix-abstract-connect-missing: %s", res(connect(t, (void *)&a, len)));
    close(t);

    /* bind() with only a family picks an abstract name of five hex digits. */
    s = socket(AF_UNIX, SOCK_DGRAM, 0);
    a.sun_family = AF_UNIX;
    const char *r = res(bind(s, (void *)&a, sizeof(sa_family_t)));
    nlen = sizeof n;
    memset(&n, 0xff, sizeof n);
    getsockname(s, (void *)&n, &nlen);
    say("unix-autobind: %s addrlen=%d abstract=%d", r, (int)nlen, n.sun_path[0] == 0);
    close(s);
}

/* A descriptor of a file in DIR, passed over a stream pair and read through the copy; then
 * passed to a receiver with no room for it. */
static void check_unix_rights(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/passed.txt", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) die("open");
    if (write(fd, "hello", 5) != 5) die("write");
    close(fd);
    fd = open(path, O_RDONLY);
    if (fd < 0) die("open");

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    for (int round = 0; round < 2; round++) {
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
        memset(&u, 0, sizeof u);
        struct iovec iov = {"x", 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = sizeof u.buf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        const char *sent = res(sendmsg(sv[0], &mh, 0));

        char data[4];
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } in;
        memset(&in, 0, sizeof in);
        struct iovec riov = {data, sizeof data};
        /* The second round leaves no room for the descriptor: it is dropped, MSG_CTRUNC. */
        struct msghdr rh = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = in.buf,
                            .msg_controllen = round ? sizeof(struct cmsghdr) : sizeof in.buf};
        const char *got = res(recvmsg(sv[1], &rh, MSG_CMSG_CLOEXEC));
        struct cmsghdr *rc = CMSG_FIRSTHDR(&rh);
        int ok = rc && rc->cmsg_level == SOL_SOCKET && rc->cmsg_type == SCM_RIGHTS &&
                 rc->cmsg_len == CMSG_LEN(sizeof(int));
        if (round) {
            say("unix-scm-rights-ctrunc: sendmsg=%s recvmsg=%s MSG_CTRUNC=%d cmsg=%d", sent, got,
                !!(rh.msg_flags & MSG_CTRUNC), ok);
            continue;
        }
        int rfd = -1;
        if (ok) memcpy(&rfd, CMSG_DATA(rc), sizeof rfd);
        int received = rfd >= 0 && rfd != fd;
        close(fd);  /* the received descriptor holds the file on its own */
        char text[16] = {0};
        struct stat st;
        memset(&st, 0, sizeof st);
        const char *rd = res(pread(rfd, text, sizeof text - 1, 0));
        const char *sr = res(fstat(rfd, &st));
        say("unix-scm-rights: sendmsg=%s recvmsg=%s cmsg=%d new-fd=%d read=%s text=%s fstat=%s "
            "regular=%d size=%ld cloexec=%d",
            sent, got, ok, received, rd, text, sr, S_ISREG(st.st_mode),
            (long)st.st_size, cloexec(rfd));
        fd = rfd;
    }
    close(fd);
    close(sv[0]);
    close(sv[1]);
    unlink(path);
}

/* The credentials a datagram arrives with on a SO_PASSCRED socket: "pid=1 uid=1 gid=1" when
 * they are WANT_PID's, getuid()'s and getgid()'s, or "none". */
static const char *recv_creds(int fd, pid_t want_pid) {
    char data[8];
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(struct ucred))]; } in;
    memset(&in, 0, sizeof in);
    struct iovec iov = {data, sizeof data};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = in.buf,
                        .msg_controllen = sizeof in.buf};
    ssize_t n = recvmsg(fd, &mh, 0);
    if (n < 0) return res(n);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_CREDENTIALS) return "none";
    struct ucred uc;
    memcpy(&uc, CMSG_DATA(cm), sizeof uc);
    char *s = scratch();
    snprintf(s, 96, "pid=%d uid=%d gid=%d", uc.pid == want_pid, uc.uid == getuid(),
             uc.gid == getgid());
    return s;
}

static void check_unix_credentials(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) die("socketpair");
    send(sv[0], "x", 1, 0);
    say("unix-scm-credentials-off: %s", recv_creds(sv[1], getpid()));
    say("unix-passcred: %s",
        res(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int))));
    send(sv[0], "x", 1, 0);
    say("unix-scm-credentials-self: %s", recv_creds(sv[1], getpid()));

    /* Explicit credentials, one's own: allowed without privilege. */
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(struct ucred))]; } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {"x", 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred mine = {getpid(), getuid(), getgid()};
    memcpy(CMSG_DATA(cm), &mine, sizeof mine);
    const char *r = res(sendmsg(sv[0], &mh, 0));
    say("unix-scm-credentials-explicit: sendmsg=%s %s", r, recv_creds(sv[1], getpid()));

    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        send(sv[0], "c", 1, 0);
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    say("unix-scm-credentials-child: %s exited=%d", recv_creds(sv[1], child),
        WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(sv[0]);
    close(sv[1]);
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: net_conformance DIR\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    alarm(20);
    snprintf(dir, sizeof dir, "%s/net_conformance.XXXXXX", argv[1]);
    if (!mkdtemp(dir)) die("mkdtemp");

    check_socket();
    for (int i = 0; i < NFAMS; i++) check_bind(&FAMS[i]);
    check_bind_inet();
    for (int i = 0; i < NFAMS; i++) check_listen(&FAMS[i]);
    check_accept_misc();
    for (int i = 0; i < NFAMS; i++) check_connect(&FAMS[i]);
    check_dual_stack();
    for (int i = 0; i < NFAMS; i++) check_shutdown(&FAMS[i]);
    check_shutdown_misc();
    for (int i = 0; i < NFAMS; i++) check_udp(&FAMS[i]);
    check_sockopts();
    check_unix_pairs();
    check_unix_paths();
    check_unix_abstract();
    check_unix_rights();
    check_unix_credentials();

    if (rmdir(dir)) die("rmdir");
    say("done");
    return 0;
}
