// scaleout.test.mjs - more instances behind a real load balancer (README "Scale-out"): the
// drain on SIGTERM (--drain-seconds), the shipped systemd unit and haproxy configuration
// checked by their own tools, and Debian's haproxy in front of two instances while one is
// stopped and the other reloaded, with no failed request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, SERVER, tmpdir, startServer, raw, waitLog } from './lib.mjs';

const MODEL = path.join(ROOT, 'models', 'mnist-mlp.model');
const DEPLOY = path.join(ROOT, 'server', 'deploy');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A vertical bar: the shipped models read it as 1.
const pixels = Array.from({ length: 784 }, (_, i) =>
  (i % 28 >= 13 && i % 28 <= 14 && i >= 4 * 28 && i < 24 * 28 ? 1 : 0));
const BODY = JSON.stringify({ pixels });

function requireTool(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} is not installed: run make deps`);
}

test('--drain-seconds: health checks answer 503 "draining", everything else is served, then the stop', async () => {
  const srv = await startServer(['--model', MODEL, '--drain-seconds', '2'], { quiet: false });
  assert.equal((await raw(srv.port, 'GET', '/healthz')).status, 200);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  await waitLog(srv, /SIGTERM: draining for 2 s/);
  const health = await raw(srv.port, 'GET', '/healthz');
  assert.equal(health.status, 503, health.text);
  assert.equal(health.json().status, 'draining');
  const ready = await raw(srv.port, 'GET', '/v2/health/ready');
  assert.equal(ready.status, 503, ready.text);
  assert.match(ready.json().error, /^draining: the server is stopping/);
  assert.equal((await raw(srv.port, 'GET', '/v2/health/live')).status, 200);
  // new connections are still taken and answered
  const p = await raw(srv.port, 'POST', '/predict',
    { headers: { 'Content-Type': 'application/json' }, body: BODY });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json().prediction, 1);
  // SIGHUP still reloads while draining
  srv.proc.kill('SIGHUP');
  await waitLog(srv, /SIGHUP: reloaded 1 model/);
  assert.equal(await srv.exited, 0, srv.log());
  const took = Date.now() - t0;
  assert.ok(took >= 1900 && took < 6000, `exit ${took} ms after SIGTERM`);
  assert.match(srv.log(), /drained for 2 s; finishing requests in flight/);
});

test('a second signal ends the drain at once', async () => {
  const srv = await startServer(['--model', MODEL, '--drain-seconds', '300']);
  srv.proc.kill('SIGINT');
  await waitLog(srv, /SIGINT: draining for 300 s/);
  assert.equal((await raw(srv.port, 'GET', '/healthz')).status, 503);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  assert.equal(await srv.exited, 0, srv.log());
  assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
  assert.match(srv.log(), /SIGTERM: drain ended early; finishing requests in flight/);
});

test('--drain-seconds out of range is refused', () => {
  for (const v of ['-1', '301', 'x']) {
    const r = spawnSync(SERVER, ['--drain-seconds', v], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${v}: ${r.stderr}`);
    assert.match(r.stderr, /--drain-seconds/);
  }
});

test('the systemd unit passes systemd-analyze verify without a warning', () => {
  requireTool('systemd-analyze');
  const dir = tmpdir('digits-unit-');
  try {
    // verify also checks that ExecStart's binary exists: point it at this build's
    const unit = fs.readFileSync(path.join(DEPLOY, 'digits-server.service'), 'utf8')
      .replaceAll('/usr/local/bin/digits-server', SERVER);
    assert.match(unit, /DynamicUser=yes/);
    assert.match(unit, /ProtectSystem=strict/);
    const file = path.join(dir, 'digits-server.service');
    fs.writeFileSync(file, unit);
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The shipped haproxy.cfg with this test's ports.
function haproxyConfig(front, a, b) {
  const cfg = fs.readFileSync(path.join(DEPLOY, 'haproxy.cfg'), 'utf8');
  const out = cfg.replace('bind 127.0.0.1:8090', `bind 127.0.0.1:${front}`)
    .replace('127.0.0.1:8091 check', `127.0.0.1:${a} check`)
    .replace('127.0.0.1:8092 check', `127.0.0.1:${b} check`);
  assert.notEqual(out, cfg);
  assert.equal((out.match(new RegExp(`:(${front}|${a}|${b})\\b`, 'g')) || []).length, 3);
  return out;
}

test('haproxy.cfg is valid for haproxy -c', () => {
  requireTool('haproxy');
  const r = spawnSync('haproxy', ['-c', '-f', path.join(DEPLOY, 'haproxy.cfg')],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /WARNING|ALERT/, r.stdout + r.stderr);
});

async function predictedBy(port) {
  const m = (await raw(port, 'GET', '/metrics')).text;
  const line = /digits_http_requests_total\{route="\/predict",status="200"\} (\d+)/.exec(m);
  return line ? Number(line[1]) : 0;
}

test('haproxy over two instances: SIGTERM one, SIGHUP the other, no request fails', async () => {
  requireTool('haproxy');
  const dir = tmpdir('digits-haproxy-');
  const a = await startServer(['--model', MODEL, '--drain-seconds', '2', '--threads', '1'],
    { quiet: false });
  const b = await startServer(['--model', MODEL, '--drain-seconds', '2', '--threads', '1'],
    { quiet: false });
  const front = await freePort();
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, haproxyConfig(front, a.port, b.port));
  const lb = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lbLog = '';
  lb.stdout.on('data', (c) => { lbLog += c; });
  lb.stderr.on('data', (c) => { lbLog += c; });
  const lbExited = new Promise((resolve) => lb.on('exit', (code, sig) => resolve(sig || code)));
  try {
    // haproxy is up when it answers; both instances are in rotation after their checks
    for (let i = 0; ; i++) {
      try {
        if ((await raw(front, 'GET', '/healthz')).status === 200) break;
      } catch { /* not listening yet */ }
      if (i > 100) throw new Error(`haproxy did not start:\n${lbLog}`);
      await sleep(50);
    }
    await sleep(1500);

    let running = true;
    let ok = 0;
    const failures = [];
    const worker = async () => {
      while (running) {
        try {
          const r = await fetch(`http://127.0.0.1:${front}/predict`, { method: 'POST',
            headers: { 'Content-Type': 'application/json' }, body: BODY });
          const text = await r.text();
          if (r.status === 200 && JSON.parse(text).prediction === 1) ok++;
          else failures.push(`${r.status} ${text.slice(0, 200)}`);
        } catch (e) {
          failures.push(String(e.cause || e));
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    await sleep(1000);
    const servedByA = await predictedBy(a.port);
    const servedByB = await predictedBy(b.port);
    assert.ok(servedByA > 0 && servedByB > 0, `a ${servedByA}, b ${servedByB}: both in rotation`);
    a.proc.kill('SIGTERM');
    await sleep(700);
    b.proc.kill('SIGHUP');
    await waitLog(b, /SIGHUP: reloaded 1 model/);
    assert.equal(await a.exited, 0, a.log());
    const okWhenAStopped = ok;
    await sleep(1000); // b alone
    running = false;
    await Promise.all(workers);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed of ${ok + failures.length}`);
    assert.ok(ok > okWhenAStopped, 'b went on answering after a stopped');
    assert.ok(ok >= 100, `${ok} requests answered`);
    assert.match(a.log(), /SIGTERM: draining for 2 s/);
  } finally {
    lb.kill('SIGTERM');
    await lbExited;
    a.proc.kill('SIGKILL');
    assert.equal(await b.stop(), 0, b.log());
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
