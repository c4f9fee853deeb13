// The node driven by npm `ws` (a client nobody here wrote), with node:test.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test ws.test.js
//
// One node for the whole file; every wait is bounded; all traffic is to 127.0.0.1.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { startNode, api, within, openWs, nextMessage } = require('./harness');

let node;

before(async () => { node = await startNode(); });
after(async () => { if (node) await node.stop(); });

// A ws client of the node that queues the messages it receives.
function open(options = {}) {
  return openWs(`${node.wsBase}/acc`, options);
}

// Resolves with the JSON of the first queued message that matches pred.
async function next(ws, pred, what) {
  return (await nextMessage(ws, pred, what)).json;
}

let seqNo = 0;
async function request(ws, cmd, data = {}) {
  const seq = `js${++seqNo}`;
  ws.send(JSON.stringify({ seq, cmd, data }));
  return next(ws, (m) => m.seq === seq && m.cmd === cmd, `the ${cmd} reply`);
}

async function login(user, appID = 101, options = {}) {
  const ws = await open(options);
  const r = await request(ws, 'login', { serviceToken: '', appID, userID: user });
  assert.strictEqual(r.response.code, 200, JSON.stringify(r));
  return ws;
}

async function close(ws) {
  if (ws.readyState === WebSocket.CLOSED) return;
  ws.close(1000);
  await within(ws.closed, 'the close');
}

test('login, heartbeat and ping round trip', async () => {
  const ws = await open();
  try {
    const early = await request(ws, 'heartbeat', {});
    assert.strictEqual(early.response.code, 1000, 'heartbeat before login');
    const r = await request(ws, 'login', { serviceToken: '', appID: 101, userID: 'js-a' });
    assert.deepStrictEqual(r.response, { code: 200, codeMsg: 'Success', data: null });
    const hb = await request(ws, 'heartbeat', { userID: 'js-a' });
    assert.strictEqual(hb.response.code, 200);
    const p = await request(ws, 'ping', {});
    assert.strictEqual(p.response.code, 200);
    assert.strictEqual(p.response.data, 'pong');
    const online = await api(node, '/user/online', { appID: 101, userID: 'js-a' });
    assert.strictEqual(online.data.online, true);
  } finally {
    await close(ws);
  }
});

test('enter and exit between two ws clients', async () => {
  const a = await login('js-enter-a', 102);
  let b;
  try {
    b = await login('js-enter-b', 102);
    const enter = await next(a, (m) => m.cmd === 'enter', 'enter of b');
    assert.strictEqual(enter.response.code, 200);
    assert.strictEqual(enter.response.data.from, 'js-enter-b');
    const list = await api(node, '/user/list', { appID: 102 });
    assert.deepStrictEqual(list.data.userList.slice().sort(), ['js-enter-a', 'js-enter-b']);
    await close(b);
    const exit = await next(a, (m) => m.cmd === 'exit', 'exit of b');
    assert.strictEqual(exit.response.data.from, 'js-enter-b');
  } finally {
    if (b) await close(b);
    await close(a);
  }
});

test('sendMessage through the HTTP API (fetch) is delivered', async () => {
  const ws = await login('js-recv', 103);
  try {
    const res = await fetch(`${node.httpBase}/user/sendMessage`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ appID: '103', userID: 'js-recv', msgID: 'js-m1', message: 'héllo "ws"' }),
    });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), '*');
    const body = await res.json();
    assert.strictEqual(body.code, 200);
    assert.strictEqual(body.data.sendResults, true);
    const m = await next(ws, (x) => x.cmd === 'msg', 'the pushed message');
    assert.strictEqual(m.seq, 'js-m1');
    assert.strictEqual(m.response.code, 200);
    assert.strictEqual(m.response.data.msg, 'héllo "ws"');
    assert.strictEqual(m.response.data.type, 'text');
  } finally {
    await close(ws);
  }
});

test('a fragmented message (send with fin:false, then fin:true) is processed', async () => {
  const ws = await open();
  try {
    const text = JSON.stringify({ seq: 'frag-1', cmd: 'login',
      data: { serviceToken: '', appID: 104, userID: 'js-frag-é' } });
    const parts = [text.slice(0, 7), text.slice(7, 30), text.slice(30)];
    const sent = (p, opts) => new Promise((resolve, reject) => {
      ws.send(p, opts, (err) => (err ? reject(err) : resolve()));
    });
    await sent(parts[0], { fin: false });
    await sent(parts[1], { fin: false });
    await sent(parts[2], { fin: true });
    const r = await next(ws, (m) => m.seq === 'frag-1', 'the reply to the fragmented login');
    assert.strictEqual(r.cmd, 'login');
    assert.strictEqual(r.response.code, 200);
    const online = await api(node, '/user/online', { appID: 104, userID: 'js-frag-é' });
    assert.strictEqual(online.data.online, true);
  } finally {
    await close(ws);
  }
});

test('permessage-deflate offered by the client is declined; the connection works', async () => {
  const ws = await open({ perMessageDeflate: { threshold: 0 } });
  try {
    assert.strictEqual(ws.extensions, '', 'no extension negotiated');
    const r = await request(ws, 'ping', { pad: 'a'.repeat(2000) });
    assert.strictEqual(r.response.data, 'pong');
  } finally {
    await close(ws);
  }
});

test('a 70 KB message is refused with close 1009', async () => {
  const ws = await open({ maxPayload: 0 });
  ws.send(JSON.stringify({ seq: 'big', cmd: 'ping', data: { pad: 'x'.repeat(70 * 1024) } }));
  const { code } = await within(ws.closed, 'the 1009 close');
  assert.strictEqual(code, 1009);
  // the node still serves
  const again = await login('js-after-big');
  const p = await request(again, 'ping');
  assert.strictEqual(p.response.data, 'pong');
  await close(again);
});

test('ws.ping() gets a pong with the same payload', async () => {
  const ws = await open();
  try {
    const pong = within(new Promise((resolve) => ws.once('pong', (data) => resolve(data))), 'the pong');
    ws.ping(Buffer.from('js-ping-1'));
    const data = await pong;
    assert.strictEqual(data.toString(), 'js-ping-1');
  } finally {
    await close(ws);
  }
});

test('the server answers a client close with the same code', async () => {
  const ws = await open();
  ws.close(4000, 'bye');
  const { code } = await within(ws.closed, 'the close');
  assert.strictEqual(code, 4000, 'the server echoes the client\'s close code');
});
