/* providers/aws/ecs_setup.c — what an ECS cluster needs before its first task,
 * created in order when not given (each step logged): the ECS cluster, the log
 * group, the network (the default VPC's subnets), a security group open within
 * itself, the execution and task roles, the workers' task definition; and the
 * teardown on close, in the reverse order, of what this cluster created and
 * nothing else. Everything created is tagged herd-cluster=<name>,
 * createdBy=herd and herd-owner=HOST:PID:START (ecs_tags), by which
 * ecs_sweep finds what a killed run left; roles live under the path /herd/
 * and task definition families begin with herd-, for the same search. The
 * execution role gets AWS's managed AmazonECSTaskExecutionRolePolicy, the
 * task role the managed policies of task_role_policies (AttachRolePolicy),
 * each detached before DeleteRole. */
#include "ecs.h"

#include <errno.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* names and ARNs are cut to the fixed buffers of the cluster: AWS's own
   limits are below them */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define EC2_VERSION "2016-11-15"
#define IAM_VERSION "2010-05-08"
static int ecs_call(herd_cluster *c, const char *op, json_t *req, json_t **resp, char *code, herd_err *err)
{
    int rc = aws_json_call(c->aws, AWS_ECS, op, req, resp, code, code ? AWS_CODE_MAX : 0, err);
    json_decref(req);
    return rc;
}

static int logs_call(herd_cluster *c, const char *op, json_t *req, json_t **resp, char *code, herd_err *err)
{
    int rc = aws_json_call(c->aws, AWS_LOGS, op, req, resp, code, code ? AWS_CODE_MAX : 0, err);
    json_decref(req);
    return rc;
}

static int query(herd_cluster *c, const char *svc, aws_buf *q, const char *op, xmlDoc **resp, char *code,
                 herd_err *err)
{
    if (q->oom) { aws_buf_free(q); return herd_err_set(err, -ENOMEM, "out of memory"); }
    int rc = aws_query_call(c->aws, svc, op, q->s, resp, code, code ? AWS_CODE_MAX : 0, err);
    aws_buf_free(q);
    return rc;
}

/* A name AWS accepts (IAM roles: 64 characters) from the cluster's. */
static void short_name(char *out, size_t cap, const char *base, const char *suffix, size_t max)
{
    size_t room = max - strlen(suffix);
    snprintf(out, cap, "%.*s%s", (int)room, base, suffix);
}

static int setup_cluster(herd_cluster *c, herd_err *err)
{
    json_t *resp = NULL;
    int rc;
    if (c->set.cluster_arn) {
        rc = ecs_call(c, "DescribeClusters", json_pack("{s:[s]}", "clusters", c->set.cluster_arn), &resp, NULL, err);
        if (rc) return herd_err_prefix(err, "cluster_arn %s", c->set.cluster_arn);
        json_t *cl = json_array_get(json_object_get(resp, "clusters"), 0);
        const char *status = json_string_value(json_object_get(cl, "status"));
        if (!cl || !status || strcmp(status, "ACTIVE") != 0) {
            json_t *f = json_array_get(json_object_get(resp, "failures"), 0);
            const char *reason = json_string_value(json_object_get(f, "reason"));
            herd_err_set(err, -HERD_ECONFIG, "cluster_arn: no active ECS cluster %s (%s)", c->set.cluster_arn,
                         reason ? reason : status ? status : "not found");
            json_decref(resp);
            return err->code;
        }
        const char *arn = json_string_value(json_object_get(cl, "clusterArn"));
        const char *name = json_string_value(json_object_get(cl, "clusterName"));
        snprintf(c->cluster_arn, sizeof c->cluster_arn, "%s", arn ? arn : c->set.cluster_arn);
        snprintf(c->cluster_name, sizeof c->cluster_name, "%s", name ? name : "");
        json_decref(resp);
        herd_log(c->env, HERD_LOG_INFO, "%s: using ECS cluster %s", c->cls, c->cluster_arn);
        return 0;
    }
    /* the template's {name} replaced by the herd cluster's name */
    const char *t = c->set.cluster_name_template, *at = strstr(t, "{name}");
    snprintf(c->cluster_name, sizeof c->cluster_name, "%.*s%s%s", (int)(at - t), t, c->env->name, at + 6);
    json_t *req = json_pack("{s:s, s:o}", "clusterName", c->cluster_name, "tags", ecs_tags_json(c, "key", "value"));
    if (c->set.spot) json_object_set_new(req, "capacityProviders", json_pack("[s,s]", "FARGATE", "FARGATE_SPOT"));
    rc = ecs_call(c, "CreateCluster", req, &resp, NULL, err);
    if (rc) return rc;
    const char *arn = json_string_value(json_object_get(json_object_get(resp, "cluster"), "clusterArn"));
    if (!arn) {
        json_decref(resp);
        return herd_err_set(err, -HERD_EPROTO, "ecs CreateCluster: no cluster.clusterArn in the reply");
    }
    snprintf(c->cluster_arn, sizeof c->cluster_arn, "%s", arn);
    c->cluster_made = true;
        json_decref(resp);
    herd_log(c->env, HERD_LOG_INFO, "%s: created ECS cluster %s", c->cls, c->cluster_name);
    return 0;
}

static int setup_logs(herd_cluster *c, herd_err *err)
{
    if (c->set.logs_group) {
        snprintf(c->log_group, sizeof c->log_group, "%s", c->set.logs_group);
        return 0;
    }
    snprintf(c->log_group, sizeof c->log_group, "/herd/%s", c->cluster_name);
    json_t *tags = ecs_tags_map(c);
    char code[AWS_CODE_MAX];
    int rc = logs_call(c, "CreateLogGroup", json_pack("{s:s, s:o}", "logGroupName", c->log_group, "tags", tags), NULL,
                       code, err);
    if (rc && strcmp(code, "ResourceAlreadyExistsException") == 0) {
        herd_log(c->env, HERD_LOG_INFO, "%s: using the existing log group %s", c->cls, c->log_group);
        return 0;
    }
    if (rc) return rc;
    c->log_group_made = true;
        herd_log(c->env, HERD_LOG_INFO, "%s: created log group %s", c->cls, c->log_group);
    return logs_call(c, "PutRetentionPolicy",
                     json_pack("{s:s, s:i}", "logGroupName", c->log_group, "retentionInDays", c->set.logs_retention),
                     NULL, NULL, err);
}

static int setup_network(herd_cluster *c, herd_err *err)
{
    aws_buf q;
    xmlDoc *d = NULL;
    char buf[256];
    int rc;
    size_t nsub = ecs_strv_len(c->set.subnets);
    if (nsub) {
        if (!(c->subnets = calloc(nsub + 1, sizeof *c->subnets))) return herd_err_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < nsub; i++)
            if (!(c->subnets[i] = strdup(c->set.subnets[i]))) return herd_err_set(err, -ENOMEM, "out of memory");
        if (ecs_strv_len(c->set.security_groups)) return 0;       /* the VPC is needed only to create a group */
        aws_query_init(&q, "DescribeSubnets", EC2_VERSION);
        aws_query_add(&q, "SubnetId.1", c->subnets[0]);
        if ((rc = query(c, "ec2", &q, "DescribeSubnets", &d, NULL, err))) return herd_err_prefix(err, "subnets");
        xmlNode *it = aws_xml_child(aws_xml_find(xmlDocGetRootElement(d), "subnetSet"), "item");
        snprintf(c->vpc, sizeof c->vpc, "%s", aws_xml_text(it, "vpcId", buf, sizeof buf));
        xmlFreeDoc(d);
        return 0;
    }
    if (strcmp(c->set.vpc, "default") == 0) {
        aws_query_init(&q, "DescribeVpcs", EC2_VERSION);
        aws_query_add(&q, "Filter.1.Name", "is-default");
        aws_query_add(&q, "Filter.1.Value.1", "true");
        if ((rc = query(c, "ec2", &q, "DescribeVpcs", &d, NULL, err))) return herd_err_prefix(err, "vpc");
        xmlNode *it = aws_xml_child(aws_xml_find(xmlDocGetRootElement(d), "vpcSet"), "item");
        aws_xml_text(it, "vpcId", buf, sizeof buf);
        xmlFreeDoc(d);
        if (!buf[0])
            return herd_err_set(err, -HERD_ECONFIG, "vpc: the region %s has no default VPC; give vpc or subnets",
                                aws_client_region(c->aws));
        snprintf(c->vpc, sizeof c->vpc, "%s", buf);
    } else {
        snprintf(c->vpc, sizeof c->vpc, "%s", c->set.vpc);
    }
    aws_query_init(&q, "DescribeSubnets", EC2_VERSION);
    aws_query_add(&q, "Filter.1.Name", "vpc-id");
    aws_query_add(&q, "Filter.1.Value.1", c->vpc);
    if ((rc = query(c, "ec2", &q, "DescribeSubnets", &d, NULL, err))) return herd_err_prefix(err, "vpc %s", c->vpc);
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(d), "subnetSet");
    size_t n = 0;
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) n++;
    c->subnets = calloc(n + 1, sizeof *c->subnets);
    n = 0;
    for (xmlNode *it = set ? set->children : NULL; c->subnets && it; it = it->next)
        if (aws_xml_text(it, "subnetId", buf, sizeof buf)[0]) c->subnets[n++] = strdup(buf);
    xmlFreeDoc(d);
    if (!c->subnets) return herd_err_set(err, -ENOMEM, "out of memory");
    if (!n) return herd_err_set(err, -HERD_ECONFIG, "vpc %s: no subnets; give subnets", c->vpc);
    herd_log(c->env, HERD_LOG_INFO, "%s: VPC %s, %zu subnets", c->cls, c->vpc, n);
    return 0;
}

static int setup_security_group(herd_cluster *c, herd_err *err)
{
    size_t n = ecs_strv_len(c->set.security_groups);
    if (n) {
        if (!(c->sgs = calloc(n + 1, sizeof *c->sgs))) return herd_err_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            if (!(c->sgs[i] = strdup(c->set.security_groups[i]))) return herd_err_set(err, -ENOMEM, "out of memory");
        return 0;
    }
    aws_buf q;
    xmlDoc *d = NULL;
    char name[256];
    snprintf(name, sizeof name, "herd-%s", c->cluster_name);
    aws_query_init(&q, "CreateSecurityGroup", EC2_VERSION);
    aws_query_add(&q, "GroupName", name);
    aws_query_add(&q, "GroupDescription", "herd workers (all traffic within the group)");
    aws_query_add(&q, "VpcId", c->vpc);
    aws_query_add(&q, "TagSpecification.1.ResourceType", "security-group");
    ecs_tags_query(c, &q, "TagSpecification.1.Tag.%zu.Key", "TagSpecification.1.Tag.%zu.Value");
    int rc = query(c, "ec2", &q, "CreateSecurityGroup", &d, NULL, err);
    if (rc) return rc;
    aws_xml_text(aws_xml_find(xmlDocGetRootElement(d), "groupId"), NULL, c->sg_made, sizeof c->sg_made);
    xmlFreeDoc(d);
    if (!c->sg_made[0]) return herd_err_set(err, -HERD_EPROTO, "ec2 CreateSecurityGroup: no groupId in the reply");
        if (!(c->sgs = calloc(2, sizeof *c->sgs)) || !(c->sgs[0] = strdup(c->sg_made)))
        return herd_err_set(err, -ENOMEM, "out of memory");
    herd_log(c->env, HERD_LOG_INFO, "%s: created security group %s in %s", c->cls, c->sg_made, c->vpc);
    aws_query_init(&q, "AuthorizeSecurityGroupIngress", EC2_VERSION);
    aws_query_add(&q, "GroupId", c->sg_made);
    aws_query_add(&q, "IpPermissions.1.IpProtocol", "-1");
    aws_query_add(&q, "IpPermissions.1.Groups.1.GroupId", c->sg_made);
    if (c->set.fargate_scheduler) {   /* the scheduler task's port, for this machine in or peered with the VPC */
        char port[16];
        snprintf(port, sizeof port, "%d", ECS_SCHED_PORT);
        aws_query_add(&q, "IpPermissions.2.IpProtocol", "tcp");
        aws_query_add(&q, "IpPermissions.2.FromPort", port);
        aws_query_add(&q, "IpPermissions.2.ToPort", port);
        aws_query_add(&q, "IpPermissions.2.IpRanges.1.CidrIp", "0.0.0.0/0");
        if (c->dash_port > 0) {       /* its dashboard (client_kwargs.dashboard_address beyond the loopback) */
            snprintf(port, sizeof port, "%d", c->dash_port);
            aws_query_add(&q, "IpPermissions.3.IpProtocol", "tcp");
            aws_query_add(&q, "IpPermissions.3.FromPort", port);
            aws_query_add(&q, "IpPermissions.3.ToPort", port);
            aws_query_add(&q, "IpPermissions.3.IpRanges.1.CidrIp", "0.0.0.0/0");
        }
    }
    return query(c, "ec2", &q, "AuthorizeSecurityGroupIngress", NULL, NULL, err);
}

/* A role ECS tasks assume, under the path /herd/, with the managed policies
   given attached (*attached counts those that are, for the teardown). */
static int create_role(herd_cluster *c, const char *suffix, const char *what, char *name_out, size_t ncap,
                       char *arn_out, size_t acap, char *const *policies, size_t *attached, herd_err *err)
{
    short_name(name_out, ncap, c->cluster_name, suffix, 64);
    aws_buf q;
    xmlDoc *d = NULL;
    aws_query_init(&q, "CreateRole", IAM_VERSION);
    aws_query_add(&q, "RoleName", name_out);
    aws_query_add(&q, "Path", ECS_ROLE_PATH);
    aws_query_add(&q, "AssumeRolePolicyDocument",
                  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":"
                  "\"ecs-tasks.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}");
    aws_query_add(&q, "Description", what);
    ecs_tags_query(c, &q, "Tags.member.%zu.Key", "Tags.member.%zu.Value");
    int rc = query(c, "iam", &q, "CreateRole", &d, NULL, err);
    if (rc) { name_out[0] = 0; return rc; }
    aws_xml_text(aws_xml_find(xmlDocGetRootElement(d), "Arn"), NULL, arn_out, acap);
    xmlFreeDoc(d);
    herd_log(c->env, HERD_LOG_INFO, "%s: created %s %s", c->cls, what, name_out);
    for (size_t i = 0; !rc && policies && policies[i]; i++) {
        aws_query_init(&q, "AttachRolePolicy", IAM_VERSION);
        aws_query_add(&q, "RoleName", name_out);
        aws_query_add(&q, "PolicyArn", policies[i]);
        if (!(rc = query(c, "iam", &q, "AttachRolePolicy", NULL, NULL, err))) {
            (*attached)++;
            herd_log(c->env, HERD_LOG_INFO, "%s: attached %s to %s", c->cls, policies[i], name_out);
        } else {
            herd_err_prefix(err, "%s %s: attaching %s", what, name_out, policies[i]);
        }
    }
    return rc;
}

static int setup_roles(herd_cluster *c, herd_err *err)
{
    int rc = 0;
    if (c->set.execution_role_arn) {
        snprintf(c->exec_role, sizeof c->exec_role, "%s", c->set.execution_role_arn);
    } else {
        char *const exec[] = { ECS_EXEC_POLICY, NULL };
        size_t n = 0;
        rc = create_role(c, "-exec", "execution role", c->exec_role_made, sizeof c->exec_role_made, c->exec_role,
                         sizeof c->exec_role, exec, &n, err);
        c->exec_policy_attached = n == 1;
    }
    if (rc) return rc;
    if (c->set.task_role_arn) snprintf(c->task_role, sizeof c->task_role, "%s", c->set.task_role_arn);
    else if (ecs_strv_len(c->set.task_role_policies))
        rc = create_role(c, "-task", "task role", c->task_role_made, sizeof c->task_role_made, c->task_role,
                         sizeof c->task_role, c->set.task_role_policies, &c->task_policies_attached, err);
    return rc;
}

static int setup_task_definition(herd_cluster *c, herd_err *err)
{
    if (c->set.worker_task_definition_arn) {
        /* its first container runs the workers: RunTask's override names it */
        json_t *resp = NULL;
        int rc = ecs_call(c, "DescribeTaskDefinition",
                          json_pack("{s:s}", "taskDefinition", c->set.worker_task_definition_arn), &resp, NULL, err);
        if (rc) return herd_err_prefix(err, "worker_task_definition_arn %s", c->set.worker_task_definition_arn);
        json_t *td = json_object_get(resp, "taskDefinition");
        const char *name = json_string_value(json_object_get(json_array_get(json_object_get(td, "containerDefinitions"), 0), "name"));
        snprintf(c->container, sizeof c->container, "%s", name ? name : "");
        snprintf(c->td_arn, sizeof c->td_arn, "%s", json_string_value(json_object_get(td, "taskDefinitionArn")) ?
                 json_string_value(json_object_get(td, "taskDefinitionArn")) : c->set.worker_task_definition_arn);
        json_decref(resp);
        if (!name) return herd_err_set(err, -HERD_ECONFIG, "worker_task_definition_arn %s: no container definition",
                                       c->set.worker_task_definition_arn);
        return 0;
    }
    snprintf(c->container, sizeof c->container, "herd-worker");
    char family[256], cpu[16], mem[16];
    /* herd- first: the sweep lists the families by that prefix */
    snprintf(family, sizeof family, "%s%.240s-worker",
             strncmp(c->cluster_name, ECS_TD_PREFIX, strlen(ECS_TD_PREFIX)) ? ECS_TD_PREFIX : "", c->cluster_name);
    snprintf(cpu, sizeof cpu, "%d", c->set.worker_cpu);
    snprintf(mem, sizeof mem, "%d", c->set.worker_mem);
    json_t *container = json_pack(
        "{s:s, s:s, s:b, s:i, s:i, s:{s:s, s:{s:s, s:s, s:s}}}", "name", "herd-worker", "image", c->set.image,
        "essential", 1, "cpu", c->set.worker_cpu, "memory", c->set.worker_mem, "logConfiguration", "logDriver",
        "awslogs", "options", "awslogs-group", c->log_group, "awslogs-region", aws_client_region(c->aws),
        "awslogs-stream-prefix", c->set.logs_prefix);
    if (c->set.worker_gpu) {
        char n[16];
        snprintf(n, sizeof n, "%d", c->set.worker_gpu);
        json_object_set_new(container, "resourceRequirements", json_pack("[{s:s, s:s}]", "type", "GPU", "value", n));
    }
    if (herd_len(c->set.mount_points)) json_object_set_new(container, "mountPoints", ecs_value_json(c->set.mount_points));
    json_t *req = json_pack("{s:s, s:s, s:[o], s:s, s:s, s:{s:s, s:s}, s:o}", "family", family, "networkMode",
                            "awsvpc", "containerDefinitions", container, "cpu", cpu, "memory", mem,
                            "runtimePlatform", "cpuArchitecture", c->set.cpu_architecture, "operatingSystemFamily",
                            "LINUX", "tags", ecs_tags_json(c, "key", "value"));
    json_object_set_new(req, "requiresCompatibilities", json_pack("[s]", c->set.fargate ? "FARGATE" : "EC2"));
    if (herd_len(c->set.volumes)) json_object_set_new(req, "volumes", ecs_value_json(c->set.volumes));
    if (c->exec_role[0]) json_object_set_new(req, "executionRoleArn", json_string(c->exec_role));
    if (c->task_role[0]) json_object_set_new(req, "taskRoleArn", json_string(c->task_role));
    json_t *resp = NULL;
    int rc = ecs_call(c, "RegisterTaskDefinition", req, &resp, NULL, err);
    if (rc) return rc;
    const char *arn = json_string_value(json_object_get(json_object_get(resp, "taskDefinition"), "taskDefinitionArn"));
    if (arn) snprintf(c->td_arn, sizeof c->td_arn, "%s", arn);
    json_decref(resp);
    if (!arn) return herd_err_set(err, -HERD_EPROTO, "ecs RegisterTaskDefinition: no taskDefinitionArn in the reply");
    c->td_made = true;
        herd_log(c->env, HERD_LOG_INFO, "%s: registered task definition %s", c->cls, c->td_arn);
    return 0;
}

int ecs_setup(herd_cluster *c, herd_err *err)
{
    int rc = setup_cluster(c, err);
    bool own_td = !c->set.worker_task_definition_arn;
    if (!rc && own_td) rc = setup_logs(c, err);
    if (!rc) rc = setup_network(c, err);
    if (!rc) rc = setup_security_group(c, err);
    if (!rc && own_td) rc = setup_roles(c, err);
    if (!rc) rc = setup_task_definition(c, err);
    return rc;
}

/* ---- teardown, newest first ---- */

static void warn(herd_cluster *c, const char *what, herd_err *err)
{
    herd_log(c->env, HERD_LOG_WARN, "%s: could not delete %s: %s", c->cls, what, err->msg);
}

/* An error that means the resource is gone already (deleted by hand, or by
   an earlier attempt whose answer was lost): nothing left to do. */
static bool gone(const char *code)
{
    static const char *const codes[] = { "InvalidGroup.NotFound", "NoSuchEntity", "ResourceNotFoundException",
                                         "ClusterNotFoundException", NULL };
    for (size_t i = 0; codes[i]; i++)
        if (strcmp(code, codes[i]) == 0) return true;
    return false;
}

/* its n attached managed policies first (DeleteRole refuses a role that
   has any); true when it is gone */
static bool delete_role(herd_cluster *c, const char *name, char *const *policies, size_t n)
{
    herd_err err = { 0 };
    char code[AWS_CODE_MAX];
    aws_buf q;
    for (size_t i = 0; i < n; i++) {
        aws_query_init(&q, "DetachRolePolicy", IAM_VERSION);
        aws_query_add(&q, "RoleName", name);
        aws_query_add(&q, "PolicyArn", policies[i]);
        if (query(c, "iam", &q, "DetachRolePolicy", NULL, code, &err) && !gone(code)) warn(c, "a role's policy", &err);
    }
    aws_query_init(&q, "DeleteRole", IAM_VERSION);
    aws_query_add(&q, "RoleName", name);
    if (query(c, "iam", &q, "DeleteRole", NULL, code, &err) && !gone(code)) {
        warn(c, name, &err);
        return false;
    }
    herd_log(c->env, HERD_LOG_INFO, "%s: deleted role %s", c->cls, name);
    return true;
}

/* Each resource's flag is cleared once it is gone; what could not be deleted
   keeps its tags, by which a later start's sweep (ecs_sweep) finds it. */
void ecs_teardown(herd_cluster *c)
{
    herd_err err = { 0 };
    char code[AWS_CODE_MAX];
    if (c->td_made) {
        /* ECS answers ClientException for a task definition already inactive */
        if (ecs_call(c, "DeregisterTaskDefinition", json_pack("{s:s}", "taskDefinition", c->td_arn), NULL, code, &err) &&
            strcmp(code, "ClientException") != 0) {
            warn(c, c->td_arn, &err);
        } else {
            herd_log(c->env, HERD_LOG_INFO, "%s: deregistered task definition %s", c->cls, c->td_arn);
            c->td_made = false;
        }
    }
    if (c->sg_made[0]) {
        /* the tasks' network interfaces linger a while after they stop */
        double until = herd_now() + 120;
        for (;;) {
            aws_buf q;
            aws_query_init(&q, "DeleteSecurityGroup", EC2_VERSION);
            aws_query_add(&q, "GroupId", c->sg_made);
            int rc = query(c, "ec2", &q, "DeleteSecurityGroup", NULL, code, &err);
            if (!rc || gone(code)) {
                herd_log(c->env, HERD_LOG_INFO, "%s: deleted security group %s", c->cls, c->sg_made);
                c->sg_made[0] = 0;
                break;
            }
            if (strcmp(code, "DependencyViolation") != 0 || herd_now() > until) { warn(c, c->sg_made, &err); break; }
            sleep(5);
        }
    }
    if (c->task_role_made[0] && delete_role(c, c->task_role_made, c->set.task_role_policies, c->task_policies_attached))
        c->task_role_made[0] = 0;
    char *const exec[] = { ECS_EXEC_POLICY, NULL };
    if (c->exec_role_made[0] && delete_role(c, c->exec_role_made, exec, c->exec_policy_attached ? 1 : 0))
        c->exec_role_made[0] = 0;
    if (c->log_group_made) {
        /* kept when a task wrote to it: the workers' output may be wanted */
        json_t *resp = NULL;
        if (logs_call(c, "DescribeLogStreams", json_pack("{s:s, s:i}", "logGroupName", c->log_group, "limit", 1),
                      &resp, code, &err)) {
            if (gone(code)) c->log_group_made = false;
            else warn(c, c->log_group, &err);
        } else if (json_array_size(json_object_get(resp, "logStreams"))) {
            herd_log(c->env, HERD_LOG_INFO, "%s: kept log group %s (it holds the workers' logs; retention %d days)",
                     c->cls, c->log_group, c->set.logs_retention);
            c->log_group_made = false;
        } else if (logs_call(c, "DeleteLogGroup", json_pack("{s:s}", "logGroupName", c->log_group), NULL, code, &err) &&
                   !gone(code)) {
            warn(c, c->log_group, &err);
        } else {
            herd_log(c->env, HERD_LOG_INFO, "%s: deleted log group %s", c->cls, c->log_group);
            c->log_group_made = false;
        }
        json_decref(resp);
    }
    if (c->cluster_made) {
        if (ecs_call(c, "DeleteCluster", json_pack("{s:s}", "cluster", c->cluster_arn), NULL, code, &err) && !gone(code))
            warn(c, c->cluster_arn, &err);
        else { herd_log(c->env, HERD_LOG_INFO, "%s: deleted ECS cluster %s", c->cls, c->cluster_name); c->cluster_made = false; }
    }
}

bool ecs_teardown_done(const herd_cluster *c)
{
    return !(c->cluster_made || c->td_made || c->sg_made[0] || c->exec_role_made[0] || c->task_role_made[0] ||
             c->log_group_made);
}
