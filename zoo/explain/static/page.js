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
  canvas.dataset.box = [top, left, bottom, right].join(","); canvas.dataset.unit = index.join(",");
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
    const channels = t.partial_sums.length, show = Math.min(t.shown_channels.length, 3);
    box.append(el("p", {text: `window at (${t.window.top}, ${t.window.left}) of ${t.inputs[0]}, kernel ` +
      `${t.kernel_size.join("x")}, stride ${t.stride.join("x")}` + (t.groups > 1 ? `, group ${t.group} of ${t.groups} ` +
      `(input channels ${t.in_channels[0]}-${t.in_channels[1] - 1})` : "") + (t.connected_maps ?
      `, connected maps ${t.connected_maps.join(", ")}` : "")}));
    for (let c = 0; c < show; c++) {
      const patch = t.patch.map((r) => r.map((v) => v[c])), kern = t.kernel.map((r) => r.map((v) => v[c]));
      box.append(el("div", {class: "row"}, el("div", {}, el("small", {text: `input channel ${t.shown_channels[c]}`}), numTable(patch, t.inside)),
        el("div", {}, el("small", {text: "kernel"}), numTable(kern)),
        el("div", {}, el("small", {text: "sum of products"}), el("p", {class: "channel-sum", text: fmt(t.shown_sums[c])}))));
    }
    if (channels > show) box.append(el("p", {text: `... and ${channels - show} more input channels` +
      (channels > 3 ? " (shown: the largest sums of products)" : "")}));
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
    box.append(el("p", {text: `channels ${t.channels[0]}-${t.channels[1] - 1} at this position:`}),
      numTable([t.neighbours, t.neighbours.map((v) => v * v)]),
      el("p", {class: "lrn-step", text: `${fmt(t.x)} / (${t.k} + ${t.alpha} × ${fmt(t.square_sum)})^${t.beta} = ` +
        `${fmt(t.x)} / ${fmt(t.denominator)}`}));
  } else if (t.op === "add") {
    box.append(el("p", {text: t.inputs.map((n, i) => `${n} ${fmt(t.terms[i])}`).join(" + ")}));
  } else if (t.op === "concat") {
    box.append(el("p", {text: `channel ${t.source_channel} of ${t.inputs[t.source]}` + (t.origin && t.origin.layer !== t.inputs[t.source] ?
      `, made by ${t.origin.layer} (its channel ${t.origin.channel})` : "")}));
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
  const tile = (p, i) => el("img", {src: src(p), class: "px", style: "width:40px;height:40px", title: `filter ${i}`});
  const head = el("p", {text: `${f.layer}: ${f.shape.join("x")} (${f.note})`, style: "width:100%"});
  if (!f.towers) { $("filter-grid").replaceChildren(head, ...f.png.map(tile)); return; }
  $("filter-grid").replaceChildren(head, ...f.towers.filters.map(([lo, hi], g) => el("div", {class: "filter-tower", style: "width:100%"},
    el("small", {text: `tower ${g} (read by ${f.towers.layer}'s group ${g}): filters ${lo}-${hi - 1}` +
      (f.towers.colour_specificity[g] !== null ? `, colour specificity ${fmt(f.towers.colour_specificity[g])}` : "")}),
    el("div", {class: "grid"}, ...f.png.slice(lo, hi).map((p, i) => tile(p, lo + i))))));
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

// -- 8. family structures: each renderer draws one list of D.family (computed in zoo/explain/family.py)

const pct = (v) => `${(100 * v).toFixed(1)}%`;
const shade = (t) => `rgba(59,125,216,${(0.08 + 0.92 * Math.max(0, Math.min(1, t))).toFixed(3)})`;
const HUES = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"];

function familyBox(id, title, ...children) {
  return el("div", {class: "family-box", id}, el("h3", {text: title}), ...children);
}

function connectionTable(t) {
  const top = Math.max(...t.rows.flatMap((r) => Object.values(r.contributions).map((c) => c.mean_abs))) || 1;
  const table = el("table", {class: "nums c3-table", "data-layer": t.layer});
  table.append(el("tr", {}, el("td", {text: "in \\ out"}), ...t.rows.map((r) => el("td", {text: r.output}))));
  for (let i = 0; i < t.in_maps; i++) {
    table.append(el("tr", {}, el("td", {text: i}), ...t.rows.map((r) => {
      const c = r.contributions[i];
      return c ? el("td", {class: "connected", style: `background:${shade(c.mean_abs / top)}`, text: "X",
        title: `input map ${i} -> output map ${r.output}: mean contribution ${fmt(c.mean)}, mean |.| ${fmt(c.mean_abs)}`})
        : el("td", {class: "unconnected", text: ""});
    })));
  }
  const sums = el("table", {class: "nums c3-sums"}, el("tr", {}, el("td", {text: "out"}),
    el("td", {text: "Σ contributions + bias"}), el("td", {text: t.activation === "linear" ? "model's mean" : `model's mean (after ${t.activation})`})),
    ...t.rows.map((r) => el("tr", {}, el("td", {text: r.output}), el("td", {class: "c3-ours", text: fmt(r.pre_activation_mean)}),
      el("td", {class: "c3-model", text: fmt(r.model_mean)}))));
  return familyBox(`table-${t.layer}`, `${t.layer}: which input maps of ${t.input} (rows) each output map (columns) ` +
    `combines: ${t.connections} of ${t.in_maps * t.out_maps} connections` + (t.full ? " (fully connected)" : " (LeCun et al. 1998, Table I)"),
    el("p", {class: "hint", text: "Shade: the mean |contribution| of the connection on this image (its input map convolved " +
      "with its kernel); hover for the numbers. The contributions of an output map plus its bias are its pre-activation."}),
    el("div", {class: "row"}, table, sums));
}

function towersView(t) {
  const cols = t.towers.map((w) => el("div", {class: "tower", "data-tower": w.tower},
    el("b", {text: `tower ${w.tower}`}),
    el("p", {text: `reads ${t.source || "input"} channels ${w.in_channels[0]}-${w.in_channels[1] - 1}, ` +
      `makes channels ${w.out_channels[0]}-${w.out_channels[1] - 1}`}),
    el("p", {text: `${w.params.toLocaleString()} parameters · mean activation ${fmt(w.mean)} · `},
      el("span", {class: "tower-share", text: pct(w.share)}), " of the layer's |activation|"),
    ...(w.source_colour_specificity !== undefined ? [el("p", {text: `colour specificity of the ${t.source} filters ` +
      `it reads: ${fmt(w.source_colour_specificity)} (the spread of their weights over R, G, B relative to their size; ` +
      "after training, Krizhevsky et al. saw one tower's filters colour-agnostic, the other's colour-specific)"})] : [])));
  return familyBox(`towers-${t.layer}`, `${t.layer}: ${t.groups} towers (grouped convolution, kernel ${t.kernel.join("x")}): ` +
    "each sees only its own half of the maps, as AlexNet's two GPUs did", el("div", {class: "row towers"}, ...cols));
}

function lrnView(l) {
  return familyBox(`lrn-${l.layer}`, `${l.layer}: local response normalisation of ${l.input}`,
    el("p", {text: `b = a / (${l.k} + ${l.alpha} × Σ a² over ${l.size} neighbouring channels)^${l.beta}`}),
    el("p", {text: `denominator: mean ${fmt(l.denominator_mean)}, max ${fmt(l.denominator_max)}; mean |a| ` +
      `${fmt(l.mean_abs_before)} → ${fmt(l.mean_abs_after)}; recomputed over the whole map, largest difference from the ` +
      `model ${fmt(l.max_difference)}. Click a unit of ${l.input} for one unit's LRN step.`}));
}

function stackedBar(parts, key, label) {
  return el("div", {class: "stack", title: label}, el("small", {text: label}),
    el("div", {class: "stack-bar"}, ...parts.map((p, i) => el("span", {class: "stack-part", style:
      `width:${(100 * p[key]).toFixed(2)}%;background:${HUES[i % HUES.length]}`, title: `${p.output || p.source}: ${pct(p[key])}`}))));
}

const branchName = (b) => b.path.map((p) => p.replace(/^.*?_(?=\dx\d|pool)/, "")).join(" → ") || b.output;

function inceptionView(modules) {
  // one row per module: its channels and its |activation| split by branch; the branch table folded under it
  const rows = modules.map((m) => el("div", {class: "module", id: `inception-${m.layer}`},
    el("div", {class: "row"}, el("b", {class: "module-name", text: m.layer}),
      stackedBar(m.branches, "channel_share", "channels"),
      ...(m.branches[0].share !== undefined ? [stackedBar(m.branches, "share", "|activation| on this image")] : [])),
    el("details", {}, el("summary", {text: `${m.branches.length} branches from ${m.fork}, ${m.channels} channels`}),
      el("table", {class: "nums branches"}, el("tr", {}, ...["branch", "channels", "share of channels",
        "share of |activation|", "mean"].map((h) => el("td", {text: h}))),
        ...m.branches.map((b, i) => el("tr", {class: "branch-row"}, el("td", {class: "text", style:
          `border-left:6px solid ${HUES[i % HUES.length]}`, text: b.path.join(" → ") || b.output}),
          el("td", {text: `${b.channels[0]}-${b.channels[1] - 1}`}), el("td", {text: pct(b.channel_share)}),
          el("td", {class: "branch-share", text: b.share === undefined ? "—" : pct(b.share)}), el("td", {text: fmt(b.mean)})))))));
  return familyBox("inception", "Inception modules: each branch's share of the module's channels and of its |activation|",
    el("p", {class: "legend"}, ...modules[0].branches.map((b, i) => el("span", {style: `color:${HUES[i % HUES.length]};margin-right:12px`,
      text: `■ ${branchName(b)}`}))), ...rows);
}

function residualView(blocks) {
  const top = Math.max(...blocks.map((b) => Math.max(b.f_rms || 0, b.x_rms || 0))) || 1;
  const bar = (v, cls) => el("span", {class: `fill ${cls}`, style: `width:${Math.round(160 * v / top)}px`});
  return familyBox("residual", "Residual blocks: |F(x)| (the residual branch) against |x| (the shortcut), RMS over the block's output",
    el("p", {class: "legend"}, el("span", {class: "key x", text: "■ |x|"}), " ", el("span", {class: "key f", text: "■ |F(x)|"}),
      " — a ratio well below 1: the block adds a small correction to what it is given (He et al. 2016, sec. 4.2)"),
    el("table", {class: "nums residual"}, el("tr", {}, ...["block", "shortcut", "|x|", "|F(x)|", "|F(x)| / |x|", ""].map((h) => el("td", {text: h}))),
      ...blocks.map((b) => el("tr", {class: "residual-row", "data-layer": b.layer}, el("td", {class: "text", text: b.layer}),
        el("td", {class: "text", text: `${b.shortcut_kind}: ${b.shortcut}`}), el("td", {class: "x-rms", text: fmt(b.x_rms)}),
        el("td", {class: "f-rms", text: fmt(b.f_rms)}), el("td", {class: "ratio", text: fmt(b.ratio)}),
        el("td", {}, el("div", {class: "bar"}, bar(b.x_rms, "x")), el("div", {class: "bar"}, bar(b.f_rms, "f")))))));
}

function denseView(b) {
  const strip = el("div", {class: "stack-bar dense-strip"}, ...b.sources.map((s, i) => el("span", {class: "stack-part source",
    style: `width:${(100 * (s.channels[1] - s.channels[0]) / b.channels).toFixed(3)}%;background:${HUES[i % HUES.length]}`,
    title: `channels ${s.channels[0]}-${s.channels[1] - 1}: ${s.source}` + (s.share !== undefined ? `, ${pct(s.share)} of |activation|` : "")})));
  const weights = el("table", {class: "nums dense-weights"}, el("tr", {}, el("td", {text: "layer \\ source"}),
    ...b.sources.map((s, i) => el("td", {text: i, title: s.source}))),
    ...b.weights.map((r) => { const top = Math.max(...r.mean_abs_w) || 1;  // each row on its own scale: what it leans on
      return el("tr", {}, el("td", {class: "text", text: r.layer}), ...b.sources.map((s, i) => i < r.mean_abs_w.length ?
        el("td", {class: "w", style: `background:${shade(r.mean_abs_w[i] / top)}`, title: `${r.layer} on ${s.source}: mean |w| ${fmt(r.mean_abs_w[i])}`})
        : el("td", {}))); }));
  return familyBox(`dense-${b.layer}`, `${b.layer}: ${b.channels} channels from ${b.sources.length} source layers`,
    el("p", {class: "hint", text: "Each concatenated channel by the layer that made it (hover: its channels and share of the |activation|):"}), strip,
    el("p", {class: "hint", text: "Mean |w| each later layer (rows) puts on each source's channels (columns; Huang et al. 2017, Fig. 5), " +
      "each row scaled to its largest: darker = leans on it more. Hover for the numbers."}), weights);
}

function renderFamily() {
  const F = D.family, box = $("family-views");
  const views = [...F.connection_tables.map(connectionTable), ...F.towers.map(towersView), ...F.lrn.map(lrnView),
    ...(F.inception.length ? [inceptionView(F.inception)] : []), ...(F.residual.length ? [residualView(F.residual)] : []), ...F.dense.map(denseView)];
  box.replaceChildren(...(views.length ? views : [el("p", {text: `${D.model.name}: a plain stack of convolutions and pooling, ` +
    "no branches, groups or tables to show (its receptive fields are in the overview)."})]));
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
