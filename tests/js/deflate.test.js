// permessage-deflate (RFC 7692, SPEC 7.4) with clients nobody here wrote: npm `ws`
// (perMessageDeflate: true) and headless Chromium (the chat page, and the page's own
// WebSocket on the echo path). Each is checked to have negotiated the extension (the
// Sec-WebSocket-Extensions answer it received) and to exchange messages both ways, large
// and small, text and binary; the node's counters show that both directions were really
// compressed. /usr/bin/chromium is required (make deps installs it): without it the test
// fails, it is never skipped. Every wait is bounded and scaled by SLOW.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test deflate.test.js
'use strict';

const { test } = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { startNode, api, within, nextMessage, requireExecutable, SLOW } = require('./harness');

const ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const NODE_ARGS = ['--set', 'app.perMessageDeflate=true', '--set', 'app.echoPath=/echo',
  '--set', 'im.presenceEventsMaxRoom=1'];
const CHROMIUM = '/usr/bin/chromium';
const BROWSER_WAIT_MS = 30000 * SLOW;

// Text that compresses like prose, n characters.
function story(n) {
  const words = 'every worker compresses a room push once for the clients that asked for it'
    .split(' ');
  let s = '';
  for (let i = 0; s.length < n; i++) s += words[(i * 7 + (i >> 2)) % words.length] + ' ';
  return s.slice(0, n);
}

async function deflateState(node) {
  const res = await fetch(`${node.httpBase}/system/state`);
  return (await res.json()).data.deflate;
}

// A ws client that queues what it receives; ws.answer is the Sec-WebSocket-Extensions value
// of the 101 (undefined when there was none).
function openDeflate(url, options) {
  const ws = new WebSocket(url, options);
  ws.inbox = [];
  ws.waiters = [];
  ws.on('upgrade', (res) => { ws.answer = res.headers['sec-websocket-extensions']; });
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString('utf8');
    let json = null;
    try { json = isBinary ? null : JSON.parse(text); } catch (_) { /* echo of plain text */ }
    ws.inbox.push({ data, text, isBinary, json });
    for (const w of ws.waiters.splice(0)) w();
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => { /* surfaces as a close */ });
  return within(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), 'the WebSocket to open');
}

// The next queued message, whatever it is.
function nextAny(ws, what) {
  return within(new Promise((resolve, reject) => {
    const look = () => {
      if (ws.inbox.length) return resolve(ws.inbox.shift());
      if (ws.readyState === WebSocket.CLOSED) return reject(new Error(`closed waiting for ${what}`));
      ws.waiters.push(look);
      return undefined;
    };
    look();
  }), what);
}

async function close(ws) {
  if (ws.readyState === WebSocket.CLOSED) return;
  ws.close(1000);
  await within(ws.closed, 'the close');
}

test('npm ws: negotiation, echo both ways, pushes to deflate and plain clients', async (t) => {
  const node = await startNode(NODE_ARGS);
  try {
    await t.test('echo path: text and binary, large and small', async () => {
      const before = await deflateState(node);
      const ws = await openDeflate(`${node.wsBase}/echo`, { perMessageDeflate: { threshold: 0 } });
      try {
        assert.strictEqual(ws.answer, ANSWER);
        assert.strictEqual(ws.extensions, 'permessage-deflate');
        const msgs = ['x', story(127), story(128), story(40000), 'é日本'.repeat(50), '',
          Buffer.from([0, 1, 2]), Buffer.alloc(20000, 7), Buffer.from(story(3000))];
        for (const m of msgs) {
          ws.send(m);
          const got = await nextAny(ws, 'an echo');
          assert.strictEqual(got.isBinary, Buffer.isBuffer(m));
          assert.ok(Buffer.from(m).equals(Buffer.from(got.data)), `echo of ${m.length} bytes`);
        }
      } finally {
        await close(ws);
      }
      const after = await deflateState(node);
      assert.ok(after.messagesInflated - before.messagesInflated >= 8,
        `the node inflated what ws compressed: ${JSON.stringify(after)}`);
      assert.ok(after.messagesCompressed - before.messagesCompressed >= 5,
        `the node compressed the echoes of 128 bytes or more: ${JSON.stringify(after)}`);
    });

    await t.test('/acc: a room push reaches deflate and plain clients, small and large', async () => {
      const clients = [];
      try {
        for (const [user, pmd] of [['jsz-a', true], ['jsz-b', true], ['jsz-plain', false]]) {
          const ws = await openDeflate(`${node.wsBase}/acc`, { perMessageDeflate: pmd });
          assert.strictEqual(ws.answer, pmd ? ANSWER : undefined);
          ws.send(JSON.stringify({ seq: 'l', cmd: 'login',
            data: { serviceToken: '', appID: 102, userID: user } }));
          const r = await nextMessage(ws, (m) => m.cmd === 'login', 'the login reply');
          assert.strictEqual(r.json.response.code, 200);
          clients.push(ws);
        }
        for (const [i, text] of ['tiny', story(2000), story(60000)].entries()) {
          const msgID = `jsz-${process.pid}-${i}`;
          const r = await api(node, '/user/sendMessageAll',
            { appID: 102, userID: 'jsz-sender', msgID, message: text });
          assert.strictEqual(r.code, 200, JSON.stringify(r));
          for (const ws of clients) {
            const m = await nextMessage(ws, (j) => j.cmd === 'msg' && j.seq === msgID, msgID);
            assert.strictEqual(m.json.response.data.msg, text);
          }
        }
        // and a large request from a deflate client
        clients[0].send(JSON.stringify({ seq: 'p', cmd: 'ping', data: { pad: story(5000) } }));
        const p = await nextMessage(clients[0], (m) => m.seq === 'p', 'the ping reply');
        assert.strictEqual(p.json.response.data, 'pong');
      } finally {
        for (const ws of clients) await close(ws);
      }
    });
  } finally {
    await node.stop();
  }
});

function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: BROWSER_WAIT_MS,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Opens the chat page and records the Sec-WebSocket-Extensions answer of every WebSocket
// the page opens (DevTools protocol, set up before the page loads).
async function openChat(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.answers = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const h = e.response.headers;
    const key = Object.keys(h).find((k) => k.toLowerCase() === 'sec-websocket-extensions');
    page.answers.push(key ? h[key] : null);
  });
  await page.goto(url, { timeout: BROWSER_WAIT_MS });
  return { context, page };
}

async function chatSend(page, text) {
  await page.fill('#input', text);
  await page.click('#send', { timeout: BROWSER_WAIT_MS });
  await page.waitForFunction(() => document.getElementById('input').value === '', null,
    { timeout: BROWSER_WAIT_MS });
}

function waitForMessage(page, text) {
  return page.waitForFunction(
    (t) => Array.from(document.querySelectorAll('#messages .msg'))
      .some((m) => m.textContent.includes(t)),
    text, { timeout: BROWSER_WAIT_MS });
}

test('headless Chromium: the chat page and the echo path negotiate and use it',
  { timeout: 240000 * SLOW }, async (t) => {
    requireExecutable(CHROMIUM, 'Chromium (the chat page is driven in a real browser)');
    const node = await startNode(NODE_ARGS);
    let browser = null;
    try {
      browser = await launchBrowser();
      const base = `http://127.0.0.1:${node.httpPort}/home/index?appID=101`;
      const before = await deflateState(node);
      const alice = await openChat(browser, `${base}&userID=zalice`);
      const bob = await openChat(browser, `${base}&userID=zbob`);

      await t.test('both pages negotiated permessage-deflate', async () => {
        for (const p of [alice.page, bob.page]) {
          await p.waitForFunction(
            () => document.getElementById('status').textContent.trim() === 'online', null,
            { timeout: BROWSER_WAIT_MS });
          assert.deepStrictEqual(p.answers, [ANSWER]);
        }
        const st = await deflateState(node);
        assert.strictEqual(st.connections - before.connections, 2);
        // Chromium compresses what it sends (the login): the node inflated it
        assert.ok(st.messagesInflated - before.messagesInflated >= 2, JSON.stringify(st));
      });

      await t.test('short and long messages reach the other page', async () => {
        const mid = await deflateState(node);
        const long = `long ${story(3000)}`;
        await chatSend(alice.page, 'short hi');
        await waitForMessage(bob.page, 'short hi');
        await chatSend(alice.page, long);
        await waitForMessage(bob.page, long.slice(0, 200));
        const got = await bob.page.evaluate(() => Array.from(document.querySelectorAll('#messages .msg'))
          .map((m) => m.textContent).join('\n'));
        assert.ok(got.includes(long), 'the whole long message arrived');
        const st = await deflateState(node);
        assert.ok(st.messagesCompressed > mid.messagesCompressed, 'pushes went compressed');
      });

      await t.test('the page\'s own WebSocket on the echo path: text and binary', async () => {
        const url = `ws://127.0.0.1:${node.wsPort}/echo`;
        const result = await alice.page.evaluate(async ({ wsURL, big }) => {
          const ws = new WebSocket(wsURL);
          ws.binaryType = 'arraybuffer';
          await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
          const queue = [];
          const waiters = [];
          ws.onmessage = (ev) => { queue.push(ev.data); if (waiters.length) waiters.shift()(); };
          const next = () => new Promise((resolve) => {
            if (queue.length) resolve(queue.shift()); else waiters.push(() => resolve(queue.shift()));
          });
          const out = { extensions: ws.extensions, ok: [] };
          const bin = new Uint8Array(50000);
          for (let i = 0; i < bin.length; i++) bin[i] = (i * 31) % 7;
          const msgs = ['a', big, 'ü'.repeat(300), new Uint8Array([1, 2, 3]), bin];
          for (const m of msgs) {
            ws.send(m);
            const got = await next();
            if (typeof m === 'string') {
              out.ok.push(got === m);
            } else {
              const g = new Uint8Array(got);
              out.ok.push(g.length === m.length && g.every((v, i) => v === m[i]));
            }
          }
          ws.close();
          return out;
        }, { wsURL: url, big: story(30000) });
        assert.strictEqual(result.extensions, ANSWER);
        assert.deepStrictEqual(result.ok, [true, true, true, true, true]);
      });

      await t.test('no script errors in the pages', () => {
        assert.deepStrictEqual(alice.page.errors, []);
        assert.deepStrictEqual(bob.page.errors, []);
      });
      await alice.context.close();
      await bob.context.close();
    } finally {
      if (browser) await browser.close();
      await node.stop();
    }
  });
