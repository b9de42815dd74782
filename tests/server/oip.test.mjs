// oip.test.mjs - the Open Inference Protocol routes (KServe v2 REST, Triton's binary tensor
// extension) of the real digits-server: metadata, health, infer in every input form, against
// /predict's answers for the same images, every error, and the protocol's own published
// examples (tests/server/fixtures/oip/, sources in its README).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, raw, mnistTest, encodePng, ROOT } from './lib.mjs';

const CNN = path.join(ROOT, 'models/mnist-cnn.model');
const MLP = path.join(ROOT, 'models/mnist-mlp.model');
const FIX = path.join(ROOT, 'tests/server/fixtures/oip');
const digits = mnistTest(16);
let srv;

before(async () => {
  srv = await startServer(['--model', CNN, '--model', MLP]);
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

const INFER = '/v2/models/mnist-cnn/infer';

async function infer(body, { url = INFER, headers = {} } = {}) {
  const b = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const res = await raw(srv.port, 'POST', url,
    { headers: { 'Content-Type': 'application/json', ...headers }, body: b });
  let json = null;
  if ((res.headers['content-type'] || '').startsWith('application/json')) json = JSON.parse(res.text);
  return { ...res, json };
}

// The unit floats /predict's JSON form is sent (Math.fround: the float32 the server reads).
const unit = (px) => Array.from(px, (b) => Math.fround(b / 255));
const fp32 = (imgs, shape) => ({ name: 'pixels', datatype: 'FP32', shape: shape || [imgs.length, 784],
  data: imgs.flatMap((d) => unit(d.pixels)) });

// /predict's answers for the same images, as texts of the probabilities (so equal text means
// equal float32 values: both print the shortest form that reads back).
async function predictBatch(imgs) {
  const res = await fetch(`${srv.url}/predict`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ images: imgs.map((d) => ({ pixels: unit(d.pixels), model: 'mnist-cnn' })) }) });
  assert.equal(res.status, 200);
  return (await res.json()).results;
}

function floatsLE(buf, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(buf.readFloatLE(i * 4));
  return out;
}

function binaryFp32(imgs) {
  const b = Buffer.alloc(imgs.length * 784 * 4);
  imgs.forEach((d, i) => unit(d.pixels).forEach((v, k) => b.writeFloatLE(v, (i * 784 + k) * 4)));
  return b;
}

// A JSON header and its binary part as one body, with the headers Triton's clients send.
function withBinary(header, bin) {
  const h = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([h, bin]), headers: { 'Content-Type': 'application/octet-stream',
    'Inference-Header-Content-Length': String(h.length) } };
}

function splitBinary(res) {
  const n = Number(res.headers['inference-header-content-length']);
  assert.ok(n > 0 && n <= res.body.length, `Inference-Header-Content-Length ${n}`);
  return { json: JSON.parse(res.body.subarray(0, n).toString()), bin: res.body.subarray(n) };
}

describe('metadata and health', () => {
  const cases = [
    ['/v2', 200, { name: 'digits', extensions: ['binary_tensor_data'] }],
    ['/v2/health/live', 200, { live: true }],
    ['/v2/health/ready', 200, { ready: true }],
    ['/v2/models/mnist-cnn/ready', 200, { name: 'mnist-cnn', ready: true }],
    ['/v2/models/mnist-mlp/versions/1/ready', 200, { name: 'mnist-mlp', ready: true }],
    ['/v2/models/mnist-cnn', 200, { name: 'mnist-cnn', versions: ['1'], platform: 'digits' }],
    ['/v2/models/mnist-cnn/versions/1', 200, { name: 'mnist-cnn', versions: ['1'] }],
    ['/v2/models/nope', 404, { error: /unknown model "nope"; loaded: mnist-cnn, mnist-mlp/ }],
    ['/v2/models/nope/ready', 404, { error: /unknown model/ }],
    ['/v2/models/mnist-cnn/versions/2', 404, { error: /no version "2"; its one version is "1"/ }],
    ['/v2/models/mnist-cnn/versions/2/ready', 404, { error: /no version "2"/ }],
    ['/v2/other', 404, { error: /no such route/ }],
    ['/v2/models/mnist-cnn/what', 404, { error: /no such route/ }],
    ['/v2/models/', 404, { error: /no such route/ }],
  ];
  for (const [url, status, want] of cases) {
    test(`GET ${url} -> ${status}`, async () => {
      const res = await raw(srv.port, 'GET', url);
      assert.equal(res.status, status, res.text);
      assert.match(res.headers['content-type'], /^application\/json/);
      const got = res.json();
      for (const [k, v] of Object.entries(want)) {
        if (v instanceof RegExp) assert.match(got[k], v);
        else assert.deepEqual(got[k], v, `${k} in ${res.text}`);
      }
    });
  }

  test('model metadata names the inputs and outputs a client needs', async () => {
    const m = (await raw(srv.port, 'GET', '/v2/models/mnist-mlp')).json();
    assert.deepEqual(m.inputs, [{ name: 'pixels', datatype: 'FP32', shape: [-1, 784] },
      { name: 'image', datatype: 'BYTES', shape: [-1] }]);
    assert.deepEqual(m.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
      { name: 'prediction', datatype: 'INT64', shape: [-1] }]);
  });

  test('wrong methods are 405 with Allow, HEAD works like GET', async () => {
    let res = await raw(srv.port, 'POST', '/v2/models/mnist-cnn', { body: '{}' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
    res = await raw(srv.port, 'GET', INFER);
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'POST');
    assert.match(res.json().error, /use POST/);
    res = await raw(srv.port, 'HEAD', '/v2/health/ready');
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
  });

  test('with no model loaded, ready and infer answer 503 and live 200', async () => {
    // (a --web of its own, so that the start does not find the repository's models/)
    const empty = await startServer(['--web', path.join(ROOT, 'tests', 'server', 'fixtures')]);
    try {
      assert.equal((await raw(empty.port, 'GET', '/v2/health/live')).status, 200);
      const r = await raw(empty.port, 'GET', '/v2/health/ready');
      assert.equal(r.status, 503);
      assert.match(r.json().error, /no model is loaded/);
      const i = await raw(empty.port, 'POST', INFER, { headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ inputs: [fp32(digits.slice(0, 1))] }) });
      assert.equal(i.status, 503);
      assert.equal((await raw(empty.port, 'GET', '/v2/models/mnist-cnn')).status, 503);
    } finally {
      assert.equal(await empty.stop(), 0);
    }
  });
});

describe('infer', () => {
  test('FP32 [N,784] gives /predict\'s probabilities and predictions, with id and outputs', async () => {
    const imgs = digits.slice(0, 8);
    const want = await predictBatch(imgs);
    const res = await infer({ id: 'req-7', inputs: [fp32(imgs)] });
    assert.equal(res.status, 200, res.text);
    const j = res.json;
    assert.equal(j.model_name, 'mnist-cnn');
    assert.equal(j.model_version, '1');
    assert.equal(j.id, 'req-7');
    assert.deepEqual(j.outputs.map((o) => [o.name, o.datatype, o.shape]),
      [['probabilities', 'FP32', [8, 10]], ['prediction', 'INT64', [8]]]);
    // the same numbers, as text
    const probsText = /"name":"probabilities".*?"data":\[([^\]]*)\]/.exec(res.text)[1].split(',');
    for (let i = 0; i < 8; i++) {
      const predictText = JSON.stringify(want[i].probabilities).slice(1, -1).split(',');
      assert.deepEqual(probsText.slice(i * 10, i * 10 + 10).map(Number), predictText.map(Number), `image ${i}`);
      assert.equal(j.outputs[1].data[i], want[i].prediction);
    }
    const right = imgs.filter((d, i) => j.outputs[1].data[i] === d.label).length;
    assert.ok(right >= 7, `${right} of 8 right`);
  });

  test('[N,28,28] and [N,1,28,28], flat or nested, give the same answer as [N,784]', async () => {
    const imgs = digits.slice(0, 3);
    const flat = (await infer({ inputs: [fp32(imgs)] })).json;
    const nested = imgs.map((d) => Array.from({ length: 28 }, (_, y) => unit(d.pixels).slice(y * 28, y * 28 + 28)));
    for (const input of [
      { name: 'x', datatype: 'FP32', shape: [3, 28, 28], data: nested },
      { name: 'x', datatype: 'FP32', shape: [3, 1, 28, 28], data: nested.map((n) => [n]) },
      { name: 'x', datatype: 'FP32', shape: [3, 1, 28, 28], data: imgs.flatMap((d) => unit(d.pixels)) },
    ]) {
      const res = await infer({ inputs: [input] });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.outputs, flat.outputs, JSON.stringify(input.shape));
    }
  });

  test('UINT8 0..255 reads as FP32 v/255', async () => {
    const imgs = digits.slice(0, 4);
    const a = (await infer({ inputs: [{ name: 'x', datatype: 'UINT8', shape: [4, 784],
      data: imgs.flatMap((d) => Array.from(d.pixels)) }] })).json;
    const b = (await infer({ inputs: [fp32(imgs)] })).json;
    assert.deepEqual(a.outputs[1].data, b.outputs[1].data);
    a.outputs[0].data.forEach((v, i) => assert.ok(Math.abs(v - b.outputs[0].data[i]) < 1e-5));
  });

  test('BYTES: image files in base64 (JSON) or length-prefixed (binary) are read as /predict reads uploads', async () => {
    const pngs = digits.slice(0, 3).map((d) => encodePng(28, 28, 1, d.pixels));
    const want = [];
    for (const p of pngs) {
      const r = await fetch(`${srv.url}/predict`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: p });
      want.push(await r.json());
    }
    const res = await infer({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [3],
      data: pngs.map((p) => p.toString('base64')) }] });
    assert.equal(res.status, 200, res.text);
    want.forEach((w, i) => {
      assert.equal(res.json.outputs[1].data[i], w.prediction);
      assert.deepEqual(res.json.outputs[0].data.slice(i * 10, i * 10 + 10), w.probabilities);
    });
    const bin = Buffer.concat(pngs.flatMap((p) => { const l = Buffer.alloc(4); l.writeUInt32LE(p.length); return [l, p]; }));
    const { body, headers } = withBinary({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [3, 1],
      parameters: { binary_data_size: bin.length } }] }, bin);
    const res2 = await infer(body, { headers });
    assert.equal(res2.status, 200, res2.text);
    assert.deepEqual(res2.json.outputs, res.json.outputs);
  });

  test('binary FP32 input and binary outputs (Triton\'s extension) carry the same values', async () => {
    const imgs = digits.slice(0, 5);
    const ref = (await infer({ inputs: [fp32(imgs)] })).json;
    const bin = binaryFp32(imgs);
    const { body, headers } = withBinary({ inputs: [{ name: 'x', datatype: 'FP32', shape: [5, 784],
      parameters: { binary_data_size: bin.length } }], parameters: { binary_data_output: true } }, bin);
    const res = await infer(body, { headers });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    const { json, bin: out } = splitBinary(res);
    assert.deepEqual(json.outputs.map((o) => [o.name, o.parameters.binary_data_size, 'data' in o]),
      [['probabilities', 200, false], ['prediction', 40, false]]);
    assert.equal(out.length, 240);
    // JSON numbers have 6 significant digits (as /predict's); the binary floats are exact
    floatsLE(out, 50).forEach((v, i) => {
      const j = ref.outputs[0].data[i];
      assert.ok(Math.abs(v - j) <= 5e-6 * Math.abs(j), `probability ${i}: ${v} vs ${j}`);
    });
    for (let i = 0; i < 5; i++) assert.equal(Number(out.readBigInt64LE(200 + i * 8)), ref.outputs[1].data[i]);
    // binary_data false on one output overrides binary_data_output for it
    const b2 = withBinary({ inputs: [{ name: 'x', datatype: 'FP32', shape: [5, 784],
      parameters: { binary_data_size: bin.length } }], parameters: { binary_data_output: true },
    outputs: [{ name: 'prediction', parameters: { binary_data: false } }, { name: 'probabilities' }] }, bin);
    const r2 = splitBinary(await infer(b2.body, { headers: b2.headers }));
    assert.deepEqual(r2.json.outputs[0].data, ref.outputs[1].data);
    assert.equal(r2.json.outputs[1].parameters.binary_data_size, 200);
    assert.equal(r2.bin.length, 200);
  });

  test('outputs chooses and orders the outputs; binary_data on one of them', async () => {
    const imgs = digits.slice(0, 2);
    let res = await infer({ inputs: [fp32(imgs)], outputs: [{ name: 'prediction' }] });
    assert.deepEqual(res.json.outputs.map((o) => o.name), ['prediction']);
    res = await infer({ inputs: [fp32(imgs)], outputs: [{ name: 'prediction' }, { name: 'probabilities' }] });
    assert.deepEqual(res.json.outputs.map((o) => o.name), ['prediction', 'probabilities']);
    res = await infer({ inputs: [fp32(imgs)], outputs: [{ name: 'prediction', parameters: { binary_data: true } },
      { name: 'probabilities' }] });
    const { json, bin } = splitBinary(res);
    assert.equal(json.outputs[0].parameters.binary_data_size, 16);
    assert.equal(json.outputs[1].data.length, 20);
    assert.equal(bin.length, 16);
  });

  test('a blank image answers prediction -1 and zero probabilities', async () => {
    const res = await infer({ inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 784], data: new Array(784).fill(0) }] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.outputs[1].data, [-1]);
    assert.deepEqual(res.json.outputs[0].data, new Array(10).fill(0));
  });

  test('the MLP by name and by version; metrics count /v2 infer', async () => {
    const res = await infer({ inputs: [fp32(digits.slice(0, 1))] }, { url: '/v2/models/mnist-mlp/versions/1/infer' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.model_name, 'mnist-mlp');
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(m, /^digits_http_requests_total\{route="\/v2\/models\/infer",status="200"\} [1-9]\d*$/m);
  });

  test('256 images of FP32 in JSON (1.6 MB) are read without a tree and all answered', async () => {
    const imgs = Array.from({ length: 256 }, (_, i) => digits[i % digits.length]);
    const res = await infer({ inputs: [fp32(imgs)] });
    assert.equal(res.status, 200, res.text.slice(0, 200));
    assert.equal(res.json.outputs[1].data.length, 256);
    const want = (await infer({ inputs: [fp32(digits)] })).json.outputs[1].data;
    res.json.outputs[1].data.forEach((p, i) => assert.equal(p, want[i % digits.length]));
  });
});

describe('infer errors', () => {
  const one = () => fp32(digits.slice(0, 1));
  const cases = [
    ['not JSON', '{"inputs": [', 400, /invalid JSON at byte \d+/],
    ['an array body', '[]', 400, /the body must be a JSON object/],
    ['no inputs', {}, 400, /inputs is missing or empty/],
    ['empty inputs', { inputs: [] }, 400, /inputs is missing or empty/],
    ['two inputs', { inputs: [one(), one()] }, 400, /more than one tensor/],
    ['INT32', { inputs: [{ ...one(), datatype: 'INT32' }] }, 400, /datatype "INT32" is not taken/],
    ['no datatype', { inputs: [{ name: 'x', shape: [1, 784], data: one().data }] }, 400, /needs a datatype and a shape/],
    ['[1,783]', { inputs: [{ ...one(), shape: [1, 783] }] }, 400, /shape does not fit FP32/],
    ['[0,784]', { inputs: [{ ...one(), shape: [0, 784], data: [] }] }, 400, /shape does not fit/],
    ['[257,784]', { inputs: [{ ...one(), shape: [257, 784] }] }, 400, /257 images; at most 256/],
    ['a negative dimension', { inputs: [{ ...one(), shape: [-1, 784] }] }, 400, /non-negative integers/],
    ['five dimensions', { inputs: [{ ...one(), shape: [1, 1, 1, 28, 28] }] }, 400, /more than 4 dimensions/],
    ['783 numbers', { inputs: [{ ...one(), data: one().data.slice(1) }] }, 400, /has 783 numbers, but shape \[1,...\] needs 784/],
    ['a value over 1', { inputs: [{ ...one(), data: [1.5, ...one().data.slice(1)] }] }, 400, /value 0 = 1.5 is outside \[0,1\]/],
    ['UINT8 256', { inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 784], data: [256, ...new Array(783).fill(0)] }] }, 400, /UINT8 values are integers in 0..255/],
    ['UINT8 3.5', { inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 784], data: [3.5, ...new Array(783).fill(0)] }] }, 400, /UINT8 values/],
    ['strings for FP32', { inputs: [{ ...one(), data: ['a'] }] }, 400, /must be numbers, not strings/],
    ['mixed data', { inputs: [{ ...one(), data: [0, 'a'] }] }, 400, /mixes numbers and strings/],
    ['booleans in data', { inputs: [{ ...one(), data: [true] }] }, 400, /must hold numbers/],
    ['BYTES not base64', { inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: ['not*base64'] }] }, 400, /not base64/],
    ['BYTES not an image', { inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], data: ['aGVsbG8='] }] }, 400, /element 0: /],
    ['BYTES count', { inputs: [{ name: 'x', datatype: 'BYTES', shape: [2], data: ['aGVsbG8='] }] }, 400, /1 BYTES elements, but the shape says 2/],
    ['no data', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 784] }] }, 400, /has no data/],
    ['data and a binary size', { inputs: [{ ...one(), parameters: { binary_data_size: 3136 } }] }, 400, /both data and binary_data_size/],
    ['a binary size without a binary part', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 784], parameters: { binary_data_size: 3136 } }] }, 400, /3136 but 0 bytes follow/],
    ['an unknown output', { inputs: [one()], outputs: [{ name: 'logits' }] }, 400, /unknown output "logits"; this model has "probabilities" and "prediction"/],
    ['an output twice', { inputs: [one()], outputs: [{ name: 'prediction' }, { name: 'prediction' }] }, 400, /"prediction" is asked twice/],
    ['binary_data not a boolean', { inputs: [one()], outputs: [{ name: 'prediction', parameters: { binary_data: 1 } }] }, 400, /must be true or false/],
    ['id not a string', { id: 42, inputs: [one()] }, 400, /id must be a string/],
    ['too deep', { inputs: [one()], parameters: { a: [[[[[[[[1]]]]]]]] } }, 400, /nested deeper than 8/],
    ['trailing data', `${JSON.stringify({ inputs: [one()] })} x`, 400, /unexpected data after the object/],
  ];
  for (const [name, body, status, re] of cases) {
    test(`${name} -> ${status}`, async () => {
      const res = await infer(body);
      assert.equal(res.status, status, res.text);
      assert.match(res.json.error, re);
    });
  }

  test('unknown model 404, unknown version 404, Content-Type 415, bad header lengths 400', async () => {
    const body = { inputs: [one()] };
    let res = await infer(body, { url: '/v2/models/nope/infer' });
    assert.equal(res.status, 404);
    assert.match(res.json.error, /unknown model "nope"/);
    res = await infer(body, { url: '/v2/models/mnist-cnn/versions/7/infer' });
    assert.equal(res.status, 404);
    res = await infer(body, { headers: { 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 415);
    assert.match(res.json.error, /unsupported Content-Type text\/plain for infer/);
    for (const v of ['abc', '-1', '999999', '12x', '123456789012345678901234']) {
      res = await infer(body, { headers: { 'Inference-Header-Content-Length': v } });
      assert.equal(res.status, 400, v);
      assert.match(res.json.error, /Inference-Header-Content-Length/);
    }
    const bin = binaryFp32(digits.slice(0, 1)).subarray(0, 3000);
    const b = withBinary({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 784], parameters: { binary_data_size: 3000 } }] }, bin);
    res = await infer(b.body, { headers: b.headers });
    assert.equal(res.status, 400);
    assert.match(res.json.error, /3000 bytes of binary data, but shape and FP32 need 3136/);
    const lp = Buffer.alloc(4);
    lp.writeUInt32LE(1000);
    const b2 = withBinary({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 8 } }] },
      Buffer.concat([lp, Buffer.alloc(4)]));
    res = await infer(b2.body, { headers: b2.headers });
    assert.equal(res.status, 400);
    assert.match(res.json.error, /runs past the binary data/);
  });

  test('a body over --max-body is 413 before it is read', async () => {
    const res = await raw(srv.port, 'POST', INFER, { headers: { 'Content-Type': 'application/json',
      'Content-Length': String(64 << 20) } });
    assert.equal(res.status, 413);
  });
});

describe('the protocol\'s published examples', () => {
  test('KServe\'s infer example as published: the error a one-input model gives', async () => {
    const body = fs.readFileSync(path.join(FIX, 'kserve-infer-request.json'));
    const res = await infer(body);
    assert.equal(res.status, 400);
    assert.deepEqual(Object.keys(res.json), ['error']);
    assert.match(res.json.error, /more than one tensor/);
  });

  test('KServe\'s infer example, adapted: the response has the published response\'s shape', async () => {
    const req = JSON.parse(fs.readFileSync(path.join(FIX, 'kserve-infer-request.json'), 'utf8'));
    req.inputs = [{ ...req.inputs[0], shape: [1, 784], datatype: 'FP32', data: unit(digits[0].pixels) }];
    req.outputs[0].name = 'probabilities';
    const res = await infer(req);
    assert.equal(res.status, 200, res.text);
    const published = fs.readFileSync(path.join(FIX, 'kserve-infer-response.txt'), 'utf8');
    const keys = (t) => [...t.matchAll(/"([a-z_]+)"\s*:/g)].map((m) => m[1]);
    // every key of the published response, in its order, among ours (we add model_name/version)
    const ours = keys(res.text);
    let at = -1;
    for (const k of keys(published)) {
      const i = ours.indexOf(k, at + 1);
      assert.ok(i > at, `key ${k} of the published response, in order, in ${res.text}`);
      at = i;
    }
    assert.equal(res.json.id, '42');
    assert.deepEqual(res.json.outputs.map((o) => o.name), ['probabilities']);
    assert.deepEqual(res.json.outputs[0].shape, [1, 10]);
    assert.equal(res.json.outputs[0].datatype, 'FP32');
  });

  test('Triton\'s binary example as published (19 bytes of data): the same error', async () => {
    const header = fs.readFileSync(path.join(FIX, 'triton-binary-request.json'));
    const res = await infer(Buffer.concat([header, Buffer.alloc(19)]), { headers: {
      'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) },
    url: '/v2/models/mnist-cnn/infer' });
    assert.equal(res.status, 400);
    assert.match(res.json.error, /more than one tensor/);
  });

  test('Triton\'s binary example, adapted: binary in, binary out, the published response\'s shape', async () => {
    const req = JSON.parse(fs.readFileSync(path.join(FIX, 'triton-binary-request.json'), 'utf8'));
    req.inputs = [{ ...req.inputs[0], shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 3136 } }];
    req.outputs[0].name = 'probabilities';
    const { body, headers } = withBinary(req, binaryFp32(digits.slice(0, 1)));
    const res = await infer(body, { headers });
    assert.equal(res.status, 200, res.text);
    const { json, bin } = splitBinary(res);
    const published = JSON.parse(fs.readFileSync(path.join(FIX, 'triton-binary-response.json'), 'utf8'));
    assert.deepEqual(Object.keys(json.outputs[0]).sort(), Object.keys(published.outputs[0]).sort());
    assert.deepEqual(json.outputs[0].parameters, { binary_data_size: 40 });
    assert.equal(bin.length, 40);
    const p = floatsLE(bin, 10);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-3);
    assert.equal(p.indexOf(Math.max(...p)), digits[0].label);
  });
});
