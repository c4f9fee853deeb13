// Test harness shared by the JS tests: starts an imgate node on free ports and stops it again.
//
//   const { startNode } = require('./harness');
//   const node = await startNode();          // node.httpPort, node.wsPort, node.rpcPort
//   (with '--redis' in the extra args, start-up also waits for the rpc listening line and the
//   node's "connected to Redis" log line)
//   ...
//   await node.stop();                        // SIGTERM, then asserts a clean exit (status 0)
//
// The node runs in a fresh temporary directory, so no config/app.yaml is found and defaults
// apply. Only processes started here are ever signalled.
//
// Every wait and timeout here is scaled by SLOW (3 when IMGATE_SANITIZE is ON: the sanitized
// node is about 3x slower), as tests/integration/harness.py does; tests import SLOW and
// WAIT_MS from here. Nothing asserts on timing: a wait is for a positive event, bounded.
//
//   requireExecutable(path, what)              // throws (a failure, never a skip) if missing
//
//   const redis = await startRedis();          // redis.port; await redis.stop()
//   const nginx = await startNginx([n1, n2]);  // deploy/nginx.conf in front of the nodes:
//                                              // nginx.port, nginx.base; await nginx.stop()
//
//   await pollUntil(async () => ..., 'what')   // a polled state, bounded; nodeState(node[, debug])
//   launchChromium(), openChatPage(browser, chatPageURL(node, room, user)), waitChatStatus,
//   waitChatMessage, chatMessages, chatNotices: the chat page in headless Chromium (below)
'use strict';

const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
// Resolved here: the node is spawned in a temp directory, so a relative IMGATE_BIN would miss.
const IMGATE_BIN = path.resolve(process.env.IMGATE_BIN || path.join(REPO_ROOT, 'build', 'imgate'));
// Sanitized binaries are slower: scale waits, never assert on timing.
const SLOW = ['ON', '1', 'TRUE'].includes((process.env.IMGATE_SANITIZE || '').toUpperCase()) ? 3 : 1;
const WAIT_MS = 10000 * SLOW;
// Bounds of a node's start (ports printed) and stop (process exited), as in
// tests/integration/harness.py: 30 s each, times SLOW. Generous: they only catch a hang on a
// machine shared with other builds and tests (the node's own app.shutdownGrace is 5 s).
// nginx gets the same bounds; Redis's start is bounded by WAIT_MS.
const START_TIMEOUT_MS = 30000 * SLOW;
const STOP_TIMEOUT_MS = 30000 * SLOW;
const MAX_LOG_CHARS = 256 * 1024;

const running = new Set();
const exitHooks = new Set();   // synchronous last-resort cleanups (nginx: master and workers)

// Last-resort cleanup: a test that crashed must not leave its nodes behind.
process.on('exit', () => {
  for (const hook of exitHooks) {
    try { hook(); } catch (_) { /* best effort */ }
  }
  for (const proc of running) {
    try { proc.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
});

// Keeps the tail of a stream's text, for diagnostics.
function collector() {
  let text = '';
  return {
    add(chunk) {
      text += chunk;
      if (text.length > MAX_LOG_CHARS) text = text.slice(text.length - MAX_LOG_CHARS);
    },
    get text() { return text; },
  };
}

// A program the tests need: `make test` installs it, so its absence is a failure, with a
// message that says what to install (node --test would count a skip as a pass).
function requireExecutable(file, what) {
  let ok = false;
  try {
    fs.accessSync(file, fs.constants.X_OK);
    ok = true;
  } catch (_) { /* reported below */ }
  if (!ok) {
    throw new Error(`${file} not found or not executable: ${what} is required for this test ` +
      '(make deps installs it); failing rather than skipping');
  }
}

function parseListenLine(line, ports) {
  const m = /^(http|ws|rpc) listening on (\S+):(\d+)$/.exec(line.trim());
  if (m) ports[m[1]] = Number(m[3]);
}

function waitForExit(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

// Starts a node; resolves once it has printed its http and ws listening lines.
async function startNode(extraArgs = [], env = {}) {
  if (!fs.existsSync(IMGATE_BIN)) {
    throw new Error(`imgate binary not found at ${IMGATE_BIN} (build it or set IMGATE_BIN)`);
  }
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'imgate-test-'));
  const args = ['--http-port', '0', '--ws-port', '0', '--bind', '127.0.0.1', '--workers', '2',
    ...extraArgs];
  const proc = spawn(IMGATE_BIN, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const exited = waitForExit(proc).then((r) => { running.delete(proc); return r; });

  const stdout = collector();
  const stderr = collector();
  const ports = {};
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => stderr.add(chunk));
  const lines = readline.createInterface({ input: proc.stdout });
  lines.on('line', (line) => {
    stdout.add(line + '\n');
    parseListenLine(line, ports);
  });

  const describe = () => `imgate ${args.join(' ')}\n--- stdout ---\n${stdout.text}` +
    `--- stderr ---\n${stderr.text}`;

  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`node did not report its ports within ${START_TIMEOUT_MS} ms\n${describe()}`));
    }, START_TIMEOUT_MS);
    // Cluster mode (--redis) also prints the rpc port, after the other two.
    const wantRpc = extraArgs.includes('--redis') || 'IMGATE_REDIS' in env;
    const check = () => {
      if (ports.http && ports.ws && (!wantRpc || ports.rpc)) { clearTimeout(timer); resolve(); }
    };
    lines.on('line', check);
    proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`node exited during start-up (code ${code}, signal ${signal})\n${describe()}`));
    });
  });
  try {
    await started;
  } catch (err) {
    if (proc.pid !== undefined) await exited;   // a spawn error has no process to wait for
    running.delete(proc);
    fs.rmSync(cwd, { recursive: true, force: true });
    throw err;
  }

  let stopping = null;
  async function stop() {
    if (!stopping) {
      stopping = (async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        let killed = false;
        const timer = setTimeout(() => { killed = true; proc.kill('SIGKILL'); }, STOP_TIMEOUT_MS);
        const result = await exited;
        clearTimeout(timer);
        fs.rmSync(cwd, { recursive: true, force: true });
        return { ...result, killed };
      })();
    }
    const { code, signal, killed } = await stopping;
    assert.ok(!killed, `node did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM: killed\n${describe()}`);
    assert.strictEqual(code, 0,
      `node should exit with status 0 after SIGTERM (code ${code}, signal ${signal})\n${describe()}`);
  }

  const node = {
    proc,
    cwd,
    httpPort: ports.http,
    wsPort: ports.ws,
    rpcPort: ports.rpc,
    httpBase: `http://127.0.0.1:${ports.http}`,
    wsBase: `ws://127.0.0.1:${ports.ws}`,
    stdout: () => stdout.text,
    stderr: () => stderr.text,
    describe,
    stop,
  };
  // Cluster mode: the node listens before its Redis link is up, and a send meanwhile
  // answers 500 "Redis is unavailable" (by design: it does not wait). A test starts
  // once the node has logged that the link is up (its API may need a key: not polled;
  // a node started with --log-level warn or error does not log it: not waited for).
  const level = extraArgs[extraArgs.indexOf('--log-level') + 1];
  const quiet = extraArgs.includes('--log-level') && level !== 'debug' && level !== 'info';
  if ((extraArgs.includes('--redis') || 'IMGATE_REDIS' in env || process.env.IMGATE_REDIS) && !quiet) {
    try {
      await pollUntil(async () => stderr.text.includes('cluster: connected to Redis'),
        'the node\'s Redis link to be up', START_TIMEOUT_MS);
    } catch (err) {
      await stop().catch(() => {});
      throw new Error(`${err.message}\n${describe()}`);
    }
  }
  return node;
}

// Calls the HTTP API with a form body; resolves to the parsed JSON reply.
async function api(node, apiPath, params = {}) {
  const res = await fetch(node.httpBase + apiPath, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${apiPath}: reply is not JSON (HTTP ${res.status}): ${text.slice(0, 500)}`);
  }
}

// ---- WebSocket clients (npm ws) shared by the tests ----

const WebSocket = require('ws');

// Rejects after ms with a message naming what was awaited.
function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Opens a ws client that queues every message it receives as {text, isBinary, json}
// (json is null for binary frames); ws.closed resolves with {code, reason}.
function openWs(url, options = {}) {
  const ws = new WebSocket(url, options);
  ws.inbox = [];
  ws.waiters = [];
  ws.on('message', (data, isBinary) => {
    const text = data.toString('utf8');
    ws.inbox.push({ text, isBinary, json: isBinary ? null : JSON.parse(text) });
    for (const w of ws.waiters.splice(0)) w();
  });
  ws.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of ws.waiters.splice(0)) w();
    });
  });
  ws.on('error', () => { /* surfaces as a close */ });
  return within(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  }), 'the WebSocket to open');
}

// Resolves with the first queued message (removed from the queue) whose JSON matches pred.
function nextMessage(ws, pred, what) {
  return within(new Promise((resolve, reject) => {
    const look = () => {
      const i = ws.inbox.findIndex((m) => m.json && pred(m.json));
      if (i >= 0) return resolve(ws.inbox.splice(i, 1)[0]);
      if (ws.readyState === WebSocket.CLOSED) return reject(new Error(`closed while waiting for ${what}`));
      ws.waiters.push(look);
      return undefined;
    };
    look();
  }), what);
}

// ---- helper servers: redis-server and nginx, on free loopback ports ----

// A free TCP port on 127.0.0.1 (closed again, so another process could take it: small race).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// A throw-away redis-server (no persistence) on a free loopback port.
// stop(): SIGTERM, then SIGKILL if it has not exited within WAIT_MS.
async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no'], { stdio: 'ignore' });
  let spawnError = null;
  proc.once('error', (err) => { spawnError = err; });
  running.add(proc);
  const exited = waitForExit(proc).then((r) => { running.delete(proc); return r; });
  const deadline = Date.now() + WAIT_MS;
  while (!(await canConnect(port))) {        // polled until it accepts, bounded
    if (spawnError) {
      running.delete(proc);
      throw new Error(`redis-server could not be run (${spawnError.message}): it is required ` +
        'for this test (make deps installs it)');
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server did not accept on 127.0.0.1:${port} within ${WAIT_MS} ms ` +
        `(exit code ${proc.exitCode})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  async function stop() {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await within(exited, 'redis-server to exit').catch(() => proc.kill('SIGKILL'));
    await exited;
  }
  return { port, proc, exited, stop };
}

const NGINX_BIN = process.env.NGINX_BIN || '/usr/sbin/nginx';
const NGINX_CONF = path.join(REPO_ROOT, 'deploy', 'nginx.conf');

// The text between the '{' at or after `start` and its matching '}', with its offsets.
function blockBody(text, start) {
  const open = text.indexOf('{', start);
  let depth = 0;
  for (let j = open; j >= 0 && j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return { from: open + 1, to: j };
  }
  throw new Error(`deploy/nginx.conf: unbalanced braces after offset ${start}`);
}

// deploy/nginx.conf rewritten for a test, as tests/integration/test_cluster_nginx.py does:
// listen 127.0.0.1:port, the two upstreams pointed at the given nodes (one server line per node,
// the file's server parameters kept), one small worker, access log and temp files in dir, and
// `user root;` only when running as root (else no user directive). Every rewrite must match, so
// a change of the file's layout fails here, by name.
function renderNginxConf(text, port, nodes, dir) {
  const sub = (re, repl, s) => {
    if (!re.test(s)) throw new Error(`deploy/nginx.conf: nothing matches ${re} (did its layout change?)`);
    return s.replace(re, repl);
  };
  let s = text;
  s = sub(/^user\s+[^;]*;/m, process.getuid && process.getuid() === 0 ? 'user root;' : '', s);
  s = sub(/^worker_processes\s+[^;]*;/m, 'worker_processes 1;', s);
  s = sub(/^worker_rlimit_nofile\s+[^;]*;/m, 'worker_rlimit_nofile 4096;', s);
  s = sub(/^(\s*)worker_connections\s+[^;]*;/m, '$1worker_connections 1024;', s);
  s = sub(/^(\s*)listen\s+[^;]*;/m, `$1listen 127.0.0.1:${port};`, s);
  s = sub(/^(\s*)access_log\s+\S+/m, `$1access_log ${path.join(dir, 'access.log')}`, s);
  s = s.replace(/^\s*error_log\s+[^;]*;/mg, '');          // given with -g instead
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `    ${k}_temp_path ${path.join(dir, `${k}_temp`)};\n`).join('');
  s = sub(/^http\s*\{/m, `http {\n${temps}`, s);
  for (const [name, key] of [['imgate_ws', 'wsPort'], ['imgate_http', 'httpPort']]) {
    const m = new RegExp(`\\bupstream\\s+${name}\\s*\\{`).exec(s);
    if (!m) throw new Error(`deploy/nginx.conf: no upstream ${name}`);
    const { from, to } = blockBody(s, m.index + m[0].length - 1);
    const body = s.slice(from, to);
    const first = /^[ \t]*server\s+\S+([^;\n]*);/m.exec(body);
    if (!first) throw new Error(`deploy/nginx.conf: upstream ${name} has no server line`);
    const params = first[1];                                  // e.g. " max_fails=2 fail_timeout=10s"
    const lines = nodes.map((n) => `        server 127.0.0.1:${n[key]}${params};\n`).join('');
    const rest = body.slice(first.index).replace(/^[ \t]*server\s+[^;]*;[^\n]*\n/mg, '');
    s = s.slice(0, from) + body.slice(0, first.index) + lines + rest + s.slice(to);
  }
  const active = s.replace(/#[^\n]*/g, '');
  for (const forbidden of ['/var/', '/run/', '/etc/']) {
    if (active.includes(forbidden)) throw new Error(`a system path is left in the test nginx config:\n${s}`);
  }
  return s;
}

// The PIDs of a process's children (nginx: its workers), from /proc.
function childPids(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean)
      .map(Number);
  } catch (_) {
    return [];
  }
}

// nginx (NGINX_BIN) with deploy/nginx.conf in front of `nodes` (objects with wsPort and
// httpPort, e.g. from startNode), in the foreground, everything in its own temp directory.
// options.port: the listen port (default: a free one). `nginx -t` must pass first. Resolves
// once nginx accepts connections. stop() sends SIGTERM to the master (then SIGKILL to it and
// its workers, by PID) and returns the error log; log() reads it at any time; serious() gives
// its [emerg]/[alert]/[crit] lines.
async function startNginx(nodes, options = {}) {
  requireExecutable(NGINX_BIN, 'nginx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgate-nginx-'));
  // As root the workers may run as another user: they must be able to reach the directory.
  fs.chmodSync(dir, 0o755);
  const port = options.port || await freePort();
  const confPath = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'error.log');
  const outPath = path.join(dir, 'stdout.txt');
  const conf = renderNginxConf(fs.readFileSync(NGINX_CONF, 'utf8'), port, nodes, dir);
  fs.writeFileSync(confPath, conf);
  const globals = `daemon off; pid ${path.join(dir, 'nginx.pid')}; error_log ${errorLog} info;`;
  const base = ['-p', `${dir}/`, '-c', confPath, '-g', globals];

  const log = () => ['error.log', 'stdout.txt'].map((f) => {
    try { return fs.readFileSync(path.join(dir, f), 'utf8'); } catch (_) { return ''; }
  }).join('');
  const serious = () => log().split('\n')
    .filter((l) => l.includes('[emerg]') || l.includes('[alert]') || l.includes('[crit]'));

  const t = spawnSync(NGINX_BIN, [...base, '-t'], { cwd: dir, encoding: 'utf8', timeout: 30000 * SLOW });
  const testOutput = `${t.stdout || ''}${t.stderr || ''}`;
  if (t.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`nginx -t failed (status ${t.status}, ${t.error || 'no spawn error'}):\n` +
      `${testOutput}\n--- config ---\n${conf}`);
  }

  const out = fs.openSync(outPath, 'w');
  const proc = spawn(NGINX_BIN, base, { cwd: dir, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  running.add(proc);
  let workers = [];
  const killAll = () => {
    workers = childPids(proc.pid).length ? childPids(proc.pid) : workers;
    try { proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    for (const pid of workers) {
      try { process.kill(pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }
  };
  exitHooks.add(killAll);
  const exited = waitForExit(proc).then((r) => { running.delete(proc); return r; });

  const deadline = Date.now() + START_TIMEOUT_MS;
  let up = false;
  while (!up) {
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) break;
    up = await canConnect(port);
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  if (!up) {
    killAll();
    await exited;
    exitHooks.delete(killAll);
    const text = log();
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`nginx did not accept on 127.0.0.1:${port} (code ${proc.exitCode}, ` +
      `signal ${proc.signalCode}):\n${text.slice(-3000)}`);
  }

  let stopping = null;
  function stop() {
    if (!stopping) {
      stopping = (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          workers = childPids(proc.pid);
          proc.kill('SIGTERM');
        }
        try {
          await within(exited, 'nginx to exit', STOP_TIMEOUT_MS);
        } catch (_) {
          killAll();
          await exited;
        }
        exitHooks.delete(killAll);
        const text = log();
        fs.rmSync(dir, { recursive: true, force: true });
        return text;
      })();
    }
    return stopping;
  }

  return {
    proc, dir, port, conf, testOutput,
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    log, serious, stop,
  };
}

// Polls the async pred until it returns a truthy value (resolved with it), every POLL_MS, bounded
// by ms; fails naming what (and the last value or error) when it never does. For a state of a
// node or page that no event announces: a positive condition, never a sleep as a barrier.
const POLL_MS = 50;
async function pollUntil(pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// The data of a node's /system/state (with the client list when debug).
async function nodeState(node, debug = false) {
  const url = `${node.httpBase}/system/state${debug ? '?isDebug=true' : ''}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(WAIT_MS) });
  const text = await res.text();
  assert.strictEqual(res.status, 200, `${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text).data;
}

// ---- the chat page (src/web/chat.html) in headless Chromium, through playwright-core ----
//
//   requireExecutable(CHROMIUM, ...); const browser = await launchChromium();
//   const chat = await openChatPage(browser, chatPageURL(node, 101, 'carol'));
//   await waitChatStatus(chat.page, 'online'); ... chat.errors, chat.wsURLs
//
// PAGE_WAIT_MS bounds every wait on a page (generous: the test machines are small and shared).

const CHROMIUM = '/usr/bin/chromium';
const PAGE_WAIT_MS = 30000 * SLOW;

function launchChromium() {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: PAGE_WAIT_MS,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// The chat page of node for room and user, its WebSocket and API pointed at `ws` and `http`
// (host:port; default: the node's own ports) by the page's ?ws= and ?http= overrides.
function chatPageURL(node, room, user, ws = `127.0.0.1:${node.wsPort}`,
  http = `127.0.0.1:${node.httpPort}`) {
  return `http://127.0.0.1:${node.httpPort}/home/index?appID=${room}&userID=${user}` +
    `&ws=${ws}&http=${http}`;
}

// Opens url in a fresh browser context; records the page's script errors (errors) and the URL
// of every WebSocket it opens (wsURLs, failed attempts included).
async function openChatPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  const chat = { context, page, errors: [], wsURLs: [] };
  page.on('pageerror', (err) => chat.errors.push(err.message));
  page.on('websocket', (ws) => chat.wsURLs.push(ws.url()));
  await page.goto(url, { timeout: PAGE_WAIT_MS });
  return chat;
}

function waitChatStatus(page, status) {
  return page.waitForFunction(
    (s) => document.getElementById('status').textContent.trim() === s, status,
    { timeout: PAGE_WAIT_MS });
}

// Until a message with exactly this text is shown.
function waitChatMessage(page, text) {
  return page.waitForFunction(
    (t) => Array.from(document.querySelectorAll('#messages .msg .text'))
      .some((m) => m.textContent === t),
    text, { timeout: PAGE_WAIT_MS });
}

// The shown messages in page order, as {text, from, classes (sorted, space-separated), id (the
// log entry's id, '' when none)}; the notices as {text, classes}.
function chatMessages(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('#messages .msg'))
    .map((m) => ({ text: m.querySelector('.text').textContent, from: m.querySelector('.from').textContent,
      classes: Array.from(m.classList).sort().join(' '), id: m.dataset.id || '' })));
}

function chatNotices(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('#messages .notice'))
    .map((m) => ({ text: m.textContent, classes: Array.from(m.classList).sort().join(' ') })));
}

module.exports = { startNode, api, IMGATE_BIN, REPO_ROOT, SLOW, WAIT_MS, within, openWs, nextMessage,
  freePort, canConnect, startRedis, startNginx, renderNginxConf, NGINX_BIN, requireExecutable,
  pollUntil, nodeState, CHROMIUM, PAGE_WAIT_MS, launchChromium, chatPageURL, openChatPage,
  waitChatStatus, waitChatMessage, chatMessages, chatNotices };

// ---- appended for the chat page tests (chat_nginx, chat_ui) ----
//
//   const cluster = await startNginxCluster(2, ['--set', 'app.webSocketUrl=127.0.0.1']);
//   cluster.redis, cluster.nodes, cluster.nginx ...; await cluster.stop()
//
// A redis-server, `count` nodes in cluster mode (rpc port 0, registerInterval 1 s, extraArgs
// added), waited for until every node lists every node in cluster.servers, then nginx running
// deploy/nginx.conf in front of them (options.nginxPort: its port, default a free one). stop()
// stops what was started, nginx first, then the nodes (asserting a clean exit), then Redis; a
// start that fails stops what it had started and rethrows.
async function startNginxCluster(count, extraArgs = [], options = {}) {
  const cluster = { redis: null, nodes: [], nginx: null };
  let stopping = null;
  cluster.stop = () => {
    if (!stopping) {
      stopping = (async () => {
        try {
          if (cluster.nginx) await cluster.nginx.stop();
        } finally {
          try {
            for (const n of cluster.nodes) await n.stop();
          } finally {
            if (cluster.redis) await cluster.redis.stop();
          }
        }
      })();
    }
    return stopping;
  };
  try {
    cluster.redis = await startRedis();
    const args = ['--redis', `127.0.0.1:${cluster.redis.port}`, '--rpc-port', '0',
      '--set', 'cluster.registerInterval=1', '--set', `cluster.serverTimeout=${3 * SLOW}`, ...extraArgs];
    for (let i = 0; i < count; i++) cluster.nodes.push(await startNode(args));
    const selves = [];
    for (const n of cluster.nodes) selves.push((await nodeState(n)).cluster.self);
    assert.strictEqual(new Set(selves).size, count, `the nodes have distinct registry entries: ${selves}`);
    for (const n of cluster.nodes) {
      await pollUntil(async () => {
        const { servers } = (await nodeState(n)).cluster;
        return selves.every((s) => servers.includes(s));
      }, `every node to list all of ${selves} in cluster.servers`);
    }
    cluster.nginx = await startNginx(cluster.nodes, { port: options.nginxPort });
  } catch (err) {
    await cluster.stop().catch(() => { /* the start's error is the one to report */ });
    throw err;
  }
  return cluster;
}

// Types text into the chat page's composer and sends it; resolves once the input is cleared
// (the node accepted the send).
async function sendChat(page, text) {
  await page.fill('#input', text);
  await page.click('#send', { timeout: PAGE_WAIT_MS });
  await page.waitForFunction(() => document.getElementById('input').value === '', null,
    { timeout: PAGE_WAIT_MS });
}

Object.assign(module.exports, { startNginxCluster, sendChat });

// Saves a screenshot of the chat page as artifacts/<file> (tests/js/artifacts, git-ignored),
// then asserts that the page is clean: no script errors (chat.errors), no error notices and,
// when `base` is given, that every URL it requested (chat.requests) starts with base + "/".
const CHAT_ARTIFACTS = path.join(__dirname, 'artifacts');
async function checkChatPage(chat, file, base) {
  fs.mkdirSync(CHAT_ARTIFACTS, { recursive: true });
  await chat.page.screenshot({ path: path.join(CHAT_ARTIFACTS, file), timeout: PAGE_WAIT_MS });
  const who = chat.name || file;
  assert.deepStrictEqual(chat.errors, [], `script errors on ${who}'s page`);
  const notices = await chat.page.$$eval('#messages .notice.error', (els) => els.map((e) => e.textContent));
  assert.deepStrictEqual(notices, [], `error notices on ${who}'s page`);
  if (base) {
    const elsewhere = (chat.requests || []).filter((u) => !u.startsWith(`${base}/`));
    assert.deepStrictEqual(elsewhere, [], `${who}'s page requested something not under ${base}`);
  }
}

Object.assign(module.exports, { checkChatPage, CHAT_ARTIFACTS });

// A fresh browser context (its own localStorage) and page for the chat page, not yet navigated:
// { context, page, errors (script errors), wsURLs (every WebSocket it opens), requests (every
// URL), failed (failed requests and HTTP >= 400 answers) }. options: viewport (default
// 1100x760), colorScheme ('light'), isMobile (also touch).
async function newChatContext(browser, options = {}) {
  const context = await browser.newContext({
    viewport: options.viewport || { width: 1100, height: 760 },
    colorScheme: options.colorScheme || 'light',
    isMobile: !!options.isMobile,
    hasTouch: !!options.isMobile,
  });
  const page = await context.newPage();
  const chat = { context, page, errors: [], wsURLs: [], requests: [], failed: [] };
  page.on('pageerror', (err) => chat.errors.push(err.message));
  page.on('websocket', (ws) => chat.wsURLs.push(ws.url()));
  page.on('request', (req) => chat.requests.push(req.url()));
  // A fetch the page itself gave up when the test navigated it (reload, room
  // link) fails as net::ERR_ABORTED: the browser's doing, not a server
  // fault (those are ERR_EMPTY_RESPONSE, ERR_CONNECTION_RESET, ... or an
  // HTTP status, all still counted). Seen under ASan, where answers are slower.
  page.on('requestfailed', (req) => {
    const why = req.failure() && req.failure().errorText;
    if (why === 'net::ERR_ABORTED' && ['fetch', 'xhr'].includes(req.resourceType())) return;
    chat.failed.push(`${req.url()}: ${why}`);
  });
  page.on('response', (res) => { if (res.status() >= 400) chat.failed.push(`${res.url()}: HTTP ${res.status()}`); });
  return chat;
}

Object.assign(module.exports, { newChatContext });
