/*
 * cpyhost.c — the only file of dagent that includes Python.h.
 *
 * It starts CPython on the plugin thread, provides the built-in module
 * `_dagent_host` (the embedded backend of the pure-Python `dagent` package,
 * see python/dagent/_backend.py for the interface), and turns batches of
 * messages from Swift into handler calls with one GIL acquisition per batch.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sys/prctl.h>

#include "cpyhost.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 1024

/* ---- handler time ----------------------------------------------------------
 * A clock_gettime costs about as much as a trivial handler on some VMs, so each
 * message is timed with the CPU's cycle counter and the batch converts cycles
 * to seconds with two clock reads around it (x86; elsewhere the clock itself). */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t ticks(void) { return __rdtsc(); }
#else
static inline uint64_t ticks(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
#endif

const double cpy_handler_bounds[CPY_HANDLER_BUCKETS] = {
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};

static cpy_callbacks G;
static char *g_name;
static int g_wakeup_fd = -1;
static unsigned long g_thread_id;      /* the plugin thread, as Python knows it */
static PyObject *g_message_type;       /* dagent.Message (a tuple subclass) */
static PyObject *g_runtime;            /* the dagent runtime, item 5 of each Message */
static PyObject *g_error_factory;      /* callable(code, reason) -> exception */
static PyObject *g_interrupt_exc;      /* dagent.HandlerTimeout */
static int32_t g_current_slot;         /* the plugin whose code runs now */
static PyObject *g_zero;               /* the int 0: the cookie of every one-way message */
static atomic_int g_initialized;

/* ---- the watchdog scope --------------------------------------------------
 * Written by the plugin thread (GIL held), read by the watchdog thread. The
 * fields are stored before the sequence number (release), so a reader that
 * sees the same seq before and after reading got a consistent-enough view.
 * No clock is read here (it costs more than a trivial handler): the watchdog
 * times a scope by seeing the same seq in consecutive samples. */
static _Atomic uint64_t s_seq;
static _Atomic int32_t s_kind, s_slot;
static _Atomic uint32_t s_type;
static uint64_t s_next_seq;            /* plugin thread only */
static uint64_t s_interrupted_seq;     /* GIL-protected */

int64_t cpy_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint64_t scope_set(int32_t kind, int32_t slot, uint32_t type) {
    uint64_t seq = ++s_next_seq;
    atomic_store_explicit(&s_kind, kind, memory_order_relaxed);
    atomic_store_explicit(&s_slot, slot, memory_order_relaxed);
    atomic_store_explicit(&s_type, type, memory_order_relaxed);
    atomic_store_explicit(&s_seq, seq, memory_order_release);
    return seq;
}

/* An interrupt aimed at scope `seq` (or at a scope opened inside it, e.g.
 * the handler scope re-opened after a blocking request) that has not fired
 * yet must not hit the next piece of code: cancel it (GIL held). */
static inline void scope_clear_interrupt(uint64_t seq) {
    if (s_interrupted_seq != 0 && s_interrupted_seq >= seq) {
        PyThreadState_SetAsyncExc(g_thread_id, NULL);
        s_interrupted_seq = 0;
    }
}

void cpy_current_scope(cpy_scope *out) {
    for (int i = 0; i < 8; i++) {
        uint64_t a = atomic_load_explicit(&s_seq, memory_order_acquire);
        out->kind = atomic_load_explicit(&s_kind, memory_order_relaxed);
        out->slot = atomic_load_explicit(&s_slot, memory_order_relaxed);
        out->type = atomic_load_explicit(&s_type, memory_order_relaxed);
        uint64_t b = atomic_load_explicit(&s_seq, memory_order_acquire);
        if (a == b) {
            out->seq = a;
            return;
        }
    }
    out->seq = 0;
    out->kind = CPY_SCOPE_IDLE;
}

int cpy_interrupt(uint64_t seq) {
    if (!atomic_load(&g_initialized)) return 0;
    PyGILState_STATE st = PyGILState_Ensure();
    int raised = 0;
    uint64_t now_seq = atomic_load_explicit(&s_seq, memory_order_acquire);
    int32_t kind = atomic_load_explicit(&s_kind, memory_order_relaxed);
    if (now_seq == seq && kind != CPY_SCOPE_IDLE && kind != CPY_SCOPE_WAITING && g_interrupt_exc) {
        raised = PyThreadState_SetAsyncExc(g_thread_id, g_interrupt_exc) == 1;
        if (raised) s_interrupted_seq = seq;
    }
    PyGILState_Release(st);
    return raised;
}

/* ---- eventfd -------------------------------------------------------------- */

int cpy_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void cpy_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
}

void cpy_eventfd_drain(int fd) {
    uint64_t v;
    ssize_t n;
    do { n = read(fd, &v, sizeof v); } while (n < 0 && errno == EINTR);
}

/* ---- errors ----------------------------------------------------------------- */

/* Raises the dagent exception for `code` (frees `reason`). Returns NULL. */
static PyObject *raise_code(int code, char *reason) {
    const char *text = reason ? reason : "";
    if (g_error_factory) {
        PyObject *exc = PyObject_CallFunction(g_error_factory, "is", code, text);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
    } else {
        PyErr_Format(PyExc_RuntimeError, "dagent error %d: %s", code, text);
    }
    free(reason);
    return NULL;
}

/* The current exception as text (with traceback), malloc'd; clears it. */
static char *error_text(void) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    if (tb && ev) PyException_SetTraceback(ev, tb);
    char *out = NULL;
    PyObject *mod = PyImport_ImportModule("traceback");
    if (mod && ev) {
        PyObject *lines = PyObject_CallMethod(mod, "format_exception", "O", ev);
        if (lines) {
            PyObject *empty = PyUnicode_FromString("");
            PyObject *joined = empty ? PyUnicode_Join(empty, lines) : NULL;
            const char *s = joined ? PyUnicode_AsUTF8(joined) : NULL;
            if (s) out = strdup(s);
            Py_XDECREF(joined);
            Py_XDECREF(empty);
            Py_DECREF(lines);
        }
    }
    if (!out && ev) {
        PyObject *s = PyObject_Str(ev);
        const char *c = s ? PyUnicode_AsUTF8(s) : NULL;
        out = strdup(c ? c : "unknown Python error");
        Py_XDECREF(s);
    }
    PyErr_Clear();
    Py_XDECREF(mod);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    return out ? out : strdup("unknown Python error");
}

/* ---- batches ----------------------------------------------------------------
 *
 * pump() hands Swift a batch; Swift's take() calls cpy_batch_message once per
 * message, and each message is dispatched to its handler right away (built and
 * called interleaved, while its payload is still in cache). A message whose only
 * reference after the call is ours (the handler kept neither it nor its payload)
 * is reused for the next one: its items are replaced in place and its `bytes` is
 * overwritten when the length matches, so the steady state of a trivial handler
 * allocates and frees nothing per message. A message the handler kept (a
 * reference in a list, a task, a recorded reply: refcount > 1 or an instance
 * dict) is never touched again: it keeps its own payload. */

struct cpy_batch {
    Py_ssize_t n;       /* messages taken */
    PyObject *events;   /* list, created on first event */
    PyObject *dst;      /* our name, shared by every message */
    PyObject *last_src; /* consecutive messages often share a sender */
    PyObject *last_type;
    uint32_t last_type_v;
    int failed;
    /* dispatch */
    PyObject *handlers, *on_unhandled, *on_error, *on_async, *on_result;
    PyObject *spare;    /* a handled Message only we reference, or NULL */
    PyObject *entry;    /* the handler entry last looked up (strong), its slot and type */
    long entry_slot;
    uint32_t entry_type;
    int32_t *tslot;     /* per handled message: its slot and its cycles (see "handler time") */
    uint64_t *tcycles;
    uint64_t tprev;     /* the cycle counter when the previous message was done */
    Py_ssize_t timed, tcap;
    int max_slot;
};

static uint64_t g_counts[MAX_SLOTS];

static PyObject *make_message(PyObject *src, PyObject *dst, PyObject *type, PyObject *data, PyObject *cookie) {
    PyTypeObject *t = (PyTypeObject *)g_message_type;
    PyObject *m = t->tp_alloc(t, 6);
    if (!m) return NULL;
    Py_INCREF(src); Py_INCREF(dst); Py_INCREF(type); Py_INCREF(g_runtime);
    PyTuple_SET_ITEM(m, 0, src);
    PyTuple_SET_ITEM(m, 1, dst);
    PyTuple_SET_ITEM(m, 2, type);
    PyTuple_SET_ITEM(m, 3, data);      /* steals */
    PyTuple_SET_ITEM(m, 4, cookie);    /* steals */
    PyTuple_SET_ITEM(m, 5, g_runtime);
    return m;
}

/* True if nobody but us can see `m`: one reference and no instance dict
 * (a tuple subclass has no weak references). */
static inline int message_is_private(PyObject *m) {
    if (Py_REFCNT(m) != 1) return 0;
    PyObject **dict = _PyObject_GetDictPtr(m);
    return dict == NULL || *dict == NULL;
}

/* Replaces item i of the private message m with `v` (stolen). */
static inline void message_set(PyObject *m, Py_ssize_t i, PyObject *v) {
    PyObject *old = PyTuple_GET_ITEM(m, i);
    PyTuple_SET_ITEM(m, i, v);
    Py_DECREF(old);
}

/* The payload `bytes`: the spare's own when only it references one of the same length. */
static PyObject *payload_into(PyObject *spare, const void *data, size_t len) {
    if (spare) {
        PyObject *old = PyTuple_GET_ITEM(spare, 3);
        if (Py_REFCNT(old) == 1 && PyBytes_CheckExact(old) && (size_t)PyBytes_GET_SIZE(old) == len && len > 0) {
            memcpy(PyBytes_AS_STRING(old), data, len);
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
            ((PyBytesObject *)old)->ob_shash = -1;   /* the cached hash was of the old bytes */
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
            return NULL;   /* reused in place */
        }
    }
    PyObject *p = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    return p ? p : (PyObject *)-1;
}

static void dispatch(cpy_batch *b, PyObject *m);

void cpy_batch_message(cpy_batch *b, const char *src, size_t src_len, uint32_t type,
                       uint64_t cookie, const void *data, size_t len) {
    if (b->failed) return;
    if (b->n == 0) b->tprev = ticks();   /* the first message's time starts here, not in take's lock */
    if (!b->last_src || (size_t)PyUnicode_GET_LENGTH(b->last_src) != src_len ||
        !PyUnicode_IS_COMPACT_ASCII(b->last_src) || memcmp(PyUnicode_DATA(b->last_src), src, src_len) != 0) {
        PyObject *s = PyUnicode_DecodeUTF8(src, (Py_ssize_t)src_len, "replace");
        if (!s) { b->failed = 1; return; }
        Py_XSETREF(b->last_src, s);
    }
    if (!b->last_type || b->last_type_v != type) {
        PyObject *t = PyLong_FromUnsignedLong(type);
        if (!t) { b->failed = 1; return; }
        Py_XSETREF(b->last_type, t);
        b->last_type_v = type;
    }
    PyObject *m = b->spare;
    b->spare = NULL;
    PyObject *payload = payload_into(m, data, len);
    if (payload == (PyObject *)-1) { Py_XDECREF(m); b->failed = 1; return; }
    PyObject *ck = cookie ? PyLong_FromUnsignedLongLong(cookie) : Py_NewRef(g_zero);
    if (!ck) { Py_XDECREF(payload); Py_XDECREF(m); b->failed = 1; return; }
    if (m) {
        if (PyTuple_GET_ITEM(m, 0) != b->last_src) { Py_INCREF(b->last_src); message_set(m, 0, b->last_src); }
        if (PyTuple_GET_ITEM(m, 2) != b->last_type) { Py_INCREF(b->last_type); message_set(m, 2, b->last_type); }
        if (payload) message_set(m, 3, payload);
        message_set(m, 4, ck);
    } else {
        m = make_message(b->last_src, b->dst, b->last_type, payload, ck);
        if (!m) { Py_DECREF(payload); Py_DECREF(ck); b->failed = 1; return; }
    }
    b->n++;
    dispatch(b, m);
    if (message_is_private(m)) {
        b->spare = m;
    } else {
        Py_DECREF(m);
    }
}

static void batch_event(cpy_batch *b, PyObject *ev) {
    if (!ev) { b->failed = 1; return; }
    if (!b->events) b->events = PyList_New(0);
    if (!b->events || PyList_Append(b->events, ev) < 0) b->failed = 1;
    Py_DECREF(ev);
}

void cpy_batch_reply(cpy_batch *b, uint64_t token, int code, const void *data, size_t len) {
    PyObject *payload = code == 0 ? PyBytes_FromStringAndSize(data, (Py_ssize_t)len)
                                  : PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "replace");
    if (!payload) { b->failed = 1; return; }
    batch_event(b, Py_BuildValue("(sKiN)", "reply", (unsigned long long)token, code, payload));
}

void cpy_batch_publication(cpy_batch *b, uint64_t id, const char *topic, size_t topic_len,
                           const char *src, size_t src_len, const void *data, size_t len) {
    if (b->failed) return;
    batch_event(b, Py_BuildValue("(sKs#s#y#)", "publish", (unsigned long long)id, topic, (Py_ssize_t)topic_len,
                                 src, (Py_ssize_t)src_len, (const char *)data, (Py_ssize_t)len));
}

void cpy_batch_command(cpy_batch *b, uint64_t token, const char *text, size_t len) {
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "replace");
    if (!s) { b->failed = 1; return; }
    batch_event(b, Py_BuildValue("(sKN)", "command", (unsigned long long)token, s));
}

/* ---- the module `_dagent_host` ---------------------------------------------- */

static PyObject *m_bind(PyObject *self, PyObject *args) {
    PyObject *mtype, *runtime, *factory, *interrupt;
    if (!PyArg_ParseTuple(args, "OOOO", &mtype, &runtime, &factory, &interrupt)) return NULL;
    if (!PyType_Check(mtype) || !PyType_IsSubtype((PyTypeObject *)mtype, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "bind: the message class must be a tuple subclass");
        return NULL;
    }
    Py_INCREF(mtype); Py_XSETREF(g_message_type, mtype);
    Py_INCREF(runtime); Py_XSETREF(g_runtime, runtime);
    Py_INCREF(factory); Py_XSETREF(g_error_factory, factory);
    Py_INCREF(interrupt); Py_XSETREF(g_interrupt_exc, interrupt);
    if (!g_zero && !(g_zero = PyLong_FromLong(0))) return NULL;
    Py_RETURN_NONE;
}

static PyObject *m_name(PyObject *self, PyObject *unused) { return PyUnicode_FromString(g_name ? g_name : ""); }

static PyObject *m_is_ready(PyObject *self, PyObject *unused) { return PyBool_FromLong(G.is_ready(G.ctx)); }

static PyObject *m_wakeup_fd(PyObject *self, PyObject *unused) { return PyLong_FromLong(g_wakeup_fd); }

static PyObject *m_current_slot(PyObject *self, PyObject *unused) { return PyLong_FromLong(g_current_slot); }

static PyObject *m_send(PyObject *self, PyObject *args) {
    const char *dst;
    Py_ssize_t dst_len;
    unsigned int type;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "s#Iy*", &dst, &dst_len, &type, &data)) return NULL;
    char *reason = NULL;
    int code = G.send(G.ctx, dst, (size_t)dst_len, type, data.buf, (size_t)data.len, &reason);
    PyBuffer_Release(&data);
    if (code) return raise_code(code, reason);
    Py_RETURN_NONE;
}

static PyObject *m_request(PyObject *self, PyObject *args) {
    const char *dst;
    Py_ssize_t dst_len;
    unsigned int type;
    Py_buffer data;
    double timeout;
    if (!PyArg_ParseTuple(args, "s#Iy*d", &dst, &dst_len, &type, &data, &timeout)) return NULL;
    char *reason = NULL;
    void *reply = NULL;
    size_t reply_len = 0;
    int32_t kind = atomic_load(&s_kind), slot = atomic_load(&s_slot);
    uint32_t stype = atomic_load(&s_type);
    /* Only the plugin thread has a watchdog scope; a plugin's own thread (e.g. the lease
     * renewer of dagent.state.lock) must not touch it. */
    int on_plugin_thread = PyThread_get_thread_ident() == g_thread_id;
    if (on_plugin_thread) scope_set(CPY_SCOPE_WAITING, slot, stype);
    int code;
    Py_BEGIN_ALLOW_THREADS
    code = G.request(G.ctx, dst, (size_t)dst_len, type, data.buf, (size_t)data.len, timeout, &reply, &reply_len, &reason);
    Py_END_ALLOW_THREADS
    if (on_plugin_thread) scope_set(kind, slot, stype);   /* the budget restarts after the wait */
    PyBuffer_Release(&data);
    if (code) {
        free(reply);
        return raise_code(code, reason);
    }
    PyObject *out = PyBytes_FromStringAndSize(reply, (Py_ssize_t)reply_len);
    free(reply);
    return out;
}

static PyObject *m_request_async(PyObject *self, PyObject *args) {
    const char *dst;
    Py_ssize_t dst_len;
    unsigned int type;
    Py_buffer data;
    double timeout;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "s#Iy*dK", &dst, &dst_len, &type, &data, &timeout, &token)) return NULL;
    char *reason = NULL;
    int code = G.request_async(G.ctx, dst, (size_t)dst_len, type, data.buf, (size_t)data.len, timeout, token, &reason);
    PyBuffer_Release(&data);
    if (code) return raise_code(code, reason);
    Py_RETURN_NONE;
}

static PyObject *m_respond(PyObject *self, PyObject *args) {
    const char *dst;
    Py_ssize_t dst_len;
    unsigned int type;
    unsigned long long cookie;
    int ok;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "s#IKpy*", &dst, &dst_len, &type, &cookie, &ok, &data)) return NULL;
    char *reason = NULL;
    int code = G.respond(G.ctx, dst, (size_t)dst_len, type, cookie, ok, data.buf, (size_t)data.len, &reason);
    PyBuffer_Release(&data);
    if (code) return raise_code(code, reason);
    Py_RETURN_NONE;
}

static PyObject *m_publish(PyObject *self, PyObject *args) {
    const char *topic;
    Py_ssize_t topic_len;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "s#y*", &topic, &topic_len, &data)) return NULL;
    char *reason = NULL;
    int code = G.publish(G.ctx, topic, (size_t)topic_len, data.buf, (size_t)data.len, &reason);
    PyBuffer_Release(&data);
    if (code) return raise_code(code, reason);
    Py_RETURN_NONE;
}

/* subscribe(pattern, queue) -> id: waits (GIL released) until the subscription is in place. */
static PyObject *m_subscribe(PyObject *self, PyObject *args) {
    const char *pattern, *queue;
    Py_ssize_t pattern_len, queue_len;
    if (!PyArg_ParseTuple(args, "s#s#", &pattern, &pattern_len, &queue, &queue_len)) return NULL;
    char *reason = NULL;
    uint64_t id = 0;
    int code;
    Py_BEGIN_ALLOW_THREADS
    code = G.subscribe(G.ctx, pattern, (size_t)pattern_len, queue, (size_t)queue_len, &id, &reason);
    Py_END_ALLOW_THREADS
    if (code) return raise_code(code, reason);
    return PyLong_FromUnsignedLongLong(id);
}

static PyObject *m_unsubscribe(PyObject *self, PyObject *args) {
    unsigned long long id;
    if (!PyArg_ParseTuple(args, "K", &id)) return NULL;
    G.unsubscribe(G.ctx, id);
    Py_RETURN_NONE;
}

static PyObject *m_log(PyObject *self, PyObject *args) {
    int level;
    const char *plugin, *msg;
    if (!PyArg_ParseTuple(args, "iss", &level, &plugin, &msg)) return NULL;
    G.log(G.ctx, level, plugin, msg);
    Py_RETURN_NONE;
}

static PyObject *m_control(PyObject *self, PyObject *args) {
    const char *op, *text;
    if (!PyArg_ParseTuple(args, "ss", &op, &text)) return NULL;
    char *out = G.control(G.ctx, op, text);
    if (!out) Py_RETURN_NONE;
    PyObject *r = PyUnicode_FromString(out);
    free(out);
    return r;
}

static PyObject *m_command_answer(PyObject *self, PyObject *args) {
    unsigned long long token;
    const char *text;
    Py_ssize_t text_len;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "Ks#y*", &token, &text, &text_len, &data)) return NULL;
    G.command_answer(G.ctx, token, text, (size_t)text_len, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

static PyObject *m_idle(PyObject *self, PyObject *unused) {
    scope_clear_interrupt(atomic_load(&s_seq));
    scope_set(CPY_SCOPE_IDLE, 0, 0);
    Py_RETURN_NONE;
}

static PyObject *m_busy(PyObject *self, PyObject *unused) {
    scope_set(CPY_SCOPE_LOOP, 0, 0);
    Py_RETURN_NONE;
}

/* guard(slot, kind, fn, *args): calls fn(*args) as plugin `slot` under the
 * watchdog (kind: 3 = timer/setup/teardown, 5 = a task step). */
static PyObject *m_guard(PyObject *self, PyObject *args) {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 3) {
        PyErr_SetString(PyExc_TypeError, "guard(slot, kind, fn, *args)");
        return NULL;
    }
    long slot = PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(args, 1));
    if (PyErr_Occurred()) return NULL;
    PyObject *fn = PyTuple_GET_ITEM(args, 2);
    PyObject *rest = PyTuple_GetSlice(args, 3, n);
    if (!rest) return NULL;
    int32_t prev_slot = g_current_slot;
    g_current_slot = (int32_t)slot;
    uint64_t seq = scope_set((int32_t)kind, (int32_t)slot, 0);
    PyObject *r = PyObject_Call(fn, rest, NULL);
    Py_DECREF(rest);
    if (r == NULL) {
        /* keep the handler's own exception; just cancel a pending one */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        scope_clear_interrupt(seq);
        PyErr_Restore(et, ev, tb);
    } else {
        scope_clear_interrupt(seq);
    }
    g_current_slot = prev_slot;
    scope_set(CPY_SCOPE_LOOP, prev_slot, 0);
    return r;
}

static void call_hook(PyObject *hook, PyObject *const *argv, size_t argc) {
    PyObject *r = PyObject_Vectorcall(hook, argv, argc, NULL);
    if (r) {
        Py_DECREF(r);
    } else {
        char *text = error_text();
        G.log(G.ctx, 40, "", text);
        free(text);
    }
}

static inline int is_awaitable(PyObject *r) {
    if (PyCoro_CheckExact(r)) return 1;
    PyAsyncMethods *am = Py_TYPE(r)->tp_as_async;
    return am && am->am_await;
}

/* Buckets the batch's handler times per slot and hands them to Swift. */
static void report_handler_times(const int32_t *slot, const uint64_t *cycles, Py_ssize_t n,
                                 int64_t batch_ns, uint64_t batch_cycles) {
    enum { B = CPY_HANDLER_BUCKETS + 1, MAX_DISTINCT = 64 };
    static int16_t index_of[MAX_SLOTS];          /* 1 + index into the arrays below, 0 = not seen */
    int32_t slots[MAX_DISTINCT];
    uint64_t buckets[MAX_DISTINCT * B];
    double sums[MAX_DISTINCT];
    int distinct = 0;
    double seconds_per_cycle = batch_cycles > 0 && batch_ns > 0 ? (double)batch_ns / 1e9 / (double)batch_cycles : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t s = slot[i];
        int j = index_of[s] - 1;
        if (j < 0) {
            if (distinct == MAX_DISTINCT) continue;   /* more plugins in one batch than we keep: not timed */
            j = distinct++;
            index_of[s] = (int16_t)(j + 1);
            slots[j] = s;
            sums[j] = 0;
            memset(&buckets[j * B], 0, sizeof(uint64_t) * B);
        }
        double secs = (double)cycles[i] * seconds_per_cycle;
        int k = 0;
        while (k < CPY_HANDLER_BUCKETS && secs > cpy_handler_bounds[k]) k++;
        buckets[j * B + k]++;
        sums[j] += secs;
    }
    for (int j = 0; j < distinct; j++) index_of[slots[j]] = 0;
    G.handler_times(G.ctx, slots, buckets, sums, distinct);
}

/* Calls the handler of message `m` (one reference ours, kept): handlers[type] is
 * a tuple (fn, slot). See pump() below for the hooks. */
static void dispatch(cpy_batch *b, PyObject *m) {
    PyObject *type = PyTuple_GET_ITEM(m, 2);
    PyObject *entry = PyDict_GetItemWithError(b->handlers, type);
    if (!entry) {
        PyErr_Clear();
        call_hook(b->on_unhandled, &m, 1);
        b->tprev = ticks();
        return;
    }
    Py_INCREF(entry);   /* the handler may unregister itself */
    if (entry != b->entry) {
        long slot = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
        if (slot < 0 || slot >= MAX_SLOTS) slot = 0;
        PyErr_Clear();
        Py_INCREF(entry);
        Py_XSETREF(b->entry, entry);
        b->entry_slot = slot;
        b->entry_type = (uint32_t)PyLong_AsUnsignedLong(type);
        PyErr_Clear();
    }
    long slot = b->entry_slot;
    PyObject *fn = PyTuple_GET_ITEM(entry, 0);
    g_current_slot = (int32_t)slot;
    uint64_t seq = scope_set(CPY_SCOPE_HANDLER, (int32_t)slot, b->entry_type);
    PyObject *r = PyObject_Vectorcall(fn, &m, 1, NULL);
    if (r == NULL) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        scope_clear_interrupt(seq);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (tb && ev) PyException_SetTraceback(ev, tb);
        PyObject *argv[3] = {entry, m, ev ? ev : Py_None};
        call_hook(b->on_error, argv, 3);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
    } else {
        scope_clear_interrupt(seq);
        if (r != Py_None) {
            PyObject *argv[3] = {entry, m, r};
            call_hook(is_awaitable(r) ? b->on_async : b->on_result, argv, 3);
        }
        Py_DECREF(r);
    }
    g_counts[slot]++;
    if (slot > b->max_slot) b->max_slot = (int)slot;
    Py_DECREF(entry);
    if (b->timed == b->tcap) {
        Py_ssize_t cap = b->tcap ? b->tcap * 2 : 1024;
        int32_t *s = realloc(b->tslot, sizeof(int32_t) * (size_t)cap);
        if (s) b->tslot = s;
        uint64_t *c = s ? realloc(b->tcycles, sizeof(uint64_t) * (size_t)cap) : NULL;
        if (c) b->tcycles = c;
        if (s && c) b->tcap = cap;
    }
    /* One cycle-counter read per message (it costs this VM ~15 ns): a message's time runs from
     * the end of the previous one, so it includes building the message (tens of ns). */
    uint64_t t = ticks();
    if (b->timed < b->tcap) {
        b->tslot[b->timed] = (int32_t)slot;
        b->tcycles[b->timed++] = t - b->tprev;
    }
    b->tprev = t;
}

/* pump(handlers, on_unhandled, on_error, on_async, on_result, max) -> (n, events, more)
 *
 * Takes up to `max` messages and every pending event from Swift, calling the
 * handler of each message as it is taken: handlers[type] is a tuple (fn, slot). A
 * handler that raises goes to on_error(entry, msg, exc); one that returns an
 * awaitable to on_async(entry, msg, awaitable); any other non-None result to
 * on_result(entry, msg, result); a type without handler to on_unhandled(msg). */
static PyObject *m_pump(PyObject *self, PyObject *args) {
    PyObject *handlers, *on_unhandled, *on_error, *on_async, *on_result;
    int max;
    if (!PyArg_ParseTuple(args, "O!OOOOi", &PyDict_Type, &handlers, &on_unhandled, &on_error, &on_async, &on_result, &max))
        return NULL;
    if (!g_message_type) {
        PyErr_SetString(PyExc_RuntimeError, "pump before bind");
        return NULL;
    }
    static int32_t *tslot;      /* kept between batches (plugin thread only) */
    static uint64_t *tcycles;
    static Py_ssize_t tcap;
    cpy_batch b;
    memset(&b, 0, sizeof b);
    b.dst = PyUnicode_FromString(g_name ? g_name : "");
    if (!b.dst) return NULL;
    b.handlers = handlers;
    b.on_unhandled = on_unhandled;
    b.on_error = on_error;
    b.on_async = on_async;
    b.on_result = on_result;
    b.tslot = tslot;
    b.tcycles = tcycles;
    b.tcap = tcap;
    b.max_slot = -1;
    int64_t clock0 = cpy_now_ns();
    uint64_t tick0 = ticks();
    int more = G.take(G.ctx, &b, max);
    uint64_t tick1 = ticks();
    int64_t clock1 = cpy_now_ns();
    Py_CLEAR(b.spare);
    Py_CLEAR(b.entry);
    Py_CLEAR(b.last_src);
    Py_CLEAR(b.last_type);
    if (b.failed) {
        PyErr_Clear();
        G.log(G.ctx, 40, "", "out of memory while building a batch of messages for the plugins: some were dropped");
    }
    g_current_slot = 0;
    scope_set(CPY_SCOPE_LOOP, 0, 0);
    if (b.timed > 0 && G.handler_times) report_handler_times(b.tslot, b.tcycles, b.timed, clock1 - clock0, tick1 - tick0);
    tslot = b.tslot;
    tcycles = b.tcycles;
    tcap = b.tcap;
    if (b.max_slot >= 0) {
        G.handled(G.ctx, g_counts, b.max_slot + 1);
        memset(g_counts, 0, sizeof(uint64_t) * (size_t)(b.max_slot + 1));
    }
    Py_ssize_t n = b.n;
    Py_DECREF(b.dst);
    PyObject *events = b.events ? b.events : PyList_New(0);
    if (!events) return NULL;
    return Py_BuildValue("(nNO)", n, events, more ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"bind", m_bind, METH_VARARGS, "bind(message_class, runtime, error_factory, interrupt_exception)"},
    {"name", m_name, METH_NOARGS, "This node's name."},
    {"is_ready", m_is_ready, METH_NOARGS, "True once the node is registered."},
    {"wakeup_fd", m_wakeup_fd, METH_NOARGS, "An fd that becomes readable when pump() has work."},
    {"current_slot", m_current_slot, METH_NOARGS, "The plugin slot whose code runs now."},
    {"send", m_send, METH_VARARGS, "send(dst, type, data)"},
    {"request", m_request, METH_VARARGS, "request(dst, type, data, timeout) -> bytes (blocks, GIL released)"},
    {"request_async", m_request_async, METH_VARARGS, "request_async(dst, type, data, timeout, token)"},
    {"respond", m_respond, METH_VARARGS, "respond(dst, type, cookie, ok, data)"},
    {"publish", m_publish, METH_VARARGS, "publish(topic, data)"},
    {"subscribe", m_subscribe, METH_VARARGS, "subscribe(pattern, queue) -> id (blocks briefly, GIL released)"},
    {"unsubscribe", m_unsubscribe, METH_VARARGS, "unsubscribe(id)"},
    {"log", m_log, METH_VARARGS, "log(level, plugin, message)"},
    {"control", m_control, METH_VARARGS, "control(op, text) -> str | None"},
    {"command_answer", m_command_answer, METH_VARARGS, "command_answer(token, text, data): a host command's text and binary body"},
    {"idle", m_idle, METH_NOARGS, "The plugin thread is about to wait for work."},
    {"busy", m_busy, METH_NOARGS, "The plugin thread woke up."},
    {"guard", m_guard, METH_VARARGS, "guard(slot, kind, fn, *args): fn(*args) under the watchdog."},
    {"pump", m_pump, METH_VARARGS, "pump(handlers, on_unhandled, on_error, on_async, on_result, max) -> (n, events, more)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_dagent_host",
    "The embedded dagent backend (built into the dagent agent; see dagent/_backend.py).", -1, methods,
};

static PyObject *PyInit__dagent_host(void) { return PyModule_Create(&moddef); }

/* ---- lifecycle ---------------------------------------------------------------- */

const char *cpy_version(void) { return Py_GetVersion(); }

void cpy_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

int cpy_init(const char *program, const char *const *paths, int npaths,
             const cpy_callbacks *callbacks, const char *node_name, int wakeup_fd, char **error) {
    G = *callbacks;
    g_name = strdup(node_name ? node_name : "");
    g_wakeup_fd = wakeup_fd;
    if (PyImport_AppendInittab("_dagent_host", PyInit__dagent_host) < 0) {
        *error = strdup("PyImport_AppendInittab failed");
        return 1;
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;  /* the agent owns signals */
    config.parse_argv = 0;
    config.use_environment = 0;          /* PYTHONHOME/PYTHONPATH of a shell must not break the agent */
    config.write_bytecode = 0;           /* plugin dirs stay clean; reload never sees a stale .pyc */
    config.user_site_directory = 0;
    PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, program);
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        char buf[512];
        snprintf(buf, sizeof buf, "cannot start CPython: %s%s%s", status.func ? status.func : "",
                 status.func ? ": " : "", status.err_msg ? status.err_msg : "unknown error");
        *error = strdup(buf);
        return 1;
    }
    PyObject *sys_path = PySys_GetObject("path");  /* borrowed */
    for (int i = npaths - 1; i >= 0 && sys_path; i--) {
        PyObject *p = PyUnicode_DecodeFSDefault(paths[i]);
        if (p) {
            PyList_Insert(sys_path, 0, p);
            Py_DECREF(p);
        }
    }
    g_thread_id = PyThread_get_thread_ident();
    atomic_store(&g_initialized, 1);
    return 0;
}

int cpy_run_main(const char *module, const char *function, const char *arg, char **error) {
    int rc = 0;
    PyObject *mod = PyImport_ImportModule(module);
    PyObject *r = mod ? PyObject_CallMethod(mod, function, "s", arg) : NULL;
    if (!r) {
        *error = error_text();
        rc = 1;
    }
    Py_XDECREF(r);
    Py_XDECREF(mod);
    scope_set(CPY_SCOPE_IDLE, 0, 0);
    PyEval_SaveThread();   /* never taken back by this thread */
    return rc;
}
