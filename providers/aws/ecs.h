/* providers/aws/ecs.h — what the ECS provider's files share (above the AWS
 * client of aws.h), each file using only those below it: ecs_tags (the tags,
 * the owner of a run, small helpers), ecs_options (the cluster_kwargs and
 * their checks), ecs_tasks (RunTask, the DescribeTasks poller, StopTask),
 * ecs_setup (what the cluster creates before the first task and deletes on
 * close), ecs_sweep (what runs of this machine whose process is gone left,
 * found by their herd-owner tag and deleted with ecs_tasks' StopTask and
 * ecs_setup's teardown) and the hub ecs.c (the hooks and the FargateCluster
 * and ECSCluster descriptors). */
#ifndef HERD_AWS_ECS_H
#define HERD_AWS_ECS_H

#include "aws.h"

#include <jansson.h>
#include <pthread.h>

typedef struct ecs_settings {
    char *image, *cluster_arn, *cluster_name_template, *worker_task_definition_arn;
    char *execution_role_arn, *task_role_arn, *logs_group, *logs_prefix, *vpc;
    char *platform_version, *cpu_architecture, *region, *endpoint_url, *worker_command;
    char **task_role_policies, **subnets, **security_groups;   /* NULL-terminated */
    herd_value *environment, *tags;                             /* maps of strings */
    herd_value *volumes, *mount_points;                         /* lists of maps (task definition's shapes) */
    int n_workers, worker_cpu, worker_mem, nthreads, logs_retention, worker_gpu, scheduler_cpu, scheduler_mem;
    bool fargate_scheduler, fargate, spot, private_ip, skip_cleanup;
    double poll_interval;
} ecs_settings;

typedef struct ecs_worker {
    char name[64];
    char arn[256];               /* "" until RunTask answered */
    char ip[64];
    char detail[160];
    int state;                   /* HERD_WORKER_* */
    bool retiring;               /* StopTask asked by us: STOPPED is no failure */
    bool logs_pending, logs_read; /* failed: its last log lines are (being) added to detail */
} ecs_worker;

struct herd_cluster {
    const herd_cluster_env *env;
    const char *cls;             /* "FargateCluster" or "ECSCluster", for messages */
    ecs_settings set;
    aws_client *aws;
    pthread_mutex_t mu;          /* guards the workers and the flags below */
    pthread_cond_t cv;
    pthread_mutex_t api_mu;      /* one scale/retire/close at a time */
    pthread_t poller;
    bool poller_on, closing, set_up;
    ecs_worker **w;
    size_t nw, capw;
    unsigned next_id;
    char dial[64];               /* the address tasks dial the scheduler at */
    char sched_arn[256];         /* the scheduler task (fargate_scheduler), "" when none runs */
    bool sched_tls;              /* it listens on tls:// (security: temporary) */
    int dash_port;               /* fargate_scheduler: the dashboard port its security group opens, or -1 */
    char sched_private[96];      /* what workers dial when the client dials its public IP, else "" */
    /* what the cluster uses, and what it created itself (deleted on close) */
    char cluster_arn[256], cluster_name[256], log_group[256], vpc[64], sg_made[64];
    char container[256], exec_role[256], task_role[256], exec_role_made[128], task_role_made[128], td_arn[512];
    bool cluster_made, log_group_made, td_made, exec_policy_attached;
    char owner[300];             /* herd-owner tag: HOST:PID:START of this process */
    size_t task_policies_attached;
    char **subnets, **sgs;       /* NULL-terminated, owned */
};

extern const herd_param ecs_params[];
int  ecs_settings_read(ecs_settings *s, const herd_value *kw, bool fargate_default, herd_err *err);
void ecs_settings_free(ecs_settings *s);
int  ecs_fargate_pair_ok(int cpu, int mem, char *why, size_t cap);

int  ecs_setup(herd_cluster *c, herd_err *err);      /* creates what is not given, in order */
void ecs_teardown(herd_cluster *c);                  /* deletes what ecs_setup created, in order */
bool ecs_teardown_done(const herd_cluster *c);       /* nothing it created is left */
#define ECS_EXEC_POLICY "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
#define ECS_ROLE_PATH "/herd/"                       /* every role herd creates, for the sweep */
#define ECS_TD_PREFIX "herd-"                        /* every task definition family herd registers */

int  ecs_run(herd_cluster *c, int n, herd_err *err); /* RunTask for n new workers */
int  ecs_poll_start(herd_cluster *c, herd_err *err);
void ecs_poll_stop(herd_cluster *c);
int  ecs_describe(herd_cluster *c, herd_err *err);    /* one DescribeTasks round over live tasks */
int  ecs_stop_task(herd_cluster *c, const char *arn, const char *reason, herd_err *err);
void ecs_stop_all(herd_cluster *c, double timeout);   /* StopTask each live task, wait for STOPPED */

/* ecs_sched.c: the scheduler as an ECS task (fargate_scheduler) */
#define ECS_SCHED_PORT 8786
#define ECS_SCHED_NAME "herd-scheduler"   /* the scheduler's certificate's name under security: temporary */
int  ecs_sched_start(herd_cluster *c, char *addr_out, size_t cap, herd_err *err);   /* RunTask, RUNNING, its address */
void ecs_sched_stop(herd_cluster *c);                                             /* StopTask, wait for STOPPED */
json_t *ecs_task_request(herd_cluster *c, int count, json_t *cmd, json_t *envl);  /* RunTask's request (steals) */
json_t *ecs_worker_environment(herd_cluster *c, const char *const *envp);              /* envp, then the user's */
const char *ecs_task_ip(json_t *task);                                           /* its private IPv4 address */
const char *ecs_task_eni(json_t *task);                                          /* its network interface's id */
bool ecs_public_ip(const herd_cluster *c);            /* tasks get a public IP (Fargate, fargate_use_private_ip false) */

/* ecs_sweep.c: what runs of this machine whose process is gone left, found
   by tag account-wide (the region's), stopped and deleted */
void ecs_sweep(herd_cluster *c);

/* ecs_tags.c */
#define ECS_OWNER_TAG "herd-owner"
void    ecs_owner_self(char *out, size_t cap);       /* HOST:PID:START of this process */
int     ecs_owner_dead(const char *owner);           /* 1: a run of this machine whose process is gone */
void    ecs_each_tag(herd_cluster *c, void (*fn)(void *ud, size_t i, const char *k, const char *v), void *ud);
json_t *ecs_tags_json(herd_cluster *c, const char *kkey, const char *vkey);   /* [{kkey: K, vkey: V}] */
json_t *ecs_tags_map(herd_cluster *c);                                       /* {K: V} */
void    ecs_tags_query(herd_cluster *c, aws_buf *q, const char *fmt_k, const char *fmt_v);
json_t *ecs_value_json(const herd_value *v);
char  **ecs_strv_dup(const herd_value *list);
void    ecs_strv_free(char **v);
size_t  ecs_strv_len(char **v);

#endif
