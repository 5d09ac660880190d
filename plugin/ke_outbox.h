/* kedge-ctl's view of the plugin's outbox: the $ke/ctl ops outbox_list, outbox_show and
 * outbox_drop (include/kedge/ke.h). Lists read the table (own open batch included), never
 * parse a whole message: an upload may be 16 MiB, and the broker waits while this runs.
 */
#ifndef KEDGE_KE_OUTBOX_H
#define KEDGE_KE_OUTBOX_H

#include "kedge/buf.h"
#include "outbox.h"

struct kebody_request;
/* outbox_list {"limit":N} and outbox_show {"seq":S}: the answer's JSON into b. 0 or -ENOMEM. */
int ke_outbox_list(struct outbox *ob, const struct kebody_request *req, struct kedge_buf *b);
int ke_outbox_show(struct outbox *ob, const struct kebody_request *req, struct kedge_buf *b);
/* outbox_drop {"seq":S} in the open batch: 0, or an HTTP-like code with *reason. */
int ke_outbox_drop(struct outbox *ob, const struct kebody_request *req, const char **reason);

#endif
