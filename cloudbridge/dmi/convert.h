/* Device and DeviceModel CRs (devices.kubeedge.io/v1beta1, the JSON MetaManager stores) as the
 * DMI messages a mapper gets, with edgecore v1.15.4's ConvertDevice / ConvertDeviceModel
 * semantics (edge/pkg/devicetwin/dtcommon/util.go): the CR's JSON read into the protobuf
 * struct by field name, case-insensitively, then name, deviceModelReference and every
 * configData map (as google.protobuf.Any wrappers) set explicitly. convert.c says how.
 *
 * Messages come from kedge_malloc (so the allocation-failure tests reach them) and are freed
 * with dmi_pb_free, which is protobuf_c_message_free_unpacked over the same allocator.
 */
#ifndef KEDGE_DMI_CONVERT_H
#define KEDGE_DMI_CONVERT_H

#include <stddef.h>

#include "kedge/buf.h"
#include "kedge/json.h"
#include "kubeedge/dmi/v1beta1/api.pb-c.h"

/* The Device CR dev (a parsed object) as a pb Device in *out. 0, KEDGE_ESCHEMA (a value Go's
 * decoder or dataToAny refuses: why says which; *out NULL), -ENOMEM. */
int dmi_convert_device(const struct kedge_jval *dev, V1beta1__Device **out, char *why,
                       size_t why_len);
/* The same for a DeviceModel CR. */
int dmi_convert_model(const struct kedge_jval *model, V1beta1__DeviceModel **out, char *why,
                      size_t why_len);

/* Any message of desc from a JSON object by the same rules (Go's decoding of a protoc-gen-go
 * struct): a stored MapperInfo. 0, KEDGE_ESCHEMA, -ENOMEM; *out NULL on error. */
int dmi_pb_from_json(const ProtobufCMessageDescriptor *desc, const struct kedge_jval *obj,
                     ProtobufCMessage **out, char *why, size_t why_len);
/* info as Go's encoding/json writes a pb.MapperInfo (edgecore's saveMapper): proto field names,
 * omitempty, the address bytes in base64. Appended to out; 0 or -ENOMEM. */
int dmi_mapper_info_json(const V1beta1__MapperInfo *info, struct kedge_buf *out);

/* A message of desc, every field at its default (kedge_malloc); NULL when out of memory. */
void *dmi_pb_new(const ProtobufCMessageDescriptor *desc);
/* Free m and everything it points to (NULL: nothing). Only for messages built here. */
void dmi_pb_free(void *m);
/* A copy of s[0..len) for a pb string field (kedge_malloc), or NULL. */
char *dmi_pb_strdup(const char *s, size_t len);

#endif
