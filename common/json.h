/* json: helpers on cJSON for request bodies (typed field access with clear errors) and
 * the service's error body {"error":{"code","message"}}. */
#ifndef PIX_JSON_H
#define PIX_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "util.h"

/* Parses a request body that must be a JSON object. NULL with *err (static string). */
cJSON *json_parse_object(const char *body, size_t len, const char **err);

/* Parses a message that must be a JSON object carrying "version": version. NULL with err
 * (ERR_MAX bytes); free the object with cJSON_Delete. */
cJSON *json_parse_versioned(const char *body, size_t len, long long version, char *err);

/* Field getters: return 1 if present and well-typed, 0 if absent (or null), -1 if present
 * with the wrong type/range (then *err is set to a static message). */
int json_get_str(const cJSON *o, const char *key, const char **out, const char **err);
int json_get_i64(const cJSON *o, const char *key, long long *out, const char **err);
int json_get_bool(const cJSON *o, const char *key, int *out, const char **err);
/* Copies the required string field key (shorter than outlen) into out. 0, or -1 with err
 * (ERR_MAX bytes) naming the field. */
int json_copy_str(const cJSON *o, const char *key, char *out, size_t outlen, char *err) PIX_WUR;

/* v as a count: a whole number 0..2^53-1, else -1 (absent, not a number, negative,
 * fractional, or too large to convert: a hostile peer's 1e300 stays out of C integers). */
long long json_count(const cJSON *v);

/* Renders compactly; malloc'd string (free with free()). */
char *json_print(const cJSON *o);
/* {"error":{"code":code,"message":msg}} as a malloc'd string. */
char *json_error_body(const char *code, const char *msg);

/* Length (1..4) of the valid UTF-8 sequence at p (n bytes available), or 0 if it is not
 * one (stray continuation, overlong, surrogate, > U+10FFFF, truncated). */
size_t json_utf8_seqlen(const unsigned char *p, size_t n);

#endif
