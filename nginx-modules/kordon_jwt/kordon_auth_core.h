
/*
 * Kordon edge: the pure parts of API keys and revocations, free of nginx.
 *
 * The nginx module feeds them bytes from the network (the X-Api-Key
 * header) and from Redis (key records, stream ids, revocation entries);
 * the unit tests and the fuzzer call them directly.  Every function
 * takes a length, never reads past it, and writes nothing on failure
 * unless it says so.
 */


#ifndef _KORDON_AUTH_CORE_H_INCLUDED_
#define _KORDON_AUTH_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* "kdk_" + 16 hex digits + "_" + 43 base64url characters (256 bits) */
#define KORDON_APIKEY_PREFIX         "kdk_"
#define KORDON_APIKEY_ID_LEN         16
#define KORDON_APIKEY_SECRET_LEN     43
#define KORDON_APIKEY_LEN            (4 + 16 + 1 + 43)

#define KORDON_AUTH_STREAM_ID_MAX    41     /* "<u64>-<u64>" */
#define KORDON_AUTH_ROLES_MAX        256    /* bytes of roles joined */
#define KORDON_AUTH_ROLE_MAX         64     /* bytes of one role */


/*
 * Splits "kdk_<id>_<secret>": returns 0 and points id (16 lowercase hex
 * digits) and secret (43 base64url characters) into the input, or -1
 * when the value is anything else (any other length, case or byte).
 */
int kordon_apikey_parse(const char *value, size_t len, const char **id,
    const char **secret);

/*
 * A stream id "<ms>-<seq>" (or "<ms>", seq 0) into its two numbers.
 * Returns 0, or -1 when it is not one (no sign, no spaces, no overflow).
 */
int kordon_stream_id_parse(const char *s, size_t len, uint64_t *ms,
    uint64_t *seq);

/* -1, 0, 1 as a is before, equal to or after b; both parsed ids */
int kordon_stream_id_cmp(uint64_t ams, uint64_t aseq, uint64_t bms,
    uint64_t bseq);

/*
 * A non-negative decimal integer of at most 18 digits ("nbf" of a
 * revocation, unix seconds).  Returns 0 or -1.
 */
int kordon_auth_parse_uint(const char *s, size_t len, int64_t *out);

/*
 * 64 hex digits (either case) into 32 bytes.  Returns 0 or -1.
 */
int kordon_auth_hex32(const char *hex, size_t len, unsigned char out[32]);

/*
 * The "roles" of a key record, separated by spaces and/or commas, into
 * out joined by "," (as X-Kordon-Roles carries them).  A role is 1 to
 * 64 of [A-Za-z0-9_.:-].  Returns the length written (0 for no roles),
 * or -1 for a bad role or more than outlen bytes; out is then garbage.
 */
int kordon_auth_roles_join(const char *in, size_t len, char *out,
    size_t outlen);

/*
 * Scopes of a key record: printable ASCII without '"' or '\', single
 * spaces between names, none at the ends.  Returns 0 or -1.
 */
int kordon_auth_scopes_check(const char *s, size_t len);

/*
 * An owner (the key's user id): 1 to 128 of [A-Za-z0-9_.:-].  Returns
 * 0 or -1.
 */
int kordon_auth_owner_check(const char *s, size_t len);


#endif /* _KORDON_AUTH_CORE_H_INCLUDED_ */
