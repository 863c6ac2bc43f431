/* report: the summary of a pass: text or JSON on stdout at the end of --once, one log line
 * per pass in daemon mode. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "json.h"
#include "log.h"
#include "rec.h"

static const char *const state_names[] = {"skipped", "not_due", "done", "failed"};

static void totals(const struct rec_report *rep, long t[4])
{
    t[0] = t[1] = t[2] = t[3] = 0;
    for (int i = 0; i < REC_NSWEEPS; i++) {
        t[0] += rep->sweep[i].examined, t[1] += rep->sweep[i].actions;
        t[2] += rep->sweep[i].errors, t[3] += rep->sweep[i].unrepaired;
    }
}

static cJSON *report_json(const struct rec_report *rep)
{
    cJSON *o = cJSON_CreateObject(), *s = NULL;
    long t[4];

    totals(rep, t);
    cJSON_AddBoolToObject(o, "dry_run", rep->dry_run);
    cJSON_AddBoolToObject(o, "locked", rep->locked);
    cJSON_AddNumberToObject(o, "exit_code", rec_exit_code(rep));
    cJSON_AddNumberToObject(o, "seconds", rep->seconds);
    cJSON_AddNumberToObject(o, "examined", (double)t[0]);
    cJSON_AddNumberToObject(o, "actions", (double)t[1]);
    cJSON_AddNumberToObject(o, "errors", (double)t[2]);
    cJSON_AddNumberToObject(o, "unrepaired", (double)t[3]);
    s = cJSON_AddObjectToObject(o, "sweeps");
    for (int i = 0; i < REC_NSWEEPS; i++) {
        const struct rec_counts *c = &rep->sweep[i];
        cJSON *e = cJSON_AddObjectToObject(s, rec_sweep_name(i));
        cJSON_AddStringToObject(e, "state", state_names[c->state]);
        cJSON_AddNumberToObject(e, "examined", (double)c->examined);
        cJSON_AddNumberToObject(e, "actions", (double)c->actions);
        cJSON_AddNumberToObject(e, "errors", (double)c->errors);
        cJSON_AddNumberToObject(e, "unrepaired", (double)c->unrepaired);
        cJSON_AddNumberToObject(e, "seconds", c->seconds);
    }
    return o;
}

static void report_text(const struct rec_report *rep, FILE *out)
{
    long t[4];

    totals(rep, t);
    if (!rep->locked) {
        fprintf(out, "another reconciler holds the lock: nothing done\n");
        return;
    }
    fprintf(out, "%-17s %-8s %9s %8s %7s %10s %9s\n", rep->dry_run ? "sweep (dry run)" : "sweep",
            "state", "examined", "actions", "errors", "unrepaired", "seconds");
    for (int i = 0; i < REC_NSWEEPS; i++) {
        const struct rec_counts *c = &rep->sweep[i];
        fprintf(out, "%-17s %-8s %9ld %8ld %7ld %10ld %9.3f\n", rec_sweep_name(i),
                state_names[c->state], c->examined, c->actions, c->errors, c->unrepaired,
                c->seconds);
    }
    fprintf(out, "%-17s %-8s %9ld %8ld %7ld %10ld %9.3f\n", "total", "", t[0], t[1], t[2], t[3],
            rep->seconds);
}

void rec_report_print(const struct rec_report *rep, int json, FILE *out)
{
    cJSON *o;
    char *s;

    if (!json)
        return report_text(rep, out);
    o = report_json(rep);
    s = json_print(o);
    fprintf(out, "%s\n", s ? s : "{}");
    free(s);
    cJSON_Delete(o);
    fflush(out);
}

void rec_report_log(const struct rec_report *rep)
{
    char n[4][24], secs[24];
    long t[4];

    totals(rep, t);
    for (int i = 0; i < 4; i++)
        snprintf(n[i], sizeof n[i], "%ld", t[i]);
    snprintf(secs, sizeof secs, "%.3f", rep->seconds);
    log_info(NULL, "reconcile_pass", rep->dry_run ? "dry run done" : "pass done", "examined", n[0],
             "actions", n[1], "errors", n[2], "unrepaired", n[3], "seconds", secs);
}
