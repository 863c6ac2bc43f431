/* json: cJSON helpers for request bodies (object-only parsing, typed getters with static
 * error messages) and the {"error":{"code","message"}} body; also a UTF-8 validator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

/* Integers must survive a round trip through a double: |v| <= 2^53 - 1. */
#define JSON_MAX_SAFE_INT 9007199254740991.0

size_t json_utf8_seqlen(const unsigned char *p, size_t n)
{
    size_t len, i;
    unsigned long cp;

    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    cp = p[0] & (0x7f >> len);
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return len;
}

static int is_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A \u escape's four characters: 1 hex digits naming a code point other than U+0000, 0 the
 * escape of U+0000, -1 not four hex digits (cJSON would read "\u.000" as U+0000 too). */
static int u_escape(const char *h, size_t n)
{
    if (n < 4 || !is_hex(h[0]) || !is_hex(h[1]) || !is_hex(h[2]) || !is_hex(h[3]))
        return -1;
    return memcmp(h, "0000", 4) != 0;
}

/* What the parser must never see: bytes that are not UTF-8 (RFC 8259; PostgreSQL refuses
 * them as text), NUL bytes, and \u escapes of U+0000 or not four hex digits (C strings
 * would end there: "abc\u0000.exe" stored as "abc"). 0, or -1 with *err. */
static int body_text_ok(const char *s, size_t n, const char **err)
{
    for (size_t i = 0; i < n;) {
        size_t l = 2;
        int u = 1;
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == 'u')
            u = u_escape(s + i + 2, n - i - 2);
        else if (s[i] == '\0')
            u = -1; /* raw control characters are not JSON */
        else if (s[i] != '\\' || i + 1 == n)
            l = json_utf8_seqlen((const unsigned char *)s + i, n - i);
        if (u <= 0 || l == 0) {
            *err = u == 0  ? "strings must not contain U+0000"
                   : u < 0 ? "malformed JSON"
                           : "the body must be UTF-8 text";
            return -1;
        }
        i += l; /* an escape's two characters, so "\\\\u0000" is a backslash and text */
    }
    return 0;
}

cJSON *json_parse_object(const char *body, size_t len, const char **err)
{
    const char *end = NULL;
    cJSON *o;

    if (body == NULL || len == 0) {
        *err = "malformed JSON";
        return NULL;
    }
    if (body_text_ok(body, len, err) < 0)
        return NULL;
    o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (o == NULL) {
        *err = "malformed JSON";
        return NULL;
    }
    while (end < body + len && is_json_ws(*end))
        end++;
    if (end != body + len) {
        cJSON_Delete(o);
        *err = "malformed JSON";
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        *err = "expected a JSON object";
        return NULL;
    }
    return o;
}

long long json_count(const cJSON *v)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    return d >= 0 && d <= JSON_MAX_SAFE_INT && d == floor(d) ? (long long)d : -1;
}

/* The member for key, or NULL when o is not an object, key is absent, or its value is null. */
static const cJSON *member(const cJSON *o, const char *key)
{
    const cJSON *it;

    if (!cJSON_IsObject(o) || key == NULL)
        return NULL;
    it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(it) ? NULL : it;
}

int json_get_str(const cJSON *o, const char *key, const char **out, const char **err)
{
    const cJSON *it = member(o, key);

    if (it == NULL)
        return 0;
    if (!cJSON_IsString(it) || it->valuestring == NULL) {
        *err = "expected a string";
        return -1;
    }
    *out = it->valuestring;
    return 1;
}

cJSON *json_parse_versioned(const char *body, size_t len, long long version, char *err)
{
    const char *e = NULL;
    long long v = 0;
    cJSON *o = json_parse_object(body, len, &e);

    if (!o) {
        err_set(err, "event: %s", e);
        return NULL;
    }
    if (json_get_i64(o, "version", &v, &e) != 1 || v != version) {
        err_set(err, "event: unsupported version");
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int json_copy_str(const cJSON *o, const char *key, char *out, size_t outlen, char *err)
{
    const char *s = NULL, *e = NULL;

    if (json_get_str(o, key, &s, &e) != 1 || strlen(s) >= outlen) {
        err_set(err, "field %s missing, not a string or too long", key);
        return -1;
    }
    snprintf(out, outlen, "%s", s);
    return 0;
}

int json_get_i64(const cJSON *o, const char *key, long long *out, const char **err)
{
    const cJSON *it = member(o, key);
    double v;

    if (it == NULL)
        return 0;
    if (!cJSON_IsNumber(it)) {
        *err = "expected an integer";
        return -1;
    }
    v = it->valuedouble;
    if (!isfinite(v) || fabs(v) > JSON_MAX_SAFE_INT) {
        *err = "integer out of range";
        return -1;
    }
    if (v != floor(v)) {
        *err = "expected an integer";
        return -1;
    }
    *out = (long long)v;
    return 1;
}

int json_get_bool(const cJSON *o, const char *key, int *out, const char **err)
{
    const cJSON *it = member(o, key);

    if (it == NULL)
        return 0;
    if (!cJSON_IsBool(it)) {
        *err = "expected a boolean";
        return -1;
    }
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return 1;
}

char *json_print(const cJSON *o)
{
    if (o == NULL)
        return NULL;
    return cJSON_PrintUnformatted(o);
}

/* Copy of s with each invalid UTF-8 byte replaced by U+FFFD; malloc'd or NULL. */
static char *utf8_sanitize(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, o = 0, l;
    char *out = malloc(n * 3 + 1);

    if (out == NULL)
        return NULL;
    while (i < n) {
        l = json_utf8_seqlen(p + i, n - i);
        if (l == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, p + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return out;
}

/* Adds key: s to o, with invalid UTF-8 in s replaced so the output is valid JSON. */
static int add_clean_str(cJSON *o, const char *key, const char *s)
{
    char *clean = utf8_sanitize(s ? s : "");
    cJSON *v;

    if (clean == NULL)
        return -1;
    v = cJSON_AddStringToObject(o, key, clean);
    free(clean);
    return v ? 0 : -1;
}

char *json_error_body(const char *code, const char *msg)
{
    cJSON *root = cJSON_CreateObject(), *e;
    char *out = NULL;

    if (root == NULL)
        return NULL;
    e = cJSON_AddObjectToObject(root, "error");
    if (e == NULL)
        goto fail;
    if (add_clean_str(e, "code", code) < 0)
        goto fail;
    if (add_clean_str(e, "message", msg) < 0)
        goto fail;
    out = cJSON_PrintUnformatted(root);
fail:
    cJSON_Delete(root);
    return out;
}
