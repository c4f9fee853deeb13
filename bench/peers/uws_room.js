// uws_room.js — the comparison peer of bench/uws.sh: the subset of imgate's
// protocol that `imgate-bench connect,hold,broadcast` uses, served by
// uWebSockets.js on its one thread, with its own fastest fan-out (pub/sub:
// one topic per room, app.publish). Not part of imgate and never run by
// `make test`: bench/uws.sh installs the npm package `uwebsockets` into a
// scratch folder and starts this file as an unprivileged user.
//
//   WebSocket /acc  {"seq","cmd":"login","data":{"appID","userID",...}}  -> subscribes to the room
//                   {"seq","cmd":"heartbeat"}                           -> answered
//   POST /user/sendMessageAll  appID, userID, msgID, message (form)      -> publish to the room
//
// Prints "ws listening on 127.0.0.1:<port>" and "http listening on ..."
// (one port serves both), as imgate does.
'use strict';

const uWS = require(process.env.UWS_MODULE || 'uwebsockets');

const port = Number(process.env.PORT || 0);
const app = uWS.App();

function answer(seq, cmd, code, data) {
  return JSON.stringify({ seq, cmd, response: { code, codeMsg: code === 200 ? 'Success' : 'Error', data } });
}

app.ws('/acc', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message) => {
    let m;
    try {
      m = JSON.parse(Buffer.from(message).toString());
    } catch (e) {
      ws.end(1007, 'bad json');
      return;
    }
    if (m.cmd === 'login') {
      const d = m.data || {};
      ws.subscribe(String(d.appID));
      ws.send(answer(m.seq, 'login', 200, null));
    } else if (m.cmd === 'heartbeat' || m.cmd === 'ping') {
      ws.send(answer(m.seq, m.cmd, 200, null));
    }
  },
});

app.post('/user/sendMessageAll', (res) => {
  let body = '';
  res.onAborted(() => { res.aborted = true; });
  res.onData((chunk, last) => {
    body += Buffer.from(chunk).toString();
    if (!last) return;
    const q = new URLSearchParams(body);
    const push = JSON.stringify({
      seq: q.get('msgID') || '', cmd: 'msg',
      response: { code: 200, codeMsg: 'Ok',
                  data: { target: '', type: 'text', msg: q.get('message') || '', from: q.get('userID') || '' } },
    });
    app.publish(String(q.get('appID')), push, false);
    if (!res.aborted)
      res.cork(() => res.writeHeader('Content-Type', 'application/json')
                        .end('{"code":200,"msg":"Success","data":{"sendResults":true}}'));
  });
});

app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error('uws_room: cannot listen');
    process.exit(1);
  }
  const p = uWS.us_socket_local_port(token);
  console.log(`ws listening on 127.0.0.1:${p}`);
  console.log(`http listening on 127.0.0.1:${p}`);
});
