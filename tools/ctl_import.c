/* kedge-ctl import: a KubeEdge node's edgecore.db copied into the bridge's meta DB and the
 * plugin's DB, with both services stopped (docs/kubeedge-wire.md §3). No network. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kedge/buf.h"
#include "kedge/schema.h"
#include "ctl.h"

/* The beego-era DDL (docs/kubeedge-wire.md §3.1), so that a target that does not exist yet gets the
 * tables the bridge and the plugin would make themselves. */
static const char meta_ddl[] = KEDGE_SCHEMA_META;
static const char plugin_ddl[] = KEDGE_DDL_DEVICES KEDGE_DDL_SUB_TOPICS;

/* One table's copy: statements run in order inside the target's transaction; the row count is
 * the changes of the last one. Columns are named, so beego (<= v1.22) and gorm (v1.23+)
 * databases both work. device_attr / device_twin rows have their own ids in each database, so
 * the imported devices' rows replace ours by device instead of by id. */
struct import_table {
    const char *name;
    const char *const sql[3];
};

static const struct import_table meta_tables[] = {
    {"meta",
     {"INSERT OR REPLACE INTO main.`meta` (`key`, `type`, `value`) "
      "SELECT `key`, `type`, `value` FROM src.`meta`",
      NULL}},
    {"sub_topics",
     {"INSERT OR REPLACE INTO main.`sub_topics` (`topic`) SELECT `topic` FROM src.`sub_topics`",
      NULL}},
};

static const struct import_table plugin_tables[] = {
    {"device",
     {"INSERT OR REPLACE INTO main.`device` (`id`, `name`, `description`, `state`, `last_online`) "
      "SELECT `id`, `name`, `description`, `state`, `last_online` FROM src.`device`",
      NULL}},
    {"device_attr",
     {"DELETE FROM main.`device_attr` WHERE `deviceid` IN (SELECT `id` FROM src.`device`) "
      "OR `deviceid` IN (SELECT `deviceid` FROM src.`device_attr`)",
      "INSERT INTO main.`device_attr` (`deviceid`, `name`, `description`, `value`, `optional`, "
      "`attr_type`, `metadata`) SELECT `deviceid`, `name`, `description`, `value`, `optional`, "
      "`attr_type`, `metadata` FROM src.`device_attr` ORDER BY `id`",
      NULL}},
    {"device_twin",
     {"DELETE FROM main.`device_twin` WHERE `deviceid` IN (SELECT `id` FROM src.`device`) "
      "OR `deviceid` IN (SELECT `deviceid` FROM src.`device_twin`)",
      "INSERT INTO main.`device_twin` (`deviceid`, `name`, `description`, `expected`, `actual`, "
      "`expected_meta`, `actual_meta`, `expected_version`, `actual_version`, `optional`, "
      "`attr_type`, `metadata`) SELECT `deviceid`, `name`, `description`, `expected`, `actual`, "
      "`expected_meta`, `actual_meta`, `expected_version`, `actual_version`, `optional`, "
      "`attr_type`, `metadata` FROM src.`device_twin` ORDER BY `id`",
      NULL}},
    {"sub_topics",
     {"INSERT OR REPLACE INTO main.`sub_topics` (`topic`) SELECT `topic` FROM src.`sub_topics`",
      NULL}},
};

struct import_target {
    const char *what; /* "the bridge's meta DB", "the plugin's DB" */
    const char *path;
    const char *ddl;
    const struct import_table *tables;
    size_t n_tables;
    const char *stop_hint; /* which service holds it */
    bool flock;            /* kedge-bridge holds an flock on its meta DB while it runs */
};

/* "file:" URI of path, read-only, so that ATTACH never creates or changes the source. */
static void source_uri(struct kedge_buf *b, const char *path)
{
    static const char keep[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/";
    const unsigned char *p;

    if (kedge_buf_puts(b, "file:") < 0)
        die_oom();
    for (p = (const unsigned char *)path; *p; p++)
        if ((strchr(keep, *p) ? kedge_buf_putc(b, (char)*p) : kedge_buf_printf(b, "%%%02X", *p)) <
            0)
            die_oom();
    if (kedge_buf_puts(b, "?mode=ro") < 0)
        die_oom();
}

static bool busy(sqlite3 *db)
{
    int e = sqlite3_errcode(db);

    return e == SQLITE_BUSY || e == SQLITE_LOCKED;
}

static void complain_db(const struct import_target *t, sqlite3 *db, const char *doing)
{
    if (db && busy(db))
        complain("%s %s is in use: %s holds it while it runs. Stop %s first, then import "
                 "again (nothing was changed)\n",
                 t->what, t->path, t->stop_hint, t->stop_hint);
    else
        complain("%s %s: %s: %s (nothing was changed)\n", t->what, t->path, doing,
                 db ? sqlite3_errmsg(db) : "out of memory");
}

static bool source_has(sqlite3 *db, const char *table)
{
    sqlite3_stmt *st = NULL;
    bool has = false;

    if (sqlite3_prepare_v2(db, "SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND name = ?1",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC) == SQLITE_OK)
        has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has;
}

/* One target's import: opened, locked and in its transaction (import_begin), filled
 * (import_copy), committed (import_commit), closed (import_end). Every target is begun before
 * any is filled, so a service still running is found before anything changes. */
struct import_job {
    const struct import_target *t;
    sqlite3 *db;
    int lock_fd;
    bool in_txn;
    long long counts[8];
};

/* Returns 0 or EXIT_REFUSED after printing why. */
static int import_begin(struct import_job *j, const struct import_target *t, const char *uri)
{
    sqlite3_stmt *st = NULL;
    int rc = EXIT_REFUSED;

    memset(j, 0, sizeof(*j));
    j->t = t;
    j->lock_fd = -1;
    if (sqlite3_open_v2(t->path, &j->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot open");
        return rc;
    }
    (void)sqlite3_busy_timeout(j->db, 0); /* a held lock means a running service: say so now */
    if (t->flock) {
        j->lock_fd = open(t->path, O_RDONLY | O_CLOEXEC);
        if (j->lock_fd < 0 || flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno == EWOULDBLOCK)
                complain("%s %s is in use: %s holds it while it runs. Stop %s first, then "
                         "import again (nothing was changed)\n",
                         t->what, t->path, t->stop_hint, t->stop_hint);
            else
                complain("%s %s: %s\n", t->what, t->path, strerror(errno));
            return rc;
        }
    }
    /* the plugin's exclusive lock shows here, before the source is involved */
    if (sqlite3_exec(j->db, "SELECT count(*) FROM main.sqlite_master", NULL, NULL, NULL) !=
        SQLITE_OK) {
        complain_db(t, j->db, "cannot read");
        return rc;
    }
    if (sqlite3_prepare_v2(j->db, "ATTACH DATABASE ?1 AS src", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        complain("cannot read %s: %s\n", uri, sqlite3_errmsg(j->db));
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot start a transaction");
        return rc;
    }
    j->in_txn = true;
    if (sqlite3_exec(j->db, t->ddl, NULL, NULL, NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot create its tables");
        return rc;
    }
    return 0;
}

/* Copy the target's tables from the source (inside its transaction). 0 or EXIT_REFUSED. */
static int import_copy(struct import_job *j)
{
    const struct import_target *t = j->t;
    size_t i, k;

    for (i = 0; i < t->n_tables; i++) {
        j->counts[i] = -1; /* not in the source */
        if (!source_has(j->db, t->tables[i].name))
            continue;
        for (k = 0; k < 3 && t->tables[i].sql[k]; k++) {
            if (sqlite3_exec(j->db, t->tables[i].sql[k], NULL, NULL, NULL) != SQLITE_OK) {
                complain_db(t, j->db, t->tables[i].name);
                return EXIT_REFUSED;
            }
        }
        j->counts[i] = sqlite3_changes(j->db);
    }
    return 0;
}

static int import_commit(struct import_job *j)
{
    const struct import_target *t = j->t;
    size_t i;

    if (sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        complain_db(t, j->db, "cannot commit");
        return EXIT_REFUSED;
    }
    j->in_txn = false;
    out("%s %s:", t->what, t->path);
    for (i = 0; i < t->n_tables; i++) {
        if (j->counts[i] < 0)
            out(" %s (not in the source)", t->tables[i].name);
        else
            out(" %s %lld", t->tables[i].name, j->counts[i]);
        out(i + 1 < t->n_tables ? "," : "\n");
    }
    return 0;
}

static void import_end(struct import_job *j)
{
    if (j->in_txn)
        (void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(j->db); /* NULL is a no-op */
    if (j->lock_fd >= 0)
        (void)close(j->lock_fd);
    memset(j, 0, sizeof(*j));
    j->lock_fd = -1;
}

int cmd_import(struct cmd_ctx *c, int argc, char **argv)
{
    const char *src = NULL, *meta_db = c->cfg->meta_db_path, *plugin_db = NULL, *v;
    struct kedge_buf uri = KEDGE_BUF_INIT;
    struct import_target meta = {
        .what = "the bridge's meta DB",
        .ddl = meta_ddl,
        .tables = meta_tables,
        .n_tables = sizeof(meta_tables) / sizeof(meta_tables[0]),
        .stop_hint = "kedge-bridge",
        .flock = true,
    };
    struct import_target plugin = {
        .what = "the plugin's DB",
        .ddl = plugin_ddl,
        .tables = plugin_tables,
        .n_tables = sizeof(plugin_tables) / sizeof(plugin_tables[0]),
        .stop_hint = "mosquitto (kedge_plugin.so)",
    };
    struct import_job jobs[2];
    sqlite3 *probe = NULL;
    struct stat sst, tst;
    size_t i;
    int rc;

    for (int k = 0; k < argc; k++) {
        int lv = long_value(argc, argv, &k, "--meta-db", &v);
        if (lv == 1) {
            meta_db = v;
            continue;
        }
        if (lv == 0 && (lv = long_value(argc, argv, &k, "--plugin-db", &v)) == 1) {
            plugin_db = v;
            continue;
        }
        if (lv < 0 || argv[k][0] == '-' || src) {
            complain("usage: import EDGECORE_DB [--meta-db PATH] [--plugin-db PATH]\n");
            return EXIT_USAGE;
        }
        src = argv[k];
    }
    if (!src) {
        complain("usage: import EDGECORE_DB [--meta-db PATH] [--plugin-db PATH]\n");
        return EXIT_USAGE;
    }
    errno = 0;
    if (stat(src, &sst) < 0 || !S_ISREG(sst.st_mode)) {
        complain("cannot read %s: %s\n", src, errno ? strerror(errno) : "not a file");
        return EXIT_USAGE;
    }
    if ((stat(meta_db, &tst) == 0 && tst.st_ino == sst.st_ino && tst.st_dev == sst.st_dev) ||
        (plugin_db && stat(plugin_db, &tst) == 0 && tst.st_ino == sst.st_ino &&
         tst.st_dev == sst.st_dev)) {
        complain("%s is the source and a target\n", src);
        return EXIT_USAGE;
    }
    source_uri(&uri, src);
    /* is it a database at all? (before anything is written anywhere) */
    if (sqlite3_open_v2(uri.data, &probe, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(probe, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        complain("%s is not a SQLite database: %s\n", src,
                 probe ? sqlite3_errmsg(probe) : "out of memory");
        sqlite3_close_v2(probe);
        kedge_buf_cleanup(&uri);
        return EXIT_REFUSED;
    }
    sqlite3_close_v2(probe);
    memset(jobs, 0, sizeof(jobs));
    jobs[0].lock_fd = jobs[1].lock_fd = -1;
    meta.path = meta_db;
    plugin.path = plugin_db;
    /* both begun (locked, in their transactions) before either is written */
    rc = import_begin(&jobs[0], &meta, uri.data);
    if (rc == 0 && plugin_db)
        rc = import_begin(&jobs[1], &plugin, uri.data);
    for (i = 0; rc == 0 && i < 2 && jobs[i].t; i++)
        rc = import_copy(&jobs[i]);
    for (i = 0; rc == 0 && i < 2 && jobs[i].t; i++)
        rc = import_commit(&jobs[i]);
    if (rc == 0 && !plugin_db)
        complain("devices, twins and sub_topics were not copied: give --plugin-db PATH "
                 "(plugin_opt_db_path in mosquitto.conf)\n");
    import_end(&jobs[0]);
    import_end(&jobs[1]);
    kedge_buf_cleanup(&uri);
    return rc;
}
