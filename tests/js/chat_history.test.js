// Browser test of the chat page's reliable delivery (README "Reliable delivery"): the room's
// recent history on open, resume after a lost connection (lastID / lastRoomID, each missed
// message once, in order), the "some messages may be missing" notice after a retention gap, and
// a node with delivery.enabled: false. Headless Chromium through playwright-core, as
// chat.test.js; /usr/bin/chromium is required (a failure, never a skip).
//
// The page's socket is cut from outside: the page connects through a small TCP proxy of this
// file (?ws=proxy), which can drop its connections and hold new ones until it is restored, so
// messages are sent while the page is certainly offline and it reconnects (its own back-off) as
// soon as the proxy lets it. Every wait is for a state of the page or of the node, bounded and
// scaled by SLOW; nothing sleeps as a barrier.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test chat_history.test.js
'use strict';

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { startNode, api, requireExecutable, within, SLOW } = require('./harness');

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const WAIT_MS = 30000 * SLOW;
const POLL_MS = 50;
const TEST_TIMEOUT_MS = 240000 * SLOW;
const MISSING = 'some messages may be missing';

function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: WAIT_MS,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

async function openChat(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  await page.goto(url, { timeout: WAIT_MS });
  return { context, page };
}

function chatURL(node, room, user, wsPort) {
  return `http://127.0.0.1:${node.httpPort}/home/index?appID=${room}&userID=${user}` +
    `&ws=127.0.0.1:${wsPort}&http=127.0.0.1:${node.httpPort}`;
}

function waitStatus(page, status) {
  return page.waitForFunction(
    (s) => document.getElementById('status').textContent.trim() === s, status,
    { timeout: WAIT_MS });
}

function waitForMessage(page, text) {
  return page.waitForFunction(
    (t) => Array.from(document.querySelectorAll('#messages .msg .text'))
      .some((m) => m.textContent === t),
    text, { timeout: WAIT_MS });
}

function waitCount(page, selector, n) {
  return page.waitForFunction(
    ([sel, count]) => document.querySelectorAll(sel).length === count, [selector, n],
    { timeout: WAIT_MS });
}

function waitForNotice(page, text, n = 1) {
  return page.waitForFunction(
    ([t, count]) => Array.from(document.querySelectorAll('#messages .notice'))
      .filter((m) => m.textContent.includes(t)).length >= count,
    [text, n], { timeout: WAIT_MS });
}

// The texts of the messages shown, in page order (earlier ones first).
function texts(page, selector = '#messages .msg') {
  return page.evaluate((sel) => Array.from(document.querySelectorAll(sel))
    .map((m) => m.querySelector('.text').textContent), selector);
}

function classesOf(page, text) {
  return page.evaluate((t) => Array.from(document.querySelectorAll('#messages .msg'))
    .filter((m) => m.querySelector('.text').textContent === t)
    .map((m) => Array.from(m.classList)), text);
}

function noticeCount(page, text) {
  return page.evaluate((t) => Array.from(document.querySelectorAll('#messages .notice'))
    .filter((m) => m.textContent.includes(t)).length, text);
}

function resumePoint(page) {
  return page.evaluate(() => window.__imgate.resumePoint());
}

// Polls an async predicate until it holds (a positive condition), bounded by WAIT_MS.
async function waitUntil(pred, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// The node has dropped the user's connection (it no longer counts as online).
function waitOffline(node, room, user) {
  return waitUntil(async () => {
    const r = await api(node, '/user/online', { appID: String(room), userID: user });
    return r.code === 200 && r.data.online === false;
  }, `${user} to be offline on the node`);
}

let msgSeq = 0;
async function sendRoom(node, room, from, message) {
  const r = await api(node, '/user/sendMessageAll',
    { appID: String(room), userID: from, msgID: `h-${process.pid}-${++msgSeq}`, message });
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r;
}

async function sendPrivate(node, room, to, message) {
  const r = await api(node, '/user/sendMessage',
    { appID: String(room), userID: to, msgID: `h-${process.pid}-${++msgSeq}`, message });
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r.data;
}

// The ids of a log, oldest first (the room's history when user is '').
async function logIDs(node, room, user = '') {
  const r = await api(node, '/user/history', { appID: String(room), userID: user, limit: '1000' });
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r.data.messages.map((m) => m.id);
}

async function sendInPage(page, text) {
  await page.fill('#input', text);
  await page.click('#send', { timeout: WAIT_MS });
  await page.waitForFunction(() => document.getElementById('input').value === '', null,
    { timeout: WAIT_MS });
}

// A TCP proxy in front of the node's WebSocket port. cut() drops every connection and holds the
// new ones (paused, their bytes kept) until restore() links them to the node.
function startProxy(targetPort) {
  const pairs = new Set();
  let held = [];
  let down = false;
  const link = (client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => { client.destroy(); upstream.destroy(); pairs.delete(pair); };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const server = net.createServer((client) => {
    if (!down) return link(client);
    client.pause();
    client.on('error', () => client.destroy());
    held.push(client);
    return undefined;
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      cut() {
        down = true;
        for (const p of pairs) { p.client.destroy(); p.upstream.destroy(); }
        pairs.clear();
      },
      restore() {
        down = false;
        const waiting = held;
        held = [];
        for (const c of waiting) if (!c.destroyed) link(c);
      },
      close() {
        this.cut();
        for (const c of held) c.destroy();
        held = [];
        return new Promise((r) => server.close(() => r()));
      },
    }));
  });
}

// Drops the page's connection, waits until both sides know, runs send() while it is down,
// then lets it reconnect and waits until it is online again.
async function whileDown(page, proxy, node, room, user, send) {
  const reconnects = await noticeCount(page, 'reconnected to room');
  proxy.cut();
  await waitStatus(page, 'reconnecting');
  await waitOffline(node, room, user);
  await send();
  proxy.restore();
  await waitForNotice(page, 'reconnected to room', reconnects + 1);
  await waitStatus(page, 'online');
}

async function withBrowser(nodeArgs, fn) {
  requireExecutable(CHROMIUM, 'Chromium (the chat page is driven in a real browser)');
  const node = await startNode(nodeArgs);
  let browser = null;
  let proxy = null;
  try {
    browser = await launchBrowser();
    proxy = await startProxy(node.wsPort);
    await fn({ node, browser, proxy });
  } finally {
    if (browser) await browser.close();
    if (proxy) await proxy.close();
    await node.stop();
  }
}

test('chat history: the room\'s recent messages on open and after a reload',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withBrowser([], async ({ node, browser }) => {
      const room = 103;
      const xss = '<img src=x onerror="window.__pwned=1"><b>two</b>';
      const before = ['history one', xss, 'history three'];
      for (const m of before) await sendRoom(node, room, 'dave', m);
      const base = `http://127.0.0.1:${node.httpPort}/home/index?appID=${room}&userID=erin`;
      const erin = await openChat(browser, base);   // the server's placeholders, no overrides
      const { page } = erin;

      await t.test('ids compare as numbers (ms, then seq), not as strings', async () => {
        const r = await page.evaluate(() => {
          const c = window.__imgate.compareIDs;
          return [c('5-9', '5-10'), c('999-0', '1000-0'), c('1733300000000-2', '1733300000000-10'),
            c('10-0', '9-99'), c('7-3', '7-3'), c('18446744073709551615-0', '18446744073709551614-9'),
            c('', '0-0'), c('0-0', 'x')];
        });
        assert.deepStrictEqual(r.map(Math.sign), [-1, -1, -1, 1, 0, 1, -1, 1]);
      });

      await t.test('a page opened after 3 room messages shows them as earlier messages', async () => {
        await waitStatus(page, 'online');
        await waitCount(page, '#messages .msg.earlier', 3);
        assert.deepStrictEqual(await texts(page), before);
        assert.strictEqual(await page.locator('#messages .notice.earlier-start').count(), 1);
        // rendered as text: no element made of it, no script run
        assert.strictEqual(await page.locator('#messages img, #messages .text b').count(), 0);
        assert.strictEqual(await page.evaluate(() => typeof window.__pwned), 'undefined');
        const ids = await logIDs(node, room);
        assert.deepStrictEqual(await resumePoint(page), { lastID: '0-0', lastRoomID: ids[2] });
      });

      await t.test('a live message is shown as new, after the earlier ones', async () => {
        await sendRoom(node, room, 'dave', 'live after open');
        await waitForMessage(page, 'live after open');
        assert.deepStrictEqual(await classesOf(page, 'live after open'), [['msg']]);
        assert.deepStrictEqual(await texts(page), [...before, 'live after open']);
      });

      await t.test('after a reload the room\'s last messages are still shown', async () => {
        await page.reload({ timeout: WAIT_MS });
        await waitStatus(page, 'online');
        await waitCount(page, '#messages .msg.earlier', 4);
        assert.deepStrictEqual(await texts(page), [...before, 'live after open']);
        assert.strictEqual(await page.evaluate(() => typeof window.__pwned), 'undefined');
      });

      // The page logs in, then reads the history: a message sent in between is both in the
      // history and pushed live. The test holds the page's /user/history requests until it
      // has sent one; it must be shown once (history entries carry no msgID: the id de-dups).
      await t.test('a message sent while the history loads is shown once, with the earlier ones',
        async () => {
          let requested;
          const held = new Promise((r) => { requested = r; });
          let release;
          const released = new Promise((r) => { release = r; });
          const isHistory = (url) => url.pathname === '/user/history';
          await page.route(isHistory, async (route) => {
            if (!new URL(route.request().url()).searchParams.has('userID')) requested();
            await released;
            await route.continue();
          });
          try {
            await page.reload({ timeout: WAIT_MS });
            await within(held, 'the page to ask for the room\'s history', WAIT_MS);
            await waitStatus(page, 'online');
            await sendRoom(node, room, 'dave', 'sent during load');
          } finally {
            release();
          }
          await waitCount(page, '#messages .msg.earlier', 5);
          await sendRoom(node, room, 'dave', 'after load');   // pushed after the one above
          await waitForMessage(page, 'after load');
          await page.unroute(isHistory);
          assert.deepStrictEqual(await texts(page),
            [...before, 'live after open', 'sent during load', 'after load']);
          assert.deepStrictEqual(await classesOf(page, 'sent during load'), [['msg', 'earlier']]);
        });

      await t.test('no error notices and no script errors', async () => {
        assert.strictEqual(await page.locator('#messages .notice.error, #messages .notice.warn').count(), 0);
        assert.deepStrictEqual(page.errors, []);
      });
    });
  });

test('chat history: after a lost connection the page shows each missed message once, in order',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withBrowser([], async ({ node, browser, proxy }) => {
      const room = 102;
      await sendRoom(node, room, 'dave', 'earlier one');
      const { page } = await openChat(browser, chatURL(node, room, 'carol', proxy.port));
      const shown = ['earlier one'];

      await t.test('the page joins and sees live room and private messages', async () => {
        await waitStatus(page, 'online');
        await waitCount(page, '#messages .msg.earlier', 1);
        await sendRoom(node, room, 'dave', 'live room');
        await waitForMessage(page, 'live room');
        assert.strictEqual((await sendPrivate(node, room, 'carol', 'live private')).sendResults, true);
        await waitForMessage(page, 'live private');
        await sendInPage(page, 'carol broadcast');           // own: its id is never pushed live
        await waitForMessage(page, 'carol broadcast');
        shown.push('live room', 'live private', 'carol broadcast');
        assert.deepStrictEqual(await texts(page), shown);
      });

      await t.test('lastID follows the inbox, lastRoomID the room (own broadcast not known yet)',
        async () => {
          const roomIDs = await logIDs(node, room);
          const inboxIDs = await logIDs(node, room, 'carol');
          assert.strictEqual(roomIDs.length, 3);
          assert.strictEqual(inboxIDs.length, 1);
          assert.deepStrictEqual(await resumePoint(page), { lastID: inboxIDs[0], lastRoomID: roomIDs[1] });
        });

      await t.test('messages sent while the socket is down appear once, in order', async () => {
        await whileDown(page, proxy, node, room, 'carol', async () => {
          await sendRoom(node, room, 'dave', 'missed 1');
          assert.deepStrictEqual(await sendPrivate(node, room, 'carol', 'missed private'),
            { sendResults: false, stored: true });
          await sendRoom(node, room, 'erin', 'missed 2');
          await sendRoom(node, room, 'dave', 'missed 3');
        });
        await waitForMessage(page, 'missed 3');
        shown.push('missed 1', 'missed private', 'missed 2', 'missed 3');
        assert.deepStrictEqual(await texts(page), shown);
        assert.deepStrictEqual(await classesOf(page, 'missed private'), [['msg', 'private']]);
        assert.deepStrictEqual(await classesOf(page, 'carol broadcast'), [['msg', 'mine']]);
        const roomIDs = await logIDs(node, room);
        const inboxIDs = await logIDs(node, room, 'carol');
        assert.deepStrictEqual(await resumePoint(page),
          { lastID: inboxIDs[inboxIDs.length - 1], lastRoomID: roomIDs[roomIDs.length - 1] });
        assert.strictEqual(await noticeCount(page, MISSING), 0);
      });

      await t.test('a second reconnect with nothing missed shows nothing again', async () => {
        await whileDown(page, proxy, node, room, 'carol', async () => {});
        await sendRoom(node, room, 'dave', 'after second reconnect');
        await waitForMessage(page, 'after second reconnect');
        shown.push('after second reconnect');
        assert.deepStrictEqual(await texts(page), shown);
        assert.strictEqual(await noticeCount(page, MISSING), 0);
      });

      // A broadcast under the page's own name (another tab, a backend) is left out for the page,
      // live or replayed: a room push never goes to its sender (SPEC 2), and a lastRoomID replay
      // leaves out the user's own room sends the same way. Order proves it: the message sent
      // after it shows, and it never did.
      await t.test('a broadcast under the page\'s own name is left out, as live pushes leave out their sender',
        async () => {
          await whileDown(page, proxy, node, room, 'carol', async () => {
            await sendRoom(node, room, 'carol', 'carol elsewhere');
            await sendRoom(node, room, 'dave', 'after own');
          });
          await waitForMessage(page, 'after own');
          shown.push('after own');
          assert.deepStrictEqual(await texts(page), shown);
          assert.strictEqual((await sendPrivate(node, room, 'carol', 'private again')).sendResults, true);
          await waitForMessage(page, 'private again');
          shown.push('private again');
          assert.deepStrictEqual(await texts(page), shown);
          await whileDown(page, proxy, node, room, 'carol', async () => {
            await sendRoom(node, room, 'dave', 'last one');
          });
          await waitForMessage(page, 'last one');
          shown.push('last one');
          assert.deepStrictEqual(await texts(page), shown);
          assert.strictEqual(await noticeCount(page, MISSING), 0);
          const roomIDs = await logIDs(node, room);
          const inboxIDs = await logIDs(node, room, 'carol');
          assert.deepStrictEqual(await resumePoint(page),
            { lastID: inboxIDs[inboxIDs.length - 1], lastRoomID: roomIDs[roomIDs.length - 1] });
        });

      await t.test('no error notices and no script errors', async () => {
        assert.strictEqual(await page.locator('#messages .notice.error').count(), 0);
        assert.deepStrictEqual(page.errors, []);
      });
    });
  });

test('chat history: a retention gap shows "some messages may be missing"',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const args = ['--set', 'delivery.inboxMax=2', '--set', 'delivery.roomHistoryMax=2'];
    await withBrowser(args, async ({ node, browser, proxy }) => {
      const room = 104;
      for (const m of ['old 1', 'old 2', 'old 3']) await sendRoom(node, room, 'dave', m);
      const { page } = await openChat(browser, chatURL(node, room, 'frank', proxy.port));

      await t.test('the page shows what the room still keeps', async () => {
        await waitStatus(page, 'online');
        await waitCount(page, '#messages .msg.earlier', 2);
        await sendRoom(node, room, 'dave', 'seen live');
        await waitForMessage(page, 'seen live');
        assert.deepStrictEqual(await texts(page), ['old 2', 'old 3', 'seen live']);
      });

      await t.test('more than the logs keep is sent while down: the notice, then what is kept',
        async () => {
          await whileDown(page, proxy, node, room, 'frank', async () => {
            for (const m of ['gap 1', 'gap 2', 'gap 3', 'gap 4']) await sendRoom(node, room, 'dave', m);
            for (const m of ['p 1', 'p 2', 'p 3']) await sendPrivate(node, room, 'frank', m);
          });
          await waitForNotice(page, MISSING);
          await waitForMessage(page, 'p 3');
          assert.ok(await page.locator('#messages .notice.warn').first().isVisible(),
            'the notice is visible');
          assert.deepStrictEqual(await texts(page),
            ['old 2', 'old 3', 'seen live', 'gap 3', 'gap 4', 'p 2', 'p 3']);
          fs.mkdirSync(ARTIFACTS, { recursive: true });
          await page.screenshot({ path: path.join(ARTIFACTS, 'chat_history.png') });
        });

      await t.test('no error notices and no script errors', async () => {
        assert.strictEqual(await page.locator('#messages .notice.error').count(), 0);
        assert.deepStrictEqual(page.errors, []);
      });
    });
  });

test('chat history: a node with delivery.enabled=false still works (no history, no error)',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withBrowser(['--set', 'delivery.enabled=false'], async ({ node, browser, proxy }) => {
      const room = 101;
      await sendRoom(node, room, 'dave', 'before open, not kept');
      const { page } = await openChat(browser, chatURL(node, room, 'gina', proxy.port));

      await t.test('login and a live message', async () => {
        await waitStatus(page, 'online');
        await page.waitForSelector('#users li[data-user="gina"]', { timeout: WAIT_MS });
        await sendRoom(node, room, 'dave', 'live without delivery');
        await waitForMessage(page, 'live without delivery');
        assert.deepStrictEqual(await texts(page), ['live without delivery']);
      });

      await t.test('a reconnect logs in again as before, without resume ids or notices', async () => {
        await whileDown(page, proxy, node, room, 'gina', async () => {});
        await sendRoom(node, room, 'dave', 'live after reconnect');
        await waitForMessage(page, 'live after reconnect');
        assert.deepStrictEqual(await texts(page), ['live without delivery', 'live after reconnect']);
        assert.deepStrictEqual(await resumePoint(page), { lastID: '', lastRoomID: '' });
      });

      await t.test('no history, no error or warning notices, no script errors', async () => {
        assert.strictEqual(await page.locator('#messages .msg.earlier').count(), 0);
        assert.strictEqual(await page.locator('#messages .notice.error, #messages .notice.warn').count(), 0);
        assert.deepStrictEqual(page.errors, []);
      });
    });
  });
