# scripts/lib.sh -- sourced by the stack, migrate, test and bench scripts:
# where things live and which ports they use.  Nothing here starts anything.
#
# KORDON_RUN         state directory (default <repo>/.run); the end-to-end
#                    tests use .run/e2e so a running dev stack is untouched
# KORDON_PORT_SHIFT  added to every port (default 0; the tests use 10000,
#                    the bench 12000).  Every port stays below 32768, out
#                    of Linux's ephemeral range (32768-60999): a port in it
#                    may be taken at any moment by an outgoing connection
# KORDON_BUILD       build directory (default <repo>/build)
# KORDON_FIXTURES    extra test-only services from t/fixtures to run

KORDON_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KORDON_RUN=${KORDON_RUN:-$KORDON_TOP/.run}
KORDON_BUILD=${KORDON_BUILD:-$KORDON_TOP/build}
KORDON_PORT_SHIFT=${KORDON_PORT_SHIFT:-0}
KORDON_FIXTURES=${KORDON_FIXTURES:-}
case "$KORDON_BUILD" in /*) ;; *) KORDON_BUILD=$KORDON_TOP/$KORDON_BUILD ;; esac
case "$KORDON_RUN" in /*) ;; *) KORDON_RUN=$KORDON_TOP/$KORDON_RUN ;; esac

# The backends, in start order; each has backends/<name>/ and a schema.
KORDON_SERVICES="users ledger notify worker"

port() { echo $(($1 + KORDON_PORT_SHIFT)); }
EDGE_HTTPS_PORT=$(port 8443)
EDGE_HTTP_PORT=$(port 8080)
EDGE_METRICS_PORT=$(port 9180)
PROMETHEUS_PORT=$(port 9190)
PG_PORT=$(port 15432)
REDIS_PORT=$(port 16379)
# The test OpenID Connect provider (t/fixtures/oidc) the e2e tests start;
# the stack's users names it as provider "local" (scripts/stack).
OIDC_PORT=$(port 18008)
# Backend ports: users 18001, ledger 18002, notify 18003, worker 18004;
# test fixtures from 18009.
service_port() {
    case $1 in
        users)  port 18001 ;;
        ledger) port 18002 ;;
        notify) port 18003 ;;
        worker) port 18004 ;;
        kitd)   port 18009 ;;
        *)      echo "unknown service \"$1\"" >&2; return 1 ;;
    esac
}

service_binary() {
    case " $KORDON_FIXTURES " in
        *" $1 "*) echo "$KORDON_BUILD/t/fixture-$1" ;;
        *)        echo "$KORDON_BUILD/bin/kordon-$1" ;;
    esac
}

# Migration directories: sql/<service>, and t/fixtures/<name>/sql.
service_sql_dir() {
    case " $KORDON_FIXTURES " in
        *" $1 "*) echo "$KORDON_TOP/t/fixtures/$1/sql" ;;
        *)        echo "$KORDON_SQL/$1" ;;
    esac
}

# The blueprint's topics, and one per test fixture (<name>.events).
KAFKA_TOPICS=edge.requests,users.events,ledger.events,notify.events
for f in $KORDON_FIXTURES; do KAFKA_TOPICS=$KAFKA_TOPICS,$f.events; done

KORDON_SQL=${KORDON_SQL:-$KORDON_TOP/sql}
PG_BIN=/usr/lib/postgresql/15/bin
PG_DB=kordon
SECRETS=$KORDON_RUN/secrets
# The admin users seeds on first start; its password is the secret
# admin-password (scripts/stack writes both into .run/env).
ADMIN_EMAIL=${KORDON_ADMIN_EMAIL:-admin@kordon.local}
LOGS=$KORDON_RUN/log

say()  { printf '%s\n' "$*"; }
die()  { printf 'kordon: %s\n' "$*" >&2; exit 1; }

# secret NAME -- print the secret in $SECRETS/NAME, making it once.
secret() {
    local f=$SECRETS/$1
    if [ ! -s "$f" ]; then
        mkdir -p "$SECRETS"
        chmod 700 "$SECRETS"
        (umask 077; openssl rand -hex 32 > "$f.tmp" && mv "$f.tmp" "$f")
    fi
    cat "$f"
}

# psql_admin ARGS -- psql as the PostgreSQL superuser over loopback.
psql_admin() {
    PGOPTIONS='-c client_min_messages=warning' PGPASSFILE=$SECRETS/pgpass \
        psql -X -q -w -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}
