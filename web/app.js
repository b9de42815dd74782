// app.js - the page: wires the pad to the server and shows the answer, the network's input,
// the model card and the comparison. Design choices:
// - Every prediction request gets a sequence number and aborts the one before it; an answer
//   is shown only if it is newer than what is on screen, so stale answers never win.
// - While a stroke is drawn, predictions are throttled to one per ~100 ms; the one sent at
//   stroke end (or after undo/upload) is "settled" and is the only one announced to screen
//   readers.
// - If the server cannot be reached, the page says so and polls /healthz with backoff; when
//   it answers again the models are reloaded and the current drawing re-predicted.

import * as api from './api.js';
import { Pad, NUMBER_ASPECT } from './pad.js';
import { lineChart } from './chart.js';

const THROTTLE_MS = 100;
const $ = (id) => document.getElementById(id);

const state = {
    models: [],       // MODEL objects from /models
    model: null,      // selected model name
    upload: null,     // the uploaded File being shown, or null
    mode: 'digit',    // 'digit' (POST /predict) or 'number' (POST /read, the wide pad)
    seq: 0,           // last request number issued
    shown: 0,         // request number of what is on screen
    inflight: null,   // AbortController of the request in flight
    lastSent: 0,
    timer: 0,
    offline: false,
    retryTimer: 0,
    countdown: 0,
    input: null,      // the 28x28 input on screen
    teach: null,      // {count} when the server keeps samples (GET /samples), else null
    teachSource: null, // what the answer on screen was made from: {image} or {file}
};

// ---------------------------------------------------------------------------------------------
// Status line

// text goes to the live region (read out); extra (a ticking countdown) is shown only
function setStatus(kind, text, extra = '') {
    const s = $('status');
    s.dataset.state = kind;
    $('status-text').textContent = text;
    $('status-countdown').textContent = extra;
    if (kind !== 'offline') clearInterval(state.countdown);
}

function readyStatus() {
    const m = current();
    setStatus('ok', m ? `Connected · ${m.name}` : 'Connected');
}

// ---------------------------------------------------------------------------------------------
// Probability bars and the verdict

function buildBars() {
    const bars = $('bars');
    for (let d = 0; d < 10; d++) {
        const bar = document.createElement('div');
        bar.className = 'bar';
        bar.setAttribute('role', 'listitem');
        bar.dataset.digit = String(d);
        bar.dataset.probability = '0';
        bar.innerHTML = `<span class="pct"></span><span class="track"><span class="fill"></span></span>` +
            `<span class="label">${d}</span>`;
        bars.append(bar);
    }
}

function pct(p, digits = 1) {
    if (p >= 0.9995) return '>99.9%';
    if (p < 0.001) return '<0.1%';
    return `${(p * 100).toFixed(digits)}%`;
}

// unsure: no bar is marked as the winner and the bars are greyed (a drawing too small to read).
function showProbabilities(probs, unsure = false) {
    const top = probs && !unsure ? probs.indexOf(Math.max(...probs)) : -1;
    $('bars').classList.toggle('unsure', !!probs && unsure);
    for (const bar of $('bars').children) {
        const d = Number(bar.dataset.digit);
        const p = probs ? probs[d] : 0;
        bar.dataset.probability = String(p);
        bar.classList.toggle('is-top', d === top);
        bar.style.setProperty('--p', String(p));
        bar.querySelector('.pct').textContent = probs && p >= 0.005 ? `${Math.round(p * 100)}` : '';
        bar.setAttribute('aria-label', `${d}: ${probs ? pct(p) : 'no value'}`);
    }
}

function showBlankVerdict(prompt) {
    $('prediction').textContent = '';
    $('prediction').dataset.settled = 'true';
    $('prompt').textContent = prompt;
    $('prompt').hidden = false;
    $('confidence').textContent = '';
    $('runner-up').textContent = '';
    $('timing').textContent = '';
    $('cue').hidden = true;
    showProbabilities(null);
}

// A drawing too small for the pen (pad.tooSmall): no digit, greyed bars, and once the stroke
// ends a "draw bigger" cue where the digit would be.
function showTooSmall(ans, settled) {
    $('prediction').textContent = '';
    $('prediction').dataset.settled = String(settled);
    $('prompt').hidden = true;
    $('cue').hidden = !settled;
    $('confidence').textContent = '';
    $('runner-up').textContent = '';
    $('timing').textContent = Number.isFinite(ans.elapsed_us) ? `${ans.elapsed_us} µs on the server` : '';
    showProbabilities(ans.probabilities || null, true);
    drawInput(ans.input || null);
    if (settled) announce('Too small to read. Draw the digit bigger.');
}

function showAnswer(ans, settled, small = false) {
    const pred = $('prediction');
    pred.dataset.settled = String(settled);
    if (small && ans.probabilities) {
        showTooSmall(ans, settled);
        return;
    }
    $('cue').hidden = true;
    if (ans.reason === 'not_a_digit' && ans.probabilities) { // an 11-class model rejected it
        showBlankVerdict('That does not look like a digit');
        pred.dataset.settled = String(settled);
        showProbabilities(ans.probabilities, true);
        drawInput(ans.input || null);
        if (settled) announce('That does not look like a digit.');
        return;
    }
    if (ans.prediction === null || ans.prediction === undefined || !ans.probabilities) {
        showBlankVerdict(ans.reason === 'blank' ? 'No ink found: draw a digit' : 'Draw a digit');
        pred.dataset.settled = String(settled);
        drawInput(ans.input || null);
        if (settled) announce('Nothing to read yet. Draw a digit.');
        return;
    }
    const probs = ans.probabilities;
    const d = ans.prediction;
    pred.textContent = String(d);
    $('prompt').hidden = true;
    $('confidence').textContent = `${pct(probs[d])} sure`;
    const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    const second = order[1];
    $('runner-up').textContent = second && second[0] >= 0.01 ? `then ${second[1]} at ${pct(second[0])}` : '';
    $('timing').textContent = Number.isFinite(ans.elapsed_us) ? `${ans.elapsed_us} µs on the server` : '';
    showProbabilities(probs);
    drawInput(ans.input || null);
    if (settled) announce(`Prediction: ${d}, ${pct(probs[d], 0)} sure`);
}

// ---------------------------------------------------------------------------------------------
// Teaching: after a settled answer, "Right" or "It was: D" keeps the drawing (or the photo) as a
// sample (POST /samples), so that the model can later be fine-tuned on what it misread. Shown
// only when the server keeps samples; keys 0-9 and Enter do the same as the buttons.

function buildTeach() {
    const row = $('teach-digits');
    for (let d = 0; d < 10; d++) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = String(d);
        b.dataset.digit = String(d);
        b.setAttribute('aria-keyshortcuts', String(d));
        b.title = `It was a ${d} (key ${d})`;
        b.addEventListener('click', () => keepSample(d));
        row.append(b);
    }
    $('teach-yes').addEventListener('click', () => {
        const src = state.teachSource;
        if (src && src.prediction !== null) keepSample(src.prediction);
    });
}

// The samples view: counts by label and the most recent 24, each with a delete button. Read
// from the server when opened, and again after each sample kept or deleted while it is open.
async function refreshKept() {
    const box = $('kept');
    box.hidden = !state.teach;
    if (!state.teach) return;
    $('kept-count').textContent = String(state.teach.count);
    if (!box.open) return;
    try {
        const counts = await Promise.all([...Array(10).keys()].map((d) =>
            api.samplesPage({ label: d, limit: 1 }).then((r) => r.total)));
        const total = counts.reduce((a, b) => a + b, 0);
        state.teach.count = total;
        $('kept-count').textContent = String(total);
        $('kept-by-label').textContent = counts.map((n, d) => `${d}: ${n}`).join(' · ');
        const page = await api.samplesPage({ limit: 24, offset: Math.max(0, total - 24) });
        const items = page.samples.slice().reverse().map((sm) => {
            const li = document.createElement('li');
            li.dataset.id = String(sm.id);
            const img = document.createElement('img');
            img.src = `samples/${sm.id}.png`;
            img.alt = `sample ${sm.id}, a ${sm.label}`;
            const label = document.createElement('span');
            label.className = 'kept-label';
            label.textContent = sm.prediction === null || sm.prediction === sm.label
                ? String(sm.label) : `${sm.label} (said ${sm.prediction})`;
            const del = document.createElement('button');
            del.type = 'button';
            del.textContent = 'Delete';
            del.setAttribute('aria-label', `Delete sample ${sm.id}`);
            del.addEventListener('click', async () => {
                try {
                    await api.deleteSample(sm.id);
                } catch (e) {
                    $('teach-note').textContent = `Not deleted: ${e.message}`;
                }
                refreshKept();
            });
            li.append(img, label, del);
            return li;
        });
        $('kept-grid').replaceChildren(...items);
    } catch (e) {
        $('kept-by-label').textContent = `Could not read the samples: ${e.message}`;
    }
}

async function loadTeach() {
    try {
        // (asked of /healthz first: a 404 from /samples would be a console error for nothing)
        if (!(await api.health()).samples_kept) {
            state.teach = null;
            return;
        }
        const r = await api.samplesCount();
        state.teach = { count: r.total };
    } catch {
        state.teach = null; // the server keeps no samples (404) or cannot say: no teaching row
    }
}

function hideTeach() {
    state.teachSource = null;
    $('teach').hidden = true;
}

function offerTeach(ans) {
    if (!state.teach || ans.reason === 'blank' || !ans.probabilities) {
        hideTeach();
        return;
    }
    const prediction = Number.isInteger(ans.prediction) ? ans.prediction : null;
    state.teachSource = state.upload ? { file: state.upload, prediction, model: state.model }
        : { image: pad.pixels(), prediction, model: state.model };
    const t = $('teach');
    t.classList.remove('kept');
    $('teach-yes').hidden = prediction === null;
    for (const b of $('teach-digits').children) b.classList.toggle('predicted', Number(b.dataset.digit) === prediction);
    $('teach-note').textContent = state.teach.count ? `${state.teach.count} samples kept so far.` : '';
    t.hidden = false;
}

async function keepSample(label) {
    const src = state.teachSource;
    if (!src) return;
    state.teachSource = null; // one sample per answer
    try {
        const r = await api.addSample(src.file || src.image, label, { model: src.model });
        state.teach.count++;
        $('teach').classList.add('kept');
        const what = label === r.prediction ? `Kept: a ${label}, as the model said.`
            : `Kept: a ${label}${r.prediction === null ? '' : ` (the model said ${r.prediction})`}.`;
        $('teach-note').textContent = `${what} ${state.teach.count} samples kept so far.`;
        announce(what);
        refreshKept();
    } catch (e) {
        state.teachSource = src;
        $('teach-note').textContent = `Not kept: ${e.message}`;
    }
}

let lastAnnouncement = '';
function announce(text) {
    if (text === lastAnnouncement) return;
    lastAnnouncement = text;
    $('announce').textContent = text;
}

// ---------------------------------------------------------------------------------------------
// "What the network sees": the 28x28 input, enlarged with a pixel grid

function drawInput(input) {
    state.input = input;
    const c = $('input-view');
    const rect = c.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const px = Math.max(28, Math.round(rect.width * dpr));
    if (c.width !== px) c.width = c.height = px;
    const ctx = c.getContext('2d');
    const cell = px / 28;
    const css = getComputedStyle(c);
    ctx.fillStyle = css.getPropertyValue('--sees-bg').trim() || '#000';
    ctx.fillRect(0, 0, px, px);
    c.dataset.ink = '0';
    if (input && input.length === 784) {
        let ink = 0;
        for (let i = 0; i < 784; i++) {
            const v = Math.max(0, Math.min(1, input[i]));
            if (v <= 0) continue;
            ink += v;
            const g = Math.round(v * 255);
            ctx.fillStyle = `rgb(${g},${g},${g})`;
            const x = i % 28, y = (i / 28) | 0;
            ctx.fillRect(Math.floor(x * cell), Math.floor(y * cell),
                Math.ceil(cell) + 1, Math.ceil(cell) + 1);
        }
        c.dataset.ink = ink.toFixed(2);
    }
    ctx.strokeStyle = css.getPropertyValue('--sees-grid').trim() || 'rgba(128,128,128,.35)';
    ctx.lineWidth = Math.max(1, dpr * 0.75);
    ctx.beginPath();
    for (let i = 1; i < 28; i++) {
        const p = Math.round(i * cell) + 0.5;
        ctx.moveTo(p, 0); ctx.lineTo(p, px);
        ctx.moveTo(0, p); ctx.lineTo(px, p);
    }
    ctx.stroke();
    // MNIST's 20x20 box, for reference.
    ctx.strokeStyle = css.getPropertyValue('--sees-box').trim() || '#6366f1';
    ctx.lineWidth = Math.max(1, dpr * 1.25);
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    ctx.strokeRect(Math.round(4 * cell) + 0.5, Math.round(4 * cell) + 0.5, Math.round(20 * cell), Math.round(20 * cell));
    ctx.setLineDash([]);
}

// ---------------------------------------------------------------------------------------------
// Model card, picker and the training curves

function current() {
    return state.models.find((m) => m.name === state.model) || state.models[0] || null;
}

function layerChip(spec) {
    const [kind, arg] = spec.split(':');
    const names = { dense: 'dense', conv: 'conv', conv2d: 'conv', maxpool: 'max-pool', dropout: 'dropout' };
    return arg ? `${names[kind] || kind} ${arg}` : (names[kind] || kind);
}

function fmtNum(v, d = 3) {
    return Number.isFinite(v) ? String(+v.toFixed(d)) : null;
}

function showModel() {
    const m = current();
    if (!m) return;
    $('model-name').textContent = m.name + (m.file ? ` · ${m.file.split('/').pop()}` : '');
    const arch = $('arch');
    arch.replaceChildren();
    const layers = [`input ${(m.input || [1, 28, 28]).join('×')}`,
        ...String(m.architecture || '').split(',').filter(Boolean).map(layerChip), 'softmax'];
    for (const l of layers) {
        const li = document.createElement('li');
        li.textContent = l;
        arch.append(li);
    }
    arch.setAttribute('aria-label', `Layers: ${layers.join(', ')}`);
    $('params').textContent = Number.isFinite(m.parameters) ? m.parameters.toLocaleString('en-US') : '–';
    const acc = m.metrics && m.metrics.test_accuracy;
    $('test-acc').textContent = Number.isFinite(acc) ? `${(acc * 100).toFixed(2)}%` : '–';
    const t = m.training || {};
    const bits = [];
    if (t.epochs) bits.push(`${t.epochs} epoch${t.epochs === 1 ? '' : 's'}`);
    const opt = { sgd: 'SGD', adam: 'Adam', rmsprop: 'RMSprop', adamw: 'AdamW' }[String(t.optimizer).toLowerCase()] || t.optimizer;
    if (t.optimizer) bits.push(`${opt}${fmtNum(t.lr) ? ` lr ${fmtNum(t.lr)}` : ''}`);
    if (t.batch) bits.push(`batch ${t.batch}`);
    const secs = t.train_seconds;
    if (Number.isFinite(secs)) {
        bits.push(secs < 10 ? `${secs.toFixed(1)} s` : secs < 120 ? `${Math.round(secs)} s` : `${Math.round(secs / 60)} min`);
    }
    $('training').textContent = bits.join(' · ') || '–';

    const h = Array.isArray(m.history) ? m.history : [];
    const x = (p, i) => (Number.isFinite(p.epoch) ? p.epoch : i + 1);
    const v = (y) => (Number.isFinite(y) ? y : null);
    lineChart($('chart-loss'), [
        { label: 'train', cls: 's-train', points: h.map((p, i) => [x(p, i), v(p.train_loss)]) },
        { label: 'test', cls: 's-test', points: h.map((p, i) => [x(p, i), v(p.test_loss)]) },
    ], { format: (y) => String(+y.toFixed(3)) });
    const accs = h.flatMap((p) => [p.train_accuracy, p.test_accuracy]).filter(Number.isFinite);
    lineChart($('chart-acc'), [
        { label: 'train', cls: 's-train', points: h.map((p, i) => [x(p, i), v(p.train_accuracy)]) },
        { label: 'test', cls: 's-test', points: h.map((p, i) => [x(p, i), v(p.test_accuracy)]) },
    ], {
        format: (y) => `${+(y * 100).toFixed(1)}%`,
        yMax: accs.length ? Math.min(1, Math.max(...accs) + 0.005) : undefined,
    });
}

function showPicker() {
    const sel = $('model-select');
    sel.replaceChildren(...state.models.map((m) => new Option(m.name, m.name, false, m.name === state.model)));
    $('picker').hidden = state.models.length < 2;
    $('compare-card').hidden = state.models.length < 2;
    document.querySelector('main').classList.toggle('with-compare', state.models.length > 1);
}

async function loadModels() {
    const list = await api.models();
    const models = Array.isArray(list.models) ? list.models : [];
    if (!models.length) throw new api.ApiError('the server has no model loaded', { offline: true });
    state.models = models;
    if (!models.some((m) => m.name === state.model)) {
        state.model = models.some((m) => m.name === list.default) ? list.default : models[0].name;
    }
    showPicker();
    showModel();
}

// ---------------------------------------------------------------------------------------------
// Compare view: every model's probabilities for the same drawing

function showCompare(answers) {
    const grid = $('compare');
    if ($('compare-card').hidden) return;
    grid.replaceChildren();
    state.models.forEach((m, i) => {
        const ans = answers ? answers[i] : null;
        const col = document.createElement('div');
        col.className = 'cmp';
        col.dataset.model = m.name;
        col.classList.toggle('selected', m.name === state.model);
        const has = ans && ans.probabilities && ans.prediction !== null;
        col.dataset.prediction = has ? String(ans.prediction) : '';
        const head = document.createElement('div');
        head.className = 'cmp-head';
        head.innerHTML = '<span class="cmp-name"></span><span class="cmp-digit"></span>';
        head.firstChild.textContent = m.name;
        head.lastChild.textContent = has ? String(ans.prediction) : '–';
        const rows = document.createElement('div');
        rows.className = 'cmp-rows';
        for (let d = 0; d < 10; d++) {
            const p = has ? ans.probabilities[d] : 0;
            const row = document.createElement('div');
            row.className = 'cmp-row' + (has && d === ans.prediction ? ' is-top' : '');
            row.dataset.cmpDigit = String(d);
            row.style.setProperty('--p', String(p));
            row.innerHTML = `<span class="d">${d}</span><span class="track"><span class="fill"></span></span><span class="v"></span>`;
            row.lastChild.textContent = has && p >= 0.001 ? pct(p, 1) : '';
            rows.append(row);
        }
        col.append(head, rows);
        grid.append(col);
    });
}

// ---------------------------------------------------------------------------------------------
// Predictions

function cancelPending() {
    clearTimeout(state.timer);
    state.timer = 0;
    if (state.inflight) state.inflight.abort();
    state.inflight = null;
}

function showBlank() {
    cancelPending();
    hideTeach();
    state.shown = ++state.seq;
    showBlankVerdict(state.mode === 'number' ? 'Write a number' : 'Draw a digit');
    drawInput(null);
    showCompare(null);
    $('boxes').replaceChildren();
    $('digits').replaceChildren();
    $('pad-hint').hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Number mode: the wide pad, POST /read, the number and each digit's box over the pad

function showBoxes(ans, width, height) {
    const layer = $('boxes');
    layer.replaceChildren();
    if (!ans || !ans.digits || !width || !height) return;
    for (const d of ans.digits) {
        const [x, y, w, h] = d.box;
        const el = document.createElement('div');
        el.className = 'box' + (d.prediction === null ? ' rejected' : '');
        el.style.left = `${(100 * x) / width}%`;
        el.style.top = `${(100 * y) / height}%`;
        el.style.width = `${(100 * w) / width}%`;
        el.style.height = `${(100 * h) / height}%`;
        el.textContent = d.prediction === null ? '?' : String(d.prediction);
        layer.append(el);
    }
}

function showDigits(ans) {
    const list = $('digits');
    list.replaceChildren();
    for (const d of (ans && ans.digits) || []) {
        const li = document.createElement('li');
        const top = d.probabilities ? Math.max(...d.probabilities) : 0;
        li.textContent = d.prediction === null ? 'not a digit' : `${d.prediction}: ${pct(top, 0)}`;
        list.append(li);
    }
}

function showNumber(ans, settled, size) {
    const pred = $('prediction');
    pred.dataset.settled = String(settled);
    $('cue').hidden = true;
    showBoxes(ans, size && size.width, size && size.height);
    showDigits(ans);
    if (ans.number === null || ans.number === undefined) {
        showBlankVerdict(ans.reason === 'not_a_digit' ? 'That does not look like a number'
            : ans.reason === 'blank' ? 'No ink found: write a number' : 'Write a number');
        pred.dataset.settled = String(settled);
        if (settled) announce(ans.reason === 'not_a_digit' ? 'That does not look like a number.' : 'Nothing to read yet.');
        return;
    }
    pred.textContent = ans.number;
    $('prompt').hidden = true;
    $('confidence').textContent = `${ans.digits.length} digit${ans.digits.length === 1 ? '' : 's'}`;
    $('runner-up').textContent = '';
    $('timing').textContent = Number.isFinite(ans.elapsed_us) ? `${ans.elapsed_us} µs on the server` : '';
    if (settled) announce(`Number: ${ans.number}`);
}

function setMode(mode) {
    if (mode === state.mode) return;
    state.mode = mode;
    document.body.dataset.mode = mode;
    $('bars').hidden = mode === 'number';
    $('digits').hidden = mode !== 'number';
    $('pad-hint').textContent = mode === 'number' ? 'Write a number here' : 'Draw a digit here';
    $('pad').setAttribute('aria-label', mode === 'number'
        ? 'Drawing area: write a number of up to 16 digits, left to right, with a mouse, finger or pen'
        : 'Drawing area: draw one digit from 0 to 9 with a mouse, finger or pen');
    $('boxes').replaceChildren();
    $('digits').replaceChildren();
    state.upload = null;
    $('pad-caption').hidden = true;
    pad.setAspect(mode === 'number' ? NUMBER_ASPECT : 1);
}

async function readNow(settled, ctl, seq) {
    const image = state.upload ? null : pad.pixels();
    const ans = state.upload
        ? await api.readFile(state.upload, { model: state.model, signal: ctl.signal })
        : await api.read(image, { model: state.model, signal: ctl.signal });
    if (seq <= state.shown) return;
    state.shown = seq;
    if (state.inflight === ctl) state.inflight = null;
    showNumber(ans, settled, image);
    showCompare(null);
    if (state.offline || $('status').dataset.state !== 'ok') {
        state.offline = false;
        readyStatus();
    }
}

async function predictNow(settled) {
    clearTimeout(state.timer);
    state.timer = 0;
    if (pad.empty && !state.upload) {
        showBlank();
        if (settled) announce('Canvas cleared.');
        return;
    }
    if (!state.models.length || state.offline) return; // recovery re-runs this when back
    if (state.inflight) state.inflight.abort();
    const ctl = new AbortController();
    state.inflight = ctl;
    const seq = ++state.seq;
    state.lastSent = performance.now();
    $('prediction').dataset.settled = 'false';
    hideTeach();
    const compare = state.models.length > 1;
    const names = state.models.map((m) => m.name);
    const small = !state.upload && pad.tooSmall;
    try {
        if (state.mode === 'number') {
            await readNow(settled, ctl, seq);
            return;
        }
        let answers;
        if (state.upload) {
            const file = state.upload;
            answers = await Promise.all((compare ? names : [state.model]).map((name) =>
                api.predictFile(file, { model: name, returnInput: name === state.model, signal: ctl.signal })));
        } else if (compare) {
            answers = await api.predictEach(pad.pixels(), names, { inputFor: state.model, signal: ctl.signal });
        } else {
            answers = [await api.predict(pad.pixels(), { model: state.model, signal: ctl.signal })];
        }
        if (seq <= state.shown) return; // a newer answer (or a clear) is already on screen
        state.shown = seq;
        if (state.inflight === ctl) state.inflight = null;
        const mine = compare ? answers[names.indexOf(state.model)] : answers[0];
        showAnswer(mine, settled, small);
        if (settled && !small) offerTeach(mine);
        showCompare(compare ? answers : null);
        if (state.offline || $('status').dataset.state !== 'ok') {
            state.offline = false;
            readyStatus();
        }
    } catch (e) {
        if (e.name === 'AbortError' || seq < state.seq) return;
        if (state.inflight === ctl) state.inflight = null;
        $('prediction').dataset.settled = 'true';
        if (e.offline) {
            goOffline();
        } else {
            setStatus('error', `The server refused this ${state.upload ? 'image' : 'drawing'}: ${e.message}`);
            if (state.upload) showBlankVerdict('Could not read this image');
        }
    }
}

// Live prediction while drawing: at most one request per THROTTLE_MS.
function predictSoon() {
    const wait = THROTTLE_MS - (performance.now() - state.lastSent);
    if (wait <= 0) {
        predictNow(false);
    } else if (!state.timer) {
        state.timer = setTimeout(() => predictNow(false), wait);
    }
}

// ---------------------------------------------------------------------------------------------
// Offline and recovery: poll /healthz with exponential backoff (0.5 s doubling to 8 s)

function goOffline(reason) {
    cancelPending();
    if (!pad.empty || state.upload) {
        showBlankVerdict('Waiting for the server…');
        drawInput(null);
    }
    $('prediction').dataset.settled = 'true';
    if (state.offline) return;
    state.offline = true;
    scheduleRetry(500, reason);
}

function scheduleRetry(delay, reason) {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdown);
    const text = `${reason || 'Cannot reach the digits server.'} Retrying`;
    const due = Date.now() + delay;
    // the seconds tick outside the live region, so screen readers hear the message once
    const tick = () => {
        const secs = Math.max(1, Math.ceil((due - Date.now()) / 1000));
        $('status-countdown').textContent = ` in ${secs} s…`;
    };
    setStatus('offline', text);
    tick();
    state.countdown = setInterval(tick, 250);
    state.retryTimer = setTimeout(async () => {
        clearInterval(state.countdown);
        setStatus('offline', text, ' now…');
        try {
            await api.health();
            await loadModels();
            state.offline = false;
            readyStatus();
            predictNow(true);
        } catch (e) {
            const why = e.offline && !e.status ? undefined : `The server is not ready (${e.message}).`;
            scheduleRetry(Math.min(delay * 2, 8000), why);
        }
    }, delay);
}

// ---------------------------------------------------------------------------------------------
// Image files: pick or drop

async function useFile(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith('image/')) {
        setStatus('error', `${file.name} is not an image. Use a PNG, JPEG, BMP or GIF.`);
        return;
    }
    state.upload = file;
    try {
        pad.showImage(await createImageBitmap(file));
    } catch {
        pad.showImage(null); // the browser cannot preview it; the server may still read it
    }
    $('pad-hint').hidden = true;
    const cap = $('pad-caption');
    cap.textContent = file.name;
    cap.hidden = false;
    predictNow(true);
}

function setupDrop() {
    const zone = $('drop-zone');
    let depth = 0;
    const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    document.addEventListener('dragenter', (e) => {
        if (!hasFiles(e)) return;
        depth++;
        zone.classList.add('dragging');
    });
    document.addEventListener('dragleave', () => {
        if (--depth <= 0) { depth = 0; zone.classList.remove('dragging'); }
    });
    document.addEventListener('dragover', (e) => {
        if (hasFiles(e)) e.preventDefault();
    });
    document.addEventListener('drop', (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth = 0;
        zone.classList.remove('dragging');
        useFile(e.dataTransfer.files[0]);
    });
}

// ---------------------------------------------------------------------------------------------
// Start

function onPadChange(kind) {
    if (kind === 'start' && state.upload) {
        state.upload = null;
        $('pad-caption').hidden = true;
    }
    $('pad-hint').hidden = !pad.empty || !!state.upload;
    if (kind === 'move' || kind === 'start') predictSoon();
    else predictNow(true);
}

const pad = new Pad($('pad'), onPadChange);

function clearAll() {
    hideTeach();
    state.upload = null;
    $('pad-caption').hidden = true;
    $('file').value = '';
    pad.clear();
}

buildBars();
drawInput(null);
$('undo').addEventListener('click', () => {
    if (state.upload) clearAll(); else pad.undo();
});
$('clear').addEventListener('click', clearAll);
for (const radio of document.querySelectorAll('#mode input[name="mode"]'))
    radio.addEventListener('change', (e) => { if (e.target.checked) setMode(e.target.value); });
$('open').addEventListener('click', () => $('file').click());
$('file').addEventListener('change', (e) => useFile(e.target.files[0]));
$('model-select').addEventListener('change', (e) => {
    state.model = e.target.value;
    showModel();
    showCompare(null);
    readyStatus();
    predictNow(true);
});
document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t instanceof HTMLSelectElement || (t instanceof HTMLInputElement && t.type !== 'file');
    if ((e.key === 'Escape' || e.key === 'Delete') && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        clearAll();
    } else if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'z' && !typing) {
        e.preventDefault();
        $('undo').click();
    } else if (!$('teach').hidden && state.teachSource && !typing && !e.ctrlKey && !e.metaKey && !e.altKey &&
        (/^[0-9]$/.test(e.key) || e.key === 'Enter') && !(t instanceof HTMLButtonElement && e.key === 'Enter')) {
        e.preventDefault();
        if (e.key === 'Enter') $('teach-yes').click();
        else keepSample(Number(e.key));
    }
});
new ResizeObserver(() => drawInput(state.input)).observe($('input-view'));
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => drawInput(state.input));
setupDrop();
buildTeach();
showBlank();

$('kept').addEventListener('toggle', refreshKept);
Promise.all([loadModels(), loadTeach()]).then(() => {
    readyStatus();
    refreshKept();
    if (!pad.empty) predictNow(true);
}, (e) => {
    goOffline(e.offline ? undefined : `The server answered /models with an error: ${e.message}.`);
});
