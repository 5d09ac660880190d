/* The pod's volume directories: emptyDir, hostPath, and the file volumes (configMap, secret,
 * projected, downwardAPI) written through kubelet's AtomicWriter (atomicwriter.c), with the
 * files computed by kubelet's MakePayload / CollectData (podpayload.c). Plain file I/O, no
 * event loop.
 */
#ifndef KEDGE_EDGED_PODVOLUMES_H
#define KEDGE_EDGED_PODVOLUMES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kedge/buf.h"
#include "podspec.h"

/* One file of a volume: path relative to the volume (clean, see vol_clean_path), content,
 * mode. */
struct vol_file {
    char *path;
    char *data;
    size_t len;
    int mode;
};

/* A volume's files (kubelet's map[string]FileProjection: one entry per path). */
struct vol_payload {
    struct vol_file *f;
    size_t n, cap;
};

void vol_payload_cleanup(struct vol_payload *pl);
/* Add a file, or replace the one at the same path (the last one wins, as in kubelet's map).
 * take: path and data (kedge_malloc, data NUL-terminated after len) are the payload's on
 * success. add: copied. 0 or -ENOMEM (then nothing changed). */
int vol_payload_take(struct vol_payload *pl, char *path, char *data, size_t len, int mode);
int vol_payload_add(struct vol_payload *pl, const char *path, const char *data, size_t len,
                    int mode);
/* AtomicWriter's validatePath, then path.Clean: relative, no "..", no leading "..x", at most
 * 4096 bytes with names of at most 255; empty and "." components dropped. *out (kedge_malloc).
 * Returns 0, KEDGE_ESCHEMA (msg: kubelet's "invalid path: ..."), -ENOMEM. */
int vol_clean_path(const char *path, char **out, char *msg, size_t msg_len);
/* AtomicWriter.Write of pl into the volume directory vfd. 0 or -errno. */
int vol_atomic_write(int vfd, const struct vol_payload *pl);
/* A name usable as one directory entry: not empty, no '/', not "." or "..", <= 255 bytes. */
bool vol_safe_name(const char *s);
/* Entry name of dfd as a directory (made with mode if missing; *created, when not NULL, says
 * whether it was made now), opened without following a symlink. The fd or -errno. */
int vol_open_subdir(int dfd, const char *name, mode_t mode, bool *created);
/* Remove entry name of pfd and its whole tree, never following a symlink nor entering another
 * filesystem (-EBUSY). 0 (also when it does not exist) or -errno. */
int vol_remove_tree(int pfd, const char *name);

/* The token of a serviceAccountToken projection src of pod p: 0 and *token (kedge_malloc), or
 * a negative code with why set (kubelet's "failed to fetch token: ..."); -EAGAIN while it is
 * being fetched (the caller is told when it arrives, see satoken.c). */
typedef int (*podvolumes_token_fn)(void *ctx, const struct pod_spec *p,
                                   const struct pod_projection *src, char **token, char *why,
                                   size_t why_len);

/* Where a volume's content comes from: the store (configMaps, secrets) and the token source.
 * token NULL: a token projection fails. */
struct podvolumes_src {
    podspec_lookup_fn lookup;
    void *lookup_ctx;
    podvolumes_token_fn token;
    void *token_ctx;
};

/* The files of volume v of pod p (configMap, secret, projected, downwardAPI), as kubelet's
 * plugins compute them (MakePayload, CollectData, collectData). Returns 0, or KEDGE_ESCHEMA /
 * -EAGAIN / another lookup error with msg set to the detail of the FailedMount text (what
 * follows `MountVolume.SetUp failed for volume "v" : `), or -ENOMEM. A projected volume's
 * failures are joined as kubelet's error aggregate ("[a, b]" for more than one). */
int podpayload_build(const struct podvolumes_src *src, const struct pod_spec *p,
                     const struct pod_volume *v, struct vol_payload *out, char *msg,
                     size_t msg_len);
/* kubelet's fieldpath.ExtractFieldPathAsString for a downwardAPI volume file: metadata.name,
 * .namespace, .uid, .labels, .annotations (FormatMap: sorted `k="v"` lines, the value quoted as
 * Go's %q), labels['k'] / annotations['k']. Appends to out. 0, KEDGE_ESCHEMA, -ENOMEM. */
int podpayload_field(const struct pod_spec *p, const char *field_path, struct kedge_buf *out);

/* Make {pods_dir}/{uid}/volumes/{name} for every volume of p and (re)write configMap, secret,
 * projected and downwardAPI files (atomicwriter.c: a reader sees the old or the new set).
 * hostPath DirectoryOrCreate / FileOrCreate are created; Directory / File must exist.
 * Returns 0, or KEDGE_ESCHEMA / -EAGAIN (a token being fetched) with why set to kubelet's
 * FailedMount text (`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`), or
 * -errno. */
int podvolumes_setup(const char *pods_dir, const struct pod_spec *p,
                     const struct podvolumes_src *src, char *why, size_t why_len);
/* Remove {pods_dir}/{uid} and everything below it (never following symlinks; hostPath
 * volumes are binds, not directories here). 0 or -errno. */
int podvolumes_remove(const char *pods_dir, const char *uid);
/* Whether a volume of p (or a projected volume's source) is a configMap / secret named name
 * (its files need rewriting when that object changes). */
bool podvolumes_uses(const struct pod_spec *p, const char *type, const char *name);
/* Whether p has a serviceAccountToken projection (its files need rewriting with each new
 * token). */
bool podvolumes_has_token(const struct pod_spec *p);

#endif
