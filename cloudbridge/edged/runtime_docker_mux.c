/* runtime_docker_mux.c: Docker's stream framing (runtime_docker_mux.h).
 *
 * Without a TTY the engine multiplexes stdout and stderr into one body of frames,
 * [stream (0 stdin, 1 stdout, 2 stderr), 0, 0, 0, length (big-endian u32)] + payload, on podman
 * and dockerd alike (docs/containers.md §5.1), for logs, exec and attach. A frame may be split
 * across reads and several may come in one, so the header is collected byte by byte and a
 * payload handed on as it arrives. Where the caller cannot know whether there is a TTY (logs),
 * the first 8 bytes decide (a header that does not parse means raw), which spares the inspect
 * of Config.Tty Docker's CLI makes. A header that stops parsing later turns the rest raw rather
 * than losing it.
 */
#include <string.h>

#include "runtime_docker_mux.h"

void docker_mux_init(struct docker_mux *m, enum docker_mux_mode mode)
{
    memset(m, 0, sizeof(*m));
    m->mode = mode;
    m->stream = RT_STDOUT;
}

static bool header_ok(const unsigned char *h)
{
    return h[0] <= 2 && !h[1] && !h[2] && !h[3];
}

/* The collected header is complete: the next frame, or raw from here on. */
static bool frame_start(struct docker_mux *m, docker_mux_emit_fn emit, void *ctx)
{
    const unsigned char *h = m->header;

    m->header_len = 0;
    if (!header_ok(h)) {
        m->mode = DOCKER_MUX_RAW; /* a TTY's output, or framing lost: nothing is dropped */
        return emit(ctx, RT_STDOUT, (const char *)h, DOCKER_MUX_HEADER);
    }
    m->mode = DOCKER_MUX_FRAMED;
    m->stream = h[0] == 2 ? RT_STDERR : RT_STDOUT;
    m->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    return true;
}

size_t docker_mux_feed(struct docker_mux *m, const char *b, size_t len, docker_mux_emit_fn emit,
                       void *ctx)
{
    size_t done = 0;

    while (done < len) {
        size_t n, rest = len - done;
        bool go = true;

        if (m->mode == DOCKER_MUX_RAW) {
            (void)emit(ctx, RT_STDOUT, b + done, rest);
            return len;
        }
        if (m->left) {
            n = rest < m->left ? rest : m->left;
            m->left -= (uint32_t)n;
            go = emit(ctx, m->stream, b + done, n);
        } else {
            n = DOCKER_MUX_HEADER - m->header_len;
            n = rest < n ? rest : n;
            memcpy(m->header + m->header_len, b + done, n);
            m->header_len += n;
            if (m->header_len == DOCKER_MUX_HEADER)
                go = frame_start(m, emit, ctx);
        }
        done += n;
        if (!go)
            break;
    }
    return done;
}

void docker_mux_flush(struct docker_mux *m, docker_mux_emit_fn emit, void *ctx)
{
    if (m->mode == DOCKER_MUX_UNKNOWN && m->header_len) /* raw output shorter than a header */
        (void)emit(ctx, RT_STDOUT, (const char *)m->header, m->header_len);
    m->header_len = 0;
}

int docker_paced_feed(struct docker_paced *p, const char *b, size_t n, docker_mux_emit_fn emit,
                      void *ctx)
{
    size_t took = p->paused || p->held.len ? 0 : docker_mux_feed(&p->mux, b, n, emit, ctx);

    if (took < n && (p->paused || p->held.len))
        return kedge_buf_append(&p->held, b + took, n - took);
    return 0;
}

int docker_paced_resume(struct docker_paced *p, docker_mux_emit_fn emit, void *ctx)
{
    struct kedge_buf held = p->held;
    int rc;

    p->paused = false;
    p->held = (struct kedge_buf)KEDGE_BUF_INIT;
    rc = docker_paced_feed(p, held.data, held.len, emit, ctx);
    kedge_buf_cleanup(&held);
    return rc;
}

bool docker_paced_waiting(const struct docker_paced *p)
{
    return p->paused || p->held.len;
}

void docker_paced_cleanup(struct docker_paced *p)
{
    kedge_buf_cleanup(&p->held);
}
