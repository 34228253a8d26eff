
/*
 * Kordon edge: the pure parts of the shared Redis client.
 *
 * Nothing here touches a socket, a clock or nginx: the connection code
 * passes in what it knows (times, arguments, file contents) and acts on
 * the answer.  That keeps the few decisions that are easy to get subtly
 * wrong (a backoff that never resets or never grows, a clock that wraps,
 * a command that would wreck a shared connection) under unit tests.
 * The command formatter is here too: RESP is a length-prefixed format,
 * so a command is one pass of decimal lengths and memcpy().
 */


#include <string.h>

#include "kordon_redis_core.h"


typedef struct {
    const char  *name;
    size_t       len;
} kordon_redis_word_t;


#define kordon_redis_word(s)  { s, sizeof(s) - 1 }

/* first arguments refused on a shared connection, lowercase */
static const kordon_redis_word_t  kordon_redis_refused[] = {
    kordon_redis_word("auth"),
    kordon_redis_word("blmove"),
    kordon_redis_word("blmpop"),
    kordon_redis_word("blpop"),
    kordon_redis_word("brpop"),
    kordon_redis_word("brpoplpush"),
    kordon_redis_word("bzmpop"),
    kordon_redis_word("bzpopmax"),
    kordon_redis_word("bzpopmin"),
    kordon_redis_word("discard"),
    kordon_redis_word("exec"),
    kordon_redis_word("hello"),
    kordon_redis_word("monitor"),
    kordon_redis_word("multi"),
    kordon_redis_word("psubscribe"),
    kordon_redis_word("psync"),
    kordon_redis_word("punsubscribe"),
    kordon_redis_word("quit"),
    kordon_redis_word("reset"),
    kordon_redis_word("select"),
    kordon_redis_word("ssubscribe"),
    kordon_redis_word("subscribe"),
    kordon_redis_word("sunsubscribe"),
    kordon_redis_word("sync"),
    kordon_redis_word("unsubscribe"),
    kordon_redis_word("unwatch"),
    kordon_redis_word("wait"),
    kordon_redis_word("waitaof"),
    kordon_redis_word("watch")
};

#define KORDON_REDIS_REFUSED_N                                               \
    (sizeof(kordon_redis_refused) / sizeof(kordon_redis_word_t))


static int kordon_redis_word_is(const char *s, size_t len,
    const char *word, size_t wlen);


uintptr_t
kordon_redis_retry_delay(int was_ready, uintptr_t ready_ms,
    uintptr_t *backoff_ms)
{
    uintptr_t  delay;

    if (was_ready && ready_ms >= KORDON_REDIS_STABLE_MS) {
        return 0;
    }

    delay = *backoff_ms;

    if (delay < KORDON_REDIS_BACKOFF_MIN_MS) {
        delay = KORDON_REDIS_BACKOFF_MIN_MS;
    }

    if (delay > KORDON_REDIS_BACKOFF_MAX_MS) {
        delay = KORDON_REDIS_BACKOFF_MAX_MS;
    }

    *backoff_ms = (delay > KORDON_REDIS_BACKOFF_MAX_MS / 2)
                  ? KORDON_REDIS_BACKOFF_MAX_MS : delay * 2;

    return delay;
}


int
kordon_redis_stalled(uintptr_t read_ms, uintptr_t sent_ms)
{
    /* the difference is signed, so the clock may wrap in between */
    return (intptr_t) (read_ms - sent_ms) <= 0;
}


int
kordon_redis_command_refused(size_t argc, const char **argv,
    const size_t *argvlen)
{
    size_t  i, len, len1;

    if (argc == 0 || argv == NULL || argv[0] == NULL) {
        return 0;
    }

    len = argvlen ? argvlen[0] : strlen(argv[0]);

    for (i = 0; i < KORDON_REDIS_REFUSED_N; i++) {
        if (kordon_redis_word_is(argv[0], len, kordon_redis_refused[i].name,
                                 kordon_redis_refused[i].len))
        {
            return 1;
        }
    }

    /* CLIENT REPLY OFF|SKIP would leave callers waiting for nothing */

    if (argc > 1 && argv[1] != NULL
        && kordon_redis_word_is(argv[0], len, "client", 6))
    {
        len1 = argvlen ? argvlen[1] : strlen(argv[1]);
        return kordon_redis_word_is(argv[1], len1, "reply", 5);
    }

    return 0;
}


static int
kordon_redis_word_is(const char *s, size_t len, const char *word,
    size_t wlen)
{
    size_t         i;
    unsigned char  c;

    if (len != wlen) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) word[i]) {
            return 0;
        }
    }

    return 1;
}


int
kordon_redis_name_check(const unsigned char *name, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0) {
        return KORDON_REDIS_EEMPTY;
    }

    if (len > KORDON_REDIS_NAME_MAX) {
        return KORDON_REDIS_ETOOLONG;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')
        {
            continue;
        }

        return KORDON_REDIS_EBADCHAR;
    }

    return KORDON_REDIS_OK;
}


int
kordon_redis_password(const unsigned char *data, size_t size, size_t *len)
{
    size_t  i, n;

    n = size;

    if (n > 0 && data[n - 1] == '\n') {
        n--;

        if (n > 0 && data[n - 1] == '\r') {
            n--;
        }
    }

    if (n == 0) {
        return KORDON_REDIS_EEMPTY;
    }

    if (n > KORDON_REDIS_PASSWORD_MAX) {
        return KORDON_REDIS_ETOOLONG;
    }

    for (i = 0; i < n; i++) {
        if (data[i] == '\0' || data[i] == '\r' || data[i] == '\n') {
            return KORDON_REDIS_EBADCHAR;
        }
    }

    *len = n;

    return KORDON_REDIS_OK;
}


const char *
kordon_redis_strerror(int rc)
{
    static const char  *text[] = {
        "ok",
        "is empty",
        "is too long",
        "has a character that is not allowed"
    };

    if (rc > 0 || rc < KORDON_REDIS_ELAST) {
        return "unknown error";
    }

    return text[-rc];
}


/* the decimal digits of n */

static size_t
kordon_redis_digits(size_t n)
{
    size_t  d;

    for (d = 1; n >= 10; n /= 10) {
        d++;
    }

    return d;
}


/* n in decimal, then CR LF; returns the end */

static unsigned char *
kordon_redis_number(unsigned char *p, size_t n)
{
    size_t          d;
    unsigned char  *end;

    d = kordon_redis_digits(n);
    end = p + d;

    do {
        *--end = (unsigned char) ('0' + n % 10);
        n /= 10;
    } while (n);

    p += d;
    *p++ = '\r';
    *p++ = '\n';

    return p;
}


size_t
kordon_redis_format_len(size_t argc, const char **argv,
    const size_t *argvlen)
{
    size_t  i, len, total;

    /* "*" argc CR LF */
    total = 1 + kordon_redis_digits(argc) + 2;

    for (i = 0; i < argc; i++) {
        len = argvlen ? argvlen[i] : strlen(argv[i]);

        /* "$" len CR LF arg CR LF */
        total += 1 + kordon_redis_digits(len) + 2 + len + 2;
    }

    return total;
}


unsigned char *
kordon_redis_format(unsigned char *buf, size_t argc, const char **argv,
    const size_t *argvlen)
{
    size_t          i, len;
    unsigned char  *p;

    p = buf;
    *p++ = '*';
    p = kordon_redis_number(p, argc);

    for (i = 0; i < argc; i++) {
        len = argvlen ? argvlen[i] : strlen(argv[i]);

        *p++ = '$';
        p = kordon_redis_number(p, len);

        memcpy(p, argv[i], len);
        p += len;

        *p++ = '\r';
        *p++ = '\n';
    }

    return p;
}
