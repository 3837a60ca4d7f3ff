/*
 * cpyhost.h — the embedded CPython host, as seen from Swift.
 *
 * This header must never include Python.h: a Swift-visible Clang module that
 * includes it clashes with Glibc (fd_set is defined twice). Everything Python
 * stays in cpyhost.c; Swift sees opaque pointers and plain C types only.
 *
 * Threading: one thread (the plugin thread) calls cpy_init and then
 * cpy_run_main, which runs the Python side (dagent._host.main) until it
 * returns. Every callback below is called on the plugin thread with the GIL
 * held, except `request`, which is called with the GIL released. The
 * watchdog functions (cpy_current_scope, cpy_interrupt, cpy_now_ns) may be
 * called from any thread.
 */
#ifndef CPYHOST_H
#define CPYHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A batch of work handed to Python (opaque; filled with cpy_batch_*). */
typedef struct cpy_batch cpy_batch;

/* What the plugin thread is doing (see cpy_current_scope). */
enum cpy_scope_kind {
    CPY_SCOPE_IDLE = 0,     /* waiting for work (GIL released) */
    CPY_SCOPE_LOOP = 1,     /* host or asyncio code: a task step, a callback */
    CPY_SCOPE_HANDLER = 2,  /* a plugin's message handler */
    CPY_SCOPE_GUARDED = 3,  /* a plugin's timer, setup or teardown */
    CPY_SCOPE_WAITING = 4,  /* blocked in dagent.request (GIL released) */
    CPY_SCOPE_TASK = 5,     /* one step of a plugin's async handler or task */
};

typedef struct cpy_scope {
    uint64_t seq;       /* changes every time the scope changes; 0 = none.
                           The same seq in two samples = the same scope ran all along. */
    int32_t kind;       /* enum cpy_scope_kind */
    int32_t slot;       /* plugin slot (0 = none) */
    uint32_t type;      /* message type, for CPY_SCOPE_HANDLER */
} cpy_scope;

/* Error codes returned by callbacks are Dagent_ErrorCode values (0 = ok).
 * `reason` outputs are malloc'd by the callee and freed by the caller. */
typedef struct cpy_callbacks {
    void *ctx;
    /* Moves pending work into `batch` (cpy_batch_message / _reply / _command),
     * at most `max` messages. Returns 1 if messages remain. */
    int (*take)(void *ctx, cpy_batch *batch, int max);
    /* Queues a one-way message. */
    int (*send)(void *ctx, const char *dst, size_t dst_len, uint32_t type,
                const void *data, size_t len, char **reason);
    /* Blocking request, called WITHOUT the GIL. On success *reply is malloc'd. */
    int (*request)(void *ctx, const char *dst, size_t dst_len, uint32_t type,
                   const void *data, size_t len, double timeout,
                   void **reply, size_t *reply_len, char **reason);
    /* Starts a request; its outcome arrives later through take (cpy_batch_reply). */
    int (*request_async)(void *ctx, const char *dst, size_t dst_len, uint32_t type,
                         const void *data, size_t len, double timeout, uint64_t token,
                         char **reason);
    /* Answers request `cookie` from `dst`: ok=1, data is the payload;
     * ok=0, data is the refusal reason (UTF-8). */
    int (*respond)(void *ctx, const char *dst, size_t dst_len, uint32_t type, uint64_t cookie,
                   int ok, const void *data, size_t len, char **reason);
    /* One log line; level is a Python logging level (10 debug ... 50 critical). */
    void (*log)(void *ctx, int level, const char *plugin, const char *message);
    /* 1 once the node is registered. */
    int (*is_ready)(void *ctx);
    /* Low-rate host control (status reports, command results): returns a
     * malloc'd UTF-8 string or NULL. */
    char *(*control)(void *ctx, const char *op, const char *text);
    /* Messages handled per plugin slot since the last call (once per batch). */
    void (*handled)(void *ctx, const uint64_t *counts, int n);
    /* Pub/sub (docs/pubsub.md). Publishes `data` on `topic` (queued in order with sends). */
    int (*publish)(void *ctx, const char *topic, size_t topic_len, const void *data, size_t len, char **reason);
    /* Subscribes, called WITHOUT the GIL: returns once the subscription is in place, with *id set.
     * Its messages arrive through take (cpy_batch_publication). */
    int (*subscribe)(void *ctx, const char *pattern, size_t pattern_len, const char *queue, size_t queue_len,
                     uint64_t *id, char **reason);
    /* Ends subscription `id` (unknown ids are ignored). */
    void (*unsubscribe)(void *ctx, uint64_t id);
    /* Handler time per plugin slot, once per batch, for the slots that ran:
     * `buckets` holds CPY_HANDLER_BUCKETS + 1 non-cumulative counts per slot
     * (bounds in cpy_handler_bounds, the last one +Inf), `sums` the seconds. */
    void (*handler_times)(void *ctx, const int32_t *slots, const uint64_t *buckets, const double *sums, int n);
    /* Answers host command `token` with a text and a binary body (an HTTP route's status and headers
     * as JSON, and its body: no base64 or JSON string in between). */
    void (*command_answer)(void *ctx, uint64_t token, const char *text, size_t text_len, const void *data, size_t len);
} cpy_callbacks;

/* The upper bounds (seconds) of the handler-time histogram's buckets. */
#define CPY_HANDLER_BUCKETS 16
extern const double cpy_handler_bounds[CPY_HANDLER_BUCKETS];

/* Starts the interpreter on the calling thread (which becomes the plugin
 * thread) with the built-in module `_dagent_host`, prepends `paths` to
 * sys.path. Returns 0, or 1 with *error malloc'd. The GIL stays held. */
int cpy_init(const char *program, const char *const *paths, int npaths,
             const cpy_callbacks *callbacks, const char *node_name, int wakeup_fd,
             char **error);

/* Imports `module`, calls module.function(arg) and returns when it returns.
 * Releases the GIL for good before returning. Returns 0, or 1 with *error
 * (a formatted traceback) malloc'd. */
int cpy_run_main(const char *module, const char *function, const char *arg, char **error);

/* "3.11.2 (main, ...)" — the linked interpreter's version. */
const char *cpy_version(void);

/* Names the calling OS thread (shown by top -H, perf, gdb). */
void cpy_set_thread_name(const char *name);

/* Hands one message to a batch (called from `take`): the message is built and its handler
 * called before this returns, so Python code runs inside `take`. `data` need only stay valid
 * for the call. cookie != 0 marks a request. */
void cpy_batch_message(cpy_batch *batch, const char *src, size_t src_len, uint32_t type,
                       uint64_t cookie, const void *data, size_t len);
/* Appends the outcome of a request started with request_async. */
void cpy_batch_reply(cpy_batch *batch, uint64_t token, int code, const void *data, size_t len);
/* Appends a published message for subscription `id` (an event ("publish", id, topic, src, data)). */
void cpy_batch_publication(cpy_batch *batch, uint64_t id, const char *topic, size_t topic_len,
                           const char *src, size_t src_len, const void *data, size_t len);
/* Appends a host command (JSON text), answered through control("command_done"). */
void cpy_batch_command(cpy_batch *batch, uint64_t token, const char *text, size_t len);

/* Watchdog side. cpy_now_ns is CLOCK_MONOTONIC in nanoseconds. */
int64_t cpy_now_ns(void);
void cpy_current_scope(cpy_scope *out);
/* Takes the GIL; if the plugin thread is still in scope `seq`, raises
 * dagent.HandlerTimeout in it (PyThreadState_SetAsyncExc). Returns 1 if raised. */
int cpy_interrupt(uint64_t seq);

/* The wake-up eventfd between the event loop and the plugin thread. */
int cpy_eventfd_create(void);
void cpy_eventfd_signal(int fd);
void cpy_eventfd_drain(int fd);

#ifdef __cplusplus
}
#endif
#endif
