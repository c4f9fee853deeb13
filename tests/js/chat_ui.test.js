// The chat page's user-facing behaviour, in headless Chromium (playwright-core) against one
// node: the name kept in localStorage across reloads and rooms and changed in the page, the
// sender of a private message, the inline favicon (no request fails), where the WebSocket goes
// when webSocketUrl has no port, WCAG AA contrast of every button's text in light and dark mode,
// and the phone layout (one header row, every control at least 40 px in both directions).
// Screenshots at desktop (1100x760) and phone (390x844) sizes, light and dark:
// artifacts/chat_ui_{desktop,phone}_{light,dark}.png.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test chat_ui.test.js
//
// /usr/bin/chromium is required (make deps installs it): without it before() fails and every
// test fails; nothing is skipped. Every wait is for an event in a page or a node state polled
// until it holds, bounded (scaled by SLOW under the sanitizers); nothing asserts on timing.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { startNode, api, freePort, requireExecutable, pollUntil, nodeState, within, CHROMIUM, PAGE_WAIT_MS,
  SLOW, launchChromium, waitChatStatus, waitChatMessage, sendChat, newChatContext, CHAT_ARTIFACTS } = require('./harness');

const ARTIFACTS = CHAT_ARTIFACTS;
const TEST_TIMEOUT_MS = 180000 * SLOW;
const RUN = Date.now().toString(36);      // makes every msgID of this run unique
const NAME_KEY = 'imgate.chat.name';
const DESKTOP = { width: 1100, height: 760 };
const PHONE = { width: 390, height: 844 };
const MIN_TARGET_PX = 40;
const MIN_CONTRAST = 4.5;                 // WCAG AA, normal-size text

let node = null;
let browser = null;

before(async () => {
  requireExecutable(CHROMIUM, 'Chromium (the chat page is driven in a real browser)');
  node = await startNode();
  browser = await launchChromium();
});

after(async () => {
  try {
    if (browser) await within(browser.close(), 'the browser to close', PAGE_WAIT_MS).catch(() => {});
  } finally {
    if (node) await node.stop();
  }
});

// The chat page of `n` for room (and user, when given: ?userID=, not kept).
function pageURL(n, room, user) {
  return `${n.httpBase}/home/index?appID=${room}${user ? `&userID=${encodeURIComponent(user)}` : ''}`;
}

// A fresh browser context (its own localStorage) and page, recording errors, WebSocket URLs,
// requests and failures (harness newChatContext).
const newChat = (options = {}) => newChatContext(browser, options);

async function openOnline(chat, url) {
  await chat.page.goto(url, { timeout: PAGE_WAIT_MS });
  await waitChatStatus(chat.page, 'online');
  return (await chat.page.textContent('#me')).trim();
}

const shownName = (page) => page.textContent('#me').then((s) => s.trim());
const keptName = (page) => page.evaluate((k) => localStorage.getItem(k), NAME_KEY);

// The node's logged-in clients as "appID/userID" strings (sorted).
async function clientsOf(n) {
  const d = await nodeState(n, true);
  return (d.clients || []).filter((c) => c.userID).map((c) => `${c.appID}/${c.userID}`).sort();
}

// Until the node's clients named `user` are exactly the rooms in `want` ("101", ...).
function waitClientRooms(n, user, want) {
  const wanted = want.map((r) => `${r}/${user}`).sort().join(',');
  return pollUntil(async () => (await clientsOf(n)).filter((c) => c.endsWith(`/${user}`)).join(',') === wanted,
    `node clients named ${user} to be exactly ${wanted}`, PAGE_WAIT_MS);
}

const send = sendChat;

async function selectUser(page, user) {
  await page.click(`#users li[data-user="${user}"]`, { timeout: PAGE_WAIT_MS });
  await page.waitForFunction((u) => document.getElementById('target').textContent.trim() === u,
    user, { timeout: PAGE_WAIT_MS });
}

// The shown message with exactly this text: {from, tag, meta (the whole meta line), classes}.
async function shownMessage(page, text) {
  await waitChatMessage(page, text);
  return page.evaluate((t) => {
    const m = Array.from(document.querySelectorAll('#messages .msg'))
      .find((e) => e.querySelector('.text').textContent === t);
    const tag = m.querySelector('.meta .tag');
    return { from: m.querySelector('.from').textContent, tag: tag ? tag.textContent : '',
      meta: m.querySelector('.meta').innerText, classes: Array.from(m.classList).sort().join(' ') };
  }, text);
}

// ---- the name ------------------------------------------------------------------------------

test('the name is kept across reloads and rooms, and can be changed in the page', { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const chat = await newChat();
    try {
      let name = '';
      await t.test('a first visit picks a random name and keeps it', async () => {
        name = await openOnline(chat, pageURL(node, 101));
        assert.match(name, /^[a-z]+-\d{4}$/);
        assert.strictEqual(await keptName(chat.page), name, 'localStorage keeps the name');
        await waitClientRooms(node, name, [101]);
      });

      await t.test('a reload logs in with the same userID', async () => {
        await chat.page.reload({ timeout: PAGE_WAIT_MS });
        await waitChatStatus(chat.page, 'online');
        assert.strictEqual(await shownName(chat.page), name);
        await waitClientRooms(node, name, [101]);
      });

      await t.test('switching room keeps the name', async () => {
        await chat.page.click('#rooms a:text-is("102")', { timeout: PAGE_WAIT_MS });
        await chat.page.waitForURL(/appID=102/, { timeout: PAGE_WAIT_MS });
        await waitChatStatus(chat.page, 'online');
        assert.strictEqual(await shownName(chat.page), name);
        assert.strictEqual(await chat.page.textContent('#room'), '102');
        await waitClientRooms(node, name, [102]);
      });

      const renamed = 'zoë the 2nd';   // 12 bytes (ë is two)
      await t.test('a name that the node would refuse is not taken', async () => {
        await chat.page.click('#me', { timeout: PAGE_WAIT_MS });
        await chat.page.waitForSelector('#name-dialog[open]', { timeout: PAGE_WAIT_MS });
        assert.strictEqual(await chat.page.inputValue('#name-input'), name, 'the dialog starts with the name');
        for (const [bad, why] of [['   ', /Enter a name/], ['x'.repeat(20), /At most 19 bytes \(this one has 20\)/],
          ['ëëëëëëëëëë', /this one has 20/]]) {
          await chat.page.fill('#name-input', bad);
          await chat.page.click('#name-save');
          await chat.page.waitForSelector('#name-error:not([hidden])', { timeout: PAGE_WAIT_MS });
          assert.match(await chat.page.textContent('#name-error'), why);
          assert.ok(await chat.page.isVisible('#name-dialog[open]'), 'the dialog stays open');
        }
        assert.strictEqual(await keptName(chat.page), name, 'nothing was kept');
        await chat.page.click('#name-cancel');
        await chat.page.waitForSelector('#name-dialog:not([open])', { state: 'attached', timeout: PAGE_WAIT_MS });
        assert.strictEqual(await shownName(chat.page), name);
      });

      await t.test('a new name is kept and the page logs in under it, in the same room', async () => {
        await chat.page.click('#me', { timeout: PAGE_WAIT_MS });
        await chat.page.fill('#name-input', `  ${renamed} `);
        await Promise.all([
          chat.page.waitForNavigation({ timeout: PAGE_WAIT_MS }),
          chat.page.click('#name-save'),
        ]);
        await waitChatStatus(chat.page, 'online');
        assert.strictEqual(await shownName(chat.page), renamed);
        assert.strictEqual(await keptName(chat.page), renamed);
        assert.strictEqual(await chat.page.textContent('#room'), '102');
        await waitClientRooms(node, renamed, [102]);
        await waitClientRooms(node, name, []);   // the old name left
      });

      await t.test('the new name survives a reload and a room switch', async () => {
        await chat.page.reload({ timeout: PAGE_WAIT_MS });
        await waitChatStatus(chat.page, 'online');
        assert.strictEqual(await shownName(chat.page), renamed);
        await chat.page.click('#rooms a:text-is("101")', { timeout: PAGE_WAIT_MS });
        await chat.page.waitForURL(/appID=101/, { timeout: PAGE_WAIT_MS });
        await waitChatStatus(chat.page, 'online');
        assert.strictEqual(await shownName(chat.page), renamed);
        await waitClientRooms(node, renamed, [101]);
      });

      await t.test('?userID= overrides the name for that page (room links keep it) and is not kept', async () => {
        await openOnline(chat, pageURL(node, 103, 'visitor'));
        assert.strictEqual(await shownName(chat.page), 'visitor');
        assert.strictEqual(await keptName(chat.page), renamed);
        const hrefs = await chat.page.$$eval('#rooms a', (as) => as.map((a) => a.getAttribute('href')));
        assert.ok(hrefs.every((h) => h.includes('userID=visitor')), hrefs.join(' '));
        await waitClientRooms(node, 'visitor', [103]);
      });

      await t.test('no script errors, no failed requests', () => {
        assert.deepStrictEqual(chat.errors, []);
        assert.deepStrictEqual(chat.failed, []);
      });
    } finally {
      await chat.context.close();
    }
  });

// ---- private messages ----------------------------------------------------------------------

test('a private message shows who sent it, live and when delivered later', { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const alice = await newChat();
    let bob = await newChat();
    try {
      await openOnline(alice, pageURL(node, 104, 'alice'));
      await openOnline(bob, pageURL(node, 104, 'bob'));
      await alice.page.waitForSelector('#users li[data-user="bob"]', { timeout: PAGE_WAIT_MS });

      await t.test('live: "private message from alice" on bob\'s page', async () => {
        await selectUser(alice.page, 'bob');
        const text = `psst bob ${RUN}`;
        await send(alice.page, text);
        const got = await shownMessage(bob.page, text);
        assert.strictEqual(got.classes, 'msg private');
        assert.strictEqual(got.from, 'private message');
        assert.strictEqual(got.tag, 'from alice');
        assert.match(got.meta, /private message\s+from alice/);
        const own = await shownMessage(alice.page, text);
        assert.strictEqual(own.tag, 'private to bob');
        assert.strictEqual(own.classes, 'mine msg private');
      });

      await t.test('a backend\'s private push (no sender) stays "private message to you"', async () => {
        const text = `from the backend ${RUN}`;
        const r = await api(node, '/user/sendMessage',
          { appID: 104, userID: 'bob', msgID: `ui-${RUN}-backend`, message: text });
        assert.strictEqual(r.code, 200, JSON.stringify(r));
        const got = await shownMessage(bob.page, text);
        assert.strictEqual(got.from, 'private message');
        assert.strictEqual(got.tag, 'to you');
        // A msgID in the page's format naming an impossible user (20 bytes) names nobody.
        const odd = `odd sender ${RUN}`;
        await api(node, '/user/sendMessage',
          { appID: 104, userID: 'bob', msgID: `imgate-pm/p-${RUN}/${'y'.repeat(20)}`, message: odd });
        assert.strictEqual((await shownMessage(bob.page, odd)).tag, 'to you');
      });

      await t.test('sent while bob was away: shown with its sender when he comes back', async () => {
        await bob.context.close();
        await waitClientRooms(node, 'bob', []);
        await alice.page.waitForSelector('#users li[data-user="bob"]', { state: 'detached', timeout: PAGE_WAIT_MS });
        // The target stays bob after he left; the send is logged in his inbox.
        assert.strictEqual((await alice.page.textContent('#target')).trim(), 'bob');
        const text = `while you were away ${RUN}`;
        await send(alice.page, text);
        assert.match((await shownMessage(alice.page, text)).tag, /private to bob \(offline/);
        bob = await newChat();
        await openOnline(bob, pageURL(node, 104, 'bob'));
        const got = await shownMessage(bob.page, text);
        assert.strictEqual(got.from, 'private message');
        assert.strictEqual(got.tag, 'from alice');
      });

      await t.test('no script errors', () => {
        assert.deepStrictEqual(alice.errors, []);
        assert.deepStrictEqual(bob.errors, []);
      });
    } finally {
      await alice.context.close();
      await bob.context.close().catch(() => {});
    }
  });

// ---- favicon and addresses -----------------------------------------------------------------

test('the favicon is inline: nothing is requested for it and no request fails', { timeout: TEST_TIMEOUT_MS },
  async () => {
    const chat = await newChat();
    try {
      await openOnline(chat, pageURL(node, 101, 'iconcheck'));
      const icon = await chat.page.evaluate(async () => {
        const link = document.querySelector('link[rel~="icon"]');
        if (!link) return null;
        const img = new Image();
        img.src = link.href;
        await img.decode();
        return { href: link.getAttribute('href'), width: img.naturalWidth, height: img.naturalHeight };
      });
      assert.ok(icon, 'the page has a <link rel="icon">');
      assert.match(icon.href, /^data:image\/svg\+xml,/);
      assert.ok(icon.width > 0 && icon.height > 0, `the icon decodes as an image: ${JSON.stringify(icon)}`);
      const asked = chat.requests.filter((u) => /favicon/.test(u));
      assert.deepStrictEqual(asked, [], 'no favicon request');
      assert.deepStrictEqual(chat.failed, [], 'no failed request (no 404)');
      assert.deepStrictEqual(chat.errors, []);
    } finally {
      await chat.context.close();
    }
  });

// Without a port the page connects to where it came from: behind nginx (chat_nginx.test.js) that
// is nginx, which serves /acc. Served by a node itself, that is the node's HTTP port, which has
// no /acc: the attempt is what is checked here (the page keeps trying, as after any failure).
test('webSocketUrl without a port: the page uses its own host and port; with a port, that port',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    for (const [what, value] of [['no port', '127.0.0.1'], ['empty', ''], ['another host name', 'localhost']]) {
      await t.test(`webSocketUrl ${what} (${JSON.stringify(value)})`, async () => {
        const n = await startNode(['--set', `app.webSocketUrl=${value}`, '--set', `app.httpUrl=${value}`]);
        const chat = await newChat();
        try {
          await chat.page.goto(pageURL(n, 101, 'portless'), { timeout: PAGE_WAIT_MS });
          await pollUntil(() => chat.wsURLs.length > 0, 'the page to open a WebSocket', PAGE_WAIT_MS);
          assert.strictEqual(chat.wsURLs[0], `ws://127.0.0.1:${n.httpPort}/acc`,
            'the WebSocket goes to where the page came from');
          assert.ok(chat.requests.every((u) => u.startsWith(`${n.httpBase}/`)), chat.requests.join('\n'));
          assert.deepStrictEqual(chat.errors, []);
        } finally {
          await chat.context.close();
          await n.stop();
        }
      });
    }
    await t.test('webSocketUrl with a port (another host name): that port, the page\'s host', async () => {
      const wsPort = await freePort();
      const n = await startNode(['--ws-port', String(wsPort), '--set', `app.webSocketUrl=localhost:${wsPort}`]);
      const chat = await newChat();
      try {
        await openOnline(chat, pageURL(n, 101, 'ported'));
        assert.deepStrictEqual(chat.wsURLs, [`ws://127.0.0.1:${wsPort}/acc`]);
        await waitClientRooms(n, 'ported', [101]);
      } finally {
        await chat.context.close();
        await n.stop();
      }
    });
  });

// ---- looks: contrast, phone layout, screenshots ---------------------------------------------

// In the page: the contrast ratio of each visible element's text against what is behind it
// (its own background, else its ancestors', composited; the page's when none is opaque).
// Elements with opacity below 1 are reported (a disabled control), not measured.
function measureContrast(page, selectors) {
  return page.evaluate((sels) => {
    const parse = (c) => {
      const m = /rgba?\(([^)]+)\)/.exec(c);
      if (!m) return null;
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const over = (top, under) => ({
      r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
      b: top.b * top.a + under.b * (1 - top.a), a: 1,
    });
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0) layers.push(c);
        if (c && c.a === 1) break;
      }
      let bg = { r: 255, g: 255, b: 255, a: 1 };
      for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
      return bg;
    };
    const lum = (c) => {
      const ch = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
    };
    const opacity = (el) => {
      let o = 1;
      for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
      return o;
    };
    const out = [];
    for (const sel of sels) {
      for (const el of document.querySelectorAll(sel)) {
        const r = el.getBoundingClientRect();
        const st = getComputedStyle(el);
        if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || parseFloat(st.fontSize) === 0) continue;
        const bg = background(el);
        const fg = over(parse(st.color), bg);
        const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
        out.push({ sel, text: el.textContent.trim().slice(0, 20), ratio: (hi + 0.05) / (lo + 0.05),
          opacity: opacity(el), color: st.color, background: `rgb(${bg.r.toFixed(0)}, ${bg.g.toFixed(0)}, ${bg.b.toFixed(0)})` });
      }
    }
    return out;
  }, selectors);
}

// In the page: every visible control (links, buttons, inputs, the clickable users) with its size.
function tapTargets(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll(
    'a[href], button, input, select, textarea, [role="button"], #users li[data-user]'))
    .map((el) => ({ el, r: el.getBoundingClientRect() }))
    .filter(({ el, r }) => r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden')
    .map(({ el, r }) => ({ what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${el.textContent.trim().slice(0, 16)}"`,
      width: Math.round(r.width * 10) / 10, height: Math.round(r.height * 10) / 10 })));
}

const BUTTONS = ['#send', '#rooms a', '#me', '#status', '#clear-target', '#users li.selected', '#name-save', '#name-cancel'];

let room = 100;
for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  for (const scheme of ['light', 'dark']) {
    const shot = `chat_ui_${size}_${scheme}.png`;
    room += 1;
    const thisRoom = room;
    test(`${size} ${viewport.width}x${viewport.height}, ${scheme}: button contrast >= ${MIN_CONTRAST}` +
      `${size === 'phone' ? ', one header row, controls >= 40 px' : ''}; screenshot ${shot}`,
    { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const mia = `mia-${size}-${scheme}`.slice(0, 19);
      const ben = `ben-${size}-${scheme}`.slice(0, 19);
      const other = await newChat();
      const chat = await newChat({ viewport, colorScheme: scheme, isMobile: size === 'phone' });
      try {
        await openOnline(chat, pageURL(node, thisRoom, mia));
        await openOnline(other, pageURL(node, thisRoom, ben));
        await chat.page.waitForSelector(`#users li[data-user="${ben}"]`, { timeout: PAGE_WAIT_MS });
        // Some content: a broadcast each way and a private message to the page under test.
        await send(other.page, `Hi ${mia}, welcome to room ${thisRoom}`);
        await shownMessage(chat.page, `Hi ${mia}, welcome to room ${thisRoom}`);
        await send(chat.page, 'Thanks! Looks good on this screen.');
        await selectUser(other.page, mia);
        await send(other.page, 'A private note, just for you');
        const pm = await shownMessage(chat.page, 'A private note, just for you');
        assert.strictEqual(pm.tag, `from ${ben}`);
        await selectUser(chat.page, ben);
        assert.strictEqual(await chat.page.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches),
          scheme === 'dark');

        await t.test('button text contrast (WCAG AA)', async () => {
          const seen = await measureContrast(chat.page, BUTTONS);
          await chat.page.click('#me');
          await chat.page.waitForSelector('#name-dialog[open]', { timeout: PAGE_WAIT_MS });
          seen.push(...await measureContrast(chat.page, ['#name-save', '#name-cancel', '#name-input']));
          await chat.page.click('#name-cancel');
          for (const sel of BUTTONS.filter((s) => s !== '#status' || size === 'desktop')) {
            assert.ok(seen.some((s) => s.sel === sel), `${sel} was measured: ${JSON.stringify(seen)}`);
          }
          for (const s of seen) {
            t.diagnostic(`${s.sel} "${s.text}": ${s.ratio.toFixed(2)} (${s.color} on ${s.background})`);
            assert.strictEqual(s.opacity, 1, `${s.sel} is fully opaque: ${JSON.stringify(s)}`);
            assert.ok(s.ratio >= MIN_CONTRAST, `${s.sel} "${s.text}": contrast ${s.ratio.toFixed(2)} < ` +
              `${MIN_CONTRAST} (${s.color} on ${s.background})`);
          }
        });

        if (size === 'phone') {
          await t.test('the header is one row, nothing overflows sideways', async () => {
            const box = await chat.page.evaluate(() => {
              const header = document.querySelector('header').getBoundingClientRect();
              const parts = ['#rooms', '.who', '#me', '#status'].map((s) => {
                const r = document.querySelector(s).getBoundingClientRect();
                return { s, top: r.top, bottom: r.bottom, right: r.right };
              });
              return { height: header.height, top: header.top, bottom: header.bottom, parts,
                scrollWidth: document.documentElement.scrollWidth, innerWidth };
            });
            assert.ok(box.height <= 60, `header height ${box.height} (one row of 40 px targets)`);
            const rowTop = Math.max(...box.parts.map((p) => p.top));
            const rowBottom = Math.min(...box.parts.map((p) => p.bottom));
            assert.ok(rowTop < rowBottom, `header parts share one row: ${JSON.stringify(box.parts)}`);
            for (const p of box.parts) assert.ok(p.right <= box.innerWidth, `${p.s} fits: ${JSON.stringify(p)}`);
            assert.ok(box.scrollWidth <= box.innerWidth, `no sideways scrolling: ${box.scrollWidth}`);
          });

          await t.test(`every control is at least ${MIN_TARGET_PX} px both ways`, async () => {
            const targets = await tapTargets(chat.page);
            await chat.page.click('#me');
            await chat.page.waitForSelector('#name-dialog[open]', { timeout: PAGE_WAIT_MS });
            const inDialog = await tapTargets(chat.page);
            await chat.page.click('#name-cancel');
            const all = targets.concat(inDialog.filter((d) => d.what.includes('#name')));
            for (const want of ['#clear-target', '#send', '#input', '#me', '#name-save', '#name-cancel', '#name-input']) {
              assert.ok(all.some((x) => x.what.includes(want)), `${want} was measured: ${JSON.stringify(all)}`);
            }
            assert.strictEqual(all.filter((x) => x.what.startsWith('a ')).length, 4, 'the four room links');
            for (const x of all) {
              t.diagnostic(`${x.what}: ${x.width} x ${x.height}`);
              assert.ok(x.width >= MIN_TARGET_PX && x.height >= MIN_TARGET_PX,
                `${x.what} is ${x.width} x ${x.height} px, under ${MIN_TARGET_PX}`);
            }
          });
        }

        await t.test(`screenshot artifacts/${shot}`, async () => {
          fs.mkdirSync(ARTIFACTS, { recursive: true });
          await chat.page.screenshot({ path: path.join(ARTIFACTS, shot), timeout: PAGE_WAIT_MS });
          assert.ok(fs.statSync(path.join(ARTIFACTS, shot)).size > 1000);
          assert.deepStrictEqual(chat.errors, []);
          assert.deepStrictEqual(chat.failed, []);
        });
      } finally {
        await chat.context.close();
        await other.context.close();
      }
    });
  }
}
