/* test_pop: proof-of-possession challenges: shapes by size only, stored-form round trips,
 * banks answered in one pass over chunks of any size, and the ranged mode's strength. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "pop.h"

#define MIB (1024LL * 1024)

/* hex(sha256(nonce || ranges of data)) computed directly: the client's side. */
static void direct_answer(const unsigned char *data, const struct pop_challenge *ch, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char out[32];

    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, ch->nonce, strlen(ch->nonce));
    for (int i = 0; i < ch->n; i++)
        EVP_DigestUpdate(md, data + ch->off[i], (size_t)ch->len[i]);
    EVP_DigestFinal_ex(md, out, NULL);
    EVP_MD_CTX_free(md);
    util_hex(out, 32, hex);
}

static void check_shape(long long size)
{
    struct pop_challenge ch;

    assert_int_equal(pop_challenge_new(size, &ch), 0);
    assert_int_equal(strlen(ch.nonce), 32);
    if (size <= POP_WHOLE_MAX) {
        assert_int_equal(ch.n, 1);
        assert_true(ch.off[0] == 0 && ch.len[0] == size);
        return;
    }
    assert_int_equal(ch.n, POP_RANGES);
    for (int i = 0; i < ch.n; i++) {
        assert_true(ch.len[i] == POP_RANGE_LEN);
        assert_true(ch.off[i] >= size * i / POP_RANGES); /* inside its stratum */
        assert_true(ch.off[i] + ch.len[i] <= size * (i + 1) / POP_RANGES);
    }
}

static void test_shapes_depend_on_size_only(void **st)
{
    long long sizes[] = {
        1, 4096, 5 * MIB + 1, POP_WHOLE_MAX, POP_WHOLE_MAX + 1, 1024 * MIB + 7, 50LL * 1024 * MIB};
    struct pop_challenge ch;

    for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
        check_shape(sizes[i]);
    assert_int_equal(pop_challenge_new(0, &ch), -1);
}

static void test_json_round_trip(void **st)
{
    struct pop_challenge a, b;
    buf j = {0};

    assert_int_equal(pop_challenge_new(50LL * 1024 * MIB, &a), 0); /* the longest offsets */
    assert_int_equal(pop_ranges_json(&a, &j), 0);
    assert_true(j.len + 3 * (size_t)a.n < POP_RANGES_JSON_MAX); /* jsonb text adds 3 spaces */
    assert_int_equal(pop_challenge_load(a.nonce, j.data, &b), 0);
    assert_string_equal(a.nonce, b.nonce);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.off, b.off, sizeof a.off);
    assert_memory_equal(a.len, b.len, sizeof a.len);
    buf_free(&j);
}

static void test_load_refuses_malformed(void **st)
{
    const char *bad[] = {
        "",
        "{}",
        "[]",
        "[{\"offset\":-1,\"length\":5}]",
        "[{\"offset\":0,\"length\":0}]",
        "[{\"offset\":0}]",
        "[{\"offset\":10,\"length\":5},{\"offset\":12,\"length\":5}]", /* overlap */
        "[{\"offset\":10,\"length\":5},{\"offset\":0,\"length\":5}]",  /* unsorted */
        "[{\"offset\":\"0\",\"length\":5}]",
    };
    struct pop_challenge ch;
    buf many = {0};

    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(pop_challenge_load("n", bad[i], &ch), -1);
    assert_int_equal(buf_puts(&many, "["), 0);
    for (int i = 0; i <= POP_RANGES; i++)
        assert_int_equal(buf_printf(&many, "%s{\"offset\":%d,\"length\":1}", i ? "," : "", i * 2),
                         0);
    assert_int_equal(buf_puts(&many, "]"), 0);
    assert_int_equal(pop_challenge_load("n", many.data, &ch), -1);
    assert_int_equal(pop_challenge_load("0123456789abcdef0123456789abcdef0",
                                        "[{\"offset\":0,"
                                        "\"length\":1}]",
                                        &ch),
                     -1); /* nonce too long */
    buf_free(&many);
}

/* Feeds data to a bank in chunks of varying size, as S3 responses arrive. */
static void feed_chunked(pop_bank *b, const unsigned char *data, long long size)
{
    static const size_t steps[] = {1, 7, 4095, 4097, 65536, 1 << 20, 3};
    long long pos = 0;

    for (size_t i = 0; pos < size; i++) {
        size_t n = steps[i % ARRAY_LEN(steps)];
        if ((long long)n > size - pos)
            n = (size_t)(size - pos);
        assert_int_equal(pop_bank_feed(data + pos, n, b), 0);
        pos += (long long)n;
    }
}

/* The bank's answers equal what a client computes from the file, for each mode. */
static void check_bank(long long size)
{
    unsigned char *data = malloc((size_t)size);
    pop_bank *b = pop_bank_new(size, 5);
    char want[65];

    assert_non_null(data);
    assert_non_null(b);
    for (long long i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    feed_chunked(b, data, size);
    assert_int_equal(pop_bank_finish(b), 0);
    for (int i = 0; i < 5; i++) {
        const struct pop_challenge *ch = pop_bank_challenge(b, i);
        direct_answer(data, ch, want);
        assert_string_equal(ch->answer, want);
    }
    pop_bank_free(b);
    free(data);
}

static void test_bank_answers_match_client(void **st)
{
    check_bank(1);
    check_bank(5 * MIB + 1);
    check_bank(POP_WHOLE_MAX + 12345);
}

static void test_bank_short_feed_fails(void **st)
{
    unsigned char data[100] = {0};
    pop_bank *b = pop_bank_new(101, 2);

    assert_int_equal(pop_bank_feed(data, sizeof data, b), 0);
    assert_int_equal(pop_bank_finish(b), -1);
    pop_bank_free(b);
    assert_null(pop_bank_new(10, 0));
    assert_null(pop_bank_new(0, 3));
    pop_bank_free(NULL);
}

/* True if no range of ch touches a byte marked missing. */
static int passes(const struct pop_challenge *ch, const unsigned char *missing)
{
    for (int i = 0; i < ch->n; i++)
        for (long long o = ch->off[i]; o < ch->off[i] + ch->len[i]; o += 512)
            if (missing[o / 512])
                return 0;
    return 1;
}

/* An attacker who lacks 10 % of a 64 MiB file, contiguous or scattered in 512-byte blocks,
 * answers none of 2,000 ranged challenges (the bound is 4.8e-8 each). */
static void test_ranged_mode_needs_the_content(void **st)
{
    const long long size = 64 * MIB;
    const long long blocks = size / 512;
    unsigned char *contig = calloc((size_t)blocks, 1), *scatter = calloc((size_t)blocks, 1);
    unsigned char r;
    struct pop_challenge ch;
    int won = 0;

    assert_non_null(contig);
    assert_non_null(scatter);
    for (long long i = blocks / 3; i < blocks / 3 + blocks / 10; i++)
        contig[i] = 1;
    for (long long i = 0; i < blocks; i++) {
        assert_int_equal(util_random(&r, 1), 0);
        scatter[i] = r < 26; /* ~10 % */
    }
    for (int k = 0; k < 2000; k++) {
        assert_int_equal(pop_challenge_new(size, &ch), 0);
        won += passes(&ch, contig) + passes(&ch, scatter);
    }
    assert_int_equal(won, 0);
    free(contig);
    free(scatter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_depend_on_size_only),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_load_refuses_malformed),
        cmocka_unit_test(test_bank_answers_match_client),
        cmocka_unit_test(test_bank_short_feed_fails),
        cmocka_unit_test(test_ranged_mode_needs_the_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
