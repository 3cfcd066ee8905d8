/* core/route.c — the one home of "this machine's source address on the route
 * to a host" (herd_route_source, public): what a provider's remote workers
 * dial back when the scheduler runs in the client (scheduler_listen). */
#include <herd/provider.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

HERD_API int herd_route_source(const char *host, char *out, size_t cap, bool *is_loopback, herd_err *err)
{
    if (!host || !*host || !out || cap < INET6_ADDRSTRLEN)
        return herd_err_set(err, -HERD_EARG, "herd_route_source: host = %s, out capacity %zu; expected a host "
                            "name or address and room for %d bytes", host ? host : "NULL", out ? cap : 0,
                            INET6_ADDRSTRLEN);
    out[0] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    int g = getaddrinfo(host, "443", &hints, &ai);
    if (g != 0 || !ai)
        return herd_err_set(err, -HERD_EPROVIDER, "cannot resolve %s (%s)", host, gai_strerror(g));
    if (is_loopback) *is_loopback = loopback(ai->ai_addr);
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    /* a connected UDP socket: the kernel picks the route, no packet is sent */
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
              getsockname(fd, (struct sockaddr *)&me, &ml) == 0 &&
              (me.ss_family == AF_INET || me.ss_family == AF_INET6);
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    if (ok) {
        const void *a = me.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&me)->sin_addr
                                                : (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr;
        ok = inet_ntop(me.ss_family, a, out, (socklen_t)cap) != NULL;
    }
    if (!ok) {
        out[0] = '\0';
        return herd_err_set(err, -HERD_EPROVIDER, "no route from this machine to %s", host);
    }
    return 0;
}
