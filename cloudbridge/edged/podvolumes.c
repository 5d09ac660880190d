/* podvolumes.c: a pod's volumes on the node, as kubelet's volume plugins lay them out
 * (pkg/volume/{emptydir,hostpath,configmap,secret,projected,downwardapi}).
 *
 * {pods_dir}/{uid}/volumes/{name} is the directory a container's bind mount points at ({uid}
 * and volumes/ are 0750 as kubelet makes them, the volume directories 0755):
 *   emptyDir   an empty directory, mode 0777 as kubelet makes it (any container user may
 *              write). medium Memory is a directory as well: kubelet mounts a tmpfs there,
 *              which needs CAP_SYS_ADMIN and a matching unmount before every removal; that is
 *              left out, so a Memory emptyDir lives on the node's disk.
 *   hostPath   nothing here: the bind uses the host path itself. Its type is checked (and
 *              DirectoryOrCreate / FileOrCreate create it) with kubelet's messages.
 *   configMap, secret, projected, downwardAPI
 *              files: podpayload.c computes them, atomicwriter.c writes them as kubelet's
 *              AtomicWriter does (a container sees the old set or the new one, never a mix).
 * Any other volume type is refused with a FailedMount reason naming it: kedge has no plugin
 * for it, and an empty directory in its place would hide that from the pod's owner.
 */
#define _GNU_SOURCE /* O_DIRECTORY, O_NOFOLLOW, fdopendir, gmtime_r */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "podvolumes.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"

#define DIR_MODE 0755
#define POD_DIR_MODE 0750  /* kubelet's pod and volumes dirs: secrets are not for everyone */
#define EMPTYDIR_MODE 0777 /* kubelet's emptyDir perm */
#define HOSTFILE_MODE 0644 /* hostPath FileOrCreate, as kubelet's MakeFile */

/* mkdir -p path with mode for the directories it makes. 0 or -errno. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = kedge_strdup(path), *s;
    struct stat st;
    int rc = 0;

    if (!p)
        return -ENOMEM;
    for (s = p + 1;; s++) {
        if (*s && *s != '/')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    if (rc == 0 && (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)))
        rc = stat(path, &st) < 0 ? -errno : -ENOTDIR;
    kedge_free(p);
    return rc;
}

/* ---- removal ------------------------------------------------------------------------------- */

int podvolumes_remove(const char *pods_dir, const char *uid)
{
    int pfd, rc;

    if (!pods_dir || !vol_safe_name(uid))
        return -EINVAL;
    pfd = open(pods_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return errno == ENOENT ? 0 : -errno;
    rc = vol_remove_tree(pfd, uid);
    close(pfd);
    return rc;
}

bool podvolumes_uses(const struct pod_spec *p, const char *type, const char *name)
{
    enum pod_volume_kind kind;
    enum pod_projection_kind pkind;
    size_t i, j;

    if (!p || !type || !name)
        return false;
    if (!strcmp(type, "configmap")) {
        kind = VOL_CONFIGMAP;
        pkind = PROJ_CONFIGMAP;
    } else if (!strcmp(type, "secret")) {
        kind = VOL_SECRET;
        pkind = PROJ_SECRET;
    } else {
        return false;
    }
    for (i = 0; i < p->n_volumes; i++) {
        const struct pod_volume *v = &p->volumes[i];

        if (v->kind == kind && v->source && !strcmp(v->source, name))
            return true;
        for (j = 0; v->kind == VOL_PROJECTED && j < v->n_sources; j++)
            if (v->sources[j].kind == pkind && v->sources[j].name &&
                !strcmp(v->sources[j].name, name))
                return true;
    }
    return false;
}

bool podvolumes_has_token(const struct pod_spec *p)
{
    size_t i, j;

    for (i = 0; p && i < p->n_volumes; i++)
        for (j = 0; p->volumes[i].kind == VOL_PROJECTED && j < p->volumes[i].n_sources; j++)
            if (p->volumes[i].sources[j].kind == PROJ_TOKEN)
                return true;
    return false;
}

/* ---- hostPath ------------------------------------------------------------------------------ */

#define SETUP_FAILED "MountVolume.SetUp failed for volume \"%s\" : "

/* kubelet's checkTypeInternal (pkg/volume/hostpath/host_path.go), with its messages. Unlike
 * kubelet, FileOrCreate also makes the file's missing parent directories. */
static int host_path(const struct pod_volume *v, char *why, size_t why_len)
{
    const char *type = v->host_path_type ? v->host_path_type : "";
    const char *path = v->source, *want = NULL;
    bool exists, ok = false;
    struct stat st;
    char eb[128];
    int rc;

    if (!path || path[0] != '/') {
        kedge_set_why(why, why_len, SETUP_FAILED "hostPath %s is not an absolute path", v->name,
                      path ? path : "");
        return KEDGE_ESCHEMA;
    }
    exists = stat(path, &st) == 0;
    if (!strcmp(type, ""))
        return 0;
    if (!strcmp(type, "DirectoryOrCreate") && !exists) {
        rc = mkdir_p(path, DIR_MODE);
        if (rc < 0)
            kedge_set_why(why, why_len, SETUP_FAILED "mkdir %s: %s", v->name, path,
                          kedge_go_strerror(rc, eb, sizeof(eb)));
        return rc;
    }
    if (!strcmp(type, "FileOrCreate") && !exists) {
        char *dir = kedge_strdup(path), *slash;
        int fd;

        if (!dir)
            return -ENOMEM;
        slash = strrchr(dir, '/');
        rc = 0;
        if (slash != dir) {
            *slash = '\0';
            rc = mkdir_p(dir, DIR_MODE);
        }
        kedge_free(dir);
        if (rc == 0) {
            fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, HOSTFILE_MODE);
            if (fd < 0)
                rc = -errno;
            else
                close(fd);
        }
        if (rc < 0)
            kedge_set_why(why, why_len, SETUP_FAILED "open %s: %s", v->name, path,
                          kedge_go_strerror(rc, eb, sizeof(eb)));
        return rc;
    }
    if (!strcmp(type, "DirectoryOrCreate") || !strcmp(type, "Directory")) {
        want = "a directory";
        ok = exists && S_ISDIR(st.st_mode);
    } else if (!strcmp(type, "FileOrCreate") || !strcmp(type, "File")) {
        want = "a file";
        ok = exists && S_ISREG(st.st_mode);
    } else if (!strcmp(type, "Socket")) {
        want = "a socket file";
        ok = exists && S_ISSOCK(st.st_mode);
    } else if (!strcmp(type, "CharDevice")) {
        want = "a character device";
        ok = exists && S_ISCHR(st.st_mode);
    } else if (!strcmp(type, "BlockDevice")) {
        want = "a block device";
        ok = exists && S_ISBLK(st.st_mode);
    } else {
        kedge_set_why(why, why_len, SETUP_FAILED "%s is an invalid volume type", v->name, type);
        return KEDGE_ESCHEMA;
    }
    if (ok)
        return 0;
    kedge_set_why(why, why_len, SETUP_FAILED "hostPath type check failed: %s is not %s", v->name,
                  path, want);
    return KEDGE_ESCHEMA;
}

/* ---- file volumes ---------------------------------------------------------------------------- */

/* A configMap, secret, projected or downwardAPI volume into the directory vfd. */
static int file_volume(int vfd, const struct pod_spec *p, const struct pod_volume *v,
                       const struct podvolumes_src *src, char *why, size_t why_len)
{
    struct vol_payload pl = {0};
    char msg[512], eb[128];
    int rc;

    msg[0] = '\0';
    rc = podpayload_build(src, p, v, &pl, msg, sizeof(msg));
    if (rc < 0 && rc != -ENOMEM)
        kedge_set_why(why, why_len, SETUP_FAILED "%s", v->name, msg);
    if (rc == 0) {
        rc = vol_atomic_write(vfd, &pl);
        if (rc < 0 && rc != -ENOMEM)
            kedge_set_why(why, why_len, SETUP_FAILED "write files: %s", v->name,
                          kedge_go_strerror(rc, eb, sizeof(eb)));
    }
    vol_payload_cleanup(&pl);
    return rc;
}

int podvolumes_setup(const char *pods_dir, const struct pod_spec *p,
                     const struct podvolumes_src *src, char *why, size_t why_len)
{
    int pods_fd = -1, uid_fd = -1, vols_fd = -1, rc;
    char eb[128];
    size_t i;

    kedge_set_why(why, why_len, "%s", "");
    if (!pods_dir || !p)
        return -EINVAL;
    if (!vol_safe_name(p->uid)) {
        kedge_set_why(why, why_len, "pod uid \"%s\" cannot name a directory", p->uid ? p->uid : "");
        return KEDGE_ESCHEMA;
    }
    for (i = 0; i < p->n_volumes; i++)
        if (!vol_safe_name(p->volumes[i].name)) {
            kedge_set_why(why, why_len, "volume name \"%s\" cannot name a directory",
                          p->volumes[i].name ? p->volumes[i].name : "");
            return KEDGE_ESCHEMA;
        }
    rc = mkdir_p(pods_dir, POD_DIR_MODE);
    if (rc == 0) {
        pods_fd = open(pods_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = pods_fd < 0 ? -errno : 0;
    }
    if (rc == 0)
        rc = uid_fd = vol_open_subdir(pods_fd, p->uid, POD_DIR_MODE, NULL);
    if (rc >= 0)
        rc = vols_fd = vol_open_subdir(uid_fd, "volumes", POD_DIR_MODE, NULL);
    if (rc < 0) {
        kedge_set_why(why, why_len, "cannot make the volumes directory of pod %s under %s: %s",
                      p->uid, pods_dir, kedge_go_strerror(rc, eb, sizeof(eb)));
        goto out;
    }
    rc = 0;
    for (i = 0; i < p->n_volumes && rc == 0; i++) {
        const struct pod_volume *v = &p->volumes[i];
        bool created;
        int vfd;

        switch (v->kind) {
        case VOL_HOSTPATH:
            rc = host_path(v, why, why_len);
            continue;
        case VOL_UNSUPPORTED:
            kedge_set_why(why, why_len, SETUP_FAILED "volume type %s is not supported on this node",
                          v->name, v->unsupported ? v->unsupported : "(unknown)");
            rc = KEDGE_ESCHEMA;
            continue;
        case VOL_EMPTYDIR:
        case VOL_CONFIGMAP:
        case VOL_SECRET:
        case VOL_PROJECTED:
        case VOL_DOWNWARD:
            break;
        }
        vfd = vol_open_subdir(vols_fd, v->name, v->kind == VOL_EMPTYDIR ? EMPTYDIR_MODE : DIR_MODE,
                              &created);
        if (vfd < 0) {
            rc = vfd;
            kedge_set_why(why, why_len, SETUP_FAILED "mkdir %s/%s/volumes/%s: %s", v->name,
                          pods_dir, p->uid, v->name, kedge_go_strerror(rc, eb, sizeof(eb)));
            continue;
        }
        if (v->kind != VOL_EMPTYDIR)
            rc = file_volume(vfd, p, v, src, why, why_len);
        close(vfd);
    }
out:
    if (vols_fd >= 0)
        close(vols_fd);
    if (uid_fd >= 0)
        close(uid_fd);
    if (pods_fd >= 0)
        close(pods_fd);
    return rc;
}
