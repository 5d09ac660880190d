/* A growable byte buffer. The data pointer may move on append, so callers keep the struct,
 * never a pointer into it across appends. data is always NUL-terminated (not counted in len).
 */
#ifndef KEDGE_BUF_H
#define KEDGE_BUF_H

#include <stddef.h>

struct kedge_buf {
    char *data;
    size_t len, cap;
};

#define KEDGE_BUF_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Returns 0 or -ENOMEM; on failure the buffer is unchanged. */
int kedge_buf_append(struct kedge_buf *b, const void *p, size_t n);
int kedge_buf_puts(struct kedge_buf *b, const char *s);
int kedge_buf_putc(struct kedge_buf *b, char c);
int kedge_buf_printf(struct kedge_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int kedge_buf_reserve(struct kedge_buf *b, size_t extra);
void kedge_buf_reset(struct kedge_buf *b); /* len = 0, keeps the memory */
void kedge_buf_cleanup(struct kedge_buf *b);
/* Hands the data (from kedge_malloc) to the caller and leaves the buffer empty. Never NULL on
 * success: an empty buffer yields an allocated "". Returns NULL only on -ENOMEM. */
char *kedge_buf_take(struct kedge_buf *b, size_t *len);

#endif
