// Securing the node-to-node port (SPEC §7.3), driven by @grpc/grpc-js, a client nobody here wrote:
// a node with cluster.rpcToken refuses every call that does not carry
// "authorization: Bearer <token>" (UNAUTHENTICATED, nothing delivered, counted in /system/state and
// /metrics), and a node with cluster.rpcTls* (mutual TLS) refuses plaintext clients and TLS clients
// without a certificate signed by its CA.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test grpc_auth.test.js
//
// Two redis-servers and two nodes in cluster mode (one per redis, so they never call each other),
// all on 127.0.0.1; certificates are made here with the openssl CLI (a CA with an IP SAN of
// 127.0.0.1 on the node's certificate, as nodes call each other at ip:port). Absence is proven by
// order, never by a quiet window: after the refused calls a marker goes to the same client through
// the node's own HTTP API (/user/sendMessage) and nothing refused may arrive before it.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const WebSocket = require('ws');
const { startNode, startRedis, api, REPO_ROOT, WAIT_MS, SLOW, within, openWs,
  nextMessage: next } = require('./harness');

const PATH = '/protobuf.AccServer/';
const packageDef = protoLoader.loadSync(path.join(REPO_ROOT, 'proto', 'acc.proto'),
  { keepCase: true, defaults: true });
const AccServer = grpc.loadPackageDefinition(packageDef).protobuf.AccServer;
const TOKEN = `t0k-${crypto.randomBytes(12).toString('hex')}`;
const RUN = Date.now().toString(36);

let dir;          // certificates
let pki;          // { ca, node, client, rogue, rogueCa }: PEM texts
let redisT;
let redisM;
let tokenNode;    // cluster.rpcToken = TOKEN
let mtlsNode;     // cluster.rpcTls* = node certificate + CA
const clients = [];

// ---- certificates (openssl CLI) ----

function openssl(args) {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 60000 * SLOW });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.error || ''}${r.stderr}`);
}

// A self-signed CA: files <name>.pem and <name>.key.
function makeCa(name) {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', `/CN=${name}`, '-days', '1', '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

// A certificate for 127.0.0.1 (IP SAN), for servers and clients, signed by the CA `ca`.
function makeCert(name, ca) {
  fs.writeFileSync(path.join(dir, `${name}.ext`),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' +
    'basicConstraints=CA:FALSE\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-days', '1', '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
}

const file = (name) => path.join(dir, name);
const pem = (name) => fs.readFileSync(file(name));

// ---- clients and calls ----

function grpcClient(port, creds = grpc.credentials.createInsecure()) {
  const c = new AccServer(`127.0.0.1:${port}`, creds);
  clients.push(c);
  return c;
}

// A unary call; resolves to {rsp} or {err} (never rejects).
function call(client, method, req, metadata = new grpc.Metadata()) {
  return new Promise((resolve) => {
    client[method](req, metadata, { deadline: Date.now() + WAIT_MS },
      (err, rsp) => resolve(err ? { err } : { rsp }));
  });
}

function bearer(value) {
  const md = new grpc.Metadata();
  md.add('authorization', value);
  return md;
}

function assertRefused(r, code, what) {
  assert.ok(r.err, `${what}: expected a refusal, got ${JSON.stringify(r.rsp)}`);
  assert.strictEqual(r.err.code, code, `${what}: ${r.err.code} ${r.err.details}`);
}

async function login(node, user, appID = 101) {
  const ws = await openWs(`${node.wsBase}/acc`);
  ws.send(JSON.stringify({ seq: 'l', cmd: 'login', data: { serviceToken: '', appID, userID: user } }));
  const r = await next(ws, (m) => m.seq === 'l' && m.cmd === 'login', 'the login reply');
  assert.strictEqual(r.json.response.code, 200, r.text);
  return ws;
}

async function close(ws) {
  if (!ws || ws.readyState === WebSocket.CLOSED) return;
  ws.close(1000);
  await within(ws.closed, 'the close');
}

let markers = 0;

// Proves by order that nothing forged reached ws (user on node): a marker goes to the user
// through the node's own HTTP API; every message before it must pass `allowed`.
async function nothingBeforeMarker(node, ws, user, allowed, what) {
  const msgID = `marker-${RUN}-${++markers}`;
  const r = await api(node, '/user/sendMessage', { appID: 101, userID: user, msgID, message: 'marker' });
  assert.deepStrictEqual([r.code, r.data], [200, { sendResults: true }], JSON.stringify(r));
  await next(ws, (m) => m.seq === msgID && m.cmd === 'msg', `the marker ${msgID} at ${user}`);
  const i = ws.inbox.length;   // next() removed the marker: what is left came before it or with it
  const before = ws.inbox.splice(0, i).map((m) => m.json);
  const bad = before.filter((m) => !allowed(m));
  assert.deepStrictEqual(bad, [], `${what}: nothing forged may reach ${user} before the marker`);
}

async function state(node) {
  const r = await api(node, '/system/state');
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r.data;
}

async function metric(node, name) {
  const text = await (await fetch(`${node.httpBase}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics:\n${text}`);
  return Number(m[1]);
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgate-grpc-auth-'));
  makeCa('ca');
  makeCert('node', 'ca');
  makeCert('client', 'ca');
  makeCa('rogue-ca');
  makeCert('rogue', 'rogue-ca');
  redisT = await startRedis();
  redisM = await startRedis();
  tokenNode = await startNode(['--redis', `127.0.0.1:${redisT.port}`, '--rpc-port', '0',
    '--set', `cluster.rpcToken=${TOKEN}`]);
  mtlsNode = await startNode(['--redis', `127.0.0.1:${redisM.port}`, '--rpc-port', '0',
    '--set', `cluster.rpcTlsCert=${file('node.pem')}`, '--set', `cluster.rpcTlsKey=${file('node.key')}`,
    '--set', `cluster.rpcTlsCA=${file('ca.pem')}`]);
  pki = { ca: pem('ca.pem') };
});

after(async () => {
  for (const c of clients) c.close();
  const stops = [];
  for (const n of [tokenNode, mtlsNode]) if (n) stops.push(n.stop());
  try {
    await Promise.all(stops);
  } finally {
    for (const r of [redisT, redisM]) if (r) await r.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('token: a call without metadata is refused UNAUTHENTICATED and delivers nothing', async () => {
  const c = grpcClient(tokenNode.rpcPort);
  const u1 = await login(tokenNode, 'u1');
  const u2 = await login(tokenNode, 'u2');
  try {
    const s0 = await state(tokenNode);
    assert.strictEqual(s0.cluster.rpcAuth, 'token');
    const refused0 = s0.cluster.rpcRefusedCalls;
    assert.strictEqual(await metric(tokenNode, 'imgate_rpc_refused_calls_total'), refused0);

    const calls = [
      ['SendMsgAll', { seq: 'forged-enter', appID: 101, userID: 'mallory', cms: 'enter', type: 'text', msg: '' }],
      ['SendMsgAll', { seq: 'forged-all', appID: 101, userID: 'mallory', cms: 'msg', type: 'text', msg: 'pay here' }],
      ['SendMsg', { seq: 'forged-one', appID: 101, userID: 'u1', cms: 'msg', type: 'text', msg: 'pay here' }],
      ['QueryUsersOnline', { appID: 101, userID: 'u1' }],
      ['GetUserList', { appID: 0 }],
      ['KickUser', { appID: 0, userID: 'u1', reason: 'forged kick' }],   // imgate only: same rule
    ];
    for (const [method, req] of calls) {
      const r = await call(c, method, req);
      assertRefused(r, grpc.status.UNAUTHENTICATED, `${method} without metadata`);
      assert.match(r.err.details, /token/, r.err.details);
    }
    // The token is checked before the method: an unknown one is refused the same way.
    const unknown = await new Promise((resolve) => {
      c.makeUnaryRequest(`${PATH}Nope`, (b) => b, (b) => b, Buffer.alloc(0), new grpc.Metadata(),
        { deadline: Date.now() + WAIT_MS }, (err, rsp) => resolve(err ? { err } : { rsp }));
    });
    assertRefused(unknown, grpc.status.UNAUTHENTICATED, 'an unknown method without metadata');

    const enterOfU2 = (m) => m.cmd === 'enter' && m.response.data.from === 'u2';
    await nothingBeforeMarker(tokenNode, u1, 'u1', enterOfU2, 'calls without metadata');
    await nothingBeforeMarker(tokenNode, u2, 'u2', () => false, 'calls without metadata');

    const s1 = await state(tokenNode);
    assert.strictEqual(s1.cluster.rpcRefusedCalls - refused0, calls.length + 1, JSON.stringify(s1.cluster));
    assert.strictEqual(await metric(tokenNode, 'imgate_rpc_refused_calls_total'), s1.cluster.rpcRefusedCalls);
    assert.ok(!JSON.stringify(s1).includes(TOKEN), '/system/state never shows the token');
  } finally {
    await close(u2);
    await close(u1);
  }
});

test('token: a wrong token is refused UNAUTHENTICATED', async () => {
  const c = grpcClient(tokenNode.rpcPort);
  const ws = await login(tokenNode, 'u3');
  try {
    const refused0 = (await state(tokenNode)).cluster.rpcRefusedCalls;
    const wrong = [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer wrong', TOKEN,
      `Basic ${TOKEN}`, 'Bearer ', `Bearer ${TOKEN.toUpperCase()}`];
    for (const value of wrong) {
      const r = await call(c, 'SendMsg',
        { seq: 'forged-wrong', appID: 101, userID: 'u3', cms: 'msg', type: 'text', msg: 'x' }, bearer(value));
      assertRefused(r, grpc.status.UNAUTHENTICATED, `authorization: ${value}`);
      const all = await call(c, 'SendMsgAll',
        { seq: 'forged-wrong-all', appID: 101, userID: 'mallory', cms: 'enter', type: 'text', msg: '' },
        bearer(value));
      assertRefused(all, grpc.status.UNAUTHENTICATED, `SendMsgAll with authorization: ${value}`);
    }
    // u1 and u2 of the test before may leave after u3 came in: their exits are real presence
    // events (the node announces a leave once it has processed the close, which the client does
    // not wait for), not forged ones.
    const exitOfEarlier = (m) => m.cmd === 'exit' && ['u1', 'u2'].includes(m.response.data.from) &&
      !String(m.seq).startsWith('forged');
    await nothingBeforeMarker(tokenNode, ws, 'u3', exitOfEarlier, 'calls with a wrong token');
    const refused1 = (await state(tokenNode)).cluster.rpcRefusedCalls;
    assert.strictEqual(refused1 - refused0, wrong.length * 2);
  } finally {
    await close(ws);
  }
});

test('token: the right token gets through', async () => {
  const c = grpcClient(tokenNode.rpcPort);
  const u4 = await login(tokenNode, 'u4');
  const u5 = await login(tokenNode, 'u5');
  try {
    const refused0 = (await state(tokenNode)).cluster.rpcRefusedCalls;
    const one = await call(c, 'SendMsg',
      { seq: 'ok-one', appID: 101, userID: 'u4', cms: 'msg', type: 'text', msg: 'hello' }, bearer(`Bearer ${TOKEN}`));
    assert.deepStrictEqual(one.rsp, { retCode: 200, errMsg: 'Success', sendMsgID: 'ok-one' }, String(one.err));
    const got = await next(u4, (m) => m.seq === 'ok-one', 'the message ok-one');
    assert.strictEqual(got.json.response.data.msg, 'hello');
    const all = await call(c, 'SendMsgAll',
      { seq: 'ok-all', appID: 101, userID: 'u4', cms: 'msg', type: 'text', msg: 'to all' }, bearer(`Bearer ${TOKEN}`));
    assert.strictEqual(all.rsp && all.rsp.retCode, 200, String(all.err));
    await next(u5, (m) => m.seq === 'ok-all', 'the broadcast ok-all at u5');
    const online = await call(c, 'QueryUsersOnline', { appID: 101, userID: 'u5' }, bearer(`Bearer ${TOKEN}`));
    assert.strictEqual(online.rsp && online.rsp.online, true, String(online.err));
    const kicked = await call(c, 'KickUser', { appID: 101, userID: 'u5', reason: 'token ok' },
      bearer(`Bearer ${TOKEN}`));
    assert.deepStrictEqual(kicked.rsp, { retCode: 200, errMsg: 'Success', kicked: 1 }, String(kicked.err));
    assert.deepStrictEqual(await within(u5.closed, 'u5 to be kicked'), { code: 4000, reason: 'token ok' });
    assert.strictEqual((await state(tokenNode)).cluster.rpcRefusedCalls, refused0, 'nothing refused');
  } finally {
    await close(u5);
    await close(u4);
  }
});

test('mTLS: plaintext clients and TLS clients without a CA-signed certificate are refused', async () => {
  const ws = await login(mtlsNode, 'v1');
  try {
    assert.strictEqual((await state(mtlsNode)).cluster.rpcAuth, 'mtls');
    const req = { seq: 'forged-tls', appID: 101, userID: 'v1', cms: 'msg', type: 'text', msg: 'x' };
    const allReq = { seq: 'forged-tls-all', appID: 101, userID: 'mallory', cms: 'enter', type: 'text', msg: '' };
    const kinds = [
      ['a plaintext client', grpc.credentials.createInsecure()],
      ['a TLS client without a certificate', grpc.credentials.createSsl(pki.ca)],
      ['a TLS client with a certificate of another CA',
        grpc.credentials.createSsl(pki.ca, pem('rogue.key'), pem('rogue.pem'))],
    ];
    for (const [what, creds] of kinds) {
      const c = grpcClient(mtlsNode.rpcPort, creds);
      const r = await call(c, 'SendMsg', req);
      assertRefused(r, grpc.status.UNAVAILABLE, what);
      const all = await call(c, 'SendMsgAll', allReq);
      assertRefused(all, grpc.status.UNAVAILABLE, `${what} (SendMsgAll)`);
    }
    await nothingBeforeMarker(mtlsNode, ws, 'v1', () => false, 'refused TLS clients');
    assert.ok(mtlsNode.proc.exitCode === null, 'the node is still running');
  } finally {
    await close(ws);
  }
});

test('mTLS: a client with a CA-signed certificate gets through', async () => {
  const c = grpcClient(mtlsNode.rpcPort, grpc.credentials.createSsl(pki.ca, pem('client.key'), pem('client.pem')));
  const v2 = await login(mtlsNode, 'v2');
  const v3 = await login(mtlsNode, 'v3');
  try {
    const r = await call(c, 'SendMsg', { seq: 'tls-one', appID: 101, userID: 'v2', cms: 'msg', type: 'text', msg: 'over tls' });
    assert.deepStrictEqual(r.rsp, { retCode: 200, errMsg: 'Success', sendMsgID: 'tls-one' }, String(r.err));
    const got = await next(v2, (m) => m.seq === 'tls-one', 'the message tls-one');
    assert.strictEqual(got.json.response.data.msg, 'over tls');
    const all = await call(c, 'SendMsgAll', { seq: 'tls-all', appID: 101, userID: 'v2', cms: 'msg', type: 'text', msg: 'room' });
    assert.strictEqual(all.rsp && all.rsp.retCode, 200, String(all.err));
    await next(v3, (m) => m.seq === 'tls-all', 'the broadcast tls-all at v3');
    const list = await call(c, 'GetUserList', { appID: 101 });
    assert.deepStrictEqual(list.rsp && [...list.rsp.userID].sort(), ['v2', 'v3'], String(list.err));
  } finally {
    await close(v3);
    await close(v2);
  }
});
