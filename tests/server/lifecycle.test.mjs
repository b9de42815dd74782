// lifecycle.test.mjs - the process: flags, access log, SIGHUP reload (good and corrupt files),
// SIGTERM with requests in flight, and many parallel clients against sequential answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  tmpdir, trainModel, startServer, waitLog, raw, postJson, mnistTest, toUnit, SERVER, ROOT,
} from './lib.mjs';

let dir;
let m1;
let m2;
const digits = mnistTest(60);

before(() => {
  dir = tmpdir();
  // Same name, different weights: a reload must change the answers but not the name.
  m1 = trainModel(dir, 'one', { seed: 1, iterations: 300 });
  fs.renameSync(m1, path.join(dir, 'first.model'));
  m1 = path.join(dir, 'first.model');
  m2 = trainModel(dir, 'one', { seed: 7, hidden: 24, iterations: 300 });
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('--help and --version print and exit 0; bad flags exit 2 with a message', () => {
  const help = spawnSync(SERVER, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--model FILE/);
  assert.match(help.stdout, /--max-body/);
  const ver = spawnSync(SERVER, ['--version'], { encoding: 'utf8' });
  assert.equal(ver.status, 0);
  assert.match(ver.stdout, /^digits-server \d+\.\d+\.\d+/);
  for (const args of [['--bogus'], ['--port'], ['--port', '70000'], ['--threads', '0'],
    ['--max-body', 'lots'], ['--bind', 'not-an-ip', '--port', '0']]) {
    const r = spawnSync(SERVER, args, { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `${args}: ${r.stderr}`);
    assert.match(r.stderr, /^digits-server: /, args.join(' '));
  }
});

test('a port in use is said once, plainly, and the start fails', async () => {
  const first = await startServer(['--model', m1], { quiet: false });
  try {
    const r = spawnSync(SERVER, ['--port', String(first.port), '--model', m1],
      { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `digits-server: 127.0.0.1:${first.port}: the port is in use: another `
      + 'server listens there; stop it or choose another --port\n');
    const v6 = spawnSync(SERVER, ['--port', '0', '--bind', '198.51.100.77', '--model', m1],
      { encoding: 'utf8', timeout: 5000 });
    assert.equal(v6.status, 1);
    assert.equal(v6.stderr, 'digits-server: --bind 198.51.100.77: not an address of this machine\n');
  } finally {
    assert.equal(await first.stop(), 0);
  }
});

// A copy of the binary in a directory laid out as a clone (ROOT/build/digits-server beside
// ROOT/models and ROOT/web) or as make install leaves it (PREFIX/bin, PREFIX/share/digits).
for (const [layout, bin, data] of [['a clone', 'build', '.'], ['an install', 'usr/bin', 'usr/share/digits']]) {
  test(`with neither --model nor --web the server finds the models and the page of ${layout}`, async () => {
    const root = fs.mkdtempSync(path.join(dir, 'layout-'));
    fs.mkdirSync(path.join(root, bin), { recursive: true });
    fs.mkdirSync(path.join(root, data, 'models'), { recursive: true });
    fs.mkdirSync(path.join(root, data, 'web'), { recursive: true });
    const exe = path.join(root, bin, 'digits-server');
    fs.copyFileSync(SERVER, exe);
    fs.chmodSync(exe, 0o755);
    fs.copyFileSync(path.join(ROOT, 'models', 'mnist-mlp.model'), path.join(root, data, 'models', 'b.model'));
    fs.copyFileSync(m1, path.join(root, data, 'models', 'a.model'));
    fs.writeFileSync(path.join(root, data, 'models', 'notes.txt'), 'not a model');
    fs.writeFileSync(path.join(root, data, 'web', 'index.html'), '<!doctype html><title>found</title>');
    const proc = spawn(exe, ['--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr.on('data', (c) => { log += c; });
    const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; !/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(log); i++) {
        if (i > 200) throw new Error(`did not start:\n${log}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)[1]);
      assert.match(log, new RegExp(`no --model or --web: serving web/ and 2 models from ${fs.realpathSync(path.join(root, data)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
      const models = JSON.parse((await raw(port, 'GET', '/models')).text);
      assert.deepEqual(models.models.map((m) => m.file), ['a.model', 'b.model']);
      const page = await raw(port, 'GET', '/');
      assert.equal(page.status, 200);
      assert.match(page.text, /<title>found<\/title>/);
    } finally {
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, log);
    }
  });
}

test('given --model or --web, nothing else is looked for', async () => {
  const srv = await startServer(['--model', m1], { quiet: false });
  try {
    assert.doesNotMatch(srv.log(), /no --model or --web/);
    assert.equal((await raw(srv.port, 'GET', '/')).status, 404);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('a model file that does not load stops the start with the reason', () => {
  const bad = path.join(dir, 'garbage.model');
  fs.writeFileSync(bad, 'this is not a model');
  const r = spawnSync(SERVER, ['--port', '0', '--model', bad], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /garbage\.model: /);
  const missing = spawnSync(SERVER, ['--port', '0', '--model', path.join(dir, 'nope.model')],
    { encoding: 'utf8', timeout: 5000 });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.model/);
  const twice = spawnSync(SERVER, ['--port', '0', '--model', m1, '--model', m1],
    { encoding: 'utf8', timeout: 5000 });
  assert.equal(twice.status, 1);
  assert.match(twice.stderr, /already used/);
});

test('without --model the server starts, /healthz and /predict answer 503', async () => {
  // (--web given: a start with neither looks for the repository's models/, tested below)
  const srv = await startServer(['--web', dir]);
  try {
    assert.equal((await raw(srv.port, 'GET', '/healthz')).status, 503);
    const r = await postJson(srv.url, { pixels: new Array(784).fill(0) });
    assert.equal(r.status, 503);
    assert.match(r.json.error, /no model/);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('access log: one line per request with method, path, status, bytes, microseconds', async () => {
  const srv = await startServer(['--model', m1], { quiet: false });
  try {
    await raw(srv.port, 'GET', '/healthz');
    await postJson(srv.url, { pixels: [1] });
    await waitLog(srv, /POST \/predict 400 \d+ \d+/);
    assert.match(srv.log(), /^GET \/healthz 200 [1-9]\d* \d+$/m);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('SIGHUP: a corrupt file keeps the old model serving; a good file is swapped in', async () => {
  const live = path.join(dir, 'live.model');
  fs.copyFileSync(m1, live);
  const srv = await startServer(['--model', live], { quiet: false });
  try {
    const px = toUnit(digits[0].pixels);
    const before1 = await postJson(srv.url, { pixels: px });
    assert.equal(before1.status, 200);

    // Corrupt: truncated copy, then garbage.
    const good = fs.readFileSync(m1);
    fs.writeFileSync(live, good.subarray(0, good.length >> 1));
    srv.proc.kill('SIGHUP');
    await waitLog(srv, /reload failed/);
    let h = (await raw(srv.port, 'GET', '/healthz')).json();
    assert.equal(h.status, 'ok');
    assert.equal(h.reloads.failed, 1);
    assert.equal(h.generation, 1);
    assert.match(h.last_reload_error, /live\.model/);
    const during = await postJson(srv.url, { pixels: px });
    assert.deepEqual(during.json.probabilities, before1.json.probabilities);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /^digits_model_reloads_total\{result="failed"\} 1$/m);

    // Good: a different model under the same name.
    fs.copyFileSync(m2, live);
    srv.proc.kill('SIGHUP');
    await waitLog(srv, /reloaded 1 model/);
    h = (await raw(srv.port, 'GET', '/healthz')).json();
    assert.equal(h.generation, 2);
    assert.equal(h.reloads.ok, 1);
    assert.equal(h.last_reload_error, null);
    const after1 = await postJson(srv.url, { pixels: px });
    assert.equal(after1.json.model, 'one');
    assert.notDeepEqual(after1.json.probabilities, before1.json.probabilities);
    const m = (await (await fetch(`${srv.url}/model`)).json());
    assert.equal(m.architecture, 'dense:24,relu,dense:10');
    assert.match(await (await fetch(`${srv.url}/metrics`)).text(),
      /^digits_model_reloads_total\{result="ok"\} 1$/m);

    // Deleted file: still serving.
    fs.rmSync(live);
    srv.proc.kill('SIGHUP');
    await waitLog(srv, /reload failed[^\n]*\n(.|\n)*reload failed/);
    assert.equal((await postJson(srv.url, { pixels: px })).status, 200);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

// Issue 21: a model file replaced by a FIFO used to block the reload in open(2) until a writer
// came, and SIGTERM waited behind it; /dev/zero was read up to the 512 MiB cap.
test('SIGHUP with the model replaced by a FIFO or /dev/zero: refused at once, SIGTERM still stops', async () => {
  const live = path.join(dir, 'fifo.model');
  fs.copyFileSync(m1, live);
  const srv = await startServer(['--model', live], { quiet: false });
  try {
    const px = toUnit(digits[0].pixels);
    const before1 = await postJson(srv.url, { pixels: px });
    fs.rmSync(live);
    assert.equal(spawnSync('mkfifo', [live]).status, 0, 'mkfifo');
    srv.proc.kill('SIGHUP');
    await waitLog(srv, /reload failed[^\n]*fifo\.model: not a regular file \(a FIFO\)/, 2000);
    assert.deepEqual((await postJson(srv.url, { pixels: px })).json.probabilities,
      before1.json.probabilities, 'the old model keeps serving');

    fs.rmSync(live);
    fs.symlinkSync('/dev/zero', live);
    const t0 = Date.now();
    srv.proc.kill('SIGHUP');
    await waitLog(srv, /reload failed[^\n]*not a regular file \(a character device\)/, 2000);
    assert.ok(Date.now() - t0 < 2000, `/dev/zero refused in ${Date.now() - t0} ms`);
    const h = (await raw(srv.port, 'GET', '/healthz')).json();
    assert.equal(h.reloads.failed, 2);
    assert.match(h.last_reload_error, /not a regular file/);
    assert.equal((await postJson(srv.url, { pixels: px })).status, 200);

    // And again a FIFO, with SIGTERM right behind the SIGHUP: the server exits at once.
    fs.rmSync(live);
    assert.equal(spawnSync('mkfifo', [live]).status, 0, 'mkfifo');
    srv.proc.kill('SIGHUP');
    const t1 = Date.now();
    assert.equal(await srv.stop(), 0);
    assert.ok(Date.now() - t1 < 3000, `stopped in ${Date.now() - t1} ms`);
  } finally {
    srv.proc.kill('SIGKILL'); // only if the test failed before the stop
  }
});

test('a model path naming a FIFO or a device stops the start with the reason, at once', () => {
  const fifo = path.join(dir, 'start.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  for (const [file, kind] of [[fifo, 'a FIFO'], ['/dev/zero', 'a character device']]) {
    const r = spawnSync(SERVER, ['--port', '0', '--model', file], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 1, `${file}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${file}: not a regular file (${kind})`), r.stderr);
  }
});

test('a FIFO in the --web folder is a 404, not a worker held until a writer comes', async () => {
  const web = path.join(dir, 'web-fifo');
  fs.mkdirSync(web);
  fs.writeFileSync(path.join(web, 'index.html'), '<p>hi</p>');
  assert.equal(spawnSync('mkfifo', [path.join(web, 'pipe.html')]).status, 0, 'mkfifo');
  const srv = await startServer(['--web', web, '--threads', '1']);
  try {
    const r = await raw(srv.port, 'GET', '/pipe.html');
    assert.equal(r.status, 404);
    assert.equal((await raw(srv.port, 'GET', '/')).text, '<p>hi</p>');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('SIGHUP during a stream of requests: every answer is from one whole model', async () => {
  const live = path.join(dir, 'swap.model');
  fs.copyFileSync(m1, live);
  const srv = await startServer(['--model', live]);
  try {
    const px = toUnit(digits[3].pixels);
    const a = (await postJson(srv.url, { pixels: px })).json.probabilities;
    fs.copyFileSync(m2, live);
    const results = [];
    const load = (async () => {
      for (let i = 0; i < 300; i++) results.push((await postJson(srv.url, { pixels: px })).json);
    })();
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 10));
      srv.proc.kill('SIGHUP');
    }
    await load;
    const b = (await postJson(srv.url, { pixels: px })).json.probabilities;
    assert.notDeepEqual(a, b);
    for (const r of results) {
      const p = JSON.stringify(r.probabilities);
      assert.ok(p === JSON.stringify(a) || p === JSON.stringify(b), p);
    }
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('SIGTERM: requests in flight complete, new connections are refused, exit 0', async () => {
  const srv = await startServer(['--model', m1]);
  const body = JSON.stringify({ pixels: toUnit(digits[0].pixels) });
  // Three requests that have sent their headers and half their body.
  const reqs = [];
  const inflight = [0, 1, 2].map(() => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'POST', path: '/predict',
      agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } },
    (res) => {
      let t = '';
      res.on('data', (c) => { t += c; });
      res.on('end', () => resolve({ status: res.statusCode, text: t }));
    });
    req.on('error', reject);
    req.write(body.slice(0, body.length >> 1));
    reqs.push(() => req.end(body.slice(body.length >> 1)));
  }));
  await new Promise((r) => setTimeout(r, 150)); // the server has their headers
  srv.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 150));
  await assert.rejects(raw(srv.port, 'GET', '/healthz'), /ECONNREFUSED|ECONNRESET/);
  for (const finish of reqs) finish();
  const answers = await Promise.all(inflight);
  for (const a of answers) {
    assert.equal(a.status, 200, a.text);
    assert.equal(JSON.parse(a.text).prediction, 7);
  }
  assert.equal(await srv.exited, 0);
});

test('SIGINT with idle keep-alive connections exits 0 promptly', async () => {
  const srv = await startServer(['--model', m1]);
  await fetch(`${srv.url}/healthz`); // leaves a keep-alive connection open
  const t0 = Date.now();
  assert.equal(await srv.stop('SIGINT'), 0);
  assert.ok(Date.now() - t0 < 3000);
});

test('many parallel clients get the same answers as one sequential client', async () => {
  const srv = await startServer(['--model', m1, '--threads', '4']);
  try {
    const bodies = digits.map((d, i) => (i % 7 === 3
      ? { width: 56, height: 28, pixels: [...toUnit(d.pixels).flatMap((v, k) => (k % 28 === 27 ? [v, ...new Array(28).fill(0)] : [v]))] }
      : { pixels: toUnit(d.pixels), return_input: i % 2 === 0 }));
    const seq = [];
    for (const b of bodies) seq.push((await postJson(srv.url, b)).text);
    const agents = Array.from({ length: 16 }, () => new http.Agent({ keepAlive: true, maxSockets: 4 }));
    const par = await Promise.all(Array.from({ length: 8 * bodies.length }, (_, i) => new Promise((resolve, reject) => {
      const data = JSON.stringify(bodies[i % bodies.length]);
      const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'POST', path: '/predict',
        agent: agents[i % agents.length], headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
      (res) => { let t = ''; res.on('data', (c) => { t += c; }); res.on('end', () => resolve(t)); });
      req.on('error', reject);
      req.end(data);
    })));
    agents.forEach((a) => a.destroy());
    const strip = (t) => t.replace(/"elapsed_us":\d+/, '');
    par.forEach((t, i) => assert.equal(strip(t), strip(seq[i % bodies.length]), `request ${i}`));
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('clients that vanish mid-body or lie about Content-Length do not disturb the others', async () => {
  const net = await import('node:net');
  const srv = await startServer(['--model', m1, '--timeout', '2']);
  try {
    const body = JSON.stringify({ pixels: toUnit(digits[0].pixels) });
    const sockets = [];
    for (let i = 0; i < 20; i++) {
      const s = net.connect(srv.port, '127.0.0.1');
      s.on('error', () => {});
      const declared = i % 2 ? body.length * 4 : body.length;
      s.write(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${declared}\r\n\r\n${body.slice(0, 100 + i * 50)}`);
      sockets.push(s);
    }
    // Half of them hang up now, the others stay silent (the idle timeout ends them).
    await new Promise((r) => setTimeout(r, 50));
    sockets.forEach((s, i) => { if (i % 2 === 0) s.destroy(); });
    const ok = await postJson(srv.url, { pixels: toUnit(digits[0].pixels) });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.prediction, 7);
    // Slow headers (slowloris): one byte at a time does not block anyone else either.
    const slow = net.connect(srv.port, '127.0.0.1');
    slow.on('error', () => {});
    slow.write('GET /hea');
    assert.equal((await raw(srv.port, 'GET', '/healthz')).status, 200);
    sockets.forEach((s) => s.destroy());
    slow.destroy();
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
