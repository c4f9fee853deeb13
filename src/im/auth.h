/* auth.h — the authentication checks of SPEC §7 (all optional, off unless
 * configured): the HS256 JWT a client gives as `serviceToken` at login
 * (auth.secret), the HTTP API key (auth.apiKey, `Authorization: Bearer`)
 * and the Origin allow-list of WebSocket upgrades (app.allowedOrigins).
 * Pure functions without I/O or global state; safe on any thread. */
#ifndef IMGATE_AUTH_H
#define IMGATE_AUTH_H

#include <stddef.h>

/* Longest token auth_jwt_check looks at; longer ones are rejected. */
#define AUTH_TOKEN_MAX 4096

/* Checks a compact JWS "header.payload.signature" (base64url, no padding):
 * the header must be a JSON object with "alg":"HS256" ("typ" optional, any
 * string); the signature must be HMAC-SHA256 of "header.payload" under
 * `secret` (compared in constant time); the payload must be a JSON object
 * whose string "sub" equals sub[0..sublen) and whose numeric "exp" is after
 * `now` (unix seconds); a numeric "nbf", if present, must not be after now.
 * No clock leeway. Returns 0 if valid, else -1 with a short English reason
 * in *why ("malformed token", "unsupported alg", "bad signature",
 * "subject mismatch", "expired", "missing exp", ...). */
int auth_jwt_check(const char *token, size_t len, const char *secret, const char *sub,
                   size_t sublen, long now, const char **why);

/* Checks an Authorization header value against the API key: it must be
 * "Bearer <key>" ("Bearer" in any case, blanks around the key ignored).
 * The comparison takes the same time wherever the values differ. A NULL
 * header or an empty key never matches. Returns 0 on a match, else -1. */
int auth_api_key_check(const char *authorization_header, const char *key);

/* Whether an Origin header value is allowed by `list`, a comma-separated
 * list of origins ("https://a.com, http://localhost:8080"; blanks around
 * items ignored) matched exactly but case-insensitively. An empty or NULL
 * list or a "*" item allows every origin; a NULL origin (no header: not a
 * browser) is allowed. Returns 1 if allowed, else 0. */
int auth_origin_allowed(const char *origin, const char *list);

#endif
