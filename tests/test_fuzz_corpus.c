/*
 * test_fuzz_corpus.c - runs both fuzz targets (tests/fuzz/fuzz_faststream.c
 * for tm__fs_decode, tests/fuzz/fuzz_envelope.c for tm__envelope_decode)
 * over every file of tests/fuzz/corpus, so the corpus and the targets'
 * invariant checks run in every build, with gcc, without libFuzzer. A
 * failed invariant prints file:line and aborts.
 *
 * The corpus is shared by both targets: seeds (V1 and JSON FastStream
 * envelopes, engine envelopes, truncations, garbage) plus the inputs the
 * fuzzers found worth keeping; file names say which.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "test_util.h"

#define LLVMFuzzerTestOneInput fuzz_faststream_one
#include "fuzz/fuzz_faststream.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_envelope_one
#include "fuzz/fuzz_envelope.c"
#undef LLVMFuzzerTestOneInput

/* Reads a whole file; NULL if it is not a regular file. */
static uint8_t *read_all(const char *path, size_t *len) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
  FILE *f = fopen(path, "rb");
  CHECK_MSG(f != NULL, "cannot open %s", path);
  uint8_t *data = xrealloc(NULL, (size_t)st.st_size);
  *len = fread(data, 1, (size_t)st.st_size, f);
  CHECK_EQ_INT(*len, st.st_size);
  fclose(f);
  return data;
}

static void test_corpus(void) {
  const char *dir = TIMERS_SOURCE_DIR "/tests/fuzz/corpus";
  DIR *d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  size_t files = 0, bytes = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    size_t len = 0;
    uint8_t *data = read_all(path, &len);
    if (!data) continue;
    fuzz_faststream_one(data, len);
    fuzz_envelope_one(data, len);
    free(data);
    files++;
    bytes += len;
  }
  closedir(d);
  printf("   %zu corpus files, %zu bytes\n", files, bytes);
  CHECK(files >= 5);
}

int main(void) {
  TEST_RUN(test_corpus);
  return 0;
}
