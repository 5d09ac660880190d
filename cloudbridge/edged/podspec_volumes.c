/* podspec_volumes.c: a pod's spec.volumes (v1.Volume) into struct pod_volume, with
 * SetDefaults_Volume and the checks kubelet would trip over.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kedge/alloc.h"
#include "kedge/json.h"
#include "kedge/err.h"
#include "kedge/util.h"
#include "podspec_decode.h"

/* ==== podspec_parse: volumes ============================================================= */

/* Every member of v1.VolumeSource: one of them (non-null) is the volume's type; a member Go
 * does not know is ignored, and a volume with none is an emptyDir (SetDefaults_Volume). */
static const char *const volume_types[] = {
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
};

static int parse_item(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                      void *ctx)
{
    struct pod_key_path *it = elem;
    const struct ps_field fields[] = {
        {"key", PS_REQUIRED, &it->key, NULL},
        {"path", PS_REQUIRED, &it->path, NULL},
        {"mode", PS_MODE, &it->mode, NULL},
    };
    const char *problem;
    int rc;

    (void)i;
    (void)ctx;
    it->mode = -1;
    rc = ps__get_fields(x, e, fields, PS_COUNT(fields));
    if (rc == 0 && (problem = ps__relative_path_problem(it->path)))
        rc = ps__fail_at(x, "path", "Invalid value: \"%.80s\": %s", it->path, problem);
    return rc;
}

static int parse_items(struct parse_ctx *x, const struct kedge_jval *src, struct pod_volume *vol)
{
    return ps__parse_list(x, src, "items", MAX_ITEMS, sizeof(*vol->items), &vol->items,
                          &vol->n_items, parse_item, NULL);
}

int ps__parse_resource_ref(struct parse_ctx *x, const struct kedge_jval *ref, char **resource,
                           char **container, char **divisor);
const char *ps__field_subscript(const char *fp, const char *prefix, size_t *len);

/* The fieldPaths a downwardAPI volume may name (validDownwardAPIFieldPathExpressions, the
 * subscripted labels and annotations besides). */
static bool volume_field_ok(const char *fp)
{
    static const char *const ok[] = {"metadata.annotations", "metadata.labels", "metadata.name",
                                     "metadata.namespace", "metadata.uid"};
    size_t i, n;

    for (i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        if (!strcmp(fp, ok[i]))
            return true;
    return ps__field_subscript(fp, "metadata.labels['", &n) ||
           ps__field_subscript(fp, "metadata.annotations['", &n);
}

/* v1.DownwardAPIVolumeFile (validateDownwardAPIVolumeFile). */
static int parse_field_file(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                            void *ctx)
{
    struct pod_field_file *f = elem;
    const struct ps_field fields[] = {
        {"path", PS_STR, &f->path, NULL},
        {"mode", PS_MODE, &f->mode, NULL},
    };
    const struct kedge_jval *fr = NULL, *rr = NULL;
    const char *problem;
    size_t old;
    int rc;

    (void)i;
    (void)ctx;
    f->mode = -1;
    rc = ps__get_fields(x, e, fields, PS_COUNT(fields));
    if (rc == 0 && (problem = ps__relative_path_problem(f->path)))
        rc = ps__fail_at(x, "path", f->path && *f->path ? "Invalid value: \"%.80s\": %s" : "%.0s%s",
                         f->path ? f->path : "", problem);
    if (rc == 0)
        rc = ps__get_obj(x, e, "fieldRef", &fr);
    if (rc == 0)
        rc = ps__get_obj(x, e, "resourceFieldRef", &rr);
    if (rc == 0 && fr && rr)
        rc = ps__fail(x, "Invalid value: \"resource\": fieldRef and resourceFieldRef can not be "
                         "specified simultaneously");
    if (rc == 0 && !fr && !rr)
        rc = ps__fail(x, "Required value: one of fieldRef and resourceFieldRef is required");
    if (rc < 0)
        return rc;
    if (fr) {
        old = ps__path_key(x, "fieldRef");
        rc = ps__get_str(x, fr, "fieldPath", &f->field_path);
        if (rc == 0)
            rc = ps__required(x, "fieldPath", f->field_path);
        if (rc == 0 && !volume_field_ok(f->field_path))
            rc = ps__fail_at(x, "fieldPath",
                             "Unsupported value: \"%.80s\": supported values: "
                             "\"metadata.annotations\", \"metadata.labels\", \"metadata.name\", "
                             "\"metadata.namespace\", \"metadata.uid\"",
                             f->field_path);
    } else {
        old = ps__path_key(x, "resourceFieldRef");
        rc = ps__parse_resource_ref(x, rr, &f->resource, &f->container, &f->divisor);
        if (rc == 0 && !f->container)
            rc = ps__fail_at(x, "containerName", "Required value");
    }
    ps__path_pop(x, old);
    return rc;
}

static int parse_field_files(struct parse_ctx *x, const struct kedge_jval *src,
                             struct pod_field_file **out, size_t *n)
{
    return ps__parse_list(x, src, "items", MAX_ITEMS, sizeof(**out), out, n, parse_field_file,
                          NULL);
}

/* serviceAccountToken (validateProjectionSources): a path, at least 10 minutes. */
static int parse_token_projection(struct parse_ctx *x, const struct kedge_jval *t,
                                  struct pod_projection *pr)
{
    const char *problem;
    int rc;

    pr->kind = PROJ_TOKEN;
    pr->expiration_s = 3600; /* SetDefaults_ServiceAccountTokenProjection */
    rc = ps__get_str_or(x, t, "audience", "", &pr->audience);
    if (rc == 0)
        rc = ps__get_str(x, t, "path", &pr->path);
    if (rc == 0)
        rc = ps__get_int(x, t, "expirationSeconds", INT64_MIN, INT64_MAX, &pr->expiration_s);
    if (rc == 0 && pr->expiration_s < 600)
        rc = ps__fail_at(x, "expirationSeconds",
                         "Invalid value: %" PRId64
                         ": may not specify a duration less than 10 minutes",
                         pr->expiration_s);
    if (rc == 0 && pr->expiration_s > (int64_t)1 << 32)
        rc = ps__fail_at(x, "expirationSeconds",
                         "Invalid value: %" PRId64 ": may not specify a duration larger than 2^32 "
                         "seconds",
                         pr->expiration_s);
    if (rc == 0 && (problem = ps__relative_path_problem(pr->path)))
        rc = ps__fail_at(x, "path",
                         pr->path && *pr->path ? "Invalid value: \"%.80s\": %s" : "%.0s%s",
                         pr->path ? pr->path : "", problem);
    return rc;
}

/* v1.VolumeProjection: at most one source each (an empty one projects nothing). */
static int parse_projection(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                            void *ctx)
{
    static const char *const kinds[] = {"secret", "downwardAPI", "configMap",
                                        "serviceAccountToken"};
    struct pod_projection *pr = elem;
    const struct kedge_jval *src;
    size_t which, count, old;
    int rc = 0;

    (void)i;
    (void)ctx;
    rc = ps__want_object(x, e);
    if (rc < 0)
        return rc;
    src = ps__one_of(e, kinds, PS_COUNT(kinds), &count, &which);
    if (count > 1)
        return ps__fail(x, "Forbidden: may not specify more than 1 volume type");
    if (!count)
        return 0;
    old = ps__path_key(x, kinds[which]);
    if (src->type != KEDGE_JOBJ) {
        rc = ps__want_object(x, src);
    } else if (which == 1) {
        pr->kind = PROJ_DOWNWARD;
        rc = parse_field_files(x, src, &pr->fields, &pr->n_fields);
    } else if (which == 3) {
        rc = parse_token_projection(x, src, pr);
    } else {
        pr->kind = which == 0 ? PROJ_SECRET : PROJ_CONFIGMAP;
        rc = ps__get_str(x, src, "name", &pr->name);
        if (rc == 0)
            rc = ps__required(x, "name", pr->name);
        if (rc == 0)
            rc = ps__get_bool(x, src, "optional", &pr->optional);
        if (rc == 0)
            rc = ps__parse_list(x, src, "items", MAX_ITEMS, sizeof(*pr->items), &pr->items,
                                &pr->n_items, parse_item, NULL);
    }
    ps__path_pop(x, old);
    return rc;
}

static int parse_volume_source(struct parse_ctx *x, const char *type, const struct kedge_jval *src,
                               struct pod_volume *vol)
{
    static const char *const hp_types[] = {
        "",       "DirectoryOrCreate", "Directory",  "FileOrCreate", "File",
        "Socket", "CharDevice",        "BlockDevice"};
    const struct kedge_jval *v;
    size_t i, old = ps__path_key(x, type);
    int rc = ps__want_object(x, src);

    if (rc < 0)
        goto out;
    if (!strcmp(type, "emptyDir")) {
        vol->kind = VOL_EMPTYDIR;
        rc = ps__get_str(x, src, "medium", &vol->medium);
        if (rc == 0 && (v = ps__member(src, "sizeLimit")))
            rc = ps__get_quantity(x, "sizeLimit", v, 0, &vol->size_limit);
    } else if (!strcmp(type, "hostPath")) {
        vol->kind = VOL_HOSTPATH;
        rc = ps__get_str(x, src, "path", &vol->source);
        if (rc == 0)
            rc = ps__get_str(x, src, "type", &vol->host_path_type);
        if (rc == 0)
            rc = ps__required(x, "path", vol->source);
        for (i = 0; rc == 0 && vol->host_path_type && i < sizeof(hp_types) / sizeof(*hp_types); i++)
            if (!strcmp(vol->host_path_type, hp_types[i]))
                break;
        if (rc == 0 && vol->host_path_type && i == sizeof(hp_types) / sizeof(*hp_types))
            rc = ps__fail_at(
                x, "type",
                "Unsupported value: \"%.80s\": supported values: \"\", "
                "\"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", "
                "\"File\", \"FileOrCreate\", \"Socket\"",
                vol->host_path_type);
    } else if (!strcmp(type, "projected")) {
        vol->kind = VOL_PROJECTED;
        rc = ps__get_mode(x, src, "defaultMode", &vol->default_mode);
        if (rc == 0)
            rc = ps__parse_list(x, src, "sources", MAX_ITEMS, sizeof(*vol->sources), &vol->sources,
                                &vol->n_sources, parse_projection, NULL);
    } else if (!strcmp(type, "downwardAPI")) {
        vol->kind = VOL_DOWNWARD;
        rc = ps__get_mode(x, src, "defaultMode", &vol->default_mode);
        if (rc == 0)
            rc = parse_field_files(x, src, &vol->fields, &vol->n_fields);
    } else {
        const char *name_key = !strcmp(type, "secret") ? "secretName" : "name";
        vol->kind = !strcmp(type, "secret") ? VOL_SECRET : VOL_CONFIGMAP;
        rc = ps__get_str(x, src, name_key, &vol->source);
        if (rc == 0)
            rc = ps__required(x, name_key, vol->source);
        if (rc == 0)
            rc = ps__get_mode(x, src, "defaultMode", &vol->default_mode);
        if (rc == 0)
            rc = ps__get_bool(x, src, "optional", &vol->optional);
        if (rc == 0)
            rc = parse_items(x, src, vol);
    }
out:
    ps__path_pop(x, old);
    return rc;
}

static int parse_volume(struct parse_ctx *x, const struct kedge_jval *v, struct pod_volume *vol)
{
    const struct kedge_jval *src;
    const char *type;
    size_t which, count;
    int rc;

    vol->default_mode = 0644;
    rc = ps__want_object(x, v);
    if (rc == 0)
        rc = ps__get_str(x, v, "name", &vol->name);
    if (rc == 0)
        rc = ps__check_label(x, "name", vol->name);
    if (rc < 0)
        return rc;
    src = ps__one_of(v, volume_types, PS_COUNT(volume_types), &count, &which);
    type = volume_types[which];
    if (count > 1)
        return ps__fail(x, "Forbidden: may not specify more than 1 volume type");
    if (!count) {
        vol->kind = VOL_EMPTYDIR;
        vol->medium = kedge_strdup("");
        return vol->medium ? 0 : -ENOMEM;
    }
    if (strcmp(type, "emptyDir") && strcmp(type, "hostPath") && strcmp(type, "configMap") &&
        strcmp(type, "secret") && strcmp(type, "projected") && strcmp(type, "downwardAPI")) {
        vol->kind = VOL_UNSUPPORTED;
        vol->unsupported = kedge_strdup(type);
        return vol->unsupported ? 0 : -ENOMEM;
    }
    rc = parse_volume_source(x, type, src, vol);
    if (rc == 0 && vol->kind == VOL_EMPTYDIR && !vol->medium && !(vol->medium = kedge_strdup("")))
        rc = -ENOMEM;
    if (rc == 0 && vol->kind == VOL_HOSTPATH && !vol->host_path_type &&
        !(vol->host_path_type = kedge_strdup("")))
        rc = -ENOMEM;
    return rc;
}

static int parse_volume_elem(struct parse_ctx *x, const struct kedge_jval *e, void *elem, size_t i,
                             void *ctx)
{
    struct pod_volume *vol = elem, *all = vol - i; /* the ones before it, for duplicates */
    int rc = parse_volume(x, e, vol);
    size_t j;

    (void)ctx;
    for (j = 0; rc == 0 && j < i; j++)
        if (!strcmp(all[j].name, vol->name))
            rc = ps__fail_at(x, "name", "Duplicate value: \"%s\"", vol->name);
    return rc;
}

int ps__parse_volumes(struct parse_ctx *x, const struct kedge_jval *spec, struct pod_spec *p)
{
    return ps__parse_list(x, spec, "volumes", MAX_ITEMS, sizeof(*p->volumes), &p->volumes,
                          &p->n_volumes, parse_volume_elem, NULL);
}
