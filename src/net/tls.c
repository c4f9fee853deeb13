/* tls.c — native TLS with OpenSSL (see tls.h): the shared SSL_CTX, the TLS
 * connection struct, and the glue between OpenSSL and conn.c.
 *
 * OpenSSL does no socket I/O. Each SSL object has one BIO of our own
 * (tls_bio_*) that reads from and writes to plain memory described by a
 * tls_io on the caller's stack, pointed to by the BIO only for the duration
 * of one SSL call:
 *   - input: the ciphertext conn.c read into the worker's shared buffer,
 *     borrowed (no copy into a per-connection buffer);
 *   - output: the ciphertext an SSL call produces (records, alerts, session
 *     tickets), collected on the stack (on the heap once it outgrows it) and
 *     handed to conn_send_wire right after the call.
 * So an idle TLS connection holds no I/O buffer of its own: the BIO keeps
 * nothing between calls, and SSL_MODE_RELEASE_BUFFERS lets OpenSSL free its
 * record buffers while they are empty. */
#include "net/tls.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/log.h"
#include "net/worker.h"

#define TLS_IO_STACK 8192             /* ciphertext collected without malloc */
#define TLS_IO_HEAP_MIN (32 * 1024)   /* first heap size once that is exceeded */

typedef struct tls_conn {
    conn base;                        /* first member: a tls_conn is a conn */
    SSL *ssl;                         /* owns its BIO; NULL once ended */
} tls_conn;

/* The memory of one SSL call: borrowed input, collected output. */
typedef struct tls_io {
    const uint8_t *in;                /* ciphertext not yet read by OpenSSL */
    size_t in_len;
    uint8_t *out;                     /* stack, or heap (owned) once larger */
    size_t out_len, out_cap;
    int failed;                       /* an output allocation failed */
    uint8_t stack[TLS_IO_STACK];
} tls_io;

_Static_assert(offsetof(tls_conn, base) == 0, "a tls_conn must begin with its conn");

enum tls_read_status { TLS_RD_MORE, TLS_RD_DONE, TLS_RD_EOF, TLS_RD_FAIL };

static SSL_CTX *tls_ctx;              /* shared by all workers; read-only after start */
static BIO_METHOD *tls_bio_method;

static tls_conn *tls_of(conn *c) { return (tls_conn *)c; }

int tls_enabled(void) { return tls_ctx != NULL; }

/* ---------- per-call I/O memory ---------- */

static void tls_io_init(tls_io *io, const uint8_t *in, size_t in_len)
{
    io->in = in;
    io->in_len = in_len;
    io->out = io->stack;
    io->out_len = 0;
    io->out_cap = sizeof(io->stack);
    io->failed = 0;
}

/* Drops the collected output and its heap part, if any. */
static void tls_io_clear_out(tls_io *io)
{
    if (io->out != io->stack)
        free(io->out);
    io->out = io->stack;
    io->out_len = 0;
    io->out_cap = sizeof(io->stack);
}

static int tls_io_reserve(tls_io *io, size_t n)
{
    if (io->out_len + n <= io->out_cap)
        return 0;
    size_t cap = io->out_cap * 2;
    if (cap < io->out_len + n)
        cap = io->out_len + n;
    if (cap < TLS_IO_HEAP_MIN)
        cap = TLS_IO_HEAP_MIN;
    uint8_t *p = io->out == io->stack ? malloc(cap) : realloc(io->out, cap);
    if (!p) {
        io->failed = 1;
        return -1;
    }
    if (io->out == io->stack)
        memcpy(p, io->stack, io->out_len);
    io->out = p;
    io->out_cap = cap;
    return 0;
}

/* ---------- the BIO: memory described by the current tls_io ---------- */

static int tls_bio_write(BIO *b, const char *p, int n)
{
    tls_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!io || n < 0 || tls_io_reserve(io, (size_t)n) != 0)
        return -1;                    /* no retry flag: a hard error */
    memcpy(io->out + io->out_len, p, (size_t)n);
    io->out_len += (size_t)n;
    return n;
}

static int tls_bio_read(BIO *b, char *p, int n)
{
    tls_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!io || io->in_len == 0) {
        BIO_set_retry_read(b);        /* "come back when more arrives" */
        return -1;
    }
    size_t k = n < 0 ? 0 : (size_t)n;
    if (k > io->in_len)
        k = io->in_len;
    memcpy(p, io->in, k);
    io->in += k;
    io->in_len -= k;
    return (int)k;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b; (void)num; (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;   /* output is flushed after each call */
}

static int tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int tls_bio_method_new(void)
{
    tls_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "imgate-mem");
    if (!tls_bio_method || !BIO_meth_set_write(tls_bio_method, tls_bio_write) ||
        !BIO_meth_set_read(tls_bio_method, tls_bio_read) ||
        !BIO_meth_set_ctrl(tls_bio_method, tls_bio_ctrl) ||
        !BIO_meth_set_create(tls_bio_method, tls_bio_create))
        return -1;
    return 0;
}

/* Points c's BIO at io (or at nothing) around one SSL call. */
static void tls_bind(tls_conn *t, tls_io *io)
{
    BIO_set_data(SSL_get_rbio(t->ssl), io);
    ERR_clear_error();                /* SSL_get_error needs an empty queue */
}

static void tls_unbind(tls_conn *t) { BIO_set_data(SSL_get_rbio(t->ssl), NULL); }

/* ---------- the shared context ---------- */

static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    (void)ssl; (void)arg;
    if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;  /* e.g. h2 only: go on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* err = "<what> '<path>': <reason>"; the reason from errno or OpenSSL. */
static int tls_file_error(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "cannot load the %s '%s': %s", what, path,
             why ? why : "invalid file");
    ERR_clear_error();
    return -1;
}

static int tls_readable(char *err, size_t errlen, const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open the %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static int tls_ctx_configure(SSL_CTX *ctx)
{
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return -1;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Free the record buffers while empty: idle connections stay small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No server-side session cache (bounded memory); tickets still resume. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
    return 0;
}

static int tls_ctx_load(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    if (tls_readable(err, errlen, "certificate chain (app.tlsCert)", cert) != 0 ||
        tls_readable(err, errlen, "private key (app.tlsKey)", key) != 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return tls_file_error(err, errlen, "certificate chain (app.tlsCert)", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
        return tls_file_error(err, errlen, "private key (app.tlsKey)", key);
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "the private key '%s' does not match the certificate '%s'", key, cert);
        return -1;
    }
    return 0;
}

int tls_init(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || tls_ctx_configure(ctx) != 0 || tls_bio_method_new() != 0) {
        snprintf(err, errlen, "cannot set up OpenSSL");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        tls_shutdown();
        return -1;
    }
    if (tls_ctx_load(ctx, cert_file, key_file, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        tls_shutdown();
        return -1;
    }
    tls_ctx = ctx;
    return 0;
}

void tls_shutdown(void)
{
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
    BIO_meth_free(tls_bio_method);
    tls_bio_method = NULL;
}

/* ---------- connections ---------- */

conn *tls_conn_new(void)
{
    tls_conn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(tls_ctx);
    BIO *b = t->ssl ? BIO_new(tls_bio_method) : NULL;
    if (!b) {
        ERR_clear_error();
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    SSL_set_bio(t->ssl, b, b);        /* one BIO both ways; the SSL owns it */
    SSL_set_accept_state(t->ssl);
    t->base.flags = CONN_F_TLS;
    return &t->base;
}

void tls_conn_end(conn *c)
{
    tls_conn *t = tls_of(c);
    SSL_free(t->ssl);                 /* frees the BIO too */
    t->ssl = NULL;
}

/* Logs (debug) why c fails, with OpenSSL's reason, and clears the queue. */
static void tls_log_failure(conn *c, const char *during)
{
    if (log_enabled(LOG_DEBUG)) {
        unsigned long e = ERR_peek_last_error();
        const char *why = e ? ERR_reason_error_string(e) : NULL;
        char peer[64];
        conn_peer(c, peer, sizeof(peer));
        log_debug("tls: %s: %s failed: %s; closing", peer, during, why ? why : "connection error");
    }
    ERR_clear_error();
}

/* Sends what the last calls produced (handshake records, alerts, data);
 * frees io's heap part. Returns 0, or -1 if c is closed. */
static int tls_flush(conn *c, tls_io *io)
{
    int r = c->state == CONN_CLOSED ? -1 : 0;
    if (r == 0 && io->out_len > 0)
        r = conn_send_wire(c, io->out, io->out_len);
    tls_io_clear_out(io);
    return r;
}

static enum tls_read_status tls_read_error(tls_conn *t, int ret)
{
    switch (SSL_get_error(t->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return TLS_RD_DONE;           /* every input byte is consumed */
    case SSL_ERROR_ZERO_RETURN:
        return TLS_RD_EOF;            /* close_notify */
    default:
        tls_log_failure(&t->base, SSL_is_init_finished(t->ssl) ? "read" : "handshake");
        return TLS_RD_FAIL;
    }
}

/* Decrypts from io into buf until buf is full (TLS_RD_MORE) or the input is
 * used up, the peer closed or an error occurred; *got = plaintext bytes. */
static enum tls_read_status tls_read_some(tls_conn *t, tls_io *io, uint8_t *buf, size_t cap,
                                          size_t *got)
{
    enum tls_read_status st = TLS_RD_MORE;
    *got = 0;
    tls_bind(t, io);
    while (*got < cap) {
        size_t k = 0;
        int ret = SSL_read_ex(t->ssl, buf + *got, cap - *got, &k);
        if (ret <= 0) {
            st = tls_read_error(t, ret);
            break;
        }
        *got += k;
    }
    tls_unbind(t);
    return st;
}

void tls_on_read(conn *c, const uint8_t *p, size_t n)
{
    tls_conn *t = tls_of(c);
    uint8_t *plain = conn_worker(c)->tls_buf;
    enum tls_read_status st = TLS_RD_MORE;
    tls_io io;
    tls_io_init(&io, p, n);
    while (st == TLS_RD_MORE && t->ssl && !(c->flags & CONN_F_DISCARD)) {
        size_t got = 0;
        st = tls_read_some(t, &io, plain, WORKER_READ_BUF, &got);
        if (tls_flush(c, &io) != 0)
            return;                   /* closed while sending */
        if (got > 0)
            conn_feed(c, plain, got); /* may send, upgrade or close c */
    }
    if ((st == TLS_RD_EOF || st == TLS_RD_FAIL) && c->state != CONN_CLOSED)
        conn_close(c);
}

int tls_send(conn *c, const void *p, size_t n)
{
    tls_conn *t = tls_of(c);
    if (!t->ssl || c->state == CONN_CLOSED || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return -1;
    if (!SSL_is_init_finished(t->ssl)) {
        log_debug("tls: an answer before the handshake finished; closing");
        conn_close(c);
        return -1;
    }
    if (n == 0)
        return 0;
    tls_io io;
    tls_io_init(&io, NULL, 0);
    size_t wrote = 0;
    tls_bind(t, &io);
    int ok = SSL_write_ex(t->ssl, p, n, &wrote) == 1 && wrote == n && !io.failed;
    tls_unbind(t);
    if (!ok) {
        tls_io_clear_out(&io);
        tls_log_failure(c, "write");
        conn_close(c);
        return -1;
    }
    return tls_flush(c, &io);
}

void tls_close_notify(conn *c)
{
    tls_conn *t = tls_of(c);
    if (!t->ssl || c->state == CONN_CLOSED || !SSL_is_init_finished(t->ssl) ||
        (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    tls_io io;
    tls_io_init(&io, NULL, 0);
    tls_bind(t, &io);
    int r = SSL_shutdown(t->ssl);     /* 0: sent, the peer's is not awaited */
    tls_unbind(t);
    if (r < 0 || io.failed) {
        tls_io_clear_out(&io);
        tls_log_failure(c, "close_notify");
        return;                       /* the FIN that follows ends it anyway */
    }
    (void)tls_flush(c, &io);          /* -1 only if c closed meanwhile */
}
