/* tests/unit/test_plugins.c — the task plugins (shell.run, http.get,
 * http.download, hash.sha256) loaded as a worker loads them: by name through
 * herd_task_lookup, which dlopens $(BUILD)/plugins/<plugin>.so, and called
 * directly with a NULL task context. The HTTP tasks talk to a libevent evhttp
 * server this test runs on 127.0.0.1 in a thread. */
#include <herd/herd.h>

#include <errno.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#define MiB (1024 * 1024)

/* ---- helpers ---- */

/* Look a plugin task up by name and run it with ctx = NULL. Takes args. */
static int call(const char *task, herd_value *args, herd_value **out)
{
    herd_task_fn fn = NULL;
    herd_err err;
    int rc = herd_task_lookup(task, &fn, &err);
    if (rc) fprintf(stderr, "lookup %s: %s\n", task, err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(fn);
    *out = NULL;
    rc = fn(NULL, args, out);
    herd_value_free(args);
    if (rc) assert_null(*out);
    return rc;
}

static herd_value *yaml(const char *text)
{
    herd_value *v = NULL;
    herd_err err;
    if (herd_value_parse(text, &v, &err)) fail_msg("yaml %s: %s", text, err.msg);
    return v;
}

static void assert_str_field(const herd_value *m, const char *key, const char *want)
{
    const herd_value *v = herd_map_get(m, key);
    assert_int_equal(herd_typeof(v), HERD_STR);
    assert_string_equal(herd_as_str(v), want);
}

static void sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    assert_true(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL));
    assert_int_equal(dl, 32);
    for (unsigned i = 0; i < dl; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

static char tmpdir[PATH_MAX];

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- the HTTP server ---- */

static struct {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    char *big;            /* MiB bytes served at /big */
} srv;

static void slow_reply(evutil_socket_t fd, short what, void *arg)
{
    struct evhttp_request *req = arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "late");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *ud)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    if (!strcmp(uri, "/hello")) {
        evhttp_add_header(out, "Content-Type", "text/plain");
        evhttp_add_header(out, "X-Test", "one");
        evhttp_add_header(out, "X-Multi", "a");
        evhttp_add_header(out, "X-Multi", "b");
        evbuffer_add_printf(b, "hello world");
        evhttp_send_reply(req, 200, "OK", b);
    } else if (!strcmp(uri, "/big")) {
        evbuffer_add(b, srv.big, MiB);
        evhttp_send_reply(req, 200, "OK", b);
    } else if (!strcmp(uri, "/echo-header")) {
        const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Req");
        evbuffer_add_printf(b, "%s", v ? v : "(none)");
        evhttp_send_reply(req, 200, "OK", b);
    } else if (!strcmp(uri, "/redirect")) {
        evhttp_add_header(out, "Location", "/hello");
        evhttp_send_reply(req, 302, "Found", b);
    } else if (!strcmp(uri, "/slow")) {
        struct timeval tv = { 3, 0 };
        event_base_once(srv.base, -1, EV_TIMEOUT, slow_reply, req, &tv);
    } else {
        evbuffer_add_printf(b, "no such page: %s", uri);
        evhttp_send_reply(req, 404, "Not Found", b);
    }
    evbuffer_free(b);
}

static void *serve(void *arg)
{
    event_base_loop(srv.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int group_setup(void **state)
{
    char exe[PATH_MAX], plugins[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';                       /* $(BUILD)/tests */
    snprintf(plugins, sizeof plugins, "%s/../plugins", exe);
    setenv("HERD_PLUGIN_PATH", plugins, 1);

    snprintf(tmpdir, sizeof tmpdir, "/tmp/herd-test-plugins-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;

    if (!(srv.big = malloc(MiB))) return -1;
    for (size_t i = 0; i < MiB; i++) srv.big[i] = (char)('a' + i % 26);
    evthread_use_pthreads();
    srv.base = event_base_new();
    srv.http = evhttp_new(srv.base);
    evhttp_set_gencb(srv.http, on_request, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0);
    if (!bs) return -1;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl)) return -1;
    srv.port = ntohs(sa.sin_port);
    return pthread_create(&srv.thread, NULL, serve, NULL) ? -1 : 0;
}

static int group_teardown(void **state)
{
    event_base_loopbreak(srv.base);
    pthread_join(srv.thread, NULL);
    evhttp_free(srv.http);
    event_base_free(srv.base);
    free(srv.big);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *url(const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d%s", srv.port, path);
    return buf;
}

/* ---- shell.run ---- */

static void test_shell_status_and_capture(void **state)
{
    herd_value *out;
    assert_int_equal(call("shell.run", herd_tuple("s", "echo hello; echo oops >&2; exit 3"), &out), 0);
    assert_int_equal(herd_typeof(out), HERD_MAP);
    assert_int_equal(herd_as_int(herd_map_get(out, "exit_status")), 3);
    assert_str_field(out, "stdout", "hello\n");
    assert_str_field(out, "stderr", "oops\n");
    assert_int_equal(herd_typeof(herd_map_get(out, "duration")), HERD_FLOAT);
    assert_true(herd_as_float(herd_map_get(out, "duration")) >= 0);
    herd_value_free(out);
}

static void test_shell_argv_no_shell(void **state)
{
    herd_value *out;
    /* an argv array runs without a shell: "$HOME" reaches printf unexpanded */
    herd_value *argv = herd_tuple("ssss", "printf", "%s|%s", "$HOME", "a b");
    assert_int_equal(call("shell.run", herd_tuple("v", argv), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "exit_status")), 0);
    assert_str_field(out, "stdout", "$HOME|a b");
    herd_value_free(out);

    /* a string with shell: false is one program name, which does not exist */
    assert_int_equal(call("shell.run", herd_tuple("sv", "echo a b", yaml("{shell: false}")), &out), -ENOENT);

    /* argv with shell: true: argv[0] is the script, the rest are $0 $1 … */
    argv = herd_tuple("sss", "echo \"$0-$1\"", "x", "y");
    assert_int_equal(call("shell.run", herd_tuple("vv", argv, yaml("{shell: true}")), &out), 0);
    assert_str_field(out, "stdout", "x-y\n");
    herd_value_free(out);
}

static void test_shell_cwd_env(void **state)
{
    herd_value *out;
    herd_value *o = yaml("{cwd: /, env: {HERD_T_FOO: bar, HERD_T_NUM: 42, HOME: null}}");
    assert_int_equal(call("shell.run", herd_tuple("sv", "pwd; echo $HERD_T_FOO $HERD_T_NUM; echo ${HOME-unset}; "
                                                   "test -n \"$PATH\" && echo path", o), &out), 0);
    assert_str_field(out, "stdout", "/\nbar 42\nunset\npath\n");
    herd_value_free(out);
}

static void test_shell_stdin(void **state)
{
    herd_value *out;
    assert_int_equal(call("shell.run", herd_tuple("sv", "tr a-z A-Z", yaml("{stdin: 'hello there'}")), &out), 0);
    assert_str_field(out, "stdout", "HELLO THERE");
    herd_value_free(out);

    /* the child exits without reading its stdin: no SIGPIPE, no hang */
    herd_value *o = herd_map();
    char *in = malloc(4 * MiB);
    assert_non_null(in);
    memset(in, 'q', 4 * MiB);
    herd_map_set(o, "stdin", herd_bytes(in, 4 * MiB));
    free(in);
    assert_int_equal(call("shell.run", herd_tuple("sv", "exit 0", o), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "exit_status")), 0);
    herd_value_free(out);
}

static void test_shell_big_output(void **state)
{
    /* 1 MiB on each of stdout and stderr, and 1 MiB through stdin: all three
     * pipes fill at once, which deadlocks unless they are serviced together. */
    herd_value *out;
    assert_int_equal(call("shell.run", herd_tuple("s", "head -c 1048576 /dev/zero | tr '\\0' x; "
                                                   "head -c 1048576 /dev/zero | tr '\\0' y >&2"), &out), 0);
    assert_int_equal(herd_len(herd_map_get(out, "stdout")), MiB);
    assert_int_equal(herd_len(herd_map_get(out, "stderr")), MiB);
    assert_int_equal(herd_as_str(herd_map_get(out, "stdout"))[MiB - 1], 'x');
    assert_int_equal(herd_as_str(herd_map_get(out, "stderr"))[0], 'y');
    herd_value_free(out);

    herd_value *o = herd_map();
    herd_map_set(o, "stdin", herd_strn(srv.big, MiB));
    assert_int_equal(call("shell.run", herd_tuple("sv", "cat; cat /dev/null >&2", o), &out), 0);
    assert_int_equal(herd_len(herd_map_get(out, "stdout")), MiB);
    assert_memory_equal(herd_as_str(herd_map_get(out, "stdout")), srv.big, MiB);
    herd_value_free(out);
}

static void test_shell_binary_output(void **state)
{
    herd_value *out;
    assert_int_equal(call("shell.run", herd_tuple("s", "printf 'a\\377\\000b'"), &out), 0);
    const herd_value *so = herd_map_get(out, "stdout");
    assert_int_equal(herd_typeof(so), HERD_BYTES);
    size_t n;
    const char *p = herd_as_bytes(so, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(p, "a\377\000b", 4);
    herd_value_free(out);
}

static bool process_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');             /* "pid (comm) S …" */
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void test_shell_timeout_kills_group(void **state)
{
    char pids[PATH_MAX + 16], cmd[PATH_MAX + 128];
    tmp_path(pids, sizeof pids, "pids");
    snprintf(cmd, sizeof cmd, "sleep 60 & echo $$ $! > '%s'; wait", pids);
    herd_value *out;
    assert_int_equal(call("shell.run", herd_tuple("sv", cmd, yaml("{timeout: 0.3}")), &out), -HERD_ETIMEOUT);
    FILE *f = fopen(pids, "r");
    assert_non_null(f);
    int sh = 0, sleeper = 0;
    assert_int_equal(fscanf(f, "%d %d", &sh, &sleeper), 2);
    fclose(f);
    assert_true(sh > 0 && sleeper > 0);
    /* the shell and its background child (same process group) are gone */
    for (int i = 0; i < 100 && process_alive(sleeper); i++) usleep(10000);
    assert_false(process_alive(sh));
    assert_false(process_alive(sleeper));

    /* a duration string works too */
    assert_int_equal(call("shell.run", herd_tuple("sv", "sleep 60", yaml("{timeout: 200ms}")), &out), -HERD_ETIMEOUT);
}

static void test_shell_signal_and_check(void **state)
{
    herd_value *out;
    assert_int_equal(call("shell.run", herd_tuple("s", "kill -TERM $$"), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "exit_status")), -SIGTERM);
    herd_value_free(out);

    assert_int_equal(call("shell.run", herd_tuple("sv", "echo bad >&2; exit 2", yaml("{check: true}")), &out),
                     -HERD_EFAILED);
    assert_int_equal(call("shell.run", herd_tuple("sv", "exit 0", yaml("{check: true}")), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "exit_status")), 0);
    herd_value_free(out);
}

static void test_shell_bad_args(void **state)
{
    herd_value *out;
    assert_int_equal(call("shell.run", NULL, &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_array(), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("i", 42), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("s", ""), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("v", herd_array()), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("v", herd_tuple("si", "ls", 3)), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("si", "true", 1), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{bogus: 1}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{timeout: soon}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{timeout: -1}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{shell: 1}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{env: [a]}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{env: {A: [1]}}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{stdin: 5}")), &out), -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("sv", "true", yaml("{cwd: /nonexistent/dir}")), &out),
                     -HERD_EARG);
    assert_int_equal(call("shell.run", herd_tuple("ssi", "true", "x", 1), &out), -HERD_EARG);
}

/* ---- http.get / http.download ---- */

static void test_http_get_ok(void **state)
{
    herd_value *out;
    assert_int_equal(call("http.get", herd_tuple("s", url("/hello")), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "status")), 200);
    const herd_value *body = herd_map_get(out, "body");
    assert_int_equal(herd_typeof(body), HERD_BYTES);
    size_t n;
    const char *p = herd_as_bytes(body, &n);
    assert_int_equal(n, 11);
    assert_memory_equal(p, "hello world", 11);
    const herd_value *h = herd_map_get(out, "headers");
    assert_int_equal(herd_typeof(h), HERD_MAP);
    assert_str_field(h, "x-test", "one");
    assert_str_field(h, "x-multi", "a, b");
    assert_str_field(h, "content-type", "text/plain");
    assert_null(herd_map_get(h, "X-Test"));
    herd_value_free(out);
}

static void test_http_get_status_headers_redirect(void **state)
{
    herd_value *out;
    /* a 404 is a response, not a failure */
    assert_int_equal(call("http.get", herd_tuple("s", url("/missing")), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "status")), 404);
    size_t n;
    const char *p = herd_as_bytes(herd_map_get(out, "body"), &n);
    assert_true(n > 0 && memmem(p, n, "/missing", 8));
    herd_value_free(out);

    assert_int_equal(call("http.get", herd_tuple("sv", url("/echo-header"),
                                                 yaml("{headers: {X-Req: from-test}, timeout: 10}")), &out), 0);
    p = herd_as_bytes(herd_map_get(out, "body"), &n);
    assert_int_equal(n, 9);
    assert_memory_equal(p, "from-test", 9);
    herd_value_free(out);

    assert_int_equal(call("http.get", herd_tuple("s", url("/redirect")), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "status")), 200);
    assert_int_equal(herd_len(herd_map_get(out, "body")), 11);
    assert_null(herd_map_get(herd_map_get(out, "headers"), "location"));
    herd_value_free(out);

    assert_int_equal(call("http.get", herd_tuple("sv", url("/redirect"), yaml("{follow: false}")), &out), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "status")), 302);
    assert_str_field(herd_map_get(out, "headers"), "location", "/hello");
    herd_value_free(out);
}

static void test_http_get_errors(void **state)
{
    herd_value *out;
    /* a port nobody listens on: bind one, note it, close it */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    char closed[64];
    snprintf(closed, sizeof closed, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    assert_int_equal(call("http.get", herd_tuple("s", closed), &out), -HERD_EFAILED);

    assert_int_equal(call("http.get", herd_tuple("sv", url("/slow"), yaml("{timeout: 0.3}")), &out), -HERD_ETIMEOUT);
    assert_int_equal(call("http.get", herd_tuple("sv", url("/big"), yaml("{max_size: 1000}")), &out), -HERD_EFAILED);
    assert_int_equal(call("http.get", herd_tuple("s", "ftp://127.0.0.1/x"), &out), -HERD_EFAILED);

    assert_int_equal(call("http.get", herd_array(), &out), -HERD_EARG);
    assert_int_equal(call("http.get", herd_tuple("i", 7), &out), -HERD_EARG);
    assert_int_equal(call("http.get", herd_tuple("sv", url("/hello"), yaml("{max_size: big}")), &out), -HERD_EARG);
    assert_int_equal(call("http.get", herd_tuple("sv", url("/hello"), yaml("{headers: [a]}")), &out), -HERD_EARG);
    assert_int_equal(call("http.get", herd_tuple("sv", url("/hello"), yaml("{headers: {'a b': c}}")), &out),
                     -HERD_EARG);
    assert_int_equal(call("http.get", herd_tuple("sv", url("/hello"), yaml("{retries: 3}")), &out), -HERD_EARG);
}

static void test_http_download(void **state)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32], want[65] = "";
    tmp_path(path, sizeof path, "big.bin");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    sha256_hex(srv.big, MiB, want);

    herd_value *out;
    assert_int_equal(call("http.download", herd_tuple("ss", url("/big"), path), &out), 0);
    assert_str_field(out, "path", path);
    assert_int_equal(herd_as_int(herd_map_get(out, "status")), 200);
    assert_int_equal(herd_as_int(herd_map_get(out, "size")), MiB);
    assert_str_field(out, "sha256", want);
    herd_value_free(out);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, MiB);
    assert_int_not_equal(stat(tmp, &st), 0);

    /* the file's hash by hash.sha256 agrees */
    herd_value *arg = herd_map();
    herd_map_set(arg, "path", herd_str(path));
    assert_int_equal(call("hash.sha256", herd_tuple("v", arg), &out), 0);
    assert_string_equal(herd_as_str(out), want);
    herd_value_free(out);
}

static void test_http_download_errors(void **state)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    struct stat st;
    tmp_path(path, sizeof path, "missing.bin");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    herd_value *out;
    assert_int_equal(call("http.download", herd_tuple("ss", url("/missing"), path), &out), -HERD_EFAILED);
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_not_equal(stat(tmp, &st), 0);

    /* an aborted transfer leaves nothing behind either */
    assert_int_equal(call("http.download", herd_tuple("ssv", url("/big"), path, yaml("{max_size: 4096}")), &out),
                     -HERD_EFAILED);
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_not_equal(stat(tmp, &st), 0);

    assert_int_equal(call("http.download", herd_tuple("ss", url("/hello"), "/nonexistent/dir/x"), &out),
                     -HERD_EFAILED);
    assert_int_equal(call("http.download", herd_tuple("s", url("/hello")), &out), -HERD_EARG);
    assert_int_equal(call("http.download", herd_tuple("si", url("/hello"), 3), &out), -HERD_EARG);
    assert_int_equal(call("http.download", herd_tuple("ssi", url("/hello"), path, 3), &out), -HERD_EARG);
}

/* ---- hash.sha256 ---- */

static void test_hash_vectors(void **state)
{
    herd_value *out;
    assert_int_equal(call("hash.sha256", herd_tuple("s", ""), &out), 0);
    assert_string_equal(herd_as_str(out), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    herd_value_free(out);
    assert_int_equal(call("hash.sha256", herd_tuple("s", "abc"), &out), 0);
    assert_string_equal(herd_as_str(out), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    herd_value_free(out);
    assert_int_equal(call("hash.sha256", herd_tuple("y", "abc", (size_t)3), &out), 0);
    assert_string_equal(herd_as_str(out), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    herd_value_free(out);
    assert_int_equal(call("hash.sha256", herd_tuple("s", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                          &out), 0);
    assert_string_equal(herd_as_str(out), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    herd_value_free(out);
}

static void test_hash_file(void **state)
{
    char path[PATH_MAX + 16];
    tmp_path(path, sizeof path, "abc.txt");
    write_file(path, "abc", 3);
    herd_value *out, *arg = herd_map();
    herd_map_set(arg, "path", herd_str(path));
    assert_int_equal(call("hash.sha256", herd_tuple("v", arg), &out), 0);
    assert_string_equal(herd_as_str(out), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    herd_value_free(out);

    /* a file larger than the read buffer, not a multiple of it */
    size_t n = 3 * MiB + 17;
    char *data = malloc(n), want[65] = "";
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) data[i] = (char)(i * 7 + i / 4096);
    write_file(path, data, n);
    sha256_hex(data, n, want);
    free(data);
    arg = herd_map();
    herd_map_set(arg, "path", herd_str(path));
    assert_int_equal(call("hash.sha256", herd_tuple("v", arg), &out), 0);
    assert_string_equal(herd_as_str(out), want);
    herd_value_free(out);
}

static void test_hash_errors(void **state)
{
    herd_value *out;
    assert_int_equal(call("hash.sha256", herd_tuple("v", yaml("{path: /nonexistent/file}")), &out), -HERD_EFAILED);
    assert_int_equal(call("hash.sha256", herd_tuple("i", 1), &out), -HERD_EARG);
    assert_int_equal(call("hash.sha256", herd_tuple("v", yaml("{path: 1}")), &out), -HERD_EARG);
    assert_int_equal(call("hash.sha256", herd_tuple("v", yaml("{file: x}")), &out), -HERD_EARG);
    assert_int_equal(call("hash.sha256", herd_tuple("v", yaml("{path: x, extra: 1}")), &out), -HERD_EARG);
    assert_int_equal(call("hash.sha256", herd_tuple("ss", "a", "b"), &out), -HERD_EARG);
    assert_int_equal(call("hash.sha256", herd_array(), &out), -HERD_EARG);
}

static void test_lookup_unknown(void **state)
{
    herd_task_fn fn = NULL;
    herd_err err;
    assert_int_equal(herd_task_lookup("shell.nope", &fn, &err), -HERD_ENOTASK);
    assert_non_null(strstr(err.msg, "shell.nope"));
    assert_int_equal(herd_task_lookup("noplugin.run", &fn, &err), -HERD_ENOTASK);
    assert_non_null(strstr(err.msg, "noplugin"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_status_and_capture),
        cmocka_unit_test(test_shell_argv_no_shell),
        cmocka_unit_test(test_shell_cwd_env),
        cmocka_unit_test(test_shell_stdin),
        cmocka_unit_test(test_shell_big_output),
        cmocka_unit_test(test_shell_binary_output),
        cmocka_unit_test(test_shell_timeout_kills_group),
        cmocka_unit_test(test_shell_signal_and_check),
        cmocka_unit_test(test_shell_bad_args),
        cmocka_unit_test(test_http_get_ok),
        cmocka_unit_test(test_http_get_status_headers_redirect),
        cmocka_unit_test(test_http_get_errors),
        cmocka_unit_test(test_http_download),
        cmocka_unit_test(test_http_download_errors),
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_file),
        cmocka_unit_test(test_hash_errors),
        cmocka_unit_test(test_lookup_unknown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
