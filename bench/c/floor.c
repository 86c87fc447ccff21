/* The physical floor for the restart gap: a bare fork+exec+waitpid loop running the same worker. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
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
