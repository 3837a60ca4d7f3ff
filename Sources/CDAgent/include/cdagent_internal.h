/* Used by the Swift implementation only (not part of the public API). */
#ifndef CDAGENT_INTERNAL_H
#define CDAGENT_INTERNAL_H
#include <stddef.h>
/* Records the thread's last error; returns -code. */
int cdagent_fail(int code, const char *message, size_t len);
void cdagent_clear_error(void);
#endif
