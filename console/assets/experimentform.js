// The experiment form: builds a spec from the fields, asks /experiments/check
// after each change (the admin API's own validation: code, field, message)
// and shows the sample-size estimate; the JSON view mirrors the form.
// Without script the page keeps the plain JSON form.
"use strict";
(function () {
  var form = document.getElementById("expform");
  if (!form) return;
  var advanced = document.getElementById("advanced");
  var jsonArea = document.getElementById("spec-json");
  var check = document.getElementById("check");
  var sample = document.getElementById("sample-size");
  var create = document.getElementById("create");
  var armsBody = document.querySelector("#arms-edit tbody");
  var guardBody = document.querySelector("#guardrails-edit tbody");
  var metricOptions = form.elements.primary_metric.innerHTML;
  form.hidden = false;
  advanced.open = false;
  document.getElementById("json-to-form").hidden = false;

  function el(tag, attrs) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function cell(row, input) {
    var td = document.createElement("td");
    td.appendChild(input);
    row.appendChild(td);
    return input;
  }
  function removeButton(row) {
    var b = el("button", { type: "button", "class": "secondary", "aria-label": "remove" });
    b.textContent = "×";
    b.addEventListener("click", function () { row.remove(); changed(); });
    cell(row, b);
  }
  function addArm(a) {
    a = a || {};
    var o = a.overrides || {};
    var row = el("tr", {});
    cell(row, el("input", { "data-key": "name", value: a.name || "", size: 12, "aria-label": "arm name" }));
    cell(row, el("input", { "data-key": "weight", type: "number", step: "0.05", min: "0", value: a.weight != null ? a.weight : 0.5, "aria-label": "arm weight" }));
    cell(row, el("input", { "data-key": "overrides.model", value: o.model || "", placeholder: "live policy", size: 14, "aria-label": "pin model" }));
    cell(row, el("input", { "data-key": "overrides.policy_version", value: o.policy_version || "", placeholder: "live", size: 10, "aria-label": "policy version" }));
    cell(row, el("input", { "data-key": "overrides.epsilon", type: "number", step: "0.01", min: "0", max: "1", value: o.epsilon != null ? o.epsilon : "", "aria-label": "epsilon" }));
    removeButton(row);
    armsBody.appendChild(row);
  }
  function addGuardrail(g) {
    g = g || {};
    var row = el("tr", {});
    var sel = cell(row, el("select", { "data-key": "metric", "aria-label": "guardrail metric" }));
    sel.innerHTML = metricOptions;
    sel.value = g.metric || "error_rate";
    cell(row, el("input", { "data-key": "max_increase", type: "number", step: "any", value: g.max_increase != null ? g.max_increase : "", "aria-label": "max increase" }));
    cell(row, el("input", { "data-key": "max", type: "number", step: "any", value: g.max != null ? g.max : "", "aria-label": "max" }));
    removeButton(row);
    guardBody.appendChild(row);
  }

  // num reads a number field: "" is absent; anything else a number, or
  // the text itself so the API names the field and its type.
  function num(v) {
    if (v === "" || v == null) return undefined;
    var n = Number(v);
    return isNaN(n) ? v : n;
  }
  function set(obj, path, v) {
    if (v === undefined || v === "") return;
    var parts = path.split(".");
    for (var i = 0; i < parts.length - 1; i++) obj = obj[parts[i]] = obj[parts[i]] || {};
    obj[parts[parts.length - 1]] = v;
  }
  function rowValues(row, numeric) {
    var out = {};
    row.querySelectorAll("[data-key]").forEach(function (i) {
      set(out, i.dataset.key, numeric[i.dataset.key] ? num(i.value) : i.value.trim());
    });
    return out;
  }

  function buildSpec() {
    var f = form.elements;
    var kind = f.kind.value;
    var s = { name: f.name.value.trim(), owner: f.owner.value.trim(), hypothesis: f.hypothesis.value.trim(),
      layer: f.layer.value.trim(), layer_share: num(f.layer_share.value), traffic: num(f.traffic.value),
      unit: f.unit.value, primary_metric: f.primary_metric.value, min_sample: num(f.min_sample.value) };
    s.arms = [].map.call(armsBody.rows, function (r) {
      return rowValues(r, { weight: true, "overrides.epsilon": true });
    });
    var lb = {};
    ["draft", "standard", "premium"].forEach(function (t) {
      var v = num(f["budget_" + t].value);
      if (v !== undefined) lb[t] = Math.round(v * 1000);
    });
    if (Object.keys(lb).length) s.latency_budgets_ms = lb;
    var g = [].map.call(guardBody.rows, function (r) { return rowValues(r, { max_increase: true, max: true }); });
    if (g.length) s.guardrails = g;
    if (kind === "canary") {
      s.ramp = { steps: f.ramp_steps.value.split(",").map(function (x) { return num(x.trim()); }).filter(function (x) { return x !== undefined; }),
        min_duration: f.ramp_min_duration.value.trim(), min_units: num(f.ramp_min_units.value), step: 0 };
      delete s.traffic;
    } else if (kind === "bandit") {
      s.kind = "bandit";
      s.bandit = { min_share: num(f.bandit_min_share.value), burn_in: num(f.bandit_burn_in.value), every: f.bandit_every.value.trim() || undefined };
      if (f.bandit_strata.value) s.bandit.strata = f.bandit_strata.value.split(",");
    } else if (kind === "shadow") {
      s.kind = "shadow";
      s.shadow = { share: num(f.shadow_share.value), daily_cap_usd: num(f.shadow_cap.value) };
    }
    return JSON.parse(JSON.stringify(s)); // drops the undefined fields
  }

  function showKind() {
    var kind = form.elements.kind.value;
    ["canary", "bandit", "shadow"].forEach(function (k) {
      form.querySelectorAll(".kind-" + k).forEach(function (e) { e.hidden = k !== kind; });
    });
  }

  // fieldElement finds the input an API field path names:
  // "arms[1].weight" -> the weight input of the second arm row.
  function fieldElement(field) {
    if (!field) return null;
    var m = /^(arms|guardrails)\[(\d+)\](?:\.(.+))?$/.exec(field);
    if (m) {
      var row = (m[1] === "arms" ? armsBody : guardBody).rows[+m[2]];
      if (!row) return null;
      return (m[3] && row.querySelector('[data-key="' + m[3] + '"]')) || row;
    }
    var exact = form.querySelector('[data-field="' + field + '"]');
    if (exact) return exact;
    var top = field.split(/[.[]/)[0];
    return form.querySelector('[data-field="' + top + '"]');
  }
  function clearErrors() {
    form.querySelectorAll(".invalid").forEach(function (e) { e.classList.remove("invalid"); e.removeAttribute("aria-invalid"); });
    form.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
  }
  function showError(e) {
    clearErrors();
    check.className = "bad";
    check.textContent = e.message + " (" + e.code + (e.field ? ", " + e.field : "") + ")";
    var target = fieldElement(e.field);
    if (!target) return;
    target.classList.add("invalid");
    target.setAttribute("aria-invalid", "true");
    var note = el("span", { "class": "field-error", "data-code": e.code });
    note.textContent = e.message;
    target.insertAdjacentElement("afterend", note);
  }

  function fmt(n) { return Math.round(n).toLocaleString("en-US"); }
  function showSample(z) {
    if (!z) { sample.textContent = ""; return; }
    if (!z.units_per_arm) { sample.textContent = z.note || ""; return; }
    var t = fmt(z.units_per_arm) + " units per arm, " + fmt(z.units_total) + " in all, to detect " + z.mde + " in " + z.metric +
      (z.kind === "proportion" ? " from " + z.baseline.toFixed(3) + " (" + z.baseline_from + ")" : " with sd " + z.sd) +
      " at power " + z.power + ", alpha " + +z.alpha.toFixed(4) + " per comparison.";
    if (z.days) t += " At the last week's traffic (" + fmt(z.requests_per_day) + " requests a day into this experiment) that is about " + z.days + " days.";
    sample.textContent = t;
  }

  // changed re-checks after a pause in typing. The create button follows
  // the last answer, not the pending check: a blur's change event fires
  // between a click's mousedown and mouseup and must not swallow it.
  var seq = 0, timer = null, last = "";
  function changed() {
    var spec = buildSpec(), f = form.elements;
    var key = JSON.stringify([spec, f.mde.value, f.baseline.value, f.sd.value, f.power.value]);
    if (key === last) return; // a blur after typing: nothing to redraw
    last = key;
    showKind();
    jsonArea.value = JSON.stringify(spec, null, 2);
    check.className = "muted";
    check.textContent = "Checking…";
    clearTimeout(timer);
    timer = setTimeout(function () { validate(spec); }, 200);
  }
  function validate(spec) {
    var my = ++seq, f = form.elements;
    window.routelab.post("/experiments/check", { spec: spec, mde: num(f.mde.value) || 0, baseline: num(f.baseline.value) || 0,
      sd: num(f.sd.value) || 0, power: num(f.power.value) || 0 }).then(function (r) {
      if (my !== seq) return; // a newer check is on its way
      form.dataset.checked = String(my);
      showSample(r.sample_size);
      if (!r.valid) { showError(r.error); create.disabled = true; return; }
      clearErrors();
      check.className = "ok";
      check.textContent = "Valid: " + r.spec.arms.length + " arms in layer " + r.spec.layer + ", " + (r.spec.kind === "fixed" && r.spec.ramp ? "canary" : r.spec.kind) + ".";
      create.disabled = false;
    }).catch(function (err) {
      if (my !== seq) return;
      check.className = "bad";
      check.textContent = "Could not check the spec: " + err.message;
    });
  }

  function fill(s) {
    var f = form.elements;
    ["name", "owner", "hypothesis", "layer", "layer_share", "traffic", "unit", "primary_metric", "min_sample"].forEach(function (k) {
      if (s[k] != null) f[k].value = s[k];
    });
    ["draft", "standard", "premium"].forEach(function (t) {
      var ms = s.latency_budgets_ms && s.latency_budgets_ms[t];
      f["budget_" + t].value = ms ? ms / 1000 : "";
    });
    f.kind.value = s.ramp ? "canary" : (s.kind || "fixed");
    armsBody.innerHTML = "";
    (s.arms || []).forEach(addArm);
    guardBody.innerHTML = "";
    (s.guardrails || []).forEach(addGuardrail);
    if (s.ramp) {
      f.ramp_steps.value = (s.ramp.steps || []).join(", ");
      if (s.ramp.min_duration) f.ramp_min_duration.value = s.ramp.min_duration;
      if (s.ramp.min_units != null) f.ramp_min_units.value = s.ramp.min_units;
    }
    if (s.bandit) {
      f.bandit_strata.value = (s.bandit.strata || []).join(",");
      if (s.bandit.min_share != null) f.bandit_min_share.value = s.bandit.min_share;
      if (s.bandit.burn_in != null) f.bandit_burn_in.value = s.bandit.burn_in;
      if (s.bandit.every) f.bandit_every.value = s.bandit.every;
    }
    if (s.shadow) {
      f.shadow_share.value = s.shadow.share;
      if (s.shadow.daily_cap_usd != null) f.shadow_cap.value = s.shadow.daily_cap_usd;
    }
  }

  document.getElementById("add-arm").addEventListener("click", function () {
    addArm({ name: "arm-" + (armsBody.rows.length + 1) }); changed();
  });
  document.getElementById("add-guardrail").addEventListener("click", function () { addGuardrail(); changed(); });
  document.getElementById("json-to-form").addEventListener("click", function () {
    try { fill(JSON.parse(jsonArea.value)); changed(); } catch (e) { check.className = "bad"; check.textContent = "The JSON does not parse: " + e.message; }
  });
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    create.disabled = true;
    fetch("/experiments", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-Csrf-Token": window.routelab.csrf() },
      body: JSON.stringify(buildSpec()) }).then(function (r) {
      return r.json().then(function (j) {
        if (r.ok) { location.href = "/experiments/" + encodeURIComponent(j.id); return; }
        showError((j && j.error) || { code: "http_" + r.status, message: "the console answered " + r.status });
        create.disabled = false;
      });
    }).catch(function (err) { check.className = "bad"; check.textContent = err.message; create.disabled = false; });
  });

  var me = form.elements.owner.value;
  try { fill(JSON.parse(jsonArea.value)); } catch (e) { addArm({ name: "control" }); addArm({ name: "treatment" }); }
  if (form.elements.owner.value === "you") form.elements.owner.value = me; // the example's placeholder owner
  changed();
})();
