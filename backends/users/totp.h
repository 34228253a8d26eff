/*
 * totp.h -- second factor for users: TOTP (RFC 6238 with liboath) and
 * single-use recovery codes.
 *
 * Nothing here touches the database; the core stores what these
 * functions hand it and passes it back.  How the core calls it:
 *
 *   at start, once:      users_totp_init()            (users_totp_done()
 *                                                       at exit)
 *   POST .../totp/setup: users_totp_secret_new(b32)
 *                        users_totp_uri(b32, email, uri, sizeof(uri))
 *                        store b32 as the pending secret, answer b32 + uri
 *   POST .../enable:     users_totp_verify(b32, code, time(NULL), -1, &step)
 *                        == USERS_TOTP_OK, then
 *                        users_recovery_new(codes, hashes): store the
 *                        hashes and step (as totp_last_step), show the
 *                        codes once, never store them
 *   login/mfa, disable:  users_totp_verify(b32, code, time(NULL),
 *                        totp_last_step, &step); on USERS_TOTP_OK store
 *                        step as totp_last_step in the same transaction
 *                        (UPDATE ... WHERE totp_last_step < step, so two
 *                        racing requests with one code cannot both pass);
 *                        USERS_TOTP_REPLAY means the code was already used;
 *                        the caller bounds the tries (the brute-force
 *                        guard): each guess has 3 chances in 10^6
 *   recovery code:       i = users_recovery_match(input, hashes, n);
 *                        i >= 0: mark hashes[i] used in the same
 *                        transaction; -1: refuse
 *
 * Design: liboath does the HOTP/TOTP arithmetic; its search over the
 * window is given our own comparison (CRYPTO_memcmp), so a wrong code
 * takes the same time whatever its digits.  The matched time step is
 * returned, so that "a code is accepted once" is one integer per user.
 * Recovery codes carry 80 random bits, so a plain SHA-256 of the
 * normalized code is a safe hash at rest (no password stretching
 * needed: nothing guessable to stretch).
 */

#ifndef KORDON_USERS_TOTP_H
#define KORDON_USERS_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define USERS_TOTP_SECRET_BYTES     20    /* 160 bits, RFC 4226 */
#define USERS_TOTP_SECRET_B32_SIZE  33    /* 32 base32 chars + NUL */
#define USERS_TOTP_DIGITS           6
#define USERS_TOTP_STEP_S           30
#define USERS_TOTP_WINDOW           1     /* steps either side of now */
#define USERS_TOTP_ISSUER           "Kordon"
#define USERS_TOTP_ACCOUNT_MAX      254   /* an email address at most */
#define USERS_TOTP_URI_SIZE         1024

#define USERS_RECOVERY_CODES        10
#define USERS_RECOVERY_GROUPS       4     /* "xxxx-xxxx-xxxx-xxxx" */
#define USERS_RECOVERY_GROUP_LEN    4
#define USERS_RECOVERY_CODE_SIZE    20    /* 19 chars + NUL */
#define USERS_RECOVERY_HASH_SIZE    65    /* SHA-256 hex + NUL */
#define USERS_RECOVERY_INPUT_MAX    64    /* longer input is refused */

typedef char  users_recovery_code_t[USERS_RECOVERY_CODE_SIZE];
typedef char  users_recovery_hash_t[USERS_RECOVERY_HASH_SIZE];

#define USERS_TOTP_OK        0
#define USERS_TOTP_BAD      -1    /* wrong or malformed code */
#define USERS_TOTP_REPLAY   -2    /* right code, step already used */
#define USERS_TOTP_ERROR    -3    /* bad secret, library or RNG failure */

/* oath_init(); 0 or USERS_TOTP_ERROR.  Once, before any thread uses it. */
int users_totp_init(void);
void users_totp_done(void);

/*
 * A new 160-bit secret from the CSPRNG, base32 (RFC 4648, no padding:
 * 32 characters) into b32.  0 or USERS_TOTP_ERROR (b32 then "").
 */
int users_totp_secret_new(char b32[USERS_TOTP_SECRET_B32_SIZE]);

/*
 * The otpauth:// URI an authenticator app scans:
 *   otpauth://totp/Kordon:<account>?secret=<b32>&issuer=Kordon
 *     &algorithm=SHA1&digits=6&period=30
 * with account percent-encoded.  Returns the length, or -1 when account
 * is empty or longer than USERS_TOTP_ACCOUNT_MAX, b32 is not a secret of
 * ours, or out is too small (out then "").
 */
int users_totp_uri(const char *b32, const char *account, char *out,
    size_t outlen);

/*
 * Checks a 6-digit code against the secret at time now, in the steps
 * now-1, now, now+1 (30 s each).  last_step is the step of the last code
 * accepted for this secret, or -1 when none.  On USERS_TOTP_OK *step is
 * the matched step (the caller stores it as the new last_step); on
 * USERS_TOTP_REPLAY it is the matched step too; otherwise untouched.
 */
int users_totp_verify(const char *b32, const char *code, time_t now,
    int64_t last_step, int64_t *step);

/*
 * Ten new recovery codes, "xxxx-xxxx-xxxx-xxxx" in Crockford's base32
 * (lowercase, no i, l, o, u: nothing to misread), and the hash of each.
 * 0 or USERS_TOTP_ERROR (both arrays then zeroed).
 */
int users_recovery_new(users_recovery_code_t codes[USERS_RECOVERY_CODES],
    users_recovery_hash_t hashes[USERS_RECOVERY_CODES]);

/*
 * The hash of a code as a person types it: case, dashes and spaces do
 * not matter, and i/l read as 1, o as 0.  0, or -1 when the input is not
 * 16 code characters (hash then "").
 */
int users_recovery_hash(const char *input, users_recovery_hash_t hash);

/*
 * The index in hashes[0..n-1] of the hash of input, or -1.  Every entry
 * is compared, in constant time, whatever matches; NULL entries (used
 * codes the caller keeps in place) never match.
 */
int users_recovery_match(const char *input, const char *const *hashes,
    int n);

#endif /* KORDON_USERS_TOTP_H */
