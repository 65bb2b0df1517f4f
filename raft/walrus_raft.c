/*
 * walrus_raft.c: the struct raft_io of libwalrus-raft.  It owns the node's
 * storage (a walrus log, DIR/state, DIR/snapshot: store.c) and forwards
 * the network and time half (start, send, time, random, close) to an inner
 * raft_uv with its TCP transport.
 *
 * Threads.  raft calls every method on the loop thread.  Appends, snapshot
 * puts and snapshot gets are queued, in the order raft made them, for one
 * writer thread; it takes every append queued since its last round and
 * writes them as one walrus_write_batch() under WALRUS_SYNC_ALWAYS (one
 * fdatasync for all: group commit), then hands the finished requests back
 * through a uv_async_t, whose callback runs raft's callbacks on the loop
 * thread, in order.  So a callback never runs inside the call that made
 * the request, and never before the entries are durable.  set_term,
 * set_vote, truncate, bootstrap and recover are synchronous: they return
 * once what they changed is durable (truncate first waits for the writer
 * to finish what is queued, so the cut applies after it).
 *
 * Invariants.
 *  - The walrus log holds raft's entries index for index; its next index
 *    is the index raft's next append gets.
 *  - failed != 0 from the first storage failure on: nothing is written or
 *    acknowledged afterwards, and every storage call and send fails.
 *  - The writer thread is the only thread that writes the log while it is
 *    busy or has work queued; the loop thread writes it only when the
 *    queue is empty and the writer idle (truncate, bootstrap, recover).
 *
 * raft_init() sets io->data to the raft instance; the adapter's state is
 * in io->impl.  The inner raft_uv passes its own raft_io to the tick, recv
 * and close callbacks, so its data points to the adapter, and trampolines
 * call raft's callbacks with the outer raft_io.
 */
#include "walrus_raft.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "store.h"
#include "walrus_vfs.h"

enum { WR_APPEND = 1, WR_SNAP_PUT, WR_SNAP_GET };

/* One queued request. */
typedef struct wr_req {
  int kind;                      /* WR_APPEND, WR_SNAP_PUT, WR_SNAP_GET. */
  int status;                    /* raft code, set by the writer. */
  struct wr_req *next;           /* Next in its queue. */
  struct raft_io_append *append; /* WR_APPEND: raft's request. */
  const struct raft_entry *entries; /* WR_APPEND: valid until the cb. */
  unsigned n;                    /* WR_APPEND: number of entries. */
  raft_io_append_cb append_cb;   /* WR_APPEND: raft's callback. */
  struct raft_io_snapshot_put *put; /* WR_SNAP_PUT: raft's request. */
  raft_io_snapshot_put_cb put_cb;   /* WR_SNAP_PUT: raft's callback. */
  const struct raft_snapshot *snap; /* WR_SNAP_PUT: valid until the cb. */
  unsigned trailing;                /* WR_SNAP_PUT: entries to keep. */
  struct raft_io_snapshot_get *get; /* WR_SNAP_GET: raft's request. */
  raft_io_snapshot_get_cb get_cb;   /* WR_SNAP_GET: raft's callback. */
  struct raft_snapshot *loaded;     /* WR_SNAP_GET: the result. */
} wr_req_t;

typedef struct wr_io {
  struct raft_io *io;                  /* The outer raft_io (raft's). */
  struct raft_io inner;                /* raft_uv: network and time. */
  struct raft_uv_transport transport;  /* Its TCP transport. */
  int uv_ready;                        /* raft_uv_init() succeeded. */
  int tcp_ready;                       /* raft_uv_tcp_init() succeeded. */
  int inner_inited;                    /* inner.init() succeeded. */
  uv_loop_t *loop;                     /* raft's loop. */
  char dir[2048];                      /* The node directory. */
  char logdir[2100];                   /* DIR/log. */
  char uvdir[2100];                    /* DIR/uv. */
  walrus_config_t cfg;                 /* Options of the log. */
  walrus_raft_options_t opt;           /* Our options. */
  const walrus_vfs_t *vfs;             /* For DIR/state, DIR/snapshot. */
  walrus_t *w;                         /* The log; NULL before init. */
  uint64_t term;                       /* Durable current term. */
  uint64_t vote;                       /* Durable vote. */
  raft_io_tick_cb tick;                /* raft's tick callback. */
  raft_io_recv_cb recv;                /* raft's recv callback. */
  raft_io_close_cb close_cb;           /* raft's close callback. */
  /* The writer thread and its queues, under mu. */
  pthread_t thread;                    /* The writer. */
  int thread_started;                  /* pthread_create() succeeded. */
  int thread_joined;                   /* pthread_join() done. */
  pthread_mutex_t mu;                  /* Guards what follows. */
  pthread_cond_t work;                 /* Signalled: queued or stop. */
  pthread_cond_t idle;                 /* Signalled: writer went idle. */
  wr_req_t *pending, *pending_tail;    /* Loop -> writer, in order. */
  wr_req_t *done, *done_tail;          /* Writer -> loop, in order. */
  int busy;                            /* The writer holds requests. */
  int stop;                            /* Writer: exit when drained. */
  int writer_exited;                   /* The writer returned. */
  uv_async_t async;                    /* Wakes the loop for done. */
  int async_open;                      /* uv_async_init() done. */
  /* Closing. */
  int closing;                         /* io->close was called. */
  int inner_closed;                    /* raft_uv's close cb ran. */
  int async_closed;                    /* uv_close(async) cb ran. */
  /* Fail-stop, written by either thread, read by both. */
  atomic_int failed;                   /* 0, or the walrus code. */
  char why[RAFT_ERRMSG_BUF_SIZE];      /* What failed; set before failed. */
  /* The writer's batch buffer (writer thread only). */
  walrus_entry_t *batch;               /* Entries of one write. */
  size_t batch_cap;                    /* Capacity of batch. */
} wr_io_t;

/* ---- errors ------------------------------------------------------------ */

/* The raft code for a walrus code. */
static int raft_code(int code) {
  switch (code) {
    case WALRUS_OK: return 0;
    case WALRUS_ENOSPC: return RAFT_NOSPACE;
    case WALRUS_ENOMEM: return RAFT_NOMEM;
    case WALRUS_ECORRUPT:
    case WALRUS_ECHECKSUM:
    case WALRUS_EFORMAT: return RAFT_CORRUPT;
    case WALRUS_ETOOLARGE: return RAFT_TOOBIG;
    case WALRUS_ELOCKED: return RAFT_BUSY;
    default: return RAFT_IOERR;
  }
}

/* Formats a message into buf (len bytes), cutting it to fit. */
static void say(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/*
 * Stop the node's storage for good: record the first failure (code, and
 * a message), and return its raft code.  Later failures keep the first.
 */
static int fail_stop(wr_io_t *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_stop(wr_io_t *s, int code, const char *fmt, ...) {
  int expect = 0;
  char why[RAFT_ERRMSG_BUF_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&s->mu);
  if (atomic_load(&s->failed) == 0) {
    say(s->why, sizeof s->why, "walrus-raft stopped: %s (%s)", why,
        walrus_errname(code));
    atomic_compare_exchange_strong(&s->failed, &expect, code);
  }
  pthread_mutex_unlock(&s->mu);
  return raft_code(code);
}

/* The raft code a stopped node answers with, errmsg filled (loop thread). */
static int stopped(wr_io_t *s) {
  pthread_mutex_lock(&s->mu);
  say(s->io->errmsg, sizeof s->io->errmsg, "%s", s->why);
  pthread_mutex_unlock(&s->mu);
  return raft_code(atomic_load(&s->failed));
}

/* A walrus call failed: fail-stop with walrus's own message. */
static int log_failed(wr_io_t *s, int code, const char *what) {
  char msg[200];
  say(msg, sizeof msg, "%s: %s", what,
           s->w != NULL ? walrus_errmsg(s->w) : walrus_strerror(code));
  return fail_stop(s, code, "%s", msg);
}

/* ---- the writer thread ------------------------------------------------- */

/* Writes a run of appends as one batch; sets each request's status. */
static void write_appends(wr_io_t *s, wr_req_t *first, wr_req_t *end) {
  size_t n = 0, k = 0;
  int rc, status = 0;
  wr_req_t *r;
  for (r = first; r != end; r = r->next) n += r->n;
  if (atomic_load(&s->failed) != 0) {
    status = raft_code(atomic_load(&s->failed));
    goto out;
  }
  if (n > s->batch_cap) {
    walrus_entry_t *b = realloc(s->batch, n * sizeof *b);
    if (b == NULL) {
      status = fail_stop(s, WALRUS_ENOMEM, "%s", "append: batch buffer");
      goto out;
    }
    s->batch = b;
    s->batch_cap = n;
  }
  for (r = first; r != end; r = r->next) {
    for (unsigned i = 0; i < r->n; i++) {
      walrus_entry_t *e = &s->batch[k++];
      memset(e, 0, sizeof *e);
      e->term = r->entries[i].term;
      e->type = r->entries[i].type;
      e->data = r->entries[i].buf.base;
      e->len = r->entries[i].buf.len;
    }
  }
  rc = walrus_write_batch(s->w, s->batch, n, NULL);
  if (rc != WALRUS_OK) status = log_failed(s, rc, "append");
out:
  for (r = first; r != end; r = r->next) r->status = status;
}

/* Stores a snapshot, then drops the entries it covers. */
static int put_snapshot(wr_io_t *s, wr_req_t *r) {
  const struct raft_snapshot *snap = r->snap;
  unsigned char *buf = NULL;
  size_t len = 0;
  char why[RAFT_ERRMSG_BUF_SIZE] = "";
  int rc;
  if (atomic_load(&s->failed) != 0) return raft_code(atomic_load(&s->failed));
  rc = wr_snapshot_encode(snap, &buf, &len);
  if (rc != WALRUS_OK) return fail_stop(s, rc, "%s", "snapshot: encode");
  rc = wr_file_replace(s->vfs, s->dir, "snapshot", buf, len, why, sizeof why);
  free(buf);
  if (rc != WALRUS_OK) return fail_stop(s, rc, "snapshot: %s", why);
  if (r->trailing == 0) {
    /* Installed from the leader: the whole log is replaced by it. */
    rc = walrus_reset(s->w, snap->index + 1);
    if (rc != WALRUS_OK) return log_failed(s, rc, "snapshot: reset the log");
  } else if (snap->index > r->trailing) {
    uint64_t keep = snap->index - r->trailing + 1;
    uint64_t first = walrus_first_index(s->w);
    uint64_t next = walrus_next_index(s->w);
    if (keep > next) keep = next;
    if (first != 0 && keep > first) {
      rc = walrus_truncate_front(s->w, keep);
      if (rc != WALRUS_OK)
        return log_failed(s, rc, "snapshot: drop the entries it covers");
    }
  }
  return 0;
}

/* Reads the stored snapshot into r->loaded. */
static int get_snapshot(wr_io_t *s, wr_req_t *r) {
  unsigned char *buf = NULL;
  size_t len = 0;
  char why[RAFT_ERRMSG_BUF_SIZE] = "";
  int rc;
  if (atomic_load(&s->failed) != 0) return raft_code(atomic_load(&s->failed));
  rc = wr_file_read(s->vfs, s->dir, "snapshot", &buf, &len, why, sizeof why);
  if (rc == WALRUS_DONE)
    return fail_stop(s, WALRUS_ECORRUPT, "%s", "snapshot: the file is gone");
  if (rc != WALRUS_OK) return fail_stop(s, rc, "snapshot: %s", why);
  rc = wr_snapshot_decode(buf, len, &r->loaded, why, sizeof why);
  free(buf);
  if (rc != WALRUS_OK) return fail_stop(s, rc, "%s", why);
  return 0;
}

static void *writer_main(void *arg) {
  wr_io_t *s = arg;
  sigset_t all;
  /* Signals are the application's business, on its own threads. */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    wr_req_t *first, *end, *last;
    size_t entries = 0;
    uint64_t bytes = 0;
    while (s->pending == NULL && !s->stop) pthread_cond_wait(&s->work, &s->mu);
    if (s->pending == NULL) break;
    /* Take a run of appends within the batch limits, or one other
     * request. */
    first = last = s->pending;
    if (first->kind == WR_APPEND) {
      for (end = first; end != NULL && end->kind == WR_APPEND; end = end->next) {
        for (unsigned i = 0; i < end->n; i++) bytes += end->entries[i].buf.len;
        entries += end->n;
        if (end != first && (entries > s->opt.max_batch_entries ||
                             bytes > s->opt.max_batch_bytes))
          break;
        last = end;
      }
    }
    end = last->next;
    s->pending = end;
    if (end == NULL) s->pending_tail = NULL;
    s->busy = 1;
    pthread_mutex_unlock(&s->mu);

    if (first->kind == WR_APPEND)
      write_appends(s, first, end);
    else if (first->kind == WR_SNAP_PUT)
      first->status = put_snapshot(s, first);
    else
      first->status = get_snapshot(s, first);

    pthread_mutex_lock(&s->mu);
    last->next = NULL;
    if (s->done_tail != NULL)
      s->done_tail->next = first;
    else
      s->done = first;
    s->done_tail = last;
    s->busy = 0;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
    pthread_mutex_lock(&s->mu);
  }
  s->writer_exited = 1;
  pthread_cond_broadcast(&s->idle);
  pthread_mutex_unlock(&s->mu);
  uv_async_send(&s->async);
  return NULL;
}

/* Waits until nothing is queued and the writer is idle (loop thread). */
static void wait_idle(wr_io_t *s) {
  pthread_mutex_lock(&s->mu);
  while ((s->pending != NULL || s->busy) && !s->writer_exited)
    pthread_cond_wait(&s->idle, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static void enqueue(wr_io_t *s, wr_req_t *r) {
  r->next = NULL;
  pthread_mutex_lock(&s->mu);
  if (s->pending_tail != NULL)
    s->pending_tail->next = r;
  else
    s->pending = r;
  s->pending_tail = r;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
}

/* ---- back on the loop -------------------------------------------------- */

static void maybe_closed(wr_io_t *s) {
  if (s->closing && s->inner_closed && s->async_closed && s->close_cb != NULL) {
    raft_io_close_cb cb = s->close_cb;
    s->close_cb = NULL;
    cb(s->io);
  }
}

static void async_closed(uv_handle_t *h) {
  wr_io_t *s = h->data;
  s->async_closed = 1;
  maybe_closed(s);
}

/* Runs the callbacks of finished requests, in order. */
static void async_cb(uv_async_t *a) {
  wr_io_t *s = a->data;
  wr_req_t *r, *next;
  int exited;
  pthread_mutex_lock(&s->mu);
  r = s->done;
  s->done = s->done_tail = NULL;
  exited = s->writer_exited;
  pthread_mutex_unlock(&s->mu);
  for (; r != NULL; r = next) {
    next = r->next;
    if (r->status != 0) stopped(s);
    switch (r->kind) {
      case WR_APPEND: r->append_cb(r->append, r->status); break;
      case WR_SNAP_PUT: r->put_cb(r->put, r->status); break;
      default: r->get_cb(r->get, r->loaded, r->status); break;
    }
    free(r);
  }
  if (exited && s->closing && !s->thread_joined) {
    pthread_join(s->thread, NULL);
    s->thread_joined = 1;
    uv_close((uv_handle_t *)&s->async, async_closed);
  }
}

/* ---- raft_io methods: storage ------------------------------------------ */

static int io_init(struct raft_io *io, raft_id id, const char *address) {
  wr_io_t *s = io->impl;
  unsigned char *buf = NULL;
  size_t len = 0;
  char why[RAFT_ERRMSG_BUF_SIZE] = "";
  int rc, rv;

  rc = s->vfs->mkdir(s->vfs->ctx, s->dir);
  if (rc < 0 && rc != -EEXIST) {
    say(io->errmsg, sizeof io->errmsg, "mkdir %s: %s", s->dir,
             strerror(-rc));
    return RAFT_IOERR;
  }
  rc = s->vfs->mkdir(s->vfs->ctx, s->uvdir);
  if (rc < 0 && rc != -EEXIST) {
    say(io->errmsg, sizeof io->errmsg, "mkdir %s: %s", s->uvdir,
             strerror(-rc));
    return RAFT_IOERR;
  }
  rc = wr_file_read(s->vfs, s->dir, "state", &buf, &len, why, sizeof why);
  if (rc == WALRUS_OK) {
    rc = wr_state_decode(buf, len, &s->term, &s->vote);
    free(buf);
    if (rc != WALRUS_OK) say(why, sizeof why, "%s/state: damaged", s->dir);
  } else if (rc == WALRUS_DONE) {
    rc = WALRUS_OK;
  }
  if (rc != WALRUS_OK) {
    say(io->errmsg, sizeof io->errmsg, "%s", why);
    return raft_code(rc);
  }
  rc = walrus_open_ex(s->logdir, &s->cfg, &s->w, why, sizeof why);
  if (rc != WALRUS_OK) {
    say(io->errmsg, sizeof io->errmsg, "open %s: %s", s->logdir, why);
    return raft_code(rc);
  }
  rv = s->inner.init(&s->inner, id, address);
  if (rv != 0) {
    say(io->errmsg, sizeof io->errmsg, "%s", s->inner.errmsg);
    goto fail;
  }
  s->inner_inited = 1;
  rv = uv_async_init(s->loop, &s->async, async_cb);
  if (rv != 0) {
    say(io->errmsg, sizeof io->errmsg, "uv_async_init: %s",
             uv_strerror(rv));
    rv = RAFT_IOERR;
    goto fail;
  }
  s->async.data = s;
  s->async_open = 1;
  if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
    say(io->errmsg, sizeof io->errmsg, "pthread_create failed");
    rv = RAFT_NOMEM;
    goto fail;
  }
  s->thread_started = 1;
  return 0;
fail:
  /* raft will not call close: what was opened is released by
   * walrus_raft_close(); the async handle cannot be closed without a loop
   * turn, so it is closed there too. */
  walrus_close(s->w);
  s->w = NULL;
  return rv;
}

/* Sets term and vote durably (temp file, fdatasync, rename, dir fsync). */
static int store_state(wr_io_t *s, uint64_t term, uint64_t vote) {
  unsigned char buf[WR_STATE_BYTES];
  char why[RAFT_ERRMSG_BUF_SIZE] = "";
  int rc;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  wr_state_encode(buf, term, vote);
  rc = wr_file_replace(s->vfs, s->dir, "state", buf, sizeof buf, why,
                       sizeof why);
  if (rc != WALRUS_OK) {
    fail_stop(s, rc, "state: %s", why);
    return stopped(s);
  }
  s->term = term;
  s->vote = vote;
  return 0;
}

static int io_set_term(struct raft_io *io, raft_term term) {
  return store_state(io->impl, term, 0);
}

static int io_set_vote(struct raft_io *io, raft_id server_id) {
  wr_io_t *s = io->impl;
  return store_state(s, s->term, server_id);
}

/* Reads the stored snapshot, or *out = NULL if there is none. */
static int load_snapshot(wr_io_t *s, struct raft_snapshot **out) {
  unsigned char *buf = NULL;
  size_t len = 0;
  char why[RAFT_ERRMSG_BUF_SIZE] = "";
  int rc = wr_file_read(s->vfs, s->dir, "snapshot", &buf, &len, why,
                        sizeof why);
  *out = NULL;
  if (rc == WALRUS_DONE) return 0;
  if (rc != WALRUS_OK) return fail_stop(s, rc, "snapshot: %s", why);
  rc = wr_snapshot_decode(buf, len, out, why, sizeof why);
  free(buf);
  if (rc != WALRUS_OK) return fail_stop(s, rc, "%s", why);
  return 0;
}

static void snapshot_free(struct raft_snapshot *snap) {
  if (snap == NULL) return;
  raft_configuration_close(&snap->configuration);
  for (unsigned i = 0; i < snap->n_bufs; i++) raft_free(snap->bufs[i].base);
  raft_free(snap->bufs);
  raft_free(snap);
}

/* Reads entries [first, last] into raft_malloc'ed memory raft frees: one
 * array, and one batch buffer shared by every entry's data. */
static int load_entries(wr_io_t *s, uint64_t first, uint64_t last,
                        struct raft_entry **out) {
  size_t n = (size_t)(last - first + 1), k = 0, used = 0, cap = 4096;
  struct raft_entry *entries = raft_calloc(n, sizeof *entries);
  unsigned char *batch = raft_malloc(cap);
  walrus_iter_t *it = NULL;
  walrus_entry_t e;
  int rc, rv = 0;
  if (entries == NULL || batch == NULL) {
    rv = fail_stop(s, WALRUS_ENOMEM, "%s", "load: entries");
    goto fail;
  }
  rc = walrus_iter_open(s->w, first, &it);
  if (rc != WALRUS_OK) {
    rv = log_failed(s, rc, "load: read the log");
    goto fail;
  }
  while (k < n && (rc = walrus_iter_next(it, &e)) == WALRUS_OK) {
    if (e.index != first + k ||
        (e.type != RAFT_COMMAND && e.type != RAFT_BARRIER &&
         e.type != RAFT_CHANGE)) {
      rv = fail_stop(s, WALRUS_ECORRUPT, "%s",
                     "load: an entry of the log is not a raft entry");
      goto fail;
    }
    if (e.len > cap - used) {
      size_t ncap = cap;
      unsigned char *nb;
      while (e.len > ncap - used) ncap *= 2;
      nb = raft_realloc(batch, ncap);
      if (nb == NULL) {
        rv = fail_stop(s, WALRUS_ENOMEM, "%s", "load: entries");
        goto fail;
      }
      batch = nb;
      cap = ncap;
    }
    if (e.len > 0) memcpy(batch + used, e.data, e.len);
    entries[k].term = e.term;
    entries[k].type = e.type;
    entries[k].buf.base = (void *)(uintptr_t)used; /* Fixed below. */
    entries[k].buf.len = e.len;
    used += e.len;
    k++;
  }
  if (k < n) {
    rv = rc == WALRUS_DONE
             ? fail_stop(s, WALRUS_ECORRUPT, "%s", "load: the log is short")
             : log_failed(s, rc, "load: read the log");
    goto fail;
  }
  walrus_iter_close(it);
  for (k = 0; k < n; k++) {
    entries[k].buf.base = batch + (uintptr_t)entries[k].buf.base;
    entries[k].batch = batch;
  }
  *out = entries;
  return 0;
fail:
  walrus_iter_close(it);
  raft_free(entries);
  raft_free(batch);
  return rv;
}

static int io_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries) {
  wr_io_t *s = io->impl;
  struct raft_snapshot *snap = NULL;
  struct raft_entry *list = NULL;
  uint64_t first, last, next;
  int rv, rc;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  rv = load_snapshot(s, &snap);
  if (rv != 0) return stopped(s);
  first = walrus_first_index(s->w);
  last = walrus_last_index(s->w);
  next = walrus_next_index(s->w);
  if (snap != NULL) {
    int stale = last < snap->index;
    /* A crash between storing an installed snapshot and emptying the log
     * leaves the old log: a log that ends below the snapshot, or whose
     * entry at its index has another term, predates it.  Finish the
     * install now. */
    if (!stale && first != 0 && first <= snap->index) {
      walrus_entry_t e;
      rc = walrus_get(s->w, snap->index, &e);
      if (rc != WALRUS_OK) {
        snapshot_free(snap);
        log_failed(s, rc, "load: read the log");
        return stopped(s);
      }
      stale = e.term != snap->term;
      walrus_entry_free(&e);
    }
    if (stale || (first == 0 && next != snap->index + 1)) {
      if (first == 0 && next > snap->index + 1) {
        snapshot_free(snap);
        fail_stop(s, WALRUS_ECORRUPT, "%s",
                  "load: the log starts above the snapshot");
        return stopped(s);
      }
      rc = walrus_reset(s->w, snap->index + 1);
      if (rc != WALRUS_OK) {
        snapshot_free(snap);
        log_failed(s, rc, "load: finish a snapshot install");
        return stopped(s);
      }
      first = last = 0;
      next = snap->index + 1;
    } else if (first > snap->index + 1) {
      snapshot_free(snap);
      fail_stop(s, WALRUS_ECORRUPT, "%s",
                "load: a gap between the snapshot and the log");
      return stopped(s);
    }
  } else if ((first != 0 && first != 1) || (first == 0 && next != 1)) {
    fail_stop(s, WALRUS_ECORRUPT, "%s",
              "load: the log does not start at 1 and there is no snapshot");
    return stopped(s);
  }
  if (first != 0) {
    rv = load_entries(s, first, last, &list);
    if (rv != 0) {
      snapshot_free(snap);
      return stopped(s);
    }
  }
  *term = s->term;
  *voted_for = s->vote;
  *snapshot = snap;
  *start_index = first != 0 ? first : next;
  *entries = list;
  *n_entries = first != 0 ? (size_t)(last - first + 1) : 0;
  return 0;
}

/* Appends one configuration entry at the next index (synchronous). */
static int append_conf(wr_io_t *s, uint64_t term,
                       const struct raft_configuration *conf) {
  struct raft_buffer buf = {NULL, 0};
  walrus_entry_t e;
  int rv, rc;
  rv = raft_configuration_encode(conf, &buf);
  if (rv != 0) return rv;
  memset(&e, 0, sizeof e);
  e.term = term;
  e.type = RAFT_CHANGE;
  e.data = buf.base;
  e.len = buf.len;
  rc = walrus_append(s->w, &e, NULL);
  raft_free(buf.base);
  if (rc != WALRUS_OK) {
    log_failed(s, rc, "append a configuration");
    return stopped(s);
  }
  return 0;
}

static int io_bootstrap(struct raft_io *io,
                        const struct raft_configuration *conf) {
  wr_io_t *s = io->impl;
  unsigned char *buf = NULL;
  size_t len = 0;
  char why[RAFT_ERRMSG_BUF_SIZE] = "";
  int rc, rv;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  wait_idle(s);
  rc = wr_file_read(s->vfs, s->dir, "snapshot", &buf, &len, why, sizeof why);
  free(buf);
  if (rc != WALRUS_OK && rc != WALRUS_DONE) {
    fail_stop(s, rc, "snapshot: %s", why);
    return stopped(s);
  }
  if (s->term != 0 || walrus_last_index(s->w) != 0 ||
      walrus_next_index(s->w) != 1 || rc == WALRUS_OK) {
    say(io->errmsg, sizeof io->errmsg, "%s already holds raft state",
             s->dir);
    return RAFT_CANTBOOTSTRAP;
  }
  /* The term first: a crash before the entry leaves term 1 and an empty
   * log, which a second bootstrap refuses rather than forking history. */
  rv = store_state(s, 1, 0);
  if (rv != 0) return rv;
  return append_conf(s, 1, conf);
}

static int io_recover(struct raft_io *io,
                      const struct raft_configuration *conf) {
  wr_io_t *s = io->impl;
  uint64_t term = s->term;
  walrus_entry_t e;
  int rc;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  wait_idle(s);
  if (walrus_last_index(s->w) != 0) {
    rc = walrus_get(s->w, walrus_last_index(s->w), &e);
    if (rc != WALRUS_OK) {
      log_failed(s, rc, "recover: read the last entry");
      return stopped(s);
    }
    if (e.term > term) term = e.term;
    walrus_entry_free(&e);
  }
  return append_conf(s, term != 0 ? term : 1, conf);
}

/* A new request of kind for the writer, or NULL (out of memory). */
static wr_req_t *new_req(int kind) {
  wr_req_t *r = calloc(1, sizeof *r);
  if (r != NULL) r->kind = kind;
  return r;
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n,
                     raft_io_append_cb cb) {
  wr_io_t *s = io->impl;
  wr_req_t *r;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  if (n == 0) {
    say(io->errmsg, sizeof io->errmsg, "append of no entry");
    return RAFT_INVALID;
  }
  /* raft_uv's receiver places each entry of an AppendEntries message at
   * an 8-byte boundary while its sender sends them unpadded: an entry of
   * another length would make a follower read past the message.  Raft's
   * own entries (barriers, configurations) are padded; a command must be
   * too.  Refused before anything is written. */
  for (unsigned i = 0; i < n; i++)
    if (entries[i].buf.len % 8 != 0) {
      say(io->errmsg, sizeof io->errmsg,
          "append: entry %u is %zu bytes, not a multiple of 8", i,
          entries[i].buf.len);
      return RAFT_INVALID;
    }
  if ((r = new_req(WR_APPEND)) == NULL) return RAFT_NOMEM;
  r->append = req;
  r->entries = entries;
  r->n = n;
  r->append_cb = cb;
  req->cb = cb;
  enqueue(s, r);
  return 0;
}

static int io_truncate(struct raft_io *io, raft_index index) {
  wr_io_t *s = io->impl;
  int rc;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  if (index == 0) {
    say(io->errmsg, sizeof io->errmsg, "truncate at index 0");
    return RAFT_INVALID;
  }
  /* Raft truncates after the appends it made before: let them land. */
  wait_idle(s);
  if (atomic_load(&s->failed) != 0) return stopped(s);
  if (index > walrus_last_index(s->w)) return 0;
  rc = walrus_truncate_back(s->w, index - 1);
  if (rc != WALRUS_OK) {
    log_failed(s, rc, "truncate");
    return stopped(s);
  }
  return 0;
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb) {
  wr_io_t *s = io->impl;
  wr_req_t *r;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  if ((r = new_req(WR_SNAP_PUT)) == NULL) return RAFT_NOMEM;
  r->put = req;
  r->put_cb = req->cb = cb;
  r->snap = snapshot;
  r->trailing = trailing;
  enqueue(s, r);
  return 0;
}

static int io_snapshot_get(struct raft_io *io,
                           struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb) {
  wr_io_t *s = io->impl;
  wr_req_t *r;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  if ((r = new_req(WR_SNAP_GET)) == NULL) return RAFT_NOMEM;
  r->get = req;
  r->get_cb = req->cb = cb;
  enqueue(s, r);
  return 0;
}

/* ---- raft_io methods: forwarded to raft_uv ----------------------------- */

static void tick_tramp(struct raft_io *inner) {
  wr_io_t *s = inner->data;
  s->tick(s->io);
}

static void recv_tramp(struct raft_io *inner, struct raft_message *msg) {
  wr_io_t *s = inner->data;
  s->recv(s->io, msg);
}

static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv) {
  wr_io_t *s = io->impl;
  int rv;
  if (atomic_load(&s->failed) != 0) return stopped(s);
  s->tick = tick;
  s->recv = recv;
  rv = s->inner.start(&s->inner, msecs, tick_tramp, recv_tramp);
  if (rv != 0) say(io->errmsg, sizeof io->errmsg, "%s", s->inner.errmsg);
  return rv;
}

static int io_send(struct raft_io *io, struct raft_io_send *req,
                   const struct raft_message *message, raft_io_send_cb cb) {
  wr_io_t *s = io->impl;
  int rv;
  /* A node whose storage stopped goes silent: it must not answer for
   * entries it may not hold, nor keep a leadership it cannot serve. */
  if (atomic_load(&s->failed) != 0) return stopped(s);
  rv = s->inner.send(&s->inner, req, message, cb);
  if (rv != 0) say(io->errmsg, sizeof io->errmsg, "%s", s->inner.errmsg);
  return rv;
}

static raft_time io_time(struct raft_io *io) {
  wr_io_t *s = io->impl;
  return s->inner.time(&s->inner);
}

static int io_random(struct raft_io *io, int min, int max) {
  wr_io_t *s = io->impl;
  return s->inner.random(&s->inner, min, max);
}

static void inner_closed(struct raft_io *inner) {
  wr_io_t *s = inner->data;
  s->inner_closed = 1;
  maybe_closed(s);
}

static void io_close(struct raft_io *io, raft_io_close_cb cb) {
  wr_io_t *s = io->impl;
  s->closing = 1;
  s->close_cb = cb;
  /* The writer finishes what is queued, then exits; async_cb delivers the
   * last callbacks, joins it and closes the async handle. */
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
  if (!s->thread_started) s->async_closed = 1;
  s->inner.close(&s->inner, inner_closed);
}

/* ---- public ------------------------------------------------------------ */

void walrus_raft_options_default(walrus_raft_options_t *opt) {
  if (opt == NULL) return;
  memset(opt, 0, sizeof *opt);
  opt->max_batch_entries = 4096;
  opt->max_batch_bytes = 8u << 20;
}

int walrus_raft_init(struct raft_io *io, struct uv_loop_s *loop,
                     const char *dir, const walrus_raft_options_t *opt) {
  wr_io_t *s;
  int rv;
  if (io == NULL) return RAFT_INVALID;
  memset(io, 0, sizeof *io);
  if (loop == NULL || dir == NULL || dir[0] == '\0') {
    say(io->errmsg, sizeof io->errmsg, "walrus_raft_init: NULL %s",
             loop == NULL ? "loop" : "dir");
    return RAFT_INVALID;
  }
  if (strlen(dir) >= 1024) {
    say(io->errmsg, sizeof io->errmsg, "directory path too long");
    return RAFT_NAMETOOLONG;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL) return RAFT_NOMEM;
  if (opt != NULL)
    s->opt = *opt;
  else
    walrus_raft_options_default(&s->opt);
  if (opt != NULL && opt->log != NULL)
    s->cfg = *opt->log;
  else
    walrus_config_default(&s->cfg);
  if (s->cfg.sync != WALRUS_SYNC_ALWAYS || s->opt.max_batch_entries < 1 ||
      s->opt.max_batch_entries > 65536 || s->opt.max_batch_bytes < 4096 ||
      s->opt.max_batch_bytes > (1u << 30)) {
    say(io->errmsg, sizeof io->errmsg, "walrus_raft_init: %s",
             s->cfg.sync != WALRUS_SYNC_ALWAYS
                 ? "log.sync must be WALRUS_SYNC_ALWAYS"
                 : "max_batch_entries or max_batch_bytes out of range");
    free(s);
    return RAFT_INVALID;
  }
  s->cfg.read_only = 0;
  s->vfs = s->cfg.vfs != NULL ? s->cfg.vfs : walrus_vfs_posix();
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  snprintf(s->logdir, sizeof s->logdir, "%s/log", dir);
  snprintf(s->uvdir, sizeof s->uvdir, "%s/uv", dir);
  s->io = io;
  s->loop = loop;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->work, NULL);
  pthread_cond_init(&s->idle, NULL);

  rv = raft_uv_tcp_init(&s->transport, loop);
  if (rv != 0) goto fail;
  s->tcp_ready = 1;
  s->inner.data = s;
  rv = raft_uv_init(&s->inner, loop, s->uvdir, &s->transport);
  if (rv != 0) {
    say(io->errmsg, sizeof io->errmsg, "%s", s->inner.errmsg);
    goto fail;
  }
  s->uv_ready = 1;
  s->inner.data = s; /* raft_uv_init keeps it; said again for clarity. */

  io->version = 1;
  io->impl = s;
  io->init = io_init;
  io->close = io_close;
  io->load = io_load;
  io->start = io_start;
  io->bootstrap = io_bootstrap;
  io->recover = io_recover;
  io->set_term = io_set_term;
  io->set_vote = io_set_vote;
  io->send = io_send;
  io->append = io_append;
  io->truncate = io_truncate;
  io->snapshot_put = io_snapshot_put;
  io->snapshot_get = io_snapshot_get;
  io->time = io_time;
  io->random = io_random;
  return 0;
fail:
  if (s->tcp_ready) raft_uv_tcp_close(&s->transport);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->idle);
  free(s);
  return rv;
}

void walrus_raft_close(struct raft_io *io) {
  wr_io_t *s;
  wr_req_t *r, *next;
  if (io == NULL || io->impl == NULL || io->init != io_init) return;
  s = io->impl;
  if (s->thread_started && !s->thread_joined) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_joined = 1;
  }
  /* Requests raft never heard back about (raft_close was not called). */
  for (r = s->done; r != NULL; r = next) {
    next = r->next;
    free(r);
  }
  if (s->async_open && !s->async_closed) {
    /* io->init succeeded but raft never closed it (raft_init failed
     * later, or the application skipped raft_close): close the handle
     * and let the loop finish it. */
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_run(s->loop, UV_RUN_NOWAIT);
  }
  walrus_close(s->w);
  if (s->uv_ready) raft_uv_close(&s->inner);
  if (s->tcp_ready) raft_uv_tcp_close(&s->transport);
  free(s->batch);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->idle);
  free(s);
  io->impl = NULL;
}

int walrus_raft_failed(struct raft_io *io) {
  wr_io_t *s;
  if (io == NULL || io->init != io_init || io->impl == NULL) return 0;
  s = io->impl;
  return atomic_load(&s->failed);
}

walrus_t *walrus_raft_log(struct raft_io *io) {
  if (io == NULL || io->init != io_init || io->impl == NULL) return NULL;
  return ((wr_io_t *)io->impl)->w;
}
