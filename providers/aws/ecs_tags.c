/* providers/aws/ecs_tags.c — the bottom of the ECS provider's files: the
 * tags put on everything a cluster creates (the user's, herd-cluster,
 * createdBy and herd-owner) in each API's shape, the owner of a run
 * (HOST:PID:START, this process's start time making a reused pid another
 * owner) and whether an owner is a dead run of this machine, string lists,
 * and herd values as JSON (the volumes of a task definition). */
#include "ecs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char **ecs_strv_dup(const herd_value *list)
{
    size_t n = herd_len(list);
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        if (!(v[i] = strdup(herd_as_str(herd_at(list, i))))) { ecs_strv_free(v); return NULL; }
    return v;
}

void ecs_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

size_t ecs_strv_len(char **v)
{
    size_t n = 0;
    while (v && v[n]) n++;
    return n;
}

/* a process's start time (field 22 of /proc/PID/stat): with the pid, who it is */
static unsigned long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long t = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t) == 1)
        return t;
    return 0;
}

void ecs_owner_self(char *out, size_t cap)
{
    char host[200] = "";
    gethostname(host, sizeof host - 1);
    snprintf(out, cap, "%s:%ld:%llu", host, (long)getpid(), proc_start(getpid()));
}

int ecs_owner_dead(const char *owner)
{
    char host[200] = "";
    gethostname(host, sizeof host - 1);
    const char *b = owner ? strrchr(owner, ':') : NULL;
    if (!b || b == owner) return 0;
    const char *a = b - 1;
    while (a > owner && *a != ':') a--;
    if (a == owner) return 0;
    if ((size_t)(a - owner) != strlen(host) || strncmp(owner, host, (size_t)(a - owner)) != 0) return 0;   /* another machine's */
    char *end;
    long pid = strtol(a + 1, &end, 10);
    if (end != b || pid <= 0) return 0;
    unsigned long long start = strtoull(b + 1, &end, 10);
    if (*end) return 0;
    if (pid == (long)getpid()) return 0;                       /* this process's (another run of it) */
    if ((kill((pid_t)pid, 0) == 0 || errno == EPERM) && proc_start(pid) == start) return 0;   /* still running */
    return 1;
}

/* every tag: the user's, then herd-cluster, createdBy and herd-owner */
void ecs_each_tag(herd_cluster *c, void (*fn)(void *ud, size_t i, const char *k, const char *v), void *ud)
{
    size_t i = 0;
    for (size_t j = 0; j < herd_len(c->set.tags); j++, i++)
        fn(ud, i, herd_key_at(c->set.tags, j), herd_as_str(herd_at(c->set.tags, j)));
    fn(ud, i++, "herd-cluster", c->env->name);
    fn(ud, i++, "createdBy", "herd");
    fn(ud, i, ECS_OWNER_TAG, c->owner);
}

typedef struct { const char *k, *v; json_t *out; } tagctx;

static void tag_json(void *ud, size_t i, const char *k, const char *v)
{
    (void)i;
    tagctx *t = ud;
    json_array_append_new(t->out, json_pack("{s:s, s:s}", t->k, k, t->v, v));
}

json_t *ecs_tags_json(herd_cluster *c, const char *kkey, const char *vkey)
{
    tagctx t = { kkey, vkey, json_array() };
    ecs_each_tag(c, tag_json, &t);
    return t.out;
}

static void tag_map(void *ud, size_t i, const char *k, const char *v)
{
    (void)i;
    json_object_set_new(ud, k, json_string(v));
}

json_t *ecs_tags_map(herd_cluster *c)
{
    json_t *m = json_object();
    ecs_each_tag(c, tag_map, m);
    return m;
}

typedef struct { aws_buf *q; const char *fmt_k, *fmt_v; } qtag;

static void tag_query(void *ud, size_t i, const char *k, const char *v)
{
    qtag *t = ud;
    char kk[96], vk[96];
    snprintf(kk, sizeof kk, t->fmt_k, i + 1);
    snprintf(vk, sizeof vk, t->fmt_v, i + 1);
    aws_query_add(t->q, kk, k);
    aws_query_add(t->q, vk, v);
}

void ecs_tags_query(herd_cluster *c, aws_buf *q, const char *fmt_k, const char *fmt_v)
{
    qtag t = { q, fmt_k, fmt_v };
    ecs_each_tag(c, tag_query, &t);
}

json_t *ecs_value_json(const herd_value *v)
{
    switch (herd_typeof(v)) {
    case HERD_BOOL: return json_boolean(herd_as_bool(v));
    case HERD_INT: return json_integer((json_int_t)herd_as_int(v));
    case HERD_FLOAT: return json_real(herd_as_float(v));
    case HERD_STR: return json_string(herd_as_str(v));
    case HERD_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < herd_len(v); i++) json_array_append_new(a, ecs_value_json(herd_at(v, i)));
        return a;
    }
    case HERD_MAP: {
        json_t *o = json_object();
        for (size_t i = 0; i < herd_len(v); i++) json_object_set_new(o, herd_key_at(v, i), ecs_value_json(herd_at(v, i)));
        return o;
    }
    default: return json_null();
    }
}
