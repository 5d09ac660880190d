/* dmi_wiring.c: DMI in the bridge. dmi/ knows MetaManager and nothing else of the bridge: this
 * file gives it the plugin (the relay's relay_down_result), its transport (transport.c on the
 * lws loop), the cloud's device changes (meta/devices.c's hook) and the operator's
 * mapper_list ($ke/bctl, through the relay).
 */
#include <errno.h>

#include "bridge.h"
#include "dmi/dmi.h"
#include "dmi/transport.h"
#include "kedge/log.h"
#include "meta/devices.h"
#include "relay.h"

static int down(void *relay, const struct kedge_msg *m, dmi_result_fn result, void *ctx)
{
    return relay_down_result(relay, m, result, ctx);
}

static int reply(void *t, uint64_t call, int code, const char *message,
                 const ProtobufCMessage *resp)
{
    return dmi_reply(t, call, code, message, resp);
}

static int call(void *t, const char *sock, const char *path, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, dmi_done_fn done, void *ctx)
{
    return dmi_call(t, sock, path, req, resp_desc, done, ctx);
}

int dmi_start(struct bridge *br)
{
    const struct bridge_config *c = &br->cfg;
    const struct dmi_deps deps = {br->meta, down, br->relay, config_device_ids_namespaced(c)};
    const struct dmi_transport_config tc = {c->dmi_socket, (mode_t)c->dmi_mode,
                                            (size_t)c->dmi_max_msg_bytes, c->dmi_call_timeout_ms};
    struct dmi_io io = {NULL, reply, call};
    int rc;

    if (!c->dmi_enabled)
        return 0;
    rc = dmi_new(&deps, &br->dmi);
    if (rc < 0)
        return rc;
    /* as edgecore, a socket that cannot be served is logged and the node runs on without DMI */
    if (dmi_transport_new(br->lws, br->vhost, &tc, dmi_request, br->dmi, &br->dmi_transport) < 0) {
        kedge_log(KEDGE_LOG_ERR, "dmi: cannot serve %s: no mapper can register", c->dmi_socket);
        br->dmi_transport = NULL;
    } else {
        io.t = br->dmi_transport;
        dmi_set_io(br->dmi, &io);
        kedge_log(KEDGE_LOG_NOTICE, "dmi: serving v1beta1.DeviceManagerService on %s",
                  c->dmi_socket);
    }
    devices_set_change_hook(br->devices, dmi_cloud_change, br->dmi);
    relay_set_bctl(br->relay, dmi_bctl, br->dmi);
    return 0;
}

void dmi_close(struct bridge *br)
{
    dmi_stop(br->dmi);
    dmi_transport_free(br->dmi_transport); /* its open calls end here, unlogged */
    br->dmi_transport = NULL;
}
