/* dagent.i: SWIG 4 interface for the standalone backend `dagent._dagent`.
 *
 * It wraps the C API of the Swift core (Sources/CDAgent/include/cdagent.h).
 * Kept thin: plain calls are SWIG-generated; four helpers are written here
 * because they need the Python C API:
 *   send()     the per-message call, without SWIG's argument copies (METH_FASTCALL);
 *   request()  blocking, releases the GIL, returns bytes or raises (METH_FASTCALL too);
 *   respond()  a handler's answer, without SWIG's copies (METH_FASTCALL);
 *   wait()     blocking poll for queued items, releases the GIL;
 *   take()     builds Message tuples and reply/timer events in one call.
 * dagent_tree / dagent_tree_with / dagent_node_tree return the report as a str (typemaps below).
 * Python handlers are dispatched in Python (dagent/_standalone.py), so no C
 * callback ever has to take the GIL.
 *
 * Regenerate (the output is committed): scripts/gen-swig
 */
%module(package="dagent") dagent

%{
#define SWIG_FILE_WITH_INIT
#include <string.h>
#include "cdagent.h"
%}

%include <stdint.i>

/* Failures become the exception that dagent.errors.error_for(code, reason) builds. */
%{
static PyObject *dagent_error_factory = NULL;

static PyObject *dagent_raise(int rc) {
    int code = rc < 0 ? -rc : rc;
    const char *text = dagent_last_error();
    if (dagent_error_factory) {
        PyObject *exc = PyObject_CallFunction(dagent_error_factory, "is", code, text);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
    } else {
        PyErr_Format(PyExc_RuntimeError, "dagent error %d: %s", code, text);
    }
    return NULL;
}
%}

/* Bytes in: anything with the buffer protocol. */
%typemap(in) (const void *data, size_t len) (Py_buffer view) {
    if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) != 0) SWIG_fail;
    $1 = view.buf;
    $2 = (size_t)view.len;
}
%typemap(freearg) (const void *data, size_t len) {
    if (view$argnum.obj) PyBuffer_Release(&view$argnum);
}
%typemap(arginit) (const void *data, size_t len) "memset(&view$argnum, 0, sizeof(view$argnum));"

/* char **out (dagent_tree, dagent_tree_with, dagent_node_tree): not an argument in Python; the
 * malloc'd C string comes back as a str (the function's int result is dropped)
 * and is freed here. On failure the out typemap below has raised already. */
%typemap(in, numinputs=0) char **out (char *text = NULL) {
    $1 = &text;
}
%typemap(argout) char **out {
    if (*$1) {
        PyObject *s = PyUnicode_DecodeUTF8(*$1, (Py_ssize_t)strlen(*$1), "replace");
        dagent_free(*$1);
        *$1 = NULL;
        if (!s) SWIG_fail;
        Py_DECREF($result);
        $result = s;
    }
}

/* int results: negative means failure, raise; otherwise return the int. */
%typemap(out) int dagent_wait_ready, int dagent_request_async, int dagent_respond,
                int dagent_timer, int dagent_timer_cancel, int dagent_wakeup_fd,
                int dagent_tree, int dagent_tree_with, int dagent_node_tree, int dagent_publish, int dagent_unsubscribe {
    if ($1 < 0) { dagent_raise($1); SWIG_fail; }
    $result = PyLong_FromLong($1);
}
/* int64_t results (a subscription id, a count): negative means failure. */
%typemap(out) int64_t dagent_subscribe, int64_t dagent_publication_drops {
    if ($1 < 0) { dagent_raise((int)$1); SWIG_fail; }
    $result = PyLong_FromLongLong($1);
}

/* NULL node from create: raise. */
%typemap(out) dagent_node *dagent_create, dagent_node *dagent_create_tls {
    if (!$1) { dagent_raise(-dagent_last_error_code()); SWIG_fail; }
    $result = SWIG_NewPointerObj($1, $descriptor(dagent_node *), 0);
}

%ignore dagent_send;          /* send() below, written by hand */
%ignore dagent_request;
%ignore dagent_request_into;
%ignore dagent_alloc;
%ignore dagent_wait;
%ignore dagent_take;
%ignore dagent_on;
%ignore dagent_update;
%ignore dagent_free;
%ignore dagent_item;
%ignore dagent_handler;


/* Blocking call that must not hold the GIL. */
%exception dagent_wait_ready {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
/* dagent_tree(_with) waits for the answer, dagent_node_tree for the node's event loop. */
%exception dagent_tree {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
%exception dagent_tree_with {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
%exception dagent_node_tree {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
/* Subscribe and unsubscribe wait for the node's event loop. */
%exception dagent_subscribe {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
%exception dagent_unsubscribe {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
/* Publish blocks only while the send window is full (send_window_bytes): release the GIL
   then, and only then (the check is one lock; the common call keeps the GIL). send() below
   does the same. */
%exception dagent_publish {
    if (dagent_send_would_block(arg1, arg4)) {
        Py_BEGIN_ALLOW_THREADS
        $action
        Py_END_ALLOW_THREADS
    } else {
        $action
    }
}
/* Destroy joins the event loop thread: release the GIL too. */
%exception dagent_destroy {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}

%include "cdagent.h"

%native(set_error_factory) PyObject *set_error_factory(PyObject *self, PyObject *args);
%native(wait) PyObject *py_wait(PyObject *self, PyObject *args);
%native(take) PyObject *py_take(PyObject *self, PyObject *args);

%{
static dagent_node *node_arg(PyObject *obj) {
    void *p = NULL;
    if (!SWIG_IsOK(SWIG_ConvertPtr(obj, &p, SWIGTYPE_p_dagent_node, 0)) || !p) {
        PyErr_SetString(PyExc_TypeError, "expected a dagent node (from dagent_create)");
        return NULL;
    }
    return (dagent_node *)p;
}

/* set_error_factory(fn): fn(code, reason) -> exception instance */
static PyObject *set_error_factory(PyObject *self, PyObject *args) {
    PyObject *fn;
    if (!PyArg_ParseTuple(args, "O:set_error_factory", &fn)) return NULL;
    Py_XINCREF(fn);
    Py_XSETREF(dagent_error_factory, fn);
    Py_RETURN_NONE;
}

/* The reply of request(): dagent_request_into asks for its memory once the answer is there;
 * this takes the GIL back (released while waiting) and makes the bytes object, so the one
 * copy is from the node's read buffer into the bytes. */
struct reply_bytes {
    PyThreadState *saved;   /* the released thread state; NULL once the GIL is held again */
    PyObject *bytes;
};

static void *reply_bytes_alloc(void *user, size_t len) {
    struct reply_bytes *r = (struct reply_bytes *)user;
    PyEval_RestoreThread(r->saved);
    r->saved = NULL;
    r->bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    return r->bytes ? PyBytes_AS_STRING(r->bytes) : NULL;
}

/* The destination argument of send, request and respond: the str's cached UTF-8 (no copy, unlike
 * SWIG's conversion, which makes a bytes object and then a malloc'd string on every call). */
static const char *dst_arg(const char *what, PyObject *obj) {
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: the destination must be a str, not %.80s", what, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    Py_ssize_t len;
    const char *dst = PyUnicode_AsUTF8AndSize(obj, &len);
    if (!dst) return NULL;
    if ((Py_ssize_t)strlen(dst) != len) {
        PyErr_Format(PyExc_ValueError, "%s: the destination contains a NUL character", what);
        return NULL;
    }
    return dst;
}

/* A message type argument: an int that fits in 32 bits. */
static int type_arg(const char *what, PyObject *obj, uint32_t *out) {
    unsigned long type = PyLong_AsUnsignedLong(obj);
    if (type == (unsigned long)-1 && PyErr_Occurred()) return -1;
    if (type > 0xFFFFFFFFUL) {
        PyErr_Format(PyExc_OverflowError, "%s: message type %lu does not fit in 32 bits", what, type);
        return -1;
    }
    *out = (uint32_t)type;
    return 0;
}

/* request(node, dst, type, data, timeout) -> bytes; the GIL is released while waiting. The
 * arguments come as a vector (METH_FASTCALL: no tuple to parse). Registered at module init. */
static PyObject *py_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "request(node, dst, type, data, timeout) takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    dagent_node *node = node_arg(args[0]);
    if (!node) return NULL;
    const char *dst = dst_arg("request", args[1]);
    if (!dst) return NULL;
    uint32_t type;
    if (type_arg("request", args[2], &type) < 0) return NULL;
    double timeout = PyFloat_AsDouble(args[4]);
    if (timeout == -1.0 && PyErr_Occurred()) return NULL;
    Py_buffer data;
    if (PyObject_GetBuffer(args[3], &data, PyBUF_SIMPLE) != 0) return NULL;
    struct reply_bytes r = {NULL, NULL};
    r.saved = PyEval_SaveThread();
    int rc = dagent_request_into(node, dst, type, data.buf, (size_t)data.len, timeout, reply_bytes_alloc, &r);
    if (r.saved) PyEval_RestoreThread(r.saved);
    PyBuffer_Release(&data);
    if (rc < 0) {
        if (!r.bytes && PyErr_Occurred()) return NULL;   /* the bytes could not be made (MemoryError) */
        Py_XDECREF(r.bytes);
        return dagent_raise(rc);
    }
    return r.bytes;
}

/* respond(node, dst, type, cookie, ok, data): dagent_respond without SWIG's conversions (the
 * answer of every request a handler gets; it never blocks). Registered at module init. */
static PyObject *py_respond(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "respond(node, dst, type, cookie, ok, data) takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    dagent_node *node = node_arg(args[0]);
    if (!node) return NULL;
    const char *dst = dst_arg("respond", args[1]);
    if (!dst) return NULL;
    uint32_t type;
    if (type_arg("respond", args[2], &type) < 0) return NULL;
    unsigned long long cookie = PyLong_AsUnsignedLongLong(args[3]);
    if (cookie == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    int ok = PyObject_IsTrue(args[4]);
    if (ok < 0) return NULL;
    Py_buffer data;
    if (PyObject_GetBuffer(args[5], &data, PyBUF_SIMPLE) != 0) return NULL;
    int rc = dagent_respond(node, dst, type, (uint64_t)cookie, ok, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    if (rc < 0) return dagent_raise(rc);
    Py_RETURN_NONE;
}

/* wait(node, timeout_ms) -> number of queued items; the GIL is released while waiting. */
static PyObject *py_wait(PyObject *self, PyObject *args) {
    PyObject *nodeobj;
    int timeout_ms, rc;
    if (!PyArg_ParseTuple(args, "Oi:wait", &nodeobj, &timeout_ms)) return NULL;
    dagent_node *node = node_arg(nodeobj);
    if (!node) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = dagent_wait(node, timeout_ms);
    Py_END_ALLOW_THREADS
    if (rc < 0) return dagent_raise(rc);
    return PyLong_FromLong(rc);
}

/* send(node, dst, type, data): dagent_send without SWIG's conversions, which copy the
 * destination name into a new bytes object and then into a malloc'd string on every call.
 * Here the name is the str's cached UTF-8 (no copy), the arguments come as a vector
 * (METH_FASTCALL: no tuple), and the GIL is released only while the send window is full
 * (dagent_send blocks then). Registered at module init (the %init block below). */
static PyObject *py_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "send(node, dst, type, data) takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    dagent_node *node = node_arg(args[0]);
    if (!node) return NULL;
    const char *dst = dst_arg("send", args[1]);
    if (!dst) return NULL;
    uint32_t type;
    if (type_arg("send", args[2], &type) < 0) return NULL;
    Py_buffer data;
    if (PyObject_GetBuffer(args[3], &data, PyBUF_SIMPLE) != 0) return NULL;
    int rc;
    if (dagent_send_would_block(node, (size_t)data.len)) {
        Py_BEGIN_ALLOW_THREADS
        rc = dagent_send(node, dst, type, data.buf, (size_t)data.len);
        Py_END_ALLOW_THREADS
    } else {
        rc = dagent_send(node, dst, type, data.buf, (size_t)data.len);
    }
    PyBuffer_Release(&data);
    if (rc < 0) return dagent_raise(rc);
    Py_RETURN_NONE;
}
static PyMethodDef dagent_fast_methods[] = {
    {"send", (PyCFunction)(void (*)(void))py_send, METH_FASTCALL, "send(node, dst, type, data): dagent_send"},
    {"request", (PyCFunction)(void (*)(void))py_request, METH_FASTCALL,
     "request(node, dst, type, data, timeout) -> bytes: dagent_request_into, the GIL released while waiting"},
    {"respond", (PyCFunction)(void (*)(void))py_respond, METH_FASTCALL,
     "respond(node, dst, type, cookie, ok, data): dagent_respond"},
    {NULL, NULL, 0, NULL}
};
/* A tuple subclass instance with `n` empty items (what tuple.__new__(cls, ...) makes, without
 * the temporary tuple it copies from); the caller fills every item. */
static PyObject *new_tuple_of(PyObject *cls, Py_ssize_t n) {
    if (cls == (PyObject *)&PyTuple_Type) return PyTuple_New(n);
    return ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, n);
}
#define TAKE_BATCH 256

/* take(node, max, message_class, dst, runtime) -> (messages, events, more)
 * messages: message_class tuples (src, dst, type, data, cookie, runtime);
 * events: ("reply", token, code, payload), ("timer", token) and
 * ("publish", subscription id, topic, src, data). */
static PyObject *py_take(PyObject *self, PyObject *args) {
    PyObject *nodeobj, *cls, *dst, *runtime;
    int max;
    if (!PyArg_ParseTuple(args, "OiOOO:take", &nodeobj, &max, &cls, &dst, &runtime)) return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "take: message_class must be a tuple subclass");
        return NULL;
    }
    dagent_node *node = node_arg(nodeobj);
    if (!node) return NULL;
    PyObject *msgs = PyList_New(0), *events = PyList_New(0);
    if (!msgs || !events) goto fail;
    dagent_item items[TAKE_BATCH];
    int total = 0, more = 0;
    PyObject *last_src = NULL;         /* the str of the latest message's source */
    const char *last_src_bytes = NULL;
    size_t last_src_len = 0;
    while (total < max) {
        int want = max - total < TAKE_BATCH ? max - total : TAKE_BATCH;
        int n = dagent_take(node, items, want);
        if (n < 0) { dagent_raise(n); goto fail; }
        last_src_bytes = NULL;   /* the previous take's bytes are gone: compare with the str's own */
        if (last_src) {
            Py_ssize_t len;
            last_src_bytes = PyUnicode_AsUTF8AndSize(last_src, &len);
            if (!last_src_bytes) goto fail;
            last_src_len = (size_t)len;
        }
        for (int i = 0; i < n; i++) {
            dagent_item *it = &items[i];
            PyObject *obj = NULL;
            if (it->kind == DAGENT_ITEM_MESSAGE) {
                /* A stream from one sender repeats its name: one str for the run. */
                if (!last_src || (size_t)it->src_len != last_src_len || memcmp(it->src, last_src_bytes, last_src_len) != 0) {
                    PyObject *s = PyUnicode_DecodeUTF8(it->src, (Py_ssize_t)it->src_len, "replace");
                    if (!s) goto fail;
                    Py_XSETREF(last_src, s);
                    last_src_bytes = it->src;   /* valid until the next dagent_take */
                    last_src_len = (size_t)it->src_len;
                }
                obj = new_tuple_of(cls, 6);
                if (!obj) goto fail;
                PyObject *data = PyBytes_FromStringAndSize((const char *)it->data, (Py_ssize_t)it->len);
                PyObject *type = PyLong_FromUnsignedLong(it->type);
                PyObject *cookie = PyLong_FromUnsignedLongLong(it->cookie);
                if (!data || !type || !cookie) {
                    Py_XDECREF(data); Py_XDECREF(type); Py_XDECREF(cookie); Py_DECREF(obj);
                    goto fail;
                }
                Py_INCREF(last_src); PyTuple_SET_ITEM(obj, 0, last_src);
                Py_INCREF(dst); PyTuple_SET_ITEM(obj, 1, dst);
                PyTuple_SET_ITEM(obj, 2, type);
                PyTuple_SET_ITEM(obj, 3, data);
                PyTuple_SET_ITEM(obj, 4, cookie);
                Py_INCREF(runtime); PyTuple_SET_ITEM(obj, 5, runtime);
                if (PyList_Append(msgs, obj) < 0) { Py_DECREF(obj); goto fail; }
            } else if (it->kind == DAGENT_ITEM_PUBLICATION) {
                obj = Py_BuildValue("(sKs#s#y#)", "publish", (unsigned long long)it->token,
                                    it->topic ? it->topic : "", (Py_ssize_t)it->topic_len,
                                    it->src, (Py_ssize_t)it->src_len, (const char *)it->data, (Py_ssize_t)it->len);
                if (!obj || PyList_Append(events, obj) < 0) { Py_XDECREF(obj); goto fail; }
            } else if (it->kind == DAGENT_ITEM_REPLY) {
                obj = Py_BuildValue("(sKiy#)", "reply", (unsigned long long)it->token, (int)it->code,
                                    (const char *)it->data, (Py_ssize_t)it->len);
                if (!obj || PyList_Append(events, obj) < 0) { Py_XDECREF(obj); goto fail; }
            } else {
                obj = Py_BuildValue("(sK)", "timer", (unsigned long long)it->token);
                if (!obj || PyList_Append(events, obj) < 0) { Py_XDECREF(obj); goto fail; }
            }
            Py_DECREF(obj);
        }
        total += n;
        if (n < want) break;
        if (total >= max) { more = dagent_wait(node, 0) > 0; break; }
    }
    {
        Py_XDECREF(last_src);
        PyObject *r = Py_BuildValue("(NNO)", msgs, events, more ? Py_True : Py_False);
        return r;
    }
fail:
    Py_XDECREF(last_src);
    Py_XDECREF(msgs);
    Py_XDECREF(events);
    return NULL;
}
%}
%init %{
    if (PyModule_AddFunctions(m, dagent_fast_methods) < 0) return NULL;
%}
