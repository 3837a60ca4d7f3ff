/*
 * zmq_bench.c - ZeroMQ over ipc:// between two processes, the peer dagent's
 * brother p2p is compared with.
 *
 *   round trip: PAIR socket, A sends, B echoes, A waits (p50/p99 in us)
 *   stream:     PUSH (A) -> PULL (B), --count messages of --size bytes as fast
 *               as ZeroMQ takes them (its high-water mark is the flow control);
 *               B reports the time it received the last one over the PAIR socket.
 *
 * Each process has its own context (one I/O thread, the default). The ipc://
 * endpoints live in a fresh temporary directory, removed on exit.
 *
 * Build: gcc -O2 -o zmq_bench zmq_bench.c -lzmq
 * Usage: zmq_bench [--size B] [--count N] [--rtt-count N] [--json]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define WARMUP 1000

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check(int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "zmq_bench: %s: %s\n", what, zmq_strerror(zmq_errno()));
        exit(1);
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    size_t size = 64;
    long count = 200000, rtt_count = 20000;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rtt-count") && i + 1 < argc) rtt_count = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "usage: %s [--size B] [--count N] [--rtt-count N] [--json]\n", argv[0]); return 2; }
    }
    char dir[] = "/tmp/zmqbench.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char pair_ep[128], push_ep[128];
    snprintf(pair_ep, sizeof pair_ep, "ipc://%s/pair", dir);
    snprintf(push_ep, sizeof push_ep, "ipc://%s/push", dir);
    char *buf = malloc(size > 64 ? size : 64);
    memset(buf, 'a', size > 64 ? size : 64);

    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0) {
        /* B: connect, echo round trips, count the stream, report the end time. */
        void *ctx = zmq_ctx_new();
        void *pair = zmq_socket(ctx, ZMQ_PAIR);
        void *pull = zmq_socket(ctx, ZMQ_PULL);
        check(zmq_connect(pair, pair_ep), "connect pair");
        check(zmq_connect(pull, push_ep), "connect pull");
        for (long i = 0; i < WARMUP + rtt_count; i++) {
            int n = zmq_recv(pair, buf, size, 0);
            check(n, "recv ping");
            check(zmq_send(pair, buf, (size_t)n, 0), "send pong");
        }
        for (long i = 0; i < count; i++) check(zmq_recv(pull, buf, size, 0), "recv stream");
        uint64_t end = now_ns();
        check(zmq_send(pair, &end, sizeof end, 0), "send done");
        zmq_close(pull);
        zmq_close(pair);
        zmq_ctx_term(ctx);
        _exit(0);
    }

    void *ctx = zmq_ctx_new();
    void *pair = zmq_socket(ctx, ZMQ_PAIR);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    check(zmq_bind(pair, pair_ep), "bind pair");
    check(zmq_bind(push, push_ep), "bind push");
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)rtt_count);
    for (long i = 0; i < WARMUP + rtt_count; i++) {
        uint64_t t0 = now_ns();
        check(zmq_send(pair, buf, size, 0), "send ping");
        check(zmq_recv(pair, buf, size, 0), "recv pong");
        if (i >= WARMUP) samples[i - WARMUP] = now_ns() - t0;
    }
    uint64_t start = now_ns(), end = 0;
    for (long i = 0; i < count; i++) check(zmq_send(push, buf, size, 0), "send stream");
    check(zmq_recv(pair, &end, sizeof end, 0), "recv done");
    double elapsed = (double)(end - start) / 1e9;
    waitpid(child, NULL, 0);
    zmq_close(push);
    zmq_close(pair);
    zmq_ctx_term(ctx);
    char sock[160];
    snprintf(sock, sizeof sock, "%s/pair", dir); unlink(sock);
    snprintf(sock, sizeof sock, "%s/push", dir); unlink(sock);
    rmdir(dir);

    qsort(samples, (size_t)rtt_count, sizeof(uint64_t), cmp_u64);
    double p50 = samples[rtt_count / 2] / 1000.0;
    long i99 = (rtt_count * 99) / 100;
    double p99 = samples[i99 < rtt_count ? i99 : rtt_count - 1] / 1000.0;
    double rate = count / elapsed;
    if (json)
        printf("{\"system\":\"zmq-ipc\",\"size\":%zu,\"count\":%ld,\"rtt_count\":%ld,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
               "\"stream_msgs_per_s\":%.0f,\"stream_mb_per_s\":%.2f}\n",
               size, count, rtt_count, p50, p99, rate, rate * size / 1e6);
    else
        printf("ZeroMQ ipc:// size=%zuB: PAIR rtt p50 %.1f us, p99 %.1f us; PUSH/PULL stream %.0f msgs/s, %.2f MB/s\n",
               size, p50, p99, rate, rate * size / 1e6);
    return 0;
}
