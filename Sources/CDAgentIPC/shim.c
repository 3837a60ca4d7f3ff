// Everything in CDAgentIPC is static inline in include/cdagent_ipc.h; this
// file exists because SwiftPM needs one source file per C target.
#include "cdagent_ipc.h"
