// The cluster issue's "done when", end to end in a browser: one redis-server, two imgate nodes in
// cluster mode and nginx running deploy/nginx.conf (ports and paths rewritten by startNginx), two
// chat pages in headless Chromium (playwright-core) opened through nginx. The pages land on
// different nodes, chat, see each other in the online list and receive pushes sent through either
// node's HTTP API.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test cluster_chat.test.js
//
// /usr/bin/chromium, nginx and redis-server are required (make deps installs them): if one is
// missing, before() fails naming it and every test fails; nothing is ever skipped. Every
// process is started on free loopback ports and stopped by PID in after(); every wait is for a
// positive event or a state polled until it holds, bounded (scaled by SLOW under the
// sanitizers); nothing asserts on timing. Screenshots: artifacts/cluster_chat_a.png and _b.png.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { startNode, startRedis, startNginx, freePort, api, SLOW, WAIT_MS, within, NGINX_BIN,
  requireExecutable } = require('./harness');

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const PAGE_WAIT_MS = 30000 * SLOW;       // generous: the test machines are small and shared
const TEST_TIMEOUT_MS = 180000 * SLOW;
const ROOM = 101;
const RUN = Date.now().toString(36);     // makes every msgID of this run unique

let redis = null;
let nodes = [];
let nginx = null;
let browser = null;
const pages = {};                        // a, b: { context, page, name, node, errors, wsURLs, requests }

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Polls fn until it returns a truthy value (resolved with it); fails naming what after ms.
async function until(fn, what, ms = 2 * WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(100);
  }
}

async function getJSON(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(WAIT_MS) });
  const text = await res.text();
  assert.strictEqual(res.status, 200, `${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

function nodeState(node, debug = false) {
  return getJSON(`${node.httpBase}/system/state${debug ? '?isDebug=true' : ''}`).then((r) => r.data);
}

// The index (0, 1) of the node whose own clients include user, or -1.
async function nodeOf(user) {
  const where = [];
  for (let i = 0; i < nodes.length; i++) {
    const d = await nodeState(nodes[i], true);
    if ((d.clients || []).some((c) => c.userID === user && c.appID === ROOM)) where.push(i);
  }
  assert.ok(where.length <= 1, `${user} is a client of several nodes: ${where}`);
  return where.length ? where[0] : -1;
}

// Waits until user is a client of one of the nodes; resolves with that node's index.
async function whereIs(user) {
  let at = -1;
  await until(async () => { at = await nodeOf(user); return at >= 0; },
    `${user} to show up as a client of a node`);
  return at;
}

function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: PAGE_WAIT_MS,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Opens the chat page through nginx in its own browser context, records its script errors,
// the WebSocket URLs it opens and the URLs it requests; resolves once it is online.
async function openChat() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  const p = { context, page, errors: [], wsURLs: [], requests: [] };
  page.on('pageerror', (err) => p.errors.push(err.message));
  page.on('websocket', (ws) => p.wsURLs.push(ws.url()));
  page.on('request', (req) => p.requests.push(req.url()));
  await page.goto(`${nginx.base}/home/index?appID=${ROOM}`, { timeout: PAGE_WAIT_MS });
  await page.waitForFunction(
    () => document.getElementById('status').textContent.trim() === 'online', null,
    { timeout: PAGE_WAIT_MS });
  p.name = (await page.textContent('#me')).trim();
  assert.match(p.name, /^[a-z]+-\d{4}$/, 'the page picked a random login name');
  return p;
}

function userSelector(name) {
  return `#users li[data-user="${name}"]`;
}

// Resolves with the sender shown on the first message whose text contains text.
async function waitForMessage(p, text) {
  await p.page.waitForFunction(
    (t) => Array.from(document.querySelectorAll('#messages .msg .text'))
      .some((m) => m.textContent === t),
    text, { timeout: PAGE_WAIT_MS });
  return p.page.evaluate((t) => {
    const m = Array.from(document.querySelectorAll('#messages .msg'))
      .find((el) => el.querySelector('.text').textContent === t);
    return { from: m.querySelector('.from').textContent, classes: Array.from(m.classList) };
  }, text);
}

function countMessages(p, text) {
  return p.page.evaluate((t) => Array.from(document.querySelectorAll('#messages .msg .text'))
    .filter((m) => m.textContent === t).length, text);
}

async function send(p, text) {
  await p.page.fill('#input', text);
  await p.page.click('#send', { timeout: PAGE_WAIT_MS });
  await p.page.waitForFunction(() => document.getElementById('input').value === '', null,
    { timeout: PAGE_WAIT_MS });
}

before(async () => {
  requireExecutable(CHROMIUM, 'Chromium (the chat pages are driven in a real browser)');
  requireExecutable(NGINX_BIN, 'nginx (deploy/nginx.conf is what the pages go through)');
  redis = await startRedis();
  const nginxPort = await freePort();
  const args = ['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0',
    '--set', 'cluster.registerInterval=1', '--set', `cluster.serverTimeout=${3 * SLOW}`,
    // the chat page served through nginx calls nginx for the API and the WebSocket
    '--set', `app.httpUrl=127.0.0.1:${nginxPort}`, '--set', `app.webSocketUrl=127.0.0.1:${nginxPort}`];
  nodes.push(await startNode(args));
  nodes.push(await startNode(args));
  const selves = [];
  for (const n of nodes) selves.push((await nodeState(n)).cluster.self);
  assert.notStrictEqual(selves[0], selves[1], 'the nodes have distinct registry entries');
  for (const n of nodes) {
    await until(async () => {
      const servers = (await nodeState(n)).cluster.servers;
      return selves.every((s) => servers.includes(s));
    }, `every node to list both nodes ${selves} in cluster.servers`);
  }
  nginx = await startNginx(nodes, { port: nginxPort });
  browser = await launchBrowser();
});

after(async () => {
  try {
    if (browser) await within(browser.close(), 'the browser to close', PAGE_WAIT_MS).catch(() => {});
  } finally {
    try {
      if (nginx) await nginx.stop();
    } finally {
      try {
        for (const n of nodes) await n.stop();
      } finally {
        if (redis) await redis.stop();
      }
    }
  }
});

test('two pages through nginx log in and land on different nodes', { timeout: TEST_TIMEOUT_MS },
  async () => {
    pages.a = await openChat();
    pages.a.node = await whereIs(pages.a.name);
    // least_conn in the ws upstream: with page A still connected, B goes to the other node.
    pages.b = await openChat();
    assert.notStrictEqual(pages.a.name, pages.b.name, 'the two pages picked different names');
    pages.b.node = await whereIs(pages.b.name);
    assert.notStrictEqual(pages.a.node, pages.b.node,
      `the two users must be on different nodes (${pages.a.name} on node ${pages.a.node + 1}, ` +
      `${pages.b.name} on node ${pages.b.node + 1})`);
    const loggedIn = [];
    for (const n of nodes) loggedIn.push((await nodeState(n)).loggedIn);
    assert.deepStrictEqual(loggedIn, [1, 1], 'one logged-in client per node');
    for (const p of [pages.a, pages.b]) {
      assert.deepStrictEqual(p.wsURLs, [`${nginx.wsBase}/acc`], 'the page\'s WebSocket goes to nginx');
    }
  });

test('each page lists the other user', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const [p, other] of [[pages.a, pages.b], [pages.b, pages.a]]) {
    await p.page.waitForSelector(userSelector(other.name), { timeout: PAGE_WAIT_MS });
    await p.page.waitForSelector(`${userSelector(p.name)}.self`, { timeout: PAGE_WAIT_MS });
    await p.page.waitForFunction(() => document.getElementById('user-count').textContent === '2',
      null, { timeout: PAGE_WAIT_MS });
  }
});

test('a message typed on page A reaches page B (on the other node), and back', { timeout: TEST_TIMEOUT_MS },
  async () => {
    const fromA = `hello from ${pages.a.name} ${RUN}`;
    await send(pages.a, fromA);
    assert.strictEqual((await waitForMessage(pages.b, fromA)).from, pages.a.name);
    const mine = await waitForMessage(pages.a, fromA);          // shown locally
    assert.ok(mine.classes.includes('mine'), `own message marked mine: ${mine.classes}`);

    const fromB = `hi back from ${pages.b.name} ${RUN}`;
    await send(pages.b, fromB);
    assert.strictEqual((await waitForMessage(pages.a, fromB)).from, pages.b.name);
    await waitForMessage(pages.b, fromB);
    assert.strictEqual(await countMessages(pages.b, fromA), 1, 'A\'s message shown once on B');
    assert.strictEqual(await countMessages(pages.a, fromB), 1, 'B\'s message shown once on A');
  });

for (const k of [0, 1]) {
  test(`pushes through node ${k + 1}'s HTTP API reach both pages`, { timeout: TEST_TIMEOUT_MS },
    async () => {
      const node = nodes[k];
      // To each user: one of them is on this node, the other is reached through the other node.
      for (const p of [pages.a, pages.b]) {
        const message = `node ${k + 1} to ${p.name} ${RUN}`;
        const r = await api(node, '/user/sendMessage',
          { appID: ROOM, userID: p.name, msgID: `cc-${RUN}-${k}-${p.name}`, message });
        assert.deepStrictEqual(r, { code: 200, msg: 'Success', data: { sendResults: true } },
          `sendMessage to ${p.name} (on node ${p.node + 1}) through node ${k + 1}`);
        const shown = await waitForMessage(p, message);
        assert.strictEqual(shown.from, 'private message');
      }
      const all = `node ${k + 1} to everyone ${RUN}`;
      const r = await api(node, '/user/sendMessageAll', { appID: ROOM, msgID: `cc-${RUN}-${k}-all`, message: all });
      assert.deepStrictEqual(r, { code: 200, msg: 'Success', data: { sendResults: true } }, 'sendMessageAll');
      for (const p of [pages.a, pages.b]) {
        assert.strictEqual((await waitForMessage(p, all)).from, 'system');
      }
      // Each private push went to its user only (checked after the later broadcast arrived).
      for (const [p, other] of [[pages.a, pages.b], [pages.b, pages.a]]) {
        assert.strictEqual(await countMessages(p, `node ${k + 1} to ${other.name} ${RUN}`), 0,
          `${p.name} must not get ${other.name}'s private push`);
        assert.strictEqual(await countMessages(p, all), 1, 'the broadcast shown once');
      }
    });
}

test('GET /user/list through nginx lists both users, whichever node answers', { timeout: TEST_TIMEOUT_MS },
  async () => {
    const want = [pages.a.name, pages.b.name].sort();
    for (let i = 0; i < 4; i++) {
      const r = await getJSON(`${nginx.base}/user/list?appID=${ROOM}`);
      assert.strictEqual(r.code, 200, JSON.stringify(r));
      assert.deepStrictEqual([...r.data.userList].sort(), want, JSON.stringify(r));
      assert.strictEqual(r.data.userCount, 2, JSON.stringify(r));
    }
  });

test('the pages are clean: only nginx contacted, no script errors, no error notices; screenshots',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const [p, file] of [[pages.a, 'cluster_chat_a.png'], [pages.b, 'cluster_chat_b.png']]) {
      await p.page.screenshot({ path: path.join(ARTIFACTS, file), timeout: PAGE_WAIT_MS });
      assert.deepStrictEqual(p.errors, [], `script errors on ${p.name}'s page`);
      const notices = await p.page.$$eval('#messages .notice.error', (els) => els.map((e) => e.textContent));
      assert.deepStrictEqual(notices, [], `error notices on ${p.name}'s page`);
      const elsewhere = p.requests.filter((u) => !u.startsWith(`${nginx.base}/`));
      assert.deepStrictEqual(elsewhere, [], `${p.name}'s page requested something not through nginx`);
      assert.ok(p.requests.some((u) => u.startsWith(`${nginx.base}/user/list`)),
        `${p.name}'s page fetched /user/list through nginx: ${p.requests}`);
      assert.ok(p.requests.some((u) => u === `${nginx.base}/user/sendMessageAll`),
        `${p.name}'s page sent through nginx: ${p.requests}`);
    }
  });

test('nginx stays up with a clean error log', { timeout: TEST_TIMEOUT_MS }, (t) => {
  assert.ok(nginx.alive(), `nginx died:\n${nginx.log().slice(-4000)}`);
  // [warn]/[error] lines are not failures (e.g. a client going away), but worth seeing.
  for (const line of nginx.log().split('\n').filter((l) => /\[(warn|error)\]/.test(l)).slice(0, 20)) {
    t.diagnostic(line);
  }
  assert.deepStrictEqual(nginx.serious(), [], nginx.log().slice(-4000));
});
