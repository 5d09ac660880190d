/* atomicwriter.c: a volume's files as kubelet's AtomicWriter writes them
 * (pkg/volume/util/atomic_writer.go), and removal of a tree without following symlinks.
 *
 * A payload (path -> content, mode) goes into a fresh `..YYYY_MM_DD_HH_MM_SS.nnnnnnnnn`
 * directory, the `..data` symlink is switched to it with one rename, and every user-visible
 * top-level name is a symlink through `..data`. A container therefore sees the old set or the
 * new set, never a mix; an unchanged set is not rewritten. podvolumes.c (configMap, secret,
 * projected, downwardAPI volumes) is the one user; podpayload.c builds the payloads.
 * Removal never follows a symlink and never crosses into another filesystem, so nothing a
 * container left in a volume can make it delete outside the pod's directory.
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

#include "podvolumes.h"
#include "kedge/alloc.h"
#include "kedge/err.h"
#include "kedge/util.h"

#define DIR_MODE 0755
#define DATA_LINK "..data"
#define DATA_TMP "..data_tmp"
#define MAX_PATH_LEN 4096 /* AtomicWriter's maxPathLength */
#define MAX_NAME_LEN 255  /* and maxFileNameLength */
#define RM_MAX_DEPTH 64   /* deeper trees are moved up before removal (open fds per level) */
#define WALK_MAX_DEPTH 64 /* our own projection trees are never this deep */

/* A name used as one directory entry: not empty, no '/', not "." or "..". */
bool vol_safe_name(const char *s)
{
    return s && *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..") &&
           strlen(s) <= MAX_NAME_LEN;
}

/* A directory entry of dfd that is a directory (made with mode if missing), opened without
 * following a symlink. *created tells whether it was made now. Returns the fd or -errno. */
int vol_open_subdir(int dfd, const char *name, mode_t mode, bool *created)
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

/* A directory stream over a duplicate of dfd, which stays open and the caller's; rewound,
 * because the duplicate shares the offset of an earlier pass. NULL with errno set. */
static DIR *dir_stream(int dfd)
{
    int fd = dup(dfd), err;
    DIR *d;

    if (fd < 0)
        return NULL;
    d = fdopendir(fd);
    if (!d) {
        err = errno;
        close(fd);
        errno = err;
        return NULL;
    }
    rewinddir(d);
    return d;
}

/* Remove everything inside the directory dfd (which stays open and the caller's). */
static int empty_dir(int dfd, dev_t dev, int top_fd, int depth, unsigned long *moved)
{
    struct dirent *de;
    DIR *d = dir_stream(dfd);
    int rc = 0;

    if (!d)
        return -errno;
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
int vol_remove_tree(int pfd, const char *name)
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

/* ---- payloads ------------------------------------------------------------------------------ */

void vol_payload_cleanup(struct vol_payload *pl)
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
int vol_payload_take(struct vol_payload *pl, char *path, char *data, size_t len, int mode)
{
    size_t i;

    for (i = 0; i < pl->n; i++)
        if (!strcmp(pl->f[i].path, path)) {
            kedge_free(pl->f[i].path);
            kedge_free(pl->f[i].data);
            break;
        }
    if (i == pl->n) {
        if (kedge_array_grow(&pl->f, &pl->cap, pl->n, sizeof(*pl->f), 8) < 0)
            return -ENOMEM;
        pl->n++;
    }
    pl->f[i].path = path;
    pl->f[i].data = data;
    pl->f[i].len = len;
    pl->f[i].mode = mode;
    return 0;
}

int vol_payload_add(struct vol_payload *pl, const char *path, const char *data, size_t len,
                    int mode)
{
    char *p = kedge_strdup(path), *d = kedge_malloc(len + 1);

    if (!p || !d) {
        kedge_free(p);
        kedge_free(d);
        return -ENOMEM;
    }
    memcpy(d, data, len);
    d[len] = '\0';
    if (vol_payload_take(pl, p, d, len, mode) < 0) {
        kedge_free(p);
        kedge_free(d);
        return -ENOMEM;
    }
    return 0;
}

/* AtomicWriter's validatePath, then path.Clean: relative, no "..", no leading "..x", at most
 * 4096 bytes with names of at most 255; empty and "." components are dropped. The clean path
 * goes to *out (kedge_malloc). 0, KEDGE_ESCHEMA (msg set) or -ENOMEM. */
int vol_clean_path(const char *path, char **out, char *msg, size_t msg_len)
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

/* ---- the atomic writer --------------------------------------------------------------------- */

/* A timestamped data directory's name: "..2024_05_01_10_00_00.123456789". */
static bool is_ts_name(const char *s)
{
    return s[0] == '.' && s[1] == '.' && s[2] >= '0' && s[2] <= '9' && !strchr(s, '/');
}

/* The directory that holds relative path inside dfd, walked to one component at a time
 * without following a symlink (create: making the missing ones). Returns its fd (dfd itself
 * when path has no '/'; any other the caller closes) or -errno; *leaf is path's last
 * component, inside *copy (the caller frees it). */
static int open_parent(int dfd, const char *path, bool create, char **copy, char **leaf)
{
    char *s, *slash;
    int fd = dfd, next;

    *copy = kedge_strdup(path);
    if (!*copy)
        return -ENOMEM;
    for (s = *copy; (slash = strchr(s, '/')); s = slash + 1) {
        *slash = '\0';
        if (create)
            next = vol_open_subdir(fd, s, DIR_MODE, NULL);
        else if ((next = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            next = -errno;
        if (fd != dfd)
            close(fd);
        if (next < 0) {
            kedge_free(*copy);
            *copy = NULL;
            return next;
        }
        fd = next;
    }
    *leaf = s;
    return fd;
}

/* Open the file at relative path inside dfd for reading, never following a symlink on the
 * way. Returns the fd or -errno. */
static int open_rel(int dfd, const char *path)
{
    char *copy, *leaf;
    int fd = open_parent(dfd, path, false, &copy, &leaf), rc;

    if (fd < 0)
        return fd;
    rc = openat(fd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (rc < 0)
        rc = -errno;
    if (fd != dfd)
        close(fd);
    kedge_free(copy);
    return rc;
}

/* Whether the file holds exactly len bytes of data with the given mode. */
static bool file_matches(int dfd, const struct vol_file *f)
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

    if (depth > WALK_MAX_DEPTH || !(d = dir_stream(dfd)))
        return -1;
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
static bool payload_unchanged(int old_fd, const struct vol_payload *pl)
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
static int write_file(int tsfd, const struct vol_file *f)
{
    char *copy, *leaf;
    int dfd = open_parent(tsfd, f->path, true, &copy, &leaf), fd, rc;

    if (dfd < 0)
        return dfd;
    fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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

static bool payload_has_top(const struct vol_payload *pl, const char *name)
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
static int make_visible(int vfd, const struct vol_payload *pl)
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
static int drop_stale(int vfd, const struct vol_payload *pl, const char *keep)
{
    struct dirent *de;
    DIR *d = dir_stream(vfd);
    int rc = 0;

    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        struct stat st;
        int r = 0;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, DATA_LINK) || !strcmp(de->d_name, keep))
            continue;
        if (fstatat(vfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (is_ts_name(de->d_name) && S_ISDIR(st.st_mode))
            r = vol_remove_tree(vfd, de->d_name);
        else if (S_ISLNK(st.st_mode) && !payload_has_top(pl, de->d_name))
            r = unlinkat(vfd, de->d_name, 0) < 0 && errno != ENOENT ? -errno : 0;
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

/* AtomicWriter.Write for the volume directory vfd. */
int vol_atomic_write(int vfd, const struct vol_payload *pl)
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
        (void)vol_remove_tree(vfd, ts);
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
