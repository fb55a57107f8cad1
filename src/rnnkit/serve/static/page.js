/* rnnkit serve's page: talks to the same server's JSON API (/v1/models, /v1/score with
   per_token and alternatives, /v1/generate with stream), sending the API key typed in the
   header field when there is one. Everything is drawn with textContent (no HTML from data). */
"use strict";

const $ = (id) => document.getElementById(id);
const LN2 = Math.log(2);
const TOP = 5;
let models = [];
let scale = 10; // surprisal (bits) drawn reddest: log2 of the vocabulary size
let scoreTimer = null;
let scoreSeq = 0;
let controller = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

function modelName() {
  return models.length > 1 ? $("model").value : null;
}

async function api(path, body) {
  const opts = body === undefined ? { headers: headers() } : { method: "POST", headers: headers(), body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  if (!r.ok) throw new Error(await errorText(r));
  return r.json();
}

async function errorText(r) {
  let detail = r.statusText;
  try {
    const j = await r.json();
    detail = typeof j.detail === "string" ? j.detail : (j.detail || []).map((d) => d.msg).join("; ");
  } catch (e) { /* not JSON */ }
  return `${r.status}: ${detail}`;
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ----------------------------------------------------------------------------- models

async function loadModels() {
  try {
    models = (await api("v1/models")).models;
  } catch (e) {
    $("server-status").textContent = e.message.startsWith("401") ? "this server needs an API key: type it and press Enter"
      : `cannot list the models (${e.message})`;
    $("server-status").classList.add("error");
    $("model-info").textContent = "";
    return;
  }
  $("server-status").classList.remove("error");
  $("server-status").textContent = `${models.length} model${models.length === 1 ? "" : "s"} served`;
  const sel = $("model");
  const was = sel.value;
  sel.replaceChildren(...models.map((m) => el("option", { value: m.name }, m.name)));
  if (models.some((m) => m.name === was)) sel.value = was;
  $("model-picker").hidden = models.length < 2;
  showModel();
  scoreNow();
}

function current() {
  return models.find((m) => m.name === $("model").value) || models[0];
}

function showModel() {
  const m = current();
  if (!m) return;
  scale = Math.max(1, Math.log2(m.vocab_size));
  $("legend-high").textContent = scale.toFixed(1);
  const table = el("table");
  const rows = [["name", m.name], ["directory", m.path ?? "(in memory)"], ["engine", m.engine],
    ["level", m.level],
    ...Object.entries(m.config).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)])];
  for (const [k, v] of rows) {
    const tr = el("tr");
    tr.append(el("td", {}, k), el("td", {}, v));
    table.append(tr);
  }
  $("model-info").classList.remove("muted");
  $("model-info").replaceChildren(table);
}

// ----------------------------------------------------------------------------- score

function colour(bits) {
  const x = Math.min(Math.max(bits / scale, 0), 1);
  return x < 0.5 ? `hsl(${120 - 120 * x}, ${70 + 20 * x}%, ${82 - 8 * x}%)` : `hsl(${120 - 120 * x}, 80%, ${78}%)`;
}

function scoreSoon() {
  clearTimeout(scoreTimer);
  if ($("auto-score").checked) scoreTimer = setTimeout(scoreNow, 350);
}

async function scoreNow() {
  clearTimeout(scoreTimer);
  if (!models.length) return;
  const lines = $("score-text").value.split("\n").filter((l) => l.trim() !== "");
  const seq = ++scoreSeq;
  hideTip();
  if (!lines.length) {
    $("score-out").replaceChildren();
    $("score-summary").textContent = "";
    return;
  }
  let body;
  try {
    body = await api("v1/score", { model: modelName(), sentences: lines, per_token: true, alternatives: TOP });
  } catch (e) {
    if (seq !== scoreSeq) return;
    $("score-summary").textContent = e.message;
    $("score-summary").classList.add("error");
    return;
  }
  if (seq !== scoreSeq) return; // a newer request was sent meanwhile
  $("score-summary").classList.remove("error");
  const out = [];
  let total = 0, count = 0;
  for (const s of body.sentences) {
    out.push(drawSentence(s));
    total += s.logprob;
    count += s.tokens;
  }
  $("score-out").replaceChildren(...out);
  const ppl = count ? Math.exp(-total / count) : NaN;
  $("score-summary").textContent = `${lines.length} sentence${lines.length === 1 ? "" : "s"}, ${count} tokens scored, `
    + `logprob ${total.toFixed(3)} (ln), perplexity ${ppl.toFixed(2)}`;
}

function drawSentence(s) {
  // the line's own text between the tokens (character offsets), </s> as a marker at the end
  const div = el("div", { class: "line" });
  const spans = s.token_scores.length && s.token_scores[0].start !== null;
  let at = 0;
  for (const t of s.token_scores) {
    const eos = t.token === "</s>";
    if (eos && spans && at < s.text.length) div.append(s.text.slice(at));
    if (!eos && spans && t.start > at) div.append(s.text.slice(at, t.start));
    if (!spans && div.childNodes.length) div.append(" ");
    const shown = eos || !spans ? t.token : s.text.slice(t.start, t.end);
    const span = el("span", { class: "tok" + (eos ? " eos" : "") + (t.oov ? " oov" : "") }, shown);
    span.style.background = t.surprisal === null ? "#eee" : colour(t.surprisal);
    span.tok = t;
    span.addEventListener("mouseenter", () => showTip(span));
    span.addEventListener("mouseleave", hideTip);
    div.append(span);
    if (spans && !eos) at = t.end;
  }
  return div;
}

function fmt(x, digits = 4) {
  return x === null || x === undefined ? "—" : x.toFixed(digits);
}

function showTip(span) {
  const t = span.tok;
  const tip = $("tip");
  const rows = [["logprob (ln)", fmt(t.logprob), "tip-logprob"],
    ["probability", t.logprob === null ? "—" : Math.exp(t.logprob).toPrecision(4), "tip-prob"],
    ["surprisal", t.surprisal === null ? "—" : `${fmt(t.surprisal, 3)} bits`, "tip-surprisal"],
    ["rank", t.rank === null ? "—" : String(t.rank), "tip-rank"],
    ["entropy", t.entropy === null ? "—" : `${fmt(t.entropy, 3)} bits`, "tip-entropy"]];
  const table = el("table");
  for (const [k, v, cls] of rows) {
    const tr = el("tr");
    tr.append(el("td", {}, k), el("td", { class: cls }, v));
    table.append(tr);
  }
  const parts = [el("div", { class: "tip-token" }, t.token + (t.oov ? "  (unknown: scored as <unk>)" : "")), table];
  if (t.alternatives && t.alternatives.length) {
    parts.push(el("h3", {}, `top ${t.alternatives.length} here`));
    const alts = el("table", { class: "tip-alternatives" });
    const top = t.alternatives[0].prob;
    for (const a of t.alternatives) {
      const own = a.token === t.token || (t.oov && a.token === "<unk>");
      const tr = el("tr", { class: "alt" + (own ? " own" : "") });
      const bar = el("span", { class: "bar" });
      bar.style.width = `${Math.max(2, 60 * a.prob / top)}px`;
      const cell = el("td");
      cell.append(bar);
      tr.append(el("td", { class: "alt-token" }, a.token), el("td", { class: "alt-prob" }, a.prob.toFixed(4)), cell);
      alts.append(tr);
    }
    parts.push(alts);
  }
  tip.replaceChildren(...parts);
  tip.hidden = false;
  for (const s of document.querySelectorAll(".tok.active")) s.classList.remove("active");
  span.classList.add("active");
  const r = span.getBoundingClientRect();
  const left = Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8);
  tip.style.left = `${Math.max(4, left)}px`;
  tip.style.top = `${window.scrollY + r.bottom + 6}px`;
}

function hideTip() {
  $("tip").hidden = true;
  for (const s of document.querySelectorAll(".tok.active")) s.classList.remove("active");
}

// ----------------------------------------------------------------------------- generate

async function generate() {
  const out = $("gen-out");
  const status = $("gen-status");
  const seed = $("seed").value.trim();
  const req = { model: modelName(), prompt: $("gen-prompt").value, stream: true,
    temperature: Number($("temperature").value), top_p: Number($("top-p").value),
    max_len: Number($("max-len").value) || 40 };
  if (seed !== "") req.seed = Number(seed);
  out.replaceChildren();
  status.classList.remove("error");
  status.textContent = "generating…";
  controller = new AbortController();
  $("gen-button").disabled = true;
  $("stop-button").disabled = false;
  let tokens = 0;
  try {
    const r = await fetch("v1/generate", { method: "POST", headers: headers(), body: JSON.stringify(req),
      signal: controller.signal });
    if (!r.ok) throw new Error(await errorText(r));
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev = {};
        for (const line of block.split("\n")) {
          const i = line.indexOf(": ");
          if (i > 0) ev[line.slice(0, i)] = line.slice(i + 2);
        }
        const data = JSON.parse(ev.data || "{}");
        if (ev.event === "prompt") out.append(el("span", { class: "prompt" }, data.text));
        else if (ev.event === "token") {
          out.append(el("span", { class: "new", title: data.token }, data.text));
          tokens += 1;
          status.textContent = `generating… ${tokens} tokens`;
        } else if (ev.event === "done") {
          out.dataset.text = data.text;
          status.textContent = `done: ${tokens} tokens`;
          status.dataset.state = "done";
        } else if (ev.event === "error") throw new Error(`${data.status}: ${data.detail}`);
      }
    }
  } catch (e) {
    status.classList.add("error");
    status.textContent = e.name === "AbortError" ? `stopped after ${tokens} tokens` : e.message;
    status.dataset.state = "error";
  } finally {
    controller = null;
    $("gen-button").disabled = false;
    $("stop-button").disabled = true;
  }
}

// ----------------------------------------------------------------------------- wiring

for (const [input, output] of [["temperature", "temperature-value"], ["top-p", "top-p-value"]]) {
  $(input).addEventListener("input", () => { $(output).textContent = Number($(input).value).toFixed(2); });
}
$("score-text").addEventListener("input", scoreSoon);
$("score-button").addEventListener("click", scoreNow);
$("model").addEventListener("change", () => { showModel(); scoreNow(); });
$("api-key").addEventListener("change", loadModels);
$("api-key").addEventListener("keydown", (e) => { if (e.key === "Enter") loadModels(); });
$("gen-button").addEventListener("click", () => { delete $("gen-status").dataset.state; generate(); });
$("stop-button").addEventListener("click", () => controller && controller.abort());
$("gen-prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate(); });
loadModels();
