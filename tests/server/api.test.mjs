// api.test.mjs - the HTTP API of the real digits-server, from outside: a table of (request,
// status, JSON fragment) cases, then routes, static files, traversal, uploads, batch, models.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  tmpdir, trainModel, startServer, raw, postJson, postImage, mnistTest, toUnit,
  encodePng, encodeBmp, encodeGif, ROOT, MNIST_DIR,
} from './lib.mjs';

let dir;
let web;
let srv;
let models;
const digits = mnistTest(200);

before(async () => {
  dir = tmpdir();
  models = {
    a: trainModel(dir, 'alpha', { seed: 1, hidden: 48, iterations: 1500 }),
    b: trainModel(dir, 'beta', { seed: 2, hidden: 16, iterations: 300 }),
  };
  // A web root with one file of every type we map, a subdirectory, a dotfile and symlinks.
  web = path.join(dir, 'web');
  fs.mkdirSync(path.join(web, 'sub'), { recursive: true });
  const files = {
    'index.html': '<!doctype html><title>digits</title>', 'style.css': 'body{}',
    'app.js': 'export {}', 'data.json': '{}', 'icon.svg': '<svg/>', 'notes.txt': 'hi',
    'favicon.ico': 'ico', 'pic.png': 'png', 'sub/index.html': '<p>sub</p>', '.secret': 'no',
  };
  for (const [f, c] of Object.entries(files)) fs.writeFileSync(path.join(web, f), c);
  fs.writeFileSync(path.join(dir, 'outside.txt'), 'outside');
  fs.symlinkSync(path.join(dir, 'outside.txt'), path.join(web, 'escape.txt'));
  fs.symlinkSync('/etc', path.join(web, 'etc'));
  fs.symlinkSync('notes.txt', path.join(web, 'inner.txt'));
  srv = await startServer(['--model', models.a, '--model', models.b, '--web', web,
    '--max-body', '3000000']);
});

after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

// A model's recorded command as GET /models shows it: no word (nor --flag=value) starts with
// '/', so nothing of the training machine's directories is shown.
function checkPublic(m) {
  for (const w of m.training.command.split(' ')) {
    assert.ok(!w.startsWith('/') && !/^--[a-z-]+=\//.test(w), `${m.name}: ${w} in ${m.training.command}`);
  }
}

// Every float of the MODEL objects (lr, losses, accuracies, threshold; not the f64 seconds):
// the text reads back to the same binary32, and no text with one digit fewer would.
function checkShortest(text) {
  const keys = 'lr|momentum|weight_decay|train_loss|train_accuracy|test_loss|test_accuracy|threshold';
  let n = 0;
  for (const [, key, t] of text.matchAll(new RegExp(`"(${keys})":(-?[0-9.]+(?:e[-+]?\\d+)?)`, 'g'))) {
    const f = Math.fround(Number(t));
    const digits = t.replace(/e.*/, '').replace(/[-.]/g, '').replace(/^0+/, '')
      .replace(/0+$/, (z) => (t.includes('.') ? z : '')).length;
    assert.ok(digits <= 9, `${key}: ${t}`);
    if (digits > 1 && /[.e]/.test(t)) { // whole numbers are written out in full
      assert.notEqual(Math.fround(Number(f.toPrecision(digits - 1))), f,
        `${key}: ${t} is not the shortest (${f.toPrecision(digits - 1)} reads back the same)`);
    }
    n++;
  }
  assert.ok(n > 10, `${n} floats checked`);
}

const zeros = new Array(784).fill(0);
const seven = () => toUnit(digits[0].pixels);

// ------------------------------------------------------------------------------------------
// The table: request -> status and a fragment of the JSON answer.

const J = 'application/json';
const cases = [
  // [name, method, path, content-type, body (string or function), status, fragment (regexp)]
  ['mnist 28x28', 'POST', '/predict', J, () => JSON.stringify({ pixels: seven() }), 200,
    /"prediction":7,"probabilities":\[/],
  ['blank canvas', 'POST', '/predict', J, JSON.stringify({ pixels: zeros }), 200,
    /"prediction":null,"reason":"blank","probabilities":null/],
  ['blank sized canvas', 'POST', '/predict', J,
    JSON.stringify({ width: 10, height: 5, pixels: new Array(50).fill(0) }), 200,
    /"reason":"blank"/],
  ['783 numbers', 'POST', '/predict', J, JSON.stringify({ pixels: zeros.slice(1) }), 400,
    /pixels has 783 numbers, expected 784/],
  ['value out of range', 'POST', '/predict', J,
    () => JSON.stringify({ pixels: zeros.map((v, i) => (i === 17 ? 3.5 : v)) }), 400,
    /value 3.5 at index 17 is outside \[0,1\]/],
  ['negative value', 'POST', '/predict', J,
    () => JSON.stringify({ pixels: zeros.map((v, i) => (i === 2 ? -0.25 : v)) }), 400,
    /value -0.25 at index 2 is outside/],
  ['infinite value', 'POST', '/predict', J, `{"pixels":[1e999${',0'.repeat(783)}]}`, 400,
    /index 0 is not a finite number/],
  ['string value', 'POST', '/predict', J, `{"pixels":["0"${',0'.repeat(783)}]}`, 400,
    /value at index 0 is not a number/],
  ['null value', 'POST', '/predict', J, `{"pixels":[0,null${',0'.repeat(782)}]}`, 400,
    /value at index 1 is not a number/],
  ['pixels not an array', 'POST', '/predict', J, '{"pixels":5}', 400, /pixels must be an array/],
  ['missing pixels', 'POST', '/predict', J, '{}', 400, /missing \\"pixels\\"/],
  ['not an object', 'POST', '/predict', J, '[1,2]', 400, /must be a JSON object/],
  ['invalid JSON', 'POST', '/predict', J, '{"pixels":[0,', 400, /invalid JSON/],
  ['trailing garbage', 'POST', '/predict', J, `{"pixels":[${zeros}]} x`, 400, /invalid JSON/],
  ['empty body', 'POST', '/predict', J, '', 400, /empty body/],
  ['unknown field', 'POST', '/predict', J, `{"pixels":[${zeros}],"colour":1}`, 400,
    /unknown field \\"colour\\"/],
  ['duplicate field', 'POST', '/predict', J, `{"pixels":[${zeros}],"pixels":[${zeros}]}`, 400,
    /duplicate field \\"pixels\\"/],
  ['width without height', 'POST', '/predict', J, `{"width":28,"pixels":[${zeros}]}`, 400,
    /width\\" and \\"height\\" go together/],
  ['wrong count for size', 'POST', '/predict', J, '{"width":3,"height":2,"pixels":[0,0,0]}', 400,
    /pixels has 3 numbers, expected 6/],
  ['width too large', 'POST', '/predict', J, '{"width":4096,"height":1,"pixels":[0]}', 400,
    /width must be an integer in 1..2048/],
  ['width fractional', 'POST', '/predict', J, '{"width":2.5,"height":1,"pixels":[0]}', 400,
    /width must be an integer/],
  ['too deep', 'POST', '/predict', J, '{"images":[{"pixels":[[[0]]]}]}', 400, /nested deeper/],
  ['return_input not bool', 'POST', '/predict', J, `{"pixels":[${zeros}],"return_input":1}`, 400,
    /return_input must be true or false/],
  ['unknown model', 'POST', '/predict', J, `{"pixels":[${zeros}],"model":"gamma"}`, 400,
    /unknown model \\"gamma\\"; loaded: alpha, beta/],
  ['model not a string', 'POST', '/predict', J, `{"pixels":[${zeros}],"model":7}`, 400,
    /model must be a string/],
  ['empty batch', 'POST', '/predict', J, '{"images":[]}', 400, /images is empty/],
  ['batch too large', 'POST', '/predict', J,
    () => JSON.stringify({ images: new Array(257).fill({ pixels: zeros }) }), 400,
    /images has (257|more than 256) entries, at most 256/],
  ['batch and pixels', 'POST', '/predict', J, `{"images":[],"pixels":[${zeros}]}`, 400,
    /not both/],
  ['batch entry not object', 'POST', '/predict', J, '{"images":[1]}', 400,
    /images\[0\]: must be an object/],
  ['batch entry error names index', 'POST', '/predict', J,
    `{"images":[{"pixels":[${zeros}]},{"pixels":[0]}]}`, 400,
    /images\[1\]: pixels has 1 numbers, expected 784/],
  ['text/plain', 'POST', '/predict', 'text/plain', 'hello', 415,
    /unsupported Content-Type text\/plain; send application\/json or an image/],
  ['no content type', 'POST', '/predict', null, 'hello', 415, /unsupported Content-Type/],
  ['json with charset', 'POST', '/predict', 'application/json; charset=utf-8',
    JSON.stringify({ pixels: zeros }), 200, /"reason":"blank"/],
  ['not an image', 'POST', '/predict', 'image/png', 'hello world', 400,
    /not a PNG, JPEG, BMP or GIF/],
  ['empty image', 'POST', '/predict', 'image/png', '', 400, /empty body/],
  ['truncated png', 'POST', '/predict', 'image/png',
    () => encodePng(28, 28, 1, Buffer.from(digits[0].pixels)).subarray(0, 60), 400, /png/],
  ['huge png header', 'POST', '/predict', 'image/png', () => {
    const p = encodePng(1, 1, 1, Buffer.from([0]));
    p.writeUInt32BE(100000, 16); // width in IHDR, CRC now wrong but stb does not check it
    return p;
  }, 400, /image|png/],
  ['GET /predict', 'GET', '/predict', null, undefined, 405, /use POST/],
  ['PUT /healthz', 'PUT', '/healthz', null, undefined, 405, /not allowed/],
  ['DELETE /', 'DELETE', '/', null, undefined, 405, /not allowed/],
  ['healthz', 'GET', '/healthz', null, undefined, 200, /"status":"ok","models":2/],
  ['models', 'GET', '/models', null, undefined, 200, /"default":"alpha","models":\[\{"name":"alpha"/],
  ['model default', 'GET', '/model', null, undefined, 200, /^\{"name":"alpha"/],
  ['model by name', 'GET', '/model?name=beta', null, undefined, 200, /^\{"name":"beta"/],
  ['model unknown', 'GET', '/model?name=nope', null, undefined, 404, /unknown model/],
  ['unknown path', 'GET', '/nope', null, undefined, 404, /not found/],
];

describe('request table', () => {
  for (const [name, method, p, type, body, status, frag] of cases) {
    test(`${name}: ${method} ${p} -> ${status}`, async () => {
      const headers = type ? { 'Content-Type': type } : {};
      let b = typeof body === 'function' ? body() : body;
      if (b !== undefined) headers['Content-Length'] = Buffer.byteLength(b);
      const res = await raw(srv.port, method, p, { headers, body: b });
      assert.equal(res.status, status, res.text);
      assert.match(res.text, frag);
      if (res.status !== 200 || p !== '/metrics') JSON.parse(res.text); // always JSON
      if (status >= 400) {
        assert.equal(typeof res.json().error, 'string');
        assert.match(res.headers['content-type'], /^application\/json/);
      }
      if (status === 405) assert.ok(res.headers.allow, 'Allow header');
    });
  }
});

// ------------------------------------------------------------------------------------------

describe('routes', () => {
  test('405 carries the right Allow header', async () => {
    assert.equal((await raw(srv.port, 'GET', '/predict')).headers.allow, 'POST');
    assert.equal((await raw(srv.port, 'POST', '/models')).headers.allow, 'GET, HEAD');
  });

  test('HEAD works where GET does, without a body', async () => {
    const res = await raw(srv.port, 'HEAD', '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
  });

  test('GET /models describes each model from its file', async () => {
    const m = await (await fetch(`${srv.url}/models`)).json();
    assert.equal(m.default, 'alpha');
    assert.deepEqual(m.models.map((x) => x.name), ['alpha', 'beta']);
    const a = m.models[0];
    assert.equal(a.file, 'alpha.model');
    assert.equal(a.architecture, 'dense:48,relu,dense:10');
    assert.deepEqual(a.input, [1, 28, 28]);
    assert.equal(a.classes, 10);
    assert.equal(a.parameters, 784 * 48 + 48 + 48 * 10 + 10);
    assert.ok(['mnist', 'none'].includes(a.preprocess));
    assert.equal(a.training.seed, 1);
    assert.equal(a.training.iterations, 1500);
    assert.equal(typeof a.training.optimizer, 'string');
    assert.ok(a.metrics.test_accuracy > 0.8 && a.metrics.test_accuracy <= 1, a.metrics.test_accuracy);
    assert.ok(Array.isArray(a.history));
    assert.equal(a.confusion.length, 10);
    assert.ok(a.confusion.every((row) => row.length === 10));
    const total = a.confusion.flat().reduce((s, v) => s + v, 0);
    assert.equal(total, 10000);
  });

  // Issue 21: the command showed the absolute paths of the machine that trained the model and
  // floats had binary noise ("lr":0.00200000009). alpha was trained above with absolute paths.
  test('GET /models: the command names files without absolute paths, floats are shortest', async () => {
    const text = await (await fetch(`${srv.url}/models`)).text();
    for (const m of JSON.parse(text).models) checkPublic(m);
    const a = JSON.parse(text).models[0];
    const words = a.training.command.split(' ');
    assert.equal(words[words.indexOf('--out') + 1], 'alpha.model');
    const data = path.relative(process.cwd(), MNIST_DIR);
    assert.equal(words[words.indexOf('--data') + 1],
      data.startsWith('..') ? path.basename(MNIST_DIR) : data || '.');
    checkShortest(text);
  });

  test('GET /models of the shipped models: no absolute paths, shortest floats', async () => {
    const shipped = ['mnist-cnn', 'mnist-mlp'].map((n) => path.join(ROOT, 'models', `${n}.model`));
    const s2 = await startServer(shipped.flatMap((f) => ['--model', f]));
    try {
      const text = await (await fetch(`${s2.url}/models`)).text();
      const list = JSON.parse(text).models;
      assert.equal(list.length, 2);
      for (const m of list) checkPublic(m);
      assert.match(text, /"lr":0\.001,/, 'the MLP\'s lr, stored as the float nearest 0.001');
      checkShortest(text);
    } finally {
      assert.equal(await s2.stop(), 0);
    }
  });

  test('GET /metrics is Prometheus text with the documented series', async () => {
    await postJson(srv.url, { pixels: seven() });
    const res = await fetch(`${srv.url}/metrics`);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0.0.4/);
    const t = await res.text();
    assert.match(t, /^# TYPE digits_http_requests_total counter$/m);
    assert.match(t, /^digits_http_requests_total\{route="\/predict",status="200"\} \d+$/m);
    assert.match(t, /^digits_http_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    assert.match(t, /^digits_http_request_duration_seconds_count \d+$/m);
    assert.match(t, /^digits_predictions_total\{digit="7"\} [1-9]\d*$/m);
    assert.match(t, /^digits_model_reloads_total\{result="failed"\} 0$/m);
    for (const line of t.split('\n')) {
      if (line && !line.startsWith('#')) assert.match(line, /^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/, line);
    }
  });
});

// ------------------------------------------------------------------------------------------

describe('static files', () => {
  const types = {
    '/': 'text/html; charset=utf-8', '/index.html': 'text/html; charset=utf-8',
    '/style.css': 'text/css; charset=utf-8', '/app.js': 'text/javascript; charset=utf-8',
    '/data.json': 'application/json', '/icon.svg': 'image/svg+xml',
    '/notes.txt': 'text/plain; charset=utf-8', '/favicon.ico': 'image/x-icon',
    '/pic.png': 'image/png', '/sub/': 'text/html; charset=utf-8', '/inner.txt': 'text/plain; charset=utf-8',
  };
  for (const [p, type] of Object.entries(types)) {
    test(`GET ${p} is ${type}`, async () => {
      const res = await raw(srv.port, 'GET', p);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], type);
      assert.ok(res.headers.etag);
      assert.match(res.headers['cache-control'], /no-cache/);
    });
  }

  test('If-None-Match with the ETag gives 304', async () => {
    const first = await raw(srv.port, 'GET', '/style.css');
    const res = await raw(srv.port, 'GET', '/style.css', { headers: { 'If-None-Match': first.headers.etag } });
    assert.equal(res.status, 304);
  });

  const attempts = [
    '/../outside.txt', '/%2e%2e/outside.txt', '/%2E%2E/outside.txt', '/sub/../../outside.txt',
    '/sub/%2e%2e/%2e%2e/outside.txt', '/..%2foutside.txt', '/%2e%2e%2foutside.txt',
    '/escape.txt', '/etc/passwd', '/etc/hostname', '//etc/passwd', '/%2fetc/passwd',
    '/.secret', '/sub/./index.html', '/index.html%00.png', '/..\\outside.txt', '/%5c..%5coutside.txt',
    '/sub', '/nonexistent.html', `/${'a/'.repeat(600)}x`,
  ];
  for (const p of attempts) {
    test(`GET ${p.slice(0, 60)} is 404`, async () => {
      const res = await raw(srv.port, 'GET', p);
      assert.equal(res.status, 404, res.text);
      assert.doesNotMatch(res.text, /outside|root:/);
    });
  }
});

// ------------------------------------------------------------------------------------------

describe('predictions', () => {
  test('MNIST test digits sent as 28x28 JSON are classified like the model says', async () => {
    let correct = 0;
    for (const d of digits.slice(0, 100)) {
      const r = await postJson(srv.url, { pixels: toUnit(d.pixels) });
      assert.equal(r.status, 200);
      assert.equal(r.json.probabilities.length, 10);
      const sum = r.json.probabilities.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `sum ${sum}`);
      assert.equal(r.json.prediction, r.json.probabilities.indexOf(Math.max(...r.json.probabilities)));
      assert.equal(r.json.model, 'alpha');
      assert.ok(Number.isInteger(r.json.elapsed_us) && r.json.elapsed_us >= 0);
      if (r.json.prediction === d.label) correct++;
    }
    assert.ok(correct >= 85, `${correct}/100 correct`);
  });

  test('return_input gives back the 28x28 the network saw', async () => {
    const px = seven();
    const r = await postJson(srv.url, { pixels: px, return_input: true });
    assert.equal(r.json.input.length, 784);
    assert.deepEqual(r.json.input, px); // 3 decimals in, 3 decimals out
  });

  test('a digit drawn small and off-centre on a big canvas is normalised', async () => {
    let correct = 0;
    const W = 280;
    const sample = digits.slice(0, 40);
    for (const [k, d] of sample.entries()) {
      const scale = 2 + (k % 5); // 2x..6x
      const ox = 10 + ((k * 37) % (W - 28 * scale - 10));
      const oy = 5 + ((k * 53) % (W - 28 * scale - 5));
      const canvas = new Array(W * W).fill(0);
      for (let y = 0; y < 28 * scale; y++) {
        for (let x = 0; x < 28 * scale; x++) {
          canvas[(oy + y) * W + ox + x] = d.pixels[Math.floor(y / scale) * 28 + Math.floor(x / scale)] / 255;
        }
      }
      const r = await postJson(srv.url, { width: W, height: W, pixels: canvas.map((v) => Math.round(v * 1000) / 1000), return_input: true });
      assert.equal(r.status, 200, r.text);
      const inp = r.json.input;
      let mass = 0; let cx = 0; let cy = 0;
      inp.forEach((v, i) => { mass += v; cx += v * (i % 28); cy += v * Math.floor(i / 28); });
      assert.ok(Math.abs(cx / mass - 13.5) < 1.5 && Math.abs(cy / mass - 13.5) < 1.5,
        `centre of mass ${cx / mass},${cy / mass}`);
      if (r.json.prediction === d.label) correct++;
    }
    assert.ok(correct >= 32, `${correct}/40 correct on big canvases`);
  });

  test('PNG of an MNIST digit gives the same answer as the same pixels in JSON', async () => {
    for (const d of digits.slice(0, 10)) {
      const png = await postImage(srv.url, encodePng(28, 28, 1, Buffer.from(d.pixels)));
      const json = await postJson(srv.url, { width: 28, height: 28, pixels: Array.from(d.pixels, (b) => b / 255) });
      assert.equal(png.status, 200, png.text);
      assert.deepEqual(png.json.probabilities, json.json.probabilities);
    }
  });

  test('dark ink on white paper (RGBA PNG, BMP, GIF, JPEG) is recognised', async () => {
    const d = digits[0]; // a 7
    const inv = Buffer.from(d.pixels, (b) => 255 - b);
    const rgba = Buffer.alloc(784 * 4);
    for (let i = 0; i < 784; i++) { rgba[i * 4] = rgba[i * 4 + 1] = rgba[i * 4 + 2] = inv[i]; rgba[i * 4 + 3] = 255; }
    const bodies = [
      ['image/png', encodePng(28, 28, 4, rgba)],
      ['image/bmp', encodeBmp(28, 28, inv)],
      ['image/gif', encodeGif(28, 28, inv)],
      ['application/octet-stream', encodePng(28, 28, 1, inv)],
      ['image/jpeg', fs.readFileSync(path.join(ROOT, 'tests/server/fixtures/mnist-test-0.jpg'))],
    ];
    for (const [type, body] of bodies) {
      const r = await postImage(srv.url, body, type);
      assert.equal(r.status, 200, `${type}: ${r.text}`);
      assert.equal(r.json.prediction, 7, `${type}: ${r.text}`);
    }
    const two = await postImage(srv.url, fs.readFileSync(path.join(ROOT, 'tests/server/fixtures/mnist-test-1.jpg')), 'image/jpeg');
    assert.equal(two.json.prediction, 2, two.text);
  });

  test('transparent PNG: alpha is composited on white', async () => {
    const ga = Buffer.alloc(784 * 2);
    for (let i = 0; i < 784; i++) { ga[i * 2] = 0; ga[i * 2 + 1] = digits[0].pixels[i]; } // black ink, alpha = ink
    const r = await postImage(srv.url, encodePng(28, 28, 2, ga));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.prediction, 7);
  });

  test('blank image upload says blank', async () => {
    const r = await postImage(srv.url, encodePng(50, 40, 1, Buffer.alloc(2000, 255)));
    assert.equal(r.status, 200);
    assert.equal(r.json.prediction, null);
    assert.equal(r.json.reason, 'blank');
  });

  test('query parameters select the model and ask for the input on uploads', async () => {
    const png = encodePng(28, 28, 1, Buffer.from(digits[1].pixels));
    const r = await postImage(srv.url, png, 'image/png', '?model=beta&return_input=1');
    assert.equal(r.json.model, 'beta');
    assert.equal(r.json.input.length, 784);
    const bad = await postImage(srv.url, png, 'image/png', '?model=nope');
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /unknown model "nope"/);
  });

  test('model selection: the two models answer differently and say who they are', async () => {
    const a = await postJson(srv.url, { pixels: seven() });
    const b = await postJson(srv.url, { pixels: seven(), model: 'beta' });
    const a2 = await postJson(srv.url, { pixels: seven(), model: 'alpha' });
    assert.equal(a.json.model, 'alpha');
    assert.equal(b.json.model, 'beta');
    assert.deepEqual(a2.json.probabilities, a.json.probabilities);
    assert.notDeepEqual(a.json.probabilities, b.json.probabilities);
  });

  test('batch: results in order, each equal to its single answer, with per-image options', async () => {
    const imgs = digits.slice(0, 5).map((d) => ({ pixels: toUnit(d.pixels) }));
    imgs[2] = { pixels: zeros };
    imgs[3] = { ...imgs[3], model: 'alpha', return_input: false };
    const r = await postJson(srv.url, { images: imgs, model: 'beta', return_input: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results.length, 5);
    for (const [i, res] of r.json.results.entries()) {
      const model = i === 3 ? 'alpha' : 'beta';
      assert.equal(res.model, model);
      assert.equal('input' in res, i !== 3);
      const single = await postJson(srv.url, { pixels: imgs[i].pixels, model });
      assert.deepEqual(res.prediction, single.json.prediction);
      assert.deepEqual(res.probabilities, single.json.probabilities);
    }
    assert.equal(r.json.results[2].reason, 'blank');
  });

  test('JSON with unusual but valid formatting is parsed the same way', async () => {
    const px = seven();
    const base = await postJson(srv.url, { pixels: px });
    const spaced = `\n{ "pixels" : [ ${px.map((v) => (v === 0 ? '0.0e0' : `${v * 10}E-1`)).join(' ,\n ')} ] }\t`;
    const r = await postJson(srv.url, spaced);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.probabilities, base.json.probabilities);
    const escaped = await postJson(srv.url, `{"pix\\u0065ls":[${px}],"model":"\\u0061lpha"}`);
    assert.equal(escaped.status, 200, escaped.text);
    assert.deepEqual(escaped.json.probabilities, base.json.probabilities);
  });

  test('413 as soon as Content-Length is over the limit', async () => {
    const res = await raw(srv.port, 'POST', '/predict', {
      headers: { 'Content-Type': 'application/json', 'Content-Length': '3000001' }, body: '{' });
    assert.equal(res.status, 413);
    assert.match(res.json().error, /larger than the limit of 3000000 bytes/);
  });

  test('headers up to the documented 16 KiB are served, larger ones get 431', async () => {
    const ok = await raw(srv.port, 'GET', '/healthz', { headers: { 'X-Pad': 'a'.repeat(12000) } });
    assert.equal(ok.status, 200);
    const big = await raw(srv.port, 'GET', '/healthz', { headers: { 'X-Pad': 'a'.repeat(20000) } });
    assert.equal(big.status, 431);
    assert.equal((await raw(srv.port, 'GET', '/healthz')).status, 200, 'still serving');
  });

  test('413 for a chunked body that passes the limit', async () => {
    const res = await raw(srv.port, 'POST', '/predict', {
      headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      body: `{"pixels":[${'0,'.repeat(1600000)}0]}` });
    assert.equal(res.status, 413);
  });

  test('a 2048x2048 canvas (the documented maximum) is accepted', async () => {
    const W = 2048;
    const body = `{"width":${W},"height":${W},"pixels":[${'0,'.repeat(W * 100)}${'1,'.repeat(W * 50)}${'0,'.repeat(W * (W - 150) - 1)}0]}`;
    const big = await startServer(['--model', models.a, '--max-body', String(body.length + 10)]);
    try {
      const r = await postJson(big.url, body);
      assert.equal(r.status, 200, r.text.slice(0, 200));
      assert.equal(typeof r.json.prediction, 'number');
    } finally {
      assert.equal(await big.stop(), 0);
    }
  });
});
