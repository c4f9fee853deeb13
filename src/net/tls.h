/* tls.h — native TLS (https:// and wss://) with OpenSSL, on when app.tlsCert
 * and app.tlsKey are set; then both listeners speak TLS only.
 *
 * One SSL_CTX, loaded at start, is shared by every worker. A TLS connection
 * is a larger struct (private to tls.c) whose first member is the plain
 * conn, marked CONN_F_TLS; plain connections do not grow. OpenSSL never
 * touches the socket: ciphertext read by conn.c is handed to tls_on_read,
 * decrypted into the worker's tls_buf and fed back through conn_feed;
 * plaintext sent through conn.c is encrypted by tls_send and the ciphertext
 * goes out through conn_send_wire (direct write first, queue the rest). */
#ifndef IMGATE_TLS_H
#define IMGATE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"

/* Loads the certificate chain and key (PEM) into the shared context.
 * Returns 0, or -1 with a message naming the file in err. */
int tls_init(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* Frees the shared context (after the workers stopped). */
void tls_shutdown(void);
/* Is TLS configured (tls_init succeeded)? */
int tls_enabled(void);

/* A new zeroed TLS connection, flagged CONN_F_TLS, with its SSL object in
 * server mode; NULL when out of memory. Freed with free() like any conn,
 * after tls_conn_end. */
conn *tls_conn_new(void);
/* Frees c's SSL object (idempotent); no more TLS I/O on c afterwards. */
void tls_conn_end(conn *c);

/* Ciphertext p[0..n) arrived on c: runs the handshake, answers it, and feeds
 * the plaintext to conn_feed. Closes c on a TLS error or close_notify. */
void tls_on_read(conn *c, const uint8_t *p, size_t n);
/* Encrypts p[0..n) and sends the records. Returns 0, or -1 when c is
 * closed (or was closed here: handshake unfinished, TLS error). */
int tls_send(conn *c, const void *p, size_t n);
/* Sends close_notify (clean close); no-op before the handshake is done. */
void tls_close_notify(conn *c);

#endif
