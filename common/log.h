/* log: one JSON line per event on stderr: ts, level, service, event, request_id, msg,
 * plus caller-supplied fields. Thread-safe (one write(2) per line). */
#ifndef PIX_LOG_H
#define PIX_LOG_H

#include "util.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_init(const char *service, const char *level);
int log_enabled(enum log_level lvl);

/* fields: NULL-terminated list of key, value string pairs (values escaped), may be empty.
 * rid may be NULL. */
void log_kv(enum log_level lvl, const char *rid, const char *event, const char *msg, ...)
    __attribute__((sentinel));

#define log_info(rid, ev, msg, ...) log_kv(LOG_INFO, rid, ev, msg, ##__VA_ARGS__, (char *)NULL)
#define log_warn(rid, ev, msg, ...) log_kv(LOG_WARN, rid, ev, msg, ##__VA_ARGS__, (char *)NULL)
#define log_error(rid, ev, msg, ...) log_kv(LOG_ERROR, rid, ev, msg, ##__VA_ARGS__, (char *)NULL)
#define log_debug(rid, ev, msg, ...) log_kv(LOG_DEBUG, rid, ev, msg, ##__VA_ARGS__, (char *)NULL)

/* Logs and exits(1). Only for start-up failures and broken invariants. */
void fatal(const char *event, const char *fmt, ...) PIX_PRINTF(2, 3) __attribute__((noreturn));

#endif
