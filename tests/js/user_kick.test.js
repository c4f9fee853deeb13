// /user/kick (docs/dashboard.md): an administrator closes every connection of one user in the
// cluster, with close code 4000 and a reason. One redis-server and two imgate nodes in cluster
// mode with auth.apiKey set, real processes on free 127.0.0.1 ports, npm ws clients:
//  - a user with connections on both nodes (two on A, one on B): all three are closed with 4000
//    and the reason, whichever node's API is called; the other users' connections stay open and
//    are still answered; the answer counts them ({"kicked":3,"nodes":2,"failedNodes":[]});
//  - appID 0 kicks the user in every room, appID 101 only in room 101;
//  - an unknown (or offline) user: code 200, {"kicked":0};
//  - without the API key, or with a wrong one: 401 and nobody is closed; no userID: 1001;
//  - embedded mode (one node, no Redis): the same call closes the local connections; a long
//    reason is cut to the close frame's 123 bytes, one over 492 bytes is refused (1001).
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test user_kick.test.js
//
// redis-server is required (a failure, never a skip). Every wait is for an event or a polled
// state, bounded and scaled by SLOW; nothing sleeps as a barrier.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { startNode, startRedis, openWs, nextMessage, within, pollUntil, WAIT_MS } = require('./harness');

const API_KEY = 'kick-k3y';

let redis = null;
let nodeA = null;
let nodeB = null;
const clients = [];

async function kick(node, params, key = API_KEY) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(`${node.httpBase}/user/kick`, {
    method: 'POST', headers, body: new URLSearchParams(params).toString(), signal: AbortSignal.timeout(WAIT_MS),
  });
  return { status: res.status, body: JSON.parse(await res.text()) };
}

async function login(node, user, appID = 101) {
  const ws = await openWs(`${node.wsBase}/acc`);
  clients.push(ws);
  ws.send(JSON.stringify({ seq: 'l', cmd: 'login', data: { serviceToken: '', appID, userID: user } }));
  const r = await nextMessage(ws, (m) => m.cmd === 'login', `${user}'s login reply`);
  assert.strictEqual(r.json.response.code, 200, `login of ${user}: ${r.text}`);
  return ws;
}

// The connection is open and answered (a heartbeat round trip).
async function alive(ws, what) {
  assert.strictEqual(ws.readyState, 1, `${what} is still open`);
  const seq = `hb-${Math.random()}`;
  ws.send(JSON.stringify({ seq, cmd: 'heartbeat', data: {} }));
  await nextMessage(ws, (m) => m.seq === seq, `${what}'s heartbeat reply`);
}

async function closedWith(ws, code, reason, what) {
  const c = await within(ws.closed, `${what} to be closed`);
  assert.deepStrictEqual(c, { code, reason }, what);
}

// Until the user's connections on every node are registered in Redis (the nodes hash), so that
// a kick from either node is decided on the state the test set up.
async function onlineEverywhere(user, appID = 101) {
  for (const n of [nodeA, nodeB]) {
    await pollUntil(async () => {
      const res = await fetch(`${n.httpBase}/user/online?appID=${appID}&userID=${user}`,
        { headers: { Authorization: `Bearer ${API_KEY}` } });
      return (await res.json()).data.online === true;
    }, `${user} online as seen from ${n.httpBase}`);
  }
}

before(async () => {
  redis = await startRedis();
  const args = ['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0',
    '--set', 'cluster.registerInterval=1', '--set', 'cluster.serverTimeout=30',
    '--set', `auth.apiKey=${API_KEY}`];
  nodeA = await startNode(args);
  nodeB = await startNode(args);
  // both nodes see both in the registry
  for (const n of [nodeA, nodeB]) {
    await pollUntil(async () => {
      const res = await fetch(`${n.httpBase}/system/state`, { headers: { Authorization: `Bearer ${API_KEY}` } });
      const d = (await res.json()).data;
      return d.cluster && d.cluster.servers.length === 2;
    }, 'both nodes registered');
  }
});

after(async () => {
  for (const ws of clients) ws.terminate();
  if (nodeA) await nodeA.stop();
  if (nodeB) await nodeB.stop();
  if (redis) await redis.stop();
});

test('API key: 401 without it or with a wrong one, and nobody is closed; no userID: 1001', async () => {
  const ws = await login(nodeA, 'keyed');
  for (const key of [null, 'wrong']) {
    const r = await kick(nodeA, { appID: '101', userID: 'keyed' }, key);
    assert.strictEqual(r.status, 401, `key ${key}`);
    assert.strictEqual(r.body.code, 1003);
  }
  await alive(ws, 'keyed');
  const r = await kick(nodeA, { appID: '101' });
  assert.strictEqual(r.body.code, 1001, JSON.stringify(r.body));
  assert.match(r.body.msg, /userID/);
  const r2 = await kick(nodeA, { userID: 'keyed' });
  assert.strictEqual(r2.body.code, 1001, JSON.stringify(r2.body));
  await alive(ws, 'keyed');
});

test('a user on two nodes: every connection closed with 4000 and the reason, others untouched', async () => {
  const kim = [await login(nodeA, 'kim'), await login(nodeA, 'kim'), await login(nodeB, 'kim')];
  const others = [await login(nodeA, 'lou'), await login(nodeB, 'max'), await login(nodeB, 'kimberly')];
  await onlineEverywhere('kim');
  const reason = 'account suspended — contact support';
  const r = await kick(nodeB, { appID: '101', userID: 'kim', reason });
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(r.body, { code: 200, msg: 'Success',
    data: { userID: 'kim', kicked: 3, nodes: 2, failedNodes: [] } });
  for (let i = 0; i < kim.length; i++) await closedWith(kim[i], 4000, reason, `kim's connection ${i}`);
  for (const [i, ws] of others.entries()) await alive(ws, `other user ${i}`);
  // kicked again: nothing left
  const again = await kick(nodeA, { appID: '101', userID: 'kim' });
  assert.strictEqual(again.body.data.kicked, 0, JSON.stringify(again.body));
});

test('appID 0 kicks the user in every room; appID 101 in room 101 only; default reason', async () => {
  const in101 = await login(nodeA, 'ned', 101);
  const in102 = await login(nodeB, 'ned', 102);
  await onlineEverywhere('ned', 101);
  await onlineEverywhere('ned', 102);
  const r = await kick(nodeA, { appID: '101', userID: 'ned' });
  assert.strictEqual(r.body.data.kicked, 1, JSON.stringify(r.body));
  await closedWith(in101, 4000, 'kicked by an administrator', 'ned in room 101');
  await alive(in102, 'ned in room 102');
  const r0 = await kick(nodeA, { appID: '0', userID: 'ned', reason: 'bye' });
  assert.strictEqual(r0.body.data.kicked, 1, JSON.stringify(r0.body));
  await closedWith(in102, 4000, 'bye', 'ned in room 102');
});

test('an unknown user: 200 with kicked 0', async () => {
  for (const userID of ['nobody-here', 'x'.repeat(40)]) {
    const r = await kick(nodeA, { appID: '101', userID });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body.code, 200, JSON.stringify(r.body));
    assert.strictEqual(r.body.data.kicked, 0, JSON.stringify(r.body));
    assert.deepStrictEqual(r.body.data.failedNodes, []);
  }
});

test('embedded mode: the local connections are closed', async () => {
  const node = await startNode(['--set', `auth.apiKey=${API_KEY}`]);
  try {
    const a = await login(node, 'ola');
    const b = await login(node, 'ola');
    const c = await login(node, 'pat');
    const r = await kick(node, { appID: '101', userID: 'ola', reason: 'r' });
    assert.deepStrictEqual(r.body, { code: 200, msg: 'Success',
      data: { userID: 'ola', kicked: 2, nodes: 1, failedNodes: [] } });
    await closedWith(a, 4000, 'r', 'ola 1');
    await closedWith(b, 4000, 'r', 'ola 2');
    await alive(c, 'pat');
    assert.strictEqual((await kick(node, { appID: '101', userID: 'nobody' })).body.data.kicked, 0);
    assert.strictEqual((await kick(node, { appID: '101', userID: 'ola' }, null)).status, 401);
    // the reason: cut to the close frame's 123 bytes at a character boundary; over 492 bytes: 1001
    const q = await login(node, 'quin');
    assert.strictEqual((await kick(node, { appID: '101', userID: 'quin', reason: 'x'.repeat(493) })).body.code, 1001);
    await alive(q, 'quin');
    assert.strictEqual((await kick(node, { appID: '101', userID: 'quin', reason: 'é'.repeat(100) })).body.data.kicked, 1);
    await closedWith(q, 4000, 'é'.repeat(61), 'quin, with a long reason');
  } finally {
    await node.stop();
  }
});
