/* The benchmark worker: the same tiny program for every supervisor. It records its own start and
 * exit times (CLOCK_REALTIME, ns) so gaps are measured exactly, whatever the supervisor logs.
 *   worker restart <file>           append "start <ns>", sleep 20 ms, append "exit <ns>", exit 1
 *   worker sleep [file]             append "start <ns>" if a file is given, then wait for SIGTERM (exit 0 at once)
 *   worker family <n>               n processes in the worker's group (a master and n - 1 children, as a
 *                                   gunicorn-style server has), all waiting for SIGTERM
 *   worker log <lines> json|plain   write that many ~150-byte lines to stdout, then wait for SIGTERM
 *   worker burst <lines> json|plain <file> <workers>
 *                                   append "start <ns>"; the first <workers> starts recorded in the file
 *                                   write their lines, append "exit <ns>" and exit 0 at once (the last lines
 *                                   are still in the pipe); later starts (restarts) only wait for SIGTERM
 * Every log line carries the marker "@L@", so it can be counted in any supervisor's output.
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

/* How many "start" records the file holds (this process's included). */
static long starts_recorded(const char *file) {
  FILE *f = fopen(file, "r");
  if (f == NULL) return 0;
  char line[128];
  long count = 0;
  while (fgets(line, sizeof line, f) != NULL) if (strncmp(line, "start ", 6) == 0) count++;
  fclose(f);
  return count;
}

static int write_all(const char *data, size_t length) {
  size_t off = 0;
  while (off < length) { ssize_t w = write(1, data + off, length - off); if (w <= 0) return -1; off += (size_t)w; }
  return 0;
}

/* Writes `lines` lines of ~150 bytes to stdout in 64 KiB batches. */
static int write_lines(long lines, int json) {
  static char buffer[1 << 16];
  size_t used = 0;
  const char *pad = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrst";
  for (long i = 1; i <= lines; i++) {
    char line[256];
    int n = json ? snprintf(line, sizeof line, "{\"level\":\"info\",\"seq\":%ld,\"msg\":\"@L@ %s\"}\n", i, pad)
                 : snprintf(line, sizeof line, "line %ld @L@ %s\n", i, pad);
    if (used + (size_t)n > sizeof buffer) {
      if (write_all(buffer, used) < 0) return -1;
      used = 0;
    }
    memcpy(buffer + used, line, (size_t)n);
    used += (size_t)n;
  }
  return write_all(buffer, used);
}

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
  if (strcmp(argv[1], "family") == 0 && argc >= 3) {
    long n = atol(argv[2]);
    if (n < 1 || n > 64) return 2;
    for (long i = 1; i < n; i++) {
      pid_t child = fork();
      if (child == 0) break; /* a child: inherits the SIGTERM handler and waits */
      if (child < 0) return 1;
    }
    for (;;) pause();
  }
  if (strcmp(argv[1], "log") == 0 && argc >= 4) {
    if (write_lines(atol(argv[2]), strcmp(argv[3], "json") == 0) < 0) return 1;
    for (;;) pause();
  }
  if (strcmp(argv[1], "burst") == 0 && argc >= 6) {
    record(argv[4], "start");
    if (starts_recorded(argv[4]) > atol(argv[5])) for (;;) pause();
    if (write_lines(atol(argv[2]), strcmp(argv[3], "json") == 0) < 0) return 1;
    record(argv[4], "exit");
    return 0;
  }
  return 2;
}
