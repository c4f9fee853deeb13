"""Reliable delivery in embedded mode (SPEC 7.1): offline messages stored
and pushed in order at the next login before anything newer, resume with
lastID / lastRoomID (recovered true or false), the pushed cursor and ack
with delivery.ackRequired, ids in pushes, bad input, and the original
behaviour with delivery.enabled: false. Real node on 127.0.0.1, hand-made
RFC 6455 client (RawWS); absence is proven by order (a later marker push
on the same path), never by a quiet window."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (OP_PING, OP_TEXT, Node, NodeCase, RawWS, cmd_json, main, text,  # noqa: E402
                     wait_until)
import json  # noqa: E402


def login(node, user, app=101, seq="L", **extra):
    """A logged-in RawWS and the login reply."""
    ws = RawWS(node.ws_port)
    data = {"serviceToken": "", "appID": app, "userID": user}
    data.update(extra)
    ws.send(text(cmd_json("login", data, seq=seq)))
    return ws, next_json(ws)


def next_json(ws):
    while True:
        f = ws.recv_frame()
        assert f is not None, "EOF while waiting for a message"
        fin, op, payload = f
        if op == OP_PING:
            continue
        assert op == OP_TEXT and fin, (op, payload[:80])
        return json.loads(payload)


def pushes_until(ws, marker_seq, with_marker=False):
    """Every push before the one whose seq is marker_seq (which must come);
    with_marker: also that one, as (pushes, marker)."""
    got = []
    while True:
        m = next_json(ws)
        if m.get("seq") == marker_seq:
            return (got, m) if with_marker else got
        if m.get("cmd") in ("msg", "enter", "exit"):
            got.append(m)


def send(node, user, msgid, message, app=101, room=False):
    path = "/user/sendMessageAll" if room else "/user/sendMessage"
    return node.api(path, form={"appID": app, "userID": user, "msgID": msgid, "message": message})


class DeliveryTest(NodeCase):
    def test_offline_messages_in_order_then_live(self):
        node = self.node
        for i in range(5):
            r = send(node, "off1", "off1-%d" % i, "stored %d" % i)
            self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
        ws, reply = login(node, "off1")
        try:
            self.assertEqual(reply["response"]["code"], 200)
            self.assertIsNone(reply["response"]["data"])          # a legacy login's reply is unchanged
            self.assertTrue(send(node, "off1", "off1-live", "live")["data"]["sendResults"])
            got = pushes_until(ws, "off1-live")
            self.assertEqual([m["seq"] for m in got], ["off1-%d" % i for i in range(5)])
            self.assertEqual([m["response"]["data"]["msg"] for m in got], ["stored %d" % i for i in range(5)])
            ids = [m["response"]["data"]["id"] for m in got]
            self.assertEqual(len(set(ids)), 5)
            parsed = [tuple(int(x) for x in i.split("-")) for i in ids]
            self.assertEqual(parsed, sorted(parsed))
        finally:
            ws.close()
        # pushed once: the next login of the user gets nothing old (marker after)
        ws, _ = login(node, "off1")
        try:
            send(node, "off1", "off1-m2", "marker")
            self.assertEqual(pushes_until(ws, "off1-m2"), [])
        finally:
            ws.close()

    def test_replies_keep_the_order_of_requests(self):
        """Commands sent right behind a login are answered after it: login,
        ping, a second login (1009), heartbeat — in that order."""
        node = self.node
        send(node, "ord1", "ord-stored", "waiting")            # a replay is pending too
        ws = RawWS(node.ws_port)
        try:
            frames = [cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "ord1"}, seq="o1"),
                      cmd_json("ping", seq="o2"),
                      cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "ord1"}, seq="o3"),
                      cmd_json("heartbeat", seq="o4")]
            ws.send(b"".join(text(f) for f in frames))
            got = []
            while len(got) < 4:
                m = next_json(ws)
                if m["cmd"] in ("enter", "exit"):               # an earlier test's user leaving
                    continue
                if m["cmd"] == "msg":
                    self.assertEqual(got, ["o1"])              # the replay follows the login reply
                    continue
                got.append((m["seq"], m["response"]["code"]) if m["seq"] != "o1" else "o1")
            self.assertEqual(got, ["o1", ("o2", 200), ("o3", 1009), ("o4", 200)])
        finally:
            ws.close()

    def test_queued_commands_survive_a_second_login(self):
        """login, logout, login, ping, ping pipelined: every one is answered,
        in order (the pings wait for the second login)."""
        node = self.node
        send(node, "dq1", "dq-stored", "waiting")
        ws = RawWS(node.ws_port)
        try:
            login_data = {"serviceToken": "", "appID": 101, "userID": "dq1"}
            frames = [cmd_json("login", login_data, seq="a"), cmd_json("logout", seq="b"),
                      cmd_json("login", login_data, seq="c"), cmd_json("ping", seq="d"),
                      cmd_json("ping", seq="e")]
            ws.send(b"".join(text(f) for f in frames))
            got = []
            while len(got) < 5:
                m = next_json(ws)
                if m["cmd"] != "msg":
                    got.append((m["seq"], m["response"]["code"]))
            self.assertEqual(got, [("a", 200), ("b", 200), ("c", 200), ("d", 200), ("e", 200)])
        finally:
            ws.close()

    def test_own_room_sends_are_not_replayed(self):
        """Live room pushes skip their sender; so does a lastRoomID replay."""
        node = self.node
        other, _ = login(node, "rm-other", app=102)
        ws, _ = login(node, "rm1", app=102)
        send(node, "rm-other", "rm-first", "first", app=102, room=True)
        before, first = pushes_until(ws, "rm-first", with_marker=True)
        ws.close()
        wait_until(lambda: node.state()["loggedIn"] == 1, what="rm1's socket gone")
        send(node, "rm1", "rm-own", "mine", app=102, room=True)
        send(node, "rm-other", "rm-theirs", "theirs", app=102, room=True)
        ws, reply = login(node, "rm1", app=102, lastRoomID=first["response"]["data"]["id"])
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": True})
            send(node, "rm1", "rm-mark", "marker", app=102)
            got = [m["seq"] for m in pushes_until(ws, "rm-mark") if m["cmd"] == "msg"]
            self.assertEqual(got, ["rm-theirs"])
        finally:
            ws.close()
            other.close()

    def test_bad_ids_and_ack_before_login(self):
        node = self.node
        ws = RawWS(node.ws_port)
        try:
            ws.send(text(cmd_json("ack", {"id": "1-0"}, seq="a0")))
            self.assertEqual(next_json(ws)["response"]["code"], 1000)
            for bad in ("x", "1-", "-1", "1-2-3", 12, "99999999999999999999999-1"):
                ws.send(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "bad1",
                                                "lastID": bad}, seq="b")))
                self.assertEqual(next_json(ws)["response"]["code"], 1001, bad)
            # an id from the future (the node lost its memory): everything kept, and a gap
            ws.send(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "bad1",
                                            "lastID": "99999999999999-0"}, seq="f")))
            r = next_json(ws)
            self.assertEqual((r["response"]["code"], r["response"]["data"]), (200, {"recovered": False}))
            ws.send(text(cmd_json("ack", {"id": "nope"}, seq="a1")))
            self.assertEqual(next_json(ws)["response"]["code"], 1001)
            ws.send(text(cmd_json("ack", {}, seq="a2")))
            self.assertEqual(next_json(ws)["response"]["code"], 1001)
        finally:
            ws.close()


class HistoryTest(NodeCase):
    def test_inbox_and_room_history_paged(self):
        node = self.node
        for i in range(7):
            send(node, "hist1", "h-%d" % i, "inbox %d" % i, app=104)
        for i in range(3):
            send(node, "hsender", "hr-%d" % i, "room %d" % i, app=104, room=True)
        page = node.api("/user/history", params={"appID": 104, "userID": "hist1", "limit": 5})
        msgs = page["data"]["messages"]
        self.assertEqual([m["msg"] for m in msgs], ["inbox %d" % i for i in range(5)])
        self.assertEqual(set(msgs[0]), {"id", "from", "msg", "type", "time"})
        self.assertEqual(page["data"]["nextID"], msgs[-1]["id"])
        rest = node.api("/user/history", params={"appID": 104, "userID": "hist1",
                                                 "after": page["data"]["nextID"]})
        self.assertEqual([m["msg"] for m in rest["data"]["messages"]], ["inbox 5", "inbox 6"])
        self.assertNotIn("nextID", rest["data"])
        room = node.api("/user/history", params={"appID": 104})
        self.assertEqual([(m["from"], m["msg"]) for m in room["data"]["messages"]],
                         [("hsender", "room %d" % i) for i in range(3)])

    def test_bad_parameters(self):
        node = self.node
        for params in ({"appID": 101, "after": "nope"}, {"appID": 101, "limit": 0},
                       {"appID": 101, "limit": 99999999999999}):
            r = node.api("/user/history", params=params)
            self.assertEqual(r["code"], 1001, (params, r))


class ResumeTest(NodeCase):
    ARGS = ("--set", "delivery.inboxMax=25")

    def test_resume_exactly_what_was_missed(self):
        """A client reads 10 messages, drops its socket, 20 more are sent (10
        to it, 10 to its room), it comes back with lastID / lastRoomID: exactly
        the 20, in order, nothing twice, recovered:true."""
        node = self.node
        sender, _ = login(node, "rs-sender", app=103)
        ws, _ = login(node, "rs1", app=103)
        for i in range(5):
            send(node, "rs1", "p1-%d" % i, "one %d" % i, app=103)
            send(node, "rs-sender", "p1-r%d" % i, "room %d" % i, app=103, room=True)
        send(node, "rs1", "p1-mark", "mark", app=103)
        last_room = None
        before, marker = pushes_until(ws, "p1-mark", with_marker=True)
        last_id = marker["response"]["data"]["id"]         # the last inbox message read
        for m in before:
            if m["cmd"] == "msg" and m["seq"].startswith("p1-r"):
                last_room = m["response"]["data"]["id"]
        ws.close()
        wait_until(lambda: node.state()["loggedIn"] == 1, what="rs1's socket gone")
        # the marker is the last inbox message the client read
        self.assertIsNotNone(last_room)
        expected = []
        for i in range(10):
            send(node, "rs1", "p2-%d" % i, "two %d" % i, app=103)
            expected.append("p2-%d" % i)
            send(node, "rs-sender", "p2-r%d" % i, "room two %d" % i, app=103, room=True)
            expected.append("p2-r%d" % i)
        ws2, reply = login(node, "rs1", app=103, lastID=last_id, lastRoomID=last_room)
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": True}, reply)
            send(node, "rs1", "p3-live", "live", app=103)
            got = [m["seq"] for m in pushes_until(ws2, "p3-live") if m["cmd"] == "msg"]
            self.assertEqual(got, expected)
        finally:
            ws2.close()
            sender.close()

    def test_older_than_retention_is_not_recovered(self):
        node = self.node
        for i in range(30):                                # inboxMax is 25
            r = send(node, "rt1", "rt-%d" % i, "m%d" % i)
            self.assertTrue(r["data"].get("stored"), r)
        ws, reply = login(node, "rt1", lastID="1-0")
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": False}, reply)
            send(node, "rt1", "rt-live", "live")
            got = [m["seq"] for m in pushes_until(ws, "rt-live") if m["cmd"] == "msg"]
            self.assertEqual(got, ["rt-%d" % i for i in range(5, 30)])
        finally:
            ws.close()


class RestartTest(unittest.TestCase):
    """delivery.dir: the logs are on disk, a restart loses nothing."""

    def restart_keeps(self, sig):
        import signal
        import tempfile
        d = tempfile.mkdtemp(prefix="imgate-dlog-")
        args = ("--set", "delivery.dir=%s" % d)
        node = Node(*args)
        try:
            for i in range(3):
                r = send(node, "rs-%d" % sig, "keep-%d-%d" % (sig, i), "kept %d" % i)
                self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
            send(node, "roomer", "keep-room-%d" % sig, "room kept", room=True)
        finally:
            node.stop(check=(sig == signal.SIGTERM), sig=sig)
        node = Node(*args)
        try:
            ws, _ = login(node, "rs-%d" % sig)
            send(node, "rs-%d" % sig, "after-%d" % sig, "after restart")
            got = pushes_until(ws, "after-%d" % sig)
            self.assertEqual([m["seq"] for m in got], ["keep-%d-%d" % (sig, i) for i in range(3)])
            ids = [m["response"]["data"]["id"] for m in got]
            ws.close()
            room = node.api("/user/history", params={"appID": 101})["data"]["messages"]
            self.assertEqual([m["msg"] for m in room], ["room kept"])
            # new ids stay above the stored ones
            inbox = node.api("/user/history", params={"appID": 101, "userID": "rs-%d" % sig})
            last = inbox["data"]["messages"][-1]["id"]
            self.assertGreater(tuple(int(x) for x in last.split("-")),
                               tuple(int(x) for x in ids[-1].split("-")))
        finally:
            node.stop()

    def test_sigterm(self):
        import signal
        self.restart_keeps(signal.SIGTERM)

    def test_kill_9(self):
        import signal
        self.restart_keeps(signal.SIGKILL)


class AckRequiredTest(NodeCase):
    ARGS = ("--set", "delivery.ackRequired=true")

    def test_unacked_push_is_pushed_again(self):
        node = self.node
        ws, _ = login(node, "ack1")
        self.assertTrue(send(node, "ack1", "ack-1", "please ack")["data"]["sendResults"])
        self.assertEqual(next_json(ws)["seq"], "ack-1")     # pushed, read, but never acked
        ws.close()
        wait_until(lambda: node.state()["loggedIn"] == 0, what="ack1's socket gone")
        ws, _ = login(node, "ack1")
        try:
            m = next_json(ws)
            self.assertEqual(m["seq"], "ack-1")              # again: at least once
            ws.send(text(cmd_json("ack", {"id": m["response"]["data"]["id"]}, seq="k")))
            self.assertEqual(next_json(ws)["response"]["code"], 200)
        finally:
            ws.close()
        wait_until(lambda: node.state()["loggedIn"] == 0, what="the second socket gone")
        ws, _ = login(node, "ack1")
        try:
            send(node, "ack1", "ack-mark", "marker")
            self.assertEqual(pushes_until(ws, "ack-mark"), [])  # acked: not again
        finally:
            ws.close()


class SweepTest(NodeCase):
    """Retention also reaches logs nobody touches: entries past their age
    go, and a log left empty is freed (the node's memory does not keep every
    user that ever got a message)."""
    ARGS = ("--set", "delivery.inboxTTL=1", "--set", "delivery.roomHistoryTTL=1")

    def test_idle_logs_are_emptied_and_freed(self):
        node = self.node
        for i in range(3):
            r = send(node, "sw%d" % i, "sw-%d" % i, "soon gone")
            self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
        send(node, "sw-sender", "sw-room", "soon gone too", room=True)
        s = node.state()
        self.assertEqual((s["deliveryLogs"], s["deliveryEntries"]), (4, 4), s)
        # nothing touches them: the node's sweep drops the entries and the logs
        wait_until(lambda: (lambda s: (s["deliveryLogs"], s["deliveryEntries"]))(node.state()) == (0, 0),
                   timeout=15, what="the idle logs swept away")
        # a new log for sw0: a resume from the swept one has a gap
        send(node, "sw0", "sw-new", "new")
        ws, reply = login(node, "sw0", lastID="1-0")
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": False})   # gone: a gap
            send(node, "sw0", "sw-mark", "marker")
            self.assertEqual([m["seq"] for m in pushes_until(ws, "sw-mark")], ["sw-new"])
        finally:
            ws.close()


class DisabledTest(NodeCase):
    ARGS = ("--set", "delivery.enabled=false")

    def test_original_behaviour(self):
        node = self.node
        r = send(node, "dis1", "dis-1", "lost")
        self.assertEqual(r["data"], {"sendResults": False})
        ws, _ = login(node, "dis1")
        try:
            # nothing stored, and the msgID of a send that answered false
            # stays unused: the retry is delivered
            r = send(node, "dis1", "dis-1", "lost")
            self.assertEqual(r["data"], {"sendResults": True})
            got = pushes_until_msg(ws, "dis-1")
            self.assertNotIn("id", got["response"]["data"])
        finally:
            ws.close()


def pushes_until_msg(ws, seq):
    while True:
        m = next_json(ws)
        if m.get("seq") == seq:
            return m


if __name__ == "__main__":
    main(sys.modules[__name__])
