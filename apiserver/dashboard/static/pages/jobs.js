// Jobs: the catalog of job manifests (KV jobs) with what uses them and how they ran. The
// table gives the overview; each script opens below it (?job=<id> opens one, so links from
// schedules land on it). Search and shell filter in the URL.

import {exactPattern} from "../lib/exact_pattern.js";
import {h, chip} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {formatDuration, formatNumber} from "../lib/format.js";

export const title = "Jobs";

const SHELLS = ["powershell", "pwsh", "cmd", "sh"];

export function render(view) {
  const filters = {
    q: (view.query.get("q") ?? "").trim().toLowerCase(),
    shell: view.query.get("shell") || null,
    job: view.query.get("job") || null,
  };
  view.root.append(
    h("h1", {class: "page-title"}, "Jobs"),
    filterBar(
      view,
      [
        {name: "q", label: "Search", type: "search", placeholder: "job id or description"},
        {
          name: "shell",
          label: "Shell",
          type: "select",
          options: [{value: "", label: "Any shell"}, ...SHELLS.map((value) => ({value}))],
        },
      ],
      {resetKeys: ["job"]},
    ),
  );
  catalogCard(view, filters);
  scriptsCard(view, filters);
}

function matches(filters, job) {
  if (filters.shell && job.execute?.shell !== filters.shell) return false;
  if (!filters.q) return true;
  return [job.id, job.description].some((v) => String(v ?? "").toLowerCase().includes(filters.q));
}

// The catalog with the schedules that use each job and its finished runs of the last day
// (one call for every job: the run-duration statistics). Without those, the columns say so.
async function loadCatalog() {
  const [jobs, schedules, durations] = await Promise.allSettled([
    apiGet("/api/jobs"),
    apiGet("/api/schedules"),
    apiGet("/api/health/scan_durations"),
  ]);
  if (jobs.status === "rejected") throw jobs.reason;
  const usedBy = new Map();
  for (const s of schedules.status === "fulfilled" ? schedules.value.data : []) {
    usedBy.set(s.job_id, [...(usedBy.get(s.job_id) ?? []), s.id]);
  }
  const runs = new Map(
    durations.status === "fulfilled" ? durations.value.data.map((d) => [d.job_id, d]) : [],
  );
  return jobs.value.data.map((job) => ({
    ...job,
    schedules: schedules.status === "fulfilled" ? usedBy.get(job.id) ?? [] : null,
    runs: durations.status === "fulfilled" ? runs.get(job.id) ?? {count: 0} : null,
  }));
}

function catalogCard(view, filters) {
  view.card("Job catalog", {
    className: "card-wide",
    load: loadCatalog,
    emptyText: "No jobs in KV yet.",
    render(jobs, body) {
      const shown = jobs.filter((job) => matches(filters, job));
      body.append(
        dataTable({
          caption: "Job catalog",
          columns: [
            {key: "id", label: "Job", render: (j) => jobCell(view, j, filters)},
            {key: "version", label: "Version"},
            {key: "shell", label: "Shell", render: (j) => j.execute?.shell},
            {key: "timeout", label: "Timeout", align: "right", render: (j) => j.execute?.timeout},
            {key: "run_as", label: "Runs as", render: (j) => j.execute?.run_as ?? "system"},
            {key: "live", label: "Now", render: liveCell},
            {key: "runs", label: "Runs, 24 h", align: "right", render: (j) => runsCell(view, j)},
            {key: "p95", label: "p95", align: "right", render: (j) => (j.runs?.p95_ms === undefined ? "—" : formatDuration(j.runs.p95_ms))},
            {key: "schedules", label: "Used by", className: "wrap", render: (j) => usedByCell(view, j)},
          ],
          rows: shown,
          empty: "No job matches these filters.",
        }),
      );
    },
  });
}

function jobCell(view, job, filters) {
  const link = view.link(jobHref(job.id), job.id);
  if (job.id === filters.job) link.setAttribute("aria-current", "true");
  return h("span", {class: "two-line"}, link, job.description ? h("span", {class: "sub"}, job.description) : null);
}

function jobHref(id) {
  return `/jobs?job=${encodeURIComponent(id)}`;
}

function liveCell(job) {
  const {running = 0, pending = 0} = job.live ?? {};
  if (!running && !pending) return h("span", {class: "muted"}, "idle");
  return h(
    "span",
    {class: "chips"},
    running ? chip(`${formatNumber(running)} running`, "info") : null,
    pending ? chip(`${formatNumber(pending)} pending`, "warn") : null,
  );
}

function runsCell(view, job) {
  if (job.runs === null) return h("span", {class: "muted", title: "run statistics could not be loaded"}, "—");
  if (!job.runs.count) return h("span", {class: "muted"}, "0");
  return view.link(`/activity?job_id=${encodeURIComponent(exactPattern(job.id))}`, formatNumber(job.runs.count));
}

function usedByCell(view, job) {
  if (job.schedules === null) return h("span", {class: "muted"}, "—");
  if (!job.schedules.length) return h("span", {class: "muted"}, "no schedule");
  return h(
    "span",
    {class: "link-list"},
    job.schedules.map((id) => view.link(`/schedules/${encodeURIComponent(id)}`, id)),
  );
}

// --------------------------------------------------------------------------- scripts

function scriptsCard(view, filters) {
  const open = new Set(filters.job ? [filters.job] : []); // kept across refreshes
  let scrolled = false;
  view.card("Scripts", {
    className: "card-wide",
    load: () => apiGet("/api/jobs"),
    emptyText: "No jobs in KV yet.",
    render(jobs, body) {
      const shown = jobs.filter((job) => matches(filters, job) || job.id === filters.job);
      if (filters.job && !jobs.some((j) => j.id === filters.job)) {
        body.append(h("p", {class: "notice-line", role: "note"}, `No job "${filters.job}" in the catalog.`));
      }
      const blocks = shown.map((job) => scriptBlock(job, open));
      body.append(...blocks);
      if (!shown.length) body.append(h("p", {class: "card-state"}, "No job matches these filters."));
      const target = blocks.find((b) => b.dataset.job === filters.job);
      if (target && !scrolled) {
        scrolled = true;
        requestAnimationFrame(() => target.scrollIntoView({block: "start"}));
      }
    },
  });
}

function scriptBlock(job, open) {
  const exec = job.execute ?? {};
  const lines = exec.script ? exec.script.split(/\r?\n/).length : 0;
  const what = exec.script ? `${lines} ${lines === 1 ? "line" : "lines"}` : "script object";
  const details = h(
    "details",
    {class: "script-block", id: `job-${job.id}`, dataset: {job: job.id}, open: open.has(job.id)},
    h(
      "summary",
      null,
      h("span", {class: "script-id"}, job.id),
      h("span", {class: "muted"}, ` v${job.version} · ${exec.shell} · ${what}`),
    ),
    h(
      "dl",
      {class: "facts script-facts"},
      [
        ["Timeout", exec.timeout],
        ["Runs as", exec.run_as ?? "system"],
        exec.cwd ? ["Working directory", h("code", null, exec.cwd)] : null,
        ["Tier", job.tier ?? "endpoint"],
        job.inventory ? ["Inventory", "yes (the job reports inventory)"] : null,
      ]
        .filter(Boolean)
        .map(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
    ),
    exec.script
      ? h("pre", {class: "code-block", "aria-label": `Script of ${job.id}`}, exec.script)
      : h(
          "p",
          {class: "muted"},
          "The script is the object ",
          h("code", null, exec.script_object),
          " in the scripts store; its body is not mirrored here.",
        ),
  );
  details.addEventListener("toggle", () => {
    if (details.open) open.add(job.id);
    else open.delete(job.id);
  });
  return details;
}
