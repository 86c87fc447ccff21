/* The health-check benchmark's worker: the least an HTTP health endpoint can be, so that what is
 * measured is Monoceros, not the workers. It listens on 127.0.0.1 at the port in
 * MONOCEROS_HEALTH_PORT (what Monoceros gives worker i: start_port + i) and answers one connection
 * at a time with an empty response, then closes it.
 *   health serve                 200 to every request, until SIGTERM (exit 0 at once)
 *   health fail <ms> <file>      200 until <ms> after start, then 503; appends "fail <ns> <pid>" just before it
 *                                sends each 503, and "sigterm <ns> <pid>" when SIGTERM comes
 *   health memory <MiB> <file>   allocates and touches <MiB> MiB, serves nothing; appends
 *                                "sigterm <ns> <pid>" when SIGTERM comes
 * Times are CLOCK_REALTIME in ns, comparable with the epoch time of Monoceros's records.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/** A request's head is read until its blank line, at most this many bytes. */
#define REQUEST_MAX_BYTES 4096
#define MEMORY_MAX_MIB 4096

static const char *times_file = NULL;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Decimal digits of value at the end of out; returns where they start. Async-signal-safe. */
static char *digits(long long value, char *end) {
  char *p = end;
  if (value == 0) *--p = '0';
  while (value > 0) { *--p = (char)('0' + value % 10); value /= 10; }
  return p;
}

/* Appends "<what> <ns> <pid>\n" to the times file, with async-signal-safe calls only (it runs in the SIGTERM handler). */
static void record(const char *what, long long ns) {
  if (times_file == NULL) return;
  char line[96];
  size_t used = 0;
  char number[24];
  const char *parts[3];
  parts[0] = what;
  parts[1] = digits(ns, number + sizeof number);
  size_t nsLength = (size_t)(number + sizeof number - parts[1]);
  char pidNumber[24];
  parts[2] = digits((long long)getpid(), pidNumber + sizeof pidNumber);
  size_t lengths[3] = { strlen(what), nsLength, (size_t)(pidNumber + sizeof pidNumber - parts[2]) };
  for (int i = 0; i < 3; i++) {
    if (used + lengths[i] + 1 > sizeof line) return;
    memcpy(line + used, parts[i], lengths[i]);
    used += lengths[i];
    line[used++] = i < 2 ? ' ' : '\n';
  }
  int fd = open(times_file, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  if (write(fd, line, used) < 0) { /* nothing to do */ }
  close(fd);
}

static void on_term(int sig) {
  (void)sig;
  record("sigterm", now_ns());
  _exit(0);
}

static int listen_on_health_port(void) {
  const char *text = getenv("MONOCEROS_HEALTH_PORT");
  long port = text == NULL ? 0 : atol(text);
  if (port < 1 || port > 65535) return -1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int on = 1;
  /* The previous incarnation's connections may still be in TIME_WAIT on this port. */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons((unsigned short)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, 64) < 0) return -1;
  return fd;
}

/* Reads the request head (until its blank line, EOF, an error, 1 s or REQUEST_MAX_BYTES), so closing sends FIN, not RST. */
static void read_request(int fd) {
  struct timeval wait = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  char head[REQUEST_MAX_BYTES + 1];
  size_t used = 0;
  while (used < REQUEST_MAX_BYTES) {
    ssize_t n = read(fd, head + used, REQUEST_MAX_BYTES - used);
    if (n <= 0) return;
    used += (size_t)n;
    head[used] = '\0';
    if (strstr(head, "\r\n\r\n") != NULL) return;
  }
}

static int serve(long fail_after_ms) {
  static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  static const char failing[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  int listener = listen_on_health_port();
  if (listener < 0) return 1;
  long long fail_at_ns = fail_after_ms < 0 ? -1 : now_ns() + fail_after_ms * 1000000LL;
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) continue;
    read_request(fd);
    long long ns = now_ns();
    int fails = fail_at_ns >= 0 && ns >= fail_at_ns;
    if (fails) {
      /* Recorded before it is sent: once sent, SIGTERM may come before a record written after it. */
      record("fail", ns);
      if (write(fd, failing, sizeof failing - 1) < 0) { /* the check sees the failure as it may */ }
    } else if (write(fd, ok, sizeof ok - 1) < 0) { /* same */ }
    close(fd);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  signal(SIGTERM, on_term);
  if (strcmp(argv[1], "serve") == 0) return serve(-1);
  if (strcmp(argv[1], "fail") == 0 && argc >= 4) {
    times_file = argv[3];
    return serve(atol(argv[2]));
  }
  if (strcmp(argv[1], "memory") == 0 && argc >= 4) {
    times_file = argv[3];
    long mib = atol(argv[2]);
    if (mib < 1 || mib > MEMORY_MAX_MIB) return 2;
    size_t bytes = (size_t)mib << 20;
    char *memory = malloc(bytes);
    if (memory == NULL) return 1;
    /* Touched page by page, through volatile so the compiler cannot drop it: resident, not only reserved. */
    for (size_t i = 0; i < bytes; i += 4096) ((volatile char *)memory)[i] = 1;
    for (;;) pause();
  }
  return 2;
}
