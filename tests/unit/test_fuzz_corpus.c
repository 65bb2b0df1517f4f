/*
 * test_fuzz_corpus.c: replays the fuzz seed corpus in the default build.
 *
 * Every file of fuzz/corpus/fuzz_open/ goes through fuzz_open's
 * LLVMFuzzerTestOneInput and every file of fuzz/corpus/fuzz_record/
 * through fuzz_record's, compiled here with the normal compiler (gcc) and
 * flags, so a corpus input that once crashed a target keeps being checked
 * by `make test` (release and ASan+UBSan builds) without clang.  A target
 * aborts on a failed check, which Criterion reports as a crash of the test.
 *
 * The two targets are included as source, each with its entry point
 * renamed; their helpers are static with distinct prefixes (fo_, fr_).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LLVMFuzzerTestOneInput fuzz_open_one
#include "../../fuzz/fuzz_open.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_record_one
#include "../../fuzz/fuzz_record.c"
#undef LLVMFuzzerTestOneInput

#define CORPUS_DIR WALRUS_TEST_DATA_DIR "/../fuzz/corpus"

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run fn over every regular file of dir (sorted); returns the count. */
static size_t replay(const char *target,
                     int (*fn)(const uint8_t *, size_t)) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", CORPUS_DIR, target);
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "corpus directory %s is missing", dir);
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof *names);
      cr_assert_not_null(names);
    }
    names[n] = strdup(de->d_name);
    cr_assert_not_null(names[n]);
    n++;
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, name_cmp);
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    unsigned char *buf = tu_read_file(tu_path(dir, names[i]), &len);
    /* Name the input first: a failed check aborts the process. */
    fprintf(stderr, "%s: %s (%zu bytes)\n", target, names[i], len);
    cr_assert_eq(fn(buf, len), 0, "%s/%s", target, names[i]);
    free(buf);
    free(names[i]);
  }
  free(names);
  return n;
}

Test(fuzz_corpus, open) {
  size_t n = replay("fuzz_open", fuzz_open_one);
  cr_assert_gt(n, 0, "no fuzz_open corpus");
  cr_log_info("fuzz_open: %zu corpus inputs replayed", n);
}

Test(fuzz_corpus, record) {
  size_t n = replay("fuzz_record", fuzz_record_one);
  cr_assert_gt(n, 0, "no fuzz_record corpus");
  cr_log_info("fuzz_record: %zu corpus inputs replayed", n);
}

/* Inputs no corpus file spells: empty, tiny, and garbage, through both. */
Test(fuzz_corpus, edge_inputs) {
  static const uint8_t junk[] = {0x00, 0xff, 0xff, 'W', 'A', 'L', 'R', 'U',
                                 'S', 'S', 'G', 0x20, 0x00, 0x00, 0x10};
  for (size_t n = 0; n <= sizeof junk; n++) {
    cr_assert_eq(fuzz_open_one(junk, n), 0);
    cr_assert_eq(fuzz_record_one(junk, n), 0);
  }
}
