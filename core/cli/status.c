/* core/cli/status.c — `herd status [ADDRESS]`: what a scheduler's HTTP
 * endpoint says (workers, tasks per state and per task name), as text or
 * JSON, once or refreshed (--watch); over HTTPS and with the token. The
 * scheduler writes the report (core/sched_report.c); this fetches and prints
 * it with libcurl. */
#include <herd/herd.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define STATUS_MAX_BYTES (16u << 20)

static void usage(FILE *out)
{
    fprintf(out,
        "usage: herd status [options] [ADDRESS]\n"
        "  ADDRESS                the scheduler's dashboard address: HOST:PORT, http://HOST:PORT or\n"
        "                         https://HOST:PORT (default 127.0.0.1:8787)\n"
        "  --json                 the whole report as JSON (/api/v1/status)\n"
        "  --watch                refresh until interrupted\n"
        "  --interval S           seconds between refreshes with --watch (default 1, at least 0.5)\n"
        "  --count N              with --watch: stop after N reports\n"
        "  --token TOKEN          the cluster's token (or $HERD_TOKEN), needed beyond loopback\n"
        "  --token-file FILE      read the token from FILE (first line)\n"
        "  --tls-ca-file FILE     HTTPS: the CA the scheduler's certificate must come from\n"
        "  --tls-cert FILE        HTTPS: a client certificate to present (optional)\n"
        "  --tls-key FILE         its key (default: in --tls-cert)\n");
}

typedef struct body { char *p; size_t n; int over; } body;

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    body *b = ud;
    size_t n = sz * nm;
    if (b->n + n > STATUS_MAX_BYTES) { b->over = 1; return 0; }
    char *np = realloc(b->p, b->n + n + 1);
    if (!np) return 0;
    memcpy(np + b->n, d, n);
    b->p = np;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

typedef struct sopts { const char *token, *ca, *cert, *key; } sopts;

/* GET url; 0 and the body printed, else 1 with a message naming what went wrong. */
static int fetch(const char *url, const sopts *o, FILE *out)
{
    CURL *c = curl_easy_init();
    if (!c) { fprintf(stderr, "herd status: cannot start libcurl\n"); return 1; }
    body b = { 0 };
    char auth[600];
    struct curl_slist *hdr = NULL;
    if (o->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (hdr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    if (o->ca) curl_easy_setopt(c, CURLOPT_CAINFO, o->ca);
    if (o->cert) curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert);
    if (o->key) curl_easy_setopt(c, CURLOPT_SSLKEY, o->key);
    else if (o->cert) curl_easy_setopt(c, CURLOPT_SSLKEY, o->cert);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int ret = 1;
    if (rc != CURLE_OK)
        fprintf(stderr, "herd status: %s: %s\n", url, b.over ? "the answer is larger than 16 MiB" : curl_easy_strerror(rc));
    else if (code == 401)
        fprintf(stderr, "herd status: %s: 401: this endpoint needs the cluster's token (--token, --token-file or $HERD_TOKEN)\n", url);
    else if (code != 200)
        fprintf(stderr, "herd status: %s: HTTP %ld: %s", url, code, b.p ? b.p : "\n");
    else {
        if (b.p) fwrite(b.p, 1, b.n, out);
        ret = 0;
    }
    memset(auth, 0, sizeof auth);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    free(b.p);
    return ret;
}

static int read_token(const char *file, char *out, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f) { fprintf(stderr, "herd status: --token-file %s: %s\n", file, strerror(errno)); return -1; }
    if (!fgets(out, (int)cap, f)) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (!out[0]) { fprintf(stderr, "herd status: --token-file %s: the file is empty\n", file); return -1; }
    return 0;
}

int herd_cli_status(int argc, char **argv)
{
    const char *addr = NULL;
    sopts o = { getenv("HERD_TOKEN"), NULL, NULL, NULL };
    int json = 0, watch = 0;
    long count = 0;
    double interval = 1;
    char tokbuf[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--watch")) { watch = 1; continue; }
        if (a[0] != '-') {
            if (addr) { fprintf(stderr, "herd status: one ADDRESS only (got \"%s\" and \"%s\")\n", addr, a); return HERD_CLI_EXIT_USAGE; }
            addr = a;
            continue;
        }
        if (!v) { fprintf(stderr, "herd status: %s needs a value\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        char *end;
        if (!strcmp(a, "--interval")) {
            interval = strtod(v, &end);
            if (*end || !(interval >= 0.5 && interval <= 86400)) {
                fprintf(stderr, "herd status: --interval: expected seconds 0.5..86400, got \"%s\"\n", v);
                return HERD_CLI_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--count")) {
            count = strtol(v, &end, 10);
            if (*end || count < 1) { fprintf(stderr, "herd status: --count: expected a number >= 1, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
        } else if (!strcmp(a, "--token")) o.token = v;
        else if (!strcmp(a, "--token-file")) { if (read_token(v, tokbuf, sizeof tokbuf)) return 1; o.token = tokbuf; }
        else if (!strcmp(a, "--tls-ca-file")) o.ca = v;
        else if (!strcmp(a, "--tls-cert")) o.cert = v;
        else if (!strcmp(a, "--tls-key")) o.key = v;
        else { fprintf(stderr, "herd status: unknown option \"%s\"\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        i++;
    }
    if (o.token && !*o.token) o.token = NULL;
    if (!addr) addr = "127.0.0.1:8787";
    char url[1200];
    int has_scheme = !strncmp(addr, "http://", 7) || !strncmp(addr, "https://", 8);
    if (strstr(addr, "://") && !has_scheme) {
        fprintf(stderr, "herd status: ADDRESS \"%s\": expected the dashboard's HOST:PORT or http(s)://HOST:PORT "
                        "(not the scheduler's tcp:// address; herd scheduler prints both)\n", addr);
        return HERD_CLI_EXIT_USAGE;
    }
    size_t al = strlen(addr);
    while (al && addr[al - 1] == '/') al--;
    snprintf(url, sizeof url, "%s%.*s/api/v1/status%s", has_scheme ? "" : o.ca ? "https://" : "http://", (int)al, addr,
             json ? "" : "?format=text");
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) { fprintf(stderr, "herd status: cannot start libcurl\n"); return 1; }
    int rc = 0, tty = isatty(STDOUT_FILENO);
    for (long n = 1;; n++) {
        if (watch && tty) fputs("\033[H\033[2J", stdout);
        rc = fetch(url, &o, stdout);
        if (watch && !tty) fputs("\n", stdout);
        fflush(stdout);
        if (!watch || (count && n >= count)) break;
        struct timespec ts = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
        nanosleep(&ts, NULL);
    }
    memset(tokbuf, 0, sizeof tokbuf);
    curl_global_cleanup();
    return rc;
}
