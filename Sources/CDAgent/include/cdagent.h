/* cdagent.h: the C API of a dagent node (Swift core, exported with @_cdecl).
 *
 * Plain C, no Python.h: the SWIG module (python/dagent/dagent.i) wraps it and
 * any C program can link libCDAgent.so. The library does not link libpython.
 *
 * Threading: every function may be called from any thread. Messages for the
 * node arrive on its event loop and are queued; `dagent_take` /
 * `dagent_update` hand them to the caller's thread. `dagent_request` and
 * `dagent_wait`/`dagent_update` block the calling thread.
 *
 * Errors: functions returning int return 0 (or a count) on success and a
 * negative wire error code (-DAGENT_E_*) on failure; `dagent_last_error()`
 * and `dagent_last_error_code()` describe the last failure on this thread.
 */
#ifndef CDAGENT_H
#define CDAGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wire error codes (proto/dagent.proto ErrorCode). */
enum {
    DAGENT_OK = 0,
    DAGENT_E_NO_ROUTE = 1,
    DAGENT_E_NAME_TAKEN = 2,
    DAGENT_E_TOO_LARGE = 3,
    DAGENT_E_HOP_LIMIT = 4,
    DAGENT_E_NOT_READY = 5,
    DAGENT_E_QUEUE_FULL = 6,
    DAGENT_E_TIMEOUT = 7,
    DAGENT_E_BAD_FRAME = 8,
    DAGENT_E_REFUSED = 9,
    DAGENT_E_UNKNOWN_KIND = 10,
    DAGENT_E_CONFIG = 100,     /* bad name, address or argument */
    DAGENT_E_STATE = 101       /* node destroyed, or used wrongly */
};

/* Kinds of queued items returned by dagent_take. */
enum {
    DAGENT_ITEM_MESSAGE = 1,   /* a DATA (cookie == 0) or REQUEST (cookie != 0) for this node */
    DAGENT_ITEM_REPLY = 2,     /* outcome of dagent_request_async: token, code (0 = ok), data = payload or reason */
    DAGENT_ITEM_TIMER = 3      /* a timer from dagent_timer fired: token */
};

typedef struct dagent_node dagent_node;

/* One queued item. Pointers stay valid until the next dagent_take/dagent_update
 * on the same node (or its destruction). `src` is NUL-terminated. */
typedef struct dagent_item {
    int32_t kind;
    int32_t code;
    uint32_t type;
    uint64_t cookie;
    uint64_t token;
    const char *src;
    size_t src_len;
    const uint8_t *data;
    size_t len;
} dagent_item;

/* A message handler for dagent_on: called by dagent_update on the caller's thread.
 * For a request (item->cookie != 0) answer with dagent_respond, or the return value:
 * returning nonzero without answering refuses the request. */
typedef int (*dagent_handler)(dagent_node *node, const dagent_item *item, void *user);

/* Last error on this thread: readable sentence ("" if none) and code. */
const char *dagent_last_error(void);
int dagent_last_error_code(void);

/* Creates and starts a node named `name` that joins the tree through `via`
 * ("tcp://HOST:PORT", "msgq://PATH" for the local agent serving PATH, "push:..." shorthand,
 * a comma-separated failover list).
 * `listen` (may be NULL or "") makes it also accept children ("tcp://HOST:PORT").
 * `secret` may be NULL. Returns NULL on failure (see dagent_last_error). */
dagent_node *dagent_create(const char *name, const char *via, const char *listen, const char *secret);

/* Stops the node, fails its pending requests, frees it. NULL is ignored. */
void dagent_destroy(dagent_node *node);

/* This node's name (owned by the node). */
const char *dagent_name(dagent_node *node);

/* 1 once registered in the tree, else 0. */
int dagent_is_ready(dagent_node *node);

/* Blocks up to timeout_s until registered: 0, or a negative code. */
int dagent_wait_ready(dagent_node *node, double timeout_s);

/* One-way message. Fails at once only for local errors (too large, queue full, no route at the top). */
int dagent_send(dagent_node *node, const char *dst, uint32_t type, const void *data, size_t len);

/* Blocking request: on success *reply (malloc'd, free with dagent_free) and *reply_len hold the answer. */
int dagent_request(dagent_node *node, const char *dst, uint32_t type, const void *data, size_t len,
                   double timeout_s, void **reply, size_t *reply_len);

/* Non-blocking request: the outcome is queued as a DAGENT_ITEM_REPLY item carrying `token`. */
int dagent_request_async(dagent_node *node, const char *dst, uint32_t type, const void *data, size_t len,
                         double timeout_s, uint64_t token);

/* Answers request `cookie` from `dst`. ok != 0: data is the reply; ok == 0: data is the refusal reason. */
int dagent_respond(dagent_node *node, const char *dst, uint32_t type, uint64_t cookie, int ok,
                   const void *data, size_t len);

/* Timers: queues a DAGENT_ITEM_TIMER item with `token` after `delay_s`, then every `period_s` if > 0.
 * dagent_timer_cancel stops it. */
int dagent_timer(dagent_node *node, double delay_s, double period_s, uint64_t token);
int dagent_timer_cancel(dagent_node *node, uint64_t token);

/* A file descriptor that is readable while items are queued (for poll/select/asyncio). */
int dagent_wakeup_fd(dagent_node *node);

/* Blocks up to timeout_ms (< 0: forever) until an item is queued; returns the number queued. */
int dagent_wait(dagent_node *node, int timeout_ms);

/* Moves up to `max` queued items into items[]; returns how many. Never blocks. */
int dagent_take(dagent_node *node, dagent_item *items, int max);

/* Registers (or with handler == NULL removes) the C handler for message `type`. */
int dagent_on(dagent_node *node, uint32_t type, dagent_handler handler, void *user);

/* The original style's loop step: waits up to timeout_ms for messages, then calls the
 * registered handlers for everything queued. Requests with no handler are refused.
 * Returns the number of messages handled, or a negative code. */
int dagent_update(dagent_node *node, int timeout_ms);

/* `dagent tree`: asks the node at `addr` what it sees (names, levels, links, queue depths,
 * counters) and renders it as the CLI does: json != 0 gives one line of JSON, else indented text.
 * `addr` is tcp://HOST:PORT (any node that listens) or msgq://PATH (the agent serving PATH);
 * no node is needed. Blocks up to timeout_s (> 0). On success returns 0 and sets *out to a
 * malloc'd NUL-terminated string (free it with dagent_free). On failure *out is NULL and the
 * result is negative: -DAGENT_E_CONFIG (bad address or argument), -DAGENT_E_REFUSED (nothing
 * listens at a tcp:// address), -DAGENT_E_NOT_READY (no live agent at msgq://PATH),
 * -DAGENT_E_TIMEOUT (no answer in time). */
int dagent_tree(const char *addr, int json, double timeout_s, char **out);

/* The same report for this node itself (what `dagent tree` would show if it were asked),
 * including its brother p2p counters (direct_out/direct_in) on a msgq:// link.
 * *out as for dagent_tree. */
int dagent_node_tree(dagent_node *node, int json, char **out);

/* Frees memory returned by dagent_request, dagent_tree and dagent_node_tree. */
void dagent_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
