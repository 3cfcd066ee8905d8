/* examples/nino34/png.c — renders an "ENSO plume" chart like NOAA's NMME
 * Niño 3.4 forecast images: the forecasts of a dozen ensemble members over
 * nine lead months, their mean in bold, the ±0.5 °C El Niño / La Niña
 * thresholds, and the start month as a title. The numbers are synthetic but
 * deterministic (a function of year and month), so every run serves the same
 * files. The PNG is written by hand: 8-bit palette, unfiltered rows, and
 * zlib "stored" (uncompressed) deflate blocks, so no compression library is
 * needed; the result is a valid PNG any viewer opens. */
#include "nino34.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 480, H = 320, L = 50, R = 460, T = 40, B = 290, LEADS = 9, MEMBERS = 12 };
enum { WHITE, BLACK, GRID, MEAN, ZERO, WARM, COLD, MEMBER0 };

static const unsigned char palette[][3] = {
    {255, 255, 255}, {0, 0, 0}, {220, 220, 220}, {20, 20, 20}, {120, 120, 120},
    {215, 48, 39}, {69, 117, 180},
    /* members */
    {230, 159, 0}, {86, 180, 233}, {0, 158, 115}, {240, 228, 66}, {0, 114, 178}, {213, 94, 0},
    {204, 121, 167}, {153, 153, 153}, {117, 112, 179}, {27, 158, 119}, {217, 95, 2}, {102, 166, 30},
};

typedef struct canvas { unsigned char px[H][W]; } canvas;

static void dot(canvas *c, int x, int y, int thick, unsigned char col)
{
    for (int dy = -(thick / 2); dy <= thick / 2; dy++)
        for (int dx = -(thick / 2); dx <= thick / 2; dx++) {
            int xx = x + dx, yy = y + dy;
            if (xx >= 0 && xx < W && yy >= 0 && yy < H) c->px[yy][xx] = col;
        }
}

/* Bresenham; dash > 0 draws dash pixels on, dash off. */
static void line(canvas *c, int x0, int y0, int x1, int y1, int thick, unsigned char col, int dash)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy, n = 0;
    for (;;) {
        if (!dash || (n++ / dash) % 2 == 0) dot(c, x0, y0, thick, col);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

/* A 3x5 pixel font for the title's digits. */
static void digit(canvas *c, int x, int y, int d, int scale, unsigned char col)
{
    static const unsigned short glyph[10] = {
        0x7B6F, 0x2C97, 0x73E7, 0x73CF, 0x5BC9, 0x79CF, 0x79EF, 0x7249, 0x7BEF, 0x7BCF,
    };
    for (int row = 0; row < 5; row++)
        for (int colx = 0; colx < 3; colx++)
            if (glyph[d] & (1 << (14 - (row * 3 + colx))))
                for (int sy = 0; sy < scale; sy++)
                    for (int sx = 0; sx < scale; sx++) dot(c, x + colx * scale + sx, y + row * scale + sy, 1, col);
}

static int ypix(double anomaly) { return (int)lround(T + (3.0 - anomaly) / 6.0 * (B - T)); }
static int xpix(int lead) { return L + lead * (R - L) / (LEADS - 1); }

static double rnd(unsigned long long *s)     /* xorshift64*, in [-1, 1) */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 4503599627370496.0 - 1.0;
}

static void draw(canvas *c, int year, int month)
{
    memset(c->px, WHITE, sizeof c->px);
    for (int i = -6; i <= 6; i++) line(c, L, ypix(i * 0.5), R, ypix(i * 0.5), 1, GRID, 0);
    for (int k = 0; k < LEADS; k++) line(c, xpix(k), T, xpix(k), B, 1, GRID, 0);
    line(c, L, ypix(0), R, ypix(0), 1, ZERO, 0);
    line(c, L, ypix(0.5), R, ypix(0.5), 1, WARM, 6);
    line(c, L, ypix(-0.5), R, ypix(-0.5), 1, COLD, 6);

    /* synthetic observed anomaly at the start month, then the members */
    double t = year + (month - 1) / 12.0;
    double start = 1.3 * sin(2 * M_PI * (t - 2020.1) / 3.6) + 0.3 * sin(2 * M_PI * t / 1.1);
    unsigned long long seed = 0x9E3779B97F4A7C15ULL ^ (unsigned long long)(year * 100 + month);
    double mean[LEADS] = {0};
    for (int m = 0; m < MEMBERS; m++) {
        double v = start + 0.1 * rnd(&seed), target = start * 0.3 + 0.8 * rnd(&seed), prev = v;
        mean[0] += v / MEMBERS;
        for (int k = 1; k < LEADS; k++) {
            v += (target - v) * 0.25 + 0.15 * rnd(&seed);
            if (v > 2.9) v = 2.9;
            if (v < -2.9) v = -2.9;
            line(c, xpix(k - 1), ypix(prev), xpix(k), ypix(v), 1, (unsigned char)(MEMBER0 + m), 0);
            mean[k] += v / MEMBERS;
            prev = v;
        }
    }
    for (int k = 1; k < LEADS; k++) line(c, xpix(k - 1), ypix(mean[k - 1]), xpix(k), ypix(mean[k]), 3, MEAN, 0);

    /* frame, ticks, title "YYYYMM" */
    line(c, L, T, R, T, 1, BLACK, 0);
    line(c, L, B, R, B, 1, BLACK, 0);
    line(c, L, T, L, B, 1, BLACK, 0);
    line(c, R, T, R, B, 1, BLACK, 0);
    for (int k = 0; k < LEADS; k++) line(c, xpix(k), B, xpix(k), B + 5, 1, BLACK, 0);
    for (int i = -6; i <= 6; i++) line(c, L - 5, ypix(i * 0.5), L, ypix(i * 0.5), 1, BLACK, 0);
    int digits[6] = { year / 1000 % 10, year / 100 % 10, year / 10 % 10, year % 10, month / 10, month % 10 };
    for (int i = 0; i < 6; i++) digit(c, L + i * 14, 12, digits[i], 3, BLACK);
}

/* ---- PNG encoding ---- */

static unsigned long crc32_update(unsigned long crc, const unsigned char *p, size_t n)
{
    crc = ~crc & 0xFFFFFFFFUL;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320UL : crc >> 1;
    }
    return ~crc & 0xFFFFFFFFUL;
}

typedef struct out { unsigned char *p; size_t len; } out;

static void put32(out *o, unsigned long v)
{
    o->p[o->len++] = (unsigned char)(v >> 24);
    o->p[o->len++] = (unsigned char)(v >> 16);
    o->p[o->len++] = (unsigned char)(v >> 8);
    o->p[o->len++] = (unsigned char)v;
}

static void chunk(out *o, const char *type, const unsigned char *data, size_t n)
{
    put32(o, (unsigned long)n);
    size_t start = o->len;
    memcpy(o->p + o->len, type, 4);
    o->len += 4;
    if (n) memcpy(o->p + o->len, data, n);
    o->len += n;
    put32(o, crc32_update(0, o->p + start, n + 4));
}

int nino34_png(int year, int month, unsigned char **png, size_t *len)
{
    canvas *c = malloc(sizeof *c);
    if (!c) return -1;
    draw(c, year, month);

    /* raw scanlines (filter byte 0 + W palette indices) wrapped in zlib stored blocks */
    size_t raw = (size_t)H * (W + 1), nblocks = (raw + 65534) / 65535;
    size_t zlen = 2 + raw + 5 * nblocks + 4;
    unsigned char *z = malloc(zlen);
    char text[64];
    int tl = snprintf(text, sizeof text, "Title%cNino3.4 plume %04d-%02d (synthetic)", 0, year, month);
    size_t cap = 8 + 25 + (12 + sizeof palette) + (12 + (size_t)tl) + (12 + zlen) + 12;
    unsigned char *buf = malloc(cap);
    if (!z || !buf) { free(c); free(z); free(buf); return -1; }
    size_t zi = 0, done = 0;
    unsigned long a = 1, b = 0;                   /* Adler-32 */
    z[zi++] = 0x78;
    z[zi++] = 0x01;
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t n = raw - done < 65535 ? raw - done : 65535;
        z[zi++] = blk + 1 == nblocks;             /* BFINAL, BTYPE=00 */
        z[zi++] = (unsigned char)n;
        z[zi++] = (unsigned char)(n >> 8);
        z[zi++] = (unsigned char)~n;
        z[zi++] = (unsigned char)(~n >> 8);
        for (size_t i = 0; i < n; i++, done++) {
            size_t row = done / (W + 1), colx = done % (W + 1);
            unsigned char v = colx == 0 ? 0 : c->px[row][colx - 1];
            z[zi++] = v;
            a = (a + v) % 65521;
            b = (b + a) % 65521;
        }
    }
    unsigned long adler = (b << 16) | a;
    z[zi++] = (unsigned char)(adler >> 24);
    z[zi++] = (unsigned char)(adler >> 16);
    z[zi++] = (unsigned char)(adler >> 8);
    z[zi++] = (unsigned char)adler;

    out o = { buf, 0 };
    memcpy(o.p, "\x89PNG\r\n\x1a\n", 8);
    o.len = 8;
    unsigned char ihdr[13] = { 0, 0, W >> 8, W & 0xFF, 0, 0, H >> 8, H & 0xFF, 8, 3, 0, 0, 0 };
    chunk(&o, "IHDR", ihdr, sizeof ihdr);
    chunk(&o, "PLTE", &palette[0][0], sizeof palette);
    chunk(&o, "tEXt", (const unsigned char *)text, (size_t)tl);
    chunk(&o, "IDAT", z, zi);
    chunk(&o, "IEND", NULL, 0);
    free(z);
    free(c);
    *png = buf;
    *len = o.len;
    return 0;
}

int nino34_png_check(const char *path, char *msg, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(msg, cap, "%s: cannot open", path); return -1; }
    unsigned char h[8 + 8 + 13 + 4], tail[12];
    size_t n = fread(h, 1, sizeof h, f);
    int ok = fseek(f, -12, SEEK_END) == 0 && fread(tail, 1, 12, f) == 12;
    fclose(f);
    if (n < sizeof h || memcmp(h, "\x89PNG\r\n\x1a\n", 8)) {
        snprintf(msg, cap, "%s: not a PNG file (bad signature)", path);
        return -1;
    }
    unsigned long crc = (unsigned long)h[29] << 24 | (unsigned long)h[30] << 16 | (unsigned long)h[31] << 8 | h[32];
    if (memcmp(h + 8, "\0\0\0\x0dIHDR", 8) || crc32_update(0, h + 12, 17) != crc) {
        snprintf(msg, cap, "%s: PNG without a valid IHDR chunk", path);
        return -1;
    }
    if (!ok || memcmp(tail, "\0\0\0\0IEND\xae\x42\x60\x82", 12)) {
        snprintf(msg, cap, "%s: truncated PNG (no IEND chunk at the end)", path);
        return -1;
    }
    return 0;
}
