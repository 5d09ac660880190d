/* podvolumes.c: a pod's volumes on the node, as kubelet's volume plugins lay them out
 * (pkg/volume/{emptydir,hostpath,configmap,secret}, pkg/volume/util/atomic_writer.go).
 *
 * {pods_dir}/{uid}/volumes/{name} is the directory a container's bind mount points at ({uid}
 * and volumes/ are 0750 as kubelet makes them, the volume directories 0755):
 *   emptyDir   an empty directory, mode 0777 as kubelet makes it (any container user may
 *              write). medium Memory is a directory as well: kubelet mounts a tmpfs there,
 *              which needs CAP_SYS_ADMIN and a matching unmount before every removal; that is
 *              left out, so a Memory emptyDir lives on the node's disk.
 *   hostPath   nothing here: the bind uses the host path itself. Its type is checked (and
 *              DirectoryOrCreate / FileOrCreate create it) with kubelet's messages.
 *   configMap  the object's keys as files, written the way kubelet's AtomicWriter does: the
 *   secret     files go into a fresh `..YYYY_MM_DD_HH_MM_SS.nnnnnnnnn` directory, the `..data`
 *              symlink is switched to it with one rename, and every user-visible name is a
 *              symlink through `..data`. A container therefore sees the old set or the new
 *              set, never a mix; an unchanged set is not rewritten.
 * The objects come from the store through the caller's lookup (MetaManager); this file does no
 * network I/O. Removal never follows a symlink and never crosses into another filesystem, so
 * nothing a container left in an emptyDir can make it delete outside the pod's directory.
 */
#define _GNU_SOURCE /* O_DIRECTORY, O_NOFOLLOW, fdopendir, gmtime_r */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "edged.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/json.h"
#include "kedge/util.h"

#define DIR_MODE 0755
#define POD_DIR_MODE 0750  /* kubelet's pod and volumes dirs: secrets are not for everyone */
#define EMPTYDIR_MODE 0777 /* kubelet's emptyDir perm */
#define HOSTFILE_MODE 0644 /* hostPath FileOrCreate, as kubelet's MakeFile */
#define DATA_LINK "..data"
#define DATA_TMP "..data_tmp"
#define MAX_PATH_LEN 4096 /* AtomicWriter's maxPathLength */
#define MAX_NAME_LEN 255  /* and maxFileNameLength */
#define RM_MAX_DEPTH 64   /* deeper trees are moved up before removal (open fds per level) */
#define WALK_MAX_DEPTH 64 /* our own projection trees are never this deep */

/* One file of a projection: path relative to the volume, content, mode. */
struct proj_file {
    char *path;
    char *data;
    size_t len;
    int mode;
};

struct payload {
    struct proj_file *f;
    size_t n, cap;
};

/* ---- small helpers ------------------------------------------------------------------------- */

/* A name used as one directory entry: not empty, no '/', not "." or "..". */
static bool safe_name(const char *s)
{
    return s && *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..") &&
           strlen(s) <= MAX_NAME_LEN;
}

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

/* A directory entry of dfd that is a directory (made with mode if missing), opened without
 * following a symlink. *created tells whether it was made now. Returns the fd or -errno. */
static int open_subdir(int dfd, const char *name, mode_t mode, bool *created)
{
    int fd;

    if (created)
        *created = false;
    if (mkdirat(dfd, name, mode) == 0) {
        if (created)
            *created = true;
    } else if (errno != EEXIST) {
        return -errno;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -ENOTDIR : -errno;
    if (created && *created && fchmod(fd, mode) < 0) { /* umask-independent, as kubelet */
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* ---- removal without following symlinks ---------------------------------------------------- */

static int empty_dir(int dfd, dev_t dev, int top_fd, int depth, unsigned long *moved);

/* Remove entry name of dfd (a directory's whole tree). A subdirectory on another filesystem (a
 * mount) is refused with -EBUSY: its content is not ours. Below RM_MAX_DEPTH a directory is
 * renamed into top_fd (when >= 0) and *moved counted, so the caller comes back for it with few
 * descriptors open; without top_fd such a tree is -ELOOP. */
static int rm_entry(int dfd, const char *name, dev_t dev, int top_fd, int depth,
                    unsigned long *moved)
{
    struct stat st;
    int fd, rc;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
            return -errno;
        return 0;
    }
    if (st.st_dev != dev)
        return -EBUSY;
    if (depth >= RM_MAX_DEPTH) {
        char tmp[64];
        int i;

        if (top_fd < 0)
            return -ELOOP;
        for (i = 0; i < 100; i++) {
            snprintf(tmp, sizeof(tmp), "..kedge-rm-%lu-%d", *moved, i);
            if (renameat(dfd, name, top_fd, tmp) == 0) {
                (*moved)++;
                return 0;
            }
            if (errno != EEXIST && errno != ENOTEMPTY)
                return -errno;
        }
        return -EEXIST;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP || errno == ENOTDIR) /* replaced by a non-directory meanwhile */
            return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        return -errno;
    }
    rc = empty_dir(fd, dev, top_fd, depth + 1, moved);
    close(fd);
    if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

/* Remove everything inside the directory dfd (which stays open and the caller's). */
static int empty_dir(int dfd, dev_t dev, int top_fd, int depth, unsigned long *moved)
{
    struct dirent *de;
    DIR *d;
    int fd = dup(dfd), rc = 0;

    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rewinddir(d); /* the dup shares the offset of an earlier pass */
    while (rc == 0) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno)
                rc = -errno;
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        rc = rm_entry(dfd, de->d_name, dev, top_fd, depth, moved);
    }
    closedir(d);
    return rc;
}

/* Remove entry name of pfd and its whole tree. 0 (also when it does not exist) or -errno. */
static int remove_tree(int pfd, const char *name)
{
    unsigned long moved = 0, before;
    struct stat st;
    int fd, rc;

    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(pfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    do { /* again while deep subtrees were moved up into the top directory */
        before = moved;
        rc = empty_dir(fd, st.st_dev, fd, 0, &moved);
    } while (rc == 0 && moved != before);
    close(fd);
    if (rc == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

int podvolumes_remove(const char *pods_dir, const char *uid)
{
    int pfd, rc;

    if (!pods_dir || !safe_name(uid))
        return -EINVAL;
    pfd = open(pods_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return errno == ENOENT ? 0 : -errno;
    rc = remove_tree(pfd, uid);
    close(pfd);
    return rc;
}

bool podvolumes_uses(const struct pod_spec *p, const char *type, const char *name)
{
    enum pod_volume_kind kind;
    size_t i;

    if (!p || !type || !name)
        return false;
    if (!strcmp(type, "configmap"))
        kind = VOL_CONFIGMAP;
    else if (!strcmp(type, "secret"))
        kind = VOL_SECRET;
    else
        return false;
    for (i = 0; i < p->n_volumes; i++)
        if (p->volumes[i].kind == kind && p->volumes[i].source &&
            !strcmp(p->volumes[i].source, name))
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

/* ---- configMap / secret payloads ----------------------------------------------------------- */

static void payload_cleanup(struct payload *pl)
{
    size_t i;

    for (i = 0; i < pl->n; i++) {
        kedge_free(pl->f[i].path);
        kedge_free(pl->f[i].data);
    }
    kedge_free(pl->f);
    memset(pl, 0, sizeof(*pl));
}

/* Add (or, for a path already there, replace: the last one wins as in kubelet's map) a file.
 * path and data are taken on success. */
static int payload_take(struct payload *pl, char *path, char *data, size_t len, int mode)
{
    size_t i;

    for (i = 0; i < pl->n; i++)
        if (!strcmp(pl->f[i].path, path)) {
            kedge_free(pl->f[i].path);
            kedge_free(pl->f[i].data);
            break;
        }
    if (i == pl->n) {
        if (pl->n == pl->cap) {
            size_t cap = pl->cap ? pl->cap * 2 : 8;
            struct proj_file *f = kedge_realloc(pl->f, cap * sizeof(*f));
            if (!f)
                return -ENOMEM;
            pl->f = f;
            pl->cap = cap;
        }
        pl->n++;
    }
    pl->f[i].path = path;
    pl->f[i].data = data;
    pl->f[i].len = len;
    pl->f[i].mode = mode;
    return 0;
}

static int payload_add(struct payload *pl, const char *path, const char *data, size_t len, int mode)
{
    char *p = kedge_strdup(path), *d = kedge_malloc(len + 1);

    if (!p || !d) {
        kedge_free(p);
        kedge_free(d);
        return -ENOMEM;
    }
    memcpy(d, data, len);
    d[len] = '\0';
    if (payload_take(pl, p, d, len, mode) < 0) {
        kedge_free(p);
        kedge_free(d);
        return -ENOMEM;
    }
    return 0;
}

/* AtomicWriter's validatePath, then path.Clean: relative, no "..", no leading "..x", at most
 * 4096 bytes with names of at most 255; empty and "." components are dropped. The clean path
 * goes to *out (kedge_malloc). 0, KEDGE_ESCHEMA (msg set) or -ENOMEM. */
static int clean_path(const char *path, char **out, char *msg, size_t msg_len)
{
    struct kedge_buf b = KEDGE_BUF_INIT;
    const char *s = path, *e;
    bool first = true;

    *out = NULL;
    if (!*path) {
        kedge_set_why(msg, msg_len, "invalid path: must not be empty: \"%s\"", path);
        return KEDGE_ESCHEMA;
    }
    if (path[0] == '/') {
        kedge_set_why(msg, msg_len, "invalid path: must be relative path: %s", path);
        return KEDGE_ESCHEMA;
    }
    if (strlen(path) > MAX_PATH_LEN) {
        kedge_set_why(msg, msg_len, "invalid path: must be less than or equal to %d characters",
                      MAX_PATH_LEN);
        return KEDGE_ESCHEMA;
    }
    for (; *s; s = *e ? e + 1 : e) {
        size_t n;

        e = strchr(s, '/');
        if (!e)
            e = s + strlen(s);
        n = (size_t)(e - s);
        if (n == 2 && !memcmp(s, "..", 2)) {
            kedge_set_why(msg, msg_len, "invalid path: must not contain '..': %s", path);
            goto schema;
        }
        if (n > MAX_NAME_LEN) {
            kedge_set_why(msg, msg_len,
                          "invalid path: filenames must be less than or equal to %d characters",
                          MAX_NAME_LEN);
            goto schema;
        }
        if (s == path && n > 2 && !memcmp(s, "..", 2)) {
            kedge_set_why(msg, msg_len, "invalid path: must not start with '..': %s", path);
            goto schema;
        }
        if (n == 0 || (n == 1 && *s == '.'))
            continue;
        if ((!first && kedge_buf_putc(&b, '/') < 0) || kedge_buf_append(&b, s, n) < 0) {
            kedge_buf_cleanup(&b);
            return -ENOMEM;
        }
        first = false;
    }
    if (first) { /* only "." components */
        kedge_set_why(msg, msg_len, "invalid path: must not be empty: \"%s\"", path);
        goto schema;
    }
    *out = kedge_buf_take(&b, NULL);
    return *out ? 0 : -ENOMEM;
schema:
    kedge_buf_cleanup(&b);
    return KEDGE_ESCHEMA;
}

/* Every key of the object (ConfigMap data as is, binaryData and Secret data base64-decoded)
 * into all, path = key. Returns 0, KEDGE_ESCHEMA (msg set), -ENOMEM. */
static int object_keys(const struct kedge_jval *root, bool secret, const char *name,
                       struct payload *all, char *msg, size_t msg_len)
{
    static const char *const fields[] = {"data", "binaryData"};
    const char *kind = secret ? "secret" : "configmap";
    size_t f;
    int rc;

    if (!root || root->type != KEDGE_JOBJ) {
        kedge_set_why(msg, msg_len, "%s \"%s\" is not an object", kind, name);
        return KEDGE_ESCHEMA;
    }
    for (f = 0; f < (secret ? 1u : 2u); f++) {
        const struct kedge_jval *obj = kedge_json_get(root, fields[f]), *m;
        bool b64 = secret || f == 1;

        if (kedge_json_is_null(obj))
            continue;
        if (obj->type != KEDGE_JOBJ) {
            kedge_set_why(msg, msg_len, "%s \"%s\": %s is not an object", kind, name, fields[f]);
            return KEDGE_ESCHEMA;
        }
        for (m = obj->child; m; m = m->next) {
            char *data = NULL, *key;
            size_t len = 0;

            if (m->type != KEDGE_JSTR || memchr(m->key, '\0', m->key_len)) {
                kedge_set_why(msg, msg_len, "%s \"%s\": %s.%.*s is not a string", kind, name,
                              fields[f], (int)m->key_len, m->key);
                return KEDGE_ESCHEMA;
            }
            if (b64) {
                rc = kedge_base64_decode(m->str, m->len, &data, &len);
                if (rc == KEDGE_EPARSE) {
                    kedge_set_why(msg, msg_len, "%s \"%s\": %s.%.*s is not base64", kind, name,
                                  fields[f], (int)m->key_len, m->key);
                    return KEDGE_ESCHEMA;
                }
                if (rc < 0)
                    return rc;
            } else {
                data = kedge_malloc(m->len + 1);
                if (!data)
                    return -ENOMEM;
                memcpy(data, m->str, m->len);
                data[m->len] = '\0';
                len = m->len;
            }
            key = kedge_strndup(m->key, m->key_len);
            if (!key || payload_take(all, key, data, len, 0) < 0) {
                kedge_free(key);
                kedge_free(data);
                return -ENOMEM;
            }
        }
    }
    return 0;
}

/* What the volume projects: every key at its own name, or only the items at their paths.
 * msg gets the FailedMount detail. Returns 0, KEDGE_ESCHEMA, -ENOMEM. */
static int project(const struct pod_volume *v, const struct payload *all, struct payload *out,
                   char *msg, size_t msg_len)
{
    bool secret = v->kind == VOL_SECRET;
    size_t i, k;
    int rc;

    if (!v->n_items) {
        for (k = 0; k < all->n; k++) {
            char *clean;

            rc = clean_path(all->f[k].path, &clean, msg, msg_len);
            if (rc == 0 && (strcmp(clean, all->f[k].path) || strchr(clean, '/'))) {
                /* a key is one file name (the API server's key rule) */
                kedge_set_why(msg, msg_len, "invalid path: %s is not a file name", all->f[k].path);
                rc = KEDGE_ESCHEMA;
            }
            kedge_free(clean);
            if (rc < 0)
                return rc;
            rc = payload_add(out, all->f[k].path, all->f[k].data, all->f[k].len, v->default_mode);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    for (i = 0; i < v->n_items; i++) {
        const struct pod_key_path *it = &v->items[i];
        const struct proj_file *src = NULL;
        char *clean;

        for (k = all->n; k-- > 0;)
            if (it->key && !strcmp(all->f[k].path, it->key)) {
                src = &all->f[k];
                break;
            }
        if (!src) {
            if (v->optional)
                continue;
            if (secret)
                kedge_set_why(msg, msg_len, "references non-existent secret key: %s",
                              it->key ? it->key : "");
            else
                kedge_set_why(msg, msg_len, "configmap references non-existent config key: %s",
                              it->key ? it->key : "");
            return KEDGE_ESCHEMA;
        }
        rc = clean_path(it->path ? it->path : "", &clean, msg, msg_len);
        if (rc < 0)
            return rc;
        rc = payload_add(out, clean, src->data, src->len,
                         it->mode >= 0 ? it->mode : v->default_mode);
        kedge_free(clean);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the atomic writer --------------------------------------------------------------------- */

/* A timestamped data directory's name: "..2024_05_01_10_00_00.123456789". */
static bool is_ts_name(const char *s)
{
    return s[0] == '.' && s[1] == '.' && s[2] >= '0' && s[2] <= '9' && !strchr(s, '/');
}

/* Open the file at relative path inside dfd for reading, never following a symlink on the
 * way. Returns the fd or -errno. */
static int open_rel(int dfd, const char *path)
{
    char *copy = kedge_strdup(path), *s, *slash;
    int fd = dfd, next, rc;

    if (!copy)
        return -ENOMEM;
    for (s = copy; (slash = strchr(s, '/')); s = slash + 1) {
        *slash = '\0';
        next = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = -errno;
        if (fd != dfd)
            close(fd);
        if (next < 0) {
            kedge_free(copy);
            return rc;
        }
        fd = next;
    }
    next = openat(fd, s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    rc = next < 0 ? -errno : next;
    if (fd != dfd)
        close(fd);
    kedge_free(copy);
    return rc;
}

/* Whether the file holds exactly len bytes of data with the given mode. */
static bool file_matches(int dfd, const struct proj_file *f)
{
    char buf[4096];
    struct stat st;
    size_t off = 0;
    bool same = false;
    int fd = open_rel(dfd, f->path);

    if (fd < 0)
        return false;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != f->len ||
        (int)(st.st_mode & 07777) != (f->mode & 07777))
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        if (n == 0)
            break;
        if (off + (size_t)n > f->len || memcmp(buf, f->data + off, (size_t)n))
            goto out;
        off += (size_t)n;
    }
    same = off == f->len;
out:
    close(fd);
    return same;
}

/* Count the non-directories in the tree below dfd. -1 when it cannot be read. */
static long count_files(int dfd, int depth)
{
    struct dirent *de;
    long n = 0;
    DIR *d;
    int fd;

    if (depth > WALK_MAX_DEPTH)
        return -1;
    fd = dup(dfd);
    if (fd < 0)
        return -1;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    while (n >= 0 && (de = readdir(d))) {
        struct stat st;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            n = -1;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            long m = sub < 0 ? -1 : count_files(sub, depth + 1);

            if (sub >= 0)
                close(sub);
            n = m < 0 ? -1 : n + m;
        } else {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The data directory already holds exactly this payload (content and mode). */
static bool payload_unchanged(int old_fd, const struct payload *pl)
{
    size_t i;

    if (count_files(old_fd, 0) != (long)pl->n)
        return false;
    for (i = 0; i < pl->n; i++)
        if (!file_matches(old_fd, &pl->f[i]))
            return false;
    return true;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write one file at its path inside the fresh data directory tsfd: parents made, the file
 * created (never over something), its mode set, its content and its directory fsynced. */
static int write_file(int tsfd, const struct proj_file *f)
{
    char *copy = kedge_strdup(f->path), *s, *slash;
    int dfd = tsfd, fd, rc = 0;

    if (!copy)
        return -ENOMEM;
    for (s = copy; (slash = strchr(s, '/')); s = slash + 1) {
        int next;

        *slash = '\0';
        next = open_subdir(dfd, s, DIR_MODE, NULL);
        if (dfd != tsfd)
            close(dfd);
        if (next < 0) {
            kedge_free(copy);
            return next;
        }
        dfd = next;
    }
    fd = openat(dfd, s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(fd, f->data, f->len);
    if (rc == 0 && fchmod(fd, (mode_t)(f->mode & 07777)) < 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && fsync(dfd) < 0)
        rc = -errno;
out:
    if (dfd != tsfd)
        close(dfd);
    kedge_free(copy);
    return rc;
}

/* Make "..<UTC time>.<ns>" in vfd; its name into name[]. Returns its fd or -errno. */
static int make_ts_dir(int vfd, char *name, size_t n)
{
    struct timespec ts;
    struct tm tm;
    int i, fd;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    for (i = 0; i < 1000; i++) {
        char stamp[32];
        long ns = (ts.tv_nsec + i) % 1000000000L;

        strftime(stamp, sizeof(stamp), "..%Y_%m_%d_%H_%M_%S", &tm);
        snprintf(name, n, "%s.%09ld", stamp, ns);
        if (mkdirat(vfd, name, DIR_MODE) < 0) {
            if (errno == EEXIST)
                continue;
            return -errno;
        }
        fd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        if (fchmod(fd, DIR_MODE) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        return fd;
    }
    return -EEXIST;
}

/* The first component of path into out (n bytes). */
static void top_name(const char *path, char *out, size_t n)
{
    size_t k = strcspn(path, "/");

    if (k >= n)
        k = n - 1;
    memcpy(out, path, k);
    out[k] = '\0';
}

static bool payload_has_top(const struct payload *pl, const char *name)
{
    char top[MAX_NAME_LEN + 1];
    size_t i;

    for (i = 0; i < pl->n; i++) {
        top_name(pl->f[i].path, top, sizeof(top));
        if (!strcmp(top, name))
            return true;
    }
    return false;
}

/* A symlink name -> ..data/name for every top-level name of the payload that has none. */
static int make_visible(int vfd, const struct payload *pl)
{
    char top[MAX_NAME_LEN + 1], target[MAX_NAME_LEN + 16], got[8];
    size_t i;

    for (i = 0; i < pl->n; i++) {
        top_name(pl->f[i].path, top, sizeof(top));
        if (readlinkat(vfd, top, got, sizeof(got)) >= 0 || errno != ENOENT)
            continue; /* there already (kubelet leaves what it finds) */
        snprintf(target, sizeof(target), DATA_LINK "/%s", top);
        if (symlinkat(target, vfd, top) < 0 && errno != EEXIST)
            return -errno;
    }
    return 0;
}

/* Remove the user-visible symlinks no longer in the payload, and every data directory but
 * keep (the old one, and any a crash left behind). */
static int drop_stale(int vfd, const struct payload *pl, const char *keep)
{
    struct dirent *de;
    DIR *d;
    int fd = dup(vfd), rc = 0;

    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    while ((de = readdir(d))) {
        struct stat st;
        int r = 0;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, DATA_LINK) || !strcmp(de->d_name, keep))
            continue;
        if (fstatat(vfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (is_ts_name(de->d_name) && S_ISDIR(st.st_mode))
            r = remove_tree(vfd, de->d_name);
        else if (S_ISLNK(st.st_mode) && !payload_has_top(pl, de->d_name))
            r = unlinkat(vfd, de->d_name, 0) < 0 && errno != ENOENT ? -errno : 0;
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

/* AtomicWriter.Write for the volume directory vfd. */
static int atomic_write(int vfd, const struct payload *pl)
{
    char old[MAX_NAME_LEN + 1], ts[64];
    ssize_t n;
    size_t i;
    int tsfd, rc;

    n = readlinkat(vfd, DATA_LINK, old, sizeof(old) - 1);
    if (n > 0) {
        old[n] = '\0';
        if (is_ts_name(old)) {
            int ofd = openat(vfd, old, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            bool same = ofd >= 0 && payload_unchanged(ofd, pl);

            if (ofd >= 0)
                close(ofd);
            if (same) /* nothing rewritten; only links someone removed come back */
                return make_visible(vfd, pl);
        }
    }
    tsfd = make_ts_dir(vfd, ts, sizeof(ts));
    if (tsfd < 0)
        return tsfd;
    rc = 0;
    for (i = 0; i < pl->n && rc == 0; i++)
        rc = write_file(tsfd, &pl->f[i]);
    if (rc == 0 && fsync(tsfd) < 0)
        rc = -errno;
    close(tsfd);
    if (rc == 0 && unlinkat(vfd, DATA_TMP, 0) < 0 && errno != ENOENT)
        rc = -errno;
    if (rc == 0 && symlinkat(ts, vfd, DATA_TMP) < 0)
        rc = -errno;
    if (rc == 0 && renameat(vfd, DATA_TMP, vfd, DATA_LINK) < 0) /* the switch */
        rc = -errno;
    if (rc < 0) {
        (void)unlinkat(vfd, DATA_TMP, 0);
        (void)remove_tree(vfd, ts);
        return rc;
    }
    if (fsync(vfd) < 0)
        return -errno;
    rc = make_visible(vfd, pl);
    if (rc == 0)
        rc = drop_stale(vfd, pl, ts);
    if (rc == 0 && fsync(vfd) < 0)
        rc = -errno;
    return rc;
}

/* A configMap or secret volume into the directory vfd. */
static int object_volume(int vfd, const struct pod_volume *v, const char *ns,
                         podspec_lookup_fn lookup, void *lookup_ctx, char *why, size_t why_len)
{
    bool secret = v->kind == VOL_SECRET;
    const char *type = secret ? "secret" : "configmap";
    struct payload all = {0}, pl = {0};
    struct kedge_jdoc *doc = NULL;
    char *json = NULL, msg[512], eb[128];
    int rc;

    msg[0] = '\0';
    if (!v->source || !*v->source) {
        kedge_set_why(why, why_len, SETUP_FAILED "%s has no name", v->name, type);
        return KEDGE_ESCHEMA;
    }
    rc = lookup ? lookup(lookup_ctx, type, ns, v->source, &json) : -ENOENT;
    if (rc == 0 && !json)
        rc = -EIO;
    if (rc == -ENOENT) {
        if (!v->optional) {
            kedge_set_why(why, why_len, SETUP_FAILED "%s \"%s\" not found", v->name, type,
                          v->source);
            rc = KEDGE_ESCHEMA;
            goto out;
        }
        /* optional and missing: an empty volume */
    } else if (rc < 0) {
        kedge_set_why(why, why_len, SETUP_FAILED "get %s \"%s\": %s", v->name, type, v->source,
                      kedge_strerror(rc));
        goto out;
    } else {
        rc = kedge_json_parse(json, strlen(json), &doc);
        if (rc == KEDGE_EPARSE) {
            kedge_set_why(why, why_len, SETUP_FAILED "%s \"%s\" is not valid JSON", v->name, type,
                          v->source);
            rc = KEDGE_ESCHEMA;
            goto out;
        }
        if (rc < 0)
            goto out;
        rc = object_keys(kedge_jdoc_root(doc), secret, v->source, &all, msg, sizeof(msg));
        if (rc == 0)
            rc = project(v, &all, &pl, msg, sizeof(msg));
        if (rc == KEDGE_ESCHEMA) {
            kedge_set_why(why, why_len, SETUP_FAILED "%s", v->name, msg);
            goto out;
        }
        if (rc < 0)
            goto out;
    }
    rc = atomic_write(vfd, &pl);
    if (rc < 0 && rc != -ENOMEM)
        kedge_set_why(why, why_len, SETUP_FAILED "write %s files: %s", v->name, type,
                      kedge_go_strerror(rc, eb, sizeof(eb)));
out:
    payload_cleanup(&all);
    payload_cleanup(&pl);
    kedge_jdoc_free(doc);
    kedge_free(json);
    return rc;
}

int podvolumes_setup(const char *pods_dir, const struct pod_spec *p, podspec_lookup_fn lookup,
                     void *lookup_ctx, char *why, size_t why_len)
{
    int pods_fd = -1, uid_fd = -1, vols_fd = -1, rc;
    char eb[128];
    size_t i;

    kedge_set_why(why, why_len, "%s", "");
    if (!pods_dir || !p)
        return -EINVAL;
    if (!safe_name(p->uid)) {
        kedge_set_why(why, why_len, "pod uid \"%s\" cannot name a directory", p->uid ? p->uid : "");
        return KEDGE_ESCHEMA;
    }
    for (i = 0; i < p->n_volumes; i++)
        if (!safe_name(p->volumes[i].name)) {
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
        rc = uid_fd = open_subdir(pods_fd, p->uid, POD_DIR_MODE, NULL);
    if (rc >= 0)
        rc = vols_fd = open_subdir(uid_fd, "volumes", POD_DIR_MODE, NULL);
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
            break;
        }
        vfd = open_subdir(vols_fd, v->name, v->kind == VOL_EMPTYDIR ? EMPTYDIR_MODE : DIR_MODE,
                          &created);
        if (vfd < 0) {
            rc = vfd;
            kedge_set_why(why, why_len, SETUP_FAILED "mkdir %s/%s/volumes/%s: %s", v->name,
                          pods_dir, p->uid, v->name, kedge_go_strerror(rc, eb, sizeof(eb)));
            continue;
        }
        if (v->kind != VOL_EMPTYDIR)
            rc = object_volume(vfd, v, p->ns ? p->ns : "default", lookup, lookup_ctx, why, why_len);
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
