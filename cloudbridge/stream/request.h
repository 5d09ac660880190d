/* The request a *_CONNECT frame carries: cloudcore's JSON of pkg/stream's Edged*Connection,
 *   {"MessID":n,"url":{Go url.URL: Scheme,Opaque,User,Host,Path,RawPath,OmitHost,ForceQuery,
 *    RawQuery,Fragment,RawFragment},"header":{"Name":["v",...]},"method":"GET"}
 * ("method" only for exec/attach), i.e. the kube-apiserver's request to the kubelet with the
 * scheme and host cloudcore rewrote to edgecore's local kubelet. Plus the query string as Go's
 * url.ParseQuery reads it. Pure parsing, no I/O.
 */
#ifndef KEDGE_STREAM_REQUEST_H
#define KEDGE_STREAM_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kedge/buf.h"
#include "kedge/json.h"

struct stream_request {
    struct kedge_jdoc *doc; /* the strings below live in it */
    uint64_t mess_id;
    const char *method; /* "GET" when absent (a logs or metrics request) */
    const char *scheme, *host, *path, *raw_query; /* "" when absent; path is decoded (Go) */
    const struct kedge_jval *header;              /* object of arrays, or NULL */
};

/* Parse b[0..n): 0, KEDGE_EPARSE (not JSON), KEDGE_ESCHEMA (not the shape above: what Go's
 * json.Unmarshal into the struct would refuse, e.g. a string where the URL object goes), or
 * -ENOMEM. On failure nothing is held. */
int stream_request_parse(const char *b, size_t n, struct stream_request *r);
void stream_request_cleanup(struct stream_request *r);
/* The first value of header name (case-insensitive, as http.Header.Get), or NULL. */
const char *stream_request_header(const struct stream_request *r, const char *name);
/* All values of header name joined with ", " into out (RFC 9110 §5.3: kubectl's SPDY client
 * sends X-Stream-Protocol-Version once per version): 0, -ENOENT (absent; out empty), -ENOMEM. */
int stream_request_header_join(const struct stream_request *r, const char *name,
                               struct kedge_buf *out);

/* A query string, decoded as Go's url.ParseQuery: pairs split at '&', key and value at the
 * first '=', '+' is a space, %XX decoded; a pair with ';' or a bad escape is skipped (Go skips
 * it too and reports only the first error). Repeated keys keep their order
 * (command=sh&command=-c). Values may hold NUL bytes: len says. */
struct stream_query_kv {
    char *key, *value;
    size_t key_len, value_len;
};
struct stream_query {
    struct stream_query_kv *kv;
    size_t n, cap;
    bool had_error; /* Go's ParseQuery would have returned an error */
};

/* 0 or -ENOMEM (q then empty). */
int stream_query_parse(const char *raw, size_t len, struct stream_query *q);
void stream_query_cleanup(struct stream_query *q);
/* The first value of key (url.Values.Get), NULL when absent. */
const struct stream_query_kv *stream_query_get(const struct stream_query *q, const char *key);
/* How many values key has; the i-th of them (NULL past the end). */
size_t stream_query_count(const struct stream_query *q, const char *key);
const struct stream_query_kv *stream_query_nth(const struct stream_query *q, const char *key,
                                               size_t i);

#endif
