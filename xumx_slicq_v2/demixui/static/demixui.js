// The web mixer's page: receives the separated stems over the websocket into shared memory, plays them through an
// AudioWorklet (player.js) into a graph of one gain and one level meter per stem, a master gain and a spectrum
// analyser; mixes, mutes, solos, seeks and loops on this side (no round trip to the server); renders downloads
// from the samples it plays. Protocol: see xumx_slicq_v2/demixui/sessions.py.
"use strict";

const FRAME_HEADER_BYTES = 24;
const STEMS_FRAME = 0;
const HEARD_FRAME = 1;
const $ = (id) => document.getElementById(id);

const app = {
  ws: null,
  session: null,
  maxUploadBytes: Infinity,
  sources: [],
  listeners: new Map(),
  song: null, // {id, name, sampleRate, channels, length}
  stems: null, // [source][channel] Float32Array (shared)
  heard: null, // [source][ear] Float32Array (shared), once a listener is chosen
  available: null, // Int32Array (shared): [stem samples received, heard samples received]
  clock: null, // Float64Array (shared): [position, playing, waiting, heard] (written by the audio thread)
  sent: 0, // messages sent to the server
  nfir: 220, // NAL-R filter order
  separated: 0,
  generation: 0,
  listener: null,
  ctx: null,
  player: null,
  gains: [], // one GainNode per stem
  meters: [], // one AnalyserNode per stem
  master: null,
  analyser: null,
  strips: [], // {gain, mute, solo, meter, download, db} per stem
  loop: null, // {start, end} in samples
  overview: null, // {min, max} Float32Array per overview column
  drag: null,
};

// ---------- messages ----------

function showMessage(text) {
  $("message").textContent = text || "";
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => (typeof event.data === "string" ? onMessage(JSON.parse(event.data)) : onFrame(event.data));
  ws.onclose = () => showMessage("the connection to the mixer was lost: restart it and reload the page");
  app.ws = ws;
}

function send(message) {
  app.sent += 1;
  app.ws.send(JSON.stringify(message));
}

function onMessage(message) {
  if (message.type === "hello") onHello(message);
  else if (message.type === "song") onSong(message);
  else if (message.type === "progress") onProgress(message);
  else if (message.type === "listener") onListener(message);
  else if (message.type === "error") {
    showMessage(message.message);
    $("song").textContent = app.song ? app.song.name : "";
  }
}

function onHello(message) {
  app.session = message.session;
  app.maxUploadBytes = message.max_upload_bytes;
  app.nfir = message.nfir;
  app.sources = message.sources;
  buildStrips();
  const select = $("listener");
  for (const listener of message.listeners) {
    app.listeners.set(listener.id, listener);
    const option = new Option(listener.id, `id:${listener.id}`);
    select.insertBefore(option, select.lastElementChild);
  }
  $("listener-text").textContent = message.listeners_file
    ? `${message.listeners.length} listener(s) from ${message.listeners_file}; model ${message.model}`
    : `no listeners file (start with --listeners FILE); model ${message.model}`;
  drawAudiogram();
  if (message.songs.length) {
    $("song").textContent = `opening ${message.songs[0].name}...`;
    send({ type: "open", song: message.songs[0].id });
  }
  document.body.dataset.ready = "true";
}

function onSong(message) {
  stopAudio();
  const { length, channels } = message;
  const shared = (count) => new Float32Array(new SharedArrayBuffer(4 * count));
  app.song = { id: message.song, name: message.name, sampleRate: message.sample_rate, channels, length };
  app.stems = app.sources.map(() => Array.from({ length: channels }, () => shared(length)));
  app.heard = null;
  app.available = new Int32Array(new SharedArrayBuffer(8));
  app.clock = new Float64Array(new SharedArrayBuffer(32));
  app.separated = 0;
  app.loop = null;
  $("loop").checked = false;
  app.overview = { min: new Float32Array($("overview").width), max: new Float32Array($("overview").width) };
  $("song").textContent = `${message.name}: ${formatTime(length / message.sample_rate)}, ` +
    `${channels === 1 ? "mono" : "stereo"}, ${message.sample_rate} Hz`;
  if (app.listener) allocateHeard();
  showMessage("");
  startAudio().catch((error) => showMessage(`cannot start audio: ${error}`));
  updateButtons();
}

function onProgress(message) {
  app.separated = message.separated;
  $("progress").value = message.separated / message.length;
  const seconds = message.separated / app.song.sampleRate;
  const speed = message.seconds > 0 ? `, ${(seconds / message.seconds).toFixed(1)}x real time` : "";
  $("progress-text").textContent = message.separated >= message.length
    ? `separated (${message.seconds.toFixed(1)} s${speed})`
    : `separating: ${formatTime(seconds)} of ${formatTime(message.length / app.song.sampleRate)}${speed}`;
  updateButtons();
}

function onListener(message) {
  app.generation = message.generation;
  app.listener = message.listener;
  if (app.available) Atomics.store(app.available, 1, 0);
  if (app.listener && app.song) allocateHeard();
  if (app.player) app.player.port.postMessage({ type: "heard", heard: app.listener ? app.heard : null });
  const rate = app.song ? app.song.sampleRate : 44100;
  const gains = (ear) => app.listener[ear].nalr_gains_db.map((gain) => gain.toFixed(0)).join(", ");
  $("listener-text").textContent = app.listener
    ? `hearing as ${app.listener.id}: NAL-R per ear, ${app.nfir + 1}-tap FIR, ` +
      `${((Math.floor(app.nfir / 2) / rate) * 1000).toFixed(1)} ms delay. Gains (dB) at ` +
      `${app.listener.nalr_frequencies.join(", ")} Hz: left ${gains("left")}; right ${gains("right")}`
    : "no listener: the stems as separated";
  drawAudiogram();
  updateButtons();
}

function allocateHeard() {
  if (!app.heard || app.heard[0][0].length !== app.song.length) {
    app.heard = app.sources.map(() => [0, 1].map(() => new Float32Array(new SharedArrayBuffer(4 * app.song.length))));
  }
}

function onFrame(buffer) {
  const header = new DataView(buffer, 0, FRAME_HEADER_BYTES);
  const kind = header.getUint32(0, true);
  const generation = header.getUint32(4, true);
  const start = header.getFloat64(8, true);
  const count = header.getUint32(16, true);
  const channels = header.getUint32(20, true);
  const data = new Float32Array(buffer, FRAME_HEADER_BYTES, app.sources.length * channels * count);
  let target = app.stems;
  if (kind === HEARD_FRAME) {
    if (generation !== app.generation || !app.heard) return; // a listener choice that was replaced since
    target = app.heard;
  }
  for (let s = 0; s < app.sources.length; s++) {
    for (let c = 0; c < channels; c++) {
      const offset = (s * channels + c) * count;
      target[s][c].set(data.subarray(offset, offset + count), start);
    }
  }
  Atomics.store(app.available, kind === STEMS_FRAME ? 0 : 1, start + count);
  if (kind === STEMS_FRAME) addToOverview(start, count);
  updateButtons();
}

// ---------- audio graph ----------

function stopAudio() {
  if (app.ctx) app.ctx.close();
  app.ctx = app.player = app.master = app.analyser = null;
  app.gains = [];
  app.meters = [];
  setPlayButton(false);
}

async function startAudio() {
  const song = app.song;
  const ctx = new AudioContext({ sampleRate: song.sampleRate, latencyHint: "playback" });
  app.ctx = ctx;
  await ctx.audioWorklet.addModule("/static/player.js");
  if (app.ctx !== ctx) return; // another song was opened meanwhile
  const player = new AudioWorkletNode(ctx, "stem-player", {
    numberOfInputs: 0,
    numberOfOutputs: app.sources.length,
    outputChannelCount: app.sources.map(() => 2),
    processorOptions: {
      sources: app.sources.length, length: song.length, stems: app.stems, available: app.available, clock: app.clock,
    },
  });
  player.port.onmessage = (event) => { if (event.data.type === "ended") setPlayButton(false); };
  const master = ctx.createGain();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  analyser.smoothingTimeConstant = 0;
  master.connect(analyser).connect(ctx.destination);
  app.gains = app.sources.map((_, s) => {
    const gain = ctx.createGain();
    player.connect(gain, s);
    gain.connect(master);
    return gain;
  });
  app.meters = app.gains.map((gain) => {
    const meter = ctx.createAnalyser();
    meter.fftSize = 2048;
    gain.connect(meter);
    return meter;
  });
  Object.assign(app, { player, master, analyser });
  if (app.listener && app.heard) player.port.postMessage({ type: "heard", heard: app.heard });
  if (app.loop && $("loop").checked) player.port.postMessage({ type: "loop", loop: app.loop });
  applyGains(0);
  updateButtons();
}

function stemGain(s) {
  const anySolo = app.strips.some((strip) => strip.solo.getAttribute("aria-pressed") === "true");
  const strip = app.strips[s];
  const heard = anySolo ? strip.solo.getAttribute("aria-pressed") === "true"
    : strip.mute.getAttribute("aria-pressed") !== "true";
  return heard ? Number(strip.gain.value) : 0;
}

function applyGains(ramp = 0.02) {
  if (!app.ctx || !app.master) return;
  const now = app.ctx.currentTime;
  const set = (param, value) => {
    param.cancelScheduledValues(now);
    param.setValueAtTime(param.value, now);
    param.linearRampToValueAtTime(value, now + ramp);
  };
  app.gains.forEach((gain, s) => set(gain.gain, stemGain(s)));
  set(app.master.gain, Number($("master").value));
}

// ---------- transport ----------

function position() {
  return app.clock ? app.clock[0] : 0;
}

function playing() {
  return $("play").textContent === "pause";
}

function setPlayButton(isPlaying) {
  $("play").textContent = isPlaying ? "pause" : "play";
}

async function togglePlay() {
  if (!app.player) return;
  if (playing()) {
    app.player.port.postMessage({ type: "pause" });
    setPlayButton(false);
    return;
  }
  await app.ctx.resume();
  if (position() >= app.song.length) seek(app.loop && $("loop").checked ? app.loop.start : 0);
  app.player.port.postMessage({ type: "play" });
  setPlayButton(true);
}

function seek(sample) {
  if (!app.player) return;
  const target = Math.max(0, Math.min(Math.round(sample), app.song.length));
  app.clock[0] = target;
  app.player.port.postMessage({ type: "seek", position: target });
}

function setLoop(loop) {
  app.loop = loop;
  const active = loop !== null && $("loop").checked;
  if (app.player) app.player.port.postMessage({ type: "loop", loop: active ? loop : null });
  $("loop-text").textContent = loop
    ? `${formatTime(loop.start / app.song.sampleRate)} to ${formatTime(loop.end / app.song.sampleRate)}`
    : "drag on the overview to choose a region";
}

function formatTime(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${(seconds - 60 * minutes).toFixed(1).padStart(4, "0")}`;
}

// ---------- stems, downloads ----------

function buildStrips() {
  const container = $("strips");
  container.replaceChildren();
  app.strips = app.sources.map((source, s) => {
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: source });
    name.style.color = `var(--${source}, var(--text))`;
    const gain = Object.assign(document.createElement("input"), { type: "range", min: 0, max: 2, step: 0.01, value: 1 });
    gain.setAttribute("aria-label", `${source} gain`);
    const db = Object.assign(document.createElement("span"), { className: "dim", textContent: "0.0 dB" });
    const button = (text, label) => {
      const element = Object.assign(document.createElement("button"), { type: "button", textContent: text });
      element.setAttribute("aria-label", label);
      return element;
    };
    const mute = button("mute", `mute ${source}`);
    const solo = button("solo", `solo ${source}`);
    mute.setAttribute("aria-pressed", "false");
    solo.setAttribute("aria-pressed", "false");
    const meter = Object.assign(document.createElement("meter"), { min: -60, max: 0, low: -18, high: -6, value: -60 });
    meter.setAttribute("aria-label", `${source} level`);
    const download = button("download", `download ${source}`);
    download.disabled = true;
    gain.addEventListener("input", () => {
      db.textContent = decibels(Number(gain.value));
      applyGains();
    });
    mute.addEventListener("click", () => toggle(mute));
    solo.addEventListener("click", () => toggle(solo));
    download.addEventListener("click", () => downloadWav(s));
    container.append(name, gain, db, mute, solo, meter, download);
    return { gain, db, mute, solo, meter, download };
  });
}

function toggle(button) {
  button.setAttribute("aria-pressed", button.getAttribute("aria-pressed") === "true" ? "false" : "true");
  applyGains();
}

function decibels(gain) {
  return gain > 0 ? `${(20 * Math.log10(gain)).toFixed(1)} dB` : "-inf dB";
}

function complete() {
  if (!app.song || !app.available) return false;
  const kind = app.listener ? 1 : 0;
  return Atomics.load(app.available, kind) >= app.song.length && (!app.listener || app.heard);
}

function updateButtons() {
  $("play").disabled = !app.player;
  const ready = complete();
  $("download-mix").disabled = !ready;
  for (const strip of app.strips) strip.download.disabled = !ready;
}

// The samples the page plays, before the gains: [source][channel] (the listener's heard stems if one is chosen).
function playedBuffers() {
  return app.listener && app.heard ? app.heard : app.stems;
}

// A float32 WAV of `stem` (an index: that stem with its gain slider and the master gain) or of the current mix
// (`stem` null: every stem with its gain, mute and solo, and the master gain), as heard now.
function renderWav(stem) {
  const buffers = playedBuffers();
  const channels = buffers[0].length;
  const length = app.song.length;
  const master = Number($("master").value);
  const gains = app.sources.map((_, s) => (stem === null ? stemGain(s) : s === stem ? Number(app.strips[s].gain.value) : 0) * master);
  const bytes = 44 + 4 * channels * length;
  const view = new DataView(new ArrayBuffer(bytes));
  const text = (offset, value) => [...value].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, bytes - 8, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 3, true); view.setUint16(22, channels, true);
  view.setUint32(24, app.song.sampleRate, true); view.setUint32(28, app.song.sampleRate * 4 * channels, true);
  view.setUint16(32, 4 * channels, true); view.setUint16(34, 32, true);
  text(36, "data"); view.setUint32(40, 4 * channels * length, true);
  const active = gains.map((gain, s) => [gain, s]).filter(([gain]) => gain !== 0);
  const samples = new Float32Array(view.buffer, 44, channels * length);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < length; i++) {
      let sum = 0;
      for (const [gain, s] of active) sum += gain * buffers[s][c][i];
      samples[i * channels + c] = sum;
    }
  }
  return new Blob([view.buffer], { type: "audio/wav" });
}

function downloadName(stem) {
  const base = app.song.name.replace(/\.[^.]+$/, "");
  const listener = app.listener ? ` (as ${app.listener.id})` : "";
  return `${base} - ${stem === null ? "mix" : app.sources[stem]}${listener}.wav`;
}

function downloadWav(stem) {
  if (!complete()) return;
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(renderWav(stem)), download: downloadName(stem),
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

// ---------- songs ----------

async function uploadFile(file) {
  if (!app.session) return;
  if (file.size > app.maxUploadBytes) {
    showMessage(`${file.name}: larger than the upload limit of ${(app.maxUploadBytes / 2 ** 20).toFixed(0)} MiB`);
    return;
  }
  if (app.player && playing()) togglePlay();
  showMessage("");
  $("song").textContent = `uploading ${file.name}...`;
  try {
    const response = await fetch(`/api/upload?session=${encodeURIComponent(app.session)}`, {
      method: "POST", headers: { "X-File-Name": encodeURIComponent(file.name) }, body: file,
    });
    const result = await response.json();
    if (!response.ok) throw new Error(result.error || response.statusText);
    $("song").textContent = `opening ${result.name}...`;
    send({ type: "open", song: result.song });
  } catch (error) {
    $("song").textContent = app.song ? app.song.name : "";
    showMessage(`upload failed: ${error.message}`);
  }
}

// ---------- listener ----------

function numbers(text) {
  return text.split(/[\s,;]+/).filter(Boolean).map(Number);
}

function chooseListener() {
  const value = $("listener").value;
  if (value === "") send({ type: "listener" });
  else if (value.startsWith("id:")) send({ type: "listener", id: value.slice(3) });
  else applyTypedAudiogram();
}

function applyTypedAudiogram() {
  const frequencies = numbers($("frequencies").value);
  send({
    type: "listener",
    left: { frequencies, levels: numbers($("left-levels").value) },
    right: { frequencies, levels: numbers($("right-levels").value) },
  });
}

function drawAudiogram() {
  const canvas = $("audiogram");
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  const left = 34, top = 12, right = width - 8, bottom = height - 22;
  const x = (f) => left + (right - left) * Math.log(f / 125) / Math.log(8000 / 125);
  const y = (level) => top + (bottom - top) * (level + 10) / 130;
  g.fillStyle = "#0d0f13"; g.fillRect(0, 0, width, height);
  g.font = "10px sans-serif"; g.strokeStyle = "#2c313b"; g.fillStyle = "#9aa0ab"; g.lineWidth = 1;
  for (const f of [125, 250, 500, 1000, 2000, 4000, 8000]) {
    g.beginPath(); g.moveTo(x(f), top); g.lineTo(x(f), bottom); g.stroke();
    g.fillText(f >= 1000 ? `${f / 1000}k` : `${f}`, x(f) - 8, height - 8);
  }
  for (let level = 0; level <= 120; level += 20) {
    g.beginPath(); g.moveTo(left, y(level)); g.lineTo(right, y(level)); g.stroke();
    g.fillText(`${level}`, 6, y(level) + 3);
  }
  g.fillText("dB HL", 2, 9);
  if (!app.listener) {
    g.fillText("no listener", left + 80, top + 60);
    return;
  }
  for (const [ear, color, mark] of [["left", "#6fb7ff", "x"], ["right", "#ff6b6b", "o"]]) {
    const { frequencies, levels } = app.listener[ear];
    g.strokeStyle = color; g.fillStyle = color; g.lineWidth = 1.5; g.beginPath();
    frequencies.forEach((f, i) => (i ? g.lineTo(x(f), y(levels[i])) : g.moveTo(x(f), y(levels[i]))));
    g.stroke();
    g.font = "bold 12px sans-serif";
    frequencies.forEach((f, i) => g.fillText(mark, x(f) - 3.5, y(levels[i]) + 4));
  }
  g.fillStyle = "#9aa0ab"; g.font = "10px sans-serif";
  g.fillText("x left  o right", right - 80, top + 10);
}

// ---------- drawing: overview, meters, spectrogram ----------

function addToOverview(start, count) {
  const { min, max } = app.overview;
  const columns = min.length;
  const perColumn = app.song.length / columns;
  for (let column = Math.floor(start / perColumn); column < Math.min(columns, Math.ceil((start + count) / perColumn)); column++) {
    const from = Math.floor(column * perColumn), to = Math.min(app.song.length, Math.floor((column + 1) * perColumn));
    let low = 0, high = 0;
    for (let i = from; i < to; i += Math.max(1, Math.floor((to - from) / 256))) {
      let sum = 0;
      for (const channels of app.stems) for (const channel of channels) sum += channel[i];
      sum /= app.stems[0].length;
      if (sum < low) low = sum;
      if (sum > high) high = sum;
    }
    min[column] = low;
    max[column] = high;
  }
}

function drawOverview() {
  const canvas = $("overview");
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.fillStyle = "#0d0f13"; g.fillRect(0, 0, width, height);
  if (!app.song) return;
  const length = app.song.length;
  const sampleX = (sample) => (sample / length) * width;
  g.fillStyle = "#1b2230"; g.fillRect(0, 0, sampleX(Atomics.load(app.available, 0)), height);
  const loop = app.drag ? app.drag : app.loop;
  if (loop) {
    g.fillStyle = $("loop").checked || app.drag ? "rgba(95,179,255,0.25)" : "rgba(95,179,255,0.1)";
    g.fillRect(sampleX(loop.start), 0, sampleX(loop.end) - sampleX(loop.start), height);
  }
  const peak = Math.max(1e-3, ...app.overview.max, ...app.overview.min.map(Math.abs));
  g.fillStyle = "#5fb3ff";
  for (let column = 0; column < width; column++) {
    const top = height / 2 - (app.overview.max[column] / peak) * (height / 2 - 2);
    const bottom = height / 2 - (app.overview.min[column] / peak) * (height / 2 - 2);
    g.fillRect(column, top, 1, Math.max(1, bottom - top));
  }
  g.fillStyle = "#ffffff"; g.fillRect(sampleX(position()) - 1, 0, 2, height);
}

function overviewSample(event) {
  const rect = $("overview").getBoundingClientRect();
  return Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width)) * app.song.length;
}

function drawMeters() {
  const data = new Float32Array(2048);
  app.meters.forEach((meter, s) => {
    meter.getFloatTimeDomainData(data);
    let sum = 0;
    for (const value of data) sum += value * value;
    const rms = Math.sqrt(sum / data.length);
    app.strips[s].meter.value = playing() ? Math.max(-60, 20 * Math.log10(rms + 1e-9)) : -60;
  });
}

function drawSpectrogram() {
  const canvas = $("spectrogram");
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  if (!app.analyser || !playing()) return;
  const bins = new Float32Array(app.analyser.frequencyBinCount);
  app.analyser.getFloatFrequencyData(bins);
  const step = 2;
  g.drawImage(canvas, -step, 0);
  const nyquist = app.ctx.sampleRate / 2;
  const low = 30, high = Math.min(16000, nyquist);
  for (let row = 0; row < height; row++) {
    const frequency = low * Math.pow(high / low, 1 - row / (height - 1));
    const db = bins[Math.min(bins.length - 1, Math.round((frequency / nyquist) * bins.length))];
    const level = Math.max(0, Math.min(1, (db + 100) / 80));
    g.fillStyle = `hsl(${260 - 220 * level}, 90%, ${8 + 55 * level}%)`;
    g.fillRect(width - step, row, step, 1);
  }
}

function frame() {
  if (app.song) {
    const overview = $("overview");
    overview.setAttribute("aria-valuemax", (app.song.length / app.song.sampleRate).toFixed(1));
    overview.setAttribute("aria-valuenow", (position() / app.song.sampleRate).toFixed(1));
    overview.setAttribute("aria-valuetext", formatTime(position() / app.song.sampleRate));
    $("time").textContent = `${formatTime(position() / app.song.sampleRate)} / ${formatTime(app.song.length / app.song.sampleRate)}` +
      (app.clock && app.clock[2] ? " (waiting for separation)" : "");
  }
  drawOverview();
  drawMeters();
  drawSpectrogram();
  requestAnimationFrame(frame);
}

// ---------- wiring ----------

function setUp() {
  if (!window.crossOriginIsolated) showMessage("this page needs cross-origin isolation: open it from the mixer's own address");
  $("play").addEventListener("click", togglePlay);
  $("master").addEventListener("input", () => {
    $("master-db").textContent = decibels(Number($("master").value));
    applyGains();
  });
  $("download-mix").addEventListener("click", () => downloadWav(null));
  $("loop").addEventListener("change", () => setLoop(app.loop));
  $("file").addEventListener("change", () => $("file").files.length && uploadFile($("file").files[0]));
  $("listener").addEventListener("change", chooseListener);
  $("apply-audiogram").addEventListener("click", () => {
    $("listener").value = "typed";
    applyTypedAudiogram();
  });
  document.addEventListener("dragover", (event) => { event.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    if (event.dataTransfer.files.length) uploadFile(event.dataTransfer.files[0]);
  });
  const overview = $("overview");
  overview.addEventListener("keydown", (event) => {
    const step = { ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 }[event.key];
    if (step === undefined || !app.song) return;
    event.preventDefault();
    seek(position() + step * app.song.sampleRate);
  });
  overview.addEventListener("mousedown", (event) => {
    if (!app.song) return;
    const at = overviewSample(event);
    app.drag = { anchor: at, start: at, end: at, x: event.clientX };
  });
  window.addEventListener("mousemove", (event) => {
    if (!app.drag) return;
    const at = overviewSample(event);
    app.drag.start = Math.min(app.drag.anchor, at);
    app.drag.end = Math.max(app.drag.anchor, at);
  });
  window.addEventListener("mouseup", (event) => {
    if (!app.drag) return;
    const drag = app.drag;
    app.drag = null;
    if (Math.abs(event.clientX - drag.x) < 4) {
      seek(drag.anchor);
      return;
    }
    $("loop").checked = true;
    setLoop({ start: Math.round(drag.start), end: Math.round(drag.end) });
    seek(drag.start);
  });
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.tagName === "INPUT" && target.type === "text") return;
    if (target.tagName === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.code === "Space") {
      event.preventDefault(); // also keeps a focused button or box from being pressed by it
      togglePlay();
      return;
    }
    const digit = /^(Digit|Numpad)([1-9])$/.exec(event.code);
    const strip = digit && app.strips[Number(digit[2]) - 1];
    if (strip) {
      event.preventDefault();
      toggle(event.shiftKey ? strip.solo : strip.mute);
    }
  });
  drawAudiogram();
  connect();
  requestAnimationFrame(frame);
}

// For tests and the curious: the gains in the audio graph, the playback state, and the samples the page plays.
window.demixui = {
  gains: () => Object.fromEntries(app.sources.map((source, s) => [source, app.gains[s] ? app.gains[s].gain.value : null])
    .concat([["master", app.master ? app.master.gain.value : null]])),
  status: () => ({
    song: app.song, separated: app.separated, position: position(), playing: playing(),
    waiting: app.clock ? app.clock[2] === 1 : false, playingHeard: app.clock ? app.clock[3] === 1 : false,
    contextState: app.ctx ? app.ctx.state : null, messagesSent: app.sent,
    stemsReceived: app.available ? Atomics.load(app.available, 0) : 0,
    heardReceived: app.available ? Atomics.load(app.available, 1) : 0,
    listener: app.listener ? app.listener.id : null, generation: app.generation, loop: app.loop,
    crossOriginIsolated: window.crossOriginIsolated,
  }),
  // base64 of the float32 samples of stem `source`, channel `channel`: the heard ones when `heard` is true.
  samples: (source, channel, heard) => {
    const buffers = heard ? app.heard : app.stems;
    const values = buffers[app.sources.indexOf(source)][channel];
    const bytes = new Uint8Array(values.slice().buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  },
};

setUp();
