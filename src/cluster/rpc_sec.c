/* rpc_sec.c — securing the node-to-node port (SPEC §7.3, see rpc.h): the
 * shared token of cluster.rpcToken, checked on every incoming call and sent
 * on every outgoing one, and the mutual-TLS credentials of cluster.rpcTls*
 * for the server and the client channels. Loaded once on the main thread
 * before rpc_start, read only afterwards (by the queue thread and the
 * callers of the client) until rpc_security_free, after rpc_stop. */
#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/rpc_int.h"
#include "core/config.h"
#include "core/log.h"
#include "im/auth.h"

#define RPC_SEC_PEM_MAX (1 << 20)     /* largest PEM file read */
#define RPC_SEC_VALUE_MAX 1024        /* longest authorization value looked at */
#define RPC_SEC_WARN_MS 10000         /* at most one "refused" warning per period */

static struct {
    char token[CONFIG_STR];           /* "" = no token */
    char bearer[CONFIG_STR + 8];      /* "Bearer <token>", sent on every call */
    grpc_metadata md;                 /* authorization: bearer (static slices) */
    char *cert, *key, *ca;            /* PEM texts; NULL = plaintext */
    atomic_long refused;
    uint64_t warned_at;               /* queue thread only */
} rpc_sec;

/* ---------- reading and checking the PEM files ---------- */

/* The whole file at path (NUL-terminated, at most RPC_SEC_PEM_MAX bytes)
 * into *out; -1 with "key 'K': cannot read 'PATH': reason" in err. */
static int rpc_sec_read(const char *key, const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "key '%s': cannot read '%s': %s", key, path, strerror(errno));
        return -1;
    }
    char *buf = malloc(RPC_SEC_PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, RPC_SEC_PEM_MAX + 1, f) : 0;
    const char *why = !buf ? "out of memory" : ferror(f) ? strerror(errno)
        : n == 0 ? "the file is empty" : n > RPC_SEC_PEM_MAX ? "larger than 1 MiB" : NULL;
    fclose(f);
    if (why) {
        snprintf(err, errlen, "key '%s': cannot read '%s': %s", key, path, why);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* Never asks for a pass phrase (an encrypted key does not load). */
static int rpc_sec_no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Every certificate of a PEM text, in order; NULL when there is none. */
static STACK_OF(X509) *rpc_sec_certs(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509) *sk = b ? sk_X509_new_null() : NULL;
    X509 *x;
    while (sk && (x = PEM_read_bio_X509(b, NULL, rpc_sec_no_password, NULL)))
        if (!sk_X509_push(sk, x))
            X509_free(x);
    ERR_clear_error();                           /* the end of the text */
    BIO_free(b);
    if (sk && sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        sk = NULL;
    }
    return sk;
}

static EVP_PKEY *rpc_sec_pkey(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, rpc_sec_no_password, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return k;
}

/* A warning (not an error: the peers decide) when the node's certificate
 * does not verify against the CA: no peer will then accept it. */
static void rpc_sec_verify(STACK_OF(X509) *chain, STACK_OF(X509) *cas, const config *c)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = store && ctx;
    for (int i = 0; ok && i < sk_X509_num(cas); i++)
        ok = X509_STORE_add_cert(store, sk_X509_value(cas, i)) == 1;
    if (ok && X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), chain) == 1 &&
        X509_verify_cert(ctx) != 1)
        log_warn("rpc: the certificate '%s' (cluster.rpcTlsCert) does not verify against the CA "
                 "'%s' (cluster.rpcTlsCA): %s; other nodes will refuse this one", c->rpcTlsCert,
                 c->rpcTlsCA, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* The three PEM texts hold what they must, and the key is the certificate's. */
static int rpc_sec_check_pem(const config *c, char *err, size_t errlen)
{
    STACK_OF(X509) *chain = rpc_sec_certs(rpc_sec.cert);
    STACK_OF(X509) *cas = rpc_sec_certs(rpc_sec.ca);
    EVP_PKEY *pkey = rpc_sec_pkey(rpc_sec.key);
    int rc = -1;
    if (!chain)
        snprintf(err, errlen, "key 'cluster.rpcTlsCert': no PEM certificate in '%s'", c->rpcTlsCert);
    else if (!pkey)
        snprintf(err, errlen, "key 'cluster.rpcTlsKey': no (unencrypted) PEM private key in '%s'",
                 c->rpcTlsKey);
    else if (!cas)
        snprintf(err, errlen, "key 'cluster.rpcTlsCA': no PEM certificate in '%s'", c->rpcTlsCA);
    else if (X509_check_private_key(sk_X509_value(chain, 0), pkey) != 1)
        snprintf(err, errlen, "key 'cluster.rpcTlsKey': the private key '%s' does not match the "
                 "certificate '%s'", c->rpcTlsKey, c->rpcTlsCert);
    else
        rc = 0;
    if (rc == 0)
        rpc_sec_verify(chain, cas, c);
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(cas, X509_free);
    return rc;
}

static int rpc_sec_load_tls(const config *c, char *err, size_t errlen)
{
    if (!c->rpcTlsCert[0])
        return 0;
    if (rpc_sec_read("cluster.rpcTlsCert", c->rpcTlsCert, &rpc_sec.cert, err, errlen) != 0 ||
        rpc_sec_read("cluster.rpcTlsKey", c->rpcTlsKey, &rpc_sec.key, err, errlen) != 0 ||
        rpc_sec_read("cluster.rpcTlsCA", c->rpcTlsCA, &rpc_sec.ca, err, errlen) != 0)
        return -1;
    return rpc_sec_check_pem(c, err, errlen);
}

/* ---------- public ---------- */

int rpc_security_load(const config *c, char *err, size_t errlen)
{
    rpc_security_free();
    if (rpc_sec_load_tls(c, err, errlen) != 0) {
        rpc_security_free();
        return -1;
    }
    if (c->rpcToken[0]) {
        snprintf(rpc_sec.token, sizeof(rpc_sec.token), "%s", c->rpcToken);
        int n = snprintf(rpc_sec.bearer, sizeof(rpc_sec.bearer), "Bearer %s", c->rpcToken);
        rpc_sec.md.key = grpc_slice_from_static_string("authorization");
        rpc_sec.md.value = grpc_slice_from_static_buffer(rpc_sec.bearer, (size_t)n);
    }
    return 0;
}

void rpc_security_free(void)
{
    free(rpc_sec.cert);
    free(rpc_sec.key);
    free(rpc_sec.ca);
    rpc_sec.cert = rpc_sec.key = rpc_sec.ca = NULL;
    memset(rpc_sec.token, 0, sizeof(rpc_sec.token));
    memset(rpc_sec.bearer, 0, sizeof(rpc_sec.bearer));
}

const char *rpc_auth_mode(void)
{
    if (rpc_sec.token[0])
        return rpc_sec.cert ? "token+mtls" : "token";
    return rpc_sec.cert ? "mtls" : "none";
}

long rpc_refused_calls(void)
{
    return atomic_load_explicit(&rpc_sec.refused, memory_order_relaxed);
}

/* ---------- for the server and the client ---------- */

grpc_server_credentials *rpc_sec_server_creds(void)
{
    if (!rpc_sec.cert)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = { rpc_sec.key, rpc_sec.cert };
    return grpc_ssl_server_credentials_create_ex(
        rpc_sec.ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
}

grpc_channel_credentials *rpc_sec_channel_creds(void)
{
    if (!rpc_sec.cert)
        return grpc_insecure_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = { rpc_sec.key, rpc_sec.cert };
    return grpc_ssl_credentials_create(rpc_sec.ca, &pair, NULL, NULL);
}

const grpc_metadata *rpc_sec_call_md(size_t *count)
{
    *count = rpc_sec.token[0] ? 1 : 0;
    return &rpc_sec.md;
}

/* Whether the one authorization value (value, n) is "Bearer <token>":
 * the comparison takes the same time whatever the value (auth.h). */
static int rpc_sec_token_ok(const grpc_slice *value)
{
    char v[RPC_SEC_VALUE_MAX + 1];
    size_t n = GRPC_SLICE_LENGTH(*value);
    if (n > RPC_SEC_VALUE_MAX || memchr(GRPC_SLICE_START_PTR(*value), '\0', n))
        return 0;
    memcpy(v, GRPC_SLICE_START_PTR(*value), n);
    v[n] = '\0';
    return auth_api_key_check(v, rpc_sec.token) == 0;
}

static void rpc_sec_refused(grpc_call *call, const char *why)
{
    long n = atomic_fetch_add_explicit(&rpc_sec.refused, 1, memory_order_relaxed) + 1;
    uint64_t now = rpc_now_ms();
    if (rpc_sec.warned_at && now - rpc_sec.warned_at < RPC_SEC_WARN_MS)
        return;
    rpc_sec.warned_at = now;
    char *peer = call ? grpc_call_get_peer(call) : NULL;
    log_warn("rpc: refused a call from %s: %s (cluster.rpcToken; %ld refused so far)",
             peer ? peer : "?", why, n);
    gpr_free(peer);
}

int rpc_sec_allowed(const grpc_metadata_array *md, grpc_call *call)
{
    if (!rpc_sec.token[0])
        return 1;
    const grpc_slice *value = NULL;
    size_t found = 0;
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") == 0 && ++found == 1)
            value = &md->metadata[i].value;
    if (found == 1 && rpc_sec_token_ok(value))
        return 1;
    rpc_sec_refused(call, found == 0 ? "no authorization metadata"
                    : found > 1 ? "several authorization values" : "wrong token");
    return 0;
}
