/* The mappers that registered over DMI: who they are, which protocol they serve and on which
 * socket, as edgecore keeps them (MapperRegister's saveMapper): one meta row each, type
 * devicemapper, key node/nodeID/namespace/devicemapper/{name}, value the MapperInfo as Go's
 * encoding/json writes it. The rows are read back when the bridge starts, so a mapper gets
 * the cloud's changes after a bridge restart without registering again (edgecore keeps its
 * clients in memory only).
 */
#ifndef KEDGE_DMI_MAPPERS_H
#define KEDGE_DMI_MAPPERS_H

#include <stddef.h>
#include <stdint.h>

#include "kubeedge/dmi/v1beta1/api.pb-c.h"
#include "meta/metamanager.h"

struct dmi_mapper {
    char *name, *version, *api_version, *protocol, *state;
    char *socket;           /* string(address): the mapper's DeviceMapperService socket */
    int64_t registered_ms;  /* wall clock; 0: read from the table, not registered since */
    int64_t last_report_ms; /* its last ReportDeviceStatus (0: none since the start) */
    uint64_t reports;
};

struct dmi_mappers;

/* Reads the stored rows (a row that does not decode is logged and skipped). meta outlives. */
int dmi_mappers_new(struct metamgr *meta, struct dmi_mappers **out);
void dmi_mappers_free(struct dmi_mappers *m);
/* MapperRegister: the row is stored (committed) first, then the mapper is (re)placed, by
 * name, as the newest of its protocol. 0, KEDGE_ESTORE, -ENOMEM. */
int dmi_mappers_register(struct dmi_mappers *m, const V1beta1__MapperInfo *info);
/* The mapper that serves protocol: the last one registered for it (edgecore's DMI client of
 * the protocol points at the last registration's address); NULL when none. */
struct dmi_mapper *dmi_mappers_of_protocol(struct dmi_mappers *m, const char *protocol);
size_t dmi_mappers_count(const struct dmi_mappers *m);
const struct dmi_mapper *dmi_mappers_at(const struct dmi_mappers *m, size_t i);

#endif
