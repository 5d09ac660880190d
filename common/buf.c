/* The growable buffer behind include/kedge/buf.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kedge/alloc.h"
#include "kedge/buf.h"

int kedge_buf_reserve(struct kedge_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > (size_t)-1 / 2 - b->len)
        return -ENOMEM;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    p = kedge_realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int kedge_buf_append(struct kedge_buf *b, const void *p, size_t n)
{
    if (kedge_buf_reserve(b, n) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kedge_buf_puts(struct kedge_buf *b, const char *s)
{
    return kedge_buf_append(b, s, strlen(s));
}

int kedge_buf_putc(struct kedge_buf *b, char c)
{
    return kedge_buf_append(b, &c, 1);
}

int kedge_buf_printf(struct kedge_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if (kedge_buf_reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void kedge_buf_reset(struct kedge_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void kedge_buf_cleanup(struct kedge_buf *b)
{
    kedge_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *kedge_buf_take(struct kedge_buf *b, size_t *len)
{
    char *d;

    if (!b->data) {
        if (kedge_buf_reserve(b, 0) < 0)
            return NULL;
        b->data[0] = '\0'; /* the promised "": reserve allocates, it does not write */
    }
    d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
