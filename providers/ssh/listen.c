/* providers/ssh/listen.c — where SSHCluster's in-process scheduler listens
 * so that every host can dial it back (scheduler_listen): the address ssh
 * really connects to for each host (`ssh -G`, so ~/.ssh/config aliases
 * count), this machine's address on the route to it, and the names a TLS
 * certificate must carry; and the address the client dials scheduler_host
 * by. */
#include "ssh.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The name ssh really connects to for h (aliases of ~/.ssh/config resolved
 * by `ssh -G`; h->host when ssh cannot say). */
static void resolve_host(herd_cluster *c, shost *h, char *name, size_t cap)
{
    snprintf(name, cap, "%s", h->host);
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
        char got[256];
        if (p && sscanf(p + 10, "%255s", got) == 1) snprintf(name, cap, "%s", got);
    }
    free(out);
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
        char name[256], ip[INET6_ADDRSTRLEN];
        bool loop = false;
        resolve_host(c, h, name, sizeof name);
        int r = herd_route_source(name, ip, sizeof ip, &loop, NULL);
        if (r == 0 && loop) { snprintf(h->dial, sizeof h->dial, "127.0.0.1"); continue; }
        all_loop = false;
        if (r) continue;                             /* ssh will say why it cannot reach it */
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
    char name[256];
    resolve_host(c, h, name, sizeof name);
    snprintf(out, cap, "%s", h->host);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    if (getaddrinfo(name, "22", &hints, &ai) != 0 || !ai) return;
    char ip[INET6_ADDRSTRLEN];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST) == 0)
        snprintf(out, cap, "%s", ip);
    freeaddrinfo(ai);
}
