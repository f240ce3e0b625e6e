/* Escape attempts through the network, one subcommand per run:
 *
 *   net_escape policy                  every forbidden socket family, protocol and option,
 *                                      and no-op changes to lo that need CAP_NET_ADMIN
 *   net_escape unix-connect NAME       connect to the abstract unix names NAME and NAME-dgram
 *   net_escape unix-listen NAME        bind them, print "listening", then report who came
 *                                      once stdin closes
 *   net_escape tcp ADDR PORT           connect and read the server's one-line banner
 *   net_escape udp ADDR PORT TOKEN     send TOKEN three times
 *
 * Every check prints one line, `name: ok [detail]` or `name: ERRNO`, which
 * tests/security/test_net_escapes.py compares with what the sandbox must answer.
 *
 * Socket calls go through syscall(2) so that an argument can carry bits above the 32 an int
 * has: the kernel reads only the low 32, so a sandbox that decides on all 64 would judge a
 * different request from the one the kernel runs. Every payload is harmless even if it
 * reached a privileged host kernel: a netfilter table replacement with no counters is
 * EINVAL there, a socket filter only filters the guest's own socket, and the changes to lo
 * set what is already set. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "oracle.h"

/* From the kernel's uapi headers, which a libc-only build may lack. */
#define AF_X25_ 9
#define AF_KEY_ 15
#define AF_RDS_ 21
#define AF_CAN_ 29
#define AF_TIPC_ 30
#define AF_BLUETOOTH_ 31
#define AF_ALG_ 38
#define AF_VSOCK_ 40
#define AF_SMC_ 43
#define AF_XDP_ 44
#define AF_MCTP_ 45
#define NETLINK_ROUTE_ 0
#define NETLINK_SOCK_DIAG_ 4
#define NETLINK_XFRM_ 6
#define NETLINK_AUDIT_ 9
#define NETLINK_NETFILTER_ 12
#define NETLINK_KOBJECT_UEVENT_ 15
#define NETLINK_GENERIC_ 16
#define ETH_P_ALL_ 0x0003
#define IPT_SO_SET_REPLACE 64       /* IPT_BASE_CTL, also IPT_SO_GET_INFO */
#define IPT_SO_SET_ADD_COUNTERS 65  /* also IPT_SO_GET_ENTRIES */
#define IP6T_SO_SET_REPLACE 64
#define ARPT_SO_SET_REPLACE 96
#define EBT_SO_SET_ENTRIES 128
#define IP_VS_SO_SET_ADD 1090
#define SO_ATTACH_FILTER_ 26
#define SO_ATTACH_BPF_ 50
#define TCP_ULP_ 31
#define IP_MSFILTER_ 41
#define MCAST_JOIN_GROUP_ 42
#define SOL_PACKET_ 263
#define PACKET_ADD_MEMBERSHIP_ 1
#define PACKET_STATISTICS_ 6
#define SOL_ALG_ 279
#define ALG_SET_KEY_ 1
#define SOL_TLS_ 282
#define TLS_TX_ 1

#define HIGH (1L << 32)  /* invisible to the kernel in an int argument */
#define WAIT_MS 10000    /* for any one network event; the tests time out the whole run */

static void fail(const char *name) { printf("%s: %s\n", name, errname(errno)); }

/* --- policy ---------------------------------------------------------------------------- */

static void try_socket(const char *name, long family, long type, long protocol)
{
    long fd = syscall(SYS_socket, family, type, protocol);
    if (fd < 0) {
        fail(name);
        return;
    }
    printf("%s: ok\n", name);
    close(fd);
}

static void try_socketpair(const char *name, long family, long type, long protocol)
{
    int sv[2];
    if (syscall(SYS_socketpair, family, type, protocol, sv) < 0) {
        fail(name);
        return;
    }
    printf("%s: ok\n", name);
    close(sv[0]);
    close(sv[1]);
}

/* A fresh socket for one option check, or -1 after printing why there is none. */
static int fresh(const char *name, int family, int type)
{
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        printf("%s: socket %s\n", name, errname(errno));
    }
    return fd;
}

static void try_set(const char *name, int family, int type, long level, long optname,
                    const void *value, socklen_t len)
{
    int fd = fresh(name, family, type);
    if (fd < 0) return;
    if (syscall(SYS_setsockopt, fd, level, optname, value, (long)len) < 0)
        fail(name);
    else
        printf("%s: ok\n", name);
    close(fd);
}

static void try_get(const char *name, int family, int type, long level, long optname,
                    const void *request, socklen_t len)
{
    char buf[512] = {0};
    int fd = fresh(name, family, type);
    if (fd < 0) return;
    if (request) memcpy(buf, request, len);
    if (syscall(SYS_getsockopt, fd, level, optname, buf, &len) < 0)
        fail(name);
    else
        printf("%s: ok\n", name);
    close(fd);
}

/* Sets an int option to VALUE and reads it back: "ok <read back>". */
static void try_int_option(const char *name, int family, int type, int level, int optname,
                           int value)
{
    int fd = fresh(name, family, type), got = -1;
    socklen_t len = sizeof got;
    if (fd < 0) return;
    if (setsockopt(fd, level, optname, &value, sizeof value) < 0 ||
        getsockopt(fd, level, optname, &got, &len) < 0)
        fail(name);
    else
        printf("%s: ok %d\n", name, got);
    close(fd);
}

/* An RTM_SETLINK that changes nothing on interface 1 (lo): "ok" if the kernel would have
 * done it, else the errno of its answer. The guest has no CAP_NET_ADMIN, and with
 * --network=host the socket is the Sentry's, in the host's namespace: the kernel must still
 * judge the guest that sends, not the Sentry that opened it. */
static void try_setlink_lo(const char *name)
{
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
    } req = {
        .nh = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_SETLINK,
               .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1},
        .ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 1},
    };
    char buf[4096];
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE_);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (fd < 0 || send(fd, &req, sizeof req, 0) < 0) {
        fail(name);
    } else if (poll(&p, 1, WAIT_MS) != 1) {
        printf("%s: no answer\n", name);
    } else {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        struct nlmsghdr *nh = (struct nlmsghdr *)buf;
        if (n < 0) {
            fail(name);
        } else if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) ||
                   nh->nlmsg_type != NLMSG_ERROR) {
            printf("%s: unexpected answer\n", name);
        } else if (((struct nlmsgerr *)NLMSG_DATA(nh))->error == 0) {
            printf("%s: ok\n", name);
        } else {
            errno = -((struct nlmsgerr *)NLMSG_DATA(nh))->error;
            fail(name);
        }
    }
    if (fd >= 0) close(fd);
}

/* SIOCSIFFLAGS setting lo's flags to what they are: "ok" if the kernel would have. */
static void try_setflags_lo(const char *name)
{
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    strcpy(ifr.ifr_name, "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        fail(name);
    else
        printf("%s: ok\n", name);
    if (fd >= 0) close(fd);
}

static int policy(void)
{
    /* Packet sockets, and raw IP, which reads and forges any traffic on an interface.
     * AF_INET with SOCK_PACKET is the kernel's legacy spelling of an AF_PACKET socket. */
    try_socket("packet_raw", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL_));
    try_socket("packet_dgram", AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL_));
    try_socket("packet_proto0", AF_PACKET, SOCK_RAW, 0);
    try_socket("packet_legacy", AF_PACKET, SOCK_PACKET, htons(ETH_P_ALL_));
    try_socket("packet_cloexec", AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
               htons(ETH_P_ALL_));
    try_socket("packet_high_family", HIGH | AF_PACKET, SOCK_RAW, htons(ETH_P_ALL_));
    try_socket("inet_sock_packet", AF_INET, SOCK_PACKET, htons(ETH_P_ALL_));
    try_socket("inet_raw_icmp", AF_INET, SOCK_RAW, IPPROTO_ICMP);
    try_socket("inet_raw_raw", AF_INET, SOCK_RAW, IPPROTO_RAW);
    try_socket("inet_raw_tcp", AF_INET, SOCK_RAW, IPPROTO_TCP);
    try_socket("inet_raw_udp", AF_INET, SOCK_RAW, IPPROTO_UDP);
    try_socket("inet_raw_cloexec", AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
               IPPROTO_ICMP);
    try_socket("inet_raw_high_type", AF_INET, HIGH | SOCK_RAW, IPPROTO_ICMP);
    try_socket("inet6_raw_icmpv6", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    try_socket("inet6_raw_raw", AF_INET6, SOCK_RAW, IPPROTO_RAW);
    try_socket("inet6_raw_tcp", AF_INET6, SOCK_RAW, IPPROTO_TCP);

    /* Netlink: routing only. */
    try_socket("netlink_route_raw", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE_);
    try_socket("netlink_route_dgram", AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE_);
    try_socket("netlink_route_cloexec", AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE_);
    static const struct { const char *name; int protocol; } netlinks[] = {
        {"netlink_netfilter", NETLINK_NETFILTER_}, {"netlink_kobject_uevent", NETLINK_KOBJECT_UEVENT_},
        {"netlink_audit", NETLINK_AUDIT_}, {"netlink_xfrm", NETLINK_XFRM_},
        {"netlink_generic", NETLINK_GENERIC_}, {"netlink_sock_diag", NETLINK_SOCK_DIAG_},
    };
    for (size_t i = 0; i < sizeof netlinks / sizeof *netlinks; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_raw", netlinks[i].name);
        try_socket(name, AF_NETLINK, SOCK_RAW, netlinks[i].protocol);
        snprintf(name, sizeof name, "%s_dgram", netlinks[i].name);
        try_socket(name, AF_NETLINK, SOCK_DGRAM, netlinks[i].protocol);
    }
    try_socket("netlink_netfilter_cloexec", AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
               NETLINK_NETFILTER_);
    try_socket("netlink_netfilter_high_proto", AF_NETLINK, SOCK_RAW, HIGH | NETLINK_NETFILTER_);
    try_socket("netlink_proto_negative", AF_NETLINK, SOCK_RAW, -1);

    /* Families the sandbox has no business with, each with a type it would take. */
    static const struct { const char *name; int family, type, protocol; } families[] = {
        {"bluetooth", AF_BLUETOOTH_, SOCK_STREAM, 3 /* BTPROTO_RFCOMM */},
        {"vsock", AF_VSOCK_, SOCK_STREAM, 0},
        {"alg", AF_ALG_, SOCK_SEQPACKET, 0},
        {"tipc", AF_TIPC_, SOCK_RDM, 0},
        {"key", AF_KEY_, SOCK_RAW, 2 /* PF_KEY_V2 */},
        {"rds", AF_RDS_, SOCK_SEQPACKET, 0},
        {"can", AF_CAN_, SOCK_RAW, 1 /* CAN_RAW */},
        {"x25", AF_X25_, SOCK_SEQPACKET, 0},
        {"appletalk", AF_APPLETALK, SOCK_DGRAM, 0},
        {"smc", AF_SMC_, SOCK_STREAM, 0},
        {"xdp", AF_XDP_, SOCK_RAW, 0},
        {"mctp", AF_MCTP_, SOCK_DGRAM, 0},
        {"family255", 255, SOCK_STREAM, 0},
    };
    for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_socket", families[i].name);
        try_socket(name, families[i].family, families[i].type, families[i].protocol);
        snprintf(name, sizeof name, "%s_socketpair", families[i].name);
        try_socketpair(name, families[i].family, families[i].type, families[i].protocol);
    }
    try_socket("alg_cloexec", AF_ALG_, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    try_socket("vsock_high_family", HIGH | AF_VSOCK_, SOCK_STREAM, 0);

    /* What must keep working, so that the refusals above are not everything refused. */
    try_socket("unix_stream", AF_UNIX, SOCK_STREAM, 0);
    try_socketpair("unix_socketpair", AF_UNIX, SOCK_STREAM, 0);
    try_socket("inet_stream", AF_INET, SOCK_STREAM, 0);
    try_socket("inet_dgram", AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    try_socket("inet6_stream", AF_INET6, SOCK_STREAM, IPPROTO_TCP);
    try_socket("inet6_dgram", AF_INET6, SOCK_DGRAM, 0);

    /* Options: netfilter's tables through the IP levels (an IPv6 socket forwards SOL_IP to
     * IPv4's handler), socket filters, kernel TLS, multicast source filters. */
    char zeros[1024] = {0};
    char getinfo[84] = "filter";  /* struct ipt_getinfo, asking for the filter table */
    try_set("ipt_so_set_replace", AF_INET, SOCK_STREAM, IPPROTO_IP, IPT_SO_SET_REPLACE,
            zeros, sizeof zeros);
    try_set("ipt_so_set_add_counters", AF_INET, SOCK_STREAM, IPPROTO_IP,
            IPT_SO_SET_ADD_COUNTERS, zeros, sizeof zeros);
    try_set("ipt_so_set_replace_udp", AF_INET, SOCK_DGRAM, IPPROTO_IP, IPT_SO_SET_REPLACE,
            zeros, sizeof zeros);
    try_set("ipt_so_set_replace_via_inet6", AF_INET6, SOCK_STREAM, IPPROTO_IP,
            IPT_SO_SET_REPLACE, zeros, sizeof zeros);
    try_set("ipt_so_set_replace_high_level", AF_INET, SOCK_STREAM, HIGH | IPPROTO_IP,
            IPT_SO_SET_REPLACE, zeros, sizeof zeros);
    try_set("ipt_so_set_replace_high_optname", AF_INET, SOCK_STREAM, IPPROTO_IP,
            HIGH | IPT_SO_SET_REPLACE, zeros, sizeof zeros);
    try_get("ipt_so_get_info", AF_INET, SOCK_STREAM, IPPROTO_IP, IPT_SO_SET_REPLACE,
            getinfo, sizeof getinfo);
    try_get("ipt_so_get_entries", AF_INET, SOCK_STREAM, IPPROTO_IP, IPT_SO_SET_ADD_COUNTERS,
            zeros, sizeof zeros / 2);
    try_set("ip6t_so_set_replace", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IP6T_SO_SET_REPLACE,
            zeros, sizeof zeros);
    try_get("ip6t_so_get_info", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IP6T_SO_SET_REPLACE,
            getinfo, sizeof getinfo);
    try_set("arpt_so_set_replace", AF_INET, SOCK_STREAM, IPPROTO_IP, ARPT_SO_SET_REPLACE,
            zeros, sizeof zeros);
    try_set("ebt_so_set_entries", AF_INET, SOCK_STREAM, IPPROTO_IP, EBT_SO_SET_ENTRIES,
            zeros, sizeof zeros);
    try_set("ip_vs_so_set_add", AF_INET, SOCK_STREAM, IPPROTO_IP, IP_VS_SO_SET_ADD,
            zeros, 64);

    struct sock_filter accept_all[] = {BPF_STMT(BPF_RET | BPF_K, 0xFFFF)};
    struct sock_fprog prog = {1, accept_all};
    int no_fd = -1;
    try_set("so_attach_filter", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_ATTACH_FILTER_,
            &prog, sizeof prog);
    try_set("so_attach_filter_unix", AF_UNIX, SOCK_DGRAM, SOL_SOCKET, SO_ATTACH_FILTER_,
            &prog, sizeof prog);
    try_set("so_attach_filter_high_optname", AF_INET, SOCK_DGRAM, SOL_SOCKET,
            HIGH | SO_ATTACH_FILTER_, &prog, sizeof prog);
    try_set("so_attach_bpf", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_ATTACH_BPF_,
            &no_fd, sizeof no_fd);
    try_set("tcp_ulp", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_ULP_, "tls", 4);
    try_set("tcp_ulp_inet6", AF_INET6, SOCK_STREAM, IPPROTO_TCP, TCP_ULP_, "tls", 4);
    try_set("ip_msfilter", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_MSFILTER_, zeros, 16);
    struct group_req group = {0};
    struct sockaddr_in *g4 = (struct sockaddr_in *)&group.gr_group;
    g4->sin_family = AF_INET;
    g4->sin_addr.s_addr = htonl(0xEF010203);  /* 239.1.2.3 */
    try_set("mcast_join_group", AF_INET, SOCK_DGRAM, IPPROTO_IP, MCAST_JOIN_GROUP_,
            &group, sizeof group);

    /* Levels of families the sandbox does not have. */
    try_set("sol_packet_add_membership", AF_INET, SOCK_DGRAM, SOL_PACKET_,
            PACKET_ADD_MEMBERSHIP_, zeros, 16);
    try_get("sol_packet_statistics", AF_INET, SOCK_DGRAM, SOL_PACKET_, PACKET_STATISTICS_,
            NULL, 8);
    try_set("sol_alg_set_key", AF_INET, SOCK_STREAM, SOL_ALG_, ALG_SET_KEY_, zeros, 16);
    try_set("sol_tls_tx", AF_INET, SOCK_STREAM, SOL_TLS_, TLS_TX_, zeros, 40);
    try_get("sol_tls_tx_get", AF_INET, SOCK_STREAM, SOL_TLS_, TLS_TX_, NULL, 40);

    /* Common options keep working. */
    try_int_option("so_reuseaddr", AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, 1);
    try_int_option("so_keepalive", AF_INET6, SOCK_STREAM, SOL_SOCKET, SO_KEEPALIVE, 1);
    try_int_option("tcp_nodelay", AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY, 1);
    try_int_option("ipv6_v6only", AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    int rcvbuf = 65536;
    try_set("so_rcvbuf", AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    /* The allowed sockets cannot reconfigure the network they are in. */
    try_setlink_lo("rtnetlink_setlink_lo");
    try_setflags_lo("siocsifflags_lo");
    return 0;
}

/* --- unix sockets on abstract names ------------------------------------------------------ */

static socklen_t abstract(struct sockaddr_un *sun, const char *name, const char *suffix)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    int n = snprintf(sun->sun_path + 1, sizeof sun->sun_path - 1, "%s%s", name, suffix);
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static int unix_connect(const char *name)
{
    struct sockaddr_un sun;
    socklen_t len = abstract(&sun, name, "");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, len) < 0)
        fail("unix_stream_connect");
    else
        printf("unix_stream_connect: ok\n");
    if (fd >= 0) close(fd);

    len = abstract(&sun, name, "-dgram");
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, "guest", 5, 0, (struct sockaddr *)&sun, len) < 0)
        fail("unix_dgram_sendto");
    else
        printf("unix_dgram_sendto: ok\n");
    if (fd >= 0) close(fd);
    return 0;
}

/* Binds NAME (stream, listening) and NAME-dgram, checks that the guest itself reaches both,
 * prints "listening", and counts whoever else comes until stdin reaches EOF. */
static int unix_listen(const char *name)
{
    struct sockaddr_un sun, dsun;
    socklen_t len = abstract(&sun, name, ""), dlen = abstract(&dsun, name, "-dgram");
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int dfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0 || dfd < 0 || bind(lfd, (struct sockaddr *)&sun, len) < 0 ||
        listen(lfd, 8) < 0 || bind(dfd, (struct sockaddr *)&dsun, dlen) < 0) {
        fail("unix_bind");
        return 1;
    }

    int self = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int dself = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct pollfd p = {.fd = lfd, .events = POLLIN}, dp = {.fd = dfd, .events = POLLIN};
    char buf[16];
    int accepted = 0, received = 0;
    if (self < 0 || dself < 0 || connect(self, (struct sockaddr *)&sun, len) < 0 ||
        poll(&p, 1, WAIT_MS) != 1 || (accepted = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
        sendto(dself, "s", 1, 0, (struct sockaddr *)&dsun, dlen) < 0 ||
        poll(&dp, 1, WAIT_MS) != 1 || recv(dfd, buf, sizeof buf, 0) != 1) {
        fail("unix_self");
        return 1;
    }
    close(accepted);
    close(self);
    close(dself);
    accepted = 0;
    printf("unix_self: ok\nlistening\n");
    fflush(stdout);

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd fds[3] = {{.fd = 0, .events = POLLIN}, {.fd = lfd, .events = POLLIN},
                                {.fd = dfd, .events = POLLIN}};
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 60000 - ((now.tv_sec - start.tv_sec) * 1000 +
                             (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0 || poll(fds, 3, left) < 0) break;
        if (fds[1].revents) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                accepted++;
                close(fd);
            }
        }
        if (fds[2].revents && recv(dfd, buf, sizeof buf, 0) >= 0) received++;
        if (fds[0].revents && read(0, buf, sizeof buf) <= 0) break;
    }
    printf("unix_stream_accepted: %d\nunix_dgram_received: %d\n", accepted, received);
    return 0;
}

/* --- TCP and UDP to the host ------------------------------------------------------------ */

static socklen_t inet_address(struct sockaddr_storage *ss, const char *addr, const char *port)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(atoi(port));
        return sizeof *in4;
    }
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(atoi(port));
        return sizeof *in6;
    }
    fprintf(stderr, "net_escape: bad address %s\n", addr);
    exit(2);
}

static int tcp(const char *addr, const char *port)
{
    struct sockaddr_storage ss;
    socklen_t len = inet_address(&ss, addr, port);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fail("tcp_socket");
        return 0;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = errno;
        socklen_t elen = sizeof err;
        if (err == EINPROGRESS) {
            if (poll(&p, 1, WAIT_MS) != 1)
                err = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
                err = errno;
        }
        if (err) {
            errno = err;
            fail("tcp_connect");
            return 0;
        }
    }
    printf("tcp_connect: ok\n");

    char banner[256];
    size_t got = 0;
    while (got < sizeof banner - 1 && !memchr(banner, '\n', got)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, WAIT_MS) != 1) break;
        ssize_t n = read(fd, banner + got, sizeof banner - 1 - got);
        if (n <= 0) break;
        got += n;
    }
    banner[got] = 0;
    banner[strcspn(banner, "\n")] = 0;
    printf("tcp_banner: %s\n", banner);
    close(fd);
    return 0;
}

static int udp(const char *addr, const char *port, const char *token)
{
    struct sockaddr_storage ss;
    socklen_t len = inet_address(&ss, addr, port);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("udp_socket");
        return 0;
    }
    int sent = 0;
    for (int i = 0; i < 3; i++) {
        if (sendto(fd, token, strlen(token), 0, (struct sockaddr *)&ss, len) < 0) {
            fail("udp_sendto");
            close(fd);
            return 0;
        }
        sent++;
    }
    printf("udp_sendto: ok %d\n", sent);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "policy") == 0) return policy();
    if (argc == 3 && strcmp(argv[1], "unix-connect") == 0) return unix_connect(argv[2]);
    if (argc == 3 && strcmp(argv[1], "unix-listen") == 0) return unix_listen(argv[2]);
    if (argc == 4 && strcmp(argv[1], "tcp") == 0) return tcp(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "udp") == 0) return udp(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: net_escape policy | unix-connect NAME | unix-listen NAME |"
                    " tcp ADDR PORT | udp ADDR PORT TOKEN\n");
    return 2;
}
