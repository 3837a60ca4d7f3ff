// System V IPC and memory-ordering helpers for dagent's message-queue links.
//
// Swift reaches msgsnd/msgrcv/shmat through Glibc, but two things are easier
// and clearer in C: the `struct msgbuf` layout (a `long` type followed by the
// bytes), and the atomic loads, stores and fences of the seqlock that guards
// the shared-memory name table (readers in other processes run while the agent
// writes). Everything here is `static inline` and stateless, except the
// wake-up signal of a message-queue event loop (shim.c).
#ifndef CDAGENT_IPC_H
#define CDAGENT_IPC_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/types.h>

/// msgsnd of `size` bytes at `msg` (a `long` mtype followed by the text).
/// Returns 0, or -errno.
static inline int dagent_msgsnd(int qid, const void *msg, size_t size, int nowait) {
    int rc = msgsnd(qid, msg, size, nowait ? IPC_NOWAIT : 0);
    return rc == 0 ? 0 : -errno;
}

/// msgrcv into `msg` (room for a `long` plus `capacity` bytes). Returns the
/// text size, or -errno (ENOMSG when `nowait` and nothing is there).
static inline long dagent_msgrcv(int qid, void *msg, size_t capacity, long type, int nowait) {
    ssize_t n = msgrcv(qid, msg, capacity, type, nowait ? IPC_NOWAIT : 0);
    return n >= 0 ? (long)n : -(long)errno;
}

/// Removes every message of `type` without blocking (MSG_NOERROR: any size).
/// Returns how many were removed.
static inline long dagent_msgq_purge(int qid, long type, void *scratch, size_t capacity) {
    long n = 0;
    for (;;) {
        ssize_t r = msgrcv(qid, scratch, capacity, type, IPC_NOWAIT | MSG_NOERROR);
        if (r >= 0) { n++; continue; }
        if (errno == EINTR) continue;
        return n;
    }
}

/// Queue counters: bytes and messages queued, the byte limit. Returns 0 or -errno.
static inline int dagent_msgq_stat(int qid, uint64_t *cbytes, uint64_t *qnum, uint64_t *qbytes) {
    struct msqid_ds ds;
    if (msgctl(qid, IPC_STAT, &ds) != 0) return -errno;
    *cbytes = (uint64_t)ds.__msg_cbytes;
    *qnum = (uint64_t)ds.msg_qnum;
    *qbytes = (uint64_t)ds.msg_qbytes;
    return 0;
}

/// Raises (or lowers) the queue's byte limit. Above kernel.msgmnb this needs
/// CAP_SYS_RESOURCE; returns 0 or -errno (EPERM when not permitted).
static inline int dagent_msgq_set_qbytes(int qid, uint64_t qbytes) {
    struct msqid_ds ds;
    if (msgctl(qid, IPC_STAT, &ds) != 0) return -errno;
    ds.msg_qbytes = (msglen_t)qbytes;
    return msgctl(qid, IPC_SET, &ds) == 0 ? 0 : -errno;
}

/// Removes a queue. Returns 0 or -errno.
static inline int dagent_msgq_remove(int qid) {
    return msgctl(qid, IPC_RMID, NULL) == 0 ? 0 : -errno;
}

/// Removes a shared-memory segment (it goes away once the last process detaches).
static inline int dagent_shm_remove(int shmid) {
    return shmctl(shmid, IPC_RMID, NULL) == 0 ? 0 : -errno;
}

/// Size and attach count of a segment. Returns 0 or -errno.
static inline int dagent_shm_stat(int shmid, uint64_t *size, uint64_t *nattch) {
    struct shmid_ds ds;
    if (shmctl(shmid, IPC_STAT, &ds) != 0) return -errno;
    *size = (uint64_t)ds.shm_segsz;
    *nattch = (uint64_t)ds.shm_nattch;
    return 0;
}

/// shmat; returns NULL and sets *err on failure.
static inline void *dagent_shmat(int shmid, int readonly, int *err) {
    void *p = shmat(shmid, NULL, readonly ? SHM_RDONLY : 0);
    if (p == (void *)-1) { *err = errno; return NULL; }
    *err = 0;
    return p;
}

// MARK: memory ordering (seqlock)

static inline uint64_t dagent_load_acquire_u64(const void *p) {
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}

static inline uint64_t dagent_load_relaxed_u64(const void *p) {
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
}

static inline void dagent_store_release_u64(void *p, uint64_t v) {
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

static inline void dagent_store_relaxed_u64(void *p, uint64_t v) {
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
}

/// Orders the reads before it against the reads after it (seqlock reader, before re-reading the sequence).
static inline void dagent_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

/// Orders the writes before it against the writes after it (seqlock writer, after marking the table busy).
static inline void dagent_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }

/// The signal that interrupts a message-queue event loop blocked in msgrcv
/// when its wake message cannot be queued (the queue is full): SIGRTMIN+5.
int dagent_wake_signal(void);

/// Installs a no-op handler for `dagent_wake_signal()` without SA_RESTART, so
/// that a blocked msgrcv returns EINTR. Idempotent. Returns 0, or -1 if the
/// process already handles that signal itself (then it is left alone).
int dagent_install_wake_handler(void);

/// Sends the wake signal to `thread`. Returns 0 or an errno value.
int dagent_wake_thread(pthread_t thread);

/// The event loop that this thread runs a task for inline (a loop that has
/// ended runs late tasks on the caller's thread), or NULL.
void *dagent_inline_loop(void);
void dagent_set_inline_loop(void *loop);

#endif
