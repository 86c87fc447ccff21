/* The benchmark worker: the same tiny program for every supervisor. It records its own start and
 * exit times (CLOCK_REALTIME, ns) so gaps are measured exactly, whatever the supervisor logs.
 *   worker restart <file>           append "start <ns>", sleep 20 ms, append "exit <ns>", exit 1
 *   worker sleep [file]             append "start <ns>" if a file is given, then wait for SIGTERM (exit 0 at once)
 *   worker log <lines> json|plain   write that many ~150-byte lines to stdout, then wait for SIGTERM
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void record(const char *file, const char *what) {
  char line[64];
  int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  int n = snprintf(line, sizeof line, "%s %lld %d\n", what, now_ns(), (int)getpid());
  if (write(fd, line, n) < 0) { /* nothing to do */ }
  close(fd);
}

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  signal(SIGTERM, on_term);
  if (strcmp(argv[1], "restart") == 0 && argc >= 3) {
    record(argv[2], "start");
    struct timespec wait = {0, 20 * 1000 * 1000};
    nanosleep(&wait, NULL);
    record(argv[2], "exit");
    return 1;
  }
  if (strcmp(argv[1], "sleep") == 0) {
    if (argc >= 3) record(argv[2], "start");
    for (;;) pause();
  }
  if (strcmp(argv[1], "log") == 0 && argc >= 4) {
    long lines = atol(argv[2]);
    int json = strcmp(argv[3], "json") == 0;
    static char buffer[1 << 16];
    size_t used = 0;
    const char *pad = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw";
    for (long i = 1; i <= lines; i++) {
      char line[256];
      int n = json ? snprintf(line, sizeof line, "{\"level\":\"info\",\"seq\":%ld,\"msg\":\"%s\"}\n", i, pad)
                   : snprintf(line, sizeof line, "line %ld %s\n", i, pad);
      if (used + (size_t)n > sizeof buffer) {
        size_t off = 0;
        while (off < used) { ssize_t w = write(1, buffer + off, used - off); if (w <= 0) return 1; off += (size_t)w; }
        used = 0;
      }
      memcpy(buffer + used, line, (size_t)n);
      used += (size_t)n;
    }
    size_t off = 0;
    while (off < used) { ssize_t w = write(1, buffer + off, used - off); if (w <= 0) return 1; off += (size_t)w; }
    for (;;) pause();
  }
  return 2;
}
