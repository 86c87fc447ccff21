/* The physical floors, with the same worker as every supervisor:
 *   floor <worker> <file> <restarts>          a bare fork+exec+waitpid loop (the restart gap's floor)
 *   floor supervise <n> <worker> [args...]    the least a supervisor can do: fork and exec n workers, each
 *                                             in its own session, then sleep; on SIGTERM, SIGTERM every
 *                                             group, reap all, exit (the floor for start-up, shutdown and idle)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int supervise(int n, char **argv) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old);
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  if (pids == NULL) return 1;
  for (int i = 0; i < n; i++) {
    pids[i] = fork();
    if (pids[i] == 0) {
      sigprocmask(SIG_SETMASK, &old, NULL);
      setsid();
      execv(argv[0], argv);
      _exit(127);
    }
  }
  int sig;
  sigwait(&term, &sig);
  for (int i = 0; i < n; i++) if (pids[i] > 0) kill(-pids[i], SIGTERM);
  while (wait(NULL) > 0) {}
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "supervise") == 0) return supervise(atoi(argv[2]), argv + 3);
  if (argc < 4) return 2;
  int restarts = atoi(argv[3]);
  for (int i = 0; i <= restarts; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      execl(argv[1], argv[1], "restart", argv[2], (char *)NULL);
      _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
  }
  return 0;
}
