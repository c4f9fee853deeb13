"""A catalogue of malformed inputs: WebSocket frames, opening handshakes, raw
HTTP API requests and JSON envelopes. Every row is a table entry (name, what
is sent, expected outcome) and is followed by a check that the node still
serves: a fresh client logs in and gets a ping reply, and the process is
alive.

Frames and handshakes go over raw sockets (a hand-made client that masks its
frames as RFC 6455 requires and parses the server's frames: harness.RawWS);
JSON envelopes go over Debian's python3-websockets. All traffic is to 127.0.0.1."""

import base64
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (IO_TIMEOUT, OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,  # noqa: E402
                     OP_TEXT, NodeCase, RawWS, accept_for, cmd_json, frame, main, parse_http,
                     text, upgrade_request)

RSV1, RSV2, RSV3 = 4, 2, 1          # values of the 3-bit RSV field


# ---------------------------------------------------------------- frames ----

def close_frame(code=None, reason=b"", **kw):
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload, **kw)


PING_JSON = cmd_json("ping", seq="p1")


# ------------------------------------------------------------ handshakes ----

def exchange(port, chunks, timeout=None, delay=0.0):
    """Sends the chunks (separate writes) and reads until the server closes.
    Returns (bytes read, closed_by_server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for c in chunks:
            try:
                s.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break               # the server answered and closed early
            if delay:
                time.sleep(delay)
        s.settimeout(timeout or IO_TIMEOUT)
        out = b""
        deadline = time.time() + (timeout or IO_TIMEOUT)
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        s.close()


def expect_answer_and_close(tc, name, port, chunks, expected, check):
    """Sends the chunks to port: the answer's status must be `expected` (one
    status or a tuple of them), the server must close the connection, and
    check(status, headers, body) (if given) must pass."""
    out, closed = exchange(port, chunks)
    status, hdrs, body = parse_http(out)
    exp = expected if isinstance(expected, tuple) else (expected,)
    tc.assertIn(status, exp, "%s: got %d %r" % (name, status, body[:200]))
    tc.assertTrue(closed, "%s: the server kept the connection after %d" % (name, status))
    if check:
        check(status, hdrs, body)


# ------------------------------------------------------- liveness check ----

_serial = [0]


def check_serves(node):
    """harness.assert_serves with a new user name each time."""
    _serial[0] += 1
    harness.assert_serves(node, "chk%d" % _serial[0])


def add_rows(cls, prefix, rows, runner):
    """One test method per table row: runner(self, row), then the liveness check."""
    for i, row in enumerate(rows):
        name = "test_%s_%02d_%s" % (prefix, i + 1, row[0])

        def t(self, row=row):
            runner(self, row)
            check_serves(self.node)
        t.__name__ = name
        t.__doc__ = "%s: %s" % (prefix, row[0])
        setattr(cls, name, t)


# ============================================================ 1. frames ====

MAX_MSG = 1024


def frag_login(user):
    body = cmd_json("login", {"serviceToken": "", "appID": 101, "userID": user}, seq="fl")
    return body[:10], body[10:25], body[25:]


def act_close_1000(tc, ws):
    ws.send(close_frame(1000))
    code, _, before = ws.read_close()
    tc.assertEqual(code, 1000)
    tc.assertEqual(before, [])
    tc.assertTrue(ws.eof(), "server did not end the TCP connection after the close")


def act_close_echo(code, reason=b""):
    def act(tc, ws):
        ws.send(close_frame(code, reason))
        got, _, _ = ws.read_close()
        tc.assertEqual(got, code)
        tc.assertTrue(ws.eof())
    return act


def act_close_empty(tc, ws):
    ws.send(close_frame(None))
    code, _, _ = ws.read_close()
    tc.assertEqual(code, 1000)          # a close without a status is answered 1000
    tc.assertTrue(ws.eof())


def act_ping_between_fragments(tc, ws):
    a, b, c = frag_login("fragU")
    ws.send(text(a, fin=False) + frame(OP_PING, b"mid-1") + frame(OP_CONT, b, fin=False) +
            frame(OP_PING, b"mid-2") + frame(OP_CONT, c, fin=True))
    got = []
    while len(got) < 3:
        f = ws.recv_frame()
        tc.assertIsNotNone(f, "EOF")
        got.append(f)
    tc.assertEqual(got[0][1:], (OP_PONG, b"mid-1"))
    tc.assertEqual(got[1][1:], (OP_PONG, b"mid-2"))
    tc.assertEqual(got[2][1], OP_TEXT)
    m = json.loads(got[2][2])
    tc.assertEqual((m["seq"], m["cmd"], m["response"]["code"]), ("fl", "login", 200))
    ws.send(text(PING_JSON))
    tc.assertEqual(ws.recv_json()["response"]["data"], "pong")


def act_ping_125(tc, ws):
    payload = bytes(range(125))
    ws.send(frame(OP_PING, payload))
    f = ws.recv_frame()
    tc.assertEqual(f, (True, OP_PONG, payload))


def act_unsolicited_pong(tc, ws):
    ws.send(frame(OP_PONG, b"nobody asked") + text(PING_JSON))
    m = ws.recv_json()
    tc.assertEqual((m["seq"], m["response"]["data"]), ("p1", "pong"))


def act_valid_utf8_split(tc, ws):
    body = cmd_json("ping", seq="emoji-\U0001F600-\u00e9")
    cut = body.index(b"\xf0") + 2               # inside the 4-byte sequence
    ws.send(text(body[:cut], fin=False) + frame(OP_CONT, body[cut:]))
    m = ws.recv_json()
    tc.assertEqual(m["seq"], "emoji-\U0001F600-\u00e9")
    tc.assertEqual(m["response"]["code"], 200)


def act_exact_max(tc, ws):
    base = cmd_json("ping", seq="")
    body = cmd_json("ping", seq="x" * (MAX_MSG - len(base)))
    tc.assertEqual(len(body), MAX_MSG)
    ws.send(text(body))
    m = ws.recv_json()
    tc.assertEqual(m["response"]["code"], 200)
    tc.assertEqual(len(m["seq"]), MAX_MSG - len(base))


def act_exact_max_fragmented(tc, ws):
    base = cmd_json("ping", seq="")
    body = cmd_json("ping", seq="y" * (MAX_MSG - len(base)))
    ws.send(text(body[:500], fin=False) + frame(OP_CONT, body[500:900], fin=False) +
            frame(OP_CONT, body[900:]))
    m = ws.recv_json()
    tc.assertEqual(m["response"]["code"], 200)


def act_empty_fragments(tc, ws):
    ws.send(text(b"", fin=False) + frame(OP_CONT, b"", fin=False) +
            frame(OP_CONT, PING_JSON[:5], fin=False) + frame(OP_CONT, b"", fin=False) +
            frame(OP_CONT, PING_JSON[5:]))
    m = ws.recv_json()
    tc.assertEqual((m["seq"], m["response"]["data"]), ("p1", "pong"))


def act_byte_by_byte(tc, ws):
    data = text(PING_JSON)
    for i in range(len(data)):
        ws.send(data[i:i + 1])
        time.sleep(0.001)
    m = ws.recv_json()
    tc.assertEqual((m["seq"], m["response"]["data"]), ("p1", "pong"))


def act_binary(tc, ws):
    ws.send(frame(OP_BIN, PING_JSON))
    m = ws.recv_json()
    tc.assertEqual(m["response"]["code"], 1001)
    ws.send(text(PING_JSON))
    tc.assertEqual(ws.recv_json()["response"]["data"], "pong")


def act_empty_text(tc, ws):
    ws.send(text(b""))
    m = ws.recv_json()
    tc.assertEqual(m["response"]["code"], 1001)
    ws.send(text(PING_JSON))
    tc.assertEqual(ws.recv_json()["response"]["data"], "pong")


def act_pipelined_messages(tc, ws):
    ws.send(b"".join(text(cmd_json("ping", seq="m%d" % i)) for i in range(50)))
    seqs = [ws.recv_json()["seq"] for _ in range(50)]
    tc.assertEqual(seqs, ["m%d" % i for i in range(50)])


_big = b'{"seq":"' + b"z" * MAX_MSG + b'","cmd":"ping","data":{}}'

# (name, bytes sent after the handshake or an action, expected close code or a description)
FRAME_ROWS = [
    ("rsv1_text", text(PING_JSON, rsv=RSV1), 1002),
    ("rsv2_text", text(PING_JSON, rsv=RSV2), 1002),
    ("rsv3_text", text(PING_JSON, rsv=RSV3), 1002),
    ("rsv1_ping", frame(OP_PING, b"x", rsv=RSV1), 1002),
    ("rsv_all_close", close_frame(1000, rsv=7), 1002),
    ("opcode_3", frame(0x3, b"x"), 1002),
    ("opcode_7", frame(0x7, b"x"), 1002),
    ("opcode_B", frame(0xB, b"x"), 1002),
    ("opcode_F", frame(0xF, b"x"), 1002),
    ("opcode_5_nonfinal", frame(0x5, b"x", fin=False), 1002),
    ("unmasked_text", text(PING_JSON, masked=False), 1002),
    ("unmasked_ping", frame(OP_PING, b"x", masked=False), 1002),
    ("unmasked_close", close_frame(1000, masked=False), 1002),
    ("ping_126_bytes", frame(OP_PING, b"p" * 126), 1002),
    ("pong_126_bytes", frame(OP_PONG, b"p" * 126), 1002),
    ("close_126_bytes", close_frame(1000, b"r" * 124), 1002),
    ("ping_fin0", frame(OP_PING, b"x", fin=False), 1002),
    ("close_fin0", close_frame(1000, fin=False), 1002),
    ("ping_fin0_inside_message", text(b'{"a"', fin=False) + frame(OP_PING, b"", fin=False), 1002),
    ("continuation_without_start", frame(OP_CONT, PING_JSON), 1002),
    ("continuation_fin0_without_start", frame(OP_CONT, b"x", fin=False), 1002),
    ("continuation_after_complete_message", text(PING_JSON) + frame(OP_CONT, b"x"), 1002),
    ("text_inside_fragmented_text", text(b'{"seq"', fin=False) + text(PING_JSON), 1002),
    ("binary_inside_fragmented_text", text(b'{"seq"', fin=False) + frame(OP_BIN, b"x"), 1002),
    ("text_inside_fragmented_binary", frame(OP_BIN, b"x", fin=False) + text(b"x"), 1002),
    ("len64_msb_set", bytes([0x81, 0xFF]) + struct.pack("!Q", (1 << 63) | 5) + os.urandom(4) + b"hello", 1002),
    ("len64_all_ones", bytes([0x82, 0xFF]) + b"\xff" * 8 + os.urandom(4), 1002),
    ("utf8_overlong_2byte", text(b'{"seq":"\xc0\xaf"}'), 1007),
    ("utf8_overlong_3byte", text(b'{"seq":"\xe0\x80\xaf"}'), 1007),
    ("utf8_overlong_4byte", text(b'{"seq":"\xf0\x80\x80\xaf"}'), 1007),
    ("utf8_surrogate_ED_A0_80", text(b'{"seq":"\xed\xa0\x80"}'), 1007),
    ("utf8_F5", text(b'{"seq":"\xf5"}'), 1007),
    ("utf8_above_10FFFF", text(b'{"seq":"\xf4\x90\x80\x80"}'), 1007),
    ("utf8_lone_continuation", text(b'{"seq":"\x80"}'), 1007),
    ("utf8_FE_FF", text(b'\xfe\xff'), 1007),
    ("utf8_truncated_at_end", text(b'{"seq":"ok\xe2\x82'), 1007),
    ("utf8_truncated_at_end_of_fragmented", text(b'ab\xf0\x9f', fin=False) + frame(OP_CONT, b"\x98"), 1007),
    ("utf8_invalid_split_across_fragments", text(b'a\xf0\x9f', fin=False) + frame(OP_CONT, b"\x28abc"), 1007),
    ("utf8_invalid_in_open_fragment_fail_fast", text(b'{"seq":"\xed\xa0\x80', fin=False), 1007),
    ("close_1_byte_payload", frame(OP_CLOSE, b"\x03"), 1002),
    ("close_code_0", close_frame(0), 1002),
    ("close_code_999", close_frame(999), 1002),
    ("close_code_1004", close_frame(1004), 1002),
    ("close_code_1005", close_frame(1005), 1002),
    ("close_code_1006", close_frame(1006), 1002),
    ("close_code_1015", close_frame(1015), 1002),
    ("close_code_1100", close_frame(1100), 1002),
    ("close_code_2999", close_frame(2999), 1002),
    ("close_code_5000", close_frame(5000), 1002),
    ("close_code_65535", close_frame(65535), 1002),
    ("close_reason_invalid_utf8", close_frame(1000, b"bye\xff\xfe"), 1007),
    ("close_reason_surrogate", close_frame(1000, b"\xed\xa0\x80"), 1007),
    ("too_big_single_frame", text(_big), 1009),
    ("too_big_binary", frame(OP_BIN, b"b" * (MAX_MSG + 1)), 1009),
    ("too_big_across_fragments", text(_big[:600], fin=False) + frame(OP_CONT, _big[600:]), 1009),
    ("too_big_many_small_fragments",
     text(b"[", fin=False) + b"".join(frame(OP_CONT, b"1," * 50, fin=False) for _ in range(12)), 1009),
    ("too_big_announced_length_only", bytes([0x81, 0xFE]) + struct.pack("!H", 60000) + os.urandom(4), 1009),
    ("close_1000", act_close_1000, "server answers close 1000, then EOF"),
    ("close_1000_with_reason", act_close_echo(1000, b"bye \xc3\xa9"), "close 1000 echoed"),
    ("close_1001", act_close_echo(1001), "close 1001 echoed"),
    ("close_3000", act_close_echo(3000), "registered range accepted"),
    ("close_4999", act_close_echo(4999), "private range accepted"),
    ("close_empty", act_close_empty, "close without status answered"),
    ("ping_between_fragments_login", act_ping_between_fragments, "pongs, then the login is processed"),
    ("ping_125_bytes", act_ping_125, "pong with the same 125 bytes"),
    ("unsolicited_pong", act_unsolicited_pong, "ignored"),
    ("utf8_valid_split_across_fragments", act_valid_utf8_split, "processed"),
    ("exactly_max_message_size", act_exact_max, "processed"),
    ("exactly_max_message_size_fragmented", act_exact_max_fragmented, "processed"),
    ("empty_fragments", act_empty_fragments, "processed"),
    ("frame_byte_by_byte", act_byte_by_byte, "processed"),
    ("binary_message", act_binary, "reply 1001, connection stays open"),
    ("empty_text_message", act_empty_text, "reply 1001, connection stays open"),
    ("50_pipelined_messages", act_pipelined_messages, "50 replies in order"),
]


def run_frame_row(self, row):
    name, action, expected = row
    ws = RawWS(self.node.ws_port)
    try:
        if callable(action):
            action(self, ws)
            return
        ws.send(action)
        code, reason, before = ws.read_close()
        self.assertEqual(code, expected, "%s: server sent close %r (%r) after %r" %
                         (name, code, reason, before))
        # whatever came before the close must be a normal reply, never an error
        for _, op, payload in before:
            self.assertEqual(op, OP_TEXT)
            self.assertEqual(json.loads(payload)["response"]["code"], 200)
        self.assertTrue(ws.eof(), "%s: TCP connection not ended after the close frame" % name)
    finally:
        ws.close()


class FrameTests(NodeCase):
    ARGS = ("--set", "app.maxMessageSize=%d" % MAX_MSG)


add_rows(FrameTests, "frame", FRAME_ROWS, run_frame_row)


# ======================================================== 2. handshakes ====

def hs_split_50(tc, node):
    key = base64.b64encode(os.urandom(16)).decode()
    req = upgrade_request(key=key) + text(PING_JSON)
    first = [req[i:i + 1] for i in range(49)]          # 49 single bytes ...
    chunks = first + [req[49:]]                        # ... and the rest: 50 writes
    tc.assertEqual(len(chunks), 50)
    s = socket.create_connection(("127.0.0.1", node.ws_port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for c in chunks:
            s.sendall(c)
            time.sleep(0.002)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            tc.assertTrue(chunk, "EOF before the handshake answer")
            buf += chunk
        status, hdrs, rest = parse_http(buf)
        tc.assertEqual(status, 101)
        tc.assertEqual(hdrs.get("sec-websocket-accept"), accept_for(key))
        while b'"pong"' not in rest:
            chunk = s.recv(4096)
            tc.assertTrue(chunk, "EOF before the ping reply")
            rest += chunk
    finally:
        s.close()


def hs_ok(request):
    """A handshake that must upgrade, after which a ping command works."""
    def act(tc, node):
        key = base64.b64encode(os.urandom(16)).decode()
        ws = RawWS(node.ws_port, request=request(key), key=key)
        try:
            ws.send(text(PING_JSON))
            tc.assertEqual(ws.recv_json()["response"]["data"], "pong")
        finally:
            ws.close()
    return act


def hs_pipelined_frame(tc, node):
    key = base64.b64encode(os.urandom(16)).decode()
    ws = RawWS(node.ws_port, request=upgrade_request(key=key) + text(PING_JSON), key=key)
    try:
        m = ws.recv_json()
        tc.assertEqual((m["seq"], m["response"]["data"]), ("p1", "pong"))
    finally:
        ws.close()


def hs_wrong_version_header(status, hdrs, body):
    assert hdrs.get("sec-websocket-version") == "13", hdrs


def hs_has_reason(status, hdrs, body):
    assert body.strip(), "no reason in the body"


K15 = base64.b64encode(b"x" * 15).decode()
K17 = base64.b64encode(b"x" * 17).decode()

# (name, request bytes or an action, expected status(es), optional check(status, headers, body))
HANDSHAKE_ROWS = [
    ("missing_upgrade", upgrade_request(Upgrade=None), 400, hs_has_reason),
    ("upgrade_not_websocket", upgrade_request(Upgrade="h2c"), 400, hs_has_reason),
    ("missing_connection", upgrade_request(Connection=None), 400, hs_has_reason),
    ("connection_without_upgrade", upgrade_request(Connection="keep-alive"), 400, hs_has_reason),
    ("missing_key", upgrade_request(Sec_WebSocket_Key=None), 400, hs_has_reason),
    ("key_15_bytes", upgrade_request(key=K15), 400, hs_has_reason),
    ("key_17_bytes", upgrade_request(key=K17), 400, hs_has_reason),
    ("key_not_base64", upgrade_request(key="!!!!!!!!!!!!!!!!!!!!!!=="), 400, hs_has_reason),
    ("key_empty", upgrade_request(key=""), 400, hs_has_reason),
    ("version_8", upgrade_request(Sec_WebSocket_Version="8"), 426, hs_wrong_version_header),
    ("version_14", upgrade_request(Sec_WebSocket_Version="14"), 426, hs_wrong_version_header),
    ("version_missing", upgrade_request(Sec_WebSocket_Version=None), (400, 426), hs_has_reason),
    ("method_POST", upgrade_request(method="POST"), 400, hs_has_reason),
    ("http_1_0", upgrade_request(proto="HTTP/1.0"), 400, hs_has_reason),
    ("missing_host", upgrade_request(Host=None), 400, hs_has_reason),
    ("wrong_path", upgrade_request(path="/chat"), 404, None),
    ("path_prefix", upgrade_request(path="/accx"), 404, None),
    ("garbage_request_line", b"\x16\x03\x01garbage that is no request\r\n\r\n", 400, None),
    ("request_line_no_version", b"GET /acc\r\nHost: x\r\n\r\n", 400, None),
    ("header_without_colon", upgrade_request().replace(b"Host: 127.0.0.1", b"Host 127.0.0.1"), 400, None),
    ("header_block_over_16k", upgrade_request(X_Pad="a" * (17 * 1024)), 431, None),
    ("many_headers_over_16k", upgrade_request(**{"X_H%d" % i: "v" * 30 for i in range(700)}), 431, None),
    ("split_over_50_writes", hs_split_50, 101, None),
    ("connection_list_keepalive_upgrade",
     hs_ok(lambda k: upgrade_request(key=k, Connection="keep-alive, Upgrade")), 101, None),
    ("upgrade_mixed_case", hs_ok(lambda k: upgrade_request(key=k, Upgrade="WebSocket")), 101, None),
    ("path_with_query", hs_ok(lambda k: upgrade_request(path="/acc?x=1", key=k)), 101, None),
    ("deflate_offered_declined",
     hs_ok(lambda k: upgrade_request(key=k, Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits")),
     101, None),
    ("frame_pipelined_with_request", hs_pipelined_frame, 101, None),
]


def run_handshake_row(self, row):
    name, action, expected, check = row
    if callable(action):
        action(self, self.node)
        return
    expect_answer_and_close(self, name, self.node.ws_port, [action], expected, check)


class HandshakeTests(NodeCase):
    pass


add_rows(HandshakeTests, "handshake", HANDSHAKE_ROWS, run_handshake_row)


# ========================================================== 3. HTTP API ====

def api_no_host(status, hdrs, body):
    # HTTP/1.1 requires Host; answering 400 or serving the request are both sane.
    assert status in (200, 400), status
    if status == 200:
        assert json.loads(body)["code"] == 200, body


def api_pipelined(tc, node):
    req = (b"GET /system/state HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /user/list?appID=101 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out, closed = exchange(node.http_port, [req])
    tc.assertTrue(closed)
    tc.assertEqual(out.count(b"HTTP/1.1 200 "), 2, out[:500])
    tc.assertIn(b'"userList"', out)


def api_options(tc, node):
    out, closed = exchange(node.http_port, [b"OPTIONS /user/list HTTP/1.1\r\nHost: x\r\n"
                                            b"Connection: close\r\n\r\n"])
    status, hdrs, _ = parse_http(out)
    tc.assertEqual(status, 204)
    tc.assertEqual(hdrs.get("access-control-allow-origin"), "*")


def api_body_slowly(tc, node):
    body = b"appID=101"
    req = (b"POST /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    out, closed = exchange(node.http_port, [req[i:i + 7] for i in range(0, len(req), 7)], delay=0.002)
    status, _, resp = parse_http(out)
    tc.assertEqual(status, 200)
    tc.assertEqual(json.loads(resp)["code"], 200)


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n" + extra + b"\r\n" + body)


HTTP_ROWS = [
    ("garbage", b"\x00\x01\x02 garbage garbage\r\n\r\n", 400, None),
    ("tls_client_hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, None),
    ("body_over_1MiB_content_length",
     post(b"/user/sendMessage", b"appID=101&", b"Content-Length: 2000000\r\n"), 413, None),
    ("chunked_body_over_1MiB", None, 411, None),   # filled in below
    ("headers_over_16k", b"GET /system/state HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (17 * 1024) + b"\r\n\r\n",
     431, None),
    ("url_over_16k", b"GET /user/list?appID=101&x=" + b"a" * (17 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     (414, 431), None),
    # chunked bodies are refused (411): the system http-parser is lenient about chunk framing
    ("invalid_chunk_size", post(b"/user/list", b"zz\r\nappID=101\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"),
     411, None),
    ("chunk_missing_crlf", post(b"/user/list", b"3\r\nabcXX0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"),
     411, None),
    ("chunked_valid_body", post(b"/user/list", b"9\r\nappID=101\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n"),
     411, None),
    ("content_length_not_number", post(b"/user/list", b"appID=101", b"Content-Length: abc\r\n"), 400, None),
    ("content_length_negative", post(b"/user/list", b"appID=101", b"Content-Length: -1\r\n"), 400, None),
    ("content_length_twice_differs",
     post(b"/user/list", b"appID=101", b"Content-Length: 9\r\nContent-Length: 3\r\n"), 400, None),
    ("nul_in_header_value", b"GET /system/state HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, None),
    # RFC 7230 3.2.4: whitespace between field-name and colon MUST be rejected with 400
    ("whitespace_before_colon", b"GET /system/state HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400, None),
    ("method_PUT", b"PUT /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 405, None),
    ("method_DELETE", b"DELETE /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, None),
    ("method_PATCH", b"PATCH /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, None),
    ("unknown_method", b"BREW /user/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", (400, 405, 501), None),
    ("http11_without_host", b"GET /system/state HTTP/1.1\r\nConnection: close\r\n\r\n", (200, 400), api_no_host),
    ("unknown_path", b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, None),
    ("pipelined_two_requests", api_pipelined, 200, None),
    ("options_preflight", api_options, 204, None),
    ("request_in_7_byte_pieces", api_body_slowly, 200, None),
]


def _chunked_over_limit():
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    return [post(b"/user/sendMessage", b"", b"Transfer-Encoding: chunked\r\n")] + [chunk] * 20


HTTP_ROWS[3] = ("chunked_body_over_1MiB", _chunked_over_limit, 411, None)


def run_http_row(self, row):
    name, action, expected, check = row
    if callable(action) and action is not _chunked_over_limit:
        action(self, self.node)
        return
    chunks = action() if callable(action) else [action]
    expect_answer_and_close(self, name, self.node.http_port, chunks, expected, check)


class HttpApiTests(NodeCase):
    pass


add_rows(HttpApiTests, "http", HTTP_ROWS, run_http_row)


# ============================================================ 4. JSON ======

def login_json(data, seq="L"):
    return json.dumps({"seq": seq, "cmd": "login", "data": data})


def login_data(**kw):
    d = {"serviceToken": "", "appID": 101, "userID": "ju"}
    d.update(kw)
    return d


NEST = 10000
# (name, message(s) sent (str text / bytes binary; a list = several, the last one checked),
#  expected reply code, expected seq of that reply or None)
JSON_ROWS = [
    ("not_json", "hello there", 1001, ""),
    ("truncated_json", '{"seq":"a","cmd":"ping"', 1001, ""),
    ("json_array", '[{"seq":"a","cmd":"ping"}]', 1001, ""),
    ("json_number", "42", 1001, ""),
    ("json_string", '"ping"', 1001, ""),
    ("json_null", "null", 1001, ""),
    ("json_true", "true", 1001, ""),
    ("empty_object_no_cmd", "{}", 1001, ""),
    ("cmd_number", '{"seq":"a","cmd":5,"data":{}}', 1001, None),
    ("cmd_null", '{"seq":"a","cmd":null,"data":{}}', 1001, None),
    ("cmd_object", '{"seq":"a","cmd":{"x":1},"data":{}}', 1001, None),
    ("seq_number", '{"seq":7,"cmd":"ping","data":{}}', 1001, None),
    ("trailing_garbage", '{"seq":"a","cmd":"ping"} x', 1001, ""),
    ("lone_surrogate_escape", '{"seq":"\\ud800","cmd":"ping","data":{}}', 1001, ""),
    ("nested_arrays_10000", "[" * NEST + "]" * NEST, 1001, ""),
    ("nested_in_data_10000", '{"seq":"d","cmd":"ping","data":' + "[" * NEST + "]" * NEST + "}", 1001, None),
    ("nested_objects_10000", '{"a":' * NEST + "1" + "}" * NEST, 1001, ""),
    ("very_long_seq", json.dumps({"seq": "s" * 50000, "cmd": "ping", "data": {}}), 200, "s" * 50000),
    ("unknown_cmd", '{"seq":"u","cmd":"fly","data":{}}', 1010, "u"),
    ("heartbeat_before_login", '{"seq":"h","cmd":"heartbeat","data":{}}', 1000, "h"),
    ("binary_frame", PING_JSON, 1001, ""),
    ("login_data_string", json.dumps({"seq": "L", "cmd": "login", "data": "u1"}), 1002, "L"),
    ("login_data_array", json.dumps({"seq": "L", "cmd": "login", "data": ["u1", 101]}), 1002, "L"),
    ("login_data_missing", json.dumps({"seq": "L", "cmd": "login"}), 1002, "L"),
    ("login_appid_float", login_json(login_data(appID=101.5)), 1003, "L"),
    ("login_appid_negative", login_json(login_data(appID=-101)), 1003, "L"),
    ("login_appid_huge", '{"seq":"L","cmd":"login","data":{"serviceToken":"","appID":1e20,"userID":"ju"}}', 1003, "L"),
    ("login_appid_2_pow_32_plus_101", login_json(login_data(appID=2 ** 32 + 101)), 1003, "L"),
    ("login_appid_not_allowed", login_json(login_data(appID=105)), 1003, "L"),
    ("login_appid_bool", login_json(login_data(appID=True)), 1003, "L"),
    ("login_appid_bad_string", login_json(login_data(appID="10l")), 1003, "L"),
    ("login_appid_missing", login_json({"serviceToken": "", "userID": "ju"}), 1003, "L"),
    ("login_userid_number", login_json(login_data(userID=12345)), 1002, "L"),
    ("login_userid_nul", login_json(login_data(userID="a\u0000b")), 1002, "L"),
    ("login_userid_empty", login_json(login_data(userID="")), 1002, "L"),
    ("login_userid_20_bytes", login_json(login_data(userID="u" * 20)), 1002, "L"),
    ("login_userid_20_bytes_utf8", login_json(login_data(userID="\u00e9" * 10)), 1002, "L"),
    ("login_userid_19_bytes_ok", login_json(login_data(userID="v" * 19)), 200, "L"),
    ("login_appid_numeric_string_ok", login_json(login_data(appID="102", userID="js")), 200, "L"),
    ("login_twice", [login_json(login_data(userID="tw"), seq="L1"),
                     login_json(login_data(userID="tw"), seq="L2")], 1009, "L2"),
]


async def _json_row(node, sent, code, seq):
    ws = await harness.connect(node, max_size=None)
    try:
        msgs = sent if isinstance(sent, list) else [sent]
        for m in msgs:
            await ws.send(m)
        reply = None
        for _ in msgs:
            while True:
                reply = await harness.recv_json(ws)
                if reply.get("cmd") not in ("enter", "exit", "msg"):
                    break
        assert reply["response"]["code"] == code, "expected %d, got %r" % (code, reply)
        if seq is not None:
            assert reply["seq"] == seq, reply["seq"][:100]
        assert "codeMsg" in reply["response"], reply
        # the connection stays usable
        r = await harness.request(ws, "ping", seq="after")
        assert r["response"]["data"] == "pong", r
    finally:
        await ws.close()


def run_json_row(self, row):
    name, sent, code, seq = row
    harness.run(_json_row(self.node, sent, code, seq))


class JsonTests(NodeCase):
    pass


add_rows(JsonTests, "json", JSON_ROWS, run_json_row)


if __name__ == "__main__":
    main(sys.modules[__name__])
