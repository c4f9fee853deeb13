// A mixed cluster: one imgate node and a fake goWebSocket (Go) node, a @grpc/grpc-js server whose
// messages come from the ORIGINAL proto, i.e. proto/acc.proto without the two fields imgate added
// (SendMsgReq.id = 8, SendMsgAllReq.id = 7: the delivery-log entry id of a logged message). A Go
// node ignores unknown fields, sends none, and what it sends is not logged by imgate (README
// "Cluster mode" and "Reliable delivery").
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test go_interop.test.js
//
// One redis-server and one imgate node in cluster mode (started by the harness on free loopback
// ports, stopped by PID in after()). The fake registers itself in acc:hash:servers as
// "127.0.0.1:<port>" with the current time at the start of each test (a send reads the registry
// fresh and takes a node as live for cluster.serverTimeout, 180 s, after its registration), and a
// user on it is a presence record naming it, as the Go node writes it. Every wait is for a
// positive event, bounded by WAIT_MS; all traffic is to 127.0.0.1.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const WebSocket = require('ws');
const { startNode, startRedis, api, REPO_ROOT, WAIT_MS, within, openWs, nextMessage } = require('./harness');

const APP = 101;
const GO_USER = 'gouser';
const RUN = `${process.pid}-${Date.now().toString(36)}`;   // every msgID of this run is new
const ENTRY_ID = /^(\d+)-(\d+)$/;                          // a delivery-log entry id "<ms>-<seq>"

let tmpDir;
let original;        // the original proto's package: { AccServer, packageDef }
let redis;
let node;
let fake;            // the fake Go node: { server, port, addr, calls, ... }
const sockets = [];

// ---- the original proto: proto/acc.proto without the lines that declare `string id =` ----

function loadOriginalProto() {
  const current = fs.readFileSync(path.join(REPO_ROOT, 'proto', 'acc.proto'), 'utf8');
  const lines = current.split('\n');
  const isId = (l) => /^\s*string\s+id\s*=/.test(l);
  const removed = lines.filter(isId);
  assert.deepStrictEqual(removed.map((l) => /=\s*(\d+)/.exec(l)[1]).sort(), ['7', '8'],
    `proto/acc.proto declares the two imgate id fields (7 and 8): ${JSON.stringify(removed)}`);
  const text = lines.filter((l) => !isId(l)).join('\n');
  assert.ok(!/\bid\s*=/.test(text), 'the copy declares no id field');
  const file = path.join(tmpDir, 'acc.proto');
  fs.writeFileSync(file, text);
  const packageDef = protoLoader.loadSync(file, { keepCase: true, defaults: true });
  const fieldsOf = (t) => packageDef[`protobuf.${t}`].type.field.map((f) => f.name);
  for (const t of ['SendMsgReq', 'SendMsgAllReq']) {
    assert.ok(!fieldsOf(t).includes('id'), `the original ${t} has no id: ${fieldsOf(t)}`);
    assert.ok(fieldsOf(t).includes('msg'), `the original ${t} was loaded: ${fieldsOf(t)}`);
  }
  return { packageDef, AccServer: grpc.loadPackageDefinition(packageDef).protobuf.AccServer };
}

// ---- protobuf wire format, read by hand (the raw bytes imgate sent) ----

function readVarint(buf, at) {
  let value = 0;
  let mul = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    value += (buf[i] & 0x7f) * mul;
    mul *= 128;
    if (!(buf[i] & 0x80)) return { value, next: i + 1 };
  }
  throw new Error(`a truncated varint at ${at}: ${buf.toString('hex')}`);
}

// Every field of a message: [{ num, wire, value }] (value: a Buffer for wire type 2).
function wireFields(buf) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const key = readVarint(buf, at);
    const num = Math.floor(key.value / 8);
    const wire = key.value % 8;
    at = key.next;
    if (wire === 0) {
      const v = readVarint(buf, at);
      out.push({ num, wire, value: v.value });
      at = v.next;
    } else if (wire === 2) {
      const len = readVarint(buf, at);
      assert.ok(len.next + len.value <= buf.length, `field ${num} runs past the end: ${buf.toString('hex')}`);
      out.push({ num, wire, value: buf.subarray(len.next, len.next + len.value) });
      at = len.next + len.value;
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;
      out.push({ num, wire, value: null });
    } else {
      throw new Error(`wire type ${wire} of field ${num}: ${buf.toString('hex')}`);
    }
  }
  return out;
}

// The string of field `num` in the raw message; asserts it is there exactly once, length-delimited.
function stringField(raw, num) {
  const found = wireFields(raw).filter((f) => f.num === num);
  assert.strictEqual(found.length, 1, `field ${num} once in ${raw.toString('hex')}`);
  assert.strictEqual(found[0].wire, 2, `field ${num} is length-delimited`);
  return found[0].value.toString('utf8');
}

// A well-formed entry id, given at most a little after `since` (ms) and not after now.
function assertEntryId(id, since, what) {
  const m = ENTRY_ID.exec(id);
  assert.ok(m, `${what}: "${id}" is not "<ms>-<seq>"`);
  const ms = Number(m[1]);
  assert.ok(ms >= since - 60000 && ms <= Date.now() + 1000, `${what}: ${id} is not a time of this run`);
}

// ---- Redis: one command per connection, RESP by hand ----

function parseResp(buf, at = 0) {
  if (at >= buf.length) return null;
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = buf.toString('utf8', at + 1, eol);
  const type = String.fromCharCode(buf[at]);
  if (type === '+' || type === ':') return { value: type === ':' ? Number(line) : line, next: eol + 2 };
  if (type === '-') return { value: new Error(line), next: eol + 2 };
  const n = Number(line);
  if (type === '$') {
    if (n < 0) return { value: null, next: eol + 2 };
    if (buf.length < eol + 2 + n + 2) return null;
    return { value: buf.toString('utf8', eol + 2, eol + 2 + n), next: eol + 2 + n + 2 };
  }
  if (type === '*') {
    const items = [];
    let next = eol + 2;
    for (let i = 0; i < n; i++) {
      const r = parseResp(buf, next);
      if (!r) return null;
      items.push(r.value);
      next = r.next;
    }
    return { value: items, next };
  }
  throw new Error(`not RESP: ${buf.toString('utf8', at, at + 40)}`);
}

function redisCmd(...args) {
  const req = `*${args.length}\r\n` + args.map((a) => {
    const s = String(a);
    return `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }).join('');
  return within(new Promise((resolve, reject) => {
    const sock = net.connect(redis.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.once('error', reject);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const r = parseResp(buf);
      if (!r) return;
      sock.destroy();
      if (r.value instanceof Error) reject(new Error(`redis ${args[0]}: ${r.value.message}`));
      else resolve(r.value);
    });
    sock.write(req);
  }), `redis ${args[0]}`);
}

const now = () => Math.floor(Date.now() / 1000);

// The Go node's registration: field "ip:rpcPort" -> unix seconds.
async function registerFake() {
  await redisCmd('HSET', 'acc:hash:servers', fake.addr, now());
}

// The presence record of a user logged in on the fake Go node, as the Go node writes it (SPEC §5;
// tests/integration/harness.py presence_json).
async function goUserOnline(user) {
  const t = now();
  const record = `{"accIp":"127.0.0.1","accPort":"${fake.port}","appID":${APP},` +
    `"userID":${JSON.stringify(user)},"clientIp":"127.0.0.1:40000","clientPort":"",` +
    `"loginTime":${t},"heartbeatTime":${t},"logOutTime":0,"qua":"","deviceInfo":"","isLogoff":false}`;
  await redisCmd('SET', `acc:user:online:${APP}_${user}`, record, 'EX', 86400);
}

// ---- the fake Go node ----

// A gRPC server of the original AccServer. Each call is recorded as { method, req, raw }: req
// decoded with the original proto (a decoding error fails the call, and so the send), raw the
// request's bytes exactly as imgate sent them (tapped in front of the original deserializer).
async function startFakeGoNode() {
  const calls = [];
  let waiters = [];
  const record = (method, req, raw) => {
    calls.push({ method, req, raw });
    for (const w of waiters.splice(0)) w();
  };
  const service = {};
  const lastRaw = new WeakMap();
  for (const [name, def] of Object.entries(original.AccServer.service)) {
    service[name] = {
      ...def,
      requestDeserialize: (raw) => {
        const req = def.requestDeserialize(raw);
        lastRaw.set(req, Buffer.from(raw));
        return req;
      },
    };
  }
  const rawOf = (req) => lastRaw.get(req);
  const ok = (seq) => ({ retCode: 200, errMsg: 'Success', sendMsgID: seq });
  const server = new grpc.Server();
  server.addService(service, {
    QueryUsersOnline(call, cb) {
      record('QueryUsersOnline', call.request, rawOf(call.request));
      cb(null, { retCode: 200, errMsg: 'Success', online: call.request.userID === GO_USER });
    },
    SendMsg(call, cb) {
      const r = call.request;
      record('SendMsg', r, rawOf(r));
      cb(null, r.appID === APP && r.userID === GO_USER ? ok(r.seq)
        : { retCode: 1000, errMsg: 'user is not connected to this node', sendMsgID: r.seq });
    },
    SendMsgAll(call, cb) {
      record('SendMsgAll', call.request, rawOf(call.request));
      cb(null, ok(call.request.seq));
    },
    GetUserList(call, cb) {
      record('GetUserList', call.request, rawOf(call.request));
      cb(null, { retCode: 200, errMsg: 'Success', userID: [0, APP].includes(call.request.appID) ? [GO_USER] : [] });
    },
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)));
  });
  // Resolves with the first recorded call of `method` (already made or to come) matching pred.
  const nextCall = (method, pred, what) => within(new Promise((resolve) => {
    const look = () => {
      const c = calls.find((x) => x.method === method && pred(x.req));
      if (c) resolve(c);
      else waiters.push(look);
    };
    look();
  }), `the fake Go node to get ${what}`);
  const callsOf = (method, pred) => calls.filter((x) => x.method === method && pred(x.req));
  return {
    server, port, addr: `127.0.0.1:${port}`, calls, nextCall, callsOf,
    stop: () => { waiters = []; server.forceShutdown(); },
  };
}

// ---- clients of the imgate node ----

async function login(user) {
  const ws = await openWs(`${node.wsBase}/acc`);
  sockets.push(ws);
  ws.send(JSON.stringify({ seq: '1', cmd: 'login', data: { serviceToken: '', appID: APP, userID: user } }));
  const r = await nextMessage(ws, (m) => m.seq === '1' && m.cmd === 'login', `the login reply of ${user}`);
  assert.strictEqual(r.json.response.code, 200, r.text);
  return ws;
}

async function send(apiPath, params) {
  const r = await api(node, apiPath, { appID: String(APP), ...params });
  assert.strictEqual(r.code, 200, `${apiPath}: ${JSON.stringify(r)}`);
  return r.data;
}

// The messages of a log (the room's history when user is ''), through GET /user/history.
async function history(user) {
  const q = new URLSearchParams({ appID: String(APP), userID: user, limit: '1000' });
  const res = await fetch(`${node.httpBase}/user/history?${q}`, { signal: AbortSignal.timeout(WAIT_MS) });
  const r = JSON.parse(await res.text());
  assert.strictEqual(r.code, 200, JSON.stringify(r));
  return r.data.messages;
}

// A unary call of the original proto's stub; resolves to the answer.
function goCall(client, method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + WAIT_MS }, (err, rsp) => (err ? reject(err) : resolve(rsp)));
  });
}

before(async () => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgate-go-interop-'));
  original = loadOriginalProto();
  redis = await startRedis();
  fake = await startFakeGoNode();
  node = await startNode(['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0']);
  assert.ok(node.rpcPort > 0, 'the node printed its rpc port');
  assert.notStrictEqual(fake.port, node.rpcPort);
});

after(async () => {
  for (const ws of sockets) if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  if (fake) fake.stop();
  try {
    if (node) await node.stop();
  } finally {
    if (redis) await redis.stop();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
});

test('imgate -> Go: SendMsg decodes with the original proto; the unknown field 8 is on the wire', async () => {
  await registerFake();
  await goUserOnline(GO_USER);
  const since = Date.now();
  const msgID = `go1-${RUN}`;
  assert.deepStrictEqual(await send('/user/sendMessage', { userID: GO_USER, msgID, message: 'hello go' }),
    { sendResults: true }, 'delivered: the fake Go node answered 200');

  const got = fake.callsOf('SendMsg', () => true);
  assert.strictEqual(got.length, 1, `one SendMsg: ${JSON.stringify(got.map((c) => c.req))}`);
  const { req, raw } = got[0];
  assert.strictEqual(req.seq, msgID);
  assert.strictEqual(req.appID, APP);
  assert.strictEqual(req.userID, GO_USER);
  assert.strictEqual(req.msg, 'hello go');
  assert.strictEqual(req.cms, 'msg');
  assert.ok(!('id' in req), `the original proto has no id: ${JSON.stringify(req)}`);

  // ... and yet imgate sent one: field 8, the inbox entry id of the logged message.
  assert.ok(Buffer.isBuffer(raw) && raw.length > 0, 'the raw request was captured');
  assert.strictEqual(stringField(raw, 1), msgID, 'the raw bytes are this request');
  const id = stringField(raw, 8);
  assertEntryId(id, since, 'SendMsgReq.id');
  const inbox = await history(GO_USER);
  assert.deepStrictEqual(inbox.filter((m) => m.msg === 'hello go').map((m) => m.id), [id],
    `field 8 is the id of the message in ${GO_USER}'s inbox: ${JSON.stringify(inbox)}`);
});

test('imgate -> Go: a room send reaches the Go node as SendMsgAll and the local member with an id', async () => {
  await registerFake();
  const member = await login('roomie');
  // The member's enter goes to every other live node, the Go node included.
  const enter = await fake.nextCall('SendMsgAll', (r) => r.cms === 'enter' && r.userID === 'roomie',
    "roomie's enter");
  assert.strictEqual(enter.req.appID, APP);

  const since = Date.now();
  const msgID = `go2-${RUN}`;
  assert.deepStrictEqual(await send('/user/sendMessageAll', { userID: 'boss', msgID, message: 'to the room' }),
    { sendResults: true });
  const got = fake.callsOf('SendMsgAll', (r) => r.seq === msgID);
  assert.strictEqual(got.length, 1, `one SendMsgAll ${msgID}: ${JSON.stringify(got.map((c) => c.req))}`);
  const { req, raw } = got[0];
  assert.deepStrictEqual({ appID: req.appID, userID: req.userID, cms: req.cms, msg: req.msg },
    { appID: APP, userID: 'boss', cms: 'msg', msg: 'to the room' });
  assert.ok(!('id' in req), JSON.stringify(req));
  const id = stringField(raw, 7);
  assertEntryId(id, since, 'SendMsgAllReq.id');

  const push = await nextMessage(member, (m) => m.seq === msgID, 'the room push at roomie');
  const data = push.json.response.data;
  assert.strictEqual(data.msg, 'to the room', push.text);
  assert.strictEqual(data.from, 'boss', push.text);
  assert.strictEqual(data.id, id, `the local push carries the same entry id: ${push.text}`);
  member.close(1000);
  await within(member.closed, 'the close of roomie');
});

test('Go -> imgate: SendMsg and SendMsgAll of the original proto are delivered without an id, not logged', async () => {
  await registerFake();
  const user = await login('wsuser');
  const client = new original.AccServer(`127.0.0.1:${node.rpcPort}`, grpc.credentials.createInsecure());
  try {
    // Controls: what goes through imgate's API is logged and pushed with its id.
    const ctl = `go3-ctl-${RUN}`;
    assert.deepStrictEqual(await send('/user/sendMessage', { userID: 'wsuser', msgID: ctl, message: 'via imgate' }),
      { sendResults: true });
    const ctlPush = await nextMessage(user, (m) => m.seq === ctl, 'the control push');
    assert.match(ctlPush.json.response.data.id || '', ENTRY_ID, ctlPush.text);
    const ctlRoom = `go3-ctl-room-${RUN}`;
    await send('/user/sendMessageAll', { userID: 'boss', msgID: ctlRoom, message: 'room via imgate' });
    const ctlRoomPush = await nextMessage(user, (m) => m.seq === ctlRoom, 'the control room push');
    assert.match(ctlRoomPush.json.response.data.id || '', ENTRY_ID, ctlRoomPush.text);

    const one = `go3-one-${RUN}`;
    assert.deepStrictEqual(await goCall(client, 'SendMsg',
      { seq: one, appID: APP, userID: 'wsuser', cms: 'msg', type: 'text', msg: 'from go', isLocal: false }),
    { retCode: 200, errMsg: 'Success', sendMsgID: one });
    const p1 = await nextMessage(user, (m) => m.seq === one, 'the Go SendMsg push');
    assert.strictEqual(p1.text, `{"seq":"${one}","cmd":"msg","response":{"code":200,"codeMsg":"Ok",` +
      '"data":{"target":"","type":"text","msg":"from go","from":"wsuser"}}}', 'no id: the original push');

    const all = `go3-all-${RUN}`;
    assert.deepStrictEqual(await goCall(client, 'SendMsgAll',
      { seq: all, appID: APP, userID: GO_USER, cms: 'msg', type: 'text', msg: 'go to the room' }),
    { retCode: 200, errMsg: 'Success', sendMsgID: all });
    const p2 = await nextMessage(user, (m) => m.seq === all, 'the Go SendMsgAll push');
    assert.strictEqual(p2.text, `{"seq":"${all}","cmd":"msg","response":{"code":200,"codeMsg":"Ok",` +
      `"data":{"target":"","type":"text","msg":"go to the room","from":"${GO_USER}"}}}`, 'no id');

    // Not logged: the inbox and the room's history hold the controls, not what the Go node sent.
    const inbox = (await history('wsuser')).map((m) => m.msg);
    assert.ok(inbox.includes('via imgate'), `the control is in the inbox: ${JSON.stringify(inbox)}`);
    assert.ok(!inbox.includes('from go'), `the Go SendMsg is not logged: ${JSON.stringify(inbox)}`);
    const room = (await history('')).map((m) => m.msg);
    assert.ok(room.includes('room via imgate'), `the control is in the room history: ${JSON.stringify(room)}`);
    assert.ok(!room.includes('go to the room'), `the Go SendMsgAll is not logged: ${JSON.stringify(room)}`);
  } finally {
    client.close();
    user.close(1000);
    await within(user.closed, 'the close of wsuser');
  }
});

test('imgate -> Go: /user/kick asks the Go node too; its UNIMPLEMENTED is a failed node, not a failed call or an unhealthy peer', async () => {
  await registerFake();
  const ws = await login('kicked1');
  // twice: two failures in a row would make a peer skipped, if they counted
  for (let i = 0; i < 2; i++) {
    const r = await api(node, '/user/kick', { appID: String(APP), userID: i ? 'nobody' : 'kicked1', reason: 'go' });
    assert.strictEqual(r.code, 200, JSON.stringify(r));
    assert.deepStrictEqual(r.data, { userID: i ? 'nobody' : 'kicked1', kicked: i ? 0 : 1, nodes: 2,
      failedNodes: [fake.addr] }, 'the Go node is named as failed');
  }
  assert.deepStrictEqual(await within(ws.closed, 'the local connection to be kicked'), { code: 4000, reason: 'go' });
  const res = await fetch(`${node.httpBase}/system/state`);
  const peer = (await res.json()).data.cluster.peers.find((p) => p.peer === fake.addr);
  assert.ok(peer && peer.healthy && peer.consecutiveFailures === 0,
    `the Go node stays a healthy peer: ${JSON.stringify(peer)}`);
  // and a send to its user still goes out to it
  await goUserOnline(GO_USER);
  assert.deepStrictEqual(await send('/user/sendMessage', { userID: GO_USER, msgID: `go-kick-${RUN}`, message: 'still' }),
    { sendResults: true });
});
