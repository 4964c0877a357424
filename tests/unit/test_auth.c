/* test_auth.c: ingest token entries: NAME:TOKEN (the token is everything after the first
 * colon), the admin scope on the name side ("admin+NAME"), and Bearer checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth.h"

static void check(const char *header, int want, const char *want_name, unsigned want_scopes)
{
    char name[80] = "junk";
    unsigned scopes = 99;
    assert_int_equal(auth_check(header, name, sizeof name, &scopes), want);
    assert_string_equal(name, want_name);
    assert_int_equal(scopes, want_scopes);
}

static void test_scopes(void **state)
{
    char err[256];
    assert_int_equal(auth_set_tokens("loader:s3cret:with:colons, admin+ops:0ther,admin:plain",
                                     false, err, sizeof err),
                     0);
    check("Bearer s3cret:with:colons", AUTH_OK, "loader", 0);
    check("Bearer 0ther", AUTH_OK, "ops", AUTH_SCOPE_ADMIN);
    check("Bearer plain", AUTH_OK, "admin", 0); /* a name "admin" is only a name */
    check("Bearer admin+ops:0ther", AUTH_INVALID, "", 0);
    check(NULL, AUTH_MISSING, "", 0);
    /* NULL scopes is allowed. */
    char name[80];
    assert_int_equal(auth_check("Bearer 0ther", name, sizeof name, NULL), AUTH_OK);
    assert_string_equal(name, "ops");
}

static void test_bad_entries(void **state)
{
    static const char *const bad[] = {
        "admin+:tok",                         /* a scope with no name */
        "admin+admin+ops:tok",                /* one prefix only: '+' is not a name character */
        "ops+admin:tok", "ops:a,admin+ops:b", /* the same name twice, scope or not */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        assert_int_equal(auth_set_tokens(bad[i], false, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_bad_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
