/* A stand-in for MetaManager's table (cloudbridge/meta/metamanager.h: put, get, list) for the
 * suites of modules that only read and write rows (cloudbridge/dmi/): rows in memory, in
 * insertion order, replaced by key; a failure can be injected. */
#ifndef KEDGE_META_STUB_H
#define KEDGE_META_STUB_H

#define META_STUB_MAX 64

struct meta_stub_row {
    char *key, *type, *value;
};

extern struct meta_stub_row meta_stub_rows[META_STUB_MAX];
extern int meta_stub_n;
extern int meta_stub_fail; /* nonzero: every call returns KEDGE_ESTORE */

void meta_stub_put(const char *key, const char *type, const char *value);
const struct meta_stub_row *meta_stub_find(const char *key);
void meta_stub_reset(void);

#endif
