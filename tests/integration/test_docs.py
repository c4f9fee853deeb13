"""The documentation: README.md and docs/*.md.

LinksTest: every relative link (inline `[text](target)`, images, reference
definitions `[name]: target`) resolves to a file or folder inside the
repository, and a `#anchor` on a Markdown file names one of its headings
(GitHub's heading ids). No link leaves the repository: a link to an
http(s) address fails, and so does a bare http(s) address in the prose
unless it names the reader's own machine or an example domain
(127.0.0.1, localhost, example.com), which is an address to type, not a
place to go. Code blocks and code spans are not links and are skipped.

TourTest: the README's section "A five-minute tour", run against a fresh
node started with config/app.yaml (what `make run` starts). Its fenced
blocks are taken in order:
- a ```sh block: every line starting with `curl` (joined with the lines
  that follow while it ends with a backslash) is run with `curl -s`, its
  `127.0.0.1:8080` rewritten to the test node's HTTP port; the answer it
  documents is the block of lines right after it that start with "# ",
  whose text (without the "# ") is one JSON document; the output must equal
  it once both are parsed. A curl line without such an answer fails.
- a ```js block: the client, run where it stands with Node.js (its
  `127.0.0.1:8089` rewritten to the node's WebSocket port), and kept running
  until the end; the tour goes on once it printed its first line.
- a ```text block: everything the client printed, line by line, compared
  exactly after the last step.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, SLOW, NodeCase, main, wait_until  # noqa: E402

DOCS = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
                              if f.endswith(".md"))
# Hosts a bare address in the prose may name: the reader's machine and
# example names. Links (inline or reference) may name no host at all.
LOCAL_HOSTS = re.compile(r"^(127\.0\.0\.1|localhost|(?:[a-z0-9-]+\.)*example\.com)(:\d+)?$")

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
BARE_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s)>\]]+", re.I)


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def prose(text):
    """The text without fenced code blocks, HTML comments and code spans
    (each span becomes `x`, so a link whose text is code keeps its shape)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else line)
    text = "\n".join(out)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "x", text, flags=re.S)


def slug(heading):
    """GitHub's id of a heading: lower case, markup and punctuation dropped,
    spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # a link: its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(rel):
    """The ids of every heading of a Markdown file (repeats get -1, -2 ...)."""
    ids, seen, fenced = set(), {}, False
    for line in read(rel).split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            ids.add(base if n == 0 else "%s-%d" % (base, n))
    return ids


def links(rel):
    text = prose(read(rel))
    return [m.group(1) for m in INLINE_LINK.finditer(text)] + REF_DEF.findall(text)


class LinksTest(unittest.TestCase):
    def test_the_documents_exist(self):
        for rel in ("README.md", "docs/protocol.md", "docs/cluster.md", "docs/operations.md",
                    "docs/benchmarks.md"):
            self.assertIn(rel, DOCS)

    def test_relative_links_resolve_inside_the_repository(self):
        checked = 0
        for rel in DOCS:
            for target in links(rel):
                with self.subTest(doc=rel, link=target):
                    self.assertTrue(target, "%s: an empty link" % rel)
                    self.assertNotRegex(target, r"^[a-z][a-z0-9+.-]*:|^//",
                                        "%s: a link that leaves the repository: %s" % (rel, target))
                    path, _, anchor = target.partition("#")
                    here = os.path.dirname(os.path.join(ROOT, rel))
                    full = os.path.normpath(os.path.join(here, path)) if path else os.path.join(ROOT, rel)
                    self.assertEqual(os.path.commonpath([ROOT, full]), ROOT,
                                     "%s: %s points outside the repository" % (rel, target))
                    self.assertTrue(os.path.exists(full), "%s: %s: no such file" % (rel, target))
                    if anchor and full.endswith(".md"):
                        self.assertIn(anchor, anchors(os.path.relpath(full, ROOT)),
                                      "%s: %s: no such heading" % (rel, target))
                    checked += 1
        self.assertGreater(checked, 20, "the link parser found almost no links")

    def test_no_address_outside_the_repository(self):
        for rel in DOCS:
            for url in BARE_URL.findall(prose(read(rel))):
                host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.I).split("/")[0].split("?")[0]
                with self.subTest(doc=rel, url=url):
                    self.assertRegex(host, LOCAL_HOSTS, "%s: an address outside the repository: %s" % (rel, url))

    def test_the_parser_sees_what_it_should(self):
        """The helpers above, on text whose answer is known."""
        self.assertEqual(slug("The million-connection run: `bench/run.sh c1m`"),
                         "the-million-connection-run-benchrunsh-c1m")
        self.assertEqual(slug("WebSocket (`ws://HOST:8089/acc`)"), "websocket-wshost8089acc")
        text = ("[a](x.md#y) and [`b`](../c) ![i](d.png)\n```\n[no](code.md)\n```\n`[no](span)`\n"
                "[ref]: e.md\n<!-- [no](comment.md) -->\nhttp://127.0.0.1:8080/ https://outside.test/x\n")
        p = prose(text)
        self.assertEqual([m.group(1) for m in INLINE_LINK.finditer(p)] + REF_DEF.findall(p),
                         ["x.md#y", "../c", "d.png", "e.md"])
        self.assertEqual(BARE_URL.findall(p), ["http://127.0.0.1:8080/", "https://outside.test/x"])


def tour_blocks():
    """(language, lines) of every fenced block of the README's tour."""
    text = read("README.md")
    start = text.index("\n## A five-minute tour\n")
    end = text.find("\n## ", start + 1)
    blocks, cur = [], None
    for line in text[start:end if end >= 0 else len(text)].split("\n"):
        m = FENCE.match(line)
        if m and cur is None:
            cur = (line.strip().strip("`~").strip(), [])
        elif m:
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur[1].append(line)
    assert cur is None, "an unclosed code block in the tour"
    return blocks


def curl_steps(lines):
    """(command, expected JSON) of every curl line of a sh block."""
    steps, i = [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("curl"):
            continue
        cmd = line
        while cmd.endswith("\\"):
            cmd = cmd[:-1] + " " + lines[i].strip()
            i += 1
        answer = []
        while i < len(lines) and lines[i].startswith("# "):
            answer.append(lines[i][2:])
            i += 1
        assert answer, "no documented answer after: %s" % cmd
        steps.append((cmd, json.loads("".join(answer))))
    return steps


def node_js():
    """How to run a script that uses the global WebSocket (Node.js 22 has
    it; 20 needs a flag)."""
    probe = subprocess.run(["node", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                           timeout=30)
    return ["node"] if probe.returncode == 0 else ["node", "--experimental-websocket"]


class TourTest(NodeCase):
    ARGS = ("-c", os.path.join(ROOT, "config", "app.yaml"))

    def curl(self, cmd):
        args = shlex.split(cmd)
        self.assertEqual(args[0], "curl")
        http = "127.0.0.1:%d" % self.node.http_port
        rewritten = [a.replace("127.0.0.1:8080", http) for a in args]
        self.assertNotEqual(rewritten, args, "the tour's curl line names no 127.0.0.1:8080: %s" % cmd)
        r = subprocess.run(["curl", "-s", "--max-time", str(10 * SLOW)] + rewritten[1:],
                           capture_output=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, "%s: curl failed: %s" % (cmd, r.stderr))
        return json.loads(r.stdout)

    def test_tour(self):
        blocks = tour_blocks()
        langs = [lang for lang, _ in blocks]
        self.assertEqual(langs.count("js"), 1, langs)
        self.assertEqual(langs.count("text"), 1, langs)
        self.assertLess(langs.index("js"), langs.index("text"))
        printed = [l for lang, lines in blocks if lang == "text" for l in lines if l.strip()]
        tmp = tempfile.mkdtemp(prefix="imgate-tour-")
        client, out_path, ran = None, os.path.join(tmp, "client.out"), 0

        def client_lines():
            with open(out_path) as f:
                return f.read().splitlines()

        try:
            for lang, lines in blocks:
                if lang == "sh":
                    for cmd, want in curl_steps(lines):
                        self.assertEqual(self.curl(cmd), want, cmd)
                        ran += 1
                elif lang == "js":
                    src = "\n".join(lines)
                    ws = "127.0.0.1:%d" % self.node.ws_port
                    self.assertIn("127.0.0.1:8089", src)
                    script = os.path.join(tmp, "tour.mjs")
                    with open(script, "w") as f:
                        f.write(src.replace("127.0.0.1:8089", ws))
                    out = open(out_path, "w")
                    client = subprocess.Popen(node_js() + [script], stdout=out, stderr=subprocess.STDOUT,
                                              cwd=tmp)
                    out.close()
                    wait_until(lambda: client_lines()[:1] == printed[:1] or client.poll() is not None,
                               timeout=20, what="the tour's client to print %r" % printed[:1])
                    self.assertIsNone(client.poll(), "the client exited:\n" + "\n".join(client_lines()))
                elif lang == "text":
                    wait_until(lambda: len(client_lines()) >= len(printed), timeout=20,
                               what="the client to print %d lines" % len(printed))
                    self.assertEqual(client_lines(), printed)
            self.assertGreaterEqual(ran, 5, "the tour has almost no curl lines")
        finally:
            if client is not None and client.poll() is None:
                client.terminate()
                client.wait(timeout=10)


if __name__ == "__main__":
    main(sys.modules[__name__])
