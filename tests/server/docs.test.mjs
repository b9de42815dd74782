// docs.test.mjs - every curl example in README.md and server/API.md, run as pasted (from the
// repository root, against the server `make run` starts, only the port changed), and its output
// checked against the output the document shows beside it.
//
// A command is a line of a ```sh block, with the lines that follow while a quote is open or the
// line ends in `\` or `|`. Comment lines right after a command that read as JSON (`# {...}`,
// possibly over several lines, or a `# {...}` at the end of the command's line) are the
// documented output: the answer must have the same keys, values of the same JSON type, and the
// same strings, booleans and nulls (numbers vary: timings, probabilities).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, startServer } from './lib.mjs';

const DOCS = ['README.md', 'server/API.md'];
const DOC_URL = 'http://127.0.0.1:8080';

// Where the unquoted text of line ends (before a `#` comment), and the quote left open, if any.
function scanLine(line, open) {
  let q = open;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q && !(q === '"' && line[i - 1] === '\\')) q = null;
    } else if (c === "'" || c === '"') {
      q = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return { code: line.slice(0, i), comment: line.slice(i + 1).trim(), open: null };
    }
  }
  return { code: line, comment: null, open: q };
}

function parseJson(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

// -> [{ doc, line, cmd, shown }] for the commands that talk to the server
function examples(doc) {
  const text = readFileSync(path.join(ROOT, doc), 'utf8');
  const found = [];
  let lineNo = 0;
  let inBlock = false, cur = null, open = null, last = null, shown = null;
  const finishShown = () => {
    if (last && shown !== null) last.shown = parseJson(shown);
    shown = null;
  };
  for (const line of text.split('\n')) {
    lineNo++;
    if (!inBlock) {
      inBlock = line.trim() === '```sh';
      continue;
    }
    if (line.trim() === '```') {
      finishShown();
      inBlock = false; cur = null; last = null;
      continue;
    }
    if (cur) { // inside a command
      const s = scanLine(line, open);
      cur.cmd += '\n' + (open ? line : s.code);
      open = s.open;
      if (!open && !/[\\|]\s*$/.test(s.code)) { found.push(cur); last = cur; cur = null; }
      continue;
    }
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) { // a comment line: documented output when it follows a command
      const body = trimmed.replace(/^#\s?/, '');
      if (shown !== null) shown += body;
      else if (last && body.startsWith('{')) shown = body;
      continue;
    }
    finishShown();
    last = null;
    if (!trimmed) continue;
    const s = scanLine(line, null);
    cur = { doc, line: lineNo, cmd: s.code, shown: undefined };
    if (s.comment && s.comment.startsWith('{')) cur.shown = parseJson(s.comment);
    open = s.open;
    if (!open && !/[\\|]\s*$/.test(s.code)) { found.push(cur); last = cur; cur = null; }
  }
  return found.filter((e) => e.cmd.includes(DOC_URL));
}

const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function sameShape(shown, got, where) {
  assert.equal(kind(got), kind(shown), `${where}: type`);
  if (kind(shown) !== 'object') {
    if (['string', 'boolean', 'null'].includes(kind(shown))) assert.equal(got, shown, where);
    return;
  }
  assert.deepEqual(Object.keys(got).sort(), Object.keys(shown).sort(), `${where}: keys`);
  for (const k of Object.keys(shown)) sameShape(shown[k], got[k], `${where}.${k}`);
}

let server, samplesDir;
before(async () => {
  // what `make run` serves (its samples database in a directory of the test's own): the shipped models in the order its wildcard lists them, and web/
  const models = ['models/mnist-cnn.model', 'models/mnist-mlp.model']
    .filter((m) => existsSync(path.join(ROOT, m)));
  assert.equal(models.length, 2, 'the shipped models are in models/');
  samplesDir = mkdtempSync(path.join(tmpdir(), 'digits-docs-'));
  server = await startServer(['--web', path.join(ROOT, 'web'),
    ...models.flatMap((m) => ['--model', path.join(ROOT, m)]),
    '--samples', path.join(samplesDir, 'samples.db')]);
});
after(async () => {
  if (server) await server.stop();
  rmSync(samplesDir, { recursive: true, force: true });
});

test('the documents have curl examples to run', () => {
  const all = DOCS.flatMap(examples);
  // README: 3; API.md: predict (3 JSON, 1 image), models (3), healthz, metrics
  assert.ok(all.length >= 12, `found ${all.length} examples:\n${all.map((e) => e.cmd).join('\n')}`);
  assert.ok(all.some((e) => e.shown !== undefined), 'some examples show their output');
});

for (const doc of DOCS) {
  test(`${doc}: every curl example works as pasted and answers as shown`, () => {
    for (const e of examples(doc)) {
      const where = `${e.doc}:${e.line}`;
      const cmd = e.cmd.replaceAll(DOC_URL, server.url);
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], {
        cwd: ROOT, encoding: 'utf8', timeout: 30_000,
      });
      assert.equal(r.status, 0, `${where}: exit ${r.status}\n${cmd}\n${r.stderr}`);
      const out = r.stdout.trim();
      assert.ok(out.length > 0, `${where}: no output\n${cmd}`);
      if (out.startsWith('{')) {
        const got = parseJson(out);
        assert.notEqual(got, undefined, `${where}: not JSON: ${out.slice(0, 200)}`);
        assert.equal(got.error, undefined, `${where}: ${got.error}`);
        if (e.shown !== undefined) sameShape(e.shown, got, where);
      }
    }
  });
}
