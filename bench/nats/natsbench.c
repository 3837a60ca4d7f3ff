/*
 * natsbench.c - minimal NATS client benchmark (plain sockets, NATS text protocol).
 *
 * Opens two connections from one process:
 *   A -> --a URL (e.g. leaf node 1), B -> --b URL (e.g. leaf node 2)
 * and measures
 *   1. round trip:  A PUB bench.ping -> B echoes on bench.pong -> A   (p50/p99 us)
 *   2. one-way stream A -> B on bench.stream with credit-based flow control
 *      (B publishes a credit on bench.credit every 1000 messages received,
 *       A keeps at most --window messages in flight).
 *
 * Single-threaded, non-blocking sockets + poll(); buffered writes; buffered
 * parser that handles MSG payloads spanning multiple reads.
 *
 * Build: gcc -O2 -o natsbench natsbench.c
 * With TLS (--tls-ca/--tls-cert/--tls-key; OpenSSL):
 *        gcc -O2 -DNATSBENCH_TLS -o natsbench natsbench.c -lssl -lcrypto
 * The server's INFO arrives in plaintext, then the client upgrades the connection
 * to TLS (as NATS clients do) and presents its certificate (mutual TLS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifdef NATSBENCH_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define SID_PING 1   /* on B */
#define SID_STREAM 2 /* on B */
#define SID_PONG 1   /* on A */
#define SID_CREDIT 2 /* on A */

#define CREDIT_EVERY 1000
#define WARMUP 1000
#define RBUF_INIT (1u << 20)
#define WFLUSH_HIGH (256u * 1024u) /* stop producing when this much is pending */

typedef struct conn {
    const char *name;
    int fd;
    char *rbuf;
    size_t rcap, rstart, rend;
    char *wbuf;
    size_t wcap, woff, wlen;
    int info_seen;
    uint64_t pongs;
#ifdef NATSBENCH_TLS
    SSL *ssl;
#endif
} conn_t;

#ifdef NATSBENCH_TLS
static SSL_CTX *g_tls;
static const char *g_tls_ca, *g_tls_cert, *g_tls_key;
#endif

/* ---- global benchmark state ---- */
static conn_t A, B;
static size_t g_size = 64;
static uint64_t g_count = 200000;
static uint64_t g_rtt_count = 0; /* 0 = same as count */
static uint64_t g_window = 20000;
static double g_timeout_s = 10.0; /* no-progress timeout */

static char *g_payload;        /* template payload of g_size bytes */
static int probe_pong_seen, probe_credit_seen;
static uint64_t rtt_expect_seq;
static int rtt_got;
static uint64_t stream_recv, stream_expect_seq, stream_gaps, stream_target;
static uint64_t credited;
static double stream_t_end;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "natsbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------- write buffering ---------------- */

static void wreserve(conn_t *c, size_t n) {
    if (c->wlen + n <= c->wcap) return;
    if (c->woff > 0) { /* compact */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wlen + n <= c->wcap) return;
    }
    size_t ncap = c->wcap ? c->wcap : 65536;
    while (ncap < c->wlen + n) ncap *= 2;
    c->wbuf = realloc(c->wbuf, ncap);
    if (!c->wbuf) die("out of memory");
    c->wcap = ncap;
}

static inline void wappend(conn_t *c, const void *p, size_t n) {
    wreserve(c, n);
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

static inline size_t wpending(const conn_t *c) { return c->wlen - c->woff; }

/* Write as much as possible without blocking. */
static void wflush(conn_t *c) {
    while (c->woff < c->wlen) {
#ifdef NATSBENCH_TLS
        if (c->ssl) {
            int n = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
            if (n > 0) {
                c->woff += (size_t)n;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return;
            die("%s: TLS write failed (error %d)", c->name, e);
        }
#endif
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        die("%s: write failed: %s", c->name, n < 0 ? strerror(errno) : "closed");
    }
    c->woff = c->wlen = 0;
}

/* PUB <subject> <len>\r\n<payload>\r\n */
static void pub(conn_t *c, const char *subj, const void *data, size_t len) {
    char hdr[128];
    int h = snprintf(hdr, sizeof hdr, "PUB %s %zu\r\n", subj, len);
    wreserve(c, (size_t)h + len + 2);
    memcpy(c->wbuf + c->wlen, hdr, (size_t)h);
    c->wlen += (size_t)h;
    if (len) memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    c->wbuf[c->wlen++] = '\r';
    c->wbuf[c->wlen++] = '\n';
}

/* ---------------- message handling ---------------- */

static inline void put_seq(char *p, uint64_t seq) {
    if (g_size >= 9) memcpy(p + 1, &seq, 8);
}
static inline int get_seq(const char *p, size_t len, uint64_t *seq) {
    if (len >= 9) {
        memcpy(seq, p + 1, 8);
        return 1;
    }
    return 0;
}

static void on_msg(conn_t *c, uint64_t sid, const char *data, size_t len) {
    int is_probe = (len > 0 && data[0] == 'P');
    if (c == &B) {
        if (sid == SID_PING) {
            /* echo every received payload to bench.pong */
            pub(&B, "bench.pong", data, len);
        } else if (sid == SID_STREAM) {
            if (is_probe) {
                pub(&B, "bench.credit", "P", 1);
                return;
            }
            uint64_t seq;
            if (get_seq(data, len, &seq)) {
                if (seq != stream_expect_seq) {
                    if (seq > stream_expect_seq) stream_gaps += seq - stream_expect_seq;
                    else stream_gaps++; /* duplicate / reordered */
                }
                stream_expect_seq = seq + 1;
            }
            stream_recv++;
            if (stream_recv % CREDIT_EVERY == 0) {
                char buf[32];
                int n = snprintf(buf, sizeof buf, "%" PRIu64, stream_recv);
                pub(&B, "bench.credit", buf, (size_t)n);
            }
            if (stream_recv == stream_target) stream_t_end = now_s();
        }
    } else { /* A */
        if (sid == SID_PONG) {
            if (is_probe) {
                probe_pong_seen = 1;
                return;
            }
            uint64_t seq;
            if (!get_seq(data, len, &seq) || seq == rtt_expect_seq) rtt_got = 1;
        } else if (sid == SID_CREDIT) {
            if (is_probe) {
                probe_credit_seen = 1;
                return;
            }
            uint64_t v = 0;
            for (size_t i = 0; i < len && data[i] >= '0' && data[i] <= '9'; i++) v = v * 10 + (uint64_t)(data[i] - '0');
            if (v > credited) credited = v;
        }
    }
}

/* ---------------- reading / parsing ---------------- */

static void rensure(conn_t *c, size_t need_total) {
    /* make sure [rstart, rstart+need_total) fits in the buffer */
    if (c->rstart + need_total <= c->rcap) return;
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
        if (need_total <= c->rcap) return;
    }
    size_t ncap = c->rcap;
    while (ncap < need_total) ncap *= 2;
    c->rbuf = realloc(c->rbuf, ncap);
    if (!c->rbuf) die("out of memory");
    c->rcap = ncap;
}

static int tokenize(char *s, size_t n, char **tok, size_t *tlen, int max) {
    int k = 0;
    size_t i = 0;
    while (i < n && k < max) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i >= n) break;
        tok[k] = s + i;
        size_t st = i;
        while (i < n && s[i] != ' ' && s[i] != '\t') i++;
        tlen[k] = i - st;
        k++;
    }
    return k;
}

static uint64_t parse_u64(const char *s, size_t n, int *ok) {
    uint64_t v = 0;
    *ok = n > 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *ok = 0;
            return 0;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

static void parse(conn_t *c) {
    for (;;) {
        char *p = c->rbuf + c->rstart;
        size_t avail = c->rend - c->rstart;
        if (avail == 0) break;
        char *nl = memchr(p, '\n', avail);
        if (!nl) {
            if (avail > 64 * 1024) die("%s: protocol line too long", c->name);
            rensure(c, avail + 4096);
            break;
        }
        size_t linelen = (size_t)(nl - p) + 1;
        size_t l = linelen - 1;
        if (l > 0 && p[l - 1] == '\r') l--;

        if (l >= 4 && memcmp(p, "MSG ", 4) == 0) {
            char *tok[5];
            size_t tl[5];
            int nt = tokenize(p + 4, l - 4, tok, tl, 5);
            if (nt != 3 && nt != 4) die("%s: bad MSG line: %.*s", c->name, (int)l, p);
            int ok1, ok2;
            uint64_t sid = parse_u64(tok[1], tl[1], &ok1);
            uint64_t sz = parse_u64(tok[nt - 1], tl[nt - 1], &ok2);
            if (!ok1 || !ok2) die("%s: bad MSG line: %.*s", c->name, (int)l, p);
            size_t total = linelen + (size_t)sz + 2;
            if (avail < total) {
                rensure(c, total);
                break; /* wait for the rest of the payload */
            }
            on_msg(c, sid, p + linelen, (size_t)sz);
            c->rstart += total;
            continue;
        }
        if (l >= 4 && memcmp(p, "PING", 4) == 0) {
            wappend(c, "PONG\r\n", 6);
        } else if (l >= 4 && memcmp(p, "PONG", 4) == 0) {
            c->pongs++;
        } else if (l >= 3 && memcmp(p, "+OK", 3) == 0) {
            /* ignore */
        } else if (l >= 4 && memcmp(p, "-ERR", 4) == 0) {
            die("%s: server error: %.*s", c->name, (int)l, p);
        } else if (l >= 4 && memcmp(p, "INFO", 4) == 0) {
            c->info_seen = 1;
        } else if (l == 0) {
            /* stray empty line */
        } else {
            die("%s: unexpected protocol line: %.*s", c->name, (int)(l > 200 ? 200 : l), p);
        }
        c->rstart += linelen;
    }
    if (c->rstart == c->rend) c->rstart = c->rend = 0;
}

static void conn_read(conn_t *c) {
#ifdef NATSBENCH_TLS
    if (c->ssl) {
        /* Drain what TLS has decrypted: poll() does not see bytes held inside OpenSSL. */
        for (;;) {
            if (c->rend == c->rcap) rensure(c, (c->rend - c->rstart) + 65536);
            int n = SSL_read(c->ssl, c->rbuf + c->rend, (int)(c->rcap - c->rend));
            if (n > 0) {
                c->rend += (size_t)n;
                parse(c);
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            if (e == SSL_ERROR_ZERO_RETURN) die("%s: connection closed by server", c->name);
            die("%s: TLS read failed (error %d)", c->name, e);
        }
    }
#endif
    for (int iter = 0; iter < 4; iter++) {
        if (c->rend == c->rcap) rensure(c, (c->rend - c->rstart) + 65536);
        ssize_t n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, 0);
        if (n > 0) {
            c->rend += (size_t)n;
            parse(c);
            if ((size_t)n < 65536) return; /* likely drained */
            continue;
        }
        if (n == 0) die("%s: connection closed by server", c->name);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        die("%s: read failed: %s", c->name, strerror(errno));
    }
}

/* One round of I/O on both connections. timeout_ms as for poll(). */
static void pump(int timeout_ms) {
    struct pollfd pf[2];
    conn_t *cs[2] = {&A, &B};
    for (int i = 0; i < 2; i++) {
        pf[i].fd = cs[i]->fd;
        pf[i].events = POLLIN | (wpending(cs[i]) ? POLLOUT : 0);
        pf[i].revents = 0;
    }
    int r = poll(pf, 2, timeout_ms);
    if (r < 0) {
        if (errno == EINTR) return;
        die("poll: %s", strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) conn_read(cs[i]);
    }
    /* Responses produced while parsing (echo, credits, PONG) go out now. */
    for (int i = 0; i < 2; i++)
        if (wpending(cs[i])) wflush(cs[i]);
}

/* ---------------- connection setup ---------------- */

static void parse_url(const char *url, char *host, size_t hl, char *port, size_t pl) {
    const char *s = url;
    const char *p = strstr(s, "://");
    if (p) s = p + 3;
    const char *at = strchr(s, '@'); /* ignore userinfo */
    if (at) s = at + 1;
    const char *colon = strrchr(s, ':');
    const char *slash = strchr(s, '/');
    size_t hlen;
    if (colon && (!slash || colon < slash)) {
        hlen = (size_t)(colon - s);
        size_t plen = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
        if (plen >= pl) plen = pl - 1;
        memcpy(port, colon + 1, plen);
        port[plen] = 0;
    } else {
        hlen = slash ? (size_t)(slash - s) : strlen(s);
        snprintf(port, pl, "4222");
    }
    if (hlen >= hl) hlen = hl - 1;
    memcpy(host, s, hlen);
    host[hlen] = 0;
    if (!host[0]) snprintf(host, hl, "127.0.0.1");
}

static void conn_open(conn_t *c, const char *name, const char *url) {
    char host[256], port[32];
    parse_url(url, host, sizeof host, port, sizeof port);
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) die("%s: resolve %s:%s: %s", name, host, port, gai_strerror(rc));
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) die("%s: cannot connect to %s:%s: %s", name, host, port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    memset(c, 0, sizeof *c);
    c->name = name;
    c->fd = fd;
    c->rcap = RBUF_INIT;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf) die("out of memory");
}

static void wait_until(int *flag, double deadline, const char *what) {
    while (!*flag) {
        if (now_s() > deadline) die("timeout waiting for %s", what);
        pump(50);
    }
}

/* PING both connections and wait for both PONGs (server processed everything sent before). */
static void sync_both(double timeout_s) {
    uint64_t pa = A.pongs, pb = B.pongs;
    wappend(&A, "PING\r\n", 6);
    wappend(&B, "PING\r\n", 6);
    wflush(&A);
    wflush(&B);
    double dl = now_s() + timeout_s;
    while (A.pongs == pa || B.pongs == pb) {
        if (now_s() > dl) die("timeout waiting for PONG");
        pump(50);
    }
}

#ifdef NATSBENCH_TLS
/* After the plaintext INFO: a blocking TLS handshake, then back to non-blocking. */
static void tls_upgrade(conn_t *c) {
    c->ssl = SSL_new(g_tls);
    if (!c->ssl) die("%s: SSL_new failed", c->name);
    SSL_set_fd(c->ssl, c->fd);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    if (SSL_connect(c->ssl) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
        die("%s: TLS handshake failed: %s", c->name, buf);
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
}

static void tls_init(void) {
    g_tls = SSL_CTX_new(TLS_client_method());
    if (!g_tls) die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(g_tls, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(g_tls, g_tls_ca, NULL) != 1) die("cannot load --tls-ca %s", g_tls_ca);
    SSL_CTX_set_verify(g_tls, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_use_certificate_chain_file(g_tls, g_tls_cert) != 1) die("cannot load --tls-cert %s", g_tls_cert);
    if (SSL_CTX_use_PrivateKey_file(g_tls, g_tls_key, SSL_FILETYPE_PEM) != 1) die("cannot load --tls-key %s", g_tls_key);
    if (SSL_CTX_check_private_key(g_tls) != 1) die("--tls-key does not match --tls-cert");
}
#endif

static void handshake(void) {
    double dl = now_s() + 10.0;
    wait_until(&A.info_seen, dl, "INFO from A's server");
    wait_until(&B.info_seen, dl, "INFO from B's server");
#ifdef NATSBENCH_TLS
    if (g_tls) {
        tls_upgrade(&A);
        tls_upgrade(&B);
    }
#endif
    const char *fmt =
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":%s,"
        "\"name\":\"natsbench-%s\",\"lang\":\"c\",\"version\":\"0.1\",\"protocol\":1,"
        "\"echo\":true,\"headers\":false}\r\n";
    char buf[512];
    const char *tls_required = "false";
#ifdef NATSBENCH_TLS
    if (g_tls) tls_required = "true";
#endif
    int n = snprintf(buf, sizeof buf, fmt, tls_required, "A");
    wappend(&A, buf, (size_t)n);
    n = snprintf(buf, sizeof buf, fmt, tls_required, "B");
    wappend(&B, buf, (size_t)n);
    const char *suba = "SUB bench.pong 1\r\nSUB bench.credit 2\r\n";
    const char *subb = "SUB bench.ping 1\r\nSUB bench.stream 2\r\n";
    wappend(&A, suba, strlen(suba));
    wappend(&B, subb, strlen(subb));
    sync_both(10.0);
}

/* Wait until interest has propagated through the leafnodes in both directions:
 * A sends probes on bench.ping and bench.stream; B answers on bench.pong and
 * bench.credit. Ready once A has seen both answers. */
static void probe_ready(double timeout_s) {
    double t0 = now_s(), dl = t0 + timeout_s, next = 0;
    int sent = 0;
    while (!(probe_pong_seen && probe_credit_seen)) {
        double t = now_s();
        if (t > dl) die("end-to-end path not ready after %.0fs (leafnode interest did not propagate?)", timeout_s);
        if (t >= next) {
            pub(&A, "bench.ping", "P", 1);
            pub(&A, "bench.stream", "P", 1);
            wflush(&A);
            sent++;
            next = t + 0.02;
        }
        pump(5);
    }
    fprintf(stderr, "natsbench: end-to-end path ready after %.1f ms (%d probes)\n", (now_s() - t0) * 1e3, sent);
}

/* ---------------- benchmarks ---------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p) {
    /* nearest-rank percentile */
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (double)v[k - 1];
}

static void bench_rtt(uint64_t n, double *p50_us, double *p99_us) {
    uint64_t *rtt = malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!rtt) die("out of memory");
    uint64_t total = WARMUP + n;
    for (uint64_t i = 0; i < total; i++) {
        g_payload[0] = 'R';
        put_seq(g_payload, i);
        rtt_expect_seq = i;
        rtt_got = 0;
        uint64_t t0 = now_ns();
        pub(&A, "bench.ping", g_payload, g_size);
        wflush(&A);
        uint64_t dl = t0 + (uint64_t)(g_timeout_s * 1e9);
        while (!rtt_got) {
            pump(100);
            if (!rtt_got && now_ns() > dl) die("round trip %" PRIu64 ": no pong within %.0fs", i, g_timeout_s);
        }
        uint64_t t1 = now_ns();
        if (i >= WARMUP) rtt[i - WARMUP] = t1 - t0;
    }
    qsort(rtt, n, sizeof(uint64_t), cmp_u64);
    *p50_us = pct(rtt, n, 0.50) / 1e3;
    *p99_us = pct(rtt, n, 0.99) / 1e3;
    free(rtt);
}

static void bench_stream(uint64_t n, double *msgs_s, double *mb_s) {
    stream_recv = 0;
    stream_expect_seq = 0;
    stream_gaps = 0;
    stream_target = n;
    credited = 0;
    stream_t_end = 0;

    /* pre-build one complete PUB frame; only the sequence bytes change */
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "PUB bench.stream %zu\r\n", g_size);
    size_t flen = (size_t)hl + g_size + 2;
    char *frame = malloc(flen);
    if (!frame) die("out of memory");
    memcpy(frame, hdr, (size_t)hl);
    g_payload[0] = 'S';
    memcpy(frame + hl, g_payload, g_size);
    frame[flen - 2] = '\r';
    frame[flen - 1] = '\n';
    char *pl = frame + hl;

    uint64_t sent = 0, last_recv = 0, last_credit = 0;
    double t0 = now_s(), last_progress = t0;
    while (stream_recv < n) {
        /* produce while the window and the local write buffer allow */
        while (sent < n && sent - credited < g_window && wpending(&A) < WFLUSH_HIGH) {
            put_seq(pl, sent);
            wappend(&A, frame, flen);
            sent++;
        }
        if (wpending(&A)) wflush(&A);
        int can_produce = sent < n && sent - credited < g_window && wpending(&A) < WFLUSH_HIGH;
        pump(can_produce ? 0 : 50);

        if (stream_recv != last_recv || credited != last_credit) {
            last_recv = stream_recv;
            last_credit = credited;
            last_progress = now_s();
        } else if (now_s() - last_progress > g_timeout_s) {
            fprintf(stderr,
                    "natsbench: stream stalled: sent %" PRIu64 ", received %" PRIu64 " of %" PRIu64
                    " (missing %" PRIu64 "), credited %" PRIu64 "\n",
                    sent, stream_recv, n, sent - stream_recv, credited);
            exit(2);
        }
    }
    free(frame);
    if (stream_gaps) {
        fprintf(stderr, "natsbench: stream: %" PRIu64 " messages lost or out of order\n", stream_gaps);
        exit(2);
    }
    double secs = stream_t_end - t0;
    *msgs_s = (double)n / secs;
    *mb_s = (double)n * (double)g_size / secs / 1e6;
}

static void usage(void) {
    fprintf(stderr,
            "usage: natsbench --a URL --b URL [--size BYTES] [--count N] [--rtt-count N]\n"
            "                 [--window N] [--timeout SECONDS] [--json]\n"
            "  --a URL        server for client A (publisher), e.g. nats://127.0.0.1:4222\n"
            "  --b URL        server for client B (subscriber)\n"
            "  --size B       payload size in bytes (default 64)\n"
            "  --count N      stream messages, and round trips unless --rtt-count (default 200000)\n"
            "  --rtt-count N  number of measured round trips (default: --count)\n"
            "  --window N     max stream messages in flight (default 20000)\n"
            "  --timeout S    fail if no progress for S seconds (default 10)\n"
            "  --json         print one JSON line\n"
            "  --tls-ca F --tls-cert F --tls-key F   mutual TLS (built with -DNATSBENCH_TLS)\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *ua = NULL, *ub = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), (char *)NULL))
        if (!strcmp(a, "--a")) ua = NEXT();
        else if (!strcmp(a, "--b")) ub = NEXT();
        else if (!strcmp(a, "--size")) g_size = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "--count")) g_count = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "--rtt-count")) g_rtt_count = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "--window")) g_window = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "--timeout")) g_timeout_s = strtod(NEXT(), NULL);
        else if (!strcmp(a, "--json")) json = 1;
#ifdef NATSBENCH_TLS
        else if (!strcmp(a, "--tls-ca")) g_tls_ca = NEXT();
        else if (!strcmp(a, "--tls-cert")) g_tls_cert = NEXT();
        else if (!strcmp(a, "--tls-key")) g_tls_key = NEXT();
#endif
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
        else {
            fprintf(stderr, "natsbench: unknown argument %s\n", a);
            usage();
        }
    }
    if (!ua || !ub) usage();
    if (g_size < 1) die("--size must be >= 1");
    if (g_count < 1) die("--count must be >= 1");
    if (g_window < CREDIT_EVERY) die("--window must be >= %d", CREDIT_EVERY);
    uint64_t rtt_n = g_rtt_count ? g_rtt_count : g_count;
    signal(SIGPIPE, SIG_IGN);
#ifdef NATSBENCH_TLS
    if (g_tls_ca || g_tls_cert || g_tls_key) {
        if (!(g_tls_ca && g_tls_cert && g_tls_key)) die("TLS needs --tls-ca, --tls-cert and --tls-key");
        tls_init();
    }
#endif

    g_payload = malloc(g_size);
    if (!g_payload) die("out of memory");
    memset(g_payload, 'x', g_size);

    conn_open(&A, "A", ua);
    conn_open(&B, "B", ub);
    handshake();
    probe_ready(20.0);

    double p50, p99, mps, mbps;
    double t = now_s();
    bench_rtt(rtt_n, &p50, &p99);
    fprintf(stderr, "natsbench: size %zu: %" PRIu64 " round trips in %.1f s\n", g_size, rtt_n, now_s() - t);
    sync_both(10.0);
    t = now_s();
    bench_stream(g_count, &mps, &mbps);
    fprintf(stderr, "natsbench: size %zu: %" PRIu64 " stream messages in %.2f s\n", g_size, g_count, now_s() - t);

    if (json)
        printf("{\"system\":\"nats\",\"size\":%zu,\"count\":%" PRIu64
               ",\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"stream_msgs_per_s\":%.0f,\"stream_mb_per_s\":%.2f}\n",
               g_size, g_count, p50, p99, mps, mbps);
    else
        printf("nats size=%zu B count=%" PRIu64 ": rtt p50 %.1f us, p99 %.1f us; stream %.0f msgs/s, %.2f MB/s\n",
               g_size, g_count, p50, p99, mps, mbps);
    fflush(stdout);
    close(A.fd);
    close(B.fd);
    return 0;
}
