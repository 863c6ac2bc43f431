/* Unit tests for services/api/imgcache.c: an entry is served only while nothing about the
 * image's owner or the caller changed since the read it came from, never during their
 * writes, never while notifications go unheard, never past its ttl. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "imgcache.h"

#define ID "0b7e2f52-3c1f-4a57-9a0e-5d1f6a7b8c9d"

static struct api_img image(const char *owner)
{
    struct api_img m;

    memset(&m, 0, sizeof m);
    strcpy(m.id, ID);
    strcpy(m.owner, owner);
    strcpy(m.status, "active");
    strcpy(m.name, "a.jpg");
    return m;
}

/* Fills the entry of (ID, caller) as a read that began at the current stamp. */
static void fill(imgcache *c, imgcache_gens *g, const char *caller, const char *owner)
{
    struct api_img m = image(owner);

    imgcache_put(c, caller, &m, imgcache_stamp(g), 100);
}

static int cached(imgcache *c, const char *caller)
{
    struct api_img m;

    return imgcache_get(c, ID, caller, 101, &m) && !strcmp(m.name, "a.jpg");
}

static void test_served_until_a_change(void **state)
{
    imgcache_gens *g = imgcache_gens_new();
    imgcache *c = imgcache_new(g, 64, 30);

    assert_non_null(c);
    fill(c, g, "bob", "alice");
    assert_false(cached(c, "bob")); /* not live yet: nothing is served or kept */
    imgcache_set_live(g, 1);
    fill(c, g, "bob", "alice");
    assert_true(cached(c, "bob"));
    assert_false(cached(c, "carol")); /* per caller */
    imgcache_changed(g, "dave");      /* someone else: still served */
    assert_true(cached(c, "bob"));
    imgcache_changed(g, "alice"); /* the owner */
    assert_false(cached(c, "bob"));
    fill(c, g, "bob", "alice");
    imgcache_changed(g, "bob"); /* the caller (a share to or from them) */
    assert_false(cached(c, "bob"));
    fill(c, g, "bob", "alice");
    imgcache_changed(g, "*");
    assert_false(cached(c, "bob"));
    fill(c, g, "bob", "alice");
    imgcache_set_live(g, 0); /* the LISTEN connection is gone */
    assert_false(cached(c, "bob"));
    imgcache_free(c);
    imgcache_gens_free(g);
}

static void test_reads_racing_a_change_are_not_kept(void **state)
{
    imgcache_gens *g = imgcache_gens_new();
    imgcache *c = imgcache_new(g, 64, 30);
    struct api_img m = image("alice");
    unsigned long before;

    imgcache_set_live(g, 1);
    before = imgcache_stamp(g);   /* the read begins ... */
    imgcache_changed(g, "alice"); /* ... a change is heard before it is kept */
    imgcache_put(c, "bob", &m, before, 100);
    assert_false(cached(c, "bob"));
    /* a write by the owner: nothing served or kept while it runs, stale after */
    fill(c, g, "bob", "alice");
    imgcache_write_begin(g, "alice");
    assert_false(cached(c, "bob"));
    fill(c, g, "bob", "alice");
    assert_false(cached(c, "bob"));
    before = imgcache_stamp(g);
    imgcache_write_end(g, "alice");
    imgcache_put(c, "bob", &m, before, 100);
    assert_false(cached(c, "bob"));
    fill(c, g, "bob", "alice");
    assert_true(cached(c, "bob"));
    imgcache_free(c);
    imgcache_gens_free(g);
}

static void test_ttl_status_and_null(void **state)
{
    imgcache_gens *g = imgcache_gens_new();
    imgcache *c = imgcache_new(g, 1, 30);
    struct api_img m = image("alice");

    imgcache_set_live(g, 1);
    fill(c, g, "bob", "alice");
    assert_true(imgcache_get(c, ID, "bob", 130, &m));
    assert_false(imgcache_get(c, ID, "bob", 130.5, &m)); /* older than the ttl */
    strcpy(m.status, "deleted");
    imgcache_put(c, "bob", &m, imgcache_stamp(g), 100); /* only active images are kept */
    assert_false(cached(c, "bob"));
    assert_false(imgcache_get(NULL, ID, "bob", 100, &m));
    imgcache_put(NULL, "bob", &m, 0, 100);
    imgcache_changed(NULL, "bob");
    imgcache_write_begin(NULL, "bob");
    imgcache_write_end(NULL, "bob");
    imgcache_set_live(NULL, 1);
    assert_int_equal(imgcache_stamp(NULL), 0);
    assert_null(imgcache_new(NULL, 8, 1));
    assert_null(imgcache_new(g, 0, 1));
    imgcache_free(NULL);
    imgcache_gens_free(NULL);
    imgcache_free(c);
    imgcache_gens_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_until_a_change),
        cmocka_unit_test(test_reads_racing_a_change_are_not_kept),
        cmocka_unit_test(test_ttl_status_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
