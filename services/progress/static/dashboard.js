// The progress dashboard: plain JavaScript over the progress JSON API, refreshed live.
// No build step: the page is small, and the API does the counting.
"use strict";

const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 5000);
const body = document.body;
const cohortId = body.dataset.cohort;
const state = { page: 1, pageSize: 50, sort: "name", order: "asc", filter: "", q: "" };

// The page's words in the operator's language, translated by the server (dashboard.py).
const MESSAGES = JSON.parse(document.getElementById("messages").textContent);
const LOCALE = body.dataset.locale || "en";
function t(key, params = {}) {
  return (MESSAGES[key] ?? key).replace(/%\((\w+)\)s/g, (_, name) => String(params[name] ?? ""));
}

const TILES = ["enrolled", "started", "modules_completed", "passed", "failed", "certified", "overdue", "withdrawn"]
  .map((key) => [key, t(key)]);
const TEST_STATES = { not_attempted: "not_attempted", in_progress: "in_progress", passed: "passed_test", failed: "failed_test" };

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin",
    headers: { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" } });
  if (response.status === 401) {  // signed out elsewhere, or the session ended: sign in again
    location.assign(`/dashboard/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

function pct(rate) { return `${Math.round((rate || 0) * 100)}%`; }

function renderTiles(counts) {
  const tiles = document.getElementById("tiles");
  tiles.replaceChildren(...TILES.map(([key, label]) => el("div", { class: `tile ${key}`, "data-count": key },
    el("b", {}, String(counts[key] ?? 0)),
    el("span", {}, key in (counts.rates || {}) ? `${label} · ${pct(counts.rates[key])}` : label))));
}

function progressBar(done, required) {
  const share = required ? done / required : 0;
  const bar = el("span", { class: "bar" }, el("i", { style: `width:${Math.round(share * 100)}%` }));
  return el("span", {}, bar, `${done}/${required}`);
}

function day(text) { return text ? text.slice(0, 10) : "–"; }

// A cmi5 course's AUs for one learner: a square per AU, coloured by its state, its title
// and state on hover; a long course (more than MAX_AU_SQUARES AUs) as counts per state.
const MAX_AU_SQUARES = 40;
function localised(title) { return title[LOCALE] ?? title.en ?? Object.values(title)[0] ?? ""; }
function auStates(course, states) {
  if (course.aus.length > MAX_AU_SQUARES) {
    const counts = {};
    for (const s of states) counts[s] = (counts[s] || 0) + 1;
    return el("span", { class: "au-counts" }, Object.entries(counts).map(([s, n]) => `${t(`au_${s}`)} ${n}`).join(" · "));
  }
  return el("span", { class: "aus" }, ...course.aus.map((au, i) => el("i", {
    class: `au ${states[i]}`, "data-au": au.id, title: `${localised(au.title)}: ${t(`au_${states[i]}`)}` })));
}

async function campaignPage() {
  const [totals, cohorts, agencies, provinces] = await Promise.all([
    getJSON("/campaign"), getJSON("/cohorts?page_size=1000"), getJSON("/rollups?by=agency"),
    getJSON("/rollups?by=province")]);
  renderTiles(totals);
  document.querySelector("#cohorts tbody").replaceChildren(...cohorts.items.map((c) => el("tr", {},
    el("td", {}, el("a", { href: `/dashboard/cohorts/${c.id}` }, c.name)), el("td", {}, c.agency),
    el("td", {}, c.province || "–"), el("td", {}, String(c.wave)), el("td", {}, String(c.enrolled)),
    el("td", {}, pct(c.rates.started)), el("td", {}, pct(c.rates.modules_completed)),
    el("td", {}, pct(c.rates.passed)), el("td", {}, pct(c.rates.certified)),
    el("td", { class: c.overdue ? "warn" : "" }, String(c.overdue)))));
  for (const [id, rows] of [["by-agency", agencies], ["by-province", provinces]]) {
    document.getElementById(id).replaceChildren(
      el("thead", {}, el("tr", {}, ...["", t("enrolled"), t("certified"), t("overdue")].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, el("td", {}, r.key || "–"), el("td", {}, String(r.enrolled)),
        el("td", {}, pct(r.rates.certified)), el("td", {}, String(r.overdue))))));
  }
}

function renderChart(days) {
  const svg = document.getElementById("chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  if (!days.length) return;
  let enrolled = 0, completed = 0, certified = 0;
  const series = { enrolled: [], active: [], completed: [], certified: [] };
  for (const d of days) {
    enrolled += d.enrolled; completed += d.completed; certified += d.certified;
    series.enrolled.push(enrolled); series.active.push(d.active);
    series.completed.push(completed); series.certified.push(certified);
  }
  const max = Math.max(1, ...series.enrolled, ...series.active);
  const x = (i) => 40 + (days.length === 1 ? 0 : (i * 840) / (days.length - 1));
  const y = (v) => 200 - (v * 180) / max;
  for (const [name, values] of Object.entries(series)) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("class", `line ${name}`);
    path.setAttribute("d", values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(""));
    svg.append(path);
  }
  for (const [i, d] of days.entries()) {
    if (days.length > 12 && i % Math.ceil(days.length / 12)) continue;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x(i)); label.setAttribute("y", 215); label.setAttribute("font-size", "10");
    label.textContent = d.day.slice(5);
    svg.append(label);
  }
}

function learnerQuery() {
  const params = new URLSearchParams({ page: state.page, page_size: state.pageSize, sort: state.sort, order: state.order });
  if (state.filter) params.set("state", state.filter);
  if (state.q) params.set("q", state.q);
  return params;
}

async function cohortPage() {
  const base = `/cohorts/${cohortId}`;
  const [cohort, days, learners] = await Promise.all([
    getJSON(base), getJSON(`${base}/series`), getJSON(`${base}/learners?${learnerQuery()}`)]);
  document.getElementById("title").textContent = `${cohort.name} · ${cohort.agency}${cohort.province ? " · " + cohort.province : ""}`;
  renderTiles(cohort);
  renderChart(days);
  const csv = learnerQuery(); csv.delete("page"); csv.delete("page_size");
  document.getElementById("csv").href = `${base}/learners.csv?${csv}`;
  document.querySelector("#learners tbody").replaceChildren(...learners.items.map((l) => el("tr",
    { class: l.overdue ? "overdue" : l.status, "data-registration": l.registration },
    el("td", {}, l.name || "–", l.status === "withdrawn" ? el("small", {}, ` ${t("withdrawn_mark")}`) : ""), el("td", {}, l.organisation || "–"),
    el("td", {}, progressBar(l.modules_completed, l.modules_required)),
    ...(learners.course ? [el("td", {}, auStates(learners.course, l.au_states))] : []),
    el("td", {}, t(TEST_STATES[l.final_test_status] || l.final_test_status) + (l.final_test_best_score != null ? ` (${Math.round(l.final_test_best_score * 100)}%)` : "")),
    el("td", {}, l.certificate_status === "valid" ? l.certificate_number : "–"),
    el("td", {}, day(l.deadline)), el("td", {}, day(l.last_activity_at)))));
  document.getElementById("aus-heading").hidden = !learners.course;
  const pages = Math.max(1, Math.ceil(learners.total / state.pageSize));
  document.getElementById("page").textContent = t("page", { page: state.page, pages, total: learners.total });
  document.getElementById("prev").disabled = state.page <= 1;
  document.getElementById("next").disabled = state.page >= pages;
  for (const th of document.querySelectorAll("#learners th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === state.sort);
    th.classList.toggle("desc", th.dataset.sort === state.sort && state.order === "desc");
  }
}

function wireCohortControls(refresh) {
  for (const th of document.querySelectorAll("#learners th[data-sort]")) {
    th.addEventListener("click", () => {
      state.order = state.sort === th.dataset.sort && state.order === "asc" ? "desc" : "asc";
      state.sort = th.dataset.sort; state.page = 1; refresh();
    });
  }
  const form = document.getElementById("filters");
  form.state.addEventListener("change", () => { state.filter = form.state.value; state.page = 1; refresh(); });
  form.q.addEventListener("input", () => { state.q = form.q.value.trim(); state.page = 1; refresh(); });
  form.addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("prev").addEventListener("click", () => { state.page -= 1; refresh(); });
  document.getElementById("next").addEventListener("click", () => { state.page += 1; refresh(); });
}

async function main() {
  const isCohort = body.dataset.page === "cohort";
  document.getElementById(isCohort ? "cohort" : "campaign").hidden = false;
  const render = isCohort ? cohortPage : campaignPage;
  const refresh = async () => {
    try {
      await render();
      document.getElementById("updated").textContent = t("updated", { time: new Date().toLocaleTimeString(LOCALE) });
      body.dataset.loaded = "true";
    } catch (error) {
      document.getElementById("updated").textContent = t("update_failed", { error: error.message });
    }
  };
  if (isCohort) wireCohortControls(refresh);
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

main();
