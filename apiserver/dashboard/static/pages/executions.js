// Executions: each dispatch of a job to the fleet, newest first, with how far it got
// (succeeded, failed, still running, not answered yet, of the PCs it targeted). Filters,
// page size and cursor live in the URL; a row opens the execution's results in Activity.

import {h} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {cursorPager, pageSizeSelect} from "../lib/pager.js";
import {linkRows} from "../lib/row_link.js";
import {coverageBar} from "../lib/coverage_bar.js";
import {EXECUTION_STATUSES, execChip} from "../lib/execution_status.js";
import {formatRelative, formatUtc} from "../lib/format.js";

export const title = "Executions";

const PAGE = {choices: [25, 50, 100, 200], fallback: 50};
// Per-PC rows are read only for executions still under way (to count runs in flight),
// a few at a time.
const ACTIVE = new Set(["pending", "running"]);
const PARALLEL = 4;

export async function render(view) {
  const jobId = view.query.get("job_id") || null;
  const status = view.query.get("status") || null;
  const limit = readLimit(view.query);

  view.root.append(h("h1", {class: "page-title"}, "Executions"));
  view.root.append(await filtersForm(view));

  view.card("Executions", {
    className: "card-wide executions-card",
    async load() {
      const {data, headers} = await apiGet("/api/executions", {
        job_id: jobId,
        status,
        limit,
        cursor: view.query.get("cursor"),
      });
      const running = await mapLimited(data, PARALLEL, inFlight);
      return {rows: data.map((e, i) => ({...e, running: running[i]})), next: headers.get("X-Next-Cursor")};
    },
    isEmpty: () => false,
    render(data, body) {
      body.append(
        h(
          "p",
          {class: "card-note"},
          "Progress counts the targeted PCs: succeeded, failed, running now, and not answered yet. ",
          "Open a row for its results.",
        ),
        executionTable(view, data.rows, {filtered: Boolean(jobId || status), deep: view.query.has("cursor")}),
        h(
          "div",
          {class: "card-foot pager-row"},
          cursorPager(view, {nextCursor: data.next}),
          pageSizeSelect(view, PAGE),
        ),
      );
    },
  });
}

async function filtersForm(view) {
  const form = filterBar(view, [
    {name: "job_id", label: "Job", type: "search", placeholder: "job id (exact)"},
    {
      name: "status",
      label: "Status",
      type: "select",
      options: [{value: "", label: "Any status"}, ...EXECUTION_STATUSES.map((s) => ({value: s.value, label: s.label}))],
    },
  ]);
  try {
    const {data} = await apiGet("/api/jobs");
    const list = h("datalist", {id: "execution-jobs"}, data.map((job) => h("option", {value: job.id})));
    form.querySelector("input[name=job_id]").setAttribute("list", list.id);
    form.append(list);
  } catch {
    // Suggestions only: without them the field still filters.
  }
  return form;
}

// How many of an execution's runs are in flight (null when not read: it is over).
async function inFlight(execution) {
  if (!ACTIVE.has(execution.status)) return null;
  const {data} = await apiGet(`/api/executions/${encodeURIComponent(execution.exec_id)}`);
  return data.results.filter((r) => !r.finished_at).length;
}

function executionTable(view, rows, {filtered, deep}) {
  const results = (e) => `/activity?exec_id=${encodeURIComponent(e.exec_id)}`;
  const table = dataTable({
    caption: "Executions, newest first",
    rows,
    empty: deep ? "No older executions." : filtered ? "No executions match these filters." : "No executions yet.",
    columns: [
      {
        key: "exec_id",
        label: "Execution",
        className: "cell-mono",
        render: (e) => {
          const a = view.link(results(e), e.exec_id.slice(0, 8));
          a.title = `Results of execution ${e.exec_id}`;
          return a;
        },
      },
      {
        key: "job_id",
        label: "Job",
        render: (e) =>
          h("span", {class: "two-line"}, view.link(`/jobs?job=${encodeURIComponent(e.job_id)}`, e.job_id), h("span", {class: "sub"}, e.version)),
      },
      {
        key: "initiated_at",
        label: "Initiated (UTC)",
        render: (e) =>
          h(
            "span",
            {class: "two-line"},
            h("time", {datetime: e.initiated_at, title: formatRelative(e.initiated_at)}, formatUtc(e.initiated_at).slice(0, 19)),
            h("span", {class: "sub"}, `by ${e.initiated_by}`),
          ),
      },
      {key: "status", label: "Status", render: (e) => execChip(e.status)},
      {key: "progress", label: "Progress", className: "cov-cell", render: progressCell},
    ],
  });
  return linkRows(view, table, rows, results);
}

function progressCell(e) {
  const running = e.running ?? 0;
  return coverageBar(
    {
      total: e.target_count,
      ok: e.success_count,
      fail: e.failure_count,
      running,
      pending: Math.max(0, e.target_count - e.success_count - e.failure_count - running),
    },
    {compact: true, name: "Progress"},
  );
}

async function mapLimited(items, parallel, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }
  await Promise.all(Array.from({length: Math.min(parallel, items.length)}, worker));
  return out;
}

function readLimit(query) {
  const asked = Number.parseInt(query.get("limit") ?? "", 10);
  return PAGE.choices.includes(asked) ? asked : PAGE.fallback;
}
