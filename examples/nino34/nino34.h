/* examples/nino34/nino34.h — the pieces of the nino34 example shared between
 * its files: the plume chart renderer (png.c) and the stand-in for NOAA's web
 * server that serves the charts (server.c). */
#ifndef NINO34_H
#define NINO34_H

#include <herd/herd.h>

/* The URL path of one month's chart, as on www.cpc.ncep.noaa.gov. */
#define NINO34_PATH_FMT "/products/NMME/archive/%04d%02d0800/current/images/nino34.rescaling.ENSMEAN.png"

/* Render the ENSO plume chart of year/month as a PNG (malloc'd in *png). */
int nino34_png(int year, int month, unsigned char **png, size_t *len);

/* Check that the file at path is a PNG: signature, then an IHDR chunk with a
 * correct CRC, and an IEND chunk at the end. 0, or -1 with why in msg. */
int nino34_png_check(const char *path, char *msg, size_t cap);

/* A local HTTP server on 127.0.0.1 (port chosen by the kernel), run by a
 * thread of its own, that answers each chart request after delay_s seconds.
 * Requests are delayed concurrently (a timer each), as a slow remote server's
 * latency would be. */
typedef struct nino34_server nino34_server;
int  nino34_server_start(nino34_server **out, double delay_s, herd_err *err);
const char *nino34_server_url(const nino34_server *s);  /* "http://127.0.0.1:PORT" */
unsigned    nino34_server_requests(const nino34_server *s);
void nino34_server_stop(nino34_server *s);

#endif
