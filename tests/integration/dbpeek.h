/* Reading a database another process holds open (the plugin's kedge.db with db_lock shared,
 * the bridge's bridge.db): WAL lets a reader in beside the writer. Check assertions. */
#ifndef KEDGE_DBPEEK_H
#define KEDGE_DBPEEK_H

#include <stdint.h>

/* The first column of the first row of sql, as an integer (asserted to exist). */
int64_t db_int(const char *path, const char *sql);

/* Wait until db_int(path, sql) is want, up to timeout_ms (scaled); asserted. */
void db_wait_int(const char *path, const char *sql, int64_t want, int timeout_ms);

#endif
