/* The $ke/ contract: how the plugin (inside mosquitto) and kedge-bridge (or kedge-ctl) talk
 * over the local broker. Only the bridge identity may publish or subscribe under $ke/; the
 * plugin denies everyone else (plugin/security.c).
 *
 * Every cloud-bound or cloud-originated message on this channel is a beehive message
 * (include/kedge/msg.h) exactly as it goes to / comes from cloudcore, so the bridge relays
 * without understanding twins, and the plugin speaks KubeEdge's own vocabulary.
 *
 * ---- session --------------------------------------------------------------------------------
 *
 *  $ke/hello                      bridge -> plugin
 *      {"node_name":"edge-1","version":1}
 *  $ke/hello/result               plugin -> that client only
 *      {"accepted":true,"node_name":"edge-1","outbox_depth":12,"last_seq":4711}
 *    last_seq: the highest outbox seq this kedge.db ever gave (0: a new database). The bridge
 *    forgets its per-device "newest taken" marks above it (a replaced kedge.db numbers from 1).
 *      {"accepted":false,"reason":"node name mismatch: plugin_opt_node_name is edge-1, the
 *       bridge says edge-2"}
 *    An accepted hello makes that client the bridge: the plugin (re)offers every unacked
 *    outbox entry from the oldest, in order. A later hello (reconnect) starts over from the
 *    oldest unacked entry. Both sides log a refusal.
 *
 * ---- plugin -> cloud: the durable outbox ------------------------------------------------------
 *
 *  $ke/outbox/{seq}               plugin -> bridge client only, QoS 1
 *      a beehive message for cloudcore, e.g. a device twin change (docs/kubeedge-wire.md §2.8):
 *      {"header":{"msg_id":"<uuid>","timestamp":T},"route":{"source":"twin","group":"resource",
 *       "operation":"update","resource":"device/default/thermo/twin/edge_updated"},
 *       "content":{"event_id":"<uuid>","timestamp":T,"twin":{"temperature":{"actual":{"value":
 *       "25","metadata":{"timestamp":T}},"optional":true,"metadata":{"type":"int"},
 *       "actual_version":{"cloud":0,"edge":4}}}}}
 *      a device state change (docs/kubeedge-wire.md §2.7; content is the state result JSON as a
 * string):
 *      {"header":{...},"route":{"source":"twin","group":"resource","operation":"update",
 *       "resource":"device/default/thermo/state/update"},"content":"{\"event_id\":...}"}
 *      an MQTT upload (docs/kubeedge-wire.md §1.2; $hw/events/upload/#, SYS/dis/upload_records,
 * +/user/#, and the topics the cloud subscribed to; QoS 0 publishes included):
 *      {"header":{...},"route":{"source":"bus","group":"user","operation":"upload",
 *       "resource":"<the MQTT topic>"},"content":"<the payload as a string>"}
 *    seq is a decimal, strictly increasing across restarts. The entry was committed in the
 *    same SQLite transaction as the change that caused it. A twin or state report (a resource
 *    kedge_coalesce_kind() names, include/kedge/coalesce.h) is state: while one waits for the
 *    bridge's ack, a newer report of the same resource is folded into it (kedge_coalesce_merge)
 *    and the merged entry replaces it under a NEW seq in the same transaction, so an offered
 *    seq may vanish unacked and the bridge sees that resource again later; the waiting twin
 *    and state part is at most 2 entries per device, and is never refused. Uploads are events:
 *    in order, each at most plugin_opt_max_upload_bytes encoded (16 MiB; over it the publish
 *    is refused: MOSQ_ERR_ACL_DENIED, v5 QoS 1/2 reason 0x87, v3.1.1 dropped, counted
 *    uploads_oversize), all of them within plugin_opt_upload_budget_bytes (256 MiB) and
 *    plugin_opt_outbox_max rows; one that does not fit is refused (plugin_opt_upload_policy
 *    refuse, counted uploads_refused) or the oldest waiting uploads are deleted for it
 *    (drop-oldest, counted uploads_dropped). At most KE_WINDOW entries are in
 *    flight; the rest follow as acks arrive. Offers go at QoS 0 (the table is the
 *    durability, the ack the receipt); offers left unacked for 5 s are made again.
 *  $ke/ack/{seq}                  bridge -> plugin, empty payload
 *    Cumulative: the bridge has stored every entry up to and including seq in its own
 *    durable queue (entries arrive in order on one connection). The plugin then deletes them.
 *    A bridge acks once per batch it commits. Acks at or below an earlier one are ignored.
 *
 * ---- cloud -> plugin --------------------------------------------------------------------------
 *
 *  $ke/down/{ref}                 bridge (or kedge-ctl) -> plugin
 *      a beehive message from the cloud, handled as edgecore's DeviceTwin / EventBus would:
 *      group "twin", resource "membership", operation "update":
 *        content {"event_id","timestamp","added_devices":[Device...]|null,
 *                 "removed_devices":[Device...]|null}
 *        where Device is {"id":"default/thermo","name":"thermo","description":"...",
 *        "attributes":{...},"twin":{"temperature":{"metadata":{"type":"int"},"optional":true}}}
 *        (twins carry names and types; values, when present, need versions: docs/kubeedge-wire.md
 * §2.5) group "twin", resource "device/{id}/twin/cloud_updated": content {"event_id",
 *        "timestamp","twin":{...with expected_version/actual_version...}} (sync semantics)
 *      group "twin", resource "device/{id}/twin/desired" (kedge's own; the bridge's devices.c
 *        sends it for each Device whose spec.properties[].desired.value changed, since
 *        cloudcore sends the Device, not a twin message): content {"event_id","timestamp",
 *        "twin":{"temperature":{"expected":{"value":"22"},"metadata":{"type":"int"}}}}.
 *        Applied as the cloud's decision, without versions: an expected value that differs
 *        from the twin's becomes its expected value, the twin's expected cloud version goes up
 *        by one, document and delta ($hw/events/device/{id}/twin/update/delta) are published
 *        after the commit. A missing twin is added with the given type (string if none).
 *        Nothing goes to the cloud. Actual values are never touched; a value already held, or
 *        one not of the twin's type (logged), changes nothing and publishes nothing. Unknown
 *        device: {"ok":false,"code":400} (the bridge then leaves the Device unacked).
 *      group "twin", resource "device/{id}/twin/update" (kedge's own; the bridge sends it for
 *        a DMI mapper's ReportDeviceStatus, cloudbridge/dmi/): content is the twin update a
 *        device publishes on $hw/events/device/{id}/twin/update, and it is handled exactly as
 *        that publish (result, document, delta, edge_updated to the cloud). The answer carries
 *        the code of the device's error result: 404 unknown device, 400 a value or body
 *        refused (with edgecore's reason), 500 the store.
 *      group "user", source "router_eventbus", operation "publish" / "subscribe" /
 *        "unsubscribe" / "message", resource = the MQTT topic (docs/kubeedge-wire.md §1.3)
 *      source "edgehub", resource "node/connection", operation "connect", content
 *        "cloud_connected" / "cloud_disconnected"
 *    ref is the sender's token (the bridge uses the cloud msg_id).
 *  $ke/down/{ref}/result          plugin -> that client only
 *      {"ok":true}  or  {"ok":false,"code":400,"reason":"..."}
 *    Sent after the change is committed; the bridge acks the cloud only then.
 *
 * ---- health ------------------------------------------------------------------------------------
 *
 *  $ke/status                     bridge -> plugin, every few seconds
 *      {"link":"connected","reconnects":3,"last_keepalive_ms":T,"last_delivery_ms":T,
 *       "outbox_depth":0,"outbox_oldest_ms":0,"outbox_set_aside":0,"cert_not_after_s":1795000000}
 *    (times are Unix ms, 0 = never; cert_not_after_s Unix seconds, 0 = unknown;
 *    outbox_set_aside: entries moved to the bridge's dead letters since start, because the cloud
 *    never answered them in resend_max resends or refused them poison_after times)
 *    and the bridge queue's figures (issue 13): "upload_bytes" (uploads queued) of
 *    "upload_budget_bytes", "uploads_dropped" (drop-oldest, or one larger than the whole
 *    budget), "uploads_refused" (times the refuse policy began back-pressure at a seq),
 *    "dead_letters" (in the table now), "coalesced" (twin/state reports merged into a waiting
 *    one since start), "stale_dropped" (re-offers older than what their device took),
 *    "refusals" (link closes blamed on an entry, and "error" answers), "dropped_by_operator",
 *    "probing" (true while entries go one at a time to find the one the cloud refuses)
 *  $SYS/kedge/{node}/plugin and $SYS/kedge/{node}/bridge: retained, refreshed every 5 s by the
 *    plugin: the plugin's status (below) and the bridge's last $ke/status, for operators and
 *    monitoring (readable as the broker's ACLs allow).
 *
 * ---- operator queries (kedge-ctl) -------------------------------------------------------------
 *
 *  $ke/ctl/{ref}                  kedge-ctl -> plugin
 *      {"op":"status"} | {"op":"device_list"} | {"op":"device_get","id":"default/thermo"}
 *      | {"op":"outbox_list","limit":20} | {"op":"outbox_show","seq":S}
 *      | {"op":"outbox_drop","seq":S}
 *  $ke/ctl/{ref}/result           plugin -> that client only
 *      status:      {"node_name":"edge-1","bridge_connected":true,"cloud_connected":false,
 *                    "outbox_depth":3,"outbox_max":100000,"state_pending":1,"upload_rows":2,
 *                    "upload_bytes":630,"upload_budget_bytes":268435456,
 *                    "max_upload_bytes":16777216,"upload_policy":"refuse",
 *                    "uploads_refused":0,"uploads_dropped":0,"uploads_oversize":0,
 *                    "dropped_by_operator":0,"coalesced":41,"outbox_oldest_age_ms":1200,
 *                    "last_ack_ms":T,"devices":2,"twin_updates":40,"twin_gets":3,"state_updates":1,
 *                    "membership_gets":0,"twin_errors":2,"db_bytes":122880,"store_ok":true,
 *                    "bridge":<the bridge's last $ke/status, or null>}
 *                   outbox_depth: committed entries; state_pending: twin/state entries
 *                   waiting; upload_rows/upload_bytes: waiting uploads (bytes of their encoded
 *                   messages, what the budget counts); outbox_max: the uploads' row bound;
 *                   the five counters count since the broker started (coalesced: reports
 *                   folded into a waiting one); twin_updates (from MQTT and DMI mappers),
 *                   twin_gets, state_updates, membership_gets and twin_errors (error results
 *                   answered) count requests since the broker started.
 *      device_list: the membership get result shape (docs/kubeedge-wire.md §2.10)
 *      device_get:  the twin get result shape (docs/kubeedge-wire.md §2.6), or
 * {"code":404,"reason":"..."} outbox_list: the head of the plugin's outbox, oldest first (limit:
 * default 20, at most 200), the open batch included:
 *                   {"entries":[{"seq":S,"resource":"device/default/thermo/twin/edge_updated",
 *                   "subject":true,"bytes":B,"age_ms":A},...],"depth":D,"bytes":B,
 *                   "state_pending":N}; subject: a twin/state entry (folded, never refused);
 *                   depth: all entries; bytes: the waiting uploads' bytes.
 *      outbox_show: {"seq":S,"subject":false,"msg":<the beehive message>}, or {"code":404,...}
 *      outbox_drop: {"ok":true} once the commit that deletes it is done (logged, counted as
 *                   dropped_by_operator), or {"ok":false,"code":404|400|500,"reason":"..."}
 */
/* ---- the bridge's queue and dead letters (kedge-ctl outbox) ---------------------------------
 *
 * Answered by kedge-bridge (cloudbridge/hub/cloudq_ctl.c, and cloudbridge/dmi/dmi.c for
 * mapper_list), which subscribes to $ke/bctl/+.
 *
 *  $ke/bctl/{ref}                 asker -> bridge; ref: one topic level, unique per request
 *      {"op":"outbox_list","limit":N}   (default 20, at most 1000) the head of the queue:
 *        {"entries":[{"id":7,"msg_id":"...","resource":"...","kind":"fire"|"confirm",
 *         "subject":bool,"bytes":B,"age_ms":A,"failures":F,"reason":"last refusal or ''",
 *         "in_flight":bool,"blocked":bool}],"depth":D,"bytes":B,"budget_bytes":B}
 *        (subject: a twin/state report, coalesced per device; in_flight: on the link, its
 *        answer awaited; blocked: waits behind the one in flight)
 *      {"op":"outbox_show","id":7}      the same fields plus "msg":{...the beehive message...}
 *      {"op":"outbox_drop","id":7}      {"ok":true}
 *      {"op":"dead_list","limit":N}     {"entries":[{same fields, "reason":"cloud closed the
 *                                        link 1009 ... (3 times)","dead_ms":T}],"count":N}
 *      {"op":"dead_show","id":3}        one dead letter with its "msg"
 *      {"op":"dead_retry","id":3}       {"ok":true}: back to the queue's tail, failures 0; a
 *                                        twin/state one goes under its device's newer queued
 *                                        values (the cloud never sees older after newer)
 *      {"op":"dead_drop","id":3}        {"ok":true}
 *    Errors: {"code":404,"reason":"no such entry"}, {"code":409,...} (dead_retry while the
 *    device's report is on the link: retry after its answer), {"code":400,...} (bad request).
 *    Every drop and retry is one log line of the bridge and counted (dropped_by_operator).
 *      {"op":"mapper_list"}             the DMI mappers (cloudbridge/dmi/, kedge-ctl mapper
 *                                        list), oldest registration first:
 *        {"mappers":[{"name":"modbus-mapper","version":"v1.0","api_version":"v1beta1",
 *         "protocol":"modbus","address":"/etc/kubeedge/modbus.sock","state":"running",
 *         "registered_ms":T,"last_report_ms":T,"reports":N,"devices":["thermo-1",...]}]}
 *        (address: the mapper's socket path; registered_ms 0: read back from the meta table
 *        at the bridge's start, not registered since; last_report_ms 0 and reports count its
 *        ReportDeviceStatus calls the device twin accepted since the start; devices: the
 *        stored Devices of its protocol). Answered by cloudbridge/dmi/dmi.c; a bridge with
 *        dmi_enabled 0 answers it as an unknown op.
 *  $ke/bctl/{ref}/result          bridge -> whoever subscribed to it (subscribe before asking)
 */
/* ---- local metadata queries (the bridge's MetaManager) ------------------------------------------
 *
 * Answered by kedge-bridge, not the plugin: the bridge subscribes to $ke/meta/+ (only the bridge
 * identity can publish or subscribe under $ke/, so the asker uses it too, as kedge-ctl does).
 *
 *  $ke/meta/{ref}                 asker -> bridge; ref: one topic level, unique per request
 *      {"op":"query","resource":"default/configmap/cm1"}   one object, key = the resource
 *      {"op":"query","resource":"default/configmap"}       no name: every stored row of the type
 *      {"op":"list","type":"configmap"}                    the same, by type
 *      optional "timeout_ms": how long a remote query may wait for the cloud (default and
 *      upper bound: the bridge's remote_query_timeout_s)
 *  $ke/meta/{ref}/result          bridge -> whoever subscribed to it (subscribe before asking)
 *      {"ok":true,"source":"cloud","object":{...}}
 *      {"ok":true,"source":"local","object":{...}}
 *      {"ok":true,"source":"local","objects":[{"key":"default/configmap/cm1","object":{...}}]}
 *      {"ok":false,"reason":"default/configmap/cm9 is not stored on this node"}
 *    Answered as edgecore's MetaManager answers edged (docs/kubeedge-wire.md §6): while the cloud
 *    link is up, a remote-first type (configmap, secret, persistentvolume(claim),
 *    volumeattachment, serviceaccounttoken, lease, certificatesigningrequest, and node with
 *    node_namespace default, i.e. cloudcore up to v1.22) is asked of the cloud with a fresh
 *    msg_id; its reply is stored in the meta table and acked, then answered with source
 *    "cloud". The cloud's NotFound (or another error) is answered ok:false with its reason and
 *    message, and no answer within the timeout ok:false "no answer from the cloud ...".
 *    Everything else, and everything while the link is down, comes from the meta table (source
 *    "local"); a key that is not there is ok:false. Objects are the stored JSON (a value that is
 *    not JSON, from a foreign database, comes as a string). No answer at all means no bridge is
 *    connected to the broker.
 */
#ifndef KEDGE_KE_H
#define KEDGE_KE_H

#define KE_PREFIX "$ke/"
#define KE_HELLO "$ke/hello"
#define KE_HELLO_RESULT "$ke/hello/result"
#define KE_OUTBOX_PREFIX "$ke/outbox/"
#define KE_ACK_PREFIX "$ke/ack/"
#define KE_DOWN_PREFIX "$ke/down/"
#define KE_CTL_PREFIX "$ke/ctl/"
#define KE_RESULT_SUFFIX "/result"
#define KE_STATUS "$ke/status"
#define KE_SYS_PREFIX "$SYS/kedge/"
#define KE_META_PREFIX "$ke/meta/"
#define KE_BCTL_PREFIX "$ke/bctl/"
#define KE_SFX_TWIN_DESIRED "/twin/desired" /* device/{id}/twin/desired, cloud -> plugin */

#define KE_VERSION 1
#define KE_WINDOW 64 /* outbox entries in flight to the bridge */

/* Defaults shared by the plugin, the bridge and kedge-ctl. */
#define KE_DEFAULT_BRIDGE_USERNAME "kedge-bridge"

#endif
