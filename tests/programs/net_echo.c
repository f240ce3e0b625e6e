/* net_echo: a TCP echo server and many concurrent clients in one process, over loopback.
 *
 *   net_echo [CLIENTS [BYTES [ADDR]]]     defaults: 200 clients, 1 MiB each, 127.0.0.1
 *
 * The server is one thread multiplexing every connection with poll(2) on non-blocking
 * sockets; each client is a thread. All clients connect and then wait at a barrier, so that
 * every connection is open at once before any data moves. A client sends BYTES of a pattern
 * unique to it in chunks of CHUNK and reads each chunk's echo back before sending the next,
 * which keeps at most one chunk in flight per connection (no deadlock on full buffers), and
 * checks every byte. Prints "ok CLIENTS BYTES" and exits 0, or names the first failure on
 * stderr and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 65536

static int clients = 200;
static long bytes = 1 << 20;
static struct sockaddr_storage server_addr;
static socklen_t server_len;
static pthread_barrier_t connected;

static void die(const char *what)
{
    fprintf(stderr, "net_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static unsigned char pattern(int client, long off)
{
    return (unsigned char)((client * 131 + off) % 251);
}

struct conn {
    int fd;
    char buf[CHUNK];
    size_t len, off;    /* bytes read and not yet echoed: buf[off..len) */
};

/* Echoes on every connection until each of `clients` connections has been closed by its peer. */
static void *server(void *arg)
{
    int lfd = *(int *)arg, open_conns = 0, done = 0;
    struct conn *conns = calloc(clients, sizeof *conns);
    struct pollfd *fds = calloc(clients + 1, sizeof *fds);
    if (!conns || !fds) die("calloc");
    int accepted = 0;
    while (done < clients) {
        int n = 0;
        if (accepted < clients) fds[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
        int base = n;
        for (int i = 0; i < accepted; i++)
            fds[n++] = (struct pollfd){ .fd = conns[i].fd,
                                        .events = conns[i].fd < 0 ? 0 : conns[i].len ? POLLOUT : POLLIN };
        if (poll(fds, n, 30000) <= 0) die("server poll (timeout or error)");
        if (base && (fds[0].revents & POLLIN)) {
            int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
            if (fd < 0 && errno != EAGAIN) die("accept4");
            if (fd >= 0) {
                conns[accepted].fd = fd;
                conns[accepted].len = conns[accepted].off = 0;
                accepted++;
                open_conns++;
            }
        }
        for (int i = 0; i < n - base; i++) {
            struct conn *c = &conns[i];
            if (c->fd < 0 || !fds[base + i].revents) continue;
            if (c->len == 0) {
                ssize_t r = read(c->fd, c->buf, CHUNK);
                if (r < 0 && errno == EAGAIN) continue;
                if (r < 0) die("server read");
                if (r == 0) {
                    close(c->fd);
                    c->fd = -1;
                    open_conns--;
                    done++;
                    continue;
                }
                c->len = r;
                c->off = 0;
            }
            ssize_t w = write(c->fd, c->buf + c->off, c->len - c->off);
            if (w < 0 && errno == EAGAIN) continue;
            if (w < 0) die("server write");
            c->off += w;
            if (c->off == c->len) c->len = c->off = 0;
        }
    }
    free(conns);
    free(fds);
    return NULL;
}

static void *client(void *arg)
{
    int id = (int)(long)arg;
    static char err[64];
    char *out = malloc(CHUNK), *in = malloc(CHUNK);
    int fd = socket(server_addr.ss_family, SOCK_STREAM, 0);
    if (!out || !in || fd < 0) die("client socket");
    if (connect(fd, (struct sockaddr *)&server_addr, server_len) < 0) die("client connect");
    pthread_barrier_wait(&connected);
    for (long sent = 0; sent < bytes;) {
        size_t len = bytes - sent < CHUNK ? bytes - sent : CHUNK;
        for (size_t i = 0; i < len; i++) out[i] = pattern(id, sent + i);
        for (size_t w = 0; w < len;) {
            ssize_t r = write(fd, out + w, len - w);
            if (r <= 0) die("client write");
            w += r;
        }
        for (size_t got = 0; got < len;) {
            ssize_t r = read(fd, in + got, len - got);
            if (r < 0) die("client read");
            if (r == 0) {
                errno = 0;
                snprintf(err, sizeof err, "client %d: EOF after %ld bytes", id, sent + (long)got);
                die(err);
            }
            got += r;
        }
        if (memcmp(in, out, len) != 0) {
            errno = 0;
            snprintf(err, sizeof err, "client %d: wrong bytes echoed near offset %ld", id, sent);
            die(err);
        }
        sent += len;
    }
    close(fd);
    free(out);
    free(in);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1) clients = atoi(argv[1]);
    if (argc > 2) bytes = atol(argv[2]);
    const char *addr = argc > 3 ? argv[3] : "127.0.0.1";
    if (clients <= 0 || bytes <= 0) {
        fprintf(stderr, "usage: net_echo [CLIENTS [BYTES [ADDR]]]\n");
        return 2;
    }

    struct sockaddr_in *in4 = (struct sockaddr_in *)&server_addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&server_addr;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        server_len = sizeof *in4;
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        server_len = sizeof *in6;
    } else {
        fprintf(stderr, "net_echo: bad address %s\n", addr);
        return 2;
    }
    int lfd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0) die("socket");
    if (bind(lfd, (struct sockaddr *)&server_addr, server_len) < 0) die("bind");
    if (listen(lfd, clients) < 0) die("listen");
    if (getsockname(lfd, (struct sockaddr *)&server_addr, &server_len) < 0) die("getsockname");

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_barrier_init(&connected, NULL, clients);
    pthread_t srv, *threads = calloc(clients, sizeof *threads);
    if (!threads) die("calloc");
    if (pthread_create(&srv, &attr, server, &lfd)) die("pthread_create");
    for (int i = 0; i < clients; i++)
        if ((errno = pthread_create(&threads[i], &attr, client, (void *)(long)i))) die("pthread_create");
    for (int i = 0; i < clients; i++) pthread_join(threads[i], NULL);
    pthread_join(srv, NULL);
    printf("ok %d %ld\n", clients, bytes);
    return 0;
}
