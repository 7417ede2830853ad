"use strict";
// zoo explain page: renders explain.json (inline) and, under `zoo serve`, asks the server for more.
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};
const fmt = (v) => (v === null || v === undefined) ? "—" : (Number.isInteger(v) ? String(v) : Number(v).toPrecision(6));
const read = (id) => JSON.parse($(id).textContent);

let D = read("explain-data"), IMG = read("explain-images");
const MODE = read("explain-mode");
let imageKey = null, lastImage = null;
const src = (path) => IMG[path] || "";

function render() {
  $("title").textContent = `${D.model.name}: ${D.model.paper} (${D.model.year})`;
  $("subtitle").textContent = `${D.model.params.toLocaleString()} parameters, input ${D.model.input.join("x")}; ` +
    `weights: ${D.weights.source === "none" ? D.weights.note : D.weights.source}; image: ${D.image.source}` +
    (D.image.note ? ` (${D.image.note})` : "");
  $("nav").replaceChildren(...[...document.querySelectorAll("main section:not([hidden]) h2")].map((h) =>
    el("a", {href: "#" + h.parentElement.id, text: h.textContent.replace(/^\d+\. /, "")})));
  renderSteps(); renderLayers(); renderUnitList(); renderFilters(); renderHead(); renderClasses();
  renderAttribution(); renderSanity(); renderFamily();
  $("provenance").textContent = `zoo ${D.versions.zoo}, TensorFlow ${D.versions.tensorflow}, Keras ` +
    `${D.versions.keras}; weights sha256 ${D.weights.sha256 || "— (random)"}; computed in ${D.timings_s.total} s`;
}

function renderSteps() {
  $("steps").replaceChildren(...D.preprocessing.steps.map((s) => el("figure", {},
    el("img", {src: src(s.png), class: "px", style: "height:128px", alt: s.name}),
    el("figcaption", {text: `${s.name}: ${s.detail}`}))));
}

function renderLayers() {
  const box = $("layers"); box.replaceChildren();
  let block = null, holder = box;
  for (const L of D.layers) {
    if (!L.shown) continue;
    if (L.block !== L.name && L.block !== block) {
      block = L.block; holder = el("div", {class: "block"}, el("h3", {text: block})); box.append(holder);
    } else if (L.block === L.name) { block = null; holder = box; }
    const meta = `${L.name} · ${L.kind} · ${L.shape.join("x")} · stride ${L.field.jump[0]} · field ` +
      `${L.field.size[0]}px` + (L.inputs.length > 1 ? ` · from ${L.inputs.join(" + ")}` : "");
    const maps = el("div", {class: "maps"});
    for (const ch of L.channels) {
      const img = el("img", {src: src(ch.png), class: "px", title: `channel ${ch.channel}: max ${fmt(ch.max)}`,
        "data-layer": L.name, "data-channel": ch.channel});
      img.addEventListener("click", (e) => {
        const r = Math.min(L.shape[0] - 1, Math.floor(e.offsetY / img.clientHeight * L.shape[0]));
        const c = Math.min(L.shape[1] - 1, Math.floor(e.offsetX / img.clientWidth * L.shape[1]));
        selectUnit(L.name, [r, c, ch.channel]);
      });
      maps.append(img);
    }
    holder.append(el("div", {class: "layer"}, el("div", {class: "meta", text: meta}), maps));
  }
}

function renderUnitList() {
  const select = el("select", {id: "unit-select"}, el("option", {value: "", text: `${Object.keys(D.units).length} precomputed units`}),
    ...Object.keys(D.units).map((k) => el("option", {value: k, text: k})));
  select.addEventListener("change", () => { if (!select.value) return; const [name, idx] = select.value.split(":");
    selectUnit(name, idx.split(",").map(Number)); });
  $("unit-list").replaceChildren(select);
}

const layerByName = (name) => D.layers.find((l) => l.name === name);

function fieldBox(L, index) {
  const ch = L.channels && L.channels.find((c) => c.channel === index[2]);
  const f = (ch && ch.field) || L.field, [H, W] = D.model.input;
  if (f.whole || index.length !== 3) return [0, 0, H - 1, W - 1];
  const top = f.start[0] + index[0] * f.jump[0], left = f.start[1] + index[1] * f.jump[1];
  return [Math.max(0, top), Math.max(0, left), Math.min(H - 1, top + f.size[0] - 1), Math.min(W - 1, left + f.size[1] - 1)];
}

function drawField(L, index) {
  const canvas = $("field"), ctx = canvas.getContext("2d"), img = new Image();
  const [top, left, bottom, right] = fieldBox(L, index), [H, W] = D.model.input;
  canvas.dataset.box = [top, left, bottom, right].join(",");
  img.onload = () => {
    ctx.imageSmoothingEnabled = false; ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const sy = canvas.height / H, sx = canvas.width / W;
    ctx.strokeStyle = "#ff2d55"; ctx.lineWidth = 2;
    ctx.strokeRect(left * sx, top * sy, (right - left + 1) * sx, (bottom - top + 1) * sy);
  };
  img.src = src(D.input_png);
}

async function selectUnit(name, index) {
  const key = `${name}:${index.join(",")}`, L = layerByName(name);
  drawField(L, index);
  let chain = D.units[key];
  const detail = $("unit-detail");
  if (!chain && MODE.serve) {
    detail.replaceChildren(el("p", {text: `computing ${key} ...`}));
    const res = await fetch(`/api/unit?image=${encodeURIComponent(imageKey || "")}&layer=${encodeURIComponent(name)}&index=${index.join(",")}`);
    const body = await res.json();
    if (!res.ok) { detail.replaceChildren(el("p", {class: "bad", text: body.error})); return; }
    chain = body.chain; D.units[key] = chain;
  }
  if (!chain) {
    detail.replaceChildren(el("p", {id: "unit-missing", text: `${key}: its receptive field is drawn; its arithmetic ` +
      "is precomputed for the listed units only (zoo serve computes any unit)."}));
    return;
  }
  detail.replaceChildren(el("h3", {id: "unit-key", text: key}), ...chain.map(traceView));
}

function numTable(rows, mask) {
  const t = el("table", {class: "nums"});
  rows.forEach((row, i) => t.append(el("tr", {}, ...row.map((v, j) =>
    el("td", {text: fmt(v), class: mask && !mask[i][j] ? "out" : ""})))));
  return t;
}

function traceView(t) {
  const box = el("div", {class: "trace", "data-layer": t.layer});
  box.append(el("p", {text: `${t.layer} (${t.kind}, ${t.op})`}));
  if (t.op === "conv" || t.op === "partial_conv") {
    const channels = t.partial_sums.length, show = Math.min(channels, 3);
    box.append(el("p", {text: `window at (${t.window.top}, ${t.window.left}) of ${t.inputs[0]}, kernel ` +
      `${t.kernel_size.join("x")}, stride ${t.stride.join("x")}` + (t.groups > 1 ? `, group ${t.group} of ${t.groups} ` +
      `(input channels ${t.in_channels[0]}-${t.in_channels[1] - 1})` : "") + (t.connected_maps ?
      `, connected maps ${t.connected_maps.join(", ")}` : "")}));
    for (let c = 0; c < show; c++) {
      const patch = t.patch.map((r) => r.map((v) => v[c])), kern = t.kernel.map((r) => r.map((v) => v[c]));
      box.append(el("div", {class: "row"}, el("div", {}, el("small", {text: `input channel ${c}`}), numTable(patch, t.inside)),
        el("div", {}, el("small", {text: "kernel"}), numTable(kern)),
        el("div", {}, el("small", {text: "sum of products"}), el("p", {text: fmt(t.channel_sums[c])}))));
    }
    if (channels > show) box.append(el("p", {text: `... and ${channels - show} more input channels`}));
    box.append(el("p", {text: "partial sums over input channels: " + t.partial_sums.slice(0, 12).map(fmt).join(", ") +
      (channels > 12 ? ", ... " + fmt(t.partial_sums[channels - 1]) : "")}));
    box.append(el("p", {text: `+ bias ${fmt(t.bias)} = ${fmt(t.pre_activation)}; ${t.activation}`}));
  } else if (t.op === "dense") {
    box.append(el("p", {text: `${t.fan_in} inputs · w + bias ${fmt(t.bias)} = ${fmt(t.pre_activation)}; ${t.activation}`}));
  } else if (t.op === "batchnorm") {
    box.append(el("p", {text: `${fmt(t.gamma)} × (${fmt(t.x)} − ${fmt(t.mean)}) / √(${fmt(t.variance)} + ${t.epsilon}) + ${fmt(t.beta)}`}));
  } else if (t.op === "activation") {
    box.append(el("p", {text: `${t.activation}(${fmt(t.x)})`}));
  } else if (t.op === "max_pool" || t.op === "avg_pool") {
    box.append(el("p", {text: `${t.kernel_size.join("x")} window at (${t.window.top}, ${t.window.left}), stride ${t.stride[0]}` +
      (t.argmax ? `, max at ${t.argmax.join(",")}` : "")}), numTable(t.values, t.inside));
  } else if (t.op === "lrn") {
    box.append(el("p", {text: `${fmt(t.x)} / (${t.k} + ${t.alpha} × ${fmt(t.square_sum)})^${t.beta} over channels ${t.channels.join("-")}`}));
  } else if (t.op === "add") {
    box.append(el("p", {text: t.inputs.map((n, i) => `${n} ${fmt(t.terms[i])}`).join(" + ")}));
  } else if (t.op === "concat") {
    box.append(el("p", {text: `channel ${t.source_channel} of ${t.inputs[t.source]}`}));
  } else if (t.op === "subsampling") {
    box.append(el("p", {text: `sum ${fmt(t.sum)} × ${fmt(t.coefficient)} + ${fmt(t.bias)}`}));
  } else if (t.note) box.append(el("p", {text: t.note}));
  const ok = t.value !== null && t.difference <= 1e-4 * Math.max(1, Math.abs(t.model_value));
  box.append(el("p", {}, "page: ", el("span", {class: "value unit-value", text: fmt(t.value)}), " · model: ",
    el("span", {class: "value unit-model-value", text: fmt(t.model_value)}),
    el("span", {class: ok ? "ok" : "bad", text: ok ? " ✓ equal to 1e-4" : " (not recomputed)"})));
  return box;
}

function renderFilters() {
  const f = D.filters;
  if (!f) { $("filter-grid").replaceChildren(el("p", {text: "no convolution"})); return; }
  $("filter-grid").replaceChildren(el("p", {text: `${f.layer}: ${f.shape.join("x")} (${f.note})`, style: "width:100%"}),
    ...f.png.map((p, i) => el("img", {src: src(p), class: "px", style: "width:40px;height:40px", title: `filter ${i}`})));
}

function renderHead() {
  const h = D.head, top = h.top[0].probability || 1;
  $("top5").replaceChildren(...h.top.map((t) => el("div", {class: "bar top5"},
    el("span", {style: `width:120px`, text: t.name}), el("span", {class: "fill", style: `width:${Math.round(300 * t.probability / top)}px`}),
    el("span", {class: "prob", text: fmt(t.probability)}), el("small", {text: `logit ${fmt(t.logit)}`}))));
  $("softmax").textContent = `softmax on the real logits: ${h.softmax}; max logit ${fmt(h.max_logit)}`;
}

function renderClasses() {
  const select = $("class-select"), names = D.head.class_names;
  const options = D.classes.map((c) => el("option", {value: c, text: `${c}: ${names[c]}`}));
  if (MODE.serve) names.forEach((n, c) => { if (!D.classes.includes(c)) options.push(el("option", {value: c, text: `${c}: ${n} (compute)`})); });
  select.replaceChildren(...options);
  const layers = D.attribution.gradcam ? D.attribution.gradcam.layers : [];
  $("gradcam-layer").replaceChildren(...layers.map((l) => el("option", {value: l, text: l})));
  if (D.attribution.gradcam) $("gradcam-layer").value = D.attribution.gradcam.default;
}

function heat(title, path, id) {
  return el("figure", {class: "heat"}, el("img", {src: src(path), id, alt: title}), el("figcaption", {text: title}));
}

function renderAttribution() {
  const A = D.attribution, c = $("class-select").value, box = $("attribution-maps");
  box.replaceChildren();
  if (A.saliency && A.saliency[c]) box.append(heat(`saliency |d logit / d x| (class ${c})`, A.saliency[c], "saliency-img"));
  if (A.smoothgrad && String(A.smoothgrad.class) === c) box.append(heat(`SmoothGrad (${A.smoothgrad.samples} samples)`, A.smoothgrad.png, "smoothgrad-img"));
  if (A.gradcam) {
    const m = A.gradcam.maps[$("gradcam-layer").value][c];
    if (m) box.append(heat(`Grad-CAM at ${$("gradcam-layer").value} (max ${fmt(m.max)})`, m.png, "gradcam-img"));
  }
  if (A.occlusion && A.occlusion.maps[c]) box.append(heat(`occlusion ${A.occlusion.patch}px / ${A.occlusion.stride}px: ` +
    "bright = the class drops", A.occlusion.maps[c].png, "occlusion-img"));
  const dec = $("deconvnet"); dec.replaceChildren();
  for (const [layer, items] of Object.entries(A.deconvnet || {})) {
    dec.append(el("div", {}, el("small", {text: `deconvnet from ${layer}: the strongest unit of its top channels`}),
      el("div", {class: "row"}, ...items.map((d) => el("figure", {}, el("img", {src: src(d.png), class: "px", style: "width:96px;height:96px"}),
        el("figcaption", {text: `ch ${d.channel} @ ${d.unit.slice(0, 2).join(",")}`}))))));
  }
  $("not-applicable").textContent = Object.entries(A.not_applicable).map(([m, why]) => `${m}: ${why}`).join("; ");
}

function renderSanity() {
  const S = D.sanity, box = $("sanity-maps");
  if (!S) { box.replaceChildren(el("p", {text: "not computed"})); return; }
  const A = D.attribution, c = String(S.class);
  box.replaceChildren(
    ...(A.saliency && A.saliency[c] ? [heat("saliency, given weights", A.saliency[c])] : []),
    heat(`saliency, random weights (rank corr. ${fmt(S.saliency_rank_correlation)})`, S.saliency_png),
    ...(A.gradcam ? [heat("Grad-CAM, given weights", A.gradcam.maps[S.layer][c].png)] : []),
    heat(`Grad-CAM, random weights (rank corr. ${fmt(S.gradcam_rank_correlation)})`, S.gradcam_png),
    el("p", {text: S.given_weights_random ? "The given weights are random too: train or load weights for a real comparison." :
      "Maps that survive randomising the weights do not explain the weights (Adebayo et al. 2018)."}));
}

function renderFamily() {
  const F = D.family, box = $("family-views"); box.replaceChildren();
  for (const t of F.connection_tables) {
    const table = el("table", {class: "nums"});
    table.append(el("tr", {}, el("td", {text: ""}), ...t.table.map((_, o) => el("td", {text: o}))));
    for (let i = 0; i < t.inputs; i++) table.append(el("tr", {}, el("td", {text: i}),
      ...t.table.map((row) => el("td", {text: row.includes(i) ? "X" : ""}))));
    box.append(el("p", {text: `${t.layer}: which input maps (rows) each output map (columns) combines` + (t.full ? " (full)" : "")}), table);
  }
  for (const t of F.towers) box.append(el("p", {text: `${t.layer}: ${t.groups} towers of ${t.filters / t.groups} filters, each seeing only its half`}));
  for (const l of F.lrn) box.append(el("p", {text: `${l.layer}: mean |a| ${fmt(l.mean_abs_before)} → ${fmt(l.mean_abs_after)}`}));
  for (const m of F.merges.slice(0, 80)) {
    box.append(el("p", {text: m.op === "add" ? `${m.layer}: ` + m.inputs.map((i) => `|${i.name}| ${fmt(i.mean_abs)}`).join(" vs ") :
      `${m.layer}: ` + m.inputs.map((i) => `${i.name} [${i.channels.join("-")}) ${(100 * i.share).toFixed(1)}%`).join(", ")}));
  }
}

async function explainUpload(blob, cls) {
  $("serve-status").textContent = "computing ...";
  const res = await fetch(`/api/explain?class=${encodeURIComponent(cls || "top")}`, {method: "POST", body: blob,
    headers: {"Content-Type": "application/octet-stream"}});
  const body = await res.json();
  if (!res.ok) { $("serve-status").textContent = body.error; return; }
  D = body.data; IMG = body.images; imageKey = body.image; lastImage = blob;
  $("serve-status").textContent = body.note || "done"; render();
  document.body.dataset.explained = String(Number(document.body.dataset.explained || 0) + 1);
}

function setupServe() {
  if (!MODE.serve) return;
  $("serve-panel").hidden = false; imageKey = MODE.image || null;
  $("upload-form").addEventListener("submit", (e) => { e.preventDefault(); const f = $("upload").files[0]; if (f) explainUpload(f); });
  if (D.model.input[0] <= 32) {
    $("pad-box").hidden = false;
    const pad = $("pad"), ctx = pad.getContext("2d");
    const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 32, 32); };
    clear(); let down = false;
    const draw = (e) => { if (!down) return; const r = pad.getBoundingClientRect();
      ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc((e.clientX - r.left) / r.width * 32, (e.clientY - r.top) / r.height * 32, 1.6, 0, 7); ctx.fill(); };
    pad.addEventListener("pointerdown", (e) => { down = true; draw(e); }); pad.addEventListener("pointermove", draw);
    window.addEventListener("pointerup", () => { down = false; });
    $("pad-clear").addEventListener("click", clear);
    $("pad-send").addEventListener("click", () => pad.toBlob((b) => explainUpload(b), "image/png"));
  }
}

$("class-select").addEventListener("change", () => {
  const c = Number($("class-select").value);
  if (MODE.serve && !D.classes.includes(c) && lastImage) { explainUpload(lastImage, c); return; }
  if (MODE.serve && !D.classes.includes(c)) { fetch(`/api/image?image=${encodeURIComponent(imageKey)}`).then((r) => r.blob()).then((b) => explainUpload(b, c)); return; }
  renderAttribution();
});
$("gradcam-layer").addEventListener("change", renderAttribution);
setupServe();
render();
document.body.dataset.ready = "1";
