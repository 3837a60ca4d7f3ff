/* The C half of CDAgent: the thread-local last error and small helpers.
 * Everything else is Swift (Sources/CDAgentCore/CAPI.swift, @_cdecl). */
#include "cdagent.h"
#include "cdagent_internal.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[2048];
static _Thread_local int last_code;

const char *dagent_last_error(void) { return last_error; }

int dagent_last_error_code(void) { return last_code; }

int cdagent_fail(int code, const char *message, size_t len) {
    if (len >= sizeof last_error) len = sizeof last_error - 1;
    memcpy(last_error, message, len);
    last_error[len] = 0;
    last_code = code;
    return -code;
}

void cdagent_clear_error(void) {
    last_error[0] = 0;
    last_code = 0;
}

void dagent_free(void *p) { free(p); }
