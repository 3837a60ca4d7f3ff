/*
 * msgq_hop.c - the floor of dagent's msgq design, with nothing of dagent in it.
 *
 * dagent never blocks its event loop: in each process a receiver thread blocks
 * in msgrcv and hands what it read to the event loop thread, which sleeps in
 * epoll_wait and is woken through an eventfd (what NIO's EventLoop.execute
 * does). The event loop then answers with msgsnd. This program does exactly
 * that in two processes and measures the round trip, so the cost of the
 * thread hop can be told apart from the cost of dagent's own code:
 *
 *   raw floor (msgq_pingpong.c) <= this design floor <= dagent brother p2p
 *
 * Build: gcc -O2 -o msgq_hop msgq_hop.c -lpthread
 * Usage: msgq_hop [--size B] [--rtt-count N] [--json]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 1000

static int qid = -1;
static int efd;
static long mytype, peertype;
static size_t size = 64;

struct msg { long type; char data[8192]; };

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cleanup(void) { if (qid >= 0) msgctl(qid, IPC_RMID, NULL); }

/* The receiver thread: block in msgrcv, wake the loop through the eventfd. */
static void *receiver(void *arg) {
    (void)arg;
    static struct msg m;
    for (;;) {
        if (msgrcv(qid, &m, sizeof m.data, mytype, 0) < 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        uint64_t one = 1;
        if (write(efd, &one, 8) != 8) return NULL;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The event loop thread: sleep in epoll_wait, answer each wake-up with msgsnd. */
static void run(long n, int initiator, int json) {
    efd = eventfd(0, EFD_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    pthread_t t;
    pthread_create(&t, NULL, receiver, NULL);
    static struct msg m;
    memset(m.data, 'a', sizeof m.data);
    uint64_t *samples = initiator ? malloc(sizeof(uint64_t) * (size_t)n) : NULL;
    uint64_t t0 = now_ns();
    if (initiator) { m.type = peertype; msgsnd(qid, &m, size, 0); }
    for (long i = 0; i < WARMUP + n; i++) {
        struct epoll_event out;
        while (epoll_wait(ep, &out, 1, 1000) < 1) {}
        uint64_t v;
        if (read(efd, &v, 8) != 8) continue;
        if (initiator) {
            uint64_t t1 = now_ns();
            if (i >= WARMUP) samples[i - WARMUP] = t1 - t0;
            if (i == WARMUP + n - 1) break;
            t0 = now_ns();
        }
        m.type = peertype;
        msgsnd(qid, &m, size, 0);
    }
    if (!initiator) return;
    qsort(samples, (size_t)n, sizeof(uint64_t), cmp_u64);
    double p50 = samples[n / 2] / 1000.0, p99 = samples[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0;
    if (json)
        printf("{\"system\":\"msgq-hop\",\"size\":%zu,\"rtt_count\":%ld,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f}\n", size, n, p50, p99);
    else
        printf("SysV msgq + receiver-thread -> epoll/eventfd hop, size=%zuB: rtt p50 %.1f us, p99 %.1f us\n", size, p50, p99);
}

int main(int argc, char **argv) {
    long n = 20000;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rtt-count") && i + 1 < argc) n = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) ++i;   /* accepted for symmetry; no stream here */
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "usage: %s [--size B] [--rtt-count N] [--json]\n", argv[0]); return 2; }
    }
    if (size < 1 || size > 8192) { fprintf(stderr, "msgq_hop: --size must be 1..8192\n"); return 2; }
    qid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (qid < 0) { perror("msgget"); return 1; }
    atexit(cleanup);
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0) {
        mytype = 2; peertype = 1;
        run(n, 0, json);
        _exit(0);
    }
    mytype = 1; peertype = 2;
    run(n, 1, json);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
