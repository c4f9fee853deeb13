// The cluster issue's browser check of reliable delivery (README "Reliable delivery", cluster
// mode: the logs live in Redis streams, so any node replays them): "a page whose socket is cut
// (stop and restart the node) shows the messages sent meanwhile once, in order".
//
// One redis-server and two imgate nodes A and B in cluster mode, real processes on free
// 127.0.0.1 ports. A chat page in headless Chromium (playwright-core) is opened on node A, its
// WebSocket pointed at A (?ws=); it joins room 101 and sees live messages. Node A is stopped
// (SIGTERM, by PID; a clean exit is asserted); while it is down, room messages and private
// messages to the page's user are sent through node B's HTTP API (the private ones are stored:
// the user is offline). Node A is started again on the same http, ws and rpc ports; the page
// reconnects by its own back-off (1 s doubling, +-25 %) and must show each message sent meanwhile
// exactly once, in id order (the order they were sent), without "some messages may be missing",
// then live messages after them.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test chat_cluster_restart.test.js
//
// /usr/bin/chromium and redis-server are required (a failure, never a skip). Every wait is for a
// state of the page or of a node, bounded and scaled by SLOW; nothing sleeps as a barrier.
// Screenshot: artifacts/chat_cluster_restart.png.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { startNode, startRedis, api, requireExecutable, pollUntil, nodeState, within, SLOW, CHROMIUM,
  PAGE_WAIT_MS, launchChromium, chatPageURL, openChatPage, waitChatStatus, waitChatMessage,
  chatMessages, chatNotices } = require('./harness');

const ARTIFACTS = path.join(__dirname, 'artifacts');
const TEST_TIMEOUT_MS = PAGE_WAIT_MS * 6;
const ROOM = 101;
const USER = 'carol';
const MISSING = 'some messages may be missing';
const RUN = `${process.pid}-${Date.now().toString(36)}`;   // makes every msgID of this run unique

let redis = null;
let nodeA = null;
let nodeB = null;
let stoppedA = null;                     // the first node A, once stopped: its log for diagnostics
let browser = null;
let chat = null;                         // { page, errors, wsURLs } of the page on node A
const selves = {};                       // registry entries (ip:rpcPort) of A and B
const expected = [];                     // what the page must show, in order: {text, from, classes}

function clusterArgs(ports = null) {
  const args = ['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0',
    '--set', 'cluster.registerInterval=1', '--set', `cluster.serverTimeout=${3 * SLOW}`];
  // later flags win: the restarted node A takes the ports of the first one
  if (ports) args.push('--http-port', String(ports.httpPort), '--ws-port', String(ports.wsPort),
    '--rpc-port', String(ports.rpcPort));
  return args;
}

// The nodes' logs (the tail of each), for a failure's message.
function logs(chars = 8000) {
  const parts = [];
  if (stoppedA) parts.push(`=== node A (first run, stopped) ===\n${stoppedA.describe().slice(-chars)}`);
  if (nodeA && nodeA !== stoppedA) parts.push(`=== node A (restarted) ===\n${nodeA.describe().slice(-chars)}`);
  if (nodeB) parts.push(`=== node B ===\n${nodeB.describe().slice(-chars)}`);
  return parts.join('\n');
}

// Ids compare as numbers: milliseconds, then sequence.
function compareIDs(a, b) {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

let msgSeq = 0;
async function sendRoom(node, from, message) {
  const r = await api(node, '/user/sendMessageAll',
    { appID: String(ROOM), userID: from, msgID: `ccr-${RUN}-${++msgSeq}`, message });
  assert.strictEqual(r.code, 200, `sendMessageAll ${message}: ${JSON.stringify(r)}`);
  return r.data;
}

async function sendPrivate(node, to, message) {
  const r = await api(node, '/user/sendMessage',
    { appID: String(ROOM), userID: to, msgID: `ccr-${RUN}-${++msgSeq}`, message });
  assert.strictEqual(r.code, 200, `sendMessage ${message}: ${JSON.stringify(r)}`);
  return r.data;
}

// A log read through a node's /user/history (the room's when user is ''), oldest first.
async function history(node, user = '') {
  const r = await api(node, '/user/history', { appID: String(ROOM), userID: user, limit: '1000' });
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r.data.messages;
}

async function online(node, user) {
  const r = await api(node, '/user/online', { appID: String(ROOM), userID: user });
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r.data.online;
}

function waitServers(node, name, want) {
  return pollUntil(async () => {
    const servers = (await nodeState(node)).cluster.servers;
    return want.every((s) => servers.includes(s)) && Object.values(selves)
      .filter((s) => !want.includes(s)).every((s) => !servers.includes(s));
  }, `node ${name}'s live nodes to be exactly ${want}`, PAGE_WAIT_MS);
}

async function clientsOf(node) {
  return ((await nodeState(node, true)).clients || [])
    .filter((c) => c.appID === ROOM).map((c) => c.userID);
}

function waitNotice(page, text, count) {
  return page.waitForFunction(
    ([t, n]) => Array.from(document.querySelectorAll('#messages .notice'))
      .filter((m) => m.textContent.includes(t)).length >= n,
    [text, count], { timeout: PAGE_WAIT_MS });
}

// The page's messages as {text, from, classes}: chatMessages without the ids.
async function shown() {
  return (await chatMessages(chat.page)).map(({ text, from, classes }) => ({ text, from, classes }));
}

const roomMsg = (text, from, earlier = false) => ({ text, from, classes: earlier ? 'earlier msg' : 'msg' });
const privateMsg = (text) => ({ text, from: 'private message', classes: 'msg private' });

before(async () => {
  requireExecutable(CHROMIUM, 'Chromium (the chat page is driven in a real browser)');
  redis = await startRedis();
  nodeA = await startNode(clusterArgs());
  nodeB = await startNode(clusterArgs());
  selves.A = (await nodeState(nodeA)).cluster.self;
  selves.B = (await nodeState(nodeB)).cluster.self;
  assert.notStrictEqual(selves.A, selves.B, 'the nodes have distinct registry entries');
  await waitServers(nodeA, 'A', [selves.A, selves.B]);
  await waitServers(nodeB, 'B', [selves.A, selves.B]);
  browser = await launchChromium();
});

after(async () => {
  try {
    if (browser) await within(browser.close(), 'the browser to close', PAGE_WAIT_MS).catch(() => {});
  } finally {
    try {
      for (const n of [nodeA, nodeB]) if (n) await n.stop();
    } finally {
      if (redis) await redis.stop();
    }
  }
});

test('the page on node A joins room 101 and sees live messages sent through either node',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    await sendRoom(nodeB, 'dave', 'before open');          // in Redis: the page's earlier messages
    chat = await openChatPage(browser, chatPageURL(nodeA, ROOM, USER));
    await waitChatStatus(chat.page, 'online');
    await pollUntil(async () => (await clientsOf(nodeA)).includes(USER), `${USER} to be a client of node A`);
    assert.deepStrictEqual(await clientsOf(nodeB), [], 'nobody is a client of node B');
    await pollUntil(() => online(nodeB, USER), `node B to see ${USER} online`);
    await waitChatMessage(chat.page, 'before open');
    expected.push(roomMsg('before open', 'dave', true));

    await sendRoom(nodeB, 'dave', 'live through B');
    await waitChatMessage(chat.page, 'live through B');
    assert.deepStrictEqual(await sendPrivate(nodeB, USER, 'live private through B'), { sendResults: true });
    await waitChatMessage(chat.page, 'live private through B');
    await sendRoom(nodeA, 'erin', 'live through A');
    await waitChatMessage(chat.page, 'live through A');
    expected.push(roomMsg('live through B', 'dave'), privateMsg('live private through B'),
      roomMsg('live through A', 'erin'));
    assert.deepStrictEqual(await shown(), expected);
  });

const missed = [                          // sent through B while A is down, in this order
  ['room', 'dave', 'missed room 1'],
  ['private', USER, 'missed private 1'],
  ['room', 'erin', 'missed room 2'],
  ['room', 'dave', 'missed room 3'],
  ['private', USER, 'missed private 2'],
  ['room', 'erin', 'missed room 4'],
  ['private', USER, 'missed private 3'],
];

test('node A stopped: the page is reconnecting, node B no longer lists A nor sees the user online',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(chat, 'the page was opened');
    const ports = { httpPort: nodeA.httpPort, wsPort: nodeA.wsPort, rpcPort: nodeA.rpcPort };
    stoppedA = nodeA;
    await nodeA.stop();                    // SIGTERM to its PID; asserts a clean exit (status 0)
    nodeA = null;
    stoppedA.ports = ports;
    await waitChatStatus(chat.page, 'reconnecting');
    await waitServers(nodeB, 'B', [selves.B]);
    await pollUntil(async () => !(await online(nodeB, USER)), `node B to see ${USER} offline`,
      PAGE_WAIT_MS);
  });

test('messages sent through node B while A is down are stored in the Redis logs, in order',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(stoppedA && !nodeA, 'node A is down');
    for (const [kind, who, text] of missed) {
      if (kind === 'room') {
        await sendRoom(nodeB, who, text);
      } else {
        assert.deepStrictEqual(await sendPrivate(nodeB, who, text), { sendResults: false, stored: true },
          `${text}: the user is offline, the message is stored`);
      }
    }
    // The two logs merged by id give the send order (one clock for every log of the cluster).
    const room = await history(nodeB);
    const inbox = await history(nodeB, USER);
    const merged = [...room, ...inbox].sort((a, b) => compareIDs(a.id, b.id)).map((m) => m.msg);
    assert.deepStrictEqual(merged.slice(-missed.length), missed.map((m) => m[2]));
  });

test('node A restarted on the same ports: the page reconnects and shows each missed message once, in order',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(stoppedA && stoppedA.ports, 'node A was stopped');
    nodeA = await startNode(clusterArgs(stoppedA.ports));
    assert.deepStrictEqual({ httpPort: nodeA.httpPort, wsPort: nodeA.wsPort, rpcPort: nodeA.rpcPort },
      stoppedA.ports, 'node A is back on its ports');
    assert.strictEqual((await nodeState(nodeA)).cluster.self, selves.A, 'and under its registry entry');

    await waitNotice(chat.page, 'reconnected to room', 1);
    await waitChatStatus(chat.page, 'online');
    const last = missed[missed.length - 1][2];
    try {
      await waitChatMessage(chat.page, last);
    } catch (err) {
      throw new Error(`the page did not show "${last}" after its reconnect to the restarted node A ` +
        `(${err.message})\npage messages: ${JSON.stringify(await shown())}\n` +
        `page notices: ${JSON.stringify(await chatNotices(chat.page))}\n${logs()}`);
    }
    for (const [kind, who, text] of missed) {
      expected.push(kind === 'room' ? roomMsg(text, who) : privateMsg(text));
    }
    assert.deepStrictEqual(await shown(), expected,
      `page notices: ${JSON.stringify(await chatNotices(chat.page))}\n${logs()}`);

    // Each shown message of the logs carries its entry's id: the replay's ids are the logs'.
    const room = await history(nodeA);
    const inbox = await history(nodeA, USER);
    const idOf = new Map([...room, ...inbox].map((m) => [m.msg, m.id]));
    const ids = (await chatMessages(chat.page)).map((m) => [m.text, m.id]);
    assert.deepStrictEqual(ids, expected.map((m) => [m.text, idOf.get(m.text)]));
    assert.deepStrictEqual(await chat.page.evaluate(() => window.__imgate.resumePoint()),
      { lastID: inbox[inbox.length - 1].id, lastRoomID: room[room.length - 1].id });

    const notices = await chatNotices(chat.page);
    assert.deepStrictEqual(notices.filter((n) => n.text.includes(MISSING) || /\b(warn|error)\b/.test(n.classes)), [],
      `no "${MISSING}" nor any warning or error notice: ${JSON.stringify(notices)}`);
  });

test('live messages after the restart come after the missed ones, once',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(nodeA, 'node A is up');
    await pollUntil(async () => (await clientsOf(nodeA)).includes(USER), `${USER} to be a client of node A`);
    await waitServers(nodeB, 'B', [selves.A, selves.B]);   // B routes to A again
    await pollUntil(() => online(nodeB, USER), `node B to see ${USER} online`, PAGE_WAIT_MS);
    await sendRoom(nodeB, 'dave', 'live after restart');
    await waitChatMessage(chat.page, 'live after restart');
    assert.deepStrictEqual(await sendPrivate(nodeB, USER, 'private after restart'), { sendResults: true });
    await waitChatMessage(chat.page, 'private after restart');
    expected.push(roomMsg('live after restart', 'dave'), privateMsg('private after restart'));
    assert.deepStrictEqual(await shown(), expected);
    const notices = await chatNotices(chat.page);
    assert.strictEqual(notices.filter((n) => n.text.includes('reconnected to room')).length, 1,
      `one reconnect: ${JSON.stringify(notices)}`);
    assert.strictEqual(notices.filter((n) => n.text.includes(MISSING)).length, 0, JSON.stringify(notices));
  });

test('the page is clean: every WebSocket went to node A, no script errors; screenshot',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(chat, 'the page was opened');
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await chat.page.screenshot({ path: path.join(ARTIFACTS, 'chat_cluster_restart.png'), timeout: PAGE_WAIT_MS });
    const wsA = `ws://127.0.0.1:${stoppedA.ports.wsPort}/acc`;
    assert.ok(chat.wsURLs.length >= 2, `a socket before the stop and one after: ${chat.wsURLs}`);
    assert.deepStrictEqual(chat.wsURLs.filter((u) => u !== wsA), [], `every WebSocket to node A (${wsA})`);
    assert.deepStrictEqual(chat.errors, []);
  });
