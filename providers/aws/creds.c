/* providers/aws/creds.c — credentials and region in botocore's order:
 * environment, shared credentials file, config file, the ECS container
 * credentials endpoint, EC2 instance metadata (IMDSv2: a token first). Secrets
 * live only in aws_creds (wiped by aws_creds_clear) and never reach a log line
 * or an error message. */
#include "aws.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void aws_creds_clear(aws_creds *c)
{
    char **s[] = { &c->access_key, &c->secret_key, &c->token };
    for (size_t i = 0; i < 3; i++)
        if (*s[i]) { OPENSSL_cleanse(*s[i], strlen(*s[i])); free(*s[i]); *s[i] = NULL; }
    c->expires = 0;
    c->source[0] = 0;
}

static int set3(aws_creds *c, const char *ak, const char *sk, const char *tok, const char *source, herd_err *err)
{
    aws_creds_clear(c);
    c->access_key = strdup(ak);
    c->secret_key = strdup(sk);
    c->token = tok && *tok ? strdup(tok) : NULL;
    snprintf(c->source, sizeof c->source, "%s", source);
    if (!c->access_key || !c->secret_key || (tok && *tok && !c->token)) {
        aws_creds_clear(c);
        return herd_err_set(err, -ENOMEM, "credentials: out of memory");
    }
    return 0;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *aws_profile_name(void)
{
    const char *p = env("AWS_PROFILE");
    if (!p) p = env("AWS_DEFAULT_PROFILE");
    return p ? p : "default";
}

/* ~/x or $VAR-free path: botocore expands '~' in both file variables */
static char *expand(const char *var, const char *dflt)
{
    const char *p = env(var);
    if (!p) p = dflt;
    aws_buf b = { 0 };
    if (p[0] == '~' && (p[1] == '/' || !p[1])) {
        const char *home = env("HOME");
        aws_buf_fmt(&b, "%s%s", home ? home : "", p + 1);
    } else {
        aws_buf_str(&b, p);
    }
    return aws_buf_take(&b);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* The value of key in section [section] of an INI file (the AWS shared files'
 * format: '#' and ';' comments, indented lines belong to a nested key and are
 * skipped). 1 found (*out malloc'd), 0 absent, -errno unreadable but present.
 * *section_seen tells whether the section exists. */
int aws_ini_get(const char *path, const char *section, const char *key, char **out, bool *section_seen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -errno;
    char line[4096];
    bool in = false;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == ' ' || line[0] == '\t') continue;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e) { in = false; continue; }
            *e = 0;
            in = strcmp(trim(s + 1), section) == 0;
            if (in && section_seen) *section_seen = true;
            continue;
        }
        if (!in) continue;
        char *eq = strchr(s, '=');
        if (!eq) continue;
        *eq = 0;
        if (strcmp(trim(s), key) != 0) continue;
        free(*out);
        *out = strdup(trim(eq + 1));
        found = *out ? 1 : -ENOMEM;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    return found;
}

/* The config file names profiles "[profile NAME]", except "[default]". */
static void config_section(char *buf, size_t cap, const char *profile)
{
    if (strcmp(profile, "default") == 0) snprintf(buf, cap, "default");
    else snprintf(buf, cap, "profile %s", profile);
}

/* access key, secret key and token from one shared file; 1 found, 0 not, <0 error */
static int from_file(aws_creds *c, const char *path, const char *section, const char *source, bool *seen,
                     herd_err *err)
{
    char *ak = NULL, *sk = NULL, *tok = NULL;
    int r1 = aws_ini_get(path, section, "aws_access_key_id", &ak, seen);
    int r2 = aws_ini_get(path, section, "aws_secret_access_key", &sk, seen);
    int r3 = aws_ini_get(path, section, "aws_session_token", &tok, seen);
    int rc = 0;
    if (r1 < 0 || r2 < 0 || r3 < 0)
        rc = herd_err_set(err, -HERD_ECONFIG, "credentials: cannot read %s: %s", path,
                          strerror(-(r1 < 0 ? r1 : r2 < 0 ? r2 : r3)));
    else if (ak && !sk)
        rc = herd_err_set(err, -HERD_ECONFIG, "credentials: %s [%s] has aws_access_key_id but no aws_secret_access_key",
                          path, section);
    else if (ak && sk)
        rc = set3(c, ak, sk, tok, source, err) ? -ENOMEM : 1;
    char *all[] = { ak, sk, tok };
    for (int i = 0; i < 3; i++)
        if (all[i]) { OPENSSL_cleanse(all[i], strlen(all[i])); free(all[i]); }
    return rc;
}

/* "2026-12-02T01:00:00Z" → seconds since the epoch; 0 if unreadable */
static double iso8601(const char *s)
{
    struct tm tm = { 0 };
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
    return (double)timegm(&tm);
}

/* The JSON both endpoints answer: AccessKeyId, SecretAccessKey, Token, Expiration */
static int from_json(aws_creds *c, const char *body, const char *source, const char *where, herd_err *err)
{
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    const char *ak = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *sk = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *tok = json_string_value(json_object_get(j, "Token"));
    const char *exp = json_string_value(json_object_get(j, "Expiration"));
    int rc;
    if (!ak || !sk)
        rc = herd_err_set(err, -HERD_EAUTH, "credentials: %s answered without AccessKeyId and SecretAccessKey", where);
    else if (!(rc = set3(c, ak, sk, tok, source, err)))
        c->expires = iso8601(exp);
    if (j) {
        /* overwrite the secret's bytes in jansson's copy before freeing it */
        json_t *s = json_object_get(j, "SecretAccessKey");
        if (json_is_string(s)) OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
        json_decref(j);
    }
    return rc;
}

static int fetch(const char *method, const char *url, const char *const *hdrs, double timeout, aws_http_resp *r,
                 const char *what, herd_err *err)
{
    aws_http_req rq = { .method = method, .url = url, .headers = hdrs, .timeout = timeout };
    int rc = aws_http(NULL, &rq, r, err);
    if (rc) return herd_err_prefix(err, "credentials: %s", what);
    if (r->status != 200) {
        rc = herd_err_set(err, -HERD_EAUTH, "credentials: %s: %s %s answered HTTP %ld", what, method, url, r->status);
        aws_buf_free(&r->body);
    }
    return rc;
}

static int from_container(aws_creds *c, herd_err *err)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    aws_buf url = { 0 }, auth = { 0 };
    if (rel) aws_buf_fmt(&url, "http://169.254.170.2%s", rel);
    else aws_buf_str(&url, full);
    const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *tokfile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (tokfile) {
        FILE *f = fopen(tokfile, "r");
        char line[4096] = "";
        if (!f || !fgets(line, sizeof line, f)) {
            if (f) fclose(f);
            aws_buf_free(&url);
            return herd_err_set(err, -HERD_EAUTH, "credentials: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
                                tokfile);
        }
        fclose(f);
        aws_buf_fmt(&auth, "Authorization: %s", trim(line));
        OPENSSL_cleanse(line, sizeof line);
    } else if (tok) {
        aws_buf_fmt(&auth, "Authorization: %s", tok);
    }
    const char *hdrs[] = { auth.s, NULL };
    aws_http_resp r;
    int rc = fetch("GET", url.s ? url.s : "", auth.s ? hdrs : NULL, 2.0, &r, "the container credentials endpoint",
                   err);
    if (!rc) rc = from_json(c, r.body.s, "container-role", "the container credentials endpoint", err);
    aws_buf_free(&r.body);
    if (auth.s) OPENSSL_cleanse(auth.s, auth.len);
    aws_buf_free(&auth);
    aws_buf_free(&url);
    return rc;
}

/* IMDSv2: PUT a session token, read the role's name, then its credentials. */
static int from_imds(aws_creds *c, herd_err *err)
{
    const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!base) base = "http://169.254.169.254";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') bl--;
    aws_buf url = { 0 }, th = { 0 };
    aws_buf_fmt(&url, "%.*s/latest/api/token", (int)bl, base);
    const char *ttl[] = { "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL };
    aws_http_resp r;
    int rc = fetch("PUT", url.s, ttl, 1.0, &r, "instance metadata (IMDSv2 token)", err);
    if (rc) { aws_buf_free(&url); return rc; }
    aws_buf_fmt(&th, "X-aws-ec2-metadata-token: %s", trim(r.body.s));
    aws_buf_free(&r.body);
    const char *hdrs[] = { th.s, NULL };
    url.len = 0;
    aws_buf_fmt(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)bl, base);
    rc = fetch("GET", url.s, hdrs, 1.0, &r, "instance metadata (role name)", err);
    if (!rc) {
        char *role = trim(r.body.s);
        char *nl = strchr(role, '\n');
        if (nl) *nl = 0;
        url.len = 0;
        aws_buf_fmt(&url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)bl, base, role);
        aws_buf_free(&r.body);
        rc = fetch("GET", url.s, hdrs, 1.0, &r, "instance metadata (role credentials)", err);
        if (!rc) rc = from_json(c, r.body.s, "iam-role", "instance metadata", err);
        aws_buf_free(&r.body);
    }
    if (th.s) OPENSSL_cleanse(th.s, th.len);
    aws_buf_free(&th);
    aws_buf_free(&url);
    return rc;
}

int aws_creds_resolve(aws_creds *c, herd_err *err)
{
    aws_creds_clear(c);
    /* 1. environment */
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (ak || sk) {
        if (!ak || !sk)
            return herd_err_set(err, -HERD_ECONFIG, "credentials: %s is set but %s is not",
                                ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                                ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return set3(c, ak, sk, env("AWS_SESSION_TOKEN"), "environment", err);
    }
    /* 2. shared credentials file, 3. config file */
    const char *profile = aws_profile_name();
    bool explicit_profile = env("AWS_PROFILE") || env("AWS_DEFAULT_PROFILE"), seen = false;
    char *cred_path = expand("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials");
    char *conf_path = expand("AWS_CONFIG_FILE", "~/.aws/config");
    char section[512];
    config_section(section, sizeof section, profile);
    int rc = cred_path ? from_file(c, cred_path, profile, "shared-credentials-file", &seen, err) : 0;
    if (rc == 0 && conf_path) rc = from_file(c, conf_path, section, "config-file", &seen, err);
    if (rc == 0 && explicit_profile && !seen)
        rc = herd_err_set(err, -HERD_ECONFIG, "credentials: the profile \"%s\" (AWS_PROFILE) is in neither %s nor %s",
                          profile, cred_path ? cred_path : "?", conf_path ? conf_path : "?");
    free(cred_path);
    free(conf_path);
    if (rc) return rc < 0 ? rc : 0;
    /* 4. the ECS container endpoint */
    if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
        return from_container(c, err);
    /* 5. instance metadata, unless disabled */
    const char *off = env("AWS_EC2_METADATA_DISABLED");
    if (off && strcasecmp(off, "true") == 0)
        return herd_err_set(err, -HERD_EAUTH,
                            "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), in profile \"%s\" of the "
                            "shared files, nor a container endpoint; instance metadata is disabled "
                            "(AWS_EC2_METADATA_DISABLED)", profile);
    rc = from_imds(c, err);
    if (rc)
        return herd_err_prefix(err, "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), in profile "
                                    "\"%s\" of the shared files, nor a container endpoint, and instance metadata "
                                    "failed", profile);
    return 0;
}

int aws_region_resolve(const char *given, char **out, herd_err *err)
{
    *out = NULL;
    const char *r = given && *given ? given : env("AWS_REGION");
    if (!r) r = env("AWS_DEFAULT_REGION");
    if (r) {
        *out = strdup(r);
        return *out ? 0 : herd_err_set(err, -ENOMEM, "out of memory");
    }
    char *conf_path = expand("AWS_CONFIG_FILE", "~/.aws/config");
    char section[512];
    config_section(section, sizeof section, aws_profile_name());
    int rc = conf_path ? aws_ini_get(conf_path, section, "region", out, NULL) : -ENOMEM;
    if (rc <= 0) {
        herd_err_set(err, -HERD_ECONFIG, "no AWS region: give cluster_kwargs.region_name, set AWS_REGION or "
                                         "AWS_DEFAULT_REGION, or put region in [%s] of %s", section,
                     conf_path ? conf_path : "~/.aws/config");
        free(conf_path);
        return err->code;
    }
    free(conf_path);
    return 0;
}
