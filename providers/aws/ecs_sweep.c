/* providers/aws/ecs_sweep.c — at a cluster's start (unless skip_cleanup), what
 * earlier runs left when their process ended without a close (SIGKILL, a
 * crash, a reboot), found through the AWS APIs by the herd-owner tag that
 * everything herd creates carries (HOST:PID:START): ECS clusters
 * (ListClusters, DescribeClusters with TAGS), task definitions (families
 * herd-*, DescribeTaskDefinition with TAGS), security groups (a tag-key
 * filter), IAM roles (path /herd/, ListRoleTags), log groups (under /herd/,
 * ListTagsLogGroup), and tasks in those clusters and in the cluster_arn
 * this run uses. The rule: only an owner of this host (the same host name)
 * whose process is gone (no such pid, or a pid reused by a process started
 * at another time) is swept; never a live run's, never another host's
 * (sweep that host's leftovers from that host). Its tasks are stopped, then
 * its resources deleted with ecs_setup's teardown, resource by resource, in
 * the teardown's order, in this run's region. */
#include "ecs.h"

#include <errno.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define EC2_VERSION "2016-11-15"
#define IAM_VERSION "2010-05-08"

/* a cluster object standing for a dead run's resource: the live one's
   client, log and messages; what it holds is filled in by the caller */
static herd_cluster *standin(herd_cluster *live)
{
    herd_cluster *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->api_mu, NULL);
    herd_cond_init_monotonic(&s->cv);
    s->env = live->env;
    s->cls = live->cls;
    s->aws = live->aws;
    s->set.poll_interval = live->set.poll_interval;
    s->set.logs_retention = live->set.logs_retention;
    return s;
}

static void standin_free(herd_cluster *s)
{
    for (size_t i = 0; i < s->nw; i++) free(s->w[i]);
    free(s->w);
    ecs_strv_free(s->set.task_role_policies);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->api_mu);
    free(s);
}

static void say(herd_cluster *c, const char *owner, const char *what)
{
    herd_log(c->env, HERD_LOG_INFO, "%s: sweeping what the run %s left (its process is gone): %s", c->cls, owner, what);
}

/* the herd-owner of an ECS tags array [{key, value}] */
static const char *ecs_owner_of(json_t *tags)
{
    json_t *t;
    size_t i;
    json_array_foreach(tags, i, t) {
        const char *k = json_string_value(json_object_get(t, "key"));
        if (k && strcmp(k, ECS_OWNER_TAG) == 0) return json_string_value(json_object_get(t, "value"));
    }
    return NULL;
}

/* the text of the tag Key=herd-owner in an XML tag list (EC2 item key/value,
   IAM member Key/Value) */
static const char *xml_owner_of(xmlNode *set, const char *kname, const char *vname, char *buf, size_t cap)
{
    char k[128];
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) {
        if (it->type != XML_ELEMENT_NODE) continue;
        if (strcmp(aws_xml_text(it, kname, k, sizeof k), ECS_OWNER_TAG) == 0) return aws_xml_text(it, vname, buf, cap);
    }
    return NULL;
}

static int ecs_json(herd_cluster *c, const char *op, json_t *req, json_t **resp)
{
    herd_err err = { 0 };
    int rc = aws_json_call(c->aws, AWS_ECS, op, req, resp, NULL, 0, &err);
    json_decref(req);
    if (rc) herd_log(c->env, HERD_LOG_WARN, "%s: sweep: %s", c->cls, err.msg);
    return rc;
}

/* Stop the tasks of `cluster` that dead owners started (all of them when
   whole: the cluster itself is a dead run's). */
static void stop_tasks(herd_cluster *c, const char *cluster, bool whole)
{
    json_t *resp = NULL;
    json_t *req = json_pack("{s:s, s:s}", "cluster", cluster, "desiredStatus", "RUNNING");
    if (!whole) json_object_set_new(req, "startedBy", json_string("herd"));
    if (ecs_json(c, "ListTasks", req, &resp)) return;
    json_t *arns = json_object_get(resp, "taskArns");
    herd_cluster *s = json_array_size(arns) ? standin(c) : NULL;
    for (size_t off = 0; s && off < json_array_size(arns); off += 100) {
        json_t *list = json_array(), *dr = NULL, *t;
        for (size_t i = off; i < json_array_size(arns) && i < off + 100; i++)
            json_array_append(list, json_array_get(arns, i));
        if (ecs_json(c, "DescribeTasks", json_pack("{s:s, s:o, s:[s]}", "cluster", cluster, "tasks", list, "include",
                                                   "TAGS"), &dr))
            break;
        size_t i;
        json_array_foreach(json_object_get(dr, "tasks"), i, t) {
            const char *owner = ecs_owner_of(json_object_get(t, "tags"));
            const char *arn = json_string_value(json_object_get(t, "taskArn"));
            if (!arn || (!whole && !ecs_owner_dead(owner))) continue;
            ecs_worker *w = calloc(1, sizeof *w);
            ecs_worker **nw = realloc(s->w, (s->nw + 1) * sizeof *nw);
            if (!w || !nw) { free(w); if (nw) s->w = nw; break; }
            s->w = nw;
            snprintf(w->name, sizeof w->name, "left-%zu", s->nw);
            snprintf(w->arn, sizeof w->arn, "%s", arn);
            w->state = HERD_WORKER_RUNNING;
            s->w[s->nw++] = w;
        }
        json_decref(dr);
    }
    if (s && s->nw) {
        snprintf(s->cluster_arn, sizeof s->cluster_arn, "%s", cluster);
        herd_log(c->env, HERD_LOG_INFO, "%s: sweep: stopping %zu tasks of dead runs in %s", c->cls, s->nw, cluster);
        ecs_stop_all(s, 300);
    }
    if (s) standin_free(s);
    json_decref(resp);
}

/* the dead runs' ECS clusters: their tasks stopped now, the clusters
   deleted last (into *dead, owner "\t" arn "\t" name per line) */
static void sweep_clusters(herd_cluster *c, aws_buf *dead)
{
    const char *next = NULL;
    json_t *resp = NULL;
    do {
        json_t *req = json_object(), *lr = NULL;
        if (next) json_object_set_new(req, "nextToken", json_string(next));
        if (ecs_json(c, "ListClusters", req, &lr)) break;
        json_decref(resp);
        resp = lr;
        json_t *arns = json_object_get(resp, "clusterArns");
        for (size_t off = 0; off < json_array_size(arns); off += 100) {
            json_t *list = json_array(), *dr = NULL, *cl;
            for (size_t i = off; i < json_array_size(arns) && i < off + 100; i++)
                json_array_append(list, json_array_get(arns, i));
            if (ecs_json(c, "DescribeClusters", json_pack("{s:o, s:[s]}", "clusters", list, "include", "TAGS"), &dr))
                break;
            size_t i;
            json_array_foreach(json_object_get(dr, "clusters"), i, cl) {
                const char *st = json_string_value(json_object_get(cl, "status"));
                const char *owner = ecs_owner_of(json_object_get(cl, "tags"));
                const char *arn = json_string_value(json_object_get(cl, "clusterArn"));
                const char *name = json_string_value(json_object_get(cl, "clusterName"));
                if (!st || strcmp(st, "ACTIVE") || !arn || !ecs_owner_dead(owner)) continue;
                say(c, owner, arn);
                stop_tasks(c, arn, true);
                aws_buf_fmt(dead, "%s\t%s\t%s\n", owner, arn, name ? name : "");
            }
            json_decref(dr);
        }
        next = json_string_value(json_object_get(resp, "nextToken"));
    } while (next);
    json_decref(resp);
}

static void sweep_task_definitions(herd_cluster *c)
{
    json_t *fams = NULL, *f;
    if (ecs_json(c, "ListTaskDefinitionFamilies",
                 json_pack("{s:s, s:s}", "familyPrefix", ECS_TD_PREFIX, "status", "ACTIVE"), &fams))
        return;
    size_t i, j;
    json_array_foreach(json_object_get(fams, "families"), i, f) {
        json_t *tds = NULL, *td;
        if (ecs_json(c, "ListTaskDefinitions", json_pack("{s:O, s:s}", "familyPrefix", f, "status", "ACTIVE"), &tds))
            continue;
        json_array_foreach(json_object_get(tds, "taskDefinitionArns"), j, td) {
            json_t *d = NULL;
            if (ecs_json(c, "DescribeTaskDefinition", json_pack("{s:O, s:[s]}", "taskDefinition", td, "include", "TAGS"),
                         &d))
                continue;
            const char *owner = ecs_owner_of(json_object_get(d, "tags"));
            herd_cluster *s = ecs_owner_dead(owner) ? standin(c) : NULL;
            if (s) {
                say(c, owner, json_string_value(td));
                snprintf(s->td_arn, sizeof s->td_arn, "%s", json_string_value(td));
                s->td_made = true;
                ecs_teardown(s);
                standin_free(s);
            }
            json_decref(d);
        }
        json_decref(tds);
    }
    json_decref(fams);
}

static void sweep_security_groups(herd_cluster *c)
{
    aws_buf q;
    xmlDoc *d = NULL;
    herd_err err = { 0 };
    aws_query_init(&q, "DescribeSecurityGroups", EC2_VERSION);
    aws_query_add(&q, "Filter.1.Name", "tag-key");
    aws_query_add(&q, "Filter.1.Value.1", ECS_OWNER_TAG);
    int rc = q.oom ? -ENOMEM : aws_query_call(c->aws, "ec2", "DescribeSecurityGroups", q.s, &d, NULL, 0, &err);
    aws_buf_free(&q);
    if (rc) { herd_log(c->env, HERD_LOG_WARN, "%s: sweep: %s", c->cls, err.msg); return; }
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(d), "securityGroupInfo");
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) {
        char owner[300], id[64];
        if (it->type != XML_ELEMENT_NODE ||
            !ecs_owner_dead(xml_owner_of(aws_xml_child(it, "tagSet"), "key", "value", owner, sizeof owner)))
            continue;
        herd_cluster *s = standin(c);
        if (!s) break;
        say(c, owner, aws_xml_text(it, "groupId", id, sizeof id));
        snprintf(s->sg_made, sizeof s->sg_made, "%s", id);
        ecs_teardown(s);
        standin_free(s);
    }
    xmlFreeDoc(d);
}

/* the managed policies attached to a role, for their detaching */
static char **attached_policies(herd_cluster *c, const char *role)
{
    aws_buf q;
    xmlDoc *d = NULL;
    herd_err err = { 0 };
    aws_query_init(&q, "ListAttachedRolePolicies", IAM_VERSION);
    aws_query_add(&q, "RoleName", role);
    int rc = q.oom ? -ENOMEM : aws_query_call(c->aws, "iam", "ListAttachedRolePolicies", q.s, &d, NULL, 0, &err);
    aws_buf_free(&q);
    if (rc) return NULL;
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(d), "AttachedPolicies");
    size_t n = 0;
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) n += it->type == XML_ELEMENT_NODE;
    char **v = calloc(n + 1, sizeof *v), buf[512];
    n = 0;
    for (xmlNode *it = set ? set->children : NULL; v && it; it = it->next)
        if (it->type == XML_ELEMENT_NODE && aws_xml_text(it, "PolicyArn", buf, sizeof buf)[0] && (v[n] = strdup(buf))) n++;
    xmlFreeDoc(d);
    return v;
}

static void sweep_roles(herd_cluster *c)
{
    char marker[1024] = "";
    for (;;) {
        aws_buf q;
        xmlDoc *d = NULL;
        herd_err err = { 0 };
        aws_query_init(&q, "ListRoles", IAM_VERSION);
        aws_query_add(&q, "PathPrefix", ECS_ROLE_PATH);
        if (marker[0]) aws_query_add(&q, "Marker", marker);
        int rc = q.oom ? -ENOMEM : aws_query_call(c->aws, "iam", "ListRoles", q.s, &d, NULL, 0, &err);
        aws_buf_free(&q);
        if (rc) { herd_log(c->env, HERD_LOG_WARN, "%s: sweep: %s", c->cls, err.msg); return; }
        xmlNode *root = xmlDocGetRootElement(d), *set = aws_xml_find(root, "Roles");
        for (xmlNode *it = set ? set->children : NULL; it; it = it->next) {
            char name[128], owner[300];
            xmlDoc *td = NULL;
            if (it->type != XML_ELEMENT_NODE || !aws_xml_text(it, "RoleName", name, sizeof name)[0]) continue;
            aws_query_init(&q, "ListRoleTags", IAM_VERSION);
            aws_query_add(&q, "RoleName", name);
            rc = q.oom ? -ENOMEM : aws_query_call(c->aws, "iam", "ListRoleTags", q.s, &td, NULL, 0, &err);
            aws_buf_free(&q);
            bool dead = !rc && ecs_owner_dead(xml_owner_of(aws_xml_find(xmlDocGetRootElement(td), "Tags"), "Key",
                                                           "Value", owner, sizeof owner));
            xmlFreeDoc(td);
            herd_cluster *s = dead ? standin(c) : NULL;
            if (!s) continue;
            say(c, owner, name);
            snprintf(s->task_role_made, sizeof s->task_role_made, "%s", name);
            s->set.task_role_policies = attached_policies(c, name);
            s->task_policies_attached = ecs_strv_len(s->set.task_role_policies);
            ecs_teardown(s);
            standin_free(s);
        }
        char trunc[16];
        aws_xml_text(aws_xml_find(root, "IsTruncated"), NULL, trunc, sizeof trunc);
        aws_xml_text(aws_xml_find(root, "Marker"), NULL, marker, sizeof marker);
        xmlFreeDoc(d);
        if (strcmp(trunc, "true") != 0 || !marker[0]) return;
    }
}

static void sweep_log_groups(herd_cluster *c)
{
    const char *next = NULL;
    json_t *resp = NULL;
    herd_err err = { 0 };
    do {
        json_t *req = json_pack("{s:s}", "logGroupNamePrefix", "/herd/"), *lr = NULL, *g;
        if (next) json_object_set_new(req, "nextToken", json_string(next));
        int rc = aws_json_call(c->aws, AWS_LOGS, "DescribeLogGroups", req, &lr, NULL, 0, &err);
        json_decref(req);
        if (rc) { herd_log(c->env, HERD_LOG_WARN, "%s: sweep: %s", c->cls, err.msg); break; }
        json_decref(resp);
        resp = lr;
        size_t i;
        json_array_foreach(json_object_get(resp, "logGroups"), i, g) {
            json_t *tr = NULL, *tq = json_pack("{s:O}", "logGroupName", json_object_get(g, "logGroupName"));
            rc = aws_json_call(c->aws, AWS_LOGS, "ListTagsLogGroup", tq, &tr, NULL, 0, &err);
            json_decref(tq);
            const char *owner = rc ? NULL : json_string_value(json_object_get(json_object_get(tr, "tags"), ECS_OWNER_TAG));
            herd_cluster *s = ecs_owner_dead(owner) ? standin(c) : NULL;
            if (s) {
                say(c, owner, json_string_value(json_object_get(g, "logGroupName")));
                snprintf(s->log_group, sizeof s->log_group, "%s", json_string_value(json_object_get(g, "logGroupName")));
                s->log_group_made = true;
                ecs_teardown(s);
                standin_free(s);
            }
            json_decref(tr);
        }
        next = json_string_value(json_object_get(resp, "nextToken"));
    } while (next);
    json_decref(resp);
}

void ecs_sweep(herd_cluster *c)
{
    unsigned long before = aws_client_calls(c->aws);
    aws_buf dead = { 0 };
    sweep_clusters(c, &dead);
    if (c->set.cluster_arn) stop_tasks(c, c->set.cluster_arn, false);
    sweep_task_definitions(c);
    sweep_security_groups(c);
    sweep_roles(c);
    sweep_log_groups(c);
    for (char *line = dead.s, *nl; line && *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) break;
        *nl = 0;
        char *arn = strchr(line, '\t'), *name = arn ? strchr(arn + 1, '\t') : NULL;
        herd_cluster *s = name ? standin(c) : NULL;
        if (!s) continue;
        *arn++ = 0;
        *name++ = 0;
        snprintf(s->cluster_arn, sizeof s->cluster_arn, "%s", arn);
        snprintf(s->cluster_name, sizeof s->cluster_name, "%s", name);
        s->cluster_made = true;
        ecs_teardown(s);
        standin_free(s);
    }
    aws_buf_free(&dead);
    herd_log(c->env, HERD_LOG_DEBUG, "%s: the sweep of dead runs' resources took %lu AWS requests", c->cls,
             aws_client_calls(c->aws) - before);
}
