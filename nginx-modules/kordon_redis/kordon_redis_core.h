
/*
 * Kordon edge: the pure parts of the shared Redis client, free of nginx
 * and of any I/O, so that unit tests reach them: the reconnect backoff,
 * the stall rule, the commands a shared pipelined connection refuses, and
 * the checks on server names and password files.  The nginx side is in
 * ngx_http_kordon_redis_client.c.
 */


#ifndef _KORDON_REDIS_CORE_H_INCLUDED_
#define _KORDON_REDIS_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* limits: each has a fixed upper bound */

#define KORDON_REDIS_BACKOFF_MIN_MS   100    /* first retry after a failure */
#define KORDON_REDIS_BACKOFF_MAX_MS   5000   /* the delay doubles up to this */
#define KORDON_REDIS_STABLE_MS        1000   /* ready this long: a lost
                                                connection is retried at
                                                once, not after a backoff */
#define KORDON_REDIS_NAME_MAX         64     /* bytes of a server name */
#define KORDON_REDIS_PASSWORD_MAX     512    /* bytes of a password */


/* results: 0 or one of these negative codes, see kordon_redis_strerror() */

#define KORDON_REDIS_OK               0
#define KORDON_REDIS_EEMPTY          -1
#define KORDON_REDIS_ETOOLONG        -2
#define KORDON_REDIS_EBADCHAR        -3
#define KORDON_REDIS_ELAST           -3


/*
 * The delay before the next connection attempt, in milliseconds.
 * was_ready: the connection that just ended had completed its handshake,
 * ready_ms ago.  *backoff_ms is the delay to use after a failure; it
 * doubles on each use up to KORDON_REDIS_BACKOFF_MAX_MS and is left
 * untouched when the answer is 0.  The caller resets it to
 * KORDON_REDIS_BACKOFF_MIN_MS when a connection becomes ready.
 */
uintptr_t kordon_redis_retry_delay(int was_ready, uintptr_t ready_ms,
    uintptr_t *backoff_ms);

/*
 * 1 if nothing was read from the connection since a command was sent
 * (read_ms is not later than sent_ms, both from one wrapping millisecond
 * clock): its timeout then says the connection, not the command, is
 * stuck.  0 otherwise.
 */
int kordon_redis_stalled(uintptr_t read_ms, uintptr_t sent_ms);

/*
 * 1 if a command must not be sent on a connection shared by every
 * caller of a worker: it changes the connection's state (SELECT, AUTH,
 * HELLO, RESET, QUIT, MULTI and the rest of a transaction, CLIENT
 * REPLY), leaves request/reply mode (the SUBSCRIBE family, MONITOR) or
 * blocks every command behind it (BLPOP and the other blocking pops,
 * WAIT).  Names compare without case; argvlen NULL means NUL-terminated
 * arguments.  0 for anything else, argc 0 included.
 */
int kordon_redis_command_refused(size_t argc, const char **argv,
    const size_t *argvlen);

/* a server name: 1 to KORDON_REDIS_NAME_MAX bytes of [A-Za-z0-9_.-] */
int kordon_redis_name_check(const unsigned char *name, size_t len);

/*
 * The password in the contents of a password file: the whole text
 * without one final "\n" or "\r\n".  Sets *len and returns 0, or returns
 * KORDON_REDIS_EEMPTY, KORDON_REDIS_ETOOLONG (over
 * KORDON_REDIS_PASSWORD_MAX bytes) or KORDON_REDIS_EBADCHAR (a NUL, CR
 * or LF inside), leaving *len untouched.
 */
int kordon_redis_password(const unsigned char *data, size_t size,
    size_t *len);

/*
 * A command in the Redis protocol (RESP: "*argc\r\n" then "$len\r\n"
 * arg "\r\n" per argument), the bytes hiredis's redisFormatCommandArgv
 * makes, without its printf-style formatting and allocations: the
 * client formats into a buffer of its own and hands the bytes to
 * redisAsyncFormattedCommand.  kordon_redis_format_len() is the size;
 * kordon_redis_format() writes exactly that many bytes to buf (no NUL)
 * and returns the end.  argvlen NULL means NUL-terminated arguments.
 */
size_t kordon_redis_format_len(size_t argc, const char **argv,
    const size_t *argvlen);
unsigned char *kordon_redis_format(unsigned char *buf, size_t argc,
    const char **argv, const size_t *argvlen);

/* a lowercase phrase for a result code; never NULL */
const char *kordon_redis_strerror(int rc);


#endif /* _KORDON_REDIS_CORE_H_INCLUDED_ */
