// The node's gRPC server (protobuf.AccServer, SPEC §6) driven by @grpc/grpc-js, a client nobody
// here wrote, with the messages of proto/acc.proto loaded by @grpc/proto-loader.
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test grpc.test.js
//
// One redis-server (started here on a free loopback port, killed by PID at the end) and one node in
// cluster mode (--redis, --rpc-port 0). Only the node's own gRPC server is exercised: each method
// answers for the users connected to this node. Every wait is bounded; all traffic is to 127.0.0.1.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const WebSocket = require('ws');
const { startNode, startRedis, REPO_ROOT, WAIT_MS, within, openWs, nextMessage: next } = require('./harness');
const PATH = '/protobuf.AccServer/';

const packageDef = protoLoader.loadSync(path.join(REPO_ROOT, 'proto', 'acc.proto'),
  { keepCase: true, defaults: true });
const AccServer = grpc.loadPackageDefinition(packageDef).protobuf.AccServer;
const methods = AccServer.service;

let redis;
let node;
let client;

// A ws client (of `target`, by default the shared node) that keeps the text of every frame.
function open(target = node) {
  return openWs(`${target.wsBase}/acc`);
}

async function login(user, appID = 101, target = node) {
  const ws = await open(target);
  ws.send(JSON.stringify({ seq: '1', cmd: 'login', data: { serviceToken: '', appID, userID: user } }));
  const r = await next(ws, (m) => m.seq === '1' && m.cmd === 'login', 'the login reply');
  assert.strictEqual(r.json.response.code, 200, r.text);
  return ws;
}

async function close(ws) {
  if (ws.readyState === WebSocket.CLOSED) return;
  ws.close(1000);
  await within(ws.closed, 'the close');
}

// A unary call through the generated stub; resolves to the answer or rejects with the gRPC error.
function call(method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + WAIT_MS }, (err, rsp) => (err ? reject(err) : resolve(rsp)));
  });
}

// A unary call with a hand-made payload (raw bytes) to any path.
function rawCall(fullPath, payload, decode = (b) => b) {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(fullPath, (b) => b, decode, payload, new grpc.Metadata(),
      { deadline: Date.now() + WAIT_MS }, (err, rsp) => (err ? reject(err) : resolve(rsp)));
  });
}

// Protobuf wire format by hand, for payloads a well-behaved encoder would never produce.
function field(num, bytes) {
  const buf = Buffer.from(bytes);
  assert.ok(buf.length < 128);
  return Buffer.concat([Buffer.from([(num << 3) | 2, buf.length]), buf]);
}
function varintField(num, value) {
  assert.ok(value < 128);
  return Buffer.from([num << 3, value]);
}

// The node still serves after a bad input: a SendMsg to a logged-in user gets through.
async function stillServes(ws, seq) {
  const r = await call('SendMsg', { seq, appID: 101, userID: 'u1', cms: 'msg', type: 'text', msg: 'alive' });
  assert.strictEqual(r.retCode, 200);
  await next(ws, (m) => m.seq === seq && m.cmd === 'msg', `the message ${seq}`);
}

before(async () => {
  redis = await startRedis();
  node = await startNode(['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0']);
  assert.ok(node.rpcPort > 0, 'the node printed its rpc port');
  client = new AccServer(`127.0.0.1:${node.rpcPort}`, grpc.credentials.createInsecure());
});

after(async () => {
  if (client) client.close();
  try {
    if (node) await node.stop();
  } finally {
    if (redis) await redis.stop();
  }
});

test('QueryUsersOnline and GetUserList see the users of this node', async () => {
  const ws = await login('u1');
  try {
    assert.deepStrictEqual(await call('QueryUsersOnline', { appID: 101, userID: 'u1' }),
      { retCode: 200, errMsg: 'Success', online: true });
    assert.strictEqual((await call('QueryUsersOnline', { appID: 101, userID: 'nobody' })).online, false);
    assert.strictEqual((await call('QueryUsersOnline', { appID: 0, userID: 'u1' })).online, true);
    assert.strictEqual((await call('QueryUsersOnline', { appID: 102, userID: 'u1' })).online, false);
    const list = await call('GetUserList', { appID: 101 });
    assert.strictEqual(list.retCode, 200);
    assert.ok(list.userID.includes('u1'), JSON.stringify(list));
    assert.deepStrictEqual((await call('GetUserList', { appID: 102 })).userID, []);
    const all = await call('GetUserList', { appID: 0 });
    assert.strictEqual(all.userID.filter((u) => u === 'u1').length, 1, JSON.stringify(all));
  } finally {
    await close(ws);
  }
});

test('SendMsg delivers to the user on this node only', async () => {
  const ws = await login('u1');
  try {
    const r = await call('SendMsg', { seq: 'm1', appID: 101, userID: 'u1', cms: 'msg', type: 'text', msg: 'hi' });
    assert.deepStrictEqual(r, { retCode: 200, errMsg: 'Success', sendMsgID: 'm1' });
    const got = await next(ws, (m) => m.seq === 'm1', 'the message m1');
    assert.strictEqual(got.text, '{"seq":"m1","cmd":"msg","response":{"code":200,"codeMsg":"Ok",' +
      '"data":{"target":"","type":"text","msg":"hi","from":"u1"}}}');
    const absent = await call('SendMsg', { seq: 'm2', appID: 101, userID: 'absent', cms: 'msg', type: 'text', msg: 'x' });
    assert.strictEqual(absent.retCode, 1000);
    assert.strictEqual(absent.errMsg, 'user is not connected to this node');
    const otherApp = await call('SendMsg', { seq: 'm3', appID: 102, userID: 'u1', msg: 'x' });
    assert.strictEqual(otherApp.retCode, 1000);
    const noCms = await call('SendMsg', { seq: 'm4', appID: 101, userID: 'u1', msg: 'plain' });
    assert.strictEqual(noCms.retCode, 200);
    const plain = await next(ws, (m) => m.seq === 'm4', 'the message m4');
    assert.strictEqual(plain.json.cmd, 'msg', 'an empty cms means "msg"');
  } finally {
    await close(ws);
  }
});

test('SendMsgAll reaches the room except the sender', async () => {
  const u1 = await login('u1');
  const u2 = await login('u2');
  try {
    const r = await call('SendMsgAll', { seq: 'all1', appID: 101, userID: 'u1', cms: 'msg', type: 'text', msg: 'to all' });
    assert.deepStrictEqual(r, { retCode: 200, errMsg: 'Success', sendMsgID: 'all1' });
    const got = await next(u2, (m) => m.seq === 'all1', 'the broadcast at u2');
    assert.strictEqual(got.json.response.data.from, 'u1');
    assert.strictEqual(got.json.response.data.msg, 'to all');
    // A later message to u1 arrives; the broadcast never did.
    await stillServes(u1, 'after-all1');
    assert.ok(!u1.inbox.some((m) => m.json && m.json.seq === 'all1'), 'u1 was excluded');
    const everyone = await call('SendMsgAll', { seq: 'all2', appID: 101, userID: '', msg: 'everyone' });
    assert.strictEqual(everyone.retCode, 200);
    await next(u1, (m) => m.seq === 'all2', 'the second broadcast at u1');
    await next(u2, (m) => m.seq === 'all2', 'the second broadcast at u2');
  } finally {
    await close(u2);
    await close(u1);
  }
});

test('bad inputs get a status or a retCode, and the node goes on serving', async () => {
  const ws = await login('u1');
  try {
    await assert.rejects(rawCall(`${PATH}Nope`, Buffer.alloc(0)),
      (err) => err.code === grpc.status.UNIMPLEMENTED);
    await stillServes(ws, 'ok1');

    // A length prefix longer than what follows can never decode, whatever the random tail.
    const garbage = Buffer.concat([Buffer.from([0x0a, 0x7f]), crypto.randomBytes(32)]);
    await assert.rejects(rawCall(`${PATH}SendMsg`, garbage),
      (err) => err.code === grpc.status.INVALID_ARGUMENT && /protobuf/.test(err.details));
    const wrongWire = varintField(1, 5);    // seq (a string) sent as a varint
    await assert.rejects(rawCall(`${PATH}SendMsg`, wrongWire),
      (err) => err.code === grpc.status.INVALID_ARGUMENT);
    await stillServes(ws, 'ok2');

    const decode = methods.SendMsg.responseDeserialize;
    const badUtf8 = Buffer.concat([field(1, Buffer.from('bad1')), varintField(2, 101),
      field(3, Buffer.from('u1')), field(6, [0x68, 0xc3, 0x28])]);
    const r1 = await rawCall(`${PATH}SendMsg`, badUtf8, decode);
    assert.strictEqual(r1.retCode, 1001);
    const withNul = Buffer.concat([field(1, Buffer.from('bad2')), varintField(2, 101),
      field(3, Buffer.from('u1')), field(6, [0x61, 0x00, 0x62])]);
    assert.strictEqual((await rawCall(`${PATH}SendMsg`, withNul, decode)).retCode, 1001);
    await stillServes(ws, 'ok3');

    const long = await call('SendMsg', { seq: 'bad3', appID: 101, userID: 'x'.repeat(25), msg: 'x' });
    assert.strictEqual(long.retCode, 1002);
    const empty = await call('SendMsg', { seq: 'bad4', appID: 101, userID: '', msg: 'x' });
    assert.strictEqual(empty.retCode, 1002);
    const allLong = await call('SendMsgAll', { seq: 'all-long', appID: 101, userID: 'y'.repeat(25), msg: 'x' });
    assert.strictEqual(allLong.retCode, 200, 'a long excluded userID excludes nobody');
    await next(ws, (m) => m.seq === 'all-long', 'the broadcast with a long excluded userID');
    await stillServes(ws, 'ok4');

    const huge = { seq: 'big', appID: 101, userID: 'u1', msg: 'x'.repeat(2 * 1024 * 1024) };
    await assert.rejects(call('SendMsg', huge), (err) => err.code === grpc.status.RESOURCE_EXHAUSTED);
    await stillServes(ws, 'ok5');
    assert.ok(!ws.inbox.some((m) => m.json && /^bad|^big/.test(m.json.seq || '')),
      'nothing refused was delivered');
  } finally {
    await close(ws);
  }
});

test('a second node cannot take the same rpc port', async () => {
  await assert.rejects(
    startNode(['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', String(node.rpcPort)]),
    (err) => /exited during start-up \(code 1/.test(err.message) && /rpc listener/.test(err.message));
});

test('SIGTERM with calls in flight: every call settles and the node exits cleanly', async () => {
  const other = await startNode(['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0']);
  const c = new AccServer(`127.0.0.1:${other.rpcPort}`, grpc.credentials.createInsecure());
  let ws;
  let done = false;
  try {
    ws = await login('busy', 101, other);
    const one = (method, req) => new Promise((resolve) => {
      c[method](req, { deadline: Date.now() + WAIT_MS }, (err, rsp) => resolve(err ? { err } : { rsp }));
    });
    const requests = [
      ['SendMsg', { seq: 'busy', appID: 101, userID: 'busy', msg: 'x'.repeat(1000) }],
      ['SendMsgAll', { seq: 'room', appID: 101, userID: '', msg: 'y' }],
      ['GetUserList', { appID: 0 }],
    ];
    // 30 loops, each with one call in flight at a time, until the node is gone.
    const LOOPS = 30;
    const results = [];
    const answeredLoops = new Set();            // loops that have had an answer
    let onResult = () => {};
    const pump = async (k) => {
      while (!done) {
        const r = await one(...requests[k % requests.length]);
        results.push(r);
        if (r.rsp) answeredLoops.add(k);
        onResult();                             // the loop's next call starts right after
      }
    };
    const pumps = Array.from({ length: LOOPS }, (_, k) => pump(k));
    // The stop comes once every loop has been answered (all three methods are served and the
    // node is busy): from then on each loop always has a call in flight.
    await within(new Promise((resolve) => {
      onResult = () => { if (answeredLoops.size === LOOPS) resolve(); };
      onResult();
    }), `an answer on each of the ${LOOPS} loops`);
    await other.stop();                         // asserts exit status 0 (and no leak report)
    done = true;
    await within(Promise.all(pumps), 'every call to settle');
    const answered = results.filter((r) => r.rsp);
    assert.ok(answered.length > 0, 'calls were answered before the stop');
    for (const r of answered) assert.strictEqual(r.rsp.retCode, 200, JSON.stringify(r.rsp));
    for (const r of results.filter((x) => x.err)) {
      assert.ok(r.err.code !== grpc.status.DEADLINE_EXCEEDED, `${r.err.code}: ${r.err.details}`);
    }
  } finally {
    done = true;
    c.close();
    if (ws) ws.terminate();
    await other.stop();
  }
});

// A login whose replay read failed (Redis stopped past cluster.redisTimeout) is served, but the
// logged messages to it count as not delivered (their cursor must stay for the next login). A
// SendMsg without an id, as a Go peer sends, is not logged and moves no cursor: it counts as
// delivered as usual (answered 1000, the caller would take it as not sent and send it again).
test('an unlogged SendMsg to a login whose replay read failed counts as delivered', async () => {
  redis.proc.kill('SIGSTOP');
  let stopped = true;
  const cont = () => {
    if (stopped) {
      stopped = false;
      redis.proc.kill('SIGCONT');
    }
  };
  let ws;
  try {
    ws = await open();
    ws.send(JSON.stringify({ seq: 'L', cmd: 'login', data: { serviceToken: '', appID: 101, userID: 'u9' } }));
    const r = await next(ws, (m) => m.seq === 'L' && m.cmd === 'login', 'the login reply, once the link gave up');
    assert.strictEqual(r.json.response.code, 200, r.text);
    cont();
    const s = await call('SendMsg', { seq: 'un1', appID: 101, userID: 'u9', cms: 'msg', type: 'text', msg: 'x' });
    assert.deepStrictEqual(s, { retCode: 200, errMsg: 'Success', sendMsgID: 'un1' });
    await next(ws, (m) => m.seq === 'un1' && m.cmd === 'msg', 'the message un1');
  } finally {
    cont();
    if (ws) await close(ws);
  }
});
