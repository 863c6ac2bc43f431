/* test_sql: every statement the API prepares (its own, finalize's and pop's) parses and
 * plans against the migrated schema of the PostgreSQL named by DATABASE_URL (skips without
 * it), so a typo in a rarely taken path fails here, not in production. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void test_every_statement_prepares(void **state)
{
    const char *url = getenv("DATABASE_URL");
    PGconn *c;
    int bad = 0;

    if (!url || !*url)
        skip();
    c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    for (size_t i = 0; i < api_stmts_count; i++) {
        char name[64];
        PGresult *r;

        snprintf(name, sizeof name, "t_%zu", i);
        r = PQprepare(c, name, api_stmts[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "statement %s: %s", api_stmts[i].name, PQerrorMessage(c));
            bad++;
        }
        PQclear(r);
    }
    PQfinish(c);
    assert_int_equal(bad, 0);
}

static void test_names_are_unique(void **state)
{
    for (size_t i = 0; i < api_stmts_count; i++)
        for (size_t j = i + 1; j < api_stmts_count; j++)
            assert_string_not_equal(api_stmts[i].name, api_stmts[j].name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_statement_prepares),
        cmocka_unit_test(test_names_are_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
