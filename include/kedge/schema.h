/* The SQLite schema of kedge's databases, once: edgecore's own tables (KubeEdge's beego-era
 * DDL, docs/kubeedge-wire.md §3.1, byte for byte, so an edgecore.db and ours are interchangeable
 * and `kedge-ctl import` copies rows as they are) and kedge's additions (the plugin's hand-off
 * queue to the bridge, the bridge's queue to the cloud and its dead letters).
 *
 * Every statement is `CREATE ... IF NOT EXISTS` ending in ';', so the strings concatenate into
 * one sqlite3_exec script and run again harmlessly on an existing database. Columns added after
 * a first release are not here: each store adds them to older databases itself (its migrate()).
 * Changing a byte here changes what existing databases are checked against: don't.
 */
#ifndef KEDGE_SCHEMA_H
#define KEDGE_SCHEMA_H

/* ---- edgecore's tables --------------------------------------------------------------------- */

/* DeviceTwin's devices, their attributes and their twins. */
#define KEDGE_DDL_DEVICE                                                                           \
    "CREATE TABLE IF NOT EXISTS `device` (`id` varchar(64) NOT NULL PRIMARY KEY, `name` text, "    \
    "`description` text, `state` text, `last_online` text);"
#define KEDGE_DDL_DEVICE_ATTR                                                                      \
    "CREATE TABLE IF NOT EXISTS `device_attr` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, "  \
    "`deviceid` text, `name` text, `description` text, `value` text, `optional` bool, "            \
    "`attr_type` text, `metadata` text);"
#define KEDGE_DDL_DEVICE_TWIN                                                                      \
    "CREATE TABLE IF NOT EXISTS `device_twin` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, "  \
    "`deviceid` text, `name` text, `description` text, `expected` text, `actual` text, "           \
    "`expected_meta` text, `actual_meta` text, `expected_version` text, `actual_version` text, "   \
    "`optional` bool, `attr_type` text, `metadata` text);"
/* MetaManager's objects, keyed namespace/type/name. */
#define KEDGE_DDL_META                                                                             \
    "CREATE TABLE IF NOT EXISTS `meta` (`key` varchar(256) NOT NULL PRIMARY KEY, "                 \
    "`type` varchar(32) NOT NULL DEFAULT '', `value` text);"
/* EventBus: topics the cloud subscribed this node to. */
#define KEDGE_DDL_SUB_TOPICS                                                                       \
    "CREATE TABLE IF NOT EXISTS `sub_topics` (`topic` text NOT NULL PRIMARY KEY);"

/* DeviceTwin's three tables, as edgecore makes them. */
#define KEDGE_DDL_DEVICES KEDGE_DDL_DEVICE KEDGE_DDL_DEVICE_ATTR KEDGE_DDL_DEVICE_TWIN

/* ---- kedge's additions ---------------------------------------------------------------------- */

/* The plugin's: without these every twin write scans the whole table. */
#define KEDGE_DDL_TWIN_INDEXES                                                                     \
    "CREATE INDEX IF NOT EXISTS kedge_device_twin_key ON device_twin(deviceid, name);"             \
    "CREATE INDEX IF NOT EXISTS kedge_device_attr_key ON device_attr(deviceid, name);"
/* The plugin's durable hand-off to the bridge (include/kedge/ke.h). */
#define KEDGE_DDL_PLUGIN_OUTBOX                                                                    \
    "CREATE TABLE IF NOT EXISTS kedge_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "             \
    "msg TEXT NOT NULL, created_ms INTEGER NOT NULL, subject TEXT, bytes INTEGER);"
/* The bridge's queue to the cloud, the newest sequence per subject, and its counters. */
#define KEDGE_DDL_BRIDGE_QUEUE                                                                     \
    "CREATE TABLE IF NOT EXISTS kedge_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "              \
    "msg_id TEXT NOT NULL UNIQUE, msg TEXT NOT NULL, kind INTEGER NOT NULL, "                      \
    "created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0);"                            \
    "CREATE TABLE IF NOT EXISTS kedge_subject_seen (subject TEXT PRIMARY KEY, "                    \
    "seq INTEGER NOT NULL) WITHOUT ROWID;"                                                         \
    "CREATE TABLE IF NOT EXISTS kedge_outbox_kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL) "   \
    "WITHOUT ROWID;"
/* The bridge's dead letters: entries the cloud refused or never answered. */
#define KEDGE_DDL_DEAD_LETTERS                                                                     \
    "CREATE TABLE IF NOT EXISTS kedge_dead (id INTEGER PRIMARY KEY AUTOINCREMENT, "                \
    "msg_id TEXT NOT NULL, msg TEXT NOT NULL, resource TEXT, kind INTEGER NOT NULL, "              \
    "reason TEXT NOT NULL, failures INTEGER NOT NULL, created_ms INTEGER NOT NULL, "               \
    "dead_ms INTEGER NOT NULL);"

/* ---- each database's whole script ---------------------------------------------------------- */

/* The plugin's DB (plugin_opt_db_path): edgecore's device tables and sub_topics plus kedge's. */
#define KEDGE_SCHEMA_PLUGIN                                                                        \
    KEDGE_DDL_DEVICES KEDGE_DDL_TWIN_INDEXES KEDGE_DDL_SUB_TOPICS KEDGE_DDL_PLUGIN_OUTBOX
/* The bridge's meta DB (meta_db_path): edgecore's MetaManager and EventBus tables. */
#define KEDGE_SCHEMA_META KEDGE_DDL_META KEDGE_DDL_SUB_TOPICS

#endif
