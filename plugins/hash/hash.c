/* plugins/hash/hash.c — the "hash.sha256" task: the SHA-256 of a value or of
 * a file, as a lower-case hex string (OpenSSL EVP).
 *
 *   args: [data (str or bytes)] or [{path: "file"}] -> "ba7816bf…"
 *
 * Files are read in 64 KiB pieces, so their size does not matter. */
#include <herd/task.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int file_digest(herd_task_ctx *ctx, EVP_MD_CTX *md, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return herd_task_fail(ctx, "hash.sha256: cannot open %s: %s", path, strerror(errno));
    static const size_t chunk = 65536;
    char *buf = malloc(chunk);
    int rc = buf ? 0 : herd_task_fail(ctx, "hash.sha256: out of memory");
    size_t n;
    while (!rc && (n = fread(buf, 1, chunk, f)) > 0)
        if (!EVP_DigestUpdate(md, buf, n)) rc = herd_task_fail(ctx, "hash.sha256: digest update failed");
    if (!rc && ferror(f)) rc = herd_task_fail(ctx, "hash.sha256: cannot read %s: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return rc;
}

static int hash_sha256(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_typeof(args) != HERD_ARRAY || herd_len(args) != 1) {
        herd_task_fail(ctx, "hash.sha256: expected one argument (str, bytes or {path: str}), got %zu",
                       herd_len(args));
        return -HERD_EARG;
    }
    const herd_value *a = herd_at(args, 0), *path = NULL;
    herd_type t = herd_typeof(a);
    if (t == HERD_MAP) {
        path = herd_map_get(a, "path");
        if (herd_len(a) != 1 || herd_typeof(path) != HERD_STR || !*herd_as_str(path)) {
            char *s = herd_value_to_string(a);
            herd_task_fail(ctx, "hash.sha256: argument 0: expected {path: str} with a non-empty path and "
                           "no other keys, got %s", s ? s : "?");
            free(s);
            return -HERD_EARG;
        }
    } else if (t != HERD_STR && t != HERD_BYTES) {
        herd_task_fail(ctx, "hash.sha256: argument 0: expected str, bytes or {path: str}, got %s",
                       herd_type_name(t));
        return -HERD_EARG;
    }

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = 0;
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        rc = herd_task_fail(ctx, "hash.sha256: cannot initialise SHA-256");
    } else if (path) {
        rc = file_digest(ctx, md, herd_as_str(path));
    } else {
        size_t len;
        const void *p = herd_as_bytes(a, &len);
        if (!EVP_DigestUpdate(md, p ? p : "", len)) rc = herd_task_fail(ctx, "hash.sha256: digest update failed");
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (!rc && !EVP_DigestFinal_ex(md, d, &dl)) rc = herd_task_fail(ctx, "hash.sha256: digest failed");
    EVP_MD_CTX_free(md);
    if (rc) return rc;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < dl; i++) sprintf(hex + 2 * i, "%02x", d[i]);
    hex[2 * dl] = '\0';
    if (!(*out = herd_str(hex))) return herd_task_fail(ctx, "hash.sha256: out of memory");
    return 0;
}
HERD_TASK_NAMED(hash_sha256, "hash.sha256");
