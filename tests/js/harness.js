// Test harness shared by the JS tests: starts an imgate node on free ports and stops it again.
//
//   const { startNode } = require('./harness');
//   const node = await startNode();          // node.httpPort, node.wsPort, node.rpcPort
//   (with '--redis' in the extra args, start-up also waits for the rpc listening line)
//   ...
//   await node.stop();                        // SIGTERM, then asserts a clean exit (status 0)
//
// The node runs in a fresh temporary directory, so no config/app.yaml is found and defaults
// apply. Only processes started here are ever signalled.
'use strict';

const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const IMGATE_BIN = process.env.IMGATE_BIN || path.join(REPO_ROOT, 'build', 'imgate');
const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;
const MAX_LOG_CHARS = 256 * 1024;

const running = new Set();

// Last-resort cleanup: a test that crashed must not leave its nodes behind.
process.on('exit', () => {
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
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
        const result = await exited;
        clearTimeout(timer);
        fs.rmSync(cwd, { recursive: true, force: true });
        return result;
      })();
    }
    const { code, signal } = await stopping;
    assert.strictEqual(code, 0,
      `node should exit with status 0 after SIGTERM (code ${code}, signal ${signal})\n${describe()}`);
  }

  return {
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

// Sanitized binaries are slower: scale waits, never assert on timing.
const SLOW = ['ON', '1', 'TRUE'].includes((process.env.IMGATE_SANITIZE || '').toUpperCase()) ? 3 : 1;
const WAIT_MS = 10000 * SLOW;

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

module.exports = { startNode, api, IMGATE_BIN, REPO_ROOT, SLOW, WAIT_MS, within, openWs, nextMessage };
