// openapi.test.mjs - server/openapi.json: a valid OpenAPI 3.1 document (checked by a validator
// of the specification's own schemas), served as it is at GET /openapi.json, covering every
// route the server has, and the answer checker of openapi.mjs (which every HTTP test runs
// through lib.mjs) refusing answers that drift from it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { ROOT, startServer, raw, tmpdir } from './lib.mjs';
import { openapi, OPENAPI_FILE, checkAnswer } from './openapi.mjs';

const MODEL = path.join(ROOT, 'models', 'mnist-mlp.model');
let srv, dir;
before(async () => {
  dir = tmpdir('digits-openapi-');
  srv = await startServer(['--model', MODEL, '--web', path.join(ROOT, 'web'),
    '--samples', path.join(dir, 'samples.db')]);
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('server/openapi.json is a valid OpenAPI 3.1 document', async () => {
  const v = new Validator();
  const res = await v.validate(structuredClone(openapi));
  assert.equal(res.valid, true, JSON.stringify(res.errors, null, 1));
  assert.equal(v.version, '3.1');
  assert.equal(openapi.info.version, JSON.parse((await raw(srv.port, 'GET', '/v2')).text).version);
});

test('GET /openapi.json serves the file as built in', async () => {
  const r = await raw(srv.port, 'GET', '/openapi.json');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  const file = fs.readFileSync(OPENAPI_FILE);
  assert.equal(r.body.length, file.length + 1);
  assert.ok(r.body.subarray(0, file.length).equals(file), 'the same bytes');
  const head = await raw(srv.port, 'HEAD', '/openapi.json');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
});

// Every operation of the document, called: none is a route the server lacks (404 "no such
// route" or a static 404, or 405), and its answer passes the checker (raw runs it).
test('every documented operation exists on the server', async () => {
  const fill = (p) => p.replace('{name}', 'mnist-mlp').replace('{version}', '1')
    .replace('{file}', 'index.html').replace('{id}', '1');
  const pixels = new Array(784).fill(0);
  const bar = pixels.map((_, i) => (i % 28 === 14 && i > 100 && i < 680 ? 1 : 0));
  const bodies = {
    '/samples': { label: 1, pixels: bar }, // before /samples/{id}, which reads sample 1
    '/predict': { pixels },
    '/read': { pixels },
    '/v2/models/{name}/infer': { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 784], data: pixels }] },
    '/v2/models/{name}/versions/{version}/infer': { inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 28, 28], data: pixels }] },
  };
  let n = 0;
  for (const [p, item] of Object.entries(openapi.paths)) {
    for (const method of Object.keys(item).filter((k) => ['get', 'post'].includes(k))) {
      const opts = method === 'post'
        ? { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(bodies[p]) } : {};
      assert.ok(method !== 'post' || bodies[p], `a body for POST ${p}`);
      const r = await raw(srv.port, method.toUpperCase(), fill(p), opts);
      assert.equal(r.status, method === 'post' && p === '/samples' ? 201 : 200,
        `${method} ${p}: ${r.text.slice(0, 200)}`);
      n++;
    }
  }
  assert.ok(n >= 16, `${n} operations`);
});

test('every route API.md documents is in the document, and the other way round', () => {
  // API.md writes both forms of a /v2 model route as /v2/models/{name}[/versions/1]/...
  const api = fs.readFileSync(path.join(ROOT, 'server', 'API.md'), 'utf8')
    .replaceAll('[/versions/1]', '');
  for (const p of Object.keys(openapi.paths)) {
    if (p === '/{file}') continue;
    assert.ok(api.includes(p.replace('/versions/{version}', '')), `API.md names ${p}`);
  }
  for (const route of ['/predict', '/read', '/models', '/model', '/healthz', '/metrics', '/openapi.json',
    '/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/{name}', '/v2/models/{name}/ready',
    '/v2/models/{name}/infer'])
    assert.ok(openapi.paths[route], `openapi.json has ${route}`);
});

// The checker must be able to fail: answers that drift from the document are refused.
test('answers that drift from the document are refused by the checker', () => {
  const ok = { prediction: 1, probabilities: new Array(10).fill(0.1), model: 'm', elapsed_us: 3 };
  const answer = (status, body, headers = {}, method = 'POST', url = '/predict') => ({
    method, url, status, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    header: (n) => ({ 'x-request-id': 'abc-1', 'content-type': 'application/json', ...headers })[n],
  });
  checkAnswer(answer(200, ok)); // the baseline passes
  const bad = [
    [answer(200, { ...ok, probabilities: ok.probabilities.slice(1) }), /does not match.*probabilities/],
    [answer(200, { ...ok, prediction: 10 }), /does not match/],
    [answer(200, { probabilities: ok.probabilities, model: 'm' }), /does not match.*prediction/],
    [answer(400, { message: 'x' }), /does not match.*error/],
    [answer(200, ok, { 'x-request-id': undefined }), /X-Request-Id missing/],
    [answer(200, ok, { 'content-type': 'text/html' }), /Content-Type text\/html is not one of/],
    [answer(200, 'not json'), /not JSON/],
    [answer(200, { status: 'fine' }, {}, 'GET', '/healthz'), /does not match/],
    [answer(200, ok, {}, 'DELETE', '/models'), /has no DELETE.*405 was due/],
    [answer(405, { error: 'x' }, {}, 'DELETE', '/models'), /405 without Allow/],
    [answer(200, { model_name: 'm', outputs: [{ name: 'logits', shape: [1], datatype: 'FP32' }] },
      {}, 'POST', '/v2/models/m/infer'), /does not match/],
  ];
  for (const [a, re] of bad) assert.throws(() => checkAnswer(a), re, `${a.method} ${a.url} ${a.status}`);
});
