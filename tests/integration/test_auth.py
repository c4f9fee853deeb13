"""Integration tests: authentication (SPEC §2 login rules, §7 Auth).

With auth.secret set, login needs an HS256 JWT in serviceToken whose sub is
the userID and whose exp is in the future (else 1003); without it any token
works. With auth.apiKey set, the HTTP API needs "Authorization: Bearer <key>"
(401 + code 1003 otherwise) except for the chat page and OPTIONS. With
app.allowedOrigins set, browser upgrades from other Origins get 403. Tokens
are made here with the standard library (hmac, hashlib, base64).

Run: /usr/bin/python3 tests/integration/test_auth.py"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (NodeCase, close_all, connect, main, parse_http, request,  # noqa: E402
                     run, upgrade_request)

SECRET = "it-secret-\u00e9-42"
API_KEY = "k3y-for-the-api"
ORIGINS = "https://chat.example.com, http://localhost:8080"


# ---------- tokens ----------

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(sub="alice", exp=None, secret=SECRET, alg="HS256", **claims):
    """An HS256-style compact JWS; exp defaults to an hour from now
    (exp=False leaves it out)."""
    header = {"alg": alg, "typ": "JWT"}
    body = {"sub": sub}
    if exp is not False:
        body["exp"] = int(time.time()) + 3600 if exp is None else exp
    body.update(claims)
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(body).encode())
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64u(sig)


def bad_signature(token):
    """token with one signature byte changed (still canonical base64url)."""
    i = len(token) - 3
    return token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1:]


async def login_code(node, user, token, app=101, field="serviceToken", ws=None):
    """The code of a login as `user` with `token` (None: no token field), on
    a fresh connection unless ws is given."""
    own = ws is None
    ws = ws or await connect(node)
    try:
        data = {"appID": app, "userID": user}
        if token is not None:
            data[field] = token
        r = await request(ws, "login", data)
        return r["response"]["code"]
    finally:
        if own:
            await close_all(ws)


def codes(node, cases):
    """Runs login_code for each (user, token) and returns the codes."""
    async def go():
        return [await login_code(node, u, t) for u, t in cases]
    return run(go())


# ---------- login tokens ----------

class TokenTest(NodeCase):
    ARGS = ("--set", "auth.secret=" + SECRET)

    def test_valid_token(self):
        self.assertEqual(codes(self.node, [("alice", jwt("alice"))]), [200])

    def test_rejected_tokens(self):
        now = int(time.time())
        cases = [
            ("expired", jwt("alice", exp=now - 10)),
            ("wrong signature", bad_signature(jwt("alice"))),
            ("wrong secret", jwt("alice", secret="guess")),
            ("wrong subject", jwt("bob")),
            ("missing token", None),
            ("empty token", ""),
            ("not a string", 12345),
            ("missing exp", jwt("alice", exp=False)),
            ("exp as string", jwt("alice", exp=str(now + 3600))),
            ("nbf in the future", jwt("alice", nbf=now + 3600)),
            ("alg none", b64u(b'{"alg":"none"}') + "." + jwt("alice").split(".")[1] + "."),
            ("alg HS512 (signed with HMAC-SHA256)", jwt("alice", alg="HS512")),
            ("padded", jwt("alice") + "="),
            ("two parts", jwt("alice").rsplit(".", 1)[0]),
            ("garbage", "not-a-jwt"),
            ("huge", "a" * 5000 + "." + "b" * 5000 + "." + "c" * 43),
        ]
        got = codes(self.node, [("alice", t) for _, t in cases])
        for (name, _), code in zip(cases, got):
            self.assertEqual(code, 1003, name)

    def test_field_name_case_insensitive(self):
        async def go():
            return [await login_code(self.node, "carol", jwt("carol"), field=f)
                    for f in ("servicetoken", "SERVICETOKEN")]
        self.assertEqual(run(go()), [200, 200])

    def test_rule_order(self):
        async def go():
            bad_user = await login_code(self.node, "", jwt(""))              # userID first: 1002
            bad_app = await login_code(self.node, "dave", jwt("dave"), app=999)  # then appID
            ws = await connect(self.node)
            try:
                first = await login_code(self.node, "dave", jwt("dave"), ws=ws)
                bad_tok = await login_code(self.node, "dave", jwt("eve"), ws=ws)  # token before 1009
                again = await login_code(self.node, "dave", jwt("dave"), ws=ws)
            finally:
                await close_all(ws)
            return [bad_user, bad_app, first, bad_tok, again]
        self.assertEqual(run(go()), [1002, 1003, 200, 1003, 1009])

    def test_failed_login_keeps_connection(self):
        async def go():
            ws = await connect(self.node)
            try:
                a = await login_code(self.node, "frank", jwt("frank", secret="x"), ws=ws)
                hb = (await request(ws, "heartbeat", {}))["response"]["code"]
                b = await login_code(self.node, "frank", jwt("frank"), ws=ws)
                hb2 = (await request(ws, "heartbeat", {}))["response"]["code"]
            finally:
                await close_all(ws)
            return [a, hb, b, hb2]
        self.assertEqual(run(go()), [1003, 1000, 200, 200])


class TokenFromEnvTest(NodeCase):
    NODE_KW = {"env": {"IMGATE_AUTH_SECRET": SECRET}}

    def test_env_secret(self):
        self.assertEqual(codes(self.node, [("gina", jwt("gina")), ("gina", jwt("gina", secret="x"))]),
                         [200, 1003])


class OpenLoginTest(NodeCase):
    """Without auth.secret the original open behaviour stays."""

    def test_any_token(self):
        now = int(time.time())
        cases = [("alice", ""), ("bob", None), ("carol", "whatever"), ("dave", jwt("dave")),
                 ("erin", jwt("erin", exp=now - 10)), ("fay", jwt("someone-else", secret="x"))]
        self.assertEqual(codes(self.node, cases), [200] * len(cases))


# ---------- API key ----------

class ApiKeyTest(NodeCase):
    ARGS = ("--set", "auth.apiKey=" + API_KEY)

    def bearer(self, key=API_KEY, scheme="Bearer"):
        return {"Authorization": "%s %s" % (scheme, key)}

    def assert_unauthorized(self, status, hdrs, body, what):
        self.assertEqual(status, 401, what)
        self.assertEqual(hdrs.get("www-authenticate"), "Bearer", what)
        self.assertEqual(hdrs.get("access-control-allow-origin"), "*", what)
        self.assertEqual(json.loads(body), {"code": 1003, "data": {},
                                            "msg": "Unauthorized: missing or wrong API key"}, what)

    def test_no_header(self):
        for path in ("/user/list?appID=101", "/user/online?appID=0&userID=a", "/system/state",
                     "/metrics", "/no/such/path"):
            self.assert_unauthorized(*self.node.http(path), path)
        self.assert_unauthorized(*self.node.http("/user/sendMessage", form={
            "appID": 101, "userID": "a", "msgID": "m1", "message": "hi"}), "POST sendMessage")

    def test_wrong_key(self):
        for hdrs in (self.bearer("wrong"), self.bearer(API_KEY + "x"), self.bearer(API_KEY[:-1]),
                     self.bearer(API_KEY, "Basic"), {"Authorization": API_KEY},
                     {"Authorization": "Bearer"}, {"X-Api-Key": API_KEY}):
            self.assert_unauthorized(*self.node.http("/user/list", params={"appID": 101},
                                                     headers=hdrs), hdrs)

    def test_right_key(self):
        for hdrs in (self.bearer(), self.bearer(scheme="bearer")):
            status, _, body = self.node.http("/user/list", params={"appID": 101}, headers=hdrs)
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["code"], 200)
        status, _, body = self.node.http("/user/sendMessage", headers=self.bearer(), form={
            "appID": 101, "userID": "nobody", "msgID": "", "message": "hi"})
        self.assertEqual((status, json.loads(body)["data"]), (200, {"sendResults": False, "stored": True}))
        self.assertEqual(self.node.http("/system/state", headers=self.bearer())[0], 200)
        self.assertEqual(self.node.http("/metrics", headers=self.bearer())[0], 200)

    def test_open_paths(self):
        self.assertEqual(self.node.http("/user/list", method="OPTIONS")[0], 204)
        for path in ("/home/index", "/home/index?appID=102", "/"):
            status, hdrs, body = self.node.http(path)
            self.assertEqual(status, 200, path)
            self.assertIn("text/html", hdrs.get("content-type", ""), path)

    def test_websocket_not_affected(self):
        self.assertEqual(codes(self.node, [("hank", "")]), [200])


class ApiKeyFromEnvTest(NodeCase):
    NODE_KW = {"env": {"IMGATE_API_KEY": API_KEY}}

    def test_env_key(self):
        self.assertEqual(self.node.http("/user/list", params={"appID": 101})[0], 401)
        self.assertEqual(self.node.http("/user/list", params={"appID": 101},
                                        headers={"Authorization": "Bearer " + API_KEY})[0], 200)


class OpenApiTest(NodeCase):
    def test_no_key_needed(self):
        self.assertEqual(self.node.http("/user/list", params={"appID": 101})[0], 200)
        self.assertEqual(self.node.http("/user/list", params={"appID": 101},
                                        headers={"Authorization": "Bearer anything"})[0], 200)


# ---------- Origin ----------

def upgrade_status(node, **headers):
    """Status and body of a raw upgrade request to /acc with extra headers."""
    status, _, body = parse_http(node.raw(upgrade_request(**headers), wait_close=False))
    return status, body


class OriginTest(NodeCase):
    ARGS = ("--set", "app.allowedOrigins=" + ORIGINS)

    def test_allowed(self):
        for origin in ("https://chat.example.com", "http://localhost:8080", "HTTPS://Chat.Example.com"):
            self.assertEqual(upgrade_status(self.node, Origin=origin)[0], 101, origin)

    def test_other_origins(self):
        for origin in ("https://evil.example.com", "http://chat.example.com",
                       "https://chat.example.com.evil.com", "http://localhost:8081", "null", ""):
            status, body = upgrade_status(self.node, Origin=origin)
            self.assertEqual(status, 403, origin)
            self.assertIn(b"origin not allowed", body, origin)

    def test_no_origin(self):
        self.assertEqual(upgrade_status(self.node)[0], 101)

    def test_real_client(self):
        async def go():
            ws = await connect(self.node, origin="https://chat.example.com")
            try:
                r = await request(ws, "login", {"serviceToken": "", "appID": 101, "userID": "ivy"})
                return r["response"]["code"]
            finally:
                await close_all(ws)
        self.assertEqual(run(go()), 200)

    def test_http_api_not_affected(self):
        status, _, _ = self.node.http("/user/list", params={"appID": 101},
                                      headers={"Origin": "https://evil.example.com"})
        self.assertEqual(status, 200)


class OpenOriginTest(NodeCase):
    def test_any_origin(self):
        self.assertEqual(upgrade_status(self.node, Origin="https://anything.example")[0], 101)


# ---------- everything at once ----------

class CombinedTest(NodeCase):
    ARGS = ("--set", "auth.secret=" + SECRET, "--set", "auth.apiKey=" + API_KEY,
            "--set", "app.allowedOrigins=https://chat.example.com")

    def test_push_to_authenticated_user(self):
        async def go():
            ws = await connect(self.node, origin="https://chat.example.com")
            try:
                self.assertEqual(await login_code(self.node, "jack", jwt("jack"), ws=ws), 200)
                status, _, body = self.node.http("/user/sendMessage", form={
                    "appID": 101, "userID": "jack", "msgID": "m-1", "message": "hello"},
                    headers={"Authorization": "Bearer " + API_KEY})
                self.assertEqual((status, json.loads(body)["data"]), (200, {"sendResults": True}))
                while True:
                    m = json.loads(await ws.recv())
                    if m.get("cmd") == "msg":
                        return m["response"]["data"]["msg"]
            finally:
                await close_all(ws)
        self.assertEqual(run(go()), "hello")

    def test_secrets_not_in_output(self):
        out = self.node.stdout() + self.node.stderr()
        self.assertNotIn(SECRET, out)
        self.assertNotIn(API_KEY, out)


if __name__ == "__main__":
    main(sys.modules[__name__])
