// Native TLS driven by npm `ws` over wss:// (and node:https), with node:test.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test tls.test.js
//
// A fresh self-signed certificate for 127.0.0.1 is made with the openssl
// command; the clients trust exactly that certificate (`ca`), nothing is
// verified loosely. One node for the whole file; every wait is for an event,
// bounded (harness.js: scaled by SLOW under the sanitizers); all traffic is to
// 127.0.0.1.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { startNode, within } = require('./harness');

let node;
let certDir;
let ca;

// A self-signed certificate for 127.0.0.1/localhost, valid for a day.
function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '1',
    '-keyout', key, '-out', cert], { stdio: 'ignore', timeout: 60000 });
  return { cert, key };
}

before(async () => {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgate-tls-'));
  const { cert, key } = makeCert(certDir);
  ca = fs.readFileSync(cert);
  node = await startNode(['--set', `app.tlsCert=${cert}`, '--set', `app.tlsKey=${key}`,
    '--set', 'app.echoPath=/echo']);
});

after(async () => {
  try {
    if (node) await node.stop();
  } finally {
    if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
  }
});

// A wss client trusting only the test certificate; resolves once open.
function open(wsPath = '/acc') {
  const ws = new WebSocket(`wss://127.0.0.1:${node.wsPort}${wsPath}`, { ca });
  ws.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  return within(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  }), 'the wss connection to open');
}

// The next message on ws (data, isBinary).
function nextMessage(ws, what) {
  return within(new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('close', () => reject(new Error(`closed while waiting for ${what}`)));
  }), what);
}

async function close(ws) {
  if (ws.readyState === WebSocket.CLOSED) return;
  ws.close(1000);
  await within(ws.closed, 'the close');
}

// GET over https, trusting only the test certificate; resolves to the JSON.
function httpsGet(apiPath) {
  return within(new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: node.httpPort, path: apiPath, ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(new Error(`${apiPath}: not JSON (HTTP ${res.statusCode}): ${body.slice(0, 300)}`));
        }
      });
    });
    req.on('error', reject);
  }), `GET ${apiPath}`);
}

test('login round trip over wss, seen by the https API', async () => {
  const ws = await open();
  try {
    ws.send(JSON.stringify({ seq: 'tls-1', cmd: 'login',
      data: { serviceToken: '', appID: 101, userID: 'js-tls' } }));
    const { data, isBinary } = await nextMessage(ws, 'the login reply');
    assert.strictEqual(isBinary, false);
    assert.deepStrictEqual(JSON.parse(data.toString('utf8')),
      { seq: 'tls-1', cmd: 'login', response: { code: 200, codeMsg: 'Success', data: null } });
    const online = await httpsGet('/user/online?appID=101&userID=js-tls');
    assert.strictEqual(online.data.online, true);
    const state = await httpsGet('/system/state');
    assert.strictEqual(state.data.tls, true);
  } finally {
    await close(ws);
  }
});

test('a binary message is echoed intact over wss', async () => {
  const ws = await open('/echo');
  try {
    const payload = crypto.randomBytes(40 * 1024);
    ws.send(payload);
    const { data, isBinary } = await nextMessage(ws, 'the echo');
    assert.strictEqual(isBinary, true);
    assert.ok(Buffer.compare(Buffer.from(data), payload) === 0, 'echoed bytes differ');
  } finally {
    await close(ws);
  }
});

test('a client that does not trust the certificate is refused by the client side', async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${node.wsPort}/acc`);
  const err = await within(new Promise((resolve) => ws.once('error', resolve)), 'the TLS error');
  assert.match(String(err.code || err.message), /SELF_SIGNED|self[- ]signed/i);
});
