/* What the programs that compare a native run with a sandboxed one share: output one whole
 * line at a time, and errno names. Included by the conformance and escape programs. */
#ifndef ORACLE_H
#define ORACLE_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* One line to `fd`, one write, unbuffered: a forked child never inherits unprinted output. */
static inline void vsay_to(int fd, const char *fmt, va_list ap) {
    char buf[512];
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(fd, buf, n) != n) _exit(120);
}

static inline void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay_to(1, fmt, ap);
    va_end(ap);
}

static inline void die(const char *what) {
    say("FATAL %s: %s", what, strerror(errno));
    _exit(121);
}

/* Copy what a child writes to pipe `fd` (its lines, made with raw writes where it may call
 * nothing else) to our output, until it closes its end; then close ours. */
static inline void relay(int fd) {
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(1, buf, n) != n) die("write");
    close(fd);
}

/* Short strings live in a ring of buffers, so that a line can hold several. */
static inline char *scratch(void) {
    static char ring[32][96];
    static int next;
    return ring[next++ % 32];
}

/* "ENOENT", as glibc names it (EOPNOTSUPP for ENOTSUP, EAGAIN for EWOULDBLOCK, as Linux's
 * are the same numbers); "errno<n>" for a number it has no name for. */
static inline const char *errname(int e) {
    const char *name = strerrorname_np(e);
    if (name) return name;
    char *s = scratch();
    snprintf(s, 96, "errno%d", e);
    return s;
}

#endif
