/* test_link: pixctl link create's --expires-in: empty (the server's default), never (null),
 * whole-second durations, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "link.h"

/* expires_in of body after link_expiry(s): -2 absent, -1 null, else the seconds. */
static double expiry_of(const char *s, int *rc)
{
    cJSON *body = cJSON_CreateObject();
    const cJSON *v;
    double out;

    *rc = link_expiry(s, body);
    v = cJSON_GetObjectItemCaseSensitive(body, "expires_in");
    out = !v ? -2 : cJSON_IsNull(v) ? -1 : v->valuedouble;
    cJSON_Delete(body);
    return out;
}

static void test_accepted(void **state)
{
    int rc;

    assert_true(expiry_of("", &rc) == -2 && rc == 0);
    assert_true(expiry_of("never", &rc) == -1 && rc == 0);
    assert_true(expiry_of("90s", &rc) == 90 && rc == 0);
    assert_true(expiry_of("30m", &rc) == 1800 && rc == 0);
    assert_true(expiry_of("12h", &rc) == 43200 && rc == 0);
    assert_true(expiry_of("7d", &rc) == 604800 && rc == 0);
}

static void test_refused(void **state)
{
    const char *bad[] = {"soon", "0", "0s", "1.5s", "-5m", "500ms", "Never", "1e30"};
    int rc;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_true(expiry_of(bad[i], &rc) == -2);
        assert_int_equal(rc, -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
