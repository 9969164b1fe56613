/*
 * fs_decode_dump.c - prints tm__fs_decode's result for each file named on
 * the command line, one JSON line per file: rc, format, python, body (hex),
 * dropped, headers ([key hex, value hex] pairs). tests/faststream_peer.py
 * check-decoder compares these lines with the Python library's own parse
 * (the test test_faststream_vs_python). Buffers are sized exactly by the
 * documented bounds, so ASan builds also check them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faststream.h"

static void put_hex(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static int dump(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t cap = 1 << 16, len = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0)
    if ((len += got) == cap) buf = realloc(buf, cap *= 2);
  fclose(f);
  if (!buf) return -1;
  timers_header *h = malloc(TM_FS_HEADERS_BOUND(len) * sizeof *h);
  char *strings = malloc(TM_FS_STRINGS_SIZE(len));
  if (!h || !strings) return -1;
  tm_fs_message m;
  int rc = tm__fs_decode(buf, len, &m, h, strings);
  printf("{\"rc\": %d, \"format\": %d, \"python\": %d, \"body\": \"", rc,
         (int)m.format, (int)m.python);
  put_hex(m.body, m.body_len);
  printf("\", \"dropped\": %zu, \"headers\": [", m.headers_dropped);
  for (size_t i = 0; i < m.header_count; i++) {
    printf("%s[\"", i ? ", " : "");
    put_hex(h[i].key, strlen(h[i].key));
    printf("\", \"");
    put_hex(h[i].value, strlen(h[i].value));
    printf("\"]");
  }
  printf("]}\n");
  free(strings);
  free(h);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (dump(argv[i]) != 0) {
      fprintf(stderr, "fs_decode_dump: cannot read %s\n", argv[i]);
      return 1;
    }
  return 0;
}
