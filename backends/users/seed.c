/*
 * seed.c -- the first admin.  On every start, when KORDON_ADMIN_EMAIL is
 * set, an active account with roles user and admin is made for it unless
 * one exists (so it is idempotent, and never resets a password someone
 * changed).  The password comes from KORDON_ADMIN_PASSWORD_FILE, which
 * scripts/stack generates into .run/secrets/ and names in .run/env.
 */

#include <stdio.h>
#include <string.h>

#include "users.h"

#define USERS_SEED_PASSWORD_MAX  256

static const char  users_seed_sql[] =
    "with u as (insert into users (email, password_hash, status, roles,"
    "  verified_at) values ($1, $2, 'active', '{user,admin}', now())"
    "  on conflict do nothing returning id)"
    " insert into audit (action, subject) select 'user.seed_admin', id"
    " from u returning subject";


static int
users_seed_tx(kit_pg_t *pg, void *arg)
{
    const char *const  *p = arg;
    PGresult           *res;

    res = kit_pg_exec(pg, "users_seed", users_seed_sql, 2, p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        kit_log(KIT_LOG_INFO, "seeded admin \"%s\"", p[0]);
    }
    PQclear(res);
    return 0;
}


int
users_seed_admin(void)
{
    const char  *p[2];
    char         email[USERS_EMAIL_MAX + 1], pw[USERS_SEED_PASSWORD_MAX];
    char         hash[USERS_HASH_MAX];
    FILE        *f;
    size_t       n;
    int          rc;

    if (users_cf.admin_email[0] == '\0') {
        return 0;
    }
    if (users_email_normalize(users_cf.admin_email,
                              strlen(users_cf.admin_email), email,
                              sizeof(email)) != 0)
    {
        kit_log(KIT_LOG_ERROR, "environment variable \"KORDON_ADMIN_EMAIL\" "
                "is malformed: expected an email address");
        return -1;
    }
    f = fopen(users_cf.admin_password_file, "r");
    n = f != NULL ? fread(pw, 1, sizeof(pw) - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    pw[n] = '\0';
    n = strcspn(pw, "\r\n");
    pw[n] = '\0';
    if (n < USERS_PASSWORD_MIN || users_password_hash(pw, n, hash,
                                                      sizeof(hash)) != 0)
    {
        kit_log(KIT_LOG_ERROR, "could not read the admin password from "
                "\"%s\"", users_cf.admin_password_file);
        explicit_bzero(pw, sizeof(pw));
        return -1;
    }
    explicit_bzero(pw, sizeof(pw));
    p[0] = email;
    p[1] = hash;
    rc = kit_pg_tx("read committed", users_seed_tx, p);
    if (rc != 0) {
        kit_log(KIT_LOG_ERROR, "could not seed admin \"%s\"", email);
        return -1;
    }
    return 0;
}
