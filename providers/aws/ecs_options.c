/* providers/aws/ecs_options.c — the cluster_kwargs of FargateCluster and
 * ECSCluster after dask-cloudprovider's ECSCluster: the schema (types,
 * defaults, docs, what herd refuses and why) and ecs_settings_read, the one
 * place that reads them into the cluster's settings and checks what the
 * schema cannot: Fargate's cpu/memory pairs (before any AWS call), the image
 * or task definition, string lists and maps, names, GPUs (EC2 launch type
 * only), volumes and mount points. */
#include "ecs.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ecs_kw {
    const char *image, *cluster_arn, *cluster_name_template, *worker_task_definition_arn, *execution_role_arn;
    const char *task_role_arn, *logs_group, *logs_prefix, *vpc, *platform_version, *cpu_architecture;
    const char *region_name, *endpoint_url, *worker_command;
    const herd_value *task_role_policies, *subnets, *security_groups, *environment, *tags, *volumes, *mount_points;
    int n_workers, worker_cpu, worker_mem, worker_nthreads, logs_retention, worker_gpu, scheduler_cpu, scheduler_mem;
    bool fargate_scheduler, fargate_spot, private_ip, skip_cleanup;   /* fargate_workers is read from the map: null means the class's default */
    double poll_interval;
} ecs_kw;
#define KF(m) HERD_PARAM_FIELD(ecs_kw, m)

/* dask-cloudprovider keys herd does not take, each with the reason */
static const struct { const char *key, *why; } refused[] = {
    { "scheduler_address", "herd runs the scheduler in this process for now; to use a scheduler that already runs, "
                           "give the runner's address instead of cluster_class" },
    { "scheduler_timeout", "herd's scheduler task runs until the cluster closes (no idle timeout)" },
    { "scheduler_port", "the scheduler task listens on 8786; in this process client_kwargs.listen picks its port" },
    { "scheduler_extra_args", "herd's scheduler takes no Dask command-line arguments" },
    { "scheduler_task_definition_arn", "the scheduler task (fargate_scheduler) runs the workers' task definition with "
                                       "its own cpu/memory overrides" },
    { "scheduler_task_kwargs", "arbitrary RunTask fields are not passed through: herd sets RunTask's fields itself" },
    { "worker_extra_args", "herd workers take no Dask command-line arguments (worker_nthreads sets the threads)" },
    { "worker_task_kwargs", "arbitrary RunTask fields are not passed through: herd sets RunTask's fields itself" },
    { "workers_name_start", "herd names workers itself (names are never reused within a cluster)" },
    { "workers_name_step", "herd names workers itself (names are never reused within a cluster)" },
    { "aws_access_key_id", "herd takes no credentials in cluster_kwargs (they would sit in profiles and logs): use "
                           "AWS_ACCESS_KEY_ID, ~/.aws/credentials with AWS_PROFILE, or a role" },
    { "aws_secret_access_key", "herd takes no credentials in cluster_kwargs (they would sit in profiles and logs): "
                               "use AWS_SECRET_ACCESS_KEY, ~/.aws/credentials with AWS_PROFILE, or a role" },
};
#define NREFUSED (sizeof refused / sizeof refused[0])

#define REFUSED(k) { k, HERD_PARAM_ANY, "null", "not supported by herd (the error says why)", HERD_PARAM_NULLABLE, 0, 0 }

const herd_param ecs_params[] = {
    { "image", HERD_PARAM_STRING, "null",
      "Container image of the workers: it must hold this program (worker_command). Required unless "
      "worker_task_definition_arn is given.", HERD_PARAM_NULLABLE, 0, 0, KF(image) },
    { "n_workers", HERD_PARAM_INT, "0", "Worker tasks to start.", 0, 0, 10000, KF(n_workers) },
    { "cluster_arn", HERD_PARAM_STRING, "null",
      "An existing ECS cluster to run the tasks in (nothing is created or deleted there but the tasks). null: "
      "create one named by cluster_name_template, deleted on close.", HERD_PARAM_NULLABLE, 0, 0, KF(cluster_arn) },
    { "cluster_name_template", HERD_PARAM_STRING, "\"herd-{name}\"",
      "Name of the ECS cluster created; {name} is the herd cluster's name.", 0, 0, 0, KF(cluster_name_template) },
    { "fargate_workers", HERD_PARAM_BOOL, "null",
      "Workers on Fargate (true for FargateCluster); false: the EC2 launch type of cluster_arn's instances.",
      HERD_PARAM_NULLABLE, 0, 0 },
    { "fargate_spot", HERD_PARAM_BOOL, "false", "Workers on FARGATE_SPOT capacity (cheaper, may be interrupted).",
      0, 0, 0, KF(fargate_spot) },
    { "worker_cpu", HERD_PARAM_INT, "4096", "CPU units per worker task (1024 = one vCPU).", 0, 128, 16384,
      KF(worker_cpu) },
    { "worker_mem", HERD_PARAM_INT, "16384",
      "Memory per worker task, MiB (on Fargate one of the sizes its cpu allows).", 0, 512, 122880, KF(worker_mem) },
    { "worker_nthreads", HERD_PARAM_INT, "null", "Task slots per worker; null: worker_cpu / 1024, at least 1.",
      HERD_PARAM_NULLABLE, 1, 4096, KF(worker_nthreads) },
    { "worker_task_definition_arn", HERD_PARAM_STRING, "null",
      "An existing task definition for the workers (its first container runs them); null: register one.",
      HERD_PARAM_NULLABLE, 0, 0, KF(worker_task_definition_arn) },
    { "worker_command", HERD_PARAM_STRING, "null",
      "This program's path inside the image; null: the same path as here.", HERD_PARAM_NULLABLE, 0, 0,
      KF(worker_command) },
    { "execution_role_arn", HERD_PARAM_STRING, "null",
      "Role ECS uses to pull the image and write logs; null: create one (AmazonECSTaskExecutionRolePolicy).",
      HERD_PARAM_NULLABLE, 0, 0, KF(execution_role_arn) },
    { "task_role_arn", HERD_PARAM_STRING, "null",
      "Role the workers' tasks run as; null: none, or one created with task_role_policies.", HERD_PARAM_NULLABLE,
      0, 0, KF(task_role_arn) },
    { "task_role_policies", HERD_PARAM_LIST, "[]", "Policy ARNs attached to the task role herd creates.", 0, 0, 0,
      KF(task_role_policies) },
    { "cloudwatch_logs_group", HERD_PARAM_STRING, "null",
      "CloudWatch Logs group of the workers' output; null: create /herd/<cluster>, deleted on close when empty.",
      HERD_PARAM_NULLABLE, 0, 0, KF(logs_group) },
    { "cloudwatch_logs_stream_prefix", HERD_PARAM_STRING, "\"herd\"", "Prefix of the workers' log streams.", 0, 0, 0,
      KF(logs_prefix) },
    { "cloudwatch_logs_default_retention", HERD_PARAM_INT, "30", "Retention (days) of a log group herd creates.",
      0, 1, 3653, KF(logs_retention) },
    { "vpc", HERD_PARAM_STRING, "\"default\"", "VPC of the tasks: \"default\" (the region's default VPC) or an id.",
      0, 0, 0, KF(vpc) },
    { "subnets", HERD_PARAM_LIST, "[]", "Subnet ids of the tasks; []: every subnet of the VPC.", 0, 0, 0,
      KF(subnets) },
    { "security_groups", HERD_PARAM_LIST, "[]",
      "Security group ids of the tasks; []: create one allowing all traffic within itself.", 0, 0, 0,
      KF(security_groups) },
    { "fargate_use_private_ip", HERD_PARAM_BOOL, "false",
      "No public IP for Fargate tasks (the subnets then need a NAT gateway or endpoints to pull the image).", 0, 0,
      0, KF(private_ip) },
    { "environment", HERD_PARAM_MAP, "{}", "Environment variables of the workers (strings).", 0, 0, 0,
      KF(environment) },
    { "tags", HERD_PARAM_MAP, "{}", "Tags added to everything created (herd-cluster and createdBy are always set).",
      0, 0, 0, KF(tags) },
    { "platform_version", HERD_PARAM_STRING, "null", "Fargate platform version (RunTask); null: LATEST.",
      HERD_PARAM_NULLABLE, 0, 0, KF(platform_version) },
    { "cpu_architecture", HERD_PARAM_STRING, "\"X86_64\"", "X86_64 or ARM64.", 0, 0, 0, KF(cpu_architecture) },
    { "region_name", HERD_PARAM_STRING, "null",
      "AWS region; null: AWS_REGION, AWS_DEFAULT_REGION or the profile's region.", HERD_PARAM_NULLABLE, 0, 0,
      KF(region_name) },
    { "endpoint_url", HERD_PARAM_STRING, "null",
      "One endpoint for every AWS service (an emulator, a private endpoint); null: AWS_ENDPOINT_URL or AWS's own.",
      HERD_PARAM_NULLABLE, 0, 0, KF(endpoint_url) },
    { "skip_cleanup", HERD_PARAM_BOOL, "false",
      "Skip the sweep, at start, of what earlier runs on this machine left when their process was killed before "
      "close (found in the region by their herd-owner tag).", 0, 0, 0, KF(skip_cleanup) },
    { "worker_gpu", HERD_PARAM_INT, "0",
      "GPUs per worker task (the container's GPU resourceRequirements). The EC2 launch type only: ECSCluster with "
      "fargate_workers: false and a cluster_arn whose container instances have GPUs; Fargate has none.", 0, 0, 64,
      KF(worker_gpu) },
    { "volumes", HERD_PARAM_LIST, "[]",
      "Volumes of the workers' task definition, in ECS's shape ({name, efsVolumeConfiguration | host | "
      "dockerVolumeConfiguration | fsxWindowsFileServerVolumeConfiguration}); on Fargate EFS or a task-scoped "
      "bind mount ({name} alone).", 0, 0, 0, KF(volumes) },
    { "mount_points", HERD_PARAM_LIST, "[]",
      "Where the workers' container mounts volumes: [{sourceVolume, containerPath, readOnly}], each sourceVolume "
      "one of volumes.", 0, 0, 0, KF(mount_points) },
    { "poll_interval", HERD_PARAM_DURATION, "1", "How often the tasks' states are read (DescribeTasks).", 0, 0.01,
      60, KF(poll_interval) },
    { "fargate_scheduler", HERD_PARAM_BOOL, "false",
      "Run the scheduler as an ECS task too (RunTask of the workers' task definition with the scheduler's command "
      "and scheduler_cpu/scheduler_mem, listening on 8786): clients and workers dial its private IP, so this "
      "machine must reach the VPC. false (herd's default, unlike dask-cloudprovider): the scheduler runs in this "
      "process and the workers dial back to it (scheduler_listen). security: temporary is refused with it.", 0, 0,
      0, KF(fargate_scheduler) },
    { "scheduler_cpu", HERD_PARAM_INT, "1024", "CPU units of the scheduler task (fargate_scheduler).", 0, 128,
      16384, KF(scheduler_cpu) },
    { "scheduler_mem", HERD_PARAM_INT, "4096", "Memory of the scheduler task in MiB (fargate_scheduler).", 0, 512,
      122880, KF(scheduler_mem) },
    REFUSED("scheduler_address"),
    REFUSED("scheduler_timeout"), REFUSED("scheduler_port"), REFUSED("scheduler_extra_args"),
    REFUSED("scheduler_task_definition_arn"), REFUSED("scheduler_task_kwargs"), REFUSED("worker_extra_args"),
    REFUSED("worker_task_kwargs"),
    { "mount_volumes_on_scheduler", HERD_PARAM_BOOL, "null",
      "With fargate_scheduler: the scheduler task runs the workers' task definition, so volumes/mount_points are "
      "mounted there too: true says so; false with volumes is refused (it cannot be had).", HERD_PARAM_NULLABLE, 0,
      0 },
    REFUSED("workers_name_start"), REFUSED("workers_name_step"),
    REFUSED("aws_access_key_id"), REFUSED("aws_secret_access_key"),
    { NULL }
};

int ecs_fargate_pair_ok(int cpu, int mem, char *why, size_t cap)
{
    static const struct { int cpu, lo, hi, step; } pairs[] = {
        { 256, 512, 2048, 0 },  { 512, 1024, 4096, 1024 },     { 1024, 2048, 8192, 1024 },
        { 2048, 4096, 16384, 1024 }, { 4096, 8192, 30720, 1024 }, { 8192, 16384, 61440, 4096 },
        { 16384, 32768, 122880, 8192 },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (pairs[i].cpu != cpu) continue;
        bool ok = pairs[i].step ? mem >= pairs[i].lo && mem <= pairs[i].hi && (mem - pairs[i].lo) % pairs[i].step == 0
                                : mem == 512 || mem == 1024 || mem == 2048;
        if (ok) return 1;
        if (pairs[i].step)
            snprintf(why, cap, "Fargate's worker_cpu %d allows worker_mem %d to %d MiB in steps of %d, got %d", cpu,
                     pairs[i].lo, pairs[i].hi, pairs[i].step, mem);
        else
            snprintf(why, cap, "Fargate's worker_cpu 256 allows worker_mem 512, 1024 or 2048 MiB, got %d", mem);
        return 0;
    }
    snprintf(why, cap, "Fargate's worker_cpu is one of 256, 512, 1024, 2048, 4096, 8192, 16384, got %d", cpu);
    return 0;
}

static int dup(char **dst, const char *s)
{
    *dst = NULL;
    if (!s) return 0;
    return (*dst = strdup(s)) ? 0 : -ENOMEM;
}

static int strings_list(const char *key, const herd_value *v, char ***out, herd_err *err)
{
    for (size_t i = 0; i < herd_len(v); i++)
        if (herd_typeof(herd_at(v, i)) != HERD_STR || !herd_len(herd_at(v, i)))
            return herd_err_set(err, -HERD_ECONFIG, "%s[%zu]: expected a non-empty string, got %s", key, i,
                                herd_type_name(herd_typeof(herd_at(v, i))));
    *out = ecs_strv_dup(v);
    return *out ? 0 : herd_err_set(err, -ENOMEM, "out of memory");
}

static int strings_map(const char *key, const herd_value *v, herd_value **out, herd_err *err)
{
    for (size_t i = 0; i < herd_len(v); i++) {
        if (herd_typeof(herd_at(v, i)) != HERD_STR)
            return herd_err_set(err, -HERD_ECONFIG, "%s.%s: expected a string, got %s", key, herd_key_at(v, i),
                                herd_type_name(herd_typeof(herd_at(v, i))));
    }
    *out = herd_value_copy(v);
    return *out ? 0 : herd_err_set(err, -ENOMEM, "out of memory");
}

static bool one_of(const char *k, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(k, allowed[i]) == 0) return true;
    return false;
}

/* volumes and mount_points as ECS takes them, checked before any call */
static int volumes_ok(const herd_value *vols, const herd_value *mps, bool fargate, herd_err *err)
{
    static const char *const vkeys[] = { "name", "host", "dockerVolumeConfiguration", "efsVolumeConfiguration",
                                         "fsxWindowsFileServerVolumeConfiguration", "configuredAtLaunch", NULL };
    static const char *const mkeys[] = { "sourceVolume", "containerPath", "readOnly", NULL };
    for (size_t i = 0; i < herd_len(vols); i++) {
        const herd_value *v = herd_at(vols, i), *name = herd_map_get(v, "name");
        if (herd_typeof(v) != HERD_MAP)
            return herd_err_set(err, -HERD_ECONFIG, "volumes[%zu]: expected a map {name, ...}, got %s", i,
                                herd_type_name(herd_typeof(v)));
        if (herd_typeof(name) != HERD_STR || !herd_len(name))
            return herd_err_set(err, -HERD_ECONFIG, "volumes[%zu].name: expected a non-empty string", i);
        for (size_t j = 0; j < herd_len(v); j++) {
            const char *k = herd_key_at(v, j);
            if (!one_of(k, vkeys))
                return herd_err_set(err, -HERD_ECONFIG, "volumes[%zu].%s: unknown key, expected one of name, host, "
                                    "dockerVolumeConfiguration, efsVolumeConfiguration, "
                                    "fsxWindowsFileServerVolumeConfiguration, configuredAtLaunch", i, k);
            if (strcmp(k, "name") && strcmp(k, "configuredAtLaunch") && herd_typeof(herd_at(v, j)) != HERD_MAP)
                return herd_err_set(err, -HERD_ECONFIG, "volumes[%zu].%s: expected a map, got %s", i, k,
                                    herd_type_name(herd_typeof(herd_at(v, j))));
        }
        if (fargate && (herd_map_get(v, "dockerVolumeConfiguration") ||
                        herd_map_get(herd_map_get(v, "host"), "sourcePath")))
            return herd_err_set(err, -HERD_ECONFIG, "volumes[%zu] (%s): Fargate takes EFS volumes and task-scoped "
                                "bind mounts ({name} alone), not Docker volumes or host paths", i, herd_as_str(name));
        for (size_t j = 0; j < i; j++)
            if (strcmp(herd_as_str(herd_map_get(herd_at(vols, j), "name")), herd_as_str(name)) == 0)
                return herd_err_set(err, -HERD_ECONFIG, "volumes[%zu].name: \"%s\" is also volumes[%zu]'s", i,
                                    herd_as_str(name), j);
    }
    for (size_t i = 0; i < herd_len(mps); i++) {
        const herd_value *m = herd_at(mps, i), *src = herd_map_get(m, "sourceVolume"), *path = herd_map_get(m, "containerPath");
        const herd_value *ro = herd_map_get(m, "readOnly");
        if (herd_typeof(m) != HERD_MAP)
            return herd_err_set(err, -HERD_ECONFIG, "mount_points[%zu]: expected a map {sourceVolume, containerPath, "
                                "readOnly}, got %s", i, herd_type_name(herd_typeof(m)));
        for (size_t j = 0; j < herd_len(m); j++)
            if (!one_of(herd_key_at(m, j), mkeys))
                return herd_err_set(err, -HERD_ECONFIG, "mount_points[%zu].%s: unknown key, expected sourceVolume, "
                                    "containerPath or readOnly", i, herd_key_at(m, j));
        if (herd_typeof(path) != HERD_STR || herd_as_str(path)[0] != '/')
            return herd_err_set(err, -HERD_ECONFIG, "mount_points[%zu].containerPath: expected an absolute path inside "
                                "the container", i);
        if (ro && herd_typeof(ro) != HERD_BOOL)
            return herd_err_set(err, -HERD_ECONFIG, "mount_points[%zu].readOnly: expected true or false, got %s", i,
                                herd_type_name(herd_typeof(ro)));
        bool found = false;
        for (size_t j = 0; herd_typeof(src) == HERD_STR && j < herd_len(vols) && !found; j++)
            found = strcmp(herd_as_str(herd_map_get(herd_at(vols, j), "name")), herd_as_str(src)) == 0;
        if (!found)
            return herd_err_set(err, -HERD_ECONFIG, "mount_points[%zu].sourceVolume: expected the name of one of "
                                "volumes, got %s%s%s", i, herd_typeof(src) == HERD_STR ? "\"" : "",
                                herd_typeof(src) == HERD_STR ? herd_as_str(src) : herd_type_name(herd_typeof(src)),
                                herd_typeof(src) == HERD_STR ? "\"" : "");
    }
    return 0;
}

int ecs_settings_read(ecs_settings *s, const herd_value *kw, bool fargate_default, herd_err *err)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < NREFUSED; i++) {
        const herd_value *v = herd_map_get(kw, refused[i].key);
        if (v && herd_typeof(v) != HERD_NIL)
            return herd_err_set(err, -HERD_ECONFIG, "%s: not supported: %s", refused[i].key, refused[i].why);
    }
    ecs_kw k = { .worker_nthreads = -1 };
    int rc = herd_kwargs_bind(ecs_params, kw, &k, sizeof k, err);
    if (rc) return rc;
    const herd_value *fw = herd_map_get(kw, "fargate_workers");
    s->fargate = fw && herd_typeof(fw) == HERD_BOOL ? herd_as_bool(fw) : fargate_default;
    s->spot = k.fargate_spot;
    s->private_ip = k.private_ip;
    s->skip_cleanup = k.skip_cleanup;
    s->n_workers = k.n_workers;
    s->worker_cpu = k.worker_cpu;
    s->worker_mem = k.worker_mem;
    s->nthreads = k.worker_nthreads > 0 ? k.worker_nthreads : (k.worker_cpu / 1024 > 1 ? k.worker_cpu / 1024 : 1);
    s->logs_retention = k.logs_retention;
    s->poll_interval = k.poll_interval;
    if (!k.image && !k.worker_task_definition_arn)
        return herd_err_set(err, -HERD_ECONFIG, "image: required (the container image that holds this program), "
                                                "unless worker_task_definition_arn is given");
    if (s->spot && !s->fargate)
        return herd_err_set(err, -HERD_ECONFIG, "fargate_spot: true needs fargate_workers: true");
    char why[200];
    if (s->fargate && !ecs_fargate_pair_ok(k.worker_cpu, k.worker_mem, why, sizeof why))
        return herd_err_set(err, -HERD_ECONFIG, "worker_cpu/worker_mem: %s", why);
    s->fargate_scheduler = k.fargate_scheduler;
    const herd_value *mvs = herd_map_get(kw, "mount_volumes_on_scheduler");
    if (mvs && herd_typeof(mvs) == HERD_BOOL && herd_as_bool(mvs) && !k.fargate_scheduler)
        return herd_err_set(err, -HERD_ECONFIG, "mount_volumes_on_scheduler: true needs fargate_scheduler: true (the "
                            "scheduler in this process mounts nothing)");
    if (mvs && herd_typeof(mvs) == HERD_BOOL && !herd_as_bool(mvs) && k.fargate_scheduler && herd_len(k.volumes))
        return herd_err_set(err, -HERD_ECONFIG, "mount_volumes_on_scheduler: false, but the scheduler task runs the "
                            "workers' task definition, which mounts volumes: leave it out or set it true");
    s->scheduler_cpu = k.scheduler_cpu;
    s->scheduler_mem = k.scheduler_mem;
    if (s->fargate_scheduler && s->fargate && !ecs_fargate_pair_ok(k.scheduler_cpu, k.scheduler_mem, why, sizeof why))
        return herd_err_set(err, -HERD_ECONFIG, "scheduler_cpu/scheduler_mem: %s (the pair Fargate allows for "
                            "the scheduler task)", why);
    if (!s->fargate && !k.cluster_arn)
        return herd_err_set(err, -HERD_ECONFIG, "cluster_arn: required with fargate_workers: false (an ECS cluster "
                                                "with EC2 container instances; herd creates only Fargate clusters)");
    if (!strstr(k.cluster_name_template, "{name}") && !k.cluster_arn)
        return herd_err_set(err, -HERD_ECONFIG, "cluster_name_template: expected a name containing {name}, got \"%s\"",
                            k.cluster_name_template);
    if (strcmp(k.cpu_architecture, "X86_64") != 0 && strcmp(k.cpu_architecture, "ARM64") != 0)
        return herd_err_set(err, -HERD_ECONFIG, "cpu_architecture: expected X86_64 or ARM64, got \"%s\"",
                            k.cpu_architecture);
    if (k.worker_gpu && s->fargate)
        return herd_err_set(err, -HERD_ECONFIG, "worker_gpu: %d GPUs asked, but Fargate has no GPUs: use ECSCluster "
                            "with fargate_workers: false and a cluster_arn whose EC2 container instances have GPUs "
                            "(the EC2 launch type)", k.worker_gpu);
    if (k.worker_task_definition_arn && (k.worker_gpu || herd_len(k.volumes) || herd_len(k.mount_points)))
        return herd_err_set(err, -HERD_ECONFIG, "%s: goes into the task definition herd registers; "
                            "worker_task_definition_arn is given: put it in that task definition",
                            k.worker_gpu ? "worker_gpu" : herd_len(k.volumes) ? "volumes" : "mount_points");
    if ((rc = volumes_ok(k.volumes, k.mount_points, s->fargate, err))) return rc;
    s->worker_gpu = k.worker_gpu;
    if (k.worker_command && k.worker_command[0] != '/')
        return herd_err_set(err, -HERD_ECONFIG, "worker_command: expected an absolute path inside the image, got \"%s\"",
                            k.worker_command);
    if ((rc = strings_list("task_role_policies", k.task_role_policies, &s->task_role_policies, err)) ||
        (rc = strings_list("subnets", k.subnets, &s->subnets, err)) ||
        (rc = strings_list("security_groups", k.security_groups, &s->security_groups, err)) ||
        (rc = strings_map("environment", k.environment, &s->environment, err)) ||
        (rc = strings_map("tags", k.tags, &s->tags, err))) {
        ecs_settings_free(s);
        return rc;
    }
    if (!(s->volumes = herd_value_copy(k.volumes)) || !(s->mount_points = herd_value_copy(k.mount_points))) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
        ecs_settings_free(s);
        return rc;
    }
    if (k.task_role_arn && herd_len(k.task_role_policies)) {
        ecs_settings_free(s);
        return herd_err_set(err, -HERD_ECONFIG, "task_role_policies: attached only to a task role herd creates; "
                                                "task_role_arn is given");
    }
    if (dup(&s->image, k.image) || dup(&s->cluster_arn, k.cluster_arn) ||
        dup(&s->cluster_name_template, k.cluster_name_template) ||
        dup(&s->worker_task_definition_arn, k.worker_task_definition_arn) ||
        dup(&s->execution_role_arn, k.execution_role_arn) || dup(&s->task_role_arn, k.task_role_arn) ||
        dup(&s->logs_group, k.logs_group) || dup(&s->logs_prefix, k.logs_prefix) || dup(&s->vpc, k.vpc) ||
        dup(&s->platform_version, k.platform_version) || dup(&s->cpu_architecture, k.cpu_architecture) ||
        dup(&s->region, k.region_name) || dup(&s->endpoint_url, k.endpoint_url) ||
        dup(&s->worker_command, k.worker_command)) {
        ecs_settings_free(s);
        return herd_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

void ecs_settings_free(ecs_settings *s)
{
    char **strs[] = { &s->image, &s->cluster_arn, &s->cluster_name_template, &s->worker_task_definition_arn,
                      &s->execution_role_arn, &s->task_role_arn, &s->logs_group, &s->logs_prefix, &s->vpc,
                      &s->platform_version, &s->cpu_architecture, &s->region, &s->endpoint_url,
                      &s->worker_command };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) { free(*strs[i]); *strs[i] = NULL; }
    ecs_strv_free(s->task_role_policies);
    ecs_strv_free(s->subnets);
    ecs_strv_free(s->security_groups);
    herd_value_free(s->environment);
    herd_value_free(s->tags);
    herd_value_free(s->volumes);
    herd_value_free(s->mount_points);
    s->task_role_policies = s->subnets = s->security_groups = NULL;
    s->environment = s->tags = s->volumes = s->mount_points = NULL;
}
