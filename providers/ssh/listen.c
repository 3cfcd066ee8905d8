/* providers/ssh/listen.c — where SSHCluster's in-process scheduler listens
 * so that every host can dial it back (scheduler_listen): the address ssh
 * really connects to for each host (`ssh -G`, so ~/.ssh/config aliases
 * count), this machine's address on the route to it, and the names a TLS
 * certificate must carry; and the address the client dials scheduler_host
 * by. */
#include "ssh.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The address ssh really connects to for h (aliases of ~/.ssh/config
 * resolved by `ssh -G`), as a sockaddr. */
static int resolve_host(herd_cluster *c, shost *h, struct sockaddr_storage *ss, socklen_t *len)
{
    char name[256];
    snprintf(name, sizeof name, "%s", h->host);
    const char *argv[12];
    int k = 0;
    argv[k++] = c->set.so.program;
    if (c->set.so.config_file) { argv[k++] = "-F"; argv[k++] = c->set.so.config_file; }
    argv[k++] = "-G";
    argv[k++] = "--";
    argv[k++] = h->host;
    argv[k] = NULL;
    char *out = malloc(65536), tail[200];
    herd_proc_exit st;
    if (out && ssh_run_ok(ssh_run((char *const *)argv, -1, NULL, out, 65536, tail, sizeof tail, 10, &st), &st)) {
        char *p = strstr(out, "\nhostname ");
        if (!p && strncmp(out, "hostname ", 9) == 0) p = out - 1;
        if (p) sscanf(p + 10, "%255s", name);
    }
    free(out);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    if (getaddrinfo(name, "22", &hints, &ai) != 0 || !ai) return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

/* This machine's address on the route to ss (no packet is sent). */
static int source_ip(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t cap)
{
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    int rc = connect(fd, (const struct sockaddr *)ss, len) == 0 &&
             getsockname(fd, (struct sockaddr *)&me, &ml) == 0 ? 0 : -1;
    close(fd);
    if (rc) return -1;
    const void *a = me.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&me)->sin_addr
                                            : (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr;
    return inet_ntop(me.ss_family, a, out, (socklen_t)cap) ? 0 : -1;
}

int ssh_scheduler_listen(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    const char *given_host = NULL;
    char hostbuf[256] = "";
    if (c->set.listen) {
        const char *h = c->set.listen + 6, *colon = strrchr(h, ':');
        snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(colon - h), h);
        given_host = hostbuf;
        snprintf(out, cap, "%s", c->set.listen);
        if (strcmp(given_host, "0.0.0.0") != 0 && strcmp(given_host, "[::]") != 0) return 0;
    }
    /* each host's route back to us */
    char common[128] = "";
    bool all_loop = true, same = true;
    for (size_t i = 0; i < c->set.nh; i++) {
        shost *h = &c->set.hosts[i];
        struct sockaddr_storage ss;
        socklen_t len;
        if (resolve_host(c, h, &ss, &len) != 0) {   /* ssh will say why it cannot reach it */
            all_loop = false;
            continue;
        }
        if (is_loopback(&ss)) { snprintf(h->dial, sizeof h->dial, "127.0.0.1"); continue; }
        all_loop = false;
        char ip[INET6_ADDRSTRLEN];
        if (source_ip(&ss, len, ip, sizeof ip) != 0) continue;
        snprintf(h->dial, sizeof h->dial, strchr(ip, ':') ? "[%s]" : "%s", ip);
        if (!common[0]) snprintf(common, sizeof common, "%s", h->dial);
        else if (strcmp(common, h->dial) != 0) same = false;
    }
    /* what the hosts dial, for a TLS certificate (brackets off) */
    const char *names[65];
    char bare[64][128];
    size_t nn = 0;
    for (size_t i = 0; i < c->set.nh && nn < 64; i++) {
        const char *d = c->set.hosts[i].dial;
        if (!d[0]) continue;
        snprintf(bare[nn], sizeof bare[nn], "%.*s", (int)strcspn(d + (d[0] == '['), "]"), d + (d[0] == '['));
        bool dup = false;
        for (size_t j = 0; j < nn; j++) dup |= strcmp(bare[j], bare[nn]) == 0;
        if (!dup) { names[nn] = bare[nn]; nn++; }
    }
    names[nn] = NULL;
    int rc = herd_scheduler_names(c->env, names, err);
    if (rc) return rc;
    if (given_host) return 0;          /* 0.0.0.0 as asked; each host dials its route */
    if (all_loop) {
        for (size_t i = 0; i < c->set.nh; i++) c->set.hosts[i].dial[0] = '\0';
        snprintf(out, cap, "tcp://127.0.0.1:0");
    } else if (same && common[0]) {
        for (size_t i = 0; i < c->set.nh; i++) c->set.hosts[i].dial[0] = '\0';
        snprintf(out, cap, "tcp://%s:0", common);
    } else {
        snprintf(out, cap, "tcp://0.0.0.0:0");
    }
    herd_log(c->env, HERD_LOG_DEBUG, "SSHCluster: scheduler listens on %s", out);
    return 0;
}

/* The address of the host as the client dials it: what ssh resolves its
 * name to (~/.ssh/config's HostName included), else the name itself. */
void ssh_dial_name(herd_cluster *c, shost *h, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char ip[INET6_ADDRSTRLEN];
    snprintf(out, cap, "%s", h->host);
    if (resolve_host(c, h, &ss, &len) != 0) return;
    const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                            : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (inet_ntop(ss.ss_family, a, ip, sizeof ip)) snprintf(out, cap, "%s", ip);
}
