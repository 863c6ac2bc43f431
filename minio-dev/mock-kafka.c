/* pixplane-mock-kafka: a standalone Kafka "broker" for local dev and tests, built on
 * librdkafka's in-process mock cluster and served to other processes over TCP. */

/*
 * Usage:
 *   pixplane-mock-kafka --brokers N --topics name:partitions[,name:partitions]
 *                       --bootstrap-file PATH [--control-file PATH]
 *
 * Starts N mock brokers (ids 1..N) on 127.0.0.1 (random ports), creates the topics,
 * writes "host:port,host:port,..." to PATH atomically (tmp + rename), prints one JSON
 * line on stdout and runs until SIGTERM/SIGINT (then frees everything, removes the
 * bootstrap/state files and exits 0).
 *
 * Control (failure injection): with --control-file PATH the program polls PATH every
 * 100 ms. Whatever it finds there is read and the file is truncated to zero, then each
 * line is run as one command:
 *     down ID     broker ID stops serving (rd_kafka_mock_broker_set_down)
 *     up ID       broker ID serves again  (rd_kafka_mock_broker_set_up)
 *     alldown     every broker down
 *     allup       every broker up
 *     rtt ID MS   add MS milliseconds of round-trip time to broker ID (0 = none)
 * e.g.  echo alldown > "$KAFKA_CONTROL";  sleep 5;  echo allup > "$KAFKA_CONTROL"
 * After each batch the program rewrites PATH.state atomically: a line "seq N" (number
 * of commands applied so far) then one line "broker ID up|down" per broker, so a test
 * can wait until its command has taken effect. Each command is also logged as a JSON
 * line on stdout. Unknown commands are logged and ignored.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS 16
#define MAX_TOPICS 64

struct topic_spec {
    char name[250];
    int partitions;
};

static volatile sig_atomic_t g_stop;
static int g_broker_up[MAX_BROKERS + 1];
static long g_seq;

static void on_signal(int sig)
{
    g_stop = sig;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: pixplane-mock-kafka --brokers N --topics name:partitions[,name:partitions]"
            " --bootstrap-file PATH [--control-file PATH]\n");
}

static int parse_topics(const char *arg, struct topic_spec *out, int max)
{
    char *copy = strdup(arg);
    if (!copy)
        return -1;
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (n >= max || !colon || colon == tok || (size_t)(colon - tok) >= sizeof(out[n].name)) {
            free(copy);
            return -1;
        }
        char *end = NULL;
        long parts = strtol(colon + 1, &end, 10);
        if (!end || *end != '\0' || parts < 1 || parts > 10000) {
            free(copy);
            return -1;
        }
        memcpy(out[n].name, tok, (size_t)(colon - tok));
        out[n].name[colon - tok] = '\0';
        out[n].partitions = (int)parts;
        n++;
    }
    free(copy);
    return n;
}

/* Writes data to path via path.tmp.PID + rename, so readers never see a partial file. */
static int write_atomic(const char *path, const char *data)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fputs(data, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void write_state(const char *control_path, int brokers)
{
    char path[4096], buf[64 + MAX_BROKERS * 32];
    if (snprintf(path, sizeof(path), "%s.state", control_path) >= (int)sizeof(path))
        return;
    int off = snprintf(buf, sizeof(buf), "seq %ld\n", g_seq);
    for (int id = 1; id <= brokers; id++)
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "broker %d %s\n", id,
                        g_broker_up[id] ? "up" : "down");
    if (write_atomic(path, buf) != 0)
        fprintf(stderr, "mock-kafka: cannot write %s: %s\n", path, strerror(errno));
}

static void set_broker(rd_kafka_mock_cluster_t *mc, int id, int up)
{
    rd_kafka_resp_err_t err =
        up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
    if (err)
        fprintf(stderr, "mock-kafka: broker %d %s: %s\n", id, up ? "up" : "down",
                rd_kafka_err2str(err));
    else
        g_broker_up[id] = up;
}

static void run_command(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
    char cmd[32] = "";
    int id = 0, ms = 0;
    int n = sscanf(line, "%31s %d %d", cmd, &id, &ms);
    if (n < 1)
        return; /* blank line */
    int ok = 1;
    if (!strcmp(cmd, "alldown") || !strcmp(cmd, "allup")) {
        for (int b = 1; b <= brokers; b++)
            set_broker(mc, b, cmd[3] == 'u');
    } else if ((!strcmp(cmd, "down") || !strcmp(cmd, "up")) && n >= 2 && id >= 1 && id <= brokers) {
        set_broker(mc, id, cmd[0] == 'u');
    } else if (!strcmp(cmd, "rtt") && n == 3 && id >= 1 && id <= brokers && ms >= 0) {
        rd_kafka_mock_broker_set_rtt(mc, id, ms);
    } else {
        ok = 0;
    }
    if (ok)
        g_seq++;
    line[strcspn(line, "\r\n")] = '\0';
    printf("{\"event\":\"mock_kafka_control\",\"command\":\"%.64s\",\"ok\":%s,\"seq\":%ld}\n",
           ok ? line : "(invalid)", ok ? "true" : "false", g_seq);
    fflush(stdout);
}

static void poll_control(const char *path, rd_kafka_mock_cluster_t *mc, int brokers)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n > 0 && ftruncate(fd, 0) != 0)
        fprintf(stderr, "mock-kafka: cannot truncate %s: %s\n", path, strerror(errno));
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        run_command(mc, brokers, line);
    write_state(path, brokers);
}

int main(int argc, char **argv)
{
    int brokers = 1;
    const char *topics_arg = NULL, *bootstrap_file = NULL, *control_file = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--brokers"))
            brokers = atoi(argv[++i]);
        else if (!strcmp(a, "--topics"))
            topics_arg = argv[++i];
        else if (!strcmp(a, "--bootstrap-file"))
            bootstrap_file = argv[++i];
        else if (!strcmp(a, "--control-file"))
            control_file = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (brokers < 1 || brokers > MAX_BROKERS || !bootstrap_file) {
        usage();
        return 2;
    }

    struct topic_spec topics[MAX_TOPICS];
    int ntopics = 0;
    if (topics_arg && (ntopics = parse_topics(topics_arg, topics, MAX_TOPICS)) < 0) {
        fprintf(stderr, "mock-kafka: bad --topics '%s' (want name:partitions[,...])\n", topics_arg);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The mock cluster lives inside a client handle; this producer itself never connects. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "mock-kafka: rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "mock-kafka: cannot create mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int b = 1; b <= brokers; b++)
        g_broker_up[b] = 1;

    int rc = 0;
    int rf = brokers < 3 ? brokers : 3;
    for (int t = 0; t < ntopics; t++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, topics[t].name, topics[t].partitions, rf);
        if (err) {
            fprintf(stderr, "mock-kafka: create topic %s: %s\n", topics[t].name,
                    rd_kafka_err2str(err));
            rc = 1;
            goto out;
        }
    }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (control_file) {
        int fd = open(control_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            fprintf(stderr, "mock-kafka: cannot create control file %s: %s\n", control_file,
                    strerror(errno));
            rc = 1;
            goto out;
        }
        close(fd);
        write_state(control_file, brokers);
    }
    if (write_atomic(bootstrap_file, bootstraps) != 0) {
        fprintf(stderr, "mock-kafka: cannot write %s: %s\n", bootstrap_file, strerror(errno));
        rc = 1;
        goto out;
    }

    printf("{\"event\":\"mock_kafka_ready\",\"pid\":%ld,\"brokers\":%d,\"bootstrap\":\"%s\","
           "\"topics\":\"%s\","
           "\"control_file\":\"%s\"}\n",
           (long)getpid(), brokers, bootstraps, topics_arg ? topics_arg : "",
           control_file ? control_file : "");
    fflush(stdout);

    while (!g_stop) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (control_file && !g_stop)
            poll_control(control_file, mc, brokers);
    }

    printf("{\"event\":\"mock_kafka_stopping\",\"signal\":%d}\n", (int)g_stop);
    fflush(stdout);
    unlink(bootstrap_file);
    if (control_file) {
        char state[4096];
        if (snprintf(state, sizeof(state), "%s.state", control_file) < (int)sizeof(state))
            unlink(state);
    }
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
