// The dashboard (SPEC 7.5, docs/dashboard.md) in a browser: one redis-server and three imgate
// nodes in cluster mode with auth.apiKey set, real processes on free 127.0.0.1 ports. The data
// call GET /system/cluster answers 401 without the key (or with a wrong one) and, with it, every
// node: the serving node's state live and the others' from their snapshots in Redis
// (acc:node:state:<ip:rpcPort>). Headless Chromium (playwright-core) opens /dashboard on node 1:
// the login form refuses a wrong key and takes the right one (kept in the tab's sessionStorage),
// then the page shows the three nodes with their connection counts, and follows them in place
// (no reload) while WebSocket clients log in on the nodes and leave again; the rooms table shows
// the room's users; the charts are drawn (inline SVG). A node stopped cleanly deletes its snapshot
// and leaves the page.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test dashboard.test.js
//
// /usr/bin/chromium and redis-server are required (a failure, never a skip). Every wait is for a
// state of the page or of a node, bounded and scaled by SLOW; nothing sleeps as a barrier.
// An embedded node without a key shows itself at once. Screenshots: artifacts/dashboard_login.png,
// dashboard.png, dashboard_after.png, dashboard_embedded.png.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startNode, startRedis, openWs, nextMessage, requireExecutable, pollUntil, SLOW, CHROMIUM,
  PAGE_WAIT_MS, launchChromium } = require('./harness');

const ARTIFACTS = path.join(__dirname, 'artifacts');
const TEST_TIMEOUT_MS = PAGE_WAIT_MS * 6;
const API_KEY = 'dash-k3y';
const ROOM = 101;

let redis = null;
const nodes = [];
let browser = null;
const clients = [];                      // open WebSocket clients, closed in after()

function selfOf(node) { return `127.0.0.1:${node.rpcPort}`; }

function logs(chars = 6000) {
  return nodes.map((n, i) => `=== node ${i} ===\n${n.describe().slice(-chars)}`).join('\n');
}

async function getCluster(node, key) {
  const headers = key === undefined ? {} : { Authorization: `Bearer ${key}` };
  const res = await fetch(`${node.httpBase}/system/cluster`, { headers, signal: AbortSignal.timeout(10000 * SLOW) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// A client logged in as user on node (room ROOM).
async function login(node, user) {
  const ws = await openWs(`${node.wsBase}/acc`);
  clients.push(ws);
  ws.send(JSON.stringify({ seq: 'l', cmd: 'login', data: { serviceToken: '', appID: ROOM, userID: user } }));
  const r = await nextMessage(ws, (m) => m.cmd === 'login', `${user}'s login reply`);
  assert.strictEqual(r.json.response.code, 200, `login of ${user}: ${r.text}`);
  return ws;
}

async function leave(ws) {
  ws.close();
  await ws.closed;
}

// What the page shows: {node: connections} of its node rows.
function shownConnections(page) {
  return page.evaluate(() => {
    const out = {};
    for (const tr of document.querySelectorAll('#nodes tbody tr[data-node]')) {
      const td = tr.querySelector('td.conns');
      out[tr.dataset.node] = td ? td.textContent : null;
    }
    return out;
  });
}

// Until the page shows exactly these nodes with these connection counts ([node, count] pairs).
async function waitShown(page, want, what) {
  const expect = {};
  for (const [n, c] of want) expect[selfOf(n)] = String(c);
  let last = null;
  try {
    await pollUntil(async () => {
      last = await shownConnections(page);
      return JSON.stringify(Object.entries(last).sort()) === JSON.stringify(Object.entries(expect).sort());
    }, what, PAGE_WAIT_MS);
  } catch (err) {
    throw new Error(`${err.message}\nwanted ${JSON.stringify(expect)}, shown ${JSON.stringify(last)}\n${logs()}`);
  }
}

before(async () => {
  requireExecutable(CHROMIUM, 'Chromium (the dashboard is driven in a real browser)');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  redis = await startRedis();
  const args = ['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0',
    '--set', 'cluster.registerInterval=1', '--set', `cluster.serverTimeout=${3 * SLOW}`,
    '--set', `auth.apiKey=${API_KEY}`];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(args));
  // every node sees the three in the registry, and their snapshots
  for (const n of nodes) {
    await pollUntil(async () => {
      const r = await getCluster(n, API_KEY);
      const d = r.body && r.body.data;
      return r.status === 200 && d && d.nodes.length === 3 && d.nodes.every((x) => x.snapshot !== false);
    }, `node ${selfOf(n)} to see the three nodes' snapshots`, PAGE_WAIT_MS);
  }
  browser = await launchChromium();
});

after(async () => {
  for (const ws of clients) ws.terminate();
  if (browser) await browser.close();
  for (const n of nodes) await n.stop();
  if (redis) await redis.stop();
});

test('the data call needs the API key: 401 without it or with a wrong one; the page itself is open', async () => {
  for (const key of [undefined, 'wrong', `${API_KEY}x`]) {
    const r = await getCluster(nodes[0], key);
    assert.strictEqual(r.status, 401, `GET /system/cluster with key ${key}`);
    assert.strictEqual(r.body.code, 1003);
  }
  const page = await fetch(`${nodes[0].httpBase}/dashboard`);
  assert.strictEqual(page.status, 200);
  assert.match(page.headers.get('content-type'), /text\/html/);
  const html = await page.text();
  // self-contained: no external script, style sheet or image, no URL but the SVG namespace
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|<img[^>]+src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);

  const r = await getCluster(nodes[0], API_KEY);
  assert.strictEqual(r.status, 200);
  const d = r.body.data;
  assert.strictEqual(d.mode, 'cluster');
  assert.strictEqual(d.self, selfOf(nodes[0]));
  assert.strictEqual(d.nodes[0].node, selfOf(nodes[0]), 'the serving node comes first');
  assert.deepStrictEqual(d.nodes.map((n) => n.node).sort(), nodes.map(selfOf).sort());
  for (const n of d.nodes) {
    assert.strictEqual(n.redis, 'up', JSON.stringify(n));
    assert.deepStrictEqual(n.rooms.map((x) => x.appID), [101, 102, 103, 104]);
    for (const k of ['connections', 'loggedIn', 'users', 'messagesIn', 'framesOut', 'outQueueBytes',
      'slowConsumersClosed', 'time']) assert.strictEqual(typeof n[k], 'number', `${k} of ${n.node}`);
  }
});

test('Chromium: login form, then three nodes whose connection counts follow clients in place', { timeout: TEST_TIMEOUT_MS }, async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  let loads = 0;
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('load', () => { loads++; });
  await page.goto(`${nodes[1].httpBase}/dashboard`, { timeout: PAGE_WAIT_MS });

  // no key yet: the data call was refused and the form is shown
  await page.waitForSelector('#login:not([hidden])', { timeout: PAGE_WAIT_MS });
  assert.ok(await page.isHidden('#dash'));
  await page.fill('#key', 'not-the-key');
  await page.click('#login-submit');
  await page.waitForFunction(() => /refused/.test(document.getElementById('login-error').textContent),
    null, { timeout: PAGE_WAIT_MS });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard_login.png') });
  await page.fill('#key', API_KEY);
  await page.click('#login-submit');
  await page.waitForSelector('#dash:not([hidden])', { timeout: PAGE_WAIT_MS });
  assert.strictEqual(await page.evaluate(() => sessionStorage.getItem('imgateApiKey')), API_KEY);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'live', null,
    { timeout: PAGE_WAIT_MS });

  await waitShown(page, [[nodes[0], 0], [nodes[1], 0], [nodes[2], 0]], 'three nodes with no connection');

  // clients connect: 2 on node 0, 1 on node 1, 3 on node 2 (one user on two nodes)
  const a = [await login(nodes[0], 'ann'), await login(nodes[0], 'bob')];
  const b = [await login(nodes[1], 'cid')];
  const c = [await login(nodes[2], 'dee'), await login(nodes[2], 'eve'), await login(nodes[2], 'ann')];
  await waitShown(page, [[nodes[0], 2], [nodes[1], 1], [nodes[2], 3]], 'the counts after 6 logins');
  // the room: 6 logins of 5 users; per node the users are counted on each node they are on
  await page.waitForFunction((room) => {
    const tr = document.querySelector(`#rooms tbody tr[data-room="${room}"] td.users`);
    return tr && tr.textContent === '6';
  }, ROOM, { timeout: PAGE_WAIT_MS });
  assert.strictEqual(await page.textContent('#t-nodes'), '3');
  assert.strictEqual(await page.textContent('#t-conns'), '6');
  // the connections chart has one line per node
  await page.waitForFunction(() => document.querySelectorAll('#c-conns polyline').length === 3, null,
    { timeout: PAGE_WAIT_MS });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // some leave
  await leave(a[1]);
  await leave(c[0]);
  await leave(c[2]);
  await waitShown(page, [[nodes[0], 1], [nodes[1], 1], [nodes[2], 1]], 'the counts after 3 left');
  await leave(b[0]);
  await waitShown(page, [[nodes[0], 1], [nodes[1], 0], [nodes[2], 1]], 'the counts after one more left');
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard_after.png'), fullPage: true });

  // node 2 stops cleanly: its snapshot is deleted before it leaves the registry, and the page
  // drops its row
  const gone = selfOf(nodes[2]);
  await nodes[2].stop();
  const exists = spawnSync('redis-cli', ['-p', String(redis.port), 'EXISTS', `acc:node:state:${gone}`],
    { encoding: 'utf8', timeout: 10000 * SLOW });
  assert.strictEqual(exists.stdout.trim(), '0', `the snapshot of ${gone} is gone: ${exists.stdout}${exists.stderr}`);
  await waitShown(page, [[nodes[0], 1], [nodes[1], 0]], 'two nodes once node 2 stopped');

  assert.strictEqual(loads, 1, 'refreshed in place: the page was loaded once');
  assert.deepStrictEqual(errors, [], 'no script error on the page');
  await context.close();
});

test('embedded mode, no API key: the page opens without a login form and shows the one node', { timeout: TEST_TIMEOUT_MS }, async () => {
  const node = await startNode();
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${node.httpBase}/dashboard`, { timeout: PAGE_WAIT_MS });
    await page.waitForSelector('#dash:not([hidden])', { timeout: PAGE_WAIT_MS });
    assert.ok(await page.isHidden('#login'), 'no login form without auth.apiKey');
    const self = `127.0.0.1:${node.httpPort}`;
    const shown = () => page.evaluate(() => Array.from(document.querySelectorAll('#nodes tbody tr[data-node]'))
      .map((tr) => [tr.dataset.node, tr.querySelector('td.conns').textContent]));
    await pollUntil(async () => JSON.stringify(await shown()) === JSON.stringify([[self, '0']]),
      'the one node with no connection', PAGE_WAIT_MS);
    const ws = await login(node, 'solo');
    await pollUntil(async () => JSON.stringify(await shown()) === JSON.stringify([[self, '1']]),
      'the one node with one connection', PAGE_WAIT_MS);
    assert.match(await page.textContent('#mode'), /embedded mode/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard_embedded.png') });
    ws.close();
    assert.deepStrictEqual(errors, []);
  } finally {
    await context.close();
    await node.stop();
  }
});
