/* dlog_disk.h — the on-disk copy of the delivery logs (delivery.dir, LMDB).
 * im/dlog.c keeps the logs in memory and writes every change through to
 * here while it holds the log's lock, so the disk holds exactly what memory
 * holds; at start dlog_disk_load gives everything back, log by log, oldest
 * entry first. Survives a kill -9 of the node (the write is in the OS's
 * page cache when the call returns). */
#ifndef IMGATE_DLOG_DISK_H
#define IMGATE_DLOG_DISK_H

#include <stddef.h>

#include "im/dlog.h"

/* Opens (creating it if needed) the store in directory dir. 0 or -1. */
int dlog_disk_open(const char *dir, char *err, size_t errlen);
void dlog_disk_close(void);

/* One more entry at the end of k's log. 0 or -1 (logged). */
int dlog_disk_put(const dlog_key *k, const dlog_entry *e);
/* Removes k's entries with an id up to and including `upto`. 0 or -1. */
int dlog_disk_trim(const dlog_key *k, dlog_id upto);
/* A user's pushed cursor. 0 or -1. */
int dlog_disk_cursor_put(const dlog_key *k, dlog_id id);
/* Forgets the cursor of a log that was dropped whole (dlog_sweep). */
int dlog_disk_cursor_del(const dlog_key *k);

typedef void (*dlog_disk_entry_fn)(const dlog_key *k, const dlog_entry *e, void *ud);
typedef void (*dlog_disk_cursor_fn)(const dlog_key *k, dlog_id id, void *ud);
/* Calls on_entry for every stored entry (each log's entries oldest first)
 * and on_cursor for every stored cursor. 0 or -1. */
int dlog_disk_load(dlog_disk_entry_fn on_entry, dlog_disk_cursor_fn on_cursor, void *ud);

/* Added by dlog_disk.c (for tests): the map size a store opened after this
 * call starts with (0 = the default, 1 GiB); the map doubles when full. */
void dlog_disk_set_map_start(size_t bytes);

#endif
