/* test_linkauth: public-link secrets: token shape and hash, the scrypt password hash format
 * (salted, parameters kept, refused when malformed or out of bounds), and unlock tickets
 * (bound to their link, expiring, refused when altered or made with another secret). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "linkauth.h"

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
#define LINK "6f1c2a7e-0b1d-4c3e-9f00-123456789abc"
#define OTHER "6f1c2a7e-0b1d-4c3e-9f00-123456789abd"

static void test_token_shape_and_hash(void **state)
{
    char a[LINK_TOKEN_LEN + 1], b[LINK_TOKEN_LEN + 1], ha[65], hb[65];

    assert_int_equal(linkauth_token_new(a), 0);
    assert_int_equal(linkauth_token_new(b), 0);
    assert_int_equal(strlen(a), LINK_TOKEN_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(linkauth_token_hash(a, ha), 0);
    assert_int_equal(linkauth_token_hash(b, hb), 0);
    assert_int_equal(strlen(ha), 64);
    assert_string_not_equal(ha, hb);
    assert_null(strstr(ha, a));
    /* the SHA-256 of the text, known answer */
    assert_int_equal(linkauth_token_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ha), 0);
    assert_string_equal(ha, "22a48051594c1949deed7040850c1f0f8764537f5191be56732d16a54c1d8153");
}

static void test_token_malformed(void **state)
{
    char h[65];

    assert_int_equal(linkauth_token_hash("", h), -1);
    assert_int_equal(linkauth_token_hash("short", h), -1);
    assert_int_equal(linkauth_token_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/", h), -1);
    assert_int_equal(linkauth_token_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", h), -1);
    assert_int_equal(linkauth_token_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h), -1);
}

static void test_password_hash_format(void **state)
{
    char h1[LINK_PWHASH_MAX], h2[LINK_PWHASH_MAX], err[ERR_MAX] = "";
    unsigned log2n, r, p;
    char salt[32], hash[48];

    assert_int_equal(linkauth_password_hash("correct horse", 13, h1, err), 0);
    assert_int_equal(linkauth_password_hash("correct horse", 13, h2, err), 0);
    assert_int_equal(
        sscanf(h1, "scrypt$%u$%u$%u$%31[A-Za-z0-9_-]$%47[A-Za-z0-9_-]", &log2n, &r, &p, salt, hash),
        5);
    assert_int_equal(log2n, 15);
    assert_int_equal(r, 8);
    assert_int_equal(p, 1);
    assert_int_equal(strlen(salt), 22); /* 16 bytes */
    assert_int_equal(strlen(hash), 43); /* 32 bytes */
    assert_string_not_equal(h1, h2);    /* a fresh salt each time */
    assert_null(strstr(h1, "correct"));
    assert_int_equal(linkauth_password_verify("correct horse", 13, h1), 1);
    assert_int_equal(linkauth_password_verify("correct horse", 13, h2), 1);
    assert_int_equal(linkauth_password_verify("correct hors", 12, h1), 0);
    assert_int_equal(linkauth_password_verify("correct horsf", 13, h1), 0);
}

static void test_password_hash_refused(void **state)
{
    char h[LINK_PWHASH_MAX], bad[LINK_PWHASH_MAX + 16], err[ERR_MAX] = "";

    assert_int_equal(linkauth_password_hash("pw", 2, h, err), 0);
    assert_int_equal(linkauth_password_verify("pw", 2, ""), -1);
    assert_int_equal(linkauth_password_verify("pw", 2, "pw"), -1);
    assert_int_equal(linkauth_password_verify("pw", 2, "argon2$x"), -1);
    snprintf(bad, sizeof bad, "%sx", h); /* trailing garbage */
    assert_int_equal(linkauth_password_verify("pw", 2, bad), -1);
    /* parameters out of bounds are never run (a stored row cannot ask for 2^30 memory) */
    snprintf(bad, sizeof bad, "scrypt$30%s", strchr(h + 7, '$'));
    assert_int_equal(linkauth_password_verify("pw", 2, bad), -1);
    snprintf(bad, sizeof bad, "scrypt$15$8$9%s", strchr(h + 12, '$'));
    assert_int_equal(linkauth_password_verify("pw", 2, bad), -1);
    /* a short salt */
    assert_int_equal(linkauth_password_verify("pw", 2,
                                              "scrypt$15$8$1$AAAA$"
                                              "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                     -1);
}

static void test_ticket(void **state)
{
    char t[LINK_TICKET_MAX], bad[LINK_TICKET_MAX];
    static const unsigned char other[] = "another secret of thirty-two byt";

    assert_int_equal(linkauth_ticket_make(secret, 32, LINK, 1000, t), 0);
    assert_true(linkauth_ticket_valid(secret, 32, t, LINK, 999));
    assert_false(linkauth_ticket_valid(secret, 32, t, LINK, 1000)); /* expired */
    assert_false(linkauth_ticket_valid(secret, 32, t, OTHER, 999)); /* another link's */
    assert_false(linkauth_ticket_valid(other, 32, t, LINK, 999));   /* another server's */
    memcpy(bad, t, sizeof bad);
    bad[30] = bad[30] == 'A' ? 'B' : 'A'; /* the expiry or the MAC altered */
    assert_false(linkauth_ticket_valid(secret, 32, bad, LINK, 999));
    assert_false(linkauth_ticket_valid(secret, 32, "", LINK, 999));
    assert_false(linkauth_ticket_valid(secret, 32, "not a ticket", LINK, 999));
    assert_int_equal(linkauth_ticket_make(secret, 32, "not-a-uuid", 1000, t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_shape_and_hash),
        cmocka_unit_test(test_token_malformed),
        cmocka_unit_test(test_password_hash_format),
        cmocka_unit_test(test_password_hash_refused),
        cmocka_unit_test(test_ticket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
