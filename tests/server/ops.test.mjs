// ops.test.mjs - what operators and browsers on other origins see: X-Request-Id on every
// answer, the JSON access log (--log-format json) and CORS (--cors) with its preflights.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startServer, raw, waitLog } from './lib.mjs';

const MODEL = path.join(ROOT, 'models', 'mnist-mlp.model');
const ORIGIN = 'https://app.example:3000';
const GENERATED = /^[0-9a-f]{8}-\d+$/;
const pixels = Array.from({ length: 784 }, (_, i) =>
  (i % 28 >= 13 && i % 28 <= 14 && i >= 4 * 28 && i < 24 * 28 ? 1 : 0));
const BODY = JSON.stringify({ pixels });
const JSON_HEADERS = { 'Content-Type': 'application/json' };

let srv; // --cors ORIGIN --log-format json
before(async () => {
  srv = await startServer(['--model', MODEL, '--web', path.join(ROOT, 'web'), '--cors', ORIGIN,
    '--log-format', 'json', '--max-body', '100k'], { quiet: false });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0, srv.log());
});

// Every kind of answer: routes, errors, static files, the early 413 written by hand.
const REQUESTS = [
  ['GET', '/healthz', {}, 200],
  ['GET', '/models', {}, 200],
  ['GET', '/metrics', {}, 200],
  ['GET', '/', {}, 200],
  ['GET', '/no-such-file', {}, 404],
  ['DELETE', '/models', {}, 405],
  ['POST', '/predict', { headers: JSON_HEADERS, body: BODY }, 200],
  ['POST', '/predict', { headers: JSON_HEADERS, body: '{"pixels":[1,2' }, 400],
  ['POST', '/predict', { headers: { 'Content-Type': 'text/plain' }, body: 'x' }, 415],
  ['POST', '/predict', { headers: { ...JSON_HEADERS, 'Content-Length': '200000' }, body: '{' }, 413],
  ['GET', '/v2/health/ready', {}, 200],
  ['POST', '/v2/models/mnist-mlp/infer', { headers: JSON_HEADERS,
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 784], data: pixels }] }) }, 200],
];

test('every answer carries an X-Request-Id: the client\'s when sane, else a new one', async () => {
  const seen = new Set();
  for (const [method, p, opts, status] of REQUESTS) {
    const r = await raw(srv.port, method, p, opts);
    assert.equal(r.status, status, `${method} ${p}: ${r.text}`);
    const id = r.headers['x-request-id'];
    assert.match(id || '', GENERATED, `${method} ${p}`);
    assert.ok(!seen.has(id), `${id} repeated`);
    seen.add(id);
    const mine = await raw(srv.port, method, p,
      { ...opts, headers: { ...opts.headers, 'X-Request-Id': 'trace-7f3a.b_c:1' } });
    assert.equal(mine.headers['x-request-id'], 'trace-7f3a.b_c:1', `${method} ${p}`);
  }
  for (const bad of ['has space', 'x'.repeat(65), 'quote"d', 'caf\u00e9']) {
    const r = await raw(srv.port, 'GET', '/healthz', { headers: { 'X-Request-Id': Buffer.from(bad).toString('latin1') } });
    assert.match(r.headers['x-request-id'], GENERATED, bad);
  }
});

test('--log-format json: one object a line, with the request id the answer carried', async () => {
  const before = srv.log().length;
  const r = await raw(srv.port, 'POST', '/predict?x=1',
    { headers: { ...JSON_HEADERS, 'X-Request-Id': 'log-check-1' }, body: BODY });
  assert.equal(r.status, 200);
  const g = await raw(srv.port, 'GET', '/a%01b');
  await waitLog(srv, new RegExp(`"request_id":"${g.headers['x-request-id']}"`));
  const lines = srv.log().slice(before).split('\n').filter((l) => l.startsWith('{'));
  const objs = lines.map((l) => JSON.parse(l));
  const p = objs.find((o) => o.request_id === 'log-check-1');
  assert.ok(p, lines.join('\n'));
  assert.deepEqual(Object.keys(p), ['time', 'request_id', 'method', 'path', 'status', 'bytes',
    'duration_us', 'remote', 'aborted']);
  assert.equal(p.method, 'POST');
  assert.equal(p.path, '/predict');
  assert.equal(p.status, 200);
  assert.equal(p.bytes, Number(r.headers['content-length']));
  assert.ok(Number.isInteger(p.duration_us) && p.duration_us > 0);
  assert.equal(p.remote, '127.0.0.1');
  assert.equal(p.aborted, false);
  assert.ok(Math.abs(Date.parse(p.time) - Date.now()) < 60000, p.time);
  assert.match(p.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const q = objs.find((o) => o.request_id === g.headers['x-request-id']);
  assert.equal(q.path, '/a\u0001b');
  assert.equal(q.status, 404);
});

test('--cors ORIGIN: that origin may read answers; others get no CORS headers', async () => {
  for (const [method, p, opts, status] of REQUESTS) {
    const r = await raw(srv.port, method, p,
      { ...opts, headers: { ...opts.headers, Origin: ORIGIN } });
    assert.equal(r.status, status, `${method} ${p}`);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN, `${method} ${p}`);
    assert.match(r.headers['access-control-expose-headers'], /X-Request-Id/);
    assert.match(r.headers.vary || '', /Origin/, `${method} ${p}`);
  }
  for (const other of ['https://app.example', 'http://app.example:3000', 'https://evil.example']) {
    const r = await raw(srv.port, 'GET', '/healthz', { headers: { Origin: other } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined, other);
    assert.match(r.headers.vary || '', /Origin/);
  }
});

test('--cors: preflights are answered with the methods of the route', async () => {
  const pre = (p, origin = ORIGIN, method = 'POST') => raw(srv.port, 'OPTIONS', p, { headers: {
    Origin: origin, 'Access-Control-Request-Method': method,
    'Access-Control-Request-Headers': 'content-type' } });
  for (const p of ['/predict', '/read', '/v2/models/mnist-mlp/infer']) {
    const r = await pre(p);
    assert.equal(r.status, 204, `${p}: ${r.text}`);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(r.headers['access-control-allow-methods'], 'POST, OPTIONS');
    assert.match(r.headers['access-control-allow-headers'], /Content-Type/);
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.equal(r.body.length, 0);
  }
  for (const p of ['/models', '/healthz', '/v2/health/ready']) {
    const r = await pre(p, ORIGIN, 'GET');
    assert.equal(r.status, 204, p);
    assert.equal(r.headers['access-control-allow-methods'], 'GET, HEAD, OPTIONS');
  }
  assert.equal((await pre('/samples')).headers['access-control-allow-methods'], 'GET, HEAD, POST, OPTIONS');
  assert.equal((await pre('/samples/1', ORIGIN, 'DELETE')).headers['access-control-allow-methods'],
    'GET, HEAD, DELETE, OPTIONS');
  const evil = await pre('/predict', 'https://evil.example');
  assert.equal(evil.status, 403);
  assert.equal(evil.headers['access-control-allow-origin'], undefined);
  assert.match(evil.json().error, /origin https:\/\/evil\.example is not allowed here \(the server allows https:\/\/app\.example:3000\)/);
});

test('without --cors: no CORS headers and OPTIONS is 405; --cors * allows any origin', async () => {
  const plain = await startServer(['--model', MODEL]);
  try {
    const r = await raw(plain.port, 'GET', '/healthz', { headers: { Origin: ORIGIN } });
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers.vary, undefined);
    const o = await raw(plain.port, 'OPTIONS', '/predict', { headers: { Origin: ORIGIN,
      'Access-Control-Request-Method': 'POST' } });
    assert.equal(o.status, 405);
  } finally {
    assert.equal(await plain.stop(), 0);
  }
  const any = await startServer(['--model', MODEL, '--cors', '*']);
  try {
    const r = await raw(any.port, 'POST', '/predict',
      { headers: { ...JSON_HEADERS, Origin: 'https://anywhere.example' }, body: BODY });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers.vary, undefined);
    const o = await raw(any.port, 'OPTIONS', '/predict', { headers: { Origin: 'null',
      'Access-Control-Request-Method': 'POST' } });
    assert.equal(o.status, 204);
  } finally {
    assert.equal(await any.stop(), 0);
  }
});
