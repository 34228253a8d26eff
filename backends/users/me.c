/*
 * me.c -- the signed-in person's own account: GET, PATCH (the display
 * name; addresses change through their own verified flow, later) and
 * DELETE, which anonymizes: contact, name, password and 2FA are erased
 * and the status becomes "deleted", every session ends and the edge is
 * told to refuse the user's tokens.  The row and its id stay, because
 * the ledger and the audit trail (which the law asks us to keep) name
 * it.
 */

#include <stdio.h>
#include <string.h>

#include "users.h"

static const char  users_me_sql[] =
    "select id, email, phone, name, array_to_json(roles)::text, status,"
    " ts_text(created_at), ts_text(verified_at)"
    " from users where id = $1 and status <> 'deleted'";
static const char  users_me_patch_sql[] =
    "update users set name = $2, updated_at = now()"
    " where id = $1 and status <> 'deleted'";
static const char  users_me_delete_sql[] =
    "update users set email = null, phone = null, name = null,"
    " password_hash = null, totp_secret = null, totp_enabled_at = null,"
    " totp_last_step = null, totp_pending = null, status = 'deleted',"
    " deleted_at = now(), updated_at = now()"
    " where id = $1 and status <> 'deleted'";
/* Second factor and social identities go with the person: a provider
 * login must not find the anonymized row, and may start afresh. */
static const char  users_me_forget_sql[] =
    "with r as (delete from recovery_codes where user_id = $1),"
    " t as (delete from mfa_tickets where user_id = $1)"
    " delete from oauth_identities where user_id = $1";


static json_t *
users_me_value(const PGresult *res, int c)
{
    return PQgetisnull(res, 0, c) ? json_null()
           : json_string(PQgetvalue(res, 0, c));
}


/* Answers the caller's account (200), or 404. */
static void
users_me_reply(kit_req_t *req, kit_pg_t *pg, const char *user)
{
    const char    *p[1];
    json_error_t   e;
    PGresult      *res;
    json_t        *o;

    p[0] = user;
    res = kit_pg_exec(pg, "users_me", users_me_sql, 1, p);
    kit_pg_release(pg);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        kit_reply_problem(req, 500, NULL, "could not read the account");
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        kit_reply_problem(req, 404, NULL, "no such user");
        return;
    }
    o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                  "id", users_me_value(res, 0),
                  "email", users_me_value(res, 1),
                  "phone", users_me_value(res, 2),
                  "name", users_me_value(res, 3),
                  "roles", json_loads(PQgetvalue(res, 0, 4), 0, &e),
                  "status", users_me_value(res, 5),
                  "created_at", users_me_value(res, 6),
                  "verified_at", users_me_value(res, 7));
    PQclear(res);
    if (o == NULL) {
        kit_reply_problem(req, 500, NULL, "could not encode the answer");
        return;
    }
    kit_reply_json(req, 200, o);
}


void
users_me_get(kit_req_t *req)
{
    const char  *user;
    kit_pg_t    *pg;

    user = users_caller(req);
    if (user == NULL) {
        return;
    }
    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        users_reply_unavailable(req, "database is not available");
        return;
    }
    users_me_reply(req, pg, user);
}


void
users_me_patch(kit_req_t *req)
{
    static const char *const  keys[] = { "name", NULL };
    const char               *user, *name, *p[2];
    PGresult                 *res;
    kit_pg_t                 *pg;
    json_t                   *body, *errors;
    int                       ok;

    body = users_json_object(req);
    if (body == NULL || (user = users_caller(req)) == NULL) {
        return;
    }
    errors = json_array();
    users_body_only(body, keys, errors);
    name = users_body_string(body, "name", USERS_NAME_MAX, 0, NULL, errors);
    if (json_object_size(body) == 0) {
        users_error(errors, "", "nothing to change: give name");
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        return;
    }
    json_decref(errors);
    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        users_reply_unavailable(req, "database is not available");
        return;
    }
    p[0] = user;
    p[1] = name;                /* NULL: json null clears the name */
    res = kit_pg_exec(pg, "users_me_patch", users_me_patch_sql, 2, p);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        kit_pg_release(pg);
        kit_reply_problem(req, 500, NULL, "could not change the account");
        return;
    }
    users_me_reply(req, pg, user);
}


typedef struct {
    kit_req_t   *req;
    const char  *user;
    int          found;
} users_me_del_t;


static int
users_me_delete_tx(kit_pg_t *pg, void *arg)
{
    users_me_del_t  *d = arg;
    const char      *p[1];
    PGresult        *res;

    p[0] = d->user;
    res = kit_pg_exec(pg, "users_me_delete", users_me_delete_sql, 1, p);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        return -1;
    }
    d->found = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!d->found) {
        return 0;
    }
    res = kit_pg_exec(pg, "users_me_forget", users_me_forget_sql, 1, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return users_sessions_end(pg, d->user, NULL, "account_deleted")
           || users_revoke_add(pg, "sub", d->user, users_now())
           || users_audit(pg, d->req, "user.delete", d->user, d->user, NULL)
           || kit_outbox_write(pg, "users.events", "user.deleted", d->user,
                               kit_req_identity(d->req)->request_id, d->user,
                               d->user, NULL);
}


void
users_me_delete(kit_req_t *req)
{
    users_me_del_t  d;
    int             rc;

    d.req = req;
    d.found = 0;
    d.user = users_caller(req);
    if (d.user == NULL) {
        return;
    }
    rc = kit_pg_tx("read committed", users_me_delete_tx, &d);
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(req, 500, NULL, "could not delete the account");
    } else if (!d.found) {
        kit_reply_problem(req, 404, NULL, "no such user");
    } else {
        users_revoke_kick();
        kit_reply_json(req, 204, NULL);
    }
}
