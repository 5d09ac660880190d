/* kedge-testmapper: a DMI mapper for the tests, in C on grpc/grpc_fd.h and the protoc-c code of
 * KubeEdge v1.15.4's proto/kubeedge/dmi/v1beta1/api.proto.
 *
 * It is what a mapper built on KubeEdge's mapper-framework looks like from the edge: it serves
 * v1beta1.DeviceMapperService on its own unix socket (keeping the devices and models it is
 * given; GetDevice answers from them) and calls v1beta1.DeviceManagerService on kedge's socket
 * (MapperRegister with withData, ReportDeviceStatus), each call on a fresh connection as
 * mapper-framework's grpcclient does.
 *
 * A test drives it through pipes: one command per line on stdin, one JSON event per line on
 * stdout (flushed). tests/dmi/pymapper.py speaks the same protocol, so one test body drives both;
 * tests/dmi/mapperctl.h is the test's end. Commands:
 *   register                       MapperRegister(withData true)
 *                                  -> {"ev":"registered","code","message","devices":[names],
 *                                      "models":[names],"list":[device...]}
 *   report DEV PROP VALUE [DESIRED] ReportDeviceStatus, one twin (DESIRED: observedDesired)
 *   reportm DEV PROP=VALUE...      one report with several twins
 *   oversize DEV BYTES             a report whose value is BYTES long
 *                                  -> {"ev":"report","device","code","message"}
 *   half-report DEV                write half a ReportDeviceStatus call to kedge, then exit(3)
 *   devices                        -> {"ev":"devices","devices":[names],"models":[names]}
 *   hang / resume                  stop / start reading the mapper's own connections
 *   die-on METHOD                  exit(3) when kedge calls METHOD, before answering
 *   quit                           exit 0
 * Events of kedge's calls: {"ev":"<Method>", ...} with "device" (a device json: name, model,
 * protocol, config, desired, twins) or "model" (name, properties), or "name" for the removals.
 * Anything else: {"ev":"error","message"}.
 */
#ifndef KEDGE_TESTMAPPER_H
#define KEDGE_TESTMAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc.h"
#include "kedge/json.h"
#include "kubeedge/dmi/v1beta1/api.pb-c.h"

/* ---- tm_store.c: what the mapper was given, by name, as packed messages ------------------ */

struct tm_entry {
    char *name;
    uint8_t *packed;
    size_t len;
};

struct tm_list {
    struct tm_entry *v;
    size_t n, cap;
};

/* Store (or replace) name's packed copy of m. 0 or -ENOMEM. */
int tm_list_put(struct tm_list *l, const char *name, const ProtobufCMessage *m);
/* Whether name was there. */
bool tm_list_remove(struct tm_list *l, const char *name);
const struct tm_entry *tm_list_find(const struct tm_list *l, const char *name);
void tm_list_free(struct tm_list *l);
/* ["a","b",...] */
void tm_list_names(struct kedge_jw *w, const struct tm_list *l);

/* A device as the events show it: {"name","model","protocol","config":{...},"desired":{prop:
 * value},"visitors":{prop:{...}},"twins":{prop:reported}} (configData's Any values decoded:
 * StringValue a string, FloatValue a number, BoolValue a bool, anything else "?<type url>"). */
void tm_device_json(struct kedge_jw *w, const V1beta1__Device *d);
/* {"name","properties":[{"name","type","accessMode"}]} */
void tm_model_json(struct kedge_jw *w, const V1beta1__DeviceModel *m);

/* ---- tm_serve.c: DeviceMapperService ------------------------------------------------------ */

struct testmapper {
    const char *name, *protocol, *socket, *kedge;
    struct tm_list devices, models;
    char *die_on; /* a method to exit(3) on, or NULL */
};

/* grpc_conn_ops.request for the mapper's own connections (ctx: the testmapper). */
void tm_serve_request(void *ctx, struct grpc_conn *c, int32_t stream, const char *path,
                      const uint8_t *msg, size_t len);

/* ---- testmapper.c: the event log ---------------------------------------------------------- */

/* Start an event: {"ev":ev ... ; end it with tm_event_end (writes the line, flushes). */
void tm_event_begin(struct kedge_jw *w, struct kedge_buf *b, const char *ev);
void tm_event_end(struct kedge_jw *w, struct kedge_buf *b);

#endif
