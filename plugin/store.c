/* SQLite persistence for devices and twins, in KubeEdge's own tables (docs/kubeedge-wire.md §3), so
 * an edgecore.db from a KubeEdge node opens as is and edgecore could read ours.
 *
 * Durability model: every write of a request goes into one open transaction; batch.c
 * commits it from the broker's TICK (group commit) and only then publishes the results that
 * depend on it. WAL with synchronous=NORMAL survives a killed process, not a power cut
 * (plugin_opt_sync full for that). Auto-checkpoints are off so no fsync lands on the hot path;
 * store_maintain() checkpoints when the broker is idle or the WAL has grown large.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/log.h"
#include "kedge/schema.h"
#include "kedge/util.h"
#include "store.h"
#include "store_int.h"

static struct kedge_ratelimit ckpt_rl = KEDGE_RATELIMIT_INIT(10000, 5);

/* The beego-era DDL (<= v1.22), verbatim from the spec: most deployed DBs look like this.
 * The two indexes are kedge's: without them every twin write scans the whole table. */
static const char schema_sql[] = KEDGE_SCHEMA_PLUGIN;

#define TWIN_COLS                                                                                  \
    "deviceid, name, description, expected, actual, expected_meta, actual_meta, "                  \
    "expected_version, actual_version, optional, attr_type, metadata"
#define ATTR_COLS "deviceid, name, description, value, optional, attr_type, metadata"
#define DEVICE_COLS "id, name, description, state, last_online"
/* bytes is NULL in rows written before the column existed */
#define OUTBOX_BYTES "coalesce(bytes, length(CAST(msg AS BLOB)))"
#define OUTBOX_ROW "seq, subject IS NOT NULL, " OUTBOX_BYTES ", created_ms, msg"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_TWIN_INSERT] = "INSERT INTO device_twin (" TWIN_COLS
                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_TWIN_UPDATE] = "UPDATE device_twin SET description = ?3, expected = ?4, actual = ?5, "
                       "expected_meta = ?6, actual_meta = ?7, expected_version = ?8, "
                       "actual_version = ?9, optional = ?10, attr_type = ?11, metadata = ?12 "
                       "WHERE deviceid = ?1 AND name = ?2",
    [ST_DEVICE_STATE] = "UPDATE device SET state = ?2, last_online = ?3 WHERE id = ?1",
    [ST_LOAD_DEVICES] = "SELECT " DEVICE_COLS " FROM device",
    [ST_LOAD_ATTRS] = "SELECT " ATTR_COLS " FROM device_attr ORDER BY deviceid, name, id",
    [ST_LOAD_TWINS] = "SELECT " TWIN_COLS " FROM device_twin ORDER BY deviceid, name, id",
    [ST_ONE_DEVICE] = "SELECT " DEVICE_COLS " FROM device WHERE id = ?1",
    [ST_ONE_ATTRS] = "SELECT " ATTR_COLS " FROM device_attr WHERE deviceid = ?1 ORDER BY name, id",
    [ST_ONE_TWINS] = "SELECT " TWIN_COLS " FROM device_twin WHERE deviceid = ?1 ORDER BY name, id",
    [ST_DEVICE_INSERT] =
        "INSERT OR REPLACE INTO device (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_DEVICE_DELETE] = "DELETE FROM device WHERE id = ?1",
    [ST_DEVICE_ATTRS_DELETE] = "DELETE FROM device_attr WHERE deviceid = ?1",
    [ST_DEVICE_TWINS_DELETE] = "DELETE FROM device_twin WHERE deviceid = ?1",
    [ST_ATTR_INSERT] =
        "INSERT INTO device_attr (" ATTR_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_ATTR_UPDATE] = "UPDATE device_attr SET description = ?3, value = ?4, optional = ?5, "
                       "attr_type = ?6, metadata = ?7 WHERE deviceid = ?1 AND name = ?2",
    [ST_ATTR_DELETE] = "DELETE FROM device_attr WHERE deviceid = ?1 AND name = ?2",
    [ST_OUTBOX_INSERT] = "INSERT INTO kedge_outbox (msg, created_ms, subject, bytes) "
                         "VALUES (?1, ?2, ?3, ?4)",
    [ST_OUTBOX_DELETE] = "DELETE FROM kedge_outbox WHERE seq <= ?1",
    [ST_OUTBOX_DELETE_ONE] = "DELETE FROM kedge_outbox WHERE seq = ?1",
    /* what a delete of the range takes away, per kind (uploads have no subject) */
    [ST_OUTBOX_GONE] = "SELECT subject IS NULL, count(*), total(" OUTBOX_BYTES ") "
                       "FROM kedge_outbox WHERE seq BETWEEN ?1 AND ?2 GROUP BY 1",
    [ST_OUTBOX_TALLY] = "SELECT subject IS NULL, count(*), total(" OUTBOX_BYTES ") "
                        "FROM kedge_outbox GROUP BY 1",
    [ST_OUTBOX_FIND] = "SELECT seq, msg FROM kedge_outbox WHERE subject = ?1 "
                       "ORDER BY seq DESC LIMIT 1",
    [ST_OUTBOX_UPLOAD_NEXT] = "SELECT seq, " OUTBOX_BYTES " FROM kedge_outbox "
                              "WHERE subject IS NULL AND seq > ?1 ORDER BY seq LIMIT 1",
    [ST_OUTBOX_LIST] = "SELECT " OUTBOX_ROW " FROM kedge_outbox ORDER BY seq LIMIT ?1",
    [ST_OUTBOX_GET] = "SELECT " OUTBOX_ROW " FROM kedge_outbox WHERE seq = ?1",
    [ST_OUTBOX_AFTER] = "SELECT seq, msg FROM kedge_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [ST_OUTBOX_STATS] = "SELECT count(*), max(seq) FROM kedge_outbox",
    [ST_OUTBOX_OLDEST] = "SELECT created_ms FROM kedge_outbox ORDER BY seq LIMIT 1",
    [ST_SUBTOPIC_INSERT] = "INSERT OR IGNORE INTO sub_topics (topic) VALUES (?1)",
    [ST_SUBTOPIC_DELETE] = "DELETE FROM sub_topics WHERE topic = ?1",
    [ST_SUBTOPIC_LOAD] = "SELECT topic FROM sub_topics",
    [ST_DB_BYTES] = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    [ST_TWIN_COUNTS] = "SELECT deviceid, count(*) FROM device_twin GROUP BY deviceid",
};

static void set_error(struct store *s, const char *what)
{
    const char *msg = s->db ? sqlite3_errmsg(s->db) : "cannot allocate";

    (void)snprintf(s->error, sizeof(s->error), "%s: %s", what, msg);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct store *s = arg;

    (void)db;
    (void)name;
    s->wal_pages = pages;
    return SQLITE_OK;
}

static void close_db(struct store *s)
{
    int i;

    for (i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]); /* NULL is a no-op */
        s->st[i] = NULL;
    }
    if (s->db)
        sqlite3_close_v2(s->db);
    s->db = NULL;
    s->in_txn = s->failed = false;
    s->pending = 0;
}

/* The twin and state reports already waiting in a kedge.db from before coalescing get their
 * resource as subject (kedge_coalesce_kind's shapes), so the next report of each is folded
 * into the newest of them; rows that do not parse stay uploads. Runs once, with the ALTER. */
static const char subjects_sql[] =
    "UPDATE kedge_outbox SET subject = json_extract(msg, '$.route.resource') "
    "WHERE subject IS NULL AND CASE WHEN json_valid(msg) THEN "
    "json_extract(msg, '$.route.source') = 'twin' AND "
    "(json_extract(msg, '$.route.resource') GLOB 'device/?*/twin/edge_updated' OR "
    "json_extract(msg, '$.route.resource') GLOB 'device/?*/state/update') ELSE 0 END";

/* A kedge.db from before coalescing gets the outbox's subject and bytes columns (bytes NULL
 * in its rows: sized from msg when read) and the index that finds a subject's entry. */
static int migrate(struct store *s)
{
    static const char *const columns[][2] = {
        {"subject", "ALTER TABLE kedge_outbox ADD COLUMN subject TEXT"},
        {"bytes", "ALTER TABLE kedge_outbox ADD COLUMN bytes INTEGER"},
    };
    size_t i;

    for (i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
        sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT 1 FROM pragma_table_info('kedge_outbox') WHERE name = ?1",
                               -1, &st, NULL) != SQLITE_OK)
            return KEDGE_ESTORE;
        sqlite3_bind_text(st, 1, columns[i][0], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return KEDGE_ESTORE;
        if (rc == SQLITE_DONE && sqlite3_exec(s->db, columns[i][1], NULL, NULL, NULL) != SQLITE_OK)
            return KEDGE_ESTORE;
        if (rc == SQLITE_DONE && i == 0 &&
            sqlite3_exec(s->db, subjects_sql, NULL, NULL, NULL) != SQLITE_OK)
            return KEDGE_ESTORE;
    }
    return sqlite3_exec(s->db,
                        "CREATE INDEX IF NOT EXISTS kedge_outbox_subject ON kedge_outbox(subject) "
                        "WHERE subject IS NOT NULL",
                        NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : KEDGE_ESTORE;
}

static int open_db(struct store *s)
{
    char pragmas[160];
    int i, rc;

    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_error(s, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* A short busy timeout: someone inspecting the DB with the sqlite3 CLI must not stall the
     * broker for long; a write that still finds it locked fails its batch (500). */
    sqlite3_busy_timeout(s->db, 20);
    (void)snprintf(
        pragmas, sizeof(pragmas),
        "PRAGMA locking_mode=%s; PRAGMA journal_mode=WAL; "
        "PRAGMA synchronous=%s; PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=16777216;",
        s->exclusive ? "EXCLUSIVE" : "NORMAL", s->sync_full ? "FULL" : "NORMAL");
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        set_error(s, "configure");
        goto fail;
    }
    if (sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK || migrate(s) < 0) {
        set_error(s, "schema");
        goto fail;
    }
    for (i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            set_error(s, "prepare");
            goto fail;
        }
    }
    sqlite3_wal_hook(s->db, wal_hook, s);
    s->error[0] = '\0';
    return 0;
fail:
    close_db(s);
    return KEDGE_ESTORE;
}

int store_open(const struct store_opts *o, struct store **out)
{
    struct store *s = kedge_calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->path = kedge_strdup(o->path);
    if (!s->path) {
        kedge_free(s);
        return -ENOMEM;
    }
    s->sync_full = o->sync_full;
    /* Exclusive locking takes the per-transaction fcntl() locks off the hot path (six
     * syscalls a commit, a third of the broker's CPU per twin update); the price is that no
     * other process can open the DB while the broker runs (kedge-ctl reads it over $ke/). */
    s->exclusive = o->exclusive;
    *out = s;
    return open_db(s);
}

int store_retry_open(struct store *s)
{
    if (s->db)
        return 0;
    return open_db(s);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->in_txn)
        (void)store_commit(s);
    if (s->db)
        (void)sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    close_db(s);
    kedge_free(s->path);
    kedge_free(s);
}

bool store_ok(const struct store *s)
{
    return s && s->db;
}

const char *store_error(const struct store *s)
{
    return s && s->error[0] ? s->error : "local store failed";
}

int store_step_error(struct store *s, int rc, const char *what)
{
    if (rc == SQLITE_DONE)
        return 0;
    set_error(s, what);
    return KEDGE_ESTORE;
}

/* ---- the open transaction -------------------------------------------------------------- */

int store_begin_write(struct store *s)
{
    int rc;

    if (!store_ok(s))
        return KEDGE_ESTORE;
    if (s->failed)
        return KEDGE_ESTORE;
    if (!s->in_txn) {
        rc = sqlite3_step(s->st[ST_BEGIN]);
        sqlite3_reset(s->st[ST_BEGIN]);
        if (rc != SQLITE_DONE) {
            set_error(s, "begin");
            s->failed = true; /* the batch this write belongs to must report failure */
            s->pending++;
            return KEDGE_ESTORE;
        }
        s->in_txn = true;
        s->oldest_ms = kedge_now_ms();
    }
    return 0;
}

/* Run a bound write statement; a failure poisons the batch. */
int store_finish_write(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    s->pending++;
    if (rc != SQLITE_DONE) {
        set_error(s, what);
        s->failed = true;
        return KEDGE_ESTORE;
    }
    return 0;
}

size_t store_pending(const struct store *s)
{
    return s && (s->in_txn || s->failed) ? (s->pending ? s->pending : 1) : 0;
}

uint64_t store_oldest_ms(const struct store *s)
{
    return s->oldest_ms;
}

int store_commit(struct store *s)
{
    int rc = 0;

    if (!s)
        return 0;
    if (!s->in_txn) {
        rc = s->failed ? KEDGE_ESTORE : 0; /* BEGIN itself failed: nothing was written */
        s->failed = false;
        s->pending = 0;
        return rc;
    }
    if (!s->failed) {
        int st = sqlite3_step(s->st[ST_COMMIT]);
        sqlite3_reset(s->st[ST_COMMIT]);
        if (st != SQLITE_DONE) {
            set_error(s, "commit");
            rc = KEDGE_ESTORE;
        }
    } else {
        rc = KEDGE_ESTORE;
    }
    if (rc < 0 && sqlite3_get_autocommit(s->db) == 0) {
        (void)sqlite3_step(s->st[ST_ROLLBACK]);
        sqlite3_reset(s->st[ST_ROLLBACK]);
    }
    s->in_txn = false;
    s->failed = false;
    s->pending = 0;
    return rc;
}

void store_maintain(struct store *s, bool idle)
{
    uint64_t now = kedge_now_ms();

    if (!store_ok(s) || s->in_txn || s->wal_pages == 0)
        return;
    /* Idle: checkpoint at most once a second. Busy: only once the WAL passes ~16 MB, so a
     * device flood cannot grow it without bound. */
    if ((idle && now - s->last_checkpoint_ms >= 1000) || s->wal_pages > 4096) {
        int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            kedge_log_limited(&ckpt_rl, "store", KEDGE_LOG_WARN, "store: checkpoint failed: %s",
                              sqlite3_errmsg(s->db));
        s->wal_pages = 0;
        s->last_checkpoint_ms = now;
    }
}

int store_exec_bound(struct store *s, enum stmt_id which, const char *what, const char *a,
                     const char *b)
{
    sqlite3_stmt *st = s->st[which];
    int rc = store_begin_write(s);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
    return store_finish_write(s, st, what);
}

/* ---- the cloud's subscriptions ----------------------------------------------------------- */

int store_subtopic(struct store *s, const char *topic, bool add)
{
    return store_exec_bound(s, add ? ST_SUBTOPIC_INSERT : ST_SUBTOPIC_DELETE,
                            add ? "insert sub_topic" : "delete sub_topic", topic, NULL);
}

int store_subtopics_load(struct store *s, store_topic_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc, err = 0;

    if (!store_ok(s))
        return KEDGE_ESTORE;
    st = s->st[ST_SUBTOPIC_LOAD];
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = fn(ctx, (const char *)sqlite3_column_text(st, 0));
    if (err == 0)
        err = store_step_error(s, rc, "load sub_topics");
    sqlite3_reset(st);
    return err;
}

int64_t store_db_bytes(struct store *s)
{
    sqlite3_stmt *st;
    int64_t n = -1;

    if (!store_ok(s))
        return -1;
    st = s->st[ST_DB_BYTES];
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}
