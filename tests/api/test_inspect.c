/*
 * test_inspect.c: walrus_inspect(), walrus_verify() and
 * walrus_repair_plan(): what they report on healthy, torn and damaged
 * logs, that they change no byte of a log and work beside a writer, that
 * the plan is what salvage then does, and their errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

TestSuite(inspect, .init = tu_fixture_setup, .fini = tu_fixture_teardown);

/* A log of n entries in 4 KiB segments, closed. */
static void make_log(uint64_t n) {
  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.segment_bytes = 4096;
  walrus_t *w = tu_open(tu_dir, &cfg);
  tu_append_n(w, n, 7, 100);
  TU_OK(w, walrus_close(w));
}

/* Every file of the log, concatenated with its name: to compare. */
static char *snapshot(size_t *len) {
  char **names;
  size_t n = tu_segments(tu_dir, &names), total = 0;
  char *all = NULL;
  const char *extra[] = {"META", "DURABLE"};
  for (size_t i = 0; i < n + 2; i++) {
    const char *name = i < n ? names[i] : extra[i - n];
    size_t flen = 0;
    unsigned char *b = tu_read_file(tu_path(tu_dir, name), &flen);
    all = realloc(all, total + strlen(name) + flen);
    memcpy(all + total, name, strlen(name));
    total += strlen(name);
    if (b != NULL) memcpy(all + total, b, flen);
    total += flen;
    free(b);
  }
  tu_strv_free(names);
  *len = total;
  return all;
}

typedef struct found_s {
  int n;                         /* findings */
  walrus_finding_kind_t kind[8]; /* their kinds */
  char file[8][64];              /* their files */
  uint64_t offset[8];            /* their offsets */
  uint64_t progress;             /* last done reported */
} found_t;

static int on_finding(void *ud, const walrus_finding_t *f) {
  found_t *r = ud;
  if (r->n < 8) {
    r->kind[r->n] = f->kind;
    snprintf(r->file[r->n], sizeof r->file[0], "%s", f->file);
    r->offset[r->n] = f->offset;
  }
  r->n++;
  return 0;
}

static void on_progress(void *ud, uint64_t done, uint64_t total) {
  found_t *r = ud;
  cr_assert_leq(done, total);
  cr_assert_geq(done, r->progress);
  r->progress = done;
}

Test(inspect, healthy_log) {
  make_log(200);
  size_t before_len, after_len;
  char *before = snapshot(&before_len);
  walrus_inspect_t info;
  char msg[256];
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, msg, sizeof msg));
  cr_assert_eq(info.first_index, 1);
  cr_assert_eq(info.last_index, 200);
  cr_assert_eq(info.next_index, 201);
  cr_assert_eq(info.durable_next, 201);
  cr_assert_eq(info.tail_state, WALRUS_TAIL_CLEAN);
  cr_assert_eq(info.damaged, 0);
  cr_assert_gt(info.nsegments, 2);
  uint64_t next = 1, bytes = 0;
  for (size_t i = 0; i < info.nsegments; i++) {
    const walrus_segment_info_t *s = &info.segments[i];
    cr_assert_eq(s->first_index, next, "segment %zu", i);
    cr_assert_eq(s->state, i + 1 < info.nsegments ? WALRUS_SEGMENT_SEALED
                                                  : WALRUS_SEGMENT_TAIL);
    cr_assert_eq(s->bytes, (uint64_t)tu_file_size(tu_path(tu_dir, s->name)));
    next += s->count;
    bytes += s->bytes;
  }
  cr_assert_eq(next, 201);
  cr_assert_eq(info.total_bytes, bytes);
  walrus_inspect_free(&info);

  found_t f = {0};
  walrus_verify_result_t r;
  TU_OK(NULL, walrus_verify(tu_dir, NULL, on_finding, on_progress, &f, &r, msg,
                            sizeof msg));
  cr_assert_eq(f.n, 0);
  cr_assert_eq(r.damage, 0);
  cr_assert_eq(r.torn, 0);
  cr_assert_eq(r.entries, 200);
  cr_assert_eq(r.bytes, bytes);
  cr_assert_eq(f.progress, bytes);

  walrus_repair_plan_t plan;
  TU_OK(NULL, walrus_repair_plan(tu_dir, NULL, &plan, msg, sizeof msg));
  cr_assert_eq(plan.nsteps, 0);
  cr_assert_eq(plan.last_index, 200);
  walrus_repair_plan_free(&plan);

  char *after = snapshot(&after_len);
  cr_assert_eq(before_len, after_len);
  cr_assert(memcmp(before, after, before_len) == 0, "a byte changed");
  free(before);
  free(after);
}

Test(inspect, beside_a_writer) {
  walrus_t *w = tu_open(tu_dir, NULL);
  tu_append_n(w, 10, 1, 50);
  walrus_inspect_t info;
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, NULL, 0));
  cr_assert_eq(info.last_index, 10);
  cr_assert_eq(info.durable_next, 11);
  walrus_inspect_free(&info);
  walrus_verify_result_t r;
  TU_OK(NULL, walrus_verify(tu_dir, NULL, NULL, NULL, NULL, &r, NULL, 0));
  cr_assert_eq(r.damage, 0);
  /* The writer was not disturbed. */
  tu_append_n(w, 1, 1, 50);
  TU_OK(w, walrus_close(w));
}

Test(inspect, torn_tail) {
  make_log(200);
  walrus_inspect_t info;
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, NULL, 0));
  walrus_segment_info_t tail = info.segments[info.nsegments - 1];
  walrus_inspect_free(&info);
  const char *path = tu_path(tu_dir, tail.name);
  tu_truncate(path, tail.bytes - 3);
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, NULL, 0));
  cr_assert_eq(info.tail_state, WALRUS_TAIL_TORN);
  cr_assert_eq(info.damaged, 0);
  cr_assert_eq(info.tail_cut_offset + info.tail_cut_bytes, tail.bytes - 3);
  uint64_t cut = info.tail_cut_offset;
  walrus_inspect_free(&info);
  found_t f = {0};
  walrus_verify_result_t r;
  TU_OK(NULL, walrus_verify(tu_dir, NULL, on_finding, NULL, &f, &r, NULL, 0));
  cr_assert_eq(f.n, 1);
  cr_assert_eq(f.kind[0], WALRUS_FINDING_TORN);
  cr_assert_str_eq(f.file[0], tail.name);
  cr_assert_eq(r.damage, 0);
  cr_assert_eq(r.torn, 1);
  /* What an open then does is what inspect said. */
  walrus_t *w = tu_open(tu_dir, NULL);
  TU_OK(w, walrus_close(w));
  cr_assert_leq((uint64_t)tu_file_size(path), tail.bytes);
  cr_assert_geq((uint64_t)tu_file_size(path), cut);
}

Test(inspect, damage_and_the_plan_salvage_follows) {
  make_log(200);
  walrus_inspect_t info;
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, NULL, 0));
  cr_assert_gt(info.nsegments, 2);
  walrus_segment_info_t s1 = info.segments[1];
  size_t nseg = info.nsegments;
  walrus_inspect_free(&info);
  /* A bit inside an early record of the second (sealed) segment. */
  tu_flip_bit(tu_path(tu_dir, s1.name), 64 + 60, 3);
  found_t f = {0};
  walrus_verify_result_t r;
  TU_OK(NULL, walrus_verify(tu_dir, NULL, on_finding, NULL, &f, &r, NULL, 0));
  cr_assert_eq(r.damage, 1);
  cr_assert_eq(f.kind[0], WALRUS_FINDING_DAMAGE);
  cr_assert_str_eq(f.file[0], s1.name);
  cr_assert_leq(f.offset[0], 64 + 60); /* the record holding the bit */
  cr_assert_geq(f.offset[0], 64);

  walrus_repair_plan_t plan;
  TU_OK(NULL, walrus_repair_plan(tu_dir, NULL, &plan, NULL, 0));
  cr_assert_eq(plan.nsteps, nseg - 1); /* cut s1, move the rest */
  cr_assert_eq(plan.steps[0].kind, WALRUS_REPAIR_CUT);
  cr_assert_str_eq(plan.steps[0].file, s1.name);
  cr_assert_eq(plan.steps[0].offset, f.offset[0]);
  for (size_t i = 1; i < plan.nsteps; i++)
    cr_assert_eq(plan.steps[i].kind, WALRUS_REPAIR_MOVE);
  cr_assert_geq(plan.last_index, s1.first_index - 1);
  cr_assert_lt(plan.last_index, s1.first_index + s1.count);
  char side[128];
  snprintf(side, sizeof side, "%s", plan.steps[0].dest);
  uint64_t cut = plan.steps[0].offset, last = plan.last_index;
  walrus_repair_plan_free(&plan);

  walrus_config_t cfg;
  walrus_config_default(&cfg);
  cfg.recovery = WALRUS_RECOVER_SALVAGE;
  walrus_t *w = tu_open(tu_dir, &cfg);
  cr_assert_eq(walrus_last_index(w), last);
  TU_OK(w, walrus_close(w));
  cr_assert_eq((uint64_t)tu_file_size(tu_path(tu_dir, s1.name)), cut);
  cr_assert_eq((uint64_t)tu_file_size(tu_path(tu_dir, side)), s1.bytes - cut);
  TU_OK(NULL, walrus_verify(tu_dir, NULL, NULL, NULL, NULL, &r, NULL, 0));
  cr_assert_eq(r.damage, 0);
}

Test(inspect, errors) {
  walrus_inspect_t info;
  char msg[256];
  TU_EXPECT(WALRUS_EINVAL, walrus_inspect(NULL, NULL, &info, NULL, 0));
  TU_EXPECT(WALRUS_EINVAL, walrus_inspect(tu_dir, NULL, NULL, NULL, 0));
  TU_EXPECT(WALRUS_EIO, walrus_inspect(tu_path(tu_tmp, "none"), NULL, &info,
                                       msg, sizeof msg));
  cr_assert(strstr(msg, "none") != NULL, "%s", msg);
  tu_write_file(tu_path(tu_tmp, "file"), "x", 1);
  TU_EXPECT(WALRUS_EIO,
            walrus_inspect(tu_path(tu_tmp, "file"), NULL, &info, NULL, 0));
  make_log(5);
  tu_flip_bit(tu_path(tu_dir, "META"), 20, 0);
  TU_OK(NULL, walrus_inspect(tu_dir, NULL, &info, NULL, 0));
  cr_assert_eq(info.damaged, 1);
  cr_assert(strstr(info.problem, "META") != NULL, "%s", info.problem);
  walrus_inspect_free(&info);
  walrus_repair_plan_t plan;
  TU_EXPECT(WALRUS_ECORRUPT, walrus_repair_plan(tu_dir, NULL, &plan, NULL, 0));
  walrus_inspect_free(NULL);
  walrus_repair_plan_free(NULL);
}
