// The login gate of cluster mode (README "Reliable delivery", cluster mode): while a login's
// replay is read from Redis, pushes to the new connection are held; then come the login reply,
// the replay, and what was held minus what the replay already had (by id); a late duplicate is
// dropped too. Made deterministic by pausing Redis's writes (CLIENT PAUSE WRITE: the login's
// read script waits) while a peer — @grpc/grpc-js, a client nobody here wrote — calls SendMsg
// of the node directly (no Redis on that path).
//
//   cd tests/js && IMGATE_BIN=../../build/imgate node --test cluster_gate.test.js
//
// One redis-server and one node in cluster mode, both on 127.0.0.1 free ports, stopped at the
// end; every wait is bounded; nothing sleeps as a barrier.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { startNode, startRedis, api, REPO_ROOT, WAIT_MS, openWs, nextMessage } = require('./harness');

const packageDef = protoLoader.loadSync(path.join(REPO_ROOT, 'proto', 'acc.proto'),
  { keepCase: true, defaults: true });
const AccServer = grpc.loadPackageDefinition(packageDef).protobuf.AccServer;

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

function redisCli(port, ...args) {
  return execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).trim();
}

function sendMsg(client, req) {
  return new Promise((resolve, reject) => {
    client.SendMsg({ appID: 101, cms: 'msg', type: 'text', ...req }, { deadline: Date.now() + WAIT_MS },
      (err, rsp) => (err ? reject(err) : resolve(rsp)));
  });
}

async function until(pred, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('pushes that arrive while a login replay is read: held, de-duplicated by id, in order',
  async () => {
    const redis = await startRedis();
    cleanups.push(redis.stop);
    // a long rpcTimeout: the gate drops late duplicates for rpcTimeout + 1 s
    const node = await startNode(['--redis', `127.0.0.1:${redis.port}`, '--rpc-port', '0',
      '--set', 'cluster.rpcTimeout=20000']);
    cleanups.push(node.stop);
    const client = new AccServer(`127.0.0.1:${node.rpcPort}`, grpc.credentials.createInsecure());
    cleanups.push(async () => client.close());

    for (const i of [1, 2]) {
      const r = await api(node, '/user/sendMessage',
        { appID: 101, userID: 'gate1', msgID: `g-stored-${i}`, message: `stored ${i}` });
      assert.deepStrictEqual({ code: r.code, data: r.data },
        { code: 200, data: { sendResults: false, stored: true } }, JSON.stringify(r));
    }
    const ids = redisCli(redis.port, 'XRANGE', 'acc:user:inbox:101_gate1', '-', '+')
      .split('\n').filter((l) => /^\d+-\d+$/.test(l));
    assert.strictEqual(ids.length, 2, 'two stored entries');

    // the login's read script (a write for CLIENT PAUSE) now waits
    assert.strictEqual(redisCli(redis.port, 'CLIENT', 'PAUSE', String(WAIT_MS), 'WRITE'), 'OK');
    let paused = true;
    cleanups.push(async () => { if (paused) redisCli(redis.port, 'CLIENT', 'UNPAUSE'); });
    const ws = await openWs(`${node.wsBase}/acc`);
    cleanups.push(async () => ws.close());
    ws.send(JSON.stringify({ seq: 'L', cmd: 'login', data: { serviceToken: '', appID: 101, userID: 'gate1' } }));
    const state = async () => (await (await fetch(`${node.httpBase}/system/state`)).json()).data;
    await until(async () => (await state()).loggedIn === 1, 'the connection attached (gated)');

    // a peer's pushes meanwhile: one the replay has (the newest stored id), one without an id
    // (a Go node's), one newer than the log
    for (const req of [{ seq: 'dup', msg: 'dup', userID: 'gate1', id: ids[1] },
      { seq: 'plain', msg: 'plain', userID: 'gate1' },
      { seq: 'newer', msg: 'newer', userID: 'gate1', id: '99999999999999-0' }]) {
      const rsp = await sendMsg(client, req);
      // held, not sent yet: not "delivered" (the sender must not move the user's cursor)
      assert.strictEqual(rsp.retCode, 1000, `${req.seq}: held is not delivered yet`);
    }
    assert.strictEqual(ws.inbox.length, 0, 'nothing before the login reply');

    assert.strictEqual(redisCli(redis.port, 'CLIENT', 'UNPAUSE'), 'OK');
    paused = false;
    await nextMessage(ws, (m) => m.seq === 'newer', 'the last held push');
    // the cursor: the newest inbox id the connection got (the held ones' fake id is not in the inbox)
    await until(async () => redisCli(redis.port, 'GET', 'acc:user:cursor:101_gate1') === ids[1],
      'the cursor at the newest inbox id pushed (written by the link after the replay)');
    // a late duplicate of a replayed entry (dropped: the replay delivered it), then a marker
    assert.strictEqual((await sendMsg(client, { seq: 'late', msg: 'late', userID: 'gate1', id: ids[0] })).retCode, 200);
    assert.strictEqual((await sendMsg(client, { seq: 'mark', msg: 'mark', userID: 'gate1' })).retCode, 200);
    await nextMessage(ws, (m) => m.seq === 'mark', 'the marker');

    // everything received, in order (nextMessage took 'newer' and 'mark' out of the queue)
    const got = ws.inbox.map((m) => [m.json.seq, m.json.cmd, (m.json.response.data || {}).id]);
    assert.deepStrictEqual(got, [
      ['L', 'login', undefined],
      ['g-stored-1', 'msg', ids[0]],
      ['g-stored-2', 'msg', ids[1]],
      ['plain', 'msg', undefined],
    ]);
  });
