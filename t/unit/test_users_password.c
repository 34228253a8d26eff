/*
 * test_users_password.c -- backends/users/password.c and the address
 * checks of db.c: the length rule counts characters, not bytes; the
 * common list is matched case-insensitively; argon2id hashes verify and
 * report when their cost is below the configured one; emails are
 * lower-cased and phones must be E.164.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backends/users/password.c"
#include "../../backends/users/secret.c"
#include "../../backends/users/db.c"

users_config_t  users_cf;

/* db.c's cuts go through revoke.c, which these tests do not need. */
int
users_revoke_add(kit_pg_t *pg, const char *kind, const char *value,
    int64_t nbf)
{
    return 0;
}

char *
users_access_token(const char *sub, json_t *roles, const char *sid,
    json_t *amr, int64_t iat)
{
    return NULL;
}


static int
setup(void **state)
{
    char  path[] = "/tmp/kordon-common-XXXXXX", err[256];
    FILE *f;
    int   fd;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("#!comment: a list\n123456\npassword1\nTrustNo1\n"
          "iloveyou\nshort\n", f);
    fclose(f);
    users_cf = (users_config_t) {
        .argon2_m_kib = 64, .argon2_t = 1, .argon2_p = 1,
        .common_passwords = path,
    };
    assert_int_equal(users_password_init(err, sizeof(err)), 0);
    unlink(path);
    return 0;
}


static void
test_length_in_characters(void **state)
{
    char  big[200];

    assert_string_equal(users_password_rule("seven77", 7),
                        "must be at least 8 characters");
    assert_null(users_password_rule("eight888", 8));
    /* 8 characters of 2 bytes each: 16 bytes, enough. */
    assert_null(users_password_rule("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 16));
    /* 7 characters of 3 bytes each: 21 bytes, too few characters. */
    assert_non_null(users_password_rule("\xe2\x82\xac\xe2\x82\xac\xe2\x82"
                    "\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
                    21));

    memset(big, 'x', sizeof(big));
    assert_null(users_password_rule(big, 128));
    assert_string_equal(users_password_rule(big, 129),
                        "must be at most 128 characters");
    assert_int_equal(users_utf8_chars("a\xc3\xa9\xe2\x82\xac", 6), 3);
}


static void
test_common_list(void **state)
{
    assert_true(users_password_is_common("password1", 9));
    assert_true(users_password_is_common("PASSWORD1", 9));
    assert_true(users_password_is_common("trustno1", 8));
    assert_false(users_password_is_common("password2", 9));
    assert_false(users_password_is_common("#!comment: a list", 17));
    assert_non_null(strstr(users_password_rule("IloveYou", 8), "common"));
    assert_null(users_password_rule("correct horse battery", 21));
}


static void
test_hash_verify_rehash(void **state)
{
    char  h[USERS_HASH_MAX], h2[USERS_HASH_MAX];

    assert_int_equal(users_password_hash("correct horse", 13, h, sizeof(h)),
                     0);
    assert_non_null(strstr(h, "$argon2id$v=19$m=64,t=1,p=1$"));
    assert_int_equal(users_password_hash("correct horse", 13, h2,
                                         sizeof(h2)), 0);
    assert_string_not_equal(h, h2);                 /* salted */
    assert_int_equal(users_password_verify(h, "correct horse", 13), 1);
    assert_int_equal(users_password_verify(h, "correct horsE", 13), 0);
    assert_int_equal(users_password_verify(h, "correct hors", 12), 0);
    assert_int_equal(users_password_verify(NULL, "x", 1), 0);
    assert_int_equal(users_password_verify("$2y$10$bcrypt", "x", 1), 0);

    assert_false(users_password_needs_rehash(h));
    users_cf.argon2_m_kib = 128;                    /* the cost went up */
    assert_true(users_password_needs_rehash(h));
    users_cf.argon2_m_kib = 64;
    users_cf.argon2_t = 2;
    assert_true(users_password_needs_rehash(h));
    users_cf.argon2_t = 1;
    assert_true(users_password_needs_rehash("$argon2i$v=19$m=64,t=1,p=1$x$y"));
    assert_true(users_password_needs_rehash("garbage"));
}


static void
test_addresses(void **state)
{
    char  out[USERS_EMAIL_MAX + 1];

    assert_int_equal(users_email_normalize("Ann.Lee+x@Example.COM", 21, out,
                                           sizeof(out)), 0);
    assert_string_equal(out, "ann.lee+x@example.com");
    assert_int_equal(users_email_normalize("no-at.example.com", 17, out,
                                           sizeof(out)), -1);
    assert_int_equal(users_email_normalize("a@b", 3, out, sizeof(out)), -1);
    assert_int_equal(users_email_normalize("a@@b.io", 7, out, sizeof(out)),
                     -1);
    assert_int_equal(users_email_normalize("a b@c.io", 8, out, sizeof(out)),
                     -1);
    assert_int_equal(users_email_normalize("@c.io", 5, out, sizeof(out)), -1);
    assert_int_equal(users_email_normalize("a@c.io.", 7, out, sizeof(out)),
                     -1);
    assert_int_equal(users_email_normalize("a\0b@c.io", 8, out, sizeof(out)),
                     -1);

    assert_true(users_phone_valid("+15551234567", 12));
    assert_true(users_phone_valid("+442071838750", 13));
    assert_false(users_phone_valid("15551234567", 11));
    assert_false(users_phone_valid("+05551234567", 12));
    assert_false(users_phone_valid("+1555123456789012", 17));
    assert_false(users_phone_valid("+1555-123-4567", 14));
    assert_false(users_phone_valid("+123456", 7));
}


static void
test_body_address(void **state)
{
    char     email[USERS_EMAIL_MAX + 1], phone[USERS_PHONE_MAX + 1];
    json_t  *errors, *b;

    errors = json_array();
    b = json_pack("{s:s}", "email", "X@Y.io");
    assert_int_equal(users_body_address(b, email, phone, errors), 0);
    assert_string_equal(email, "x@y.io");
    assert_string_equal(phone, "");
    json_decref(b);

    b = json_pack("{s:s, s:s}", "email", "x@y.io", "phone", "+15551234567");
    assert_int_equal(users_body_address(b, email, phone, errors), -1);
    json_decref(b);
    b = json_pack("{s:i}", "phone", 5);
    assert_int_equal(users_body_address(b, email, phone, errors), -1);
    json_decref(b);
    assert_int_equal(json_array_size(errors), 2);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(errors, 1), "pointer")), "/phone");
    json_decref(errors);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_length_in_characters),
        cmocka_unit_test(test_common_list),
        cmocka_unit_test(test_hash_verify_rehash),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_body_address),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
