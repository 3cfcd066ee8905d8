/* examples/nino34/server.c — a stand-in for www.cpc.ncep.noaa.gov: a libevent
 * evhttp server on 127.0.0.1 that serves the plume charts at NOAA's URL
 * layout, each answer held back by a timer of `delay` seconds (so concurrent
 * requests wait concurrently, like the latency of a distant server). It runs
 * its event loop on a thread of its own; pending replies and their timers
 * belong to that thread until nino34_server_stop joins it. */
#include "nino34.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct pending {
    struct nino34_server *srv;
    struct evhttp_request *req;
    struct event *timer;
    unsigned char *png;
    size_t len;
    struct pending *prev, *next;
} pending;

struct nino34_server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    bool running;
    struct timeval delay;
    char url[64];
    atomic_uint requests;
    pending *pend;                 /* replies waiting for their timer */
};

static void pending_free(pending *p)
{
    if (p->prev) p->prev->next = p->next;
    else p->srv->pend = p->next;
    if (p->next) p->next->prev = p->prev;
    event_free(p->timer);
    free(p->png);
    free(p);
}

static void reply(evutil_socket_t fd, short what, void *arg)
{
    pending *p = arg;
    struct evbuffer *b = evbuffer_new();
    if (b && evbuffer_add(b, p->png, p->len) == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Content-Type", "image/png");
        evhttp_send_reply(p->req, HTTP_OK, "OK", b);
    } else {
        evhttp_send_error(p->req, HTTP_INTERNAL, "out of memory");
    }
    if (b) evbuffer_free(b);
    pending_free(p);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    nino34_server *s = arg;
    atomic_fetch_add(&s->requests, 1);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    int year = 0, month = 0;
    char expect[160];
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 405, "only GET");
        return;
    }
    /* parse, then re-print and compare so only the exact layout matches */
    if (!path || sscanf(path, "/products/NMME/archive/%4d%2d", &year, &month) != 2 ||
        year < 1982 || year > 2100 || month < 1 || month > 12 ||
        (snprintf(expect, sizeof expect, NINO34_PATH_FMT, year, month), strcmp(expect, path) != 0)) {
        evhttp_send_error(req, HTTP_NOTFOUND, NULL);
        return;
    }
    pending *p = calloc(1, sizeof *p);
    if (!p || nino34_png(year, month, &p->png, &p->len) ||
        !(p->timer = evtimer_new(s->base, reply, p))) {
        if (p) free(p->png);
        free(p);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    p->srv = s;
    p->req = req;
    p->next = s->pend;
    if (s->pend) s->pend->prev = p;
    s->pend = p;
    evtimer_add(p->timer, &s->delay);
}

static void *loop(void *arg)
{
    nino34_server *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void use_threads(void) { evthread_use_pthreads(); }

int nino34_server_start(nino34_server **out, double delay_s, herd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, use_threads);   /* locking for event_base_loopbreak from another thread */
    nino34_server *s = calloc(1, sizeof *s);
    if (!s) return herd_err_set(err, ENOMEM, "server: out of memory");
    s->delay.tv_sec = (time_t)delay_s;
    s->delay.tv_usec = (suseconds_t)((delay_s - (double)s->delay.tv_sec) * 1e6);
    struct evhttp_bound_socket *bs = NULL;
    if (!(s->base = event_base_new()) || !(s->http = evhttp_new(s->base)) ||
        !(bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0))) {
        nino34_server_stop(s);
        return herd_err_set(err, HERD_EFAILED, "server: cannot listen on 127.0.0.1");
    }
    evhttp_set_gencb(s->http, on_request, s);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    int rc = pthread_create(&s->thread, NULL, loop, s);
    if (rc) {
        nino34_server_stop(s);
        return herd_err_set(err, rc, "server: cannot start its thread");
    }
    s->running = true;
    *out = s;
    return 0;
}

const char *nino34_server_url(const nino34_server *s) { return s->url; }
unsigned nino34_server_requests(const nino34_server *s) { return atomic_load(&s->requests); }

void nino34_server_stop(nino34_server *s)
{
    if (!s) return;
    if (s->running) {
        event_base_loopbreak(s->base);
        pthread_join(s->thread, NULL);
    }
    while (s->pend) {
        evhttp_send_error(s->pend->req, HTTP_SERVUNAVAIL, "shutting down");
        pending_free(s->pend);
    }
    if (s->http) evhttp_free(s->http);
    if (s->base) event_base_free(s->base);
    free(s);
}
