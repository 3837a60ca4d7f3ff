/*
 * msgq_pingpong.c - the floor for dagent's brother p2p: two processes talking
 * through one System V message queue with nothing on top.
 *
 *   round trip: A msgsnd(type 2) -> B msgrcv(type 2), msgsnd(type 1) -> A msgrcv(type 1)
 *   stream:     A sends --count messages of --size bytes, one msgsnd each (no
 *               batching: the kernel's per-message cost is the point), B receives
 *               them; blocking msgsnd is the flow control.
 *
 * The queue is IPC_PRIVATE, mode 0600, removed on exit. Its byte limit is raised
 * to --qbytes with msgctl(IPC_SET) when permitted (as dagent's agent does).
 *
 * Build: gcc -O2 -o msgq_pingpong msgq_pingpong.c
 * Usage: msgq_pingpong [--size B] [--count N] [--rtt-count N] [--qbytes B] [--json]
 * Prints one JSON line (--json) or a sentence.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 1000
#define T_TO_B 2
#define T_TO_A 1
#define T_DONE 3

static int qid = -1;

static void cleanup(void) {
    if (qid >= 0) msgctl(qid, IPC_RMID, NULL);
}

static void on_signal(int sig) {
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "msgq_pingpong: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void snd(struct msgbuf *m, size_t size, long type) {
    m->mtype = type;
    while (msgsnd(qid, m, size, 0) != 0) {
        if (errno != EINTR) die("msgsnd");
    }
}

static ssize_t rcv(struct msgbuf *m, size_t cap, long type) {
    for (;;) {
        ssize_t n = msgrcv(qid, m, cap, type, 0);
        if (n >= 0) return n;
        if (errno != EINTR) die("msgrcv");
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    size_t size = 64;
    long count = 200000, rtt_count = 20000, qbytes = 4 * 1024 * 1024;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rtt-count") && i + 1 < argc) rtt_count = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--qbytes") && i + 1 < argc) qbytes = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "usage: %s [--size B] [--count N] [--rtt-count N] [--qbytes B] [--json]\n", argv[0]); return 2; }
    }
    if (size < 1 || size > 8192) { fprintf(stderr, "msgq_pingpong: --size must be 1..8192 (msgmax)\n"); return 2; }

    qid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (qid < 0) die("msgget");
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct msqid_ds ds;
    if (msgctl(qid, IPC_STAT, &ds) == 0 && (long)ds.msg_qbytes < qbytes) {
        ds.msg_qbytes = qbytes;
        if (msgctl(qid, IPC_SET, &ds) != 0) fprintf(stderr, "msgq_pingpong: cannot raise qbytes (%s); using the default\n", strerror(errno));
    }

    struct msgbuf *m = malloc(sizeof(long) + 8192);
    memset(m->mtext, 'a', 8192);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        /* B: echo round trips, then count the stream. */
        qid = qid;  /* inherited; only the parent removes it */
        for (long i = 0; i < WARMUP + rtt_count; i++) {
            ssize_t n = rcv(m, 8192, T_TO_B);
            snd(m, (size_t)n, T_TO_A);
        }
        for (long i = 0; i < count; i++) rcv(m, 8192, T_TO_B);
        snd(m, 1, T_DONE);
        _exit(0);
    }

    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)rtt_count);
    for (long i = 0; i < WARMUP + rtt_count; i++) {
        uint64_t t0 = now_ns();
        snd(m, size, T_TO_B);
        rcv(m, 8192, T_TO_A);
        if (i >= WARMUP) samples[i - WARMUP] = now_ns() - t0;
    }
    uint64_t s0 = now_ns();
    for (long i = 0; i < count; i++) snd(m, size, T_TO_B);
    rcv(m, 8192, T_DONE);
    double elapsed = (double)(now_ns() - s0) / 1e9;
    waitpid(child, NULL, 0);

    qsort(samples, (size_t)rtt_count, sizeof(uint64_t), cmp_u64);
    double p50 = samples[rtt_count / 2] / 1000.0;
    double p99 = samples[(rtt_count * 99) / 100 < rtt_count ? (rtt_count * 99) / 100 : rtt_count - 1] / 1000.0;
    double rate = count / elapsed;
    if (json)
        printf("{\"system\":\"msgq-raw\",\"size\":%zu,\"count\":%ld,\"rtt_count\":%ld,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
               "\"stream_msgs_per_s\":%.0f,\"stream_mb_per_s\":%.2f}\n",
               size, count, rtt_count, p50, p99, rate, rate * size / 1e6);
    else
        printf("raw SysV msgq size=%zuB: rtt p50 %.1f us, p99 %.1f us; stream %.0f msgs/s, %.2f MB/s (one message per msgsnd)\n",
               size, p50, p99, rate, rate * size / 1e6);
    return 0;
}
