// Most of CDAgentIPC is static inline in include/cdagent_ipc.h. The wake-up
// signal lives here (its handler must be one function for the whole process),
// and the thread-local marker of a loop's inline tasks.
#include "cdagent_ipc.h"

#include <string.h>

static void dagent_wake_handler(int sig) { (void)sig; }

int dagent_wake_signal(void) { return SIGRTMIN + 5; }

int dagent_install_wake_handler(void) {
    int sig = dagent_wake_signal();
    struct sigaction old;
    memset(&old, 0, sizeof old);
    if (sigaction(sig, NULL, &old) != 0) return -1;
    if (old.sa_handler == dagent_wake_handler) return 0;
    if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dagent_wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   // no SA_RESTART: a blocked msgrcv returns EINTR
    return sigaction(sig, &sa, NULL);
}

int dagent_wake_thread(pthread_t thread) { return pthread_kill(thread, dagent_wake_signal()); }

static __thread void *dagent_inline_loop_value;

void *dagent_inline_loop(void) { return dagent_inline_loop_value; }

void dagent_set_inline_loop(void *loop) { dagent_inline_loop_value = loop; }
