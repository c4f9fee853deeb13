// Browser test of the chat page (GET /home/index): two people in room 101, driven with
// headless Chromium through playwright-core. /usr/bin/chromium is required (make deps installs
// it): without it the test fails, it is never skipped. Every wait is for an event in the page,
// bounded and scaled by SLOW under the sanitizers; nothing asserts on timing.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test chat.test.js
'use strict';

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { startNode, requireExecutable, SLOW } = require('./harness');

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const WAIT_MS = 30000 * SLOW;   // generous: the test machines are small and shared
const TEST_TIMEOUT_MS = 240000 * SLOW;
const XSS = '<script>window.__pwned=1</script><b>x</b>';

function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: WAIT_MS,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Opens the chat page in its own browser context and records any script error it raises.
async function openChat(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  await page.goto(url, { timeout: WAIT_MS });
  return { context, page };
}

function waitOnline(page) {
  return page.waitForFunction(
    () => document.getElementById('status').textContent.trim() === 'online', null,
    { timeout: WAIT_MS });
}

function waitForMessage(page, text) {
  return page.waitForFunction(
    (t) => Array.from(document.querySelectorAll('#messages .msg'))
      .some((m) => m.textContent.includes(t)),
    text, { timeout: WAIT_MS });
}

function userSelector(name) {
  return `#users li[data-user="${name}"]`;
}

async function send(page, text) {
  await page.fill('#input', text);
  await page.click('#send', { timeout: WAIT_MS });
  await page.waitForFunction(() => document.getElementById('input').value === '', null,
    { timeout: WAIT_MS });
}

async function messageClasses(page, text) {
  return page.evaluate((t) => {
    const m = Array.from(document.querySelectorAll('#messages .msg'))
      .find((el) => el.textContent.includes(t));
    return m ? Array.from(m.classList) : null;
  }, text);
}

test('chat page: presence, broadcast, escaping, private messages', { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    requireExecutable(CHROMIUM, 'Chromium (the chat page is driven in a real browser)');
    const node = await startNode();
    let browser = null;
    try {
      browser = await launchBrowser();
      const base = `http://127.0.0.1:${node.httpPort}/home/index?appID=101`;
      // alice relies on the server's placeholder substitution, bob on the ?ws/?http overrides.
      const alice = await openChat(browser, `${base}&userID=alice`);
      const bobURL = `${base}&userID=bob&ws=127.0.0.1:${node.wsPort}&http=127.0.0.1:${node.httpPort}`;
      let bob = null;

      await t.test('alice logs in', async () => {
        await waitOnline(alice.page);
        assert.strictEqual(await alice.page.textContent('#me'), 'alice');
        assert.strictEqual((await alice.page.textContent('#target')).trim(), 'everyone');
        await alice.page.waitForSelector(userSelector('alice'), { timeout: WAIT_MS });
      });

      await t.test('bob joins and appears in both lists', async () => {
        bob = await openChat(browser, bobURL);
        await waitOnline(bob.page);
        assert.strictEqual(await bob.page.textContent('#me'), 'bob');
        await alice.page.waitForSelector(userSelector('bob'), { timeout: WAIT_MS });
        await bob.page.waitForSelector(userSelector('alice'), { timeout: WAIT_MS });
      });

      await t.test('a broadcast from alice reaches bob', async () => {
        await send(alice.page, 'hello bob, this is alice');
        await waitForMessage(bob.page, 'hello bob, this is alice');
        await waitForMessage(alice.page, 'hello bob, this is alice');   // shown locally
      });

      await t.test('message text is rendered as text, not HTML', async () => {
        await send(alice.page, XSS);
        await waitForMessage(bob.page, XSS);
        assert.strictEqual(await bob.page.evaluate(() => typeof window.__pwned), 'undefined');
        assert.strictEqual(await alice.page.evaluate(() => typeof window.__pwned), 'undefined');
        assert.strictEqual(await bob.page.locator('#messages b, #messages script').count(), 0);
      });

      await t.test('a private message chosen by clicking a user arrives', async () => {
        await alice.page.click(userSelector('bob'), { timeout: WAIT_MS });
        await alice.page.waitForFunction(
          () => document.getElementById('target').textContent.trim() === 'bob', null,
          { timeout: WAIT_MS });
        await send(alice.page, 'psst, just for bob');
        await waitForMessage(bob.page, 'psst, just for bob');
        await waitForMessage(alice.page, 'psst, just for bob');
        const classes = await messageClasses(alice.page, 'psst, just for bob');
        assert.ok(classes.includes('private'), `own private message marked private: ${classes}`);
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await alice.page.screenshot({ path: path.join(ARTIFACTS, 'chat.png') });
      });

      await t.test('closing bob\'s page removes him from alice\'s list', async () => {
        await bob.context.close();
        await alice.page.waitForSelector(userSelector('bob'), { state: 'detached', timeout: WAIT_MS });
        await alice.page.waitForSelector(userSelector('alice'), { timeout: WAIT_MS });
      });

      await t.test('no script errors in the pages', () => {
        assert.deepStrictEqual(alice.page.errors, []);
        assert.deepStrictEqual(bob.page.errors, []);
      });
    } finally {
      if (browser) await browser.close();
      await node.stop();
    }
  });
