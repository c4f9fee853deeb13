// The README's cluster recipe, in a browser: one redis-server, two imgate nodes in cluster mode
// configured as the recipe says (app.httpUrl and app.webSocketUrl "127.0.0.1", no port) and
// nginx running deploy/nginx.conf (ports and paths rewritten by startNginx). Two chat pages in
// headless Chromium, opened through nginx's port with no ?ws=/?http= override: a webSocketUrl
// without a port means the page's own host and port, so each page's WebSocket goes through nginx
// (least_conn: the second page lands on the other node, checked in each node's /system/state),
// and the pages chat, privately too (with the sender shown). A reload keeps the name
// (localStorage) through nginx as well.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test chat_nginx.test.js
//
// /usr/bin/chromium, nginx and redis-server are required (make deps installs them): if one is
// missing, before() fails naming it and every test fails; nothing is ever skipped. Every
// process is started on free loopback ports and stopped by PID in after(); every wait is for a
// positive event or a state polled until it holds, bounded (scaled by SLOW under the
// sanitizers); nothing asserts on timing. Screenshots: artifacts/chat_nginx_a.png and _b.png.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { startNginxCluster, sendChat, checkChatPage, newChatContext, SLOW, within, NGINX_BIN, requireExecutable, pollUntil,
  nodeState, CHROMIUM, PAGE_WAIT_MS, launchChromium, waitChatStatus, waitChatMessage } = require('./harness');

const TEST_TIMEOUT_MS = 180000 * SLOW;
const ROOM = 101;
const RUN = Date.now().toString(36);

let cluster = null;
let nodes = [];
let nginx = null;
let browser = null;
const pages = {};                        // a, b: { context, page, name, node, errors, wsURLs, requests }

// Where user is logged in: the indexes of the nodes whose own clients include it in ROOM.
async function nodesOf(user) {
  const where = [];
  for (let i = 0; i < nodes.length; i++) {
    const d = await nodeState(nodes[i], true);
    if ((d.clients || []).some((c) => c.userID === user && c.appID === ROOM)) where.push(i);
  }
  return where;
}

// Until user is a client of exactly one node; resolves with its index.
async function whereIs(user) {
  const where = await pollUntil(async () => {
    const w = await nodesOf(user);
    return w.length === 1 ? w : null;
  }, `${user} to be a client of exactly one node`, PAGE_WAIT_MS);
  return where[0];
}

// A page opened through nginx as the README's user would: /home/index?appID=101 and nothing else.
async function openThroughNginx() {
  const p = await newChatContext(browser);
  await p.page.goto(`${nginx.base}/home/index?appID=${ROOM}`, { timeout: PAGE_WAIT_MS });
  await waitChatStatus(p.page, 'online');
  p.name = (await p.page.textContent('#me')).trim();
  return p;
}

const send = (p, text) => sendChat(p.page, text);

// {from, tag} of the shown message with exactly this text.
async function shown(p, text) {
  await waitChatMessage(p.page, text);
  return p.page.evaluate((t) => {
    const m = Array.from(document.querySelectorAll('#messages .msg'))
      .find((e) => e.querySelector('.text').textContent === t);
    const tag = m.querySelector('.meta .tag');
    return { from: m.querySelector('.from').textContent, tag: tag ? tag.textContent : '' };
  }, text);
}

before(async () => {
  requireExecutable(CHROMIUM, 'Chromium (the chat pages are driven in a real browser)');
  requireExecutable(NGINX_BIN, 'nginx (deploy/nginx.conf is what the pages go through)');
  // The README recipe: no port in the addresses the chat page is given.
  cluster = await startNginxCluster(2, ['--set', 'app.httpUrl=127.0.0.1', '--set', 'app.webSocketUrl=127.0.0.1']);
  ({ nodes, nginx } = cluster);
  browser = await launchChromium();
});

after(async () => {
  try {
    if (browser) await within(browser.close(), 'the browser to close', PAGE_WAIT_MS).catch(() => {});
  } finally {
    if (cluster) await cluster.stop();
  }
});

test('the page\'s WebSocket goes through nginx (webSocketUrl without a port), each page on another node',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const served = await (await fetch(`${nginx.base}/home/index?appID=${ROOM}`)).text();
    assert.match(served, /ws: "127\.0\.0\.1"/, 'the node gives the page the recipe\'s port-less webSocketUrl');
    pages.a = await openThroughNginx();
    pages.a.node = await whereIs(pages.a.name);
    pages.b = await openThroughNginx();               // least_conn: the node without a page
    assert.notStrictEqual(pages.a.name, pages.b.name, 'two browsers, two names');
    pages.b.node = await whereIs(pages.b.name);
    assert.notStrictEqual(pages.a.node, pages.b.node,
      `the pages must be on different nodes (${pages.a.name} on node ${pages.a.node + 1}, ` +
      `${pages.b.name} on node ${pages.b.node + 1})`);
    const loggedIn = [];
    for (const n of nodes) loggedIn.push((await nodeState(n)).loggedIn);
    assert.deepStrictEqual(loggedIn, [1, 1], 'one logged-in client per node');
    for (const p of [pages.a, pages.b]) {
      assert.deepStrictEqual(p.wsURLs, [`${nginx.wsBase}/acc`], 'the WebSocket goes to nginx, not to a node');
    }
  });

test('a broadcast and a private message between the two nodes arrive, the private one with its sender',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const { a, b } = pages;
    await a.page.waitForSelector(`#users li[data-user="${b.name}"]`, { timeout: PAGE_WAIT_MS });
    const hello = `hello through nginx ${RUN}`;
    await send(a, hello);
    assert.strictEqual((await shown(b, hello)).from, a.name);

    await b.page.click(`#users li[data-user="${a.name}"]`, { timeout: PAGE_WAIT_MS });
    const secret = `private through nginx ${RUN}`;
    await send(b, secret);
    assert.deepStrictEqual(await shown(a, secret), { from: 'private message', tag: `from ${b.name}` });
    assert.strictEqual((await shown(b, secret)).tag, `private to ${a.name}`);
  });

test('a reload through nginx keeps the name: the nodes see the same userID again', { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { a } = pages;
    await a.page.reload({ timeout: PAGE_WAIT_MS });
    await waitChatStatus(a.page, 'online');
    assert.strictEqual((await a.page.textContent('#me')).trim(), a.name);
    await whereIs(a.name);
    assert.deepStrictEqual(a.wsURLs, [`${nginx.wsBase}/acc`, `${nginx.wsBase}/acc`]);
    const back = `back after a reload ${RUN}`;
    await pages.b.page.click('#clear-target', { timeout: PAGE_WAIT_MS });   // to everyone again
    await send(pages.b, back);
    assert.strictEqual((await shown(a, back)).from, pages.b.name);
  });

test('the pages only talked to nginx, had no script errors and no error notices; screenshots',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    await checkChatPage(pages.a, 'chat_nginx_a.png', nginx.base);
    await checkChatPage(pages.b, 'chat_nginx_b.png', nginx.base);
    assert.ok(nginx.alive(), `nginx died:\n${nginx.log().slice(-4000)}`);
    assert.deepStrictEqual(nginx.serious(), [], nginx.log().slice(-4000));
  });
