/* kedge_coalesce_merge on two arbitrary messages (the input split at its first NUL byte: the
 * older before, the newer after).
 *
 * Properties:
 *  - it fails only with KEDGE_ESCHEMA, and then writes nothing;
 *  - a merged twin report decodes, keeps the newer's msg_id, and has every twin of the newer
 *    report with the newer's value, and every twin of the older one;
 *  - merging is idempotent: folding the newer into the result again gives the same bytes;
 *  - a state report folds to the newer message byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kedge/buf.h"
#include "kedge/coalesce.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/msg.h"

static const struct kedge_jval *twins_of(const char *msg, size_t len, struct kedge_msg *m,
                                         struct kedge_jdoc **doc)
{
    const struct kedge_jval *t;

    CHECK(kedge_msg_decode(msg, len, m) == 0);
    CHECK(kedge_json_parse(m->content, m->content_len, doc) == 0);
    t = kedge_json_get(kedge_jdoc_root(*doc), "twin");
    CHECK(t && t->type == KEDGE_JOBJ);
    return t;
}

/* Every member of `from` is in `in`; with `same`, with the same value written out. */
static void members_in(const struct kedge_jval *from, const struct kedge_jval *in, bool same)
{
    const struct kedge_jval *c;

    for (c = from->child; c; c = c->next) {
        const struct kedge_jval *v = kedge_json_get_exact(in, c->key, c->key_len);
        struct kedge_buf a = KEDGE_BUF_INIT, b = KEDGE_BUF_INIT;
        struct kedge_jw wa, wb;

        CHECK(v);
        if (!same)
            continue;
        kedge_jw_init(&wa, &a);
        kedge_json_write_value(&wa, kedge_json_get_exact(from, c->key, c->key_len));
        kedge_jw_init(&wb, &b);
        kedge_json_write_value(&wb, v);
        CHECK(kedge_jw_finish(&wa) == 0 && kedge_jw_finish(&wb) == 0);
        CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
        kedge_buf_cleanup(&a);
        kedge_buf_cleanup(&b);
    }
}

static void check_twin(const char *older, size_t olen, const char *newer, size_t nlen,
                       const struct kedge_buf *out)
{
    struct kedge_msg mo = {0}, mn = {0}, mm = {0};
    struct kedge_jdoc *dold = NULL, *dnew = NULL, *dmerged = NULL;
    const struct kedge_jval *to = twins_of(older, olen, &mo, &dold);
    const struct kedge_jval *tn = twins_of(newer, nlen, &mn, &dnew);
    const struct kedge_jval *tm = twins_of(out->data, out->len, &mm, &dmerged);
    struct kedge_buf again = KEDGE_BUF_INIT;

    /* the encoder always writes msg_id: an absent one comes back empty */
    CHECK(!strcmp(mn.msg_id ? mn.msg_id : "", mm.msg_id ? mm.msg_id : ""));
    members_in(tn, tm, true);
    members_in(to, tm, false);
    CHECK(kedge_coalesce_merge(KEDGE_COALESCE_TWIN, out->data, out->len, newer, nlen, &again) == 0);
    CHECK(again.len == out->len && !memcmp(again.data, out->data, out->len));
    kedge_buf_cleanup(&again);
    kedge_jdoc_free(dold);
    kedge_jdoc_free(dnew);
    kedge_jdoc_free(dmerged);
    kedge_msg_cleanup(&mo);
    kedge_msg_cleanup(&mn);
    kedge_msg_cleanup(&mm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *cut = memchr(in, '\0', size);
    size_t olen = cut ? (size_t)(cut - in) : size / 2;
    const char *newer = in + olen + (cut ? 1 : 0);
    size_t nlen = size - olen - (cut ? 1 : 0);
    struct kedge_buf out = KEDGE_BUF_INIT;
    int rc;

    rc = kedge_coalesce_merge(KEDGE_COALESCE_TWIN, in, olen, newer, nlen, &out);
    CHECK(rc == 0 || rc == KEDGE_ESCHEMA);
    if (rc == 0)
        check_twin(in, olen, newer, nlen, &out);
    else
        CHECK(out.len == 0);
    kedge_buf_cleanup(&out);
    rc = kedge_coalesce_merge(KEDGE_COALESCE_STATE, in, olen, newer, nlen, &out);
    CHECK(rc == 0 || rc == KEDGE_ESCHEMA);
    CHECK(rc != 0 || (out.len == nlen && !memcmp(out.data, newer, nlen)));
    kedge_buf_cleanup(&out);
    return 0;
}
