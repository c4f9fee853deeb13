"""Integration test: the node under valgrind (memcheck) through a whole
session — logins on two workers, enter/exit, every API path, a broadcast, a
malformed frame, a protocol error, a slow close — then SIGTERM. valgrind
must report no errors and no leaked memory.

Not for the sanitizer build (ASan and valgrind do not mix): CMake does not
register it there, and run with IMGATE_SANITIZE=ON it stops at once with an
error. A machine without valgrind fails the test (make deps installs it).
Run: /usr/bin/python3 tests/integration/test_valgrind.py"""

import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SANITIZED, Node, RawWS, close_all, cmd_json, frame, login, main,  # noqa: E402
                     recv_json, request, run, text, wait_until)

VALGRIND = shutil.which("valgrind")

if SANITIZED:
    sys.exit("test_valgrind.py: error: IMGATE_SANITIZE=ON - valgrind cannot run an ASan/UBSan "
             "binary, and this test is not registered in the sanitizer build; run it against the "
             "normal build (IMGATE_BIN=build/imgate, IMGATE_SANITIZE unset)")


class ValgrindTest(unittest.TestCase):
    def test_session_has_no_errors_and_no_leaks(self):
        self.assertIsNotNone(VALGRIND, "valgrind is not installed (make deps / make test install it)")
        log = "valgrind.log"
        node = Node(wrapper=[VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect",
                             "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                             "--log-file=%s" % log],
                    env={"ASAN_OPTIONS": ""})
        log = os.path.join(node.dir, log)
        try:
            async def t():
                a = await login(node, "val-a", open_timeout=60)
                b = await login(node, "val-b", open_timeout=60)
                m = await recv_json(a, timeout=30)
                self.assertEqual(m["cmd"], "enter")
                r = await request(b, "heartbeat")
                self.assertEqual(r["response"]["code"], 200)
                r = node.api("/user/sendMessage", params={"appID": 101, "userID": "val-a",
                                                           "msgID": "v1", "message": "x"}, timeout=60)
                self.assertTrue(r["data"]["sendResults"])
                self.assertEqual((await recv_json(a, timeout=30))["seq"], "v1")
                r = node.api("/user/sendMessageAll", params={"appID": 101, "userID": "val-b",
                                                              "msgID": "v2", "message": "y"}, timeout=60)
                self.assertTrue(r["data"]["sendResults"])
                self.assertEqual((await recv_json(a, timeout=30))["seq"], "v2")
                self.assertEqual(node.api("/user/list", params={"appID": 101},
                                          timeout=60)["data"]["userCount"], 2)
                node.api("/system/state", params={"isDebug": "true"}, timeout=60)
                node.http("/metrics", timeout=60)
                node.http("/home/index", timeout=60)
                await a.send("not json")
                self.assertEqual((await recv_json(a, timeout=30))["response"]["code"], 1001)
                await close_all(b)
                self.assertEqual((await recv_json(a, timeout=30))["cmd"], "exit")
                await close_all(a)
            run(t())
            bad = RawWS(node.ws_port)                    # a protocol error: 1002
            bad.send(frame(0x3, b"reserved opcode"))
            code, _, _ = bad.read_close()
            self.assertEqual(code, 1002)
            bad.close()
            held = RawWS(node.ws_port)                   # still open at shutdown: gets 1001
            held.send(text(cmd_json("login", {"appID": 102, "userID": "val-c"})))
            held.recv_json()
            wait_until(lambda: node.state()["loggedIn"] == 1, timeout=30, what="val-c logged in")
        finally:
            rc = node.stop(check=False, timeout=120)
        with open(log) as f:
            report = f.read()
        self.assertEqual(rc, 0, "exit status %s; valgrind:\n%s" % (rc, report[-6000:]))
        self.assertRegex(report, r"ERROR SUMMARY: 0 errors", report[-6000:])
        for kind in ("definitely", "indirectly"):
            m = re.search(kind + r" lost: ([\d,]+) bytes", report)
            if m:
                self.assertEqual(m.group(1), "0", report[-6000:])
        held.close()


if __name__ == "__main__":
    main(sys.modules[__name__])
