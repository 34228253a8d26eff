/*
 * kordon-broker -- a Kafka broker for development and tests only.
 *
 * It is librdkafka's mock cluster (rdkafka_mock.h) in a process of its
 * own: --brokers brokers listening on 127.0.0.1, on ports the kernel
 * picks, that speak the real Kafka protocol (produce, the idempotent
 * producer, fetch, consumer groups).  Everything lives in memory and is
 * gone when the process exits.  It exists for machines without a real
 * Kafka (a laptop, CI); docker-compose and k8s run a real broker.  Never
 * point anything whose data matters at it.
 *
 * The one idea: a start script cannot know the ports beforehand, so the
 * cluster's bootstrap list ("127.0.0.1:port[,...]") is written atomically
 * (temporary file, then rename) to --bootstrap-file once the listeners
 * are up, and the script waits for that file.  The file is removed at
 * start and at exit, so a stale one never points at a dead broker.
 *
 * Outages are simulated with signals: SIGUSR1 takes every broker down
 * (connections are closed and new ones refused, data kept), SIGUSR2 brings
 * them up again; SIGTERM or SIGINT destroys the cluster and exits 0.  The
 * signals are blocked in every thread and taken with sigwait() in main,
 * so no work happens in a signal handler.
 *
 * The topics of --topics are created at start.  Any other topic is
 * created by the mock on first use, when the client's metadata request
 * allows auto-creation (librdkafka producers do by default, and so does
 * kcat as a consumer), with the mock's default of 4 partitions rather
 * than --partitions.  The mock does not check topic names.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kit.h"


#define BROKER_NAME             "kordon-broker"
#define BROKER_BROKERS_MAX      16
#define BROKER_PARTITIONS_MAX   256
#define BROKER_TOPICS_MAX       64
#define BROKER_TOPIC_LEN_MAX    249      /* Kafka's own limit */
#define BROKER_TOPICS_LEN_MAX   (BROKER_TOPICS_MAX * (BROKER_TOPIC_LEN_MAX + 1))
#define BROKER_ERR_LEN_MAX      512
#define BROKER_DEFAULT_TOPICS   \
    "edge.requests,users.events,ledger.events,notify.events"

typedef struct {
    int          brokers;
    int          partitions;
    const char  *topics;
    const char  *bootstrap_file;
    const char  *pid_file;
} broker_opts_t;


static void
broker_usage(FILE *out)
{
    fprintf(out,
        "usage: " BROKER_NAME " --bootstrap-file PATH [options]\n"
        "\n"
        "A Kafka broker on librdkafka's mock cluster, for dev and tests.\n"
        "\n"
        "  --bootstrap-file PATH  where to write host:port[,...] once up\n"
        "  --brokers N            brokers, 1..%d (default 1)\n"
        "  --topics a,b,c         topics to create (default\n"
        "                         " BROKER_DEFAULT_TOPICS ")\n"
        "  --partitions N         partitions per topic, 1..%d (default 3)\n"
        "  --pid-file PATH        write the process id there\n"
        "\n"
        "Signals: USR1 every broker down, USR2 every broker up,\n"
        "TERM or INT stop.\n",
        BROKER_BROKERS_MAX, BROKER_PARTITIONS_MAX);
}


/* Parses a decimal in [min, max] into *out; -1 when it is not one. */
static int
broker_parse_int(const char *s, int min, int max, int *out)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (int) v;
    return 0;
}


/*
 * Reads the command line into o.  Returns 0, or -1 after printing what is
 * wrong and the usage to stderr.
 */
static int
broker_parse_opts(int argc, char **argv, broker_opts_t *o)
{
    static const struct option  longopts[] = {
        { "brokers",        required_argument, NULL, 'b' },
        { "topics",         required_argument, NULL, 't' },
        { "partitions",     required_argument, NULL, 'p' },
        { "bootstrap-file", required_argument, NULL, 'f' },
        { "pid-file",       required_argument, NULL, 'P' },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    *o = (broker_opts_t) { 1, 3, BROKER_DEFAULT_TOPICS, NULL, NULL };

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (broker_parse_int(optarg, 1, BROKER_BROKERS_MAX, &o->brokers)
                != 0)
            {
                fprintf(stderr, BROKER_NAME ": invalid value for option "
                        "\"--brokers\": \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 'p':
            if (broker_parse_int(optarg, 1, BROKER_PARTITIONS_MAX,
                                 &o->partitions) != 0)
            {
                fprintf(stderr, BROKER_NAME ": invalid value for option "
                        "\"--partitions\": \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 't': o->topics = optarg; break;
        case 'f': o->bootstrap_file = optarg; break;
        case 'P': o->pid_file = optarg; break;
        case 'h': broker_usage(stdout); exit(0);
        default: broker_usage(stderr); return -1;
        }
    }

    if (optind < argc || o->bootstrap_file == NULL) {
        fprintf(stderr, BROKER_NAME ": %s\n", optind < argc
                ? "unexpected argument" : "option \"--bootstrap-file\" is "
                "required");
        broker_usage(stderr);
        return -1;
    }
    return 0;
}


/*
 * Writes text and a newline to path atomically: a temporary file beside
 * it, then rename(), so a reader sees the old file or the whole new one.
 * Returns 0, or -1 after logging why, with no temporary file left.
 */
static int
broker_write_file(const char *path, const char *text)
{
    char     tmp[PATH_MAX];
    FILE    *f;
    int      fd, n;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) getpid());
    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        kit_log(KIT_LOG_ERROR, "file name \"%s\" is too long", path);
        return -1;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    f = fd < 0 ? NULL : fdopen(fd, "w");
    if (f == NULL) {
        kit_log(KIT_LOG_ERROR, "could not create file \"%s\": %s", tmp,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -1;
    }

    n = fprintf(f, "%s\n", text);
    if (n < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        kit_log(KIT_LOG_ERROR, "could not write file \"%s\": %s", tmp,
                strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        kit_log(KIT_LOG_ERROR, "could not write file \"%s\": %s", path,
                strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}


/* Removes path if it is there; a failure is logged, not fatal. */
static void
broker_remove_file(const char *path)
{
    if (path != NULL && unlink(path) != 0 && errno != ENOENT) {
        kit_log(KIT_LOG_WARN, "could not remove file \"%s\": %s", path,
                strerror(errno));
    }
}


/* librdkafka's warnings and errors (levels 0..4) as kit log lines. */
static void
broker_on_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    kit_log(level <= 3 ? KIT_LOG_ERROR : KIT_LOG_WARN, "rdkafka %s: %s",
            fac, buf);
}


/*
 * The client handle the mock cluster hangs on.  It never connects
 * anywhere itself.  Returns NULL after logging why.
 */
static rd_kafka_t *
broker_handle_new(void)
{
    char              err[BROKER_ERR_LEN_MAX];
    rd_kafka_conf_t  *conf;
    rd_kafka_t       *rk;

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, broker_on_log);
    /* Quiet the notice about the handle having no bootstrap.servers. */
    if (rd_kafka_conf_set(conf, "log_level", "4", err, sizeof(err))
        != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "client.id", BROKER_NAME, err, sizeof(err))
           != RD_KAFKA_CONF_OK)
    {
        kit_log(KIT_LOG_ERROR, "could not configure the mock handle: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        kit_log(KIT_LOG_ERROR, "could not create the mock handle: %s", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}


/* 1 when name is a legal Kafka topic name: [A-Za-z0-9._-]{1,249}. */
static int
broker_topic_valid(const char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > BROKER_TOPIC_LEN_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._-", name[i]) == NULL)
        {
            return 0;
        }
    }
    return 1;
}


/*
 * Creates each topic of the comma-separated list, replication 1.
 * Returns 0, or -1 after logging the first that failed.
 */
static int
broker_create_topics(rd_kafka_mock_cluster_t *mc, const char *list,
    int partitions)
{
    char                 copy[BROKER_TOPICS_LEN_MAX];
    char                *name, *save;
    rd_kafka_resp_err_t  err;
    int                  n;

    if (strlen(list) >= sizeof(copy)) {
        kit_log(KIT_LOG_ERROR, "topic list \"%.64s...\" is too long", list);
        return -1;
    }
    strcpy(copy, list);

    n = 0;
    for (name = strtok_r(copy, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save))
    {
        if (++n > BROKER_TOPICS_MAX || !broker_topic_valid(name, strlen(name)))
        {
            kit_log(KIT_LOG_ERROR, "invalid topic \"%s\": at most %d names "
                    "of [A-Za-z0-9._-]", name, BROKER_TOPICS_MAX);
            return -1;
        }
        err = rd_kafka_mock_topic_create(mc, name, partitions, 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kit_log(KIT_LOG_ERROR, "could not create topic \"%s\": %s", name,
                    rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}


/* Logs one "broker up at host:port" line per broker of the list. */
static void
broker_log_up(const char *bootstraps)
{
    const char  *p;
    size_t       len;
    int          n;

    for (p = bootstraps, n = 0; *p != '\0' && n < BROKER_BROKERS_MAX; n++) {
        len = strcspn(p, ",");
        kit_log(KIT_LOG_INFO, "broker up at %.*s", (int) len, p);
        p += len;
        p += *p == ',';
    }
}


/* Takes every broker down (up = 0) or up again (up = 1). */
static void
broker_set_all(rd_kafka_mock_cluster_t *mc, int brokers, int up)
{
    rd_kafka_resp_err_t  err;
    int32_t              id;

    /* Broker ids run from 1 to brokers (rd_kafka_mock_cluster_new). */
    for (id = 1; id <= brokers; id++) {
        err = up ? rd_kafka_mock_broker_set_up(mc, id)
                 : rd_kafka_mock_broker_set_down(mc, id);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kit_log(KIT_LOG_ERROR, "could not set broker %d %s: %s", (int) id,
                    up ? "up" : "down", rd_kafka_err2str(err));
        }
    }
    kit_log(KIT_LOG_INFO, "%s", up ? "brokers up" : "brokers down");
}


/* Takes the signals in main until told to stop. */
static void
broker_serve(rd_kafka_mock_cluster_t *mc, int brokers, const sigset_t *set)
{
    int  sig;

    for ( ;; ) {
        if (sigwait(set, &sig) != 0) {
            kit_log(KIT_LOG_ERROR, "could not wait for signals");
            return;
        }
        switch (sig) {
        case SIGUSR1:
            broker_set_all(mc, brokers, 0);
            break;
        case SIGUSR2:
            broker_set_all(mc, brokers, 1);
            break;
        default:
            kit_log(KIT_LOG_INFO, "stopping on signal \"%s\"",
                    strsignal(sig));
            return;
        }
    }
}


/*
 * Brings the cluster up, publishes its bootstrap list, serves signals,
 * tears down.  Returns the exit status.
 */
static int
broker_run(const broker_opts_t *o, const sigset_t *set)
{
    rd_kafka_mock_cluster_t  *mc;
    const char               *bootstraps;
    rd_kafka_t               *rk;
    int                       rc;

    rk = broker_handle_new();
    if (rk == NULL) {
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, o->brokers);
    if (mc == NULL) {
        kit_log(KIT_LOG_ERROR, "could not create a mock cluster of %d "
                "brokers", o->brokers);
        rd_kafka_destroy(rk);
        return 1;
    }

    rc = 1;
    bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (broker_create_topics(mc, o->topics, o->partitions) == 0
        && broker_write_file(o->bootstrap_file, bootstraps) == 0)
    {
        broker_log_up(bootstraps);
        broker_serve(mc, o->brokers, set);
        rc = 0;
    }

    broker_remove_file(o->bootstrap_file);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}


int
main(int argc, char **argv)
{
    broker_opts_t  o;
    sigset_t       set;
    char           pid[32];
    int            rc;

    if (broker_parse_opts(argc, argv, &o) != 0) {
        return 2;
    }
    kit_log_init("broker", KIT_LOG_INFO);

    /* Blocked before librdkafka starts threads, so they inherit it. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    broker_remove_file(o.bootstrap_file);
    if (o.pid_file != NULL) {
        snprintf(pid, sizeof(pid), "%ld", (long) getpid());
        if (broker_write_file(o.pid_file, pid) != 0) {
            return 1;
        }
    }

    rc = broker_run(&o, &set);

    broker_remove_file(o.pid_file);
    kit_log(KIT_LOG_INFO, "broker stopped");
    return rc;
}
