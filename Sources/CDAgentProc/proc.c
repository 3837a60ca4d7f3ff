// Process helpers for the deploy supervisor: posix_spawn with the file and
// signal actions a supervised child needs, and the prctl calls (variadic in C,
// so not callable from Swift).
#define _GNU_SOURCE
#include "cdagent_proc.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int dagent_proc_spawn(const char *path, char *const argv[], char *const envp[],
                      const char *cwd, int out_fd, int new_session, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc) { posix_spawn_file_actions_destroy(&fa); return rc; }
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc && out_fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!rc && out_fd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!rc && cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc && !new_session) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                  (new_session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP));
    if (!rc) rc = posix_spawn(pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int dagent_proc_set_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno;
}

int dagent_proc_set_pdeathsig(int sig) {
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0 ? 0 : errno;
}
