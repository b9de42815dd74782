// hostile.test.mjs - slow and hostile clients: hundreds of idle connections, headers and bodies
// trickled a byte at a time. Other clients keep getting answers at normal latency meanwhile,
// and once the attackers leave, the server's file descriptors are back to where they started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { tmpdir, trainModel, startServer, postJson, mnistTest, toUnit } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

async function latencies(url, pixels, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await postJson(url, { pixels });
    out.push(performance.now() - t0);
    assert.equal(r.status, 200);
  }
  return out.sort((a, b) => a - b);
}

test('idle and trickling clients do not slow others down, and everything is freed after', async () => {
  const dir = tmpdir();
  const model = trainModel(dir, 'h');
  const srv = await startServer(['--model', model, '--timeout', '30', '--threads', '2']);
  const sockets = [];
  const timers = [];
  try {
    const pixels = toUnit(mnistTest(1)[0].pixels);
    await latencies(srv.url, pixels, 10); // warm-up
    const baseline = await latencies(srv.url, pixels, 30);
    const fdsBefore = fdCount(srv.proc.pid);

    // The attackers come from other loopback addresses, each under the per-address limit
    // (128 by default; see bounded.test.mjs for what happens over it).
    const open = (i) => {
      const s = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 4)}` });
      s.on('error', () => {});
      sockets.push(s);
      return s;
    };
    for (let i = 0; i < 300; i++) open(i); // idle: connect and say nothing
    const header = 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
    for (let i = 0; i < 20; i++) { // slowloris: headers one byte every 20 ms
      const s = open(i);
      let k = 0;
      timers.push(setInterval(() => { if (k < header.length) s.write(header[k++]); }, 20));
    }
    const body = JSON.stringify({ pixels });
    for (let i = 0; i < 20; i++) { // a complete header, then the body one byte every 20 ms
      const s = open(i);
      s.write(`${header}Content-Length: ${body.length}\r\n\r\n`);
      let k = 0;
      timers.push(setInterval(() => { if (k < body.length) s.write(body[k++]); }, 20));
    }
    await sleep(300);
    assert.ok(fdCount(srv.proc.pid) >= fdsBefore + 300, 'the attackers are connected');

    const during = await latencies(srv.url, pixels, 30);
    const median = (xs) => xs[Math.floor(xs.length / 2)];
    // normal latency: within a few milliseconds of the quiet baseline (generous for loaded CI)
    assert.ok(median(during) < median(baseline) * 5 + 20,
      `median ${median(during).toFixed(2)} ms under attack vs ${median(baseline).toFixed(2)} ms`);

    timers.forEach(clearInterval);
    sockets.forEach((s) => s.destroy());
    let fds = fdCount(srv.proc.pid);
    for (let t = 0; t < 100 && fds > fdsBefore; t++) {
      await sleep(50);
      fds = fdCount(srv.proc.pid);
    }
    assert.ok(fds <= fdsBefore, `file descriptors ${fds} after, ${fdsBefore} before`);
    assert.equal((await postJson(srv.url, { pixels })).status, 200);
  } finally {
    timers.forEach(clearInterval);
    sockets.forEach((s) => s.destroy());
    assert.equal(await srv.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
