/* core/shm.c — sealed memfds and descriptor passing (shm.h): the mechanics
 * of handing a large payload to another process of this host without a
 * copy. The seal order follows memfd_create(2): no writable map may remain
 * when F_SEAL_WRITE is added, so the writer's map is replaced in place by a
 * read-only map of an O_RDONLY descriptor (which never counts as writable). */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALS_NEEDED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int herd_shm_create(size_t len, int *fd, void **p)
{
    *fd = -1;
    *p = NULL;
    if (!len || len > (size_t)INT64_MAX) return -EINVAL;
    int f = memfd_create("herd-value", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (f < 0) return -errno;
    if (ftruncate(f, (off_t)len)) {
        int rc = -errno;
        close(f);
        return rc;
    }
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (m == MAP_FAILED) {
        int rc = -errno;
        close(f);
        return rc;
    }
    *fd = f;
    *p = m;
    return 0;
}

/* A read-only descriptor of fd's file: mapping it never counts as writable. */
static int ro_dup(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int r = open(path, O_RDONLY | O_CLOEXEC);
    return r < 0 ? -errno : r;
}

int herd_shm_seal(int fd, void *p, size_t len)
{
    int ro = ro_dup(fd);
    if (ro < 0) return ro;
    void *m = mmap(p, len, PROT_READ, MAP_SHARED | MAP_FIXED, ro, 0);
    int rc = m == MAP_FAILED ? -errno : 0;
    close(ro);
    if (!rc && fcntl(fd, F_ADD_SEALS, SEALS_NEEDED | F_SEAL_SEAL)) rc = -errno;
    return rc;
}

int herd_shm_map(int fd, size_t len, void **p, herd_err *err)
{
    *p = NULL;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return herd_err_set(err, -HERD_EPROTO, "descriptor %d for a payload of %zu bytes is not a memfd (%s)", fd, len,
                            strerror(errno));
    if ((seals & SEALS_NEEDED) != SEALS_NEEDED)
        return herd_err_set(err, -HERD_EPROTO, "memfd for a payload of %zu bytes has seals 0x%x, expected at least "
                            "SHRINK|GROW|WRITE (0x%x)", len, (unsigned)seals, (unsigned)SEALS_NEEDED);
    struct stat sb;
    if (fstat(fd, &sb)) return herd_err_set(err, -errno, "fstat of a received memfd: %s", strerror(errno));
    if (sb.st_size < 0 || (uint64_t)sb.st_size != (uint64_t)len)
        return herd_err_set(err, -HERD_EPROTO, "memfd holds %lld bytes, expected %zu", (long long)sb.st_size, len);
    if (!len) return herd_err_set(err, -HERD_EPROTO, "memfd for an empty payload");
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return herd_err_set(err, -errno, "cannot map a received memfd of %zu bytes: %s", len, strerror(errno));
    *p = m;
    return 0;
}

int herd_shm_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
    if (!len || nfds < 0 || nfds > HERD_SHM_MAX_FDS) return -EINVAL;
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * HERD_SHM_MAX_FDS)]; } ctl;
    const char *p = buf;
    int first = 1;
    while (len) {
        struct iovec iov = { (void *)p, len > (1u << 30) ? (1u << 30) : len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (first && nfds) {
            memset(&ctl, 0, sizeof ctl);
            mh.msg_control = ctl.b;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t r = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -EPIPE : -errno;
        first = 0;                 /* the descriptors went with the first byte sent */
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

ssize_t herd_shm_recv_some(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds, herd_err *err)
{
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * HERD_SHM_MAX_FDS)]; } ctl;
    int truncated = 0;
    ssize_t r;
    if (maxfds > HERD_SHM_MAX_FDS) maxfds = HERD_SHM_MAX_FDS;
    for (;;) {
        struct iovec iov = { buf, cap };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR) continue;
        if (r > 0) {
            if (mh.msg_flags & MSG_CTRUNC) truncated = 1;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    if (*nfds < maxfds) fds[(*nfds)++] = fd;
                    else { close(fd); truncated = 1; }
                }
            }
        }
        break;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -EAGAIN;    /* nothing yet: fds kept */
    int rc = 0;
    if (r <= 0) {
        rc = r == 0 ? -ECONNRESET : -errno;
        herd_err_set(err, rc, "connection closed (%s)", strerror(-rc));
    } else if (truncated) {
        rc = herd_err_set(err, -HERD_EPROTO, "a peer sent more descriptors than %d", maxfds);
    }
    if (rc) {
        for (int i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        return rc;
    }
    return r;
}

int herd_shm_recv(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, herd_err *err)
{
    char *p = buf;
    *nfds = 0;
    while (len) {
        ssize_t r = herd_shm_recv_some(sock, p, len, fds, maxfds, nfds, err);
        if (r < 0) return (int)r;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}
