// teach.test.mjs - teaching the model from the page, in Chromium: after a settled answer the
// page offers "Right" and "It was: 0..9" when the server keeps samples (--samples); a correction
// (a click, or a key) is stored with the drawing and the model's answer, and the counter says
// how many are kept. Without --samples the row never shows.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launch, open, drawMouse, settledPrediction, DIGITS, mainModel, shot } from './lib.mjs';

let browser, server, plain, dir;

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'digits-teach-'));
    server = await startServer([mainModel()], 0, ['--samples', path.join(dir, 'samples.db')]);
    plain = await startServer([mainModel()]);
    browser = await launch();
});

after(async () => {
    await browser?.close();
    await server?.stop();
    await plain?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
});

async function samples(url) {
    const r = await fetch(`${url}samples`);
    assert.equal(r.status, 200);
    return r.json();
}

test('a misread digit is corrected with a click and kept with the drawing', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, errors } = await open(ctx, server.url);
    assert.equal(await page.isHidden('#teach'), true, 'nothing to teach before a drawing');
    await drawMouse(page, DIGITS[1]);
    const said = await settledPrediction(page);
    await page.waitForSelector('#teach:not([hidden])');
    await shot(page, 'teach-offered');
    // "It was: 7" whatever the model said: the sample keeps both
    await page.click('#teach-digits button[data-digit="7"]');
    await page.waitForFunction(() => document.querySelector('#teach').classList.contains('kept'));
    assert.match(await page.textContent('#teach-note'), /Kept: a 7.* 1 samples kept so far\./);
    await shot(page, 'teach-kept');
    const s = await samples(server.url);
    assert.equal(s.total, 1);
    assert.equal(s.samples[0].label, 7);
    assert.equal(String(s.samples[0].prediction), said);
    assert.ok(s.samples[0].input.some((v) => v > 0.5), 'the drawing is what was kept');
    // one sample per answer: a second click keeps nothing more
    await page.click('#teach-digits button[data-digit="3"]', { force: true }).catch(() => {});
    assert.equal((await samples(server.url)).total, 1);
    // a new drawing offers the row again; the key 1 and then Enter are one sample, not two
    await page.click('#clear');
    assert.equal(await page.isHidden('#teach'), true, 'cleared: nothing to teach');
    await drawMouse(page, DIGITS[0]);
    await settledPrediction(page);
    await page.waitForSelector('#teach:not([hidden])');
    await page.keyboard.press('0');
    await page.waitForFunction(() => document.querySelector('#teach').classList.contains('kept'));
    await page.keyboard.press('Enter');
    const after2 = await samples(server.url);
    assert.equal(after2.total, 2);
    assert.equal(after2.samples[1].label, 0);
    assert.deepEqual(errors, []);
    await ctx.close();
});

test('"Right" keeps the model\'s own answer as the label', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, errors } = await open(ctx, server.url);
    await drawMouse(page, DIGITS[7]);
    const said = await settledPrediction(page);
    await page.waitForSelector('#teach:not([hidden])');
    await page.click('#teach-yes');
    await page.waitForFunction(() => document.querySelector('#teach').classList.contains('kept'));
    assert.match(await page.textContent('#teach-note'), new RegExp(`Kept: a ${said}, as the model said\\.`));
    const s = await samples(server.url);
    assert.equal(s.samples.at(-1).label, Number(said));
    assert.deepEqual(errors, []);
    await ctx.close();
});

test('the samples view shows what was kept, by label, and deletes a sample', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, errors } = await open(ctx, server.url);
    const before = (await samples(server.url)).total;
    assert.ok(before >= 3, 'the tests above kept samples');
    assert.equal(await page.isHidden('#kept'), false);
    assert.equal((await page.textContent('#kept-count')).trim(), String(before));
    await page.click('#kept summary');
    await page.waitForFunction((n) => document.querySelectorAll('#kept-grid li').length === n, before);
    const all = (await samples(server.url)).samples;
    const want = [...Array(10).keys()].map((d) => `${d}: ${all.filter((x) => x.label === d).length}`).join(' · ');
    assert.equal(await page.textContent('#kept-by-label'), want);
    // the most recent first, its image loaded from /samples/{id}.png
    const first = await page.$eval('#kept-grid li', (li) => ({
        id: Number(li.dataset.id), label: li.querySelector('.kept-label').textContent,
        loaded: li.querySelector('img').complete && li.querySelector('img').naturalWidth > 0 }));
    const newest = (await samples(server.url)).samples.at(-1);
    assert.equal(first.id, newest.id);
    assert.match(first.label, new RegExp(`^${newest.label}`));
    await page.waitForFunction(() => { const i = document.querySelector('#kept-grid img'); return i.complete && i.naturalWidth > 0; });
    await shot(page, 'teach-samples-view');
    await page.click(`#kept-grid li[data-id="${first.id}"] button`);
    await page.waitForFunction((n) => document.querySelectorAll('#kept-grid li').length === n, before - 1);
    assert.equal((await page.textContent('#kept-count')).trim(), String(before - 1));
    const after = await samples(server.url);
    assert.equal(after.total, before - 1);
    assert.ok(!after.samples.some((x) => x.id === first.id), 'deleted on the server');
    assert.deepEqual(errors, []);
    await ctx.close();
});

test('without --samples the page offers no teaching', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, errors } = await open(ctx, plain.url);
    await drawMouse(page, DIGITS[1]);
    assert.equal(await settledPrediction(page), '1');
    await page.waitForTimeout(200);
    assert.equal(await page.isHidden('#teach'), true);
    assert.equal(await page.isHidden('#kept'), true, 'no samples view either');
    assert.deepEqual(errors, [], '/healthz says no samples are kept: /samples is never asked');
    await ctx.close();
});
