#ifndef CDAGENT_PROC_H
#define CDAGENT_PROC_H
#include <sys/types.h>

/// Starts `path` with `argv`/`envp` in its own process group, stdin from
/// /dev/null, stdout and stderr onto `out_fd`, every other descriptor closed,
/// signal mask empty and every signal at its default disposition, working
/// directory `cwd` (NULL: unchanged). With `new_session` it starts a new
/// session instead (a daemon that outlives its terminal). Returns 0 and sets *pid, or an errno.
int dagent_proc_spawn(const char *path, char *const argv[], char *const envp[],
                      const char *cwd, int out_fd, int new_session, pid_t *pid);

/// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER).
/// Returns 0 or an errno.
int dagent_proc_set_subreaper(void);

/// Sets the parent-death signal of this process (PR_SET_PDEATHSIG). Returns 0 or an errno.
int dagent_proc_set_pdeathsig(int sig);

#endif
