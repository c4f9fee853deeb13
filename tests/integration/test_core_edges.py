"""Integration tests: edges of the connection core (issue "Connection core,
round 2"): the byte bound of msgID de-duplication and its figures in
/system/state and /metrics.

Run: /usr/bin/python3 tests/integration/test_core_edges.py"""

import http.client
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Node, NodeCase, main  # noqa: E402

RUN = "%x%x" % (os.getpid(), int(time.time() * 1000))


def api_get(conn, path, params):
    """One GET on a keep-alive connection; returns the JSON answer."""
    conn.request("GET", path + "?" + urllib.parse.urlencode(params))
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status, body)
    return json.loads(body)


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    assert m, "no metric %s in:\n%s" % (name, text)
    return int(m.group(1))


class DedupByteBoundTest(NodeCase):
    """im.dedupMaxBytes bounds what the remembered msgIDs hold: 255-byte
    msgIDs under a 64 KiB bound keep about 180 of them, not all."""
    CAP = 65536
    ARGS = ("--set", "im.dedupMaxBytes=%d" % CAP)
    SENDS = 400

    def msgid(self, i):
        return ("%s-%d-" % (RUN, i)).ljust(255, "m")

    def send(self, conn, i):
        return api_get(conn, "/user/sendMessageAll",
                       {"appID": 101, "userID": "system", "msgID": self.msgid(i), "message": "x"})

    def test_bytes_bounded_and_reported(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=10 * SLOW)
        try:
            for i in range(self.SENDS):
                r = self.send(conn, i)
                self.assertEqual(r["data"], {"sendResults": True}, r)
            state = self.node.state()
            entries, used = state["dedupEntries"], state["dedupBytes"]
            self.assertEqual(state["limits"]["dedupMaxBytes"], self.CAP)
            self.assertLessEqual(used, self.CAP)
            self.assertGreater(used, self.CAP // 2)
            self.assertLess(entries, self.SENDS)             # the bound forgot some
            self.assertGreater(entries * 255, self.CAP // 2)  # but keeps what fits
            self.assertLessEqual(entries * 255, self.CAP)
            _, _, body = self.node.http("/metrics")
            text = body.decode()
            self.assertEqual(metric(text, "imgate_dedup_entries"), entries)
            self.assertEqual(metric(text, "imgate_dedup_bytes"), used)
            self.assertEqual(metric(text, "imgate_dedup_cap_bytes"), self.CAP)
            # the newest msgID is still remembered, the oldest forgotten
            self.assertEqual(self.send(conn, self.SENDS - 1), {"code": 200, "msg": "Success", "data": {}})
            self.assertEqual(self.send(conn, 0)["data"], {"sendResults": True})
            self.assertLessEqual(self.node.state()["dedupBytes"], self.CAP)
        finally:
            conn.close()


if __name__ == "__main__":
    main(sys.modules[__name__])
