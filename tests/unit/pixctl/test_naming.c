/* test_naming: local file names: sanitizing server names, the collision form, and an
 * assignment that depends only on the set of images (so two sync folders agree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "naming.h"

static void clean_is(const char *name, const char *want)
{
    char out[NAMING_MAX + 1];

    naming_sanitize(name, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_sanitize(void **unused)
{
    clean_is("photo.jpg", "photo.jpg");
    clean_is("a/b\\c.png", "a_b_c.png");
    clean_is("tab\there\n.jpg", "tab_here_.jpg");
    clean_is("", "_");
    clean_is(".", "_.");
    clean_is("..", "_..");
    clean_is(".pixplane", "_.pixplane");
    clean_is(".pixplane-x", "_.pixplane-x");
    clean_is(".hidden", ".hidden");
    clean_is("été 🌞.jpg", "été 🌞.jpg");
}

static void test_long_names(void **unused)
{
    char name[600], out[NAMING_MAX + 1];

    memset(name, 'a', 300);
    strcpy(name + 300, ".jpeg");
    naming_sanitize(name, out, sizeof out);
    assert_int_equal(strlen(out), NAMING_MAX);
    assert_string_equal(out + NAMING_MAX - 5, ".jpeg");
    /* multi-byte characters are never cut in half */
    name[0] = '\0';
    for (int i = 0; i < 150; i++)
        strcat(name, "é"); /* 2 bytes each: 300 bytes */
    strcat(name, "x.jpg");
    naming_sanitize(name, out, sizeof out);
    assert_int_equal(strlen(out), 254); /* 125 whole characters, then .jpg */
    assert_string_equal(out + strlen(out) - 4, ".jpg");
    for (size_t i = 0; i + 4 < strlen(out); i += 2)
        assert_memory_equal(out + i, "é", 2);
}

static void test_ext_and_suffix(void **unused)
{
    char out[NAMING_MAX + 1];

    assert_int_equal(naming_ext_at("a.jpg"), 1);
    assert_int_equal(naming_ext_at("archive.tar.gz"), 11);
    assert_int_equal(naming_ext_at(".bashrc"), 7);
    assert_int_equal(naming_ext_at("noext"), 5);
    assert_int_equal(naming_ext_at("a.b c"), 5);
    assert_int_equal(naming_ext_at("a."), 2);
    naming_suffixed("photo.jpg", "1a2b3c4d", out, sizeof out);
    assert_string_equal(out, "photo (1a2b3c4d).jpg");
    naming_suffixed("README", "ff", out, sizeof out);
    assert_string_equal(out, "README (ff)");
}

#define ID_A "1aaaaaaa-0000-4000-8000-000000000001"
#define ID_B "2bbbbbbb-0000-4000-8000-000000000002"
#define ID_C "3ccccccc-0000-4000-8000-000000000003"

static void test_assign_collisions(void **unused)
{
    struct naming_entry e[] = {{ID_C, "cat.jpg", ""},
                               {ID_A, "cat.jpg", ""},
                               {ID_B, "dog.jpg", ""},
                               {ID_B "x", "cat.jpg", ""}};

    assert_int_equal(naming_assign(e, 4, NULL, NULL), 0);
    assert_string_equal(e[1].out, "cat.jpg"); /* the smallest id keeps the plain name */
    assert_string_equal(e[0].out, "cat (3ccccccc).jpg");
    assert_string_equal(e[2].out, "dog.jpg");
    /* same 8-character prefix as another entry's suffix? no: ID_B "x" has prefix 2bbbbbbb */
    assert_string_equal(e[3].out, "cat (2bbbbbbb).jpg");
}

static void test_assign_order_independent(void **unused)
{
    struct naming_entry a[] = {{ID_A, "x.png", ""}, {ID_B, "x.png", ""}, {ID_C, "x.png", ""}};
    struct naming_entry b[] = {{ID_C, "x.png", ""}, {ID_B, "x.png", ""}, {ID_A, "x.png", ""}};

    assert_int_equal(naming_assign(a, 3, NULL, NULL), 0);
    assert_int_equal(naming_assign(b, 3, NULL, NULL), 0);
    assert_string_equal(a[0].out, b[2].out);
    assert_string_equal(a[1].out, b[1].out);
    assert_string_equal(a[2].out, b[0].out);
}

/* A plain name someone chose that equals another image's collision name. */
static void test_assign_suffix_vs_plain(void **unused)
{
    struct naming_entry e[] = {
        {ID_A, "x.png", ""}, {ID_B, "x.png", ""}, {ID_C, "x (2bbbbbbb).png", ""}};

    assert_int_equal(naming_assign(e, 3, NULL, NULL), 0);
    assert_string_equal(e[0].out, "x.png");
    assert_string_equal(e[2].out, "x (2bbbbbbb).png"); /* plain names win */
    assert_string_equal(e[1].out, "x (" ID_B ").png");
}

static int foreign(void *ud, const char *f)
{
    return !strcmp(f, (const char *)ud);
}

static void test_assign_foreign_file(void **unused)
{
    struct naming_entry e[] = {{ID_A, "notes.jpg", ""}, {ID_B, "b.jpg", ""}};

    assert_int_equal(naming_assign(e, 2, foreign, (void *)"notes.jpg"), 0);
    assert_string_equal(e[0].out, "notes (1aaaaaaa).jpg");
    assert_string_equal(e[1].out, "b.jpg");
    assert_int_equal(naming_assign(e, 0, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_ext_and_suffix),
        cmocka_unit_test(test_assign_collisions),
        cmocka_unit_test(test_assign_order_independent),
        cmocka_unit_test(test_assign_suffix_vs_plain),
        cmocka_unit_test(test_assign_foreign_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
