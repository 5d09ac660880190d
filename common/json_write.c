/* The Go-compatible JSON writer (include/kedge/json.h): keys and values in the order given,
 * strings escaped as Go's encoding/json escapes them; the parser is json.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_int.h"
#include "kedge/json.h"

void kedge_jw_init(struct kedge_jw *w, struct kedge_buf *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

static void put(struct kedge_jw *w, const char *s, size_t n)
{
    if (!w->err && kedge_buf_append(w->out, s, n) < 0)
        w->err = -ENOMEM;
}

/* Called before every value and every key: the comma between siblings. */
static void before_item(struct kedge_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        put(w, ",", 1);
    w->need_comma[w->depth] = true;
}

static void open_nested(struct kedge_jw *w, char c)
{
    before_item(w);
    put(w, &c, 1);
    if (w->depth >= KEDGE_JSON_MAX_DEPTH) {
        if (!w->err)
            w->err = -EINVAL;
        return;
    }
    w->need_comma[++w->depth] = false;
}

static void close_nested(struct kedge_jw *w, char c)
{
    put(w, &c, 1);
    if (w->depth > 0)
        w->depth--;
    else if (!w->err)
        w->err = -EINVAL;
}

void kedge_jw_obj_open(struct kedge_jw *w)
{
    open_nested(w, '{');
}

void kedge_jw_obj_close(struct kedge_jw *w)
{
    close_nested(w, '}');
}

void kedge_jw_arr_open(struct kedge_jw *w)
{
    open_nested(w, '[');
}

void kedge_jw_arr_close(struct kedge_jw *w)
{
    close_nested(w, ']');
}

size_t kedge_utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
        *cp = ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef && n >= 3 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        unsigned v = ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
            return 0;
        *cp = v;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4 && n >= 4 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
        (s[3] & 0xc0) == 0x80) {
        unsigned v =
            ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
        if (v < 0x10000 || v > 0x10ffff)
            return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

int kedge_json_escape(struct kedge_buf *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start = 0;
    int rc = kedge_buf_putc(b, '"');

    while (rc == 0 && i < len) {
        unsigned char c = s[i];
        char esc[8];
        size_t esc_len = 0, adv = 1;
        unsigned cp;

        if (c >= 0x80) {
            adv = kedge_utf8_seq(s + i, len - i, &cp);
            if (adv == 0) {
                memcpy(esc, "\\ufffd", 6);
                esc_len = 6;
                adv = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                esc_len = 6;
            }
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc_len = 2;
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            esc_len = 2;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        if (esc_len) {
            rc = kedge_buf_append(b, str + start, i - start);
            if (rc == 0)
                rc = kedge_buf_append(b, esc, esc_len);
            start = i + adv;
        }
        i += adv;
    }
    if (rc == 0)
        rc = kedge_buf_append(b, str + start, len - start);
    if (rc == 0)
        rc = kedge_buf_putc(b, '"');
    return rc;
}

void kedge_jw_key_n(struct kedge_jw *w, const char *key, size_t len)
{
    before_item(w);
    if (!w->err && kedge_json_escape(w->out, key, len) < 0)
        w->err = -ENOMEM;
    put(w, ":", 1);
    w->after_key = true;
}

void kedge_jw_key(struct kedge_jw *w, const char *key)
{
    kedge_jw_key_n(w, key, strlen(key));
}

void kedge_jw_strn(struct kedge_jw *w, const char *s, size_t len)
{
    before_item(w);
    if (!w->err && kedge_json_escape(w->out, s, len) < 0)
        w->err = -ENOMEM;
}

void kedge_jw_str(struct kedge_jw *w, const char *s)
{
    kedge_jw_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void kedge_jw_int(struct kedge_jw *w, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

    before_item(w);
    put(w, tmp, (size_t)n);
}

void kedge_jw_bool(struct kedge_jw *w, bool v)
{
    before_item(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void kedge_jw_null(struct kedge_jw *w)
{
    before_item(w);
    put(w, "null", 4);
}

void kedge_jw_raw(struct kedge_jw *w, const char *json, size_t len)
{
    before_item(w);
    put(w, json, len);
}

void kedge_jw_kstr(struct kedge_jw *w, const char *key, const char *s)
{
    kedge_jw_key(w, key);
    kedge_jw_str(w, s);
}

void kedge_jw_kint(struct kedge_jw *w, const char *key, int64_t v)
{
    kedge_jw_key(w, key);
    kedge_jw_int(w, v);
}

int kedge_jw_finish(struct kedge_jw *w)
{
    if (!w->err && (w->depth != 0 || w->after_key))
        w->err = -EINVAL;
    return w->err;
}
