/*
 * config.c: walrus_config_default() and the check that walrus_open() runs
 * on every field.  A field out of range is WALRUS_EINVAL; an option whose
 * feature is not built yet is WALRUS_ENOTSUP.  Either way the message
 * names the field.
 */
#include <stdio.h>

#include "internal.h"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

void walrus_config_default(walrus_config_t *cfg) {
  if (cfg == NULL) return;
  *cfg = (walrus_config_t){0};
  cfg->sync = WALRUS_SYNC_ALWAYS;
  cfg->sync_interval_ms = 100;
  cfg->segment_bytes = 64 * MIB;
  cfg->max_segments = 0;
  cfg->buffer_bytes = (size_t)MIB;
  cfg->cached_segments = 4;
  cfg->prefill_segments = 1;
  cfg->mapped_writes = 0;
  cfg->zero_copy = 0;
  cfg->format = WALRUS_FORMAT_BINARY;
  cfg->compression = WALRUS_COMPRESSION_NONE;
  cfg->compress_min_bytes = 512;
  cfg->compress_level = 1;
  cfg->tx_timeout_ms = 30000;
  cfg->tx_max_entries = 10000;
  cfg->tx_cleanup_interval_ms = 0;
  cfg->tx_max_pending_bytes = 256 * MIB;
  cfg->max_entry_bytes = (uint32_t)(16 * MIB);
  cfg->recovery = WALRUS_RECOVER_TAIL;
  cfg->read_only = 0;
  cfg->follow_poll_ms = 50;
  cfg->create_if_missing = 1;
  cfg->file_mode = 0600;
  cfg->log_level = WALRUS_LOG_INFO;
}

#define BAD(code, ...)                   \
  do {                                   \
    if (msg != NULL && len > 0)          \
      snprintf(msg, len, __VA_ARGS__);   \
    return (code);                       \
  } while (0)

int walrus__config_check(const walrus_config_t *cfg, char *msg, size_t len) {
  if (msg != NULL && len > 0) msg[0] = '\0';
  if (cfg == NULL) BAD(WALRUS_EINVAL, "config is NULL");
  switch (cfg->sync) {
    case WALRUS_SYNC_ALWAYS:
    case WALRUS_SYNC_INTERVAL:
    case WALRUS_SYNC_NONE:
      break;
    default:
      BAD(WALRUS_EINVAL, "sync: %d is not a walrus_sync_t value",
          (int)cfg->sync);
  }
  if (cfg->sync == WALRUS_SYNC_INTERVAL &&
      (cfg->sync_interval_ms < 1 || cfg->sync_interval_ms > 3600000))
    BAD(WALRUS_EINVAL, "sync_interval_ms: %u is outside 1..3600000",
        cfg->sync_interval_ms);
  if (cfg->segment_bytes < 4 * KIB || cfg->segment_bytes > GIB)
    BAD(WALRUS_EINVAL, "segment_bytes: %llu is outside 4096..%llu",
        (unsigned long long)cfg->segment_bytes, (unsigned long long)GIB);
  if (cfg->buffer_bytes < 4 * KIB || cfg->buffer_bytes > 256 * MIB)
    BAD(WALRUS_EINVAL, "buffer_bytes: %zu is outside 4096..%llu",
        cfg->buffer_bytes, (unsigned long long)(256 * MIB));
  if (cfg->cached_segments < 1 || cfg->cached_segments > 65536)
    BAD(WALRUS_EINVAL, "cached_segments: %u is outside 1..65536",
        cfg->cached_segments);
  if (cfg->max_entry_bytes < 1 || cfg->max_entry_bytes > GIB)
    BAD(WALRUS_EINVAL, "max_entry_bytes: %u is outside 1..%llu",
        cfg->max_entry_bytes, (unsigned long long)GIB);
  switch (cfg->recovery) {
    case WALRUS_RECOVER_TAIL:
    case WALRUS_RECOVER_STRICT:
    case WALRUS_RECOVER_SALVAGE:
      break;
    default:
      BAD(WALRUS_EINVAL, "recovery: %d is not a walrus_recovery_t value",
          (int)cfg->recovery);
  }
  switch (cfg->log_level) {
    case WALRUS_LOG_ERROR:
    case WALRUS_LOG_WARN:
    case WALRUS_LOG_INFO:
    case WALRUS_LOG_DEBUG:
      break;
    default:
      BAD(WALRUS_EINVAL, "log_level: %d is not a walrus_log_level_t value",
          (int)cfg->log_level);
  }
  switch (cfg->format) {
    case WALRUS_FORMAT_BINARY:
      break;
    case WALRUS_FORMAT_JSON:
      BAD(WALRUS_ENOTSUP, "format: JSON records are not available yet");
    default:
      BAD(WALRUS_EINVAL, "format: %d is not a walrus_format_t value",
          (int)cfg->format);
  }
  switch (cfg->compression) {
    case WALRUS_COMPRESSION_NONE:
      break;
    case WALRUS_COMPRESSION_ZSTD:
      if (!walrus__zstd_built())
        BAD(WALRUS_ENOTSUP,
            "compression: this build of walrus has no zstd (built "
            "with WALRUS_WITH_ZSTD=OFF or without libzstd)");
      break;
    default:
      BAD(WALRUS_EINVAL,
          "compression: %d is not a walrus_compression_t value",
          (int)cfg->compression);
  }
  if (cfg->compress_min_bytes > GIB)
    BAD(WALRUS_EINVAL, "compress_min_bytes: %u is outside 0..%llu",
        cfg->compress_min_bytes, (unsigned long long)GIB);
  if (cfg->compress_level < -7 || cfg->compress_level > 19)
    BAD(WALRUS_EINVAL, "compress_level: %d is outside -7..19",
        cfg->compress_level);
  if (cfg->read_only && cfg->recovery == WALRUS_RECOVER_SALVAGE)
    BAD(WALRUS_EINVAL, "recovery: salvage moves files and cannot be "
        "read_only");
  if (cfg->prefill_segments != 0 && cfg->prefill_segments != 1)
    BAD(WALRUS_EINVAL, "prefill_segments: %d is not 0 or 1",
        cfg->prefill_segments);
  if (cfg->mapped_writes != 0 && cfg->mapped_writes != 1)
    BAD(WALRUS_EINVAL, "mapped_writes: %d is not 0 or 1", cfg->mapped_writes);
  if (cfg->zero_copy != 0 && cfg->zero_copy != 1)
    BAD(WALRUS_EINVAL, "zero_copy: %d is not 0 or 1", cfg->zero_copy);
  if ((cfg->file_mode & ~0777u) != 0 || (cfg->file_mode & 0600u) != 0600u)
    BAD(WALRUS_EINVAL,
        "file_mode: %04o is not a mode of 0600..0777 that "
        "lets its owner read and write",
        cfg->file_mode);
  if (cfg->follow_poll_ms < 1 || cfg->follow_poll_ms > 60000)
    BAD(WALRUS_EINVAL, "follow_poll_ms: %u is outside 1..60000",
        cfg->follow_poll_ms);
  if (cfg->tx_max_entries < 1 || cfg->tx_max_entries > 10000000)
    BAD(WALRUS_EINVAL, "tx_max_entries: %u is outside 1..10000000",
        cfg->tx_max_entries);
  if (cfg->tx_cleanup_interval_ms > 3600000)
    BAD(WALRUS_EINVAL, "tx_cleanup_interval_ms: %u is outside 0..3600000",
        cfg->tx_cleanup_interval_ms);
  if (cfg->tx_max_pending_bytes < 4 * KIB ||
      cfg->tx_max_pending_bytes > 1024 * GIB)
    BAD(WALRUS_EINVAL, "tx_max_pending_bytes: %llu is outside 4096..%llu",
        (unsigned long long)cfg->tx_max_pending_bytes,
        (unsigned long long)(1024 * GIB));
  if (cfg->vfs != NULL) {
    const walrus_vfs_t *v = cfg->vfs;
    if (v->version < 1) BAD(WALRUS_EINVAL, "vfs: version %d < 1", v->version);
    if (!v->open || !v->close || !v->pread || !v->pwrite || !v->sync ||
        !v->truncate || !v->allocate || !v->size || !v->lock || !v->rename ||
        !v->unlink || !v->sync_dir || !v->list || !v->mkdir)
      BAD(WALRUS_EINVAL, "vfs: a version 1 method is NULL");
    if (v->version >= 2 && (v->map == NULL) != (v->unmap == NULL))
      BAD(WALRUS_EINVAL, "vfs: map and unmap must both be set or both NULL");
    if (v->version >= 5) {
      int n = !!v->dir_open + !!v->dir_close + !!v->open_at + !!v->rename_at +
              !!v->unlink_at + !!v->sync_dir_at + !!v->list_at;
      if (n != 0 && n != 7)
        BAD(WALRUS_EINVAL, "vfs: the seven version 5 methods (dir_open ... "
                           "list_at) must all be set or all NULL");
    }
  }
  if (cfg->allocator != NULL &&
      (!cfg->allocator->malloc_fn || !cfg->allocator->realloc_fn ||
       !cfg->allocator->free_fn))
    BAD(WALRUS_EINVAL, "allocator: a function is NULL");
  return WALRUS_OK;
}

/* Each read bit of the file mode gives the directory the search bit
 * beside it: 0600 makes 0700, 0640 makes 0750, 0664 makes 0775. */
unsigned walrus__dir_mode(unsigned file_mode) {
  return file_mode | ((file_mode & 0444u) >> 2);
}

int walrus_config_check(const walrus_config_t *cfg, char *msg,
                        size_t msglen) {
  return walrus__config_check(cfg, msg, msglen);
}
