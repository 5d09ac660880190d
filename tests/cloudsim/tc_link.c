/* tc_link.c: test_cloudsim's cases for the link: TLS, sessions, keepalive, the ack contract, link
 * faults, malformed and big frames (test_cloudsim.c says how they work). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cloudsim.h"
#include "kedge/alloc.h"
#include "kedge/buf.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/log.h"
#include "kedge/msg.h"
#include "kedge/util.h"
#include "simctl.h"
#include "simtest.h"

/* The edge certificate is the only way in: no certificate, or one from another CA, fails the
 * TLS handshake, and no session is ever opened. */
START_TEST(test_client_cert_required)
{
    struct simctl *s = sim_start(0, 0);
    struct cloudsim_certs foreign;
    char foreign_dir[600];
    struct wsc_opts o = edge_opts(s, "edge-node");
    struct wsc w;

    o.cert = o.key = NULL;
    wsc_open(&w, s, &o);
    ck_assert_msg(!w.was_open, "connected without a client certificate");
    wsc_close(&w);

    (void)snprintf(foreign_dir, sizeof(foreign_dir), "%s/foreign", simctl_dir(s));
    ck_assert_int_eq(certs_ensure(foreign_dir, "edge-node", &foreign), 0);
    o = edge_opts(s, "edge-node");
    o.cert = foreign.edge_crt;
    o.key = foreign.edge_key;
    wsc_open(&w, s, &o);
    ck_assert_msg(!w.was_open, "connected with a certificate from another CA");
    wsc_close(&w);
    certs_cleanup(&foreign);

    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 0);
    o = edge_opts(s, "edge-node"); /* the right certificate works, on any path */
    o.path = "/some/other/path?x=1";
    wsc_open(&w, s, &o);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 1);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* ConnectionUse decides whether the cloud reads at all (viaduct ServeConn): without
 * "ConnectionUse: msg" the edge's keepalives are never seen and the session dies at the
 * keepalive deadline; with it, keepalives keep the session up past that deadline, and the
 * session dies once they stop. */
START_TEST(test_connection_use_and_keepalive)
{
    struct simctl *s = sim_start(2, 0);
    struct wsc_opts oa = edge_opts(s, "node-a"), ob = edge_opts(s, "node-b");
    struct wsc a, b;
    unsigned sent_before;
    char *use;

    oa.keepalive_ms = 300;
    wsc_open(&a, s, &oa);
    ck_assert_int_eq(a.state, WSC_OPEN);
    ob.keepalive_ms = 300;
    ob.conn_use = NULL; /* no ConnectionUse header */
    wsc_open_shared(&b, s, &ob, &a);
    ck_assert_int_eq(b.state, WSC_OPEN);

    use = state_str(s, "node-b", "connection_use");
    ck_assert_str_eq(use, "");
    kedge_free(use);
    use = state_str(s, "node-a", "connection_use");
    ck_assert_str_eq(use, "msg");
    kedge_free(use);

    /* b: killed at the 2 s keepalive deadline although it sends a keepalive every 300 ms */
    ck_assert_msg(wsc_run_until(&b, is_gone, NULL, DEADLINE_MS),
                  "a session without ConnectionUse: msg was not closed");
    ck_assert_uint_ge(b.keepalives_sent, 3);
    ck_assert(!state_bool(s, "node-b", "connected"));
    ck_assert_int_eq(state_int(s, "node-b", "last_keepalive_ms"), 0);

    /* a: opened before b, so it is past the deadline now, and still up */
    ck_assert_int_eq(a.state, WSC_OPEN);
    ck_assert(state_bool(s, "node-a", "connected"));
    ck_assert_int_gt(state_int(s, "node-a", "last_keepalive_ms"), 0);
    /* only a's messages were read */
    ck_assert_int_gt(count_received(s, NULL, "keepalive"), 0);
    {
        struct kedge_jdoc *doc = get_json(s, "/received");
        const struct kedge_jval *e;
        for (e = kedge_json_get(kedge_jdoc_root(doc), "messages")->child; e; e = e->next) {
            const struct kedge_jval *node = kedge_json_get(e, "node");
            ck_assert_str_eq(node->str, "node-a");
        }
        kedge_jdoc_free(doc);
    }

    /* a stops sending keepalives: the cloud closes it within the deadline (and not before
     * another keepalive interval has passed: keepalives counted, then silence) */
    sent_before = a.keepalives_sent;
    ck_assert_uint_gt(sent_before, 0);
    a.o.keepalive_ms = 0;
    ck_assert_msg(wsc_run_until(&a, is_gone, NULL, DEADLINE_MS),
                  "the cloud kept a session without keepalives");
    ck_assert_int_eq(a.state, WSC_CLOSED);
    ck_assert(!state_bool(s, "node-a", "connected"));
    ck_assert_int_eq(a.in_total, 0); /* the cloud sends no keepalives of its own */

    wsc_close(&b);
    wsc_close(&a);
    sim_stop_ok(s);
}
END_TEST

struct copies {
    const char *id;
    int n;
};

static bool cond_state_not_found(struct simctl *s, void *n)
{
    return state_int(s, NULL, "session_not_found") >= *(int *)n;
}

static bool cond_disconnected(struct simctl *s, void *arg)
{
    (void)arg;
    return !state_bool(s, NULL, "connected");
}

/* cloudcore makes a connection's session on another goroutine than the one reading it: a
 * keepalive or an ack before the session exists is dropped ("session not found"), nothing is
 * sent before it, and what comes after counts. The status of the edge's close frame is kept
 * (peer_close_code), 0 when a connection ends without one (Go reads that as 1006). */
START_TEST(test_session_setup_and_close)
{
    static const char *const window[] = {"--session-setup-ms", "3000", NULL};
    struct simctl_opts so;
    struct simctl *s;
    struct kedge_msg m;
    struct wsc w;
    int one = 1;

    memset(&so, 0, sizeof(so));
    so.extra_args = window;
    s = sim_start_opts(&so);
    ck_assert_int_eq(simctl_send(s, NULL, POD_INSERT, NULL), 0); /* waits for the session */
    edge_connect(&w, s, "edge-node");
    send_keepalive(&w); /* at once, as edgecore does: before the session */
    ck_assert(await_state(s, &w, cond_state_not_found, &one));
    ck_assert_int_eq(state_int(s, NULL, "last_keepalive_ms"), 0);
    ck_assert_int_eq(count_received(s, NULL, "keepalive"), 1); /* read, and dropped */

    /* the first message from the cloud means the session exists: from now on all counts */
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.operation, "insert");
    edge_ack(&w, &m);
    ck_assert(await_state(s, &w, cond_acked, m.msg_id));
    send_keepalive(&w);
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 0);
    {
        int64_t deadline = mono_ms() + simctl_scale_ms(DEADLINE_MS);
        while (state_int(s, NULL, "last_keepalive_ms") == 0) {
            ck_assert(mono_ms() < deadline);
            lws_service(w.ctx, 0);
        }
    }
    ck_assert_int_eq(state_int(s, NULL, "session_not_found"), 1);
    kedge_msg_cleanup(&m);

    /* a close frame with 1000: kept */
    w.close_code = 1000;
    lws_callback_on_writable(w.wsi);
    ck_assert(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS));
    ck_assert(await_state(s, NULL, cond_disconnected, NULL));
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 1000);
    wsc_close(&w);

    /* a connection that just ends: none */
    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 0);
    wsc_close(&w); /* no close frame */
    ck_assert(await_state(s, NULL, cond_disconnected, NULL));
    ck_assert_int_eq(state_int(s, NULL, "peer_close_code"), 0);
    sim_stop_ok(s);
}
END_TEST

/* An ack-needed message is re-sent with the same msg_id every resend interval until the edge
 * answers with operation "response" and parent_msg_id = that id, and never after. */
START_TEST(test_ack_needed_resent_until_acked)
{
    struct simctl *s = sim_start(0, 1);
    struct kedge_msg m, first;
    char *id1 = NULL, *id2 = NULL;
    struct wsc w;
    int copies_of_1 = 0, copies_of_2 = 0;
    struct kedge_jdoc *doc;
    int status;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_http_json(s, "POST", "/send", POD_INSERT, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    ck_assert(kedge_json_get(kedge_jdoc_root(doc), "ack_required")->boolean);
    ck_assert(kedge_json_get(kedge_jdoc_root(doc), "queued")->boolean);
    id1 = kedge_strndup(kedge_json_get(kedge_jdoc_root(doc), "msg_id")->str,
                        kedge_json_get(kedge_jdoc_root(doc), "msg_id")->len);
    kedge_jdoc_free(doc);

    /* first copy: as queued, with the msg_id /send returned */
    wsc_expect_next(&w, &first);
    ck_assert_str_eq(first.msg_id, id1);
    ck_assert_str_eq(first.resource, "default/pod/nginx");
    ck_assert_str_eq(first.resource_version, "4711");
    ck_assert_int_gt(first.timestamp, 0);
    /* not acked: it comes again, same id, twice more */
    for (copies_of_1 = 1; copies_of_1 < 3; copies_of_1++) {
        wsc_expect_next(&w, &m);
        ck_assert_str_eq(m.msg_id, id1);
        kedge_msg_cleanup(&m);
    }
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 1);

    edge_ack(&w, &first);
    ck_assert_msg(await_state(s, &w, cond_acked, id1), "the ack was not recorded");
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 0);

    /* Marker: a second ack-needed message. Everything before its first copy was sent before
     * the ack was processed (one ordered stream); its second copy comes a full resend interval
     * later, so a resend of the first would have to show up in between. */
    ck_assert_int_eq(simctl_send(s, NULL, CONFIGMAP_UPDATE, &id2), 0);
    for (;;) {
        wsc_expect_next(&w, &m);
        if (str_eq(m.msg_id, id2))
            copies_of_2++;
        else {
            ck_assert_str_eq(m.msg_id, id1);
            ck_assert_msg(copies_of_2 == 0, "message re-sent after its ack");
        }
        kedge_msg_cleanup(&m);
        if (copies_of_2 == 2)
            break;
    }
    edge_ack(&w, &first); /* a duplicate ack changes nothing */
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 1);

    kedge_msg_cleanup(&first);
    kedge_free(id1);
    kedge_free(id2);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* No-ack messages (membership, docs/kubeedge-wire.md §5.2) are sent once. */
START_TEST(test_no_ack_sent_once)
{
    struct simctl *s = sim_start(0, 1);
    struct kedge_jdoc *doc;
    struct kedge_msg m;
    char *marker = NULL;
    struct wsc w;
    int membership = 0, marker_copies = 0, status;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_http_json(s, "POST", "/send", MEMBERSHIP, &status, &doc), 0);
    ck_assert_int_eq(status, 200);
    ck_assert(!kedge_json_get(kedge_jdoc_root(doc), "ack_required")->boolean);
    kedge_jdoc_free(doc);
    /* marker: an ack-needed message; its second copy comes one resend interval after its
     * first, which was queued after the membership message */
    ck_assert_int_eq(simctl_send(s, NULL, POD_INSERT, &marker), 0);
    while (marker_copies < 2) {
        wsc_expect_next(&w, &m);
        if (str_eq(m.resource, "membership")) {
            membership++;
            ck_assert_str_eq(m.source, "devicecontroller");
            ck_assert_str_eq(m.group, "twin");
            ck_assert_msg(m.content_is_string == false, "membership content is an object");
        } else {
            ck_assert_str_eq(m.msg_id, marker);
            marker_copies++;
        }
        kedge_msg_cleanup(&m);
    }
    ck_assert_int_eq(membership, 1);
    ck_assert_int_eq(state_int(s, NULL, "pending_noack"), 0);
    kedge_free(marker);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* The device controller, in each cloud generation (v1.15: bare device ids, v1.17: ns/name):
 * a twin report for a device it knows gets "OK" (parent = the report's id), one for a device it
 * does not know gets nothing (cloudcore: "Device ... does not exist in downstream
 * controller"); the reported value lands in the Device's status.twins (only for the twins
 * listed there; from v1.17 an unlisted property gets an empty entry) and the Device goes down
 * again as an update; state reports get "OK" from v1.18 only; membership detail requests are
 * ignored. */
static bool cond_frozen(struct simctl *s, void *want)
{
    return state_bool(s, NULL, "frozen") == *(bool *)want;
}

/* /link/freeze: the cloud neither reads nor writes, the TCP connection stays open (also past
 * the keepalive deadline); /link/thaw lets everything through in order. */
START_TEST(test_link_freeze_thaw)
{
    struct simctl *s = sim_start(1, 0);
    char json[2048];
    struct kedge_msg m;
    struct wsc w;
    bool yes = true;

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_post(s, "/link/freeze"), 200);
    ck_assert(await_state(s, &w, cond_frozen, &yes));
    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    edge_msg(json, sizeof(json), "twin-f", "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{}");
    wsc_send(&w, json);
    /* Observation window: three keepalive deadlines (1 s each) of silence. Nothing may arrive
     * and the link must survive; there is no event to wait for, by design. */
    wsc_quiet(&w, 3000);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(w.in_total, 0);
    ck_assert_int_eq(count_received(s, NULL, NULL), 0);
    ck_assert(state_bool(s, NULL, "connected"));

    ck_assert_int_eq(simctl_post(s, "/link/thaw"), 200);
    wsc_expect_next(&w, &m); /* the queued membership */
    ck_assert_str_eq(m.resource, "membership");
    kedge_msg_cleanup(&m);
    wsc_expect_next(&w, &m); /* the twin report was read after all, and answered */
    ck_assert_str_eq(m.parent_msg_id, "twin-f");
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(count_received(s, NULL, NULL), 1);
    ck_assert(!state_bool(s, NULL, "frozen"));

    ck_assert_int_eq(simctl_post(s, "/link/freeze?node=nobody"), 404);

    /* the edge's dead-link recovery: it gives up on a frozen link and dials again; the new
     * session replaces the frozen one and is not frozen */
    ck_assert_int_eq(simctl_post(s, "/link/freeze"), 200);
    ck_assert(await_state(s, &w, cond_frozen, &yes));
    wsc_close(&w);
    edge_connect(&w, s, "edge-node");
    ck_assert(state_bool(s, NULL, "connected"));
    ck_assert(!state_bool(s, NULL, "frozen"));
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 2);
    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.resource, "membership");
    kedge_msg_cleanup(&m);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* /link/drop closes the websocket; /link/refuse refuses new connections until it ends. */
START_TEST(test_link_drop_and_refuse)
{
    struct simctl *s = sim_start(0, 0);
    struct wsc w;

    ck_assert_int_eq(simctl_post(s, "/link/drop"), 404); /* nobody connected */
    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_post(s, "/link/drop"), 200);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link/drop did not close");
    ck_assert(!state_bool(s, NULL, "connected"));
    wsc_close(&w);

    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(simctl_post(s, "/link/refuse"), 400); /* seconds is required */
    ck_assert_int_eq(simctl_post(s, "/link/refuse?seconds=600"), 200);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link/refuse did not drop");
    wsc_close(&w);
    ck_assert(state_bool(s, NULL, "refusing"));
    {
        struct wsc_opts o = edge_opts(s, "edge-node");
        wsc_open(&w, s, &o);
        ck_assert_msg(!w.was_open, "connected while refusing");
        wsc_close(&w);
    }
    ck_assert_int_eq(simctl_post(s, "/link/refuse?seconds=0"), 200);
    ck_assert(!state_bool(s, NULL, "refusing"));
    edge_connect(&w, s, "edge-node");
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 3);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* Malformed JSON from the edge is logged and dropped; the link survives and what it carried
 * is received in order. Frames may come fragmented or binary. */
START_TEST(test_malformed_fragmented_binary)
{
    struct simctl *s = sim_start(0, 0);
    char json[2048];
    struct kedge_msg m;
    size_t len, third;
    struct wsc w;
    bool first_bin;

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    wsc_send(&w, "{\"header\": not json");
    wsc_send(&w, "[1,2,3]");
    wsc_send(&w, "{\"header\":5}");
    /* a twin report in three fragments */
    edge_msg(json, sizeof(json), "frag-1", "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{\"event_id\":\"x\"}");
    len = strlen(json);
    third = len / 3;
    wsc_queue(&w, json, third, lws_write_ws_flags(LWS_WRITE_TEXT, 1, 0));
    wsc_queue(&w, json + third, third, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 0));
    wsc_queue(&w, json + 2 * third, len - 2 * third, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 1));
    /* and a binary one */
    edge_msg(json, sizeof(json), "bin-1", "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{}");
    wsc_queue(&w, json, strlen(json), LWS_WRITE_BINARY);

    /* both answered, in the workers' order (workers.c) */
    wsc_expect_next(&w, &m);
    first_bin = !strcmp(m.parent_msg_id, "bin-1");
    ck_assert_str_eq(m.parent_msg_id, first_bin ? "bin-1" : "frag-1");
    kedge_msg_cleanup(&m);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, first_bin ? "frag-1" : "bin-1");
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(w.state, WSC_OPEN);
    ck_assert_int_eq(state_int(s, NULL, "malformed_total"), 3);
    /* websocket pings are answered (lws does it; the cloud never pings itself) */
    wsc_queue(&w, "p", 1, LWS_WRITE_PING);
    ck_assert_msg(wsc_run_until(&w, has_pong, NULL, DEADLINE_MS), "no pong");
    ck_assert_int_eq(count_received(s, NULL, "update"), 2);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* A twin report of `size` bytes of padding, sent in 1 MiB fragments. */
static void send_padded_report(struct wsc *w, const char *id, size_t size)
{
    const size_t chunk = 1u << 20;
    struct kedge_buf msg = KEDGE_BUF_INIT;
    char head[512], *filler;
    size_t off, n;

    edge_msg(head, sizeof(head), id, "twin", "resource", "update",
             "device/thermo/twin/edge_updated", "{\"pad\":\"@\"}");
    filler = malloc(size);
    ck_assert_ptr_nonnull(filler);
    memset(filler, 'x', size);
    ck_assert_int_eq(kedge_buf_append(&msg, head, (size_t)(strchr(head, '@') - head)), 0);
    ck_assert_int_eq(kedge_buf_append(&msg, filler, size), 0);
    ck_assert_int_eq(kedge_buf_puts(&msg, strchr(head, '@') + 1), 0);
    free(filler);
    for (off = 0; off < msg.len; off += n) {
        n = msg.len - off < chunk ? msg.len - off : chunk;
        wsc_queue(w, msg.data + off, n,
                  lws_write_ws_flags(LWS_WRITE_TEXT, off == 0, off + n == msg.len));
    }
    kedge_buf_cleanup(&msg);
}

/* cloudcore v1.15.4 reads messages of any size (no SetReadLimit): by default a message of 17 MiB
 * (past the edge's 16 MiB upload cap plus envelope) is read and answered. --read-limit models a
 * size-limited cloud: a 3 MiB message under a 4 MiB limit passes, a 5 MiB one closes the link
 * with 1009 and is not handled. */
START_TEST(test_big_and_oversize_messages)
{
    static const char *const args[] = {"--read-limit", "4194304", NULL};
    const size_t mib = 1u << 20;
    struct simctl_opts so = {0};
    struct simctl *s = sim_start(0, 0);
    struct kedge_msg m;
    struct wsc w;

    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    send_padded_report(&w, "huge-1", 17 * mib);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "huge-1");
    kedge_msg_cleanup(&m);
    wsc_close(&w);
    sim_stop_ok(s);

    so.extra_args = args;
    s = sim_start_opts(&so);
    edge_connect(&w, s, "edge-node");
    thermo_known(s, &w);
    send_padded_report(&w, "big-1", 3 * mib);
    wsc_expect_next(&w, &m);
    ck_assert_str_eq(m.parent_msg_id, "big-1");
    kedge_msg_cleanup(&m);
    send_padded_report(&w, "over-1", 5 * mib);
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "oversize message not refused");
    ck_assert_int_eq(w.peer_close, 1009);
    ck_assert_int_eq(count_received(s, NULL, "update"), 1);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* A twin report of thermo's temperature: value v, actual_version.edge v. */
/* --on-malformed close: cloudcore's own behaviour (ReadJSON fails, the link is closed). */
START_TEST(test_malformed_close_option)
{
    static const char *const args[] = {"--on-malformed", "close", NULL};
    struct simctl_opts so;
    struct simctl *s;
    struct wsc w;

    memset(&so, 0, sizeof(so));
    so.extra_args = args;
    s = sim_start_opts(&so);
    edge_connect(&w, s, "edge-node");
    wsc_send(&w, "not json");
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "link not closed");
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

/* Messages queued while no edge is connected go to the first one that connects; unacked ones
 * are sent again, same msg_id, on the next connection; a new connection for the same node
 * replaces the old one. */
START_TEST(test_queue_reconnect_replace)
{
    struct simctl *s = sim_start(0, 60);
    struct kedge_msg m1, m2, m;
    char *pod = NULL;
    struct wsc w, w2;

    ck_assert_int_eq(simctl_send(s, NULL, MEMBERSHIP, NULL), 0);
    ck_assert_int_eq(simctl_send(s, NULL, POD_INSERT, &pod), 0);
    ck_assert_int_eq(state_int(s, NULL, "pending_acks"), 1);
    edge_connect(&w, s, "edge-node");
    wsc_expect_next(&w, &m1);
    wsc_expect_next(&w, &m2);
    /* the ack head and the no-ack queue are independent: either may go first */
    ck_assert(str_eq(m1.resource, "membership") || str_eq(m2.resource, "membership"));
    ck_assert(str_eq(m1.msg_id, pod) || str_eq(m2.msg_id, pod));
    kedge_msg_cleanup(&m1);
    kedge_msg_cleanup(&m2);

    /* replaced: the same node connects again; the old link is closed, the unacked pod is sent
     * on the new one (the resend interval is 60 s, so this is the reconnect, not a resend) */
    {
        struct wsc_opts o2 = edge_opts(s, "edge-node");
        wsc_open_shared(&w2, s, &o2, &w);
        ck_assert_int_eq(w2.state, WSC_OPEN);
    }
    ck_assert_msg(wsc_run_until(&w, is_gone, NULL, DEADLINE_MS), "old session not closed");
    wsc_expect_next(&w2, &m);
    ck_assert_str_eq(m.msg_id, pod);
    edge_ack(&w2, &m);
    ck_assert(await_state(s, &w2, cond_acked, pod));
    kedge_msg_cleanup(&m);
    ck_assert_int_eq(state_int(s, NULL, "sessions_total"), 2);
    ck_assert(state_bool(s, NULL, "connected"));

    /* ?node= for a node that never connected queues for it, /state knows it; so does a
     * cloud-side node/{id}/ resource, which is trimmed before it goes out */
    ck_assert_int_eq(simctl_send(s, "later", POD_INSERT, NULL), 0);
    ck_assert_int_eq(state_int(s, "later", "pending_acks"), 1);
    ck_assert(!state_bool(s, "later", "connected"));
    ck_assert_int_eq(simctl_send(s, NULL,
                                 "{\"route\":{\"source\":\"edgecontroller\",\"group\":"
                                 "\"resource\",\"operation\":\"update\",\"resource\":"
                                 "\"node/other/default/configmap/c\"},\"content\":{}}",
                                 NULL),
                     0);
    ck_assert_int_eq(state_int(s, "other", "pending_acks"), 1);
    ck_assert_int_eq(state_int(s, "edge-node", "pending_acks"), 0);
    {
        struct wsc w3;
        struct wsc_opts o3 = edge_opts(s, "other");
        wsc_open_shared(&w3, s, &o3, &w); /* w is closed, its context is not */
        ck_assert_int_eq(w3.state, WSC_OPEN);
        wsc_expect_next(&w3, &m);
        ck_assert_str_eq(m.resource, "default/configmap/c");
        kedge_msg_cleanup(&m);
        wsc_close(&w3);
    }

    kedge_free(pod);
    wsc_close(&w2);
    wsc_close(&w);
    sim_stop_ok(s);
}
END_TEST

void cloudsim_add_link_tests(TCase *tc)
{
    tcase_add_test(tc, test_client_cert_required);
    tcase_add_test(tc, test_connection_use_and_keepalive);
    tcase_add_test(tc, test_session_setup_and_close);
    tcase_add_test(tc, test_ack_needed_resent_until_acked);
    tcase_add_test(tc, test_no_ack_sent_once);
    tcase_add_test(tc, test_link_freeze_thaw);
    tcase_add_test(tc, test_link_drop_and_refuse);
    tcase_add_test(tc, test_malformed_fragmented_binary);
    tcase_add_test(tc, test_malformed_close_option);
    tcase_add_test(tc, test_big_and_oversize_messages);
    tcase_add_test(tc, test_queue_reconnect_replace);
}
