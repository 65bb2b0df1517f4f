/*
 * walrus.c: the handle's life: walrus_open() (options, directory, lock
 * file, recovery, the sync thread) and walrus_close(), the index
 * accessors and the version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned walrus_version(void) { return WALRUS_VERSION_NUMBER; }

const char *walrus_version_string(void) {
  return STR(WALRUS_VERSION_MAJOR) "." STR(WALRUS_VERSION_MINOR) "." STR(
      WALRUS_VERSION_PATCH);
}

static void copy_msg(char *buf, size_t len, const char *msg) {
  if (buf != NULL && len > 0) snprintf(buf, len, "%s", msg);
}

/* Free everything the handle owns.  Locks must be unheld. */
static void destroy(walrus_t *w) {
  walrus__durable_close(w);
  for (size_t i = 0; i < w->store.nsegs; i++)
    walrus__seg_free(w, w->store.segs[i]);
  walrus__free(w, w->store.segs);
  walrus__os_close(w, w->lock_file);
  walrus__os_dir_close(w);
  walrus__free(w, w->commit.buf);
  walrus__free(w, w->commit.zbuf);
  walrus__zstd_cctx_free(w->commit.zctx);
  walrus__free(w, w->dir);
  walrus__tx_destroy(w);
  pthread_cond_destroy(&w->tx.cleaner_cv);
  pthread_mutex_destroy(&w->tx.mu);
  pthread_cond_destroy(&w->commit.syncer_cv);
  pthread_cond_destroy(&w->commit.sync_cv);
  pthread_cond_destroy(&w->commit.wait_cv);
  pthread_mutex_destroy(&w->commit.wait_mu);
  pthread_mutex_destroy(&w->err.mu);
  pthread_mutex_destroy(&w->store.cache_mu);
  walrus__zunit_free(w, &w->zcache.u);
  pthread_mutex_destroy(&w->zcache.mu);
  pthread_rwlock_destroy(&w->store.lock);
  pthread_mutex_destroy(&w->wlock);
  w->alloc.free_fn(w->alloc.ud, w);
}

/* Stop the background threads, if they run. */
static void stop_threads(walrus_t *w) {
  pthread_mutex_lock(&w->wlock);
  w->commit.syncer_stop = 1;
  pthread_cond_signal(&w->commit.syncer_cv);
  pthread_mutex_unlock(&w->wlock);
  if (w->commit.syncer_running) pthread_join(w->commit.syncer, NULL);
  w->commit.syncer_running = 0;
  pthread_mutex_lock(&w->tx.mu);
  w->tx.cleaner_stop = 1;
  pthread_cond_signal(&w->tx.cleaner_cv);
  pthread_mutex_unlock(&w->tx.mu);
  if (w->tx.cleaner_running) pthread_join(w->tx.cleaner, NULL);
  w->tx.cleaner_running = 0;
}

/* Take the LOCK file: one writer per directory. */
static int take_lock(walrus_t *w) {
  int rc = walrus__os_try_open(w, "LOCK", WALRUS_VFS_WRITE, &w->lock_file);
  if (rc == -ENOENT)
    rc = walrus__os_try_open(w, "LOCK", WALRUS_VFS_WRITE | WALRUS_VFS_CREATE,
                             &w->lock_file);
  if (rc == -EEXIST)
    rc = walrus__os_try_open(w, "LOCK", WALRUS_VFS_WRITE, &w->lock_file);
  if (rc != 0) {
    w->lock_file = NULL;
    return walrus__os_open_failed(w, "LOCK", rc);
  }
  rc = walrus__os_lock(w, w->lock_file);
  if (rc == -EWOULDBLOCK || rc == -EAGAIN)
    return walrus__fail(w, WALRUS_ELOCKED, 0,
                        "%s is open for writing elsewhere", w->dir);
  if (rc != 0) return walrus__fail(w, WALRUS_EIO, -rc, "lock %s/LOCK", w->dir);
  return WALRUS_OK;
}

int walrus_open_ex(const char *dir, const walrus_config_t *cfg,
                   walrus_t **out, char *errbuf, size_t errlen) {
  walrus_config_t defaults;
  walrus_allocator_t alloc;
  char msg[256];
  int rc;

  copy_msg(errbuf, errlen, "");
  if (dir == NULL || out == NULL || dir[0] == '\0') {
    copy_msg(errbuf, errlen, "dir and out must not be NULL or empty");
    return WALRUS_EINVAL;
  }
  if (strlen(dir) + 1 + WALRUS__NAME_MAX >= WALRUS__PATH_MAX) {
    copy_msg(errbuf, errlen, "dir: the path is too long");
    return WALRUS_EINVAL;
  }
  if (cfg == NULL) {
    walrus_config_default(&defaults);
    cfg = &defaults;
  }
  rc = walrus__config_check(cfg, msg, sizeof msg);
  if (rc != WALRUS_OK) {
    copy_msg(errbuf, errlen, msg);
    if (cfg->logger != NULL) cfg->logger(cfg->logger_ud, WALRUS_LOG_ERROR, msg);
    return rc;
  }
  if (cfg->allocator != NULL)
    alloc = *cfg->allocator;
  else
    walrus__default_allocator(&alloc);

  walrus_t *w = alloc.malloc_fn(alloc.ud, sizeof *w);
  if (w == NULL) {
    copy_msg(errbuf, errlen, "out of memory");
    return WALRUS_ENOMEM;
  }
  memset(w, 0, sizeof *w);
  w->stats.opened_ns = walrus__mono_ns();
  w->cfg = *cfg;
  w->alloc = alloc;
  w->vfs = cfg->vfs != NULL ? cfg->vfs : walrus_vfs_posix();
  walrus__sys_init(w);
  w->commit.mapped = cfg->mapped_writes && cfg->sync != WALRUS_SYNC_ALWAYS &&
                     !cfg->read_only && w->vfs->version >= 2 &&
                     w->vfs->map != NULL;
  w->store.can_map = w->vfs->version >= 3 && w->vfs->map_read != NULL &&
                     w->vfs->unmap_read != NULL;

  pthread_rwlockattr_t ra;
  pthread_condattr_t ca;
  pthread_rwlockattr_init(&ra);
  /* Writers publish in short critical sections; prefer them so a stream
   * of readers cannot starve an append. */
  pthread_rwlockattr_setkind_np(&ra,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (pthread_mutex_init(&w->wlock, NULL) != 0 ||
      pthread_rwlock_init(&w->store.lock, &ra) != 0 ||
      pthread_mutex_init(&w->store.cache_mu, NULL) != 0 ||
      pthread_mutex_init(&w->zcache.mu, NULL) != 0 ||
      pthread_mutex_init(&w->err.mu, NULL) != 0 ||
      pthread_mutex_init(&w->tx.mu, NULL) != 0 ||
      pthread_cond_init(&w->tx.cleaner_cv, &ca) != 0 ||
      pthread_cond_init(&w->commit.syncer_cv, &ca) != 0 ||
      pthread_cond_init(&w->commit.sync_cv, &ca) != 0 ||
      pthread_mutex_init(&w->commit.wait_mu, NULL) != 0 ||
      pthread_cond_init(&w->commit.wait_cv, &ca) != 0) {
    pthread_rwlockattr_destroy(&ra);
    pthread_condattr_destroy(&ca);
    alloc.free_fn(alloc.ud, w);
    copy_msg(errbuf, errlen, "cannot initialize locks");
    return WALRUS_ENOMEM;
  }
  pthread_rwlockattr_destroy(&ra);
  pthread_condattr_destroy(&ca);

  size_t dl = strlen(dir);
  w->dir = walrus__malloc(w, dl + 1);
  w->commit.buf = walrus__malloc(w, cfg->buffer_bytes);
  if (w->dir == NULL || w->commit.buf == NULL) {
    rc = walrus__fail(w, WALRUS_ENOMEM, 0, "handle buffers");
    goto fail;
  }
  memcpy(w->dir, dir, dl + 1);

  /* The directory is held open from here on, so that a rename of its path
   * cannot redirect the handle; a new one is made durable below, by
   * walrus__os_sync_parent(), whether this call created it or found it: a
   * process that died between its mkdir and that fsync leaves a directory
   * that exists only in the page cache. */
  w->dir_mode = walrus__dir_mode(cfg->file_mode);
  rc = walrus__os_dir_open(w, !cfg->read_only && cfg->create_if_missing);
  if (rc != WALRUS_OK) goto fail;
  if (!cfg->read_only) {
    rc = take_lock(w);
    if (rc == WALRUS_OK) rc = walrus__os_sync_parent(w);
    if (rc != WALRUS_OK) goto fail;
  }
  if (cfg->read_only) walrus__durable_peek(w);
  rc = walrus__recover(w);
  if (rc != WALRUS_OK && cfg->read_only && walrus__durable_moved(w, 1))
    rc = walrus__fail(w, WALRUS_ESTALE, 0,
                      "%s: the writer changed the log while it was being "
                      "opened (%s); open it again",
                      w->dir, walrus_errname(rc));
  if (rc == WALRUS_OK) {
    /* Every entry the open found counts as durable: a writable open made
     * it so; a read-only open counts what it found (walrus.h). */
    atomic_store(&w->commit.durable_next, w->store.next_index);
    rc = cfg->read_only ? walrus__durable_open(w)
                        : walrus__durable_writer_open(w);
  }
  if (rc != WALRUS_OK) goto fail;
  if (cfg->sync == WALRUS_SYNC_INTERVAL && !cfg->read_only) {
    if (pthread_create(&w->commit.syncer, NULL, walrus__syncer_main, w) != 0) {
      rc = walrus__fail(w, WALRUS_ENOMEM, errno, "start the sync thread");
      goto fail;
    }
    w->commit.syncer_running = 1;
  }
  if (cfg->tx_cleanup_interval_ms > 0 && !cfg->read_only) {
    if (pthread_create(&w->tx.cleaner, NULL, walrus__tx_cleaner_main, w) != 0) {
      rc = walrus__fail(w, WALRUS_ENOMEM, errno, "start the tx cleaner");
      goto fail;
    }
    w->tx.cleaner_running = 1;
  }
  *out = w;
  return WALRUS_OK;
fail:
  copy_msg(errbuf, errlen, w->err.msg);
  stop_threads(w);
  destroy(w);
  return rc;
}

int walrus_open(const char *dir, const walrus_config_t *cfg, walrus_t **out) {
  return walrus_open_ex(dir, cfg, out, NULL, 0);
}

int walrus_close(walrus_t *w) {
  int rc = WALRUS_OK;
  if (w == NULL) return WALRUS_OK;
  pthread_mutex_lock(&w->wlock);
  walrus__lock_shared(w);
  int busy = w->store.iters != NULL;
  walrus__unlock(w);
  if (busy) {
    pthread_mutex_unlock(&w->wlock);
    return walrus__fail(w, WALRUS_EBUSY, 0, "close: iterators are open");
  }
  pthread_mutex_unlock(&w->wlock);
  stop_threads(w);
  /* Pending transactions are aborted: none of them was ever written. */
  walrus__tx_destroy(w);
  pthread_mutex_lock(&w->wlock);
  if (!w->cfg.read_only && !w->commit.poisoned)
    rc = walrus__sync_mark_locked(w, 1);
  if (rc == WALRUS_OK && !w->cfg.read_only && w->store.nsegs > 0 &&
      !w->commit.poisoned) {
    /* Leave no preallocated zeros for the next open to read through. */
    walrus__seg_t *t = w->store.segs[w->store.nsegs - 1];
    if (!t->sealed) rc = walrus__seg_trim(w, t, w->commit.write_off);
  }
  pthread_mutex_unlock(&w->wlock);
  walrus__log(w, WALRUS_LOG_INFO, "closed %s", w->dir);
  destroy(w);
  return rc;
}

uint64_t walrus_first_index(walrus_t *w) {
  uint64_t v;
  if (w == NULL) return 0;
  walrus__lock_shared(w);
  v = w->store.first_index < w->store.next_index ? w->store.first_index : 0;
  walrus__unlock(w);
  return v;
}

uint64_t walrus_last_index(walrus_t *w) {
  uint64_t v;
  if (w == NULL) return 0;
  walrus__lock_shared(w);
  v = w->store.first_index < w->store.next_index ? w->store.next_index - 1 : 0;
  walrus__unlock(w);
  return v;
}

uint64_t walrus_next_index(walrus_t *w) {
  uint64_t v;
  if (w == NULL) return 0;
  walrus__lock_shared(w);
  v = w->store.next_index;
  walrus__unlock(w);
  return v;
}
