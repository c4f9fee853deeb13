"""Reliable delivery in cluster mode (SPEC 7.1): the inbox, the room
history and the pushed cursor are Redis streams, so a message stored
through one node is delivered at a login on another, also after the first
node died (kill -9); resume with lastID / lastRoomID across nodes; ids
carried between nodes over gRPC; the gate that holds live pushes while a
login's replay is read (nothing lost, nothing twice while messages keep
coming); ackRequired; /user/history from Redis; retention. A real
redis-server and real nodes on 127.0.0.1; absence is proven by order (a
later marker push), never by a quiet window."""

import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, ClusterCase, RawWS, cluster_state, cmd_json, main, text, wait_until  # noqa: E402
import test_delivery as td  # noqa: E402  (its RawWS helpers; its tests are not run here)

login, next_json, pushes_until, send = td.login, td.next_json, td.pushes_until, td.send


def idt(m):
    return tuple(int(x) for x in m["response"]["data"]["id"].split("-"))


class DeliveryCase(ClusterCase):
    """Two nodes (A, B) and one redis-server per class."""

    def logged_in(self, node, n):
        wait_until(lambda: node.state()["loggedIn"] == n, what="%d logged in" % n)


class OfflineTest(DeliveryCase):
    def test_stored_through_a_delivered_at_login_on_b(self):
        a, b = self.nodes
        for i in range(5):
            r = send(a, "co1", "co1-%d" % i, "stored %d" % i)
            self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
        self.assertEqual(self.redis.cmd("XLEN", "acc:user:inbox:101_co1"), 5)
        ws, reply = login(b, "co1")
        try:
            self.assertEqual(reply["response"]["code"], 200)
            self.assertIsNone(reply["response"]["data"])          # legacy login: unchanged reply
            r = send(a, "co1", "co1-live", "live")                # through A, over gRPC to B
            self.assertEqual(r["data"], {"sendResults": True}, r)
            got, live = pushes_until(ws, "co1-live", with_marker=True)
            self.assertEqual([m["seq"] for m in got], ["co1-%d" % i for i in range(5)])
            self.assertEqual([m["response"]["data"]["msg"] for m in got],
                             ["stored %d" % i for i in range(5)])
            ids = [idt(m) for m in got] + [idt(live)]
            self.assertEqual(ids, sorted(set(ids)))                # ids from B's push too
        finally:
            ws.close()
        self.logged_in(b, 0)
        # pushed once: the cursor in Redis says so; the next login (on A) gets nothing old
        wait_until(lambda: self.redis.cmd("GET", "acc:user:cursor:101_co1") == live["response"]["data"]["id"],
                   what="the cursor at the last pushed id (written by B's link after the push)")
        ws, _ = login(a, "co1")
        try:
            send(b, "co1", "co1-m2", "marker")
            self.assertEqual(pushes_until(ws, "co1-m2"), [])
        finally:
            ws.close()

    def test_room_history_is_shared(self):
        a, b = self.nodes
        for i in range(3):
            send(a, "cr-sender", "cr-%d" % i, "room %d" % i, app=102, room=True)
        hist = b.api("/user/history", params={"appID": 102})["data"]["messages"]
        self.assertEqual([(m["from"], m["msg"]) for m in hist],
                         [("cr-sender", "room %d" % i) for i in range(3)])
        ws, _ = login(b, "cr-reader", app=102, lastRoomID=hist[0]["id"])
        try:
            send(a, "cr-reader", "cr-mark", "marker", app=102)
            got = pushes_until(ws, "cr-mark")
            self.assertEqual([m["seq"] for m in got], ["cr-1", "cr-2"])
            self.assertEqual([m["response"]["data"]["id"] for m in got], [hist[1]["id"], hist[2]["id"]])
        finally:
            ws.close()

    def test_history_api_pages_from_redis(self):
        a, b = self.nodes
        for i in range(7):
            send(a, "ch1", "ch-%d" % i, "inbox %d" % i, app=104)
        page = b.api("/user/history", params={"appID": 104, "userID": "ch1", "limit": 5})
        msgs = page["data"]["messages"]
        self.assertEqual([m["msg"] for m in msgs], ["inbox %d" % i for i in range(5)])
        self.assertEqual(set(msgs[0]), {"id", "from", "msg", "type", "time"})
        self.assertEqual(page["data"]["nextID"], msgs[-1]["id"])
        rest = b.api("/user/history", params={"appID": 104, "userID": "ch1",
                                              "after": page["data"]["nextID"]})
        self.assertEqual([m["msg"] for m in rest["data"]["messages"]], ["inbox 5", "inbox 6"])
        self.assertNotIn("nextID", rest["data"])
        for params in ({"appID": 104, "after": "nope"}, {"appID": 104, "limit": 0}):
            self.assertEqual(b.api("/user/history", params=params)["code"], 1001, params)

    def test_scripts_are_loaded_again_after_a_script_flush(self):
        """The scripts run by SHA1; a Redis that lost them (SCRIPT FLUSH)
        answers NOSCRIPT once (a clear error), then the node loads them again."""
        a, b = self.nodes
        self.assertEqual(self.redis.cmd("SCRIPT", "FLUSH"), "OK")
        r = send(a, "csf1", "csf-0", "first")
        self.assertNotEqual(r["code"], 200, r)
        self.assertIn("NOSCRIPT", r["msg"], r)
        n = [0]

        def stored():
            n[0] += 1
            return send(a, "csf1", "csf-%d" % n[0], "again")["data"] == {"sendResults": False, "stored": True}
        wait_until(stored, what="sends logged again")
        self.assertEqual(self.redis.cmd("XLEN", "acc:user:inbox:101_csf1"), 1)

    def test_bad_ids(self):
        a, b = self.nodes
        ws = RawWS(b.ws_port)
        try:
            ws.send(text(cmd_json("ack", {"id": "1-0"}, seq="a0")))
            self.assertEqual(next_json(ws)["response"]["code"], 1000)      # before login
            for bad in ("x", "1-", "1-2-3", 12):
                ws.send(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "cb1",
                                                "lastID": bad}, seq="b")))
                self.assertEqual(next_json(ws)["response"]["code"], 1001, bad)
            send(a, "cb1", "cb-kept", "kept")
            # an id from the future: everything kept, and a gap
            ws.send(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "cb1",
                                            "lastID": "99999999999999-0"}, seq="f")))
            r = next_json(ws)
            self.assertEqual((r["response"]["code"], r["response"]["data"]), (200, {"recovered": False}))
            self.assertEqual(next_json(ws)["seq"], "cb-kept")
            ws.send(text(cmd_json("ack", {"id": "nope"}, seq="a1")))
            self.assertEqual(next_json(ws)["response"]["code"], 1001)
        finally:
            ws.close()


class ResumeTest(DeliveryCase):
    ARGS = ("--set", "delivery.inboxMax=25")

    def test_resume_on_the_other_node_exactly_what_was_missed(self):
        """Reads 10 messages on A, drops its socket, 20 more are sent (10 to
        it, 10 to its room, through B), comes back on B with lastID and
        lastRoomID: exactly the 20, in order, nothing twice, recovered:true."""
        a, b = self.nodes
        sender, _ = login(b, "crs-sender", app=103)
        ws, _ = login(a, "crs1", app=103)
        for i in range(5):
            send(a, "crs1", "q1-%d" % i, "one %d" % i, app=103)
            send(b, "crs-sender", "q1-r%d" % i, "room %d" % i, app=103, room=True)
        send(b, "crs1", "q1-mark", "mark", app=103)
        before, marker = pushes_until(ws, "q1-mark", with_marker=True)
        last_id = marker["response"]["data"]["id"]
        last_room = [m for m in before if m["seq"].startswith("q1-r")][-1]["response"]["data"]["id"]
        ws.close()
        self.logged_in(a, 0)
        expected = []
        for i in range(10):
            send(b, "crs1", "q2-%d" % i, "two %d" % i, app=103)
            send(b, "crs-sender", "q2-r%d" % i, "room two %d" % i, app=103, room=True)
            expected += ["q2-%d" % i, "q2-r%d" % i]
        ws2, reply = login(b, "crs1", app=103, lastID=last_id, lastRoomID=last_room)
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": True}, reply)
            send(a, "crs1", "q3-live", "live", app=103)
            got = [m["seq"] for m in pushes_until(ws2, "q3-live") if m["cmd"] == "msg"]
            self.assertEqual(got, expected)
        finally:
            ws2.close()
            sender.close()

    def test_older_than_retention_is_not_recovered(self):
        a, b = self.nodes
        for i in range(30):                                    # inboxMax is 25
            self.assertTrue(send(a, "crt1", "crt-%d" % i, "m%d" % i)["data"].get("stored"))
        self.assertEqual(self.redis.cmd("XLEN", "acc:user:inbox:101_crt1"), 25)
        ws, reply = login(b, "crt1", lastID="1-0")
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": False}, reply)
            send(a, "crt1", "crt-live", "live")
            got = [m["seq"] for m in pushes_until(ws, "crt-live") if m["cmd"] == "msg"]
            self.assertEqual(got, ["crt-%d" % i for i in range(5, 30)])
        finally:
            ws.close()

class ExpiryTest(DeliveryCase):
    """Logs whose Redis key expired: a resume from before the expiry has a
    gap; /user/history skips entries past the age limit at the head."""
    ARGS = ("--set", "delivery.inboxTTL=2")

    def test_resume_from_an_expired_log_has_a_gap(self):
        a, b = self.nodes
        ws, _ = login(a, "ce1")
        send(b, "ce1", "ce-0", "seen")
        first = next_json(ws)
        ws.close()
        self.logged_in(a, 0)
        send(b, "ce1", "ce-1", "lost with the key")
        self.assertEqual(self.redis.cmd("DEL", "acc:user:inbox:101_ce1"), 1)   # as EXPIRE would
        send(b, "ce1", "ce-2", "in a new stream")
        ws, reply = login(a, "ce1", lastID=first["response"]["data"]["id"])
        try:
            self.assertEqual(reply["response"]["data"], {"recovered": False}, reply)
            self.assertEqual(next_json(ws)["seq"], "ce-2")
        finally:
            ws.close()

    def test_history_pages_past_aged_entries(self):
        a, b = self.nodes
        for i in range(3):
            send(a, "ch2", "ch2-old-%d" % i, "old %d" % i)
        wait_until(lambda: b.api("/user/history", params={"appID": 101, "userID": "ch2"})["data"]["messages"] == [],
                   timeout=10, what="the first entries past inboxTTL")
        for i in range(2):
            send(a, "ch2", "ch2-new-%d" % i, "new %d" % i)
        page = b.api("/user/history", params={"appID": 101, "userID": "ch2", "limit": 2})["data"]
        self.assertEqual([m["msg"] for m in page["messages"]], ["new 0", "new 1"], page)
        self.assertNotIn("nextID", page)


class GateTest(DeliveryCase):
    def test_reconnecting_while_messages_keep_coming(self):
        """A sender pushes 150 messages through A while the client, on B,
        keeps dropping its socket and resuming with lastID: at the end it
        has every message exactly once, in order (the gate holds what comes
        during a replay and drops what the replay already had)."""
        a, b = self.nodes
        total = 150
        errors = []

        def sender():
            try:
                for i in range(total):
                    send(a, "cg1", "cg-%d" % i, "m%d" % i)
            except Exception as e:                     # noqa: B902 - reported below
                errors.append(e)
        t = threading.Thread(target=sender)
        seen, last = [], None
        t.start()
        try:
            for round_ in range(60):
                extra = {"lastID": last} if last else {}
                ws, reply = login(b, "cg1", seq="L%d" % round_, **extra)
                self.assertEqual(reply["response"]["code"], 200, reply)
                if last:
                    self.assertEqual(reply["response"]["data"], {"recovered": True}, reply)
                for _ in range(3):                     # read a few, then drop the socket
                    if len(seen) == total:
                        break
                    m = next_json(ws)
                    self.assertEqual(m["cmd"], "msg", m)
                    seen.append(m["seq"])
                    last = m["response"]["data"]["id"]
                ws.close()
                self.logged_in(b, 0)
                if len(seen) == total:
                    break
        finally:
            t.join(60)
        self.assertEqual(errors, [])
        if len(seen) < total:                          # the sender was faster: the rest
            ws, _ = login(b, "cg1", lastID=last)
            try:
                while len(seen) < total:
                    seen.append(next_json(ws)["seq"])
            finally:
                ws.close()
        self.assertEqual(seen, ["cg-%d" % i for i in range(total)])


class AckRequiredTest(DeliveryCase):
    ARGS = ("--set", "delivery.ackRequired=true")

    def test_unacked_push_is_pushed_again_on_the_other_node(self):
        a, b = self.nodes
        ws, _ = login(a, "cak1")
        self.assertTrue(send(b, "cak1", "cak-1", "please ack")["data"]["sendResults"])
        self.assertEqual(next_json(ws)["seq"], "cak-1")      # read, never acked
        ws.close()
        self.logged_in(a, 0)
        ws, _ = login(b, "cak1")
        try:
            m = next_json(ws)
            self.assertEqual(m["seq"], "cak-1")                # again: at least once
            ws.send(text(cmd_json("ack", {"id": m["response"]["data"]["id"]}, seq="k")))
            self.assertEqual(next_json(ws)["response"]["code"], 200)
        finally:
            ws.close()
        self.logged_in(b, 0)
        # the ack is written by B's Redis link; a login on A reads through its own
        wait_until(lambda: self.redis.get("acc:user:cursor:101_cak1") == m["response"]["data"]["id"],
                   what="the ack in Redis")
        ws, _ = login(a, "cak1")
        try:
            send(b, "cak1", "cak-mark", "marker")
            self.assertEqual(pushes_until(ws, "cak-mark"), [])  # acked: not again
        finally:
            ws.close()


class LegacyReadTest(DeliveryCase):
    """A legacy login (no lastID) whose inbox has nothing after the pushed
    cursor is read with GET + XINFO STREAM instead of the replay script;
    anything else still runs the script."""

    def test_nothing_new_reads_without_the_script(self):
        a, b = self.nodes
        r = send(a, "lr1", "lr1-0", "stored")
        self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
        ws, _ = login(b, "lr1")
        try:
            send(a, "lr1", "lr1-m", "marker")
            # messages only: the exit of lr2 (the test before, same node and
            # room) may reach lr1 after its login (announced once Redis
            # answered the leave)
            self.assertEqual([m["seq"] for m in pushes_until(ws, "lr1-m") if m["cmd"] == "msg"],
                             ["lr1-0"])
        finally:
            ws.close()
        self.logged_in(b, 0)
        # everything pushed: the cursor is the inbox's newest id
        last = self.redis.cmd("XREVRANGE", "acc:user:inbox:101_lr1", "+", "-", "COUNT", "1")[0][0]
        last = last.decode() if isinstance(last, bytes) else last
        wait_until(lambda: self.redis.get("acc:user:cursor:101_lr1") in (last, last.encode()),
                   what="the cursor at the inbox's newest id")
        before = self.redis.calls("evalsha")
        ws, reply = login(a, "lr1")                 # nothing new
        try:
            self.assertEqual(reply["response"]["code"], 200, reply)
            self.assertEqual(self.redis.calls("evalsha"), before, "a replay script ran for nothing new")
            send(b, "lr1", "lr1-m2", "marker")
            self.assertEqual(pushes_until(ws, "lr1-m2"), [])
        finally:
            ws.close()
        self.logged_in(a, 0)

    def test_cursor_ahead_of_a_new_log_replays_it_all(self):
        """A cursor newer than the inbox (the log expired and was made
        anew): the script replays the whole new log."""
        a, b = self.nodes
        self.redis.cmd("SET", "acc:user:cursor:101_lr2", "9999999999999-0")
        for i in range(2):
            r = send(a, "lr2", "lr2-%d" % i, "stored %d" % i)
            self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
        ws, _ = login(b, "lr2")
        try:
            send(a, "lr2", "lr2-m", "marker")
            self.assertEqual([m["seq"] for m in pushes_until(ws, "lr2-m")], ["lr2-0", "lr2-1"])
        finally:
            ws.close()
        self.logged_in(b, 0)


class PeerBackoffTest(DeliveryCase):
    """A peer that failed calls is skipped for a while (cluster.peerBackoff),
    but never for a logged room push: its room members would miss it live
    and the next push's id would carry their lastRoomID past it."""
    # B stays a live node of the registry while it is stopped (60 s)
    ARGS = ("--set", "cluster.rpcTimeout=%d" % (1000 * SLOW), "--set", "cluster.serverTimeout=60")

    def skipped_ms(self, a, peer):
        for p in cluster_state(a)["peers"]:
            if p["peer"] == peer:
                return p["skippedForMs"]
        return 0

    def test_room_push_reaches_a_peer_in_back_off(self):
        a, b = self.nodes
        peer_b = cluster_state(b)["self"]
        ws, reply = login(b, "bo-member")
        try:
            self.assertEqual(reply["response"]["code"], 200)
            send(a, "bo-sender", "bo-0", "before", room=True)
            pushes_until(ws, "bo-0")                       # A -> B -> the member, while healthy
            b.proc.send_signal(signal.SIGSTOP)
            try:
                # calls that may be skipped (GetUserList) fail until A skips B
                # for 4 s (1 s, then 2 s, then 4 s: the back-off doubles)
                def long_skip():
                    if self.skipped_ms(a, peer_b) >= 3000:
                        return True
                    a.api("/user/list", params={"appID": 101})
                    return False
                wait_until(long_skip, timeout=60, what="A skipping B for 3 s or more")
            finally:
                b.proc.send_signal(signal.SIGCONT)
            left = self.skipped_ms(a, peer_b)
            self.assertGreater(left, 1000, "still skipped when the room push goes out")
            r = send(a, "bo-sender", "bo-1", "during the back-off", room=True)
            self.assertEqual(r["code"], 200, r)
            got, m = pushes_until(ws, "bo-1", with_marker=True)
            self.assertEqual(m["response"]["data"]["msg"], "during the back-off")
            self.assertEqual([x for x in got if x["cmd"] == "msg"], [])
        finally:
            ws.close()


class NodeDeathTest(DeliveryCase):
    N = 3

    def test_stored_through_a_node_killed_then_login_elsewhere(self):
        a, b, c = self.nodes
        for i in range(3):
            r = send(a, "cd1", "cd-%d" % i, "before the crash %d" % i)
            self.assertEqual(r["data"], {"sendResults": False, "stored": True}, r)
        a.stop(check=False, sig=signal.SIGKILL)
        self.nodes.remove(a)                               # not stopped again at the end
        ws, _ = login(b, "cd1")
        try:
            send(c, "cd1", "cd-live", "after")
            got = pushes_until(ws, "cd-live")
            self.assertEqual([m["seq"] for m in got], ["cd-%d" % i for i in range(3)])
        finally:
            ws.close()


class RedisBackTest(DeliveryCase):
    """A login while the node's Redis link is down (a node that just
    started, or Redis restarting) waits for the link, up to
    cluster.redisTimeout, and then gets its replay."""
    N = 1
    ARGS = ("--set", "cluster.redisTimeout=15000")

    def test_login_waits_for_redis_and_gets_its_replay(self):
        node, = self.nodes
        for i in range(3):
            self.assertTrue(send(node, "cw1", "cw-%d" % i, "kept %d" % i)["data"].get("stored"))
        self.assertEqual(self.redis.cmd("SAVE"), "OK")         # restarted below from this file
        self.redis.stop()
        wait_until(lambda: cluster_state(node)["redis"] == "down", what="the node's link down")
        ws = RawWS(node.ws_port)
        try:
            ws.send(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": "cw1"}, seq="L")))
            wait_until(lambda: node.state()["loggedIn"] == 1, what="the login under way")
            self.redis.start()
            reply = next_json(ws)
            self.assertEqual((reply["seq"], reply["response"]["code"]), ("L", 200), reply)
            got = [next_json(ws)["seq"] for _ in range(3)]
            self.assertEqual(got, ["cw-%d" % i for i in range(3)])
        finally:
            ws.close()


class ReadFailureBase(DeliveryCase):
    """One node; its Redis link gives up after 1 s (cluster.redisTimeout)."""
    N = 1
    ARGS = ("--set", "cluster.redisTimeout=1000")

    def login_while_redis_stops(self, node, user):
        """Logs user in while Redis is stopped: the link gives up after
        cluster.redisTimeout, the login is answered without a replay; then
        Redis goes on and the link comes back. Returns the socket."""
        self.redis.proc.send_signal(signal.SIGSTOP)
        stopped = [True]

        def cont():
            if stopped[0]:
                stopped[0] = False
                self.redis.proc.send_signal(signal.SIGCONT)
        self.addCleanup(cont)
        ws = RawWS(node.ws_port)
        ws.send(text(cmd_json("login", {"serviceToken": "", "appID": 101, "userID": user}, seq="L")))
        reply = next_json(ws)
        self.assertEqual((reply["seq"], reply["response"]["code"]), ("L", 200), reply)
        cont()
        wait_until(lambda: cluster_state(node)["redis"] == "up", what="the link up again")
        return ws


class ReadFailureTest(ReadFailureBase):
    """A login's replay read that Redis does not answer: a lost script
    cache is read again with the script's text (the replay comes); after a
    read that fails (Redis stopped past cluster.redisTimeout) the login is
    served without a replay, and its pushes never move the cursor (they
    count as stored, not pushed), so the next login replays what this one
    missed."""

    def test_noscript_read_again_with_the_text(self):
        node, = self.nodes
        for i in range(2):
            self.assertTrue(send(node, "crf1", "crf1-%d" % i, "kept %d" % i)["data"].get("stored"))
        self.assertEqual(self.redis.cmd("SCRIPT", "FLUSH"), "OK")
        ws, reply = login(node, "crf1")
        try:
            self.assertEqual(reply["response"]["code"], 200, reply)
            got = [next_json(ws)["seq"] for _ in range(2)]
            self.assertEqual(got, ["crf1-0", "crf1-1"])
            n = [0]

            def live():                            # the send script may need loading again first
                n[0] += 1
                return send(node, "crf1", "crf1-live-%d" % n[0], "live")["data"] == {"sendResults": True}
            wait_until(live, what="a live send")
            self.assertEqual(next_json(ws)["seq"], "crf1-live-%d" % n[0])
        finally:
            ws.close()

    def test_failed_read_never_moves_the_cursor(self):
        node, = self.nodes
        for i in range(2):
            self.assertTrue(send(node, "crf2", "crf2-%d" % i, "kept %d" % i)["data"].get("stored"))
        ws = self.login_while_redis_stops(node, "crf2")
        try:
            # served live, but counted as not pushed: the cursor stays before crf2-0
            n = [0]

            def live():
                n[0] += 1
                return send(node, "crf2", "crf2-live-%d" % n[0], "live")["data"] == \
                    {"sendResults": False, "stored": True}
            wait_until(live, what="a live send, counted as stored")
            m = next_json(ws)
            self.assertEqual(m["seq"], "crf2-live-%d" % n[0])
            ws.send(text(cmd_json("ack", {"id": m["response"]["data"]["id"]}, seq="A")))
            r = next_json(ws)                      # answered, but the cursor stays too
            self.assertEqual((r["seq"], r["response"]["code"]), ("A", 200), r)
        finally:
            ws.close()
        self.logged_in(node, 0)
        ws, reply = login(node, "crf2")            # everything since the cursor, in order
        try:
            want = ["crf2-0", "crf2-1", "crf2-live-%d" % n[0]]
            self.assertEqual([next_json(ws)["seq"] for _ in range(3)], want)
        finally:
            ws.close()


class DisabledTest(DeliveryCase):
    ARGS = ("--set", "delivery.enabled=false")

    def test_original_behaviour(self):
        a, b = self.nodes
        r = send(a, "cx1", "cx-1", "lost")
        self.assertEqual(r["data"], {"sendResults": False})
        self.assertEqual(self.redis.cmd("EXISTS", "acc:user:inbox:101_cx1"), 0)
        ws, _ = login(b, "cx1")
        try:
            wait_until(lambda: a.api("/user/online", params={"appID": 101, "userID": "cx1"})["data"]["online"],
                       what="cx1 online as seen from A")
            self.assertEqual(send(a, "cx1", "cx-2", "live")["data"], {"sendResults": True})
            m = next_json(ws)
            self.assertEqual(m["seq"], "cx-2")
            self.assertNotIn("id", m["response"]["data"])
        finally:
            ws.close()


if __name__ == "__main__":
    main(sys.modules[__name__])
