/* cloudbridge/dmi/convert.c (edgecore's ConvertDevice / ConvertDeviceModel) on arbitrary JSON.
 * The first byte picks Device or DeviceModel, the rest is the CR's JSON.
 *
 * Properties:
 *  - a conversion fails only with KEDGE_ESCHEMA (with a reason) or -ENOMEM, and then leaves
 *    nothing behind (*out NULL; ASan's leak check sees the rest);
 *  - what converts is a well-formed message: protobuf-c packs it (no NULL string, every
 *    element of every array there), unpacks it again, and the second packing has the same
 *    bytes;
 *  - a converted Device always has spec, spec.protocol and status (the CR's plain structs),
 *    and a DeviceModel its spec.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "fuzz.h"
#include "kedge/err.h"
#include "kedge/json.h"

/* Pack m, unpack it with protobuf-c's own allocator, pack again: the same bytes. */
static void round_trip(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
    ProtobufCMessage *back;

    CHECK(a && b);
    CHECK(protobuf_c_message_pack(m, a) == n);
    back = protobuf_c_message_unpack(m->descriptor, NULL, n, a);
    CHECK(back != NULL);
    CHECK(protobuf_c_message_get_packed_size(back) == n);
    CHECK(protobuf_c_message_pack(back, b) == n && !memcmp(a, b, n));
    protobuf_c_message_free_unpacked(back, NULL);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kedge_jdoc *doc = NULL;
    char why[256] = "";
    int rc;

    if (size < 1 || kedge_json_parse((const char *)data + 1, size - 1, &doc) < 0)
        return 0;
    if (data[0] & 1) {
        V1beta1__DeviceModel *m = (V1beta1__DeviceModel *)1;
        rc = dmi_convert_model(kedge_jdoc_root(doc), &m, why, sizeof(why));
        CHECK(rc == 0 || rc == KEDGE_ESCHEMA || rc == -ENOMEM);
        CHECK(rc == 0 ? m != NULL : m == NULL);
        if (m) {
            CHECK(m->spec != NULL);
            round_trip(&m->base);
        }
        dmi_pb_free(m);
    } else {
        V1beta1__Device *d = (V1beta1__Device *)1;
        rc = dmi_convert_device(kedge_jdoc_root(doc), &d, why, sizeof(why));
        CHECK(rc == 0 || rc == KEDGE_ESCHEMA || rc == -ENOMEM);
        CHECK(rc == 0 ? d != NULL : d == NULL);
        if (d) {
            CHECK(d->spec && d->spec->protocol && d->status);
            round_trip(&d->base);
        }
        dmi_pb_free(d);
    }
    CHECK(rc != KEDGE_ESCHEMA || why[0]);
    kedge_jdoc_free(doc);
    return 0;
}
