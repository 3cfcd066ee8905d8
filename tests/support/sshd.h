/* tests/support/sshd.h — real OpenSSH servers for the SSHCluster tests: a
 * generated user key and known_hosts file (tssh_keys), sshd processes on
 * 127.0.0.1 high ports or inside network namespaces, each with its own host
 * key and a generated sshd_config (UsePAM no, StrictModes no, PidFile in its
 * temporary directory, ListenAddress, run as `sshd -D -e -f`), and a small
 * network of namespaces behind a bridge (tnet) whose hosts have their own
 * addresses, so traffic really crosses an interface. sshd runs as the
 * current user when that is not root (then only that user can log in).
 *
 * Header-only (static), like testutil.h. Every function returns 0 or -1 with
 * the reason in why. */
#ifndef HERD_TEST_SSHD_H
#define HERD_TEST_SSHD_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TSSHD_BIN "/usr/sbin/sshd"

typedef struct tssh_keys {
    char dir[128];
    char key[192];           /* the user's private key (identity_file) */
    char other_pub[192];     /* a key nobody uses: authorizing it refuses ours */
    char known_hosts[192];
} tssh_keys;

typedef struct tsshd {
    char dir[192];
    char addr[64];
    int port;
    pid_t pid;
    char ns[32];
    char host[96];           /* "addr:port", as cluster_kwargs.hosts takes it */
} tsshd;

static inline int tssh_fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int tssh_fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && cap) vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Run a shell command; its output goes to a log; -1 with the command and
 * its output in why when it fails. */
static inline int tssh_sh(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int tssh_sh(char *why, size_t cap, const char *fmt, ...)
{
    char cmd[2048], full[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return tssh_fail(why, cap, "popen: %s", strerror(errno));
    char out[512];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    while (n && out[n - 1] == '\n') out[--n] = '\0';
    int st = pclose(p);
    if (st != 0) return tssh_fail(why, cap, "`%s` failed (status %d): %s", cmd, st, out);
    return 0;
}

/* Can this machine run the tests at all? */
static inline bool tssh_available(char *why, size_t cap)
{
    if (access(TSSHD_BIN, X_OK) != 0) { tssh_fail(why, cap, "%s: %s (apt-get install openssh-server)", TSSHD_BIN, strerror(errno)); return false; }
    if (tssh_sh(why, cap, "command -v ssh && command -v ssh-keygen")) {
        tssh_fail(why, cap, "ssh or ssh-keygen not found (apt-get install openssh-client)");
        return false;
    }
    return true;
}

static inline int tssh_keys_make(tssh_keys *k, char *why, size_t cap)
{
    memset(k, 0, sizeof *k);
    snprintf(k->dir, sizeof k->dir, "/tmp/herd-sshd-XXXXXX");
    if (!mkdtemp(k->dir)) return tssh_fail(why, cap, "mkdtemp: %s", strerror(errno));
    chmod(k->dir, 0755);                       /* sshd's privilege-separated child reads in it */
    snprintf(k->key, sizeof k->key, "%s/id_user", k->dir);
    snprintf(k->other_pub, sizeof k->other_pub, "%s/id_other.pub", k->dir);
    snprintf(k->known_hosts, sizeof k->known_hosts, "%s/known_hosts", k->dir);
    if (tssh_sh(why, cap, "ssh-keygen -q -t ed25519 -N '' -C herd-test-user -f %s && "
                          "ssh-keygen -q -t ed25519 -N '' -C herd-test-other -f %s/id_other && : > %s",
                k->key, k->dir, k->known_hosts))
        return -1;
    return 0;
}

static inline void tssh_keys_remove(tssh_keys *k)
{
    if (k->dir[0]) tssh_sh(NULL, 0, "rm -rf %s", k->dir);
    k->dir[0] = '\0';
}

/* A free TCP port on 127.0.0.1 (bound and released: good enough for tests). */
static inline int tssh_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Does addr:port answer with an SSH banner within ms? */
static inline bool tssh_banner(const char *addr, int port, int ms)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, addr, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char b[8] = "";
        if (poll(&p, 1, ms) == 1 && read(fd, b, 4) == 4) ok = memcmp(b, "SSH-", 4) == 0;
    }
    close(fd);
    return ok;
}

/* Start an sshd on addr:port (port 0: a free one; ns: inside that network
 * namespace, "" for this one) that accepts the user key when authorize, and
 * only another key when not. Its host key goes into k->known_hosts. */
static inline int tsshd_start(tsshd *s, const tssh_keys *k, const char *ns, const char *addr, int port,
                              bool authorize, char *why, size_t cap)
{
    static int seq;
    memset(s, 0, sizeof *s);
    s->pid = -1;
    snprintf(s->ns, sizeof s->ns, "%s", ns ? ns : "");
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    s->port = port ? port : tssh_free_port();
    if (s->port <= 0) return tssh_fail(why, cap, "no free port");
    snprintf(s->dir, sizeof s->dir, "%s/sshd-%d", k->dir, seq++);
    snprintf(s->host, sizeof s->host, "%s:%d", addr, s->port);
    if (mkdir(s->dir, 0755) != 0) return tssh_fail(why, cap, "mkdir %s: %s", s->dir, strerror(errno));
    if (geteuid() == 0) mkdir("/run/sshd", 0755);   /* sshd's privilege separation directory */
    if (tssh_sh(why, cap, "ssh-keygen -q -t ed25519 -N '' -C herd-test-host -f %s/host_key && cp %s %s/authorized_keys",
                s->dir, k->other_pub, s->dir))
        return -1;
    if (authorize && tssh_sh(why, cap, "cp %s.pub %s/authorized_keys", k->key, s->dir)) return -1;
    char conf[300];
    snprintf(conf, sizeof conf, "%s/sshd_config", s->dir);
    FILE *f = fopen(conf, "w");
    if (!f) return tssh_fail(why, cap, "%s: %s", conf, strerror(errno));
    fprintf(f, "Port %d\nListenAddress %s\nHostKey %s/host_key\nPidFile %s/sshd.pid\n"
               "AuthorizedKeysFile %s/authorized_keys\nUsePAM no\nStrictModes no\n"
               "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
               "PermitRootLogin prohibit-password\nMaxStartups 200:30:400\nMaxSessions 100\n"
               "LogLevel ERROR\nPrintMotd no\nPermitUserEnvironment no\nUseDNS no\n",
            s->port, addr, s->dir, s->dir, s->dir);
    fclose(f);
    char log[300];
    snprintf(log, sizeof log, "%s/sshd.log", s->dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return tssh_fail(why, cap, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);            /* a crashed test leaves no sshd */
        if (getppid() != parent) _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) { dup2(nul, 0); close(nul); }
        setpgid(0, 0);
        if (s->ns[0]) execl("/usr/sbin/ip", "ip", "netns", "exec", s->ns, TSSHD_BIN, "-D", "-e", "-f", conf, (char *)NULL);
        else execl(TSSHD_BIN, TSSHD_BIN, "-D", "-e", "-f", conf, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 250; i++) {                  /* up to 5 s */
        if (tssh_banner(addr, s->port, 200)) break;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = -1;
            char text[400] = "";
            FILE *lf = fopen(log, "r");
            if (lf) { size_t n = fread(text, 1, sizeof text - 1, lf); text[n] = '\0'; fclose(lf); }
            return tssh_fail(why, cap, "sshd on %s:%d%s%s exited: %s", addr, s->port, s->ns[0] ? " in netns " : "",
                             s->ns, text);
        }
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (!tssh_banner(addr, s->port, 500)) return tssh_fail(why, cap, "sshd on %s:%d does not answer", addr, s->port);
    if (tssh_sh(why, cap, "printf '[%%s]:%%d %%s\\n' %s %d \"$(cut -d' ' -f1,2 %s/host_key.pub)\" >> %s",
                addr, s->port, s->dir, k->known_hosts))
        return -1;
    return 0;
}

/* The per-connection sshd processes of the listener pid (they outlive it,
 * and one whose client vanished behind a cut link would wait for hours). */
static inline void tsshd_kill_sessions(pid_t listener)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');          /* "pid (comm) state ppid …" */
        int ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == listener) kill(atoi(e->d_name), SIGKILL);
    }
    if (d) closedir(d);
}

static inline void tsshd_stop(tsshd *s)
{
    if (s->pid > 0) {
        tsshd_kill_sessions(s->pid);
        kill(s->pid, SIGTERM);
        int st;
        for (int i = 0; i < 100 && waitpid(s->pid, &st, WNOHANG) == 0; i++) {
            struct timespec ts = { 0, 20 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    s->pid = -1;
}

/* ---- a network of namespaces: host i is ns[i] at addr[i], all on one
 * bridge with this namespace at gw ---- */
typedef struct tnet {
    char br[16];
    int n;
    char ns[4][24];
    char addr[4][24];
    char gw[24];
} tnet;

static inline int tnet_setup(tnet *t, int n, char *why, size_t cap)
{
    memset(t, 0, sizeof *t);
    if (geteuid() != 0) return tssh_fail(why, cap, "network namespaces need root (running as uid %d)", (int)geteuid());
    if (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0)
        return tssh_fail(why, cap, "ip (iproute2) is not installed");
    long id = (long)getpid() % 100000;
    int a = 200 + (int)(id % 50), b = (int)(id / 50 % 250);
    snprintf(t->br, sizeof t->br, "hb%ld", id);
    snprintf(t->gw, sizeof t->gw, "10.%d.%d.1", a, b);
    if (tssh_sh(why, cap, "ip link add %s type bridge && ip addr add %s/24 dev %s && ip link set %s up",
                t->br, t->gw, t->br, t->br)) {
        tssh_sh(NULL, 0, "ip link del %s", t->br);
        t->br[0] = '\0';
        return -1;
    }
    for (int i = 0; i < n && i < 4; i++) {
        snprintf(t->ns[i], sizeof t->ns[i], "hn%ld-%d", id, i);
        snprintf(t->addr[i], sizeof t->addr[i], "10.%d.%d.%d", a, b, i + 2);
        t->n = i + 1;
        if (tssh_sh(why, cap,
                    "ip netns add %s && ip link add hv%ld-%d type veth peer name hp%ld-%d && "
                    "ip link set hv%ld-%d master %s && ip link set hv%ld-%d up && "
                    "ip link set hp%ld-%d netns %s && ip -n %s addr add %s/24 dev hp%ld-%d && "
                    "ip -n %s link set hp%ld-%d up && ip -n %s link set lo up",
                    t->ns[i], id, i, id, i, id, i, t->br, id, i, id, i, t->ns[i], t->ns[i], t->addr[i], id, i,
                    t->ns[i], id, i, t->ns[i]))
            return -1;
    }
    return 0;
}

static inline void tnet_teardown(tnet *t)
{
    for (int i = 0; i < t->n; i++) tssh_sh(NULL, 0, "ip netns del %s", t->ns[i]);
    if (t->br[0]) tssh_sh(NULL, 0, "ip link del %s", t->br);
    t->n = 0;
    t->br[0] = '\0';
}

#endif
