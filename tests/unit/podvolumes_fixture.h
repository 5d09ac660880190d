/* What the podvolumes suite's files share (podvolumes_fixture.c): a scratch directory per test,
 * the store and token source stubs, a pod_spec built by hand, and looking at the files made.
 */
#ifndef KEDGE_UNIT_PODVOLUMES_FIXTURE_H
#define KEDGE_UNIT_PODVOLUMES_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podvolumes.h"

#define UID "8f1c2a7e-0000-4000-8000-000000000001"

extern char tmp[64];      /* per-test scratch directory */
extern char pods[128];    /* {tmp}/pods (made by setup on first use) */
extern char outside[128]; /* {tmp}/outside: what removal must never touch */

/* The store stub. */
extern size_t n_objects;
extern int lookup_calls;
extern char last_ns[64];
extern int lookup_fail; /* non-zero: lookup returns it */
void put_object(const char *type, const char *name, const char *json);
extern const char cm_app[];
extern const char secret_db[];

/* The token source stub. */
struct tokens {
    const char *token; /* NULL: -EAGAIN, "waiting" */
    int calls;
    char audience[64];
    int64_t expiration_s;
};

extern struct tokens tokens;

/* Pod building. */
extern struct pod_volume vols[8];
extern struct pod_key_path items[8];
extern struct pod_spec pod;
extern char why[512];
void pod_reset(void);
struct pod_volume *add_vol(const char *name, enum pod_volume_kind kind, const char *source);
void add_item(struct pod_volume *v, const char *key, const char *path, int mode);
int setup_pod(void);

/* Files. */
void path_of(char *out, size_t n, const char *vol, const char *rel);
void assert_content(const char *vol, const char *rel, const char *want, size_t want_len);
int mode_of(const char *vol, const char *rel);
void assert_link(const char *vol, const char *rel, const char *target);
bool exists_nofollow(const char *p);
void data_target(const char *vol, char *out, size_t n);
void listing(const char *vol, char *out, size_t n);
void write_file(const char *p, const char *content);
int mkdir_p_test(const char *dir);
void setup(void);
void teardown(void);

/* The tests of test_podvolumes_projected.c, added to the suite's TCases. */
void podvolumes_projected_tests(TCase *projected);
void podvolumes_remove_tests(TCase *remove);
void podvolumes_nomem_tests(TCase *objects);

#endif
