/* core/progress.h — progress lines per task name on a terminal or a file
 * (progress.c): drawn by herd_progress for a set of futures and by a flow
 * run's automatic progress line (client_kwargs.progress) for all its tasks. */
#ifndef HERD_PROGRESS_H
#define HERD_PROGRESS_H

#include <stdio.h>
#include <stddef.h>

typedef struct herd_client herd_client;

typedef struct herd_pgroup {
    char name[64];
    size_t total, done, running, failed;          /* failed: failed, crashed or cancelled */
    size_t last_done, last_failed, last_running;  /* as last written (plain lines) */
} herd_pgroup;

/* Where the lines go and what was drawn: on a terminal the lines are
 * redrawn in place, otherwise a plain line per task name whose counts
 * changed, at most once a second, and every line at the end. */
typedef struct herd_pdraw {
    FILE *out;
    int tty;
    size_t drawn;            /* lines drawn in place so far (terminal) */
    double last_plain;
} herd_pdraw;

void herd_pdraw_init(herd_pdraw *d, FILE *out);
/* Draw groups g[0..n) (their last_* fields are updated); end: the last time. */
void herd_pdraw_lines(herd_pdraw *d, herd_pgroup *g, size_t n, int end);

/* A flow run's automatic progress line: a thread drawing the progress of
 * every task submitted through cl on out, at most 10 times a second, until
 * herd_flow_progress_stop draws it a last time and joins it. */
typedef struct herd_flow_progress herd_flow_progress;
int  herd_flow_progress_start(herd_client *cl, FILE *out, herd_flow_progress **out_p);
void herd_flow_progress_stop(herd_flow_progress *p);

#endif
