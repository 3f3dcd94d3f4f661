/*
 * plexus-logstamp: stamps each line of an app's stdout and stderr with the time it was captured.
 * The process backend (src/workloads/log-stamper.ts) starts one per app process: the app writes
 * into a pipe, this program reads it and appends `2026-12-06T01:22:33.123Z <line>\n` to the log
 * file it was handed as stdout (opened O_APPEND by the agent). It is a separate small program,
 * not the agent, because apps outlive the agent: their lines keep their times while it is down.
 * It ends when the last writer closes the pipe (the app and everything it started are gone).
 *
 * A line longer than LINE_MAX bytes is cut into stamped pieces; a partial line that sits for a
 * second (a prompt, a progress bar) is written as it is, so nothing waits for a newline forever.
 * Each record is one write() to an O_APPEND file, so records never interleave with the agent's
 * own markers. Termination signals are ignored: killing this program would make the app's next
 * write fail with EPIPE, so it leaves only with its input (or SIGKILL, as the whole unit goes).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384
#define STAMP_BYTES 25 /* "2026-12-06T01:22:33.123Z " */
#define IDLE_FLUSH_MS 1000

static char line[STAMP_BYTES + LINE_MAX_BYTES + 1];
static size_t used; /* bytes of the pending line, after its stamp */

static void stamp_now(char *out) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  /* The stamp is fixed-width, so the line's text always starts at STAMP_BYTES. */
  char ms[8];
  int m = (int)(tv.tv_usec / 1000);
  ms[0] = '.';
  ms[1] = (char)('0' + m / 100);
  ms[2] = (char)('0' + (m / 10) % 10);
  ms[3] = (char)('0' + m % 10);
  ms[4] = 'Z';
  ms[5] = ' ';
  memcpy(out, buf, 19);
  memcpy(out + 19, ms, 6);
}

/* Writes the pending line with its newline, retrying short writes; a dead log file drops it. */
static void flush_line(void) {
  line[STAMP_BYTES + used] = '\n';
  size_t len = STAMP_BYTES + used + 1, off = 0;
  while (off < len) {
    ssize_t w = write(STDOUT_FILENO, line + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  used = 0;
}

int main(void) {
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  char buf[65536];
  for (;;) {
    if (used > 0) {
      struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
      int r = poll(&p, 1, IDLE_FLUSH_MS);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) {
        flush_line();
        continue;
      }
    }
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) {
      if (used == 0) stamp_now(line);
      if (buf[i] == '\n') {
        flush_line();
        continue;
      }
      line[STAMP_BYTES + used++] = buf[i];
      if (used == LINE_MAX_BYTES) flush_line();
    }
  }
  if (used > 0) flush_line();
  return 0;
}
