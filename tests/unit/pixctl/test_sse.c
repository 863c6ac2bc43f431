/* test_sse: the event-stream parser: events split across reads at every byte, CR/LF/CRLF
 * line ends, multi-line data, comments (heartbeats), ids kept for Last-Event-ID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sse.h"

struct seen {
    int n;
    char type[8][64], data[8][128], id[8][64];
};

static void on_event(void *ud, const char *type, const char *data, const char *id)
{
    struct seen *s = ud;

    if (s->n >= 8)
        return;
    snprintf(s->type[s->n], 64, "%s", type);
    snprintf(s->data[s->n], 128, "%s", data);
    snprintf(s->id[s->n], 64, "%s", id);
    s->n++;
}

static const char stream[] = ": heartbeat\r\n"
                             "\r\n"
                             "id: 41\r\n"
                             "event: change\r\n"
                             "data: {\"cursor\":\"41\"}\r\n"
                             "\r\n"
                             "data:first\n"
                             "data: second\n"
                             "\n"
                             "id:42\r"
                             "data: x\r"
                             "\r"
                             "retry: 1000\n"
                             "unknown: field\n"
                             "id\n"
                             "\n"
                             "data\n"
                             "\n";

static void check(const struct sse *p, const struct seen *s)
{
    assert_int_equal(s->n, 4);
    assert_string_equal(s->type[0], "change");
    assert_string_equal(s->data[0], "{\"cursor\":\"41\"}");
    assert_string_equal(s->id[0], "41");
    assert_string_equal(s->type[1], "message");
    assert_string_equal(s->data[1], "first\nsecond");
    assert_string_equal(s->id[1], "41");
    assert_string_equal(s->data[2], "x");
    assert_string_equal(s->id[2], "42");
    assert_string_equal(s->data[3], ""); /* "data" alone: one empty line */
    assert_string_equal(s->id[3], "");   /* "id" alone resets the id */
    assert_int_equal(p->comments, 1);
}

static void test_whole(void **unused)
{
    struct seen s = {0};
    struct sse p;

    sse_init(&p, on_event, &s);
    assert_int_equal(sse_feed(&p, stream, strlen(stream)), 0);
    check(&p, &s);
    sse_free(&p);
}

static void test_byte_by_byte(void **unused)
{
    struct seen s = {0};
    struct sse p;

    sse_init(&p, on_event, &s);
    for (size_t i = 0; i < strlen(stream); i++)
        assert_int_equal(sse_feed(&p, stream + i, 1), 0);
    check(&p, &s);
    sse_free(&p);
}

static void test_reset_keeps_id(void **unused)
{
    struct seen s = {0};
    struct sse p;
    const char *a = "id: 7\ndata: partial", *b = "data: whole\n\n";

    sse_init(&p, on_event, &s);
    assert_int_equal(sse_feed(&p, a, strlen(a)), 0);
    sse_reset(&p); /* disconnected mid-event */
    assert_string_equal(p.last_id, "7");
    assert_int_equal(sse_feed(&p, b, strlen(b)), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.data[0], "whole");
    assert_string_equal(s.id[0], "7");
    sse_free(&p);
}

static void test_overlong_line(void **unused)
{
    static char big[SSE_LINE_MAX + 100];
    struct seen s = {0};
    struct sse p;

    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    sse_init(&p, on_event, &s);
    assert_int_equal(sse_feed(&p, big, sizeof big), 0);
    assert_int_equal(sse_feed(&p, "\ndata: ok\n\n", 11), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.data[0], "ok");
    sse_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_reset_keeps_id),
        cmocka_unit_test(test_overlong_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
