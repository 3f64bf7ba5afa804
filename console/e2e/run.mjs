// Browser tests of the routelab console. playwright-core drives the system
// chromium (never a downloaded build). The Go test TestBrowser starts a real
// console (with ClickHouse and seeded data), then runs this script with:
//   CONSOLE_URL     base URL of the console
//   CHROMIUM        chromium executable (default /usr/bin/chromium)
//   SCREENSHOT_DIR  where to save one screenshot per page visited
//   E2E_USERS       JSON {"reviewer":[name,password],"engineer":[...],"admin":[...]}
//   E2E_SCENARIOS   comma-separated scenario names (default: all)
//   E2E_REVIEW_N    items the reviewer scores by keyboard (default 10)
//   E2E_PAIRS_N     pairs answered in the pairwise round (default 3)
//   E2E_MODELS      JSON list of model names that must stay hidden before an answer
// It prints progress to stderr and one JSON object on the last line of stdout.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.CONSOLE_URL;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
const users = JSON.parse(process.env.E2E_USERS || "{}");
const wanted = (process.env.E2E_SCENARIOS || "").split(",").filter(Boolean);
const reviewN = +(process.env.E2E_REVIEW_N || 10);
const pairsN = +(process.env.E2E_PAIRS_N || 3);
const models = JSON.parse(process.env.E2E_MODELS || "[]");
mkdirSync(shots, { recursive: true });

function check(cond, msg) { if (!cond) throw new Error(msg); }
const t0 = Date.now();
const log = (...a) => console.error("[e2e]", ((Date.now() - t0) / 1000).toFixed(1) + "s", ...a);

async function newPage(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // The machine may be shared and loaded: generous timeouts, never sleeps.
  ctx.setDefaultTimeout(120000);
  ctx.setDefaultNavigationTimeout(120000);
  const page = await ctx.newPage();
  const problems = [];
  page.on("dialog", (d) => { problems.push("dialog: " + d.message()); d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  return { ctx, page, problems };
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, name + ".png"), fullPage: true, timeout: 120000, animations: "disabled" });
  // After a full-page screenshot of a page taller than the window, with
  // the page scrolled to its end, Chromium scrolled back 135 px on the next
  // mouse press and moved the Create button from under the click. Starting
  // from the top, the next click scrolls its target into view itself.
  await page.evaluate(() => window.scrollTo(0, 0));
}

// loginByKeyboard types the credentials and presses Enter: no mouse.
async function loginByKeyboard(page, who) {
  const [name, pw] = users[who];
  await page.goto(base + "/login");
  // The name field has autofocus; wait until the browser applied it.
  await page.waitForFunction(() => document.activeElement && document.activeElement.name === "name");
  await page.keyboard.type(name);
  await page.keyboard.press("Tab");
  await page.keyboard.type(pw);
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  if (page.url().includes("/login")) {
    const msg = await page.textContent("main");
    throw new Error(`login as ${who} failed: still on ${page.url()}: ${msg.trim().slice(0, 200)}`);
  }
}

const scenarios = {
  async csp_and_login(browser) {
    const { ctx, page, problems } = await newPage(browser);
    const resp = await page.goto(base + "/");
    check(page.url().includes("/login"), "anonymous / did not land on /login: " + page.url());
    check((resp.headers()["content-security-policy"] || "").includes("script-src 'self'"), "no strict CSP header");
    await shot(page, "login");
    await page.goto(base + "/login");
    await page.waitForFunction(() => document.activeElement && document.activeElement.name === "name");
    await page.keyboard.type(users.reviewer[0]);
    await page.keyboard.press("Tab");
    await page.keyboard.type("wrong-password");
    await Promise.all([page.waitForLoadState(), page.keyboard.press("Enter")]);
    check((await page.textContent("body")).includes("Wrong name or password"), "bad password was not refused");
    // The refused login answers 401 on purpose; anything else is a problem.
    const other = problems.filter((p) => !p.includes("status of 401"));
    check(other.length === 0, other.join("; "));
    await ctx.close();
  },

  async reviewer_refused_admin(browser) {
    const { ctx, page } = await newPage(browser);
    await loginByKeyboard(page, "reviewer");
    for (const path of ["/admin", ...(process.env.E2E_ENGINEER_PAGES || "").split(",").filter(Boolean)]) {
      const resp = await page.goto(base + path);
      check(resp.status() === 403, `reviewer got ${resp.status()} on ${path}, want 403`);
    }
    await shot(page, "reviewer-refused-admin");
    // A forged POST without the CSRF token is refused even with the session cookie.
    const st = await page.evaluate(async () => (await fetch("/review/skip", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"id":"x"}' })).status);
    check(st === 403, `POST without CSRF token answered ${st}, want 403`);
    await ctx.close();
  },

  async review_keyboard(browser) {
    const { ctx, page, problems } = await newPage(browser);
    await loginByKeyboard(page, "reviewer");
    await page.goto(base + "/review");
    const seen = new Set();
    for (let i = 0; i < reviewN; i++) {
      await page.waitForSelector("#item");
      const id = await page.getAttribute("#item", "data-id");
      check(!seen.has(id), `item ${id} came back after it was scored`);
      seen.add(id);
      const qs = await page.$$eval("fieldset.q", (els) => els.map((e) => ({ kind: e.dataset.kind, max: +e.dataset.max })));
      if (i === 0) {
        await page.keyboard.press("?");
        check(await page.isVisible("#help"), "? did not show the keys");
        await shot(page, "review-help");
        await page.keyboard.press("?");
        // Score, undo, re-score: u must take the last score back.
        await page.keyboard.press("3");
        await page.keyboard.press("u");
        check(await page.$$eval("fieldset.q.answered", (e) => e.length) === 0, "u did not undo the score");
      }
      for (const q of qs) {
        // numeric: 1-5 by item; options: first option (none / no).
        await page.keyboard.press(q.kind === "numeric" ? String(1 + ((i + 3) % q.max)) : "1");
      }
      check(await page.$$eval("fieldset.q.answered", (e) => e.length) === qs.length, "not every question shows answered");
      if (i === 0) await shot(page, "review-item");
      await page.keyboard.press("Control+Enter");
      await page.waitForFunction((prev) => { const el = document.getElementById("item"); return document.readyState === "complete" && (!el || el.dataset.id !== prev); }, id);
    }
    const progress = await page.textContent("#progress");
    check(progress.includes(`Done ${reviewN}`) || progress.replace(/\s+/g, " ").includes(`Done ${reviewN}`), "progress does not show " + reviewN + " done: " + progress);
    await shot(page, "review-after");
    check(problems.length === 0, problems.join("; "));
    await ctx.close();
    return { scored: [...seen] };
  },

  async pairwise_round(browser) {
    const { ctx, page, problems } = await newPage(browser);
    await loginByKeyboard(page, "reviewer");
    await page.goto(base + "/pairwise");
    const keys = ["ArrowLeft", "ArrowRight", "t"];
    const answered = [];
    for (let i = 0; i < pairsN; i++) {
      await page.waitForSelector("#pair");
      const id = await page.getAttribute("#pair", "data-id");
      const text = await page.textContent("#pair");
      for (const m of models) check(!text.includes(m), `model name ${m} visible before answering`);
      if (i === 0) await shot(page, "pairwise");
      await page.keyboard.press(keys[i % 3]);
      await page.waitForFunction((prev) => { const el = document.getElementById("pair"); return document.readyState === "complete" && (!el || el.dataset.id !== prev); }, id);
      await page.waitForSelector("#reveal");
      const reveal = await page.textContent("#reveal");
      check(models.some((m) => reveal.includes(m)), "names not revealed after answering: " + reveal);
      answered.push(id);
    }
    await shot(page, "pairwise-reveal");
    check(problems.length === 0, problems.join("; "));
    await ctx.close();
    return { answered };
  },

  async stored_xss_inert(browser) {
    const { ctx, page, problems } = await newPage(browser);
    await loginByKeyboard(page, "xss");
    await page.goto(base + "/review");
    let found = false;
    for (let i = 0; i < 200 && !found; i++) {
      await page.waitForSelector("#item");
      const prompt = await page.textContent("#prompt");
      if (prompt.includes("<script>")) {
        found = true;
        await shot(page, "xss-prompt-as-text");
        break;
      }
      const id = await page.getAttribute("#item", "data-id");
      await page.keyboard.press("s");
      await page.waitForFunction((prev) => { const el = document.getElementById("item"); return document.readyState === "complete" && (!el || el.dataset.id !== prev); }, id);
      if (!(await page.$("#item"))) break;
    }
    check(found, "the item with the script prompt never came up");
    const flag = await page.evaluate(() => window.__xss);
    check(flag === undefined, "injected script ran: window.__xss = " + flag);
    check(await page.$$eval("main script", (s) => s.length) === 0, "a <script> element was injected into the page");
    check(problems.filter((p) => p.startsWith("dialog")).length === 0, problems.join("; "));
    await ctx.close();
  },

  // The learning experiments' pages: a bandit's weights over time (the
  // chart and the table of weights in force, analysed by propensities) and
  // a shadow experiment's live-vs-shadow comparison per group.
  async learning_experiments(browser) {
    const { ctx, page, problems } = await newPage(browser);
    await loginByKeyboard(page, "engineer");
    const bandit = process.env.E2E_BANDIT_PAGE, shadow = process.env.E2E_SHADOW_PAGE;
    check(bandit && shadow, "E2E_BANDIT_PAGE and E2E_SHADOW_PAGE must name the pages");
    let resp = await page.goto(base + bandit);
    check(resp.status() === 200, `${bandit} answered ${resp.status()}`);
    await page.waitForLoadState("networkidle");
    check((await page.textContent("#bandit-method")).includes("propensities"), "the bandit page does not say it is analysed by the logged propensities");
    check(!(await page.$("#treatments")), "the bandit page shows the fixed-split table");
    const img = await page.$eval("#weights", (i) => ({ ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, src: i.src }));
    check(img.ok, "the weights chart did not load: " + img.src);
    const svg = await page.evaluate(async (src) => (await fetch(src)).text(), img.src);
    for (const want of ["Bandit weights in force", "text fast", "text typo"]) check(svg.includes(want), `weights chart lacks "${want}"`);
    check((svg.match(/<path/g) || []).length >= 2, "weights chart draws no lines");
    const weights = await page.$$eval("#bandit-weights tbody tr", (rows) => rows.map((r) => r.textContent.replace(/\s+/g, " ").trim()));
    check(weights.some((w) => w.includes("text") && w.includes("0.800")), "weights in force not shown: " + weights.join(" | "));
    await shot(page, "experiment-bandit");
    resp = await page.goto(base + shadow);
    check(resp.status() === 200, `${shadow} answered ${resp.status()}`);
    const rows = await page.$$eval("#shadow-strata tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    check(rows.length >= 1, "the shadow page has no live-vs-shadow rows");
    const text = rows.find((r) => r[0] === "text");
    check(text && +text[1] > 0 && text[2] !== text[3], "no text group with pairs and differing live/shadow QA: " + JSON.stringify(rows));
    await shot(page, "experiment-shadow");
    check(problems.length === 0, problems.join("; "));
    await ctx.close();
  },

  // The experiment form: validated as the engineer types with the API's own
  // errors (on the field that is wrong), a sample-size estimate, the JSON
  // view mirroring the form, and a canary created from it.
  async experiment_form(browser) {
    const { ctx, page, problems } = await newPage(browser);
    await loginByKeyboard(page, "engineer");
    await page.goto(base + "/experiments");
    await page.waitForSelector("#expform:not([hidden])");
    const valid = () => page.waitForFunction(() => document.getElementById("check").className === "ok");
    log("form: waiting for the example to validate");
    await valid();
    const size = await page.textContent("#sample-size");
    check(/[\d,]+ units per arm/.test(size), "no sample-size estimate: " + size);
    const weight = "#arms-edit tbody tr:nth-child(2) [data-key=weight]";
    log("form: zero weight");
    await page.fill(weight, "0");
    await page.waitForFunction(() => document.getElementById("check").className === "bad");
    const msg = await page.textContent("#check");
    check(msg.includes("weight must be > 0") && msg.includes("arms[1].weight"), "zero weight not refused with the API's error: " + msg);
    check(await page.$eval(weight, (e) => e.classList.contains("invalid") && e.nextElementSibling && e.nextElementSibling.classList.contains("field-error")), "the wrong field is not marked");
    check(await page.$eval("#create", (b) => b.disabled), "create is enabled on an invalid spec");
    await shot(page, "experiment-form-invalid");
    await page.fill(weight, "0.5");
    log("form: weight fixed");
    await valid();
    await page.fill("#expform [name=name]", "form canary");
    await page.selectOption("#expform [name=kind]", "canary");
    check(await page.isVisible("#expform .kind-canary"), "the canary ramp fields did not appear");
    log("form: canary");
    await page.click("#add-guardrail");
    await page.fill("#guardrails-edit tbody tr:last-child [data-key=max_increase]", "0.05");
    await page.fill("#expform [name=budget_premium]", "90");
    await valid();
    const json = JSON.parse(await page.inputValue("#spec-json"));
    check(json.name === "form canary" && json.ramp && json.ramp.steps.length === 4 && json.guardrails.some((g) => g.max_increase === 0.05) &&
      json.latency_budgets_ms && json.latency_budgets_ms.premium === 90000 && !("draft" in json.latency_budgets_ms),
      "the JSON view does not mirror the form: " + JSON.stringify(json));
    await shot(page, "experiment-form-valid");
    log("form: create");
    await page.click("#create");
    await page.waitForURL(/\/experiments\/form-canary-/, { timeout: 30000 })
      .catch(async (e) => { throw new Error("create did not open the experiment: " + (await page.textContent("#check").catch(() => page.url())) + " " + e.message); });
    log("form: created");
    check((await page.textContent("h1")).includes("form canary"), "the created experiment's page is not shown");
    check((await page.textContent("#status")) === "draft", "the experiment is not a draft");
    check(await page.isVisible("#ramp"), "the created experiment has no ramp");
    await shot(page, "experiment-form-created");
    log("form: done");
    check(problems.length === 0, problems.join("; "));
    await ctx.close();
  },

  async engineer_pages(browser) {
    const { ctx, page, problems } = await newPage(browser);
    await loginByKeyboard(page, "engineer");
    const pages = (process.env.E2E_ENGINEER_PAGES || "/dashboards").split(",");
    for (const p of pages) {
      const resp = await page.goto(base + p);
      check(resp.status() === 200, `${p} answered ${resp.status()}`);
      await page.waitForLoadState("networkidle");
      const broken = await page.$$eval("img", (imgs) => imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src));
      check(broken.length === 0, `${p}: images did not load: ${broken.join(", ")}`);
      const nodata = await page.$$eval(".nodata", (e) => e.length);
      check(nodata <= +(process.env.E2E_ALLOW_EMPTY || 0), `${p}: ${nodata} panels without data`);
      await shot(page, "engineer" + p.replace(/[^a-z0-9]+/gi, "-"));
    }
    check(problems.length === 0, problems.join("; "));
    await ctx.close();
  },
};

const results = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
});
try {
  for (const name of wanted.length ? wanted : Object.keys(scenarios)) {
    const fn = scenarios[name];
    if (!fn) { results.push({ name, ok: false, error: "no such scenario" }); continue; }
    const t0 = Date.now();
    try {
      const out = await fn(browser);
      results.push({ name, ok: true, ms: Date.now() - t0, ...(out || {}) });
      log("ok", name, Date.now() - t0, "ms");
    } catch (e) {
      results.push({ name, ok: false, ms: Date.now() - t0, error: String(e && e.stack || e) });
      log("FAIL", name, e);
    }
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ok: results.every((r) => r.ok), results }));
process.exit(results.every((r) => r.ok) ? 0 : 1);
