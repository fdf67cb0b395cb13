// Activity: command results across the fleet, newest first. Every filter the API offers
// (PC, job, execution, stdout and stderr patterns, status, start time) lives in the URL
// with the page size and the cursor, so a view can be shared and Back walks through it.
// The status buttons count the runs still in flight; each row opens the result.

import {h, append} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {cursorPager, pageSizeSelect} from "../lib/pager.js";
import {toggleGroup} from "../lib/toggle_group.js";
import {linkRows} from "../lib/row_link.js";
import {runChip} from "../lib/run_status.js";
import {sinceBound, sinceField, sinceValue} from "../lib/since_filter.js";
import {formatDuration, formatNumber, formatRelative, formatUtc} from "../lib/format.js";

export const title = "Activity";

const PAGE = {choices: [50, 200, 1000], fallback: 50};
const PATTERNS = ["pc_id", "job_id", "exec_id", "stdout", "stderr"];
const STATUSES = [
  {value: "", label: "All"},
  {value: "success", label: "Succeeded", tone: "ok"},
  {value: "failure", label: "Failed", tone: "bad"},
  {value: "running", label: "Running"},
];
// In-flight runs counted at most (the API's page limit); more shows as "1,000+".
const RUNNING_CAP = 1000;
// What one page of a pattern search examines at most (api.md §3.6).
const SEARCH_WINDOW = {ids: 10_000, output: 1_000};

export function render(view) {
  const filters = Object.fromEntries(PATTERNS.map((key) => [key, view.query.get(key) || null]));
  const status = STATUSES.some((s) => s.value && s.value === view.query.get("status"))
    ? view.query.get("status")
    : null;
  // An execution's results are wanted whole, however old; otherwise the last day.
  const fallbackSince = filters.exec_id ? "all" : "24h";
  const since = sinceValue(view.query.get("since"), fallbackSince);
  const limit = readLimit(view.query);
  const filtered = Object.values(filters).some(Boolean);

  view.root.append(h("h1", {class: "page-title"}, "Activity"));
  view.root.append(
    filterBar(view, [
      {name: "pc_id", label: "PC", type: "search", placeholder: "regex, e.g. ^sim-0001"},
      {name: "job_id", label: "Job", type: "search", placeholder: "regex"},
      {name: "exec_id", label: "Execution", type: "search", placeholder: "regex"},
      {name: "stdout", label: "Stdout", type: "search", placeholder: "regex"},
      {name: "stderr", label: "Stderr", type: "search", placeholder: "regex"},
      sinceField(fallbackSince),
    ]),
  );

  view.card("Results", {
    className: "card-wide activity-card",
    async load() {
      const params = {...filters, since: sinceBound(since), limit};
      const [page, running] = await Promise.all([
        apiGet("/api/results", {...params, status, cursor: view.query.get("cursor")}),
        apiGet("/api/results", {...params, status: "running", limit: RUNNING_CAP}),
      ]);
      return {
        rows: page.data,
        next: page.headers.get("X-Next-Cursor"),
        running: running.data.length,
        runningMore: Boolean(running.headers.get("X-Next-Cursor")),
      };
    },
    isEmpty: () => false, // the status buttons stay, so another status is one click away
    render(data, body) {
      const pattern = filtered && Boolean(data.next) && data.rows.length < limit;
      append(body, [
        h(
          "div",
          {class: "activity-bar"},
          toggleGroup({
            label: "Status",
            className: "status-chips",
            value: status ?? "",
            options: STATUSES.map((s) => statusOption(s, data)),
            onChange: (value) => view.setQuery({status: value, cursor: null}),
          }),
          h("span", {class: "activity-note muted"}, rangeNote(since, filtered)),
        ),
        resultTable(view, data.rows, {filtered: filtered || status, deep: view.query.has("cursor")}),
        pattern
          ? h(
              "p",
              {class: "card-note", role: "note"},
              `A page of a pattern search examines at most ${formatNumber(
                filters.stdout || filters.stderr ? SEARCH_WINDOW.output : SEARCH_WINDOW.ids,
              )} results, so it can come up short: Older searches further back.`,
            )
          : null,
        h(
          "div",
          {class: "card-foot pager-row"},
          cursorPager(view, {nextCursor: data.next}),
          pageSizeSelect(view, PAGE),
        ),
      ]);
    },
  });
}

function statusOption(option, data) {
  if (option.value !== "running") return option;
  const more = data.runningMore;
  return {
    ...option,
    label: more ? `Running ${formatNumber(RUNNING_CAP)}+` : "Running",
    count: more ? null : data.running,
    tone: data.running ? "info" : null,
  };
}

function rangeNote(since, filtered) {
  const what = filtered ? "Matching runs" : "Runs";
  if (since === "all") return `${what} of all time, newest first.`;
  return `${what} started in the ${sinceWords(since)}, newest first.`;
}

function sinceWords(since) {
  return {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}[since];
}

function resultTable(view, rows, {filtered, deep}) {
  const detail = (r) => `/activity/${encodeURIComponent(r.result_id)}`;
  const table = dataTable({
    caption: "Command results, newest first",
    rows,
    empty: deep ? "No older results." : filtered ? "No results match these filters." : "No runs in this time range.",
    columns: [
      {
        key: "result_id",
        label: "Result",
        className: "cell-mono",
        render: (r) => {
          const a = view.link(detail(r), r.result_id.slice(0, 8));
          a.title = r.result_id;
          return a;
        },
      },
      {key: "status", label: "Status", render: runChip},
      {key: "pc_id", label: "PC", render: (r) => view.link(`/agents/${encodeURIComponent(r.pc_id)}`, r.pc_id)},
      {key: "job_id", label: "Job", render: jobCell},
      {key: "exec_id", label: "Execution", className: "cell-mono", render: (r) => execCell(view, r)},
      {key: "started_at", label: "Started (UTC)", render: (r) => timeCell(r.started_at)},
      {key: "duration", label: "Duration", align: "right", render: durationCell},
      {key: "output", label: "Output", className: "output-cell", render: outputCell},
    ],
  });
  return linkRows(view, table, rows, detail);
}

function jobCell(r) {
  if (!r.job_id) return null;
  return h("span", {class: "job-cell"}, r.job_id, r.version ? h("span", {class: "muted"}, ` ${r.version}`) : null);
}

function execCell(view, r) {
  if (!r.exec_id) return h("span", {class: "muted"}, "ad hoc");
  const a = view.link(`/activity?exec_id=${encodeURIComponent(r.exec_id)}`, r.exec_id.slice(0, 8));
  a.title = `Every result of execution ${r.exec_id}`;
  return a;
}

function timeCell(iso) {
  if (!iso) return null;
  return h("time", {datetime: iso, title: formatRelative(iso)}, formatUtc(iso).slice(0, 19));
}

function durationCell(r) {
  if (!r.started_at) return null;
  if (!r.finished_at) {
    return h("span", {class: "muted", title: "Still running"}, `${formatDuration(Date.now() - Date.parse(r.started_at))} so far`);
  }
  return formatDuration(Date.parse(r.finished_at) - Date.parse(r.started_at));
}

// A pattern search shows where it matched; otherwise the first line of the output.
function outputCell(r) {
  const match = r.stdout_match ?? r.stderr_match;
  if (match) {
    return h(
      "span",
      {class: `output-preview${r.stdout_match ? "" : " output-err"}`},
      match.clipped_start ? "…" : "",
      oneLine(match.before),
      h("mark", null, oneLine(match.matched)),
      oneLine(match.after),
      match.clipped_end ? "…" : "",
    );
  }
  const source = r.stdout.trim() ? "stdout" : r.stderr.trim() ? "stderr" : null;
  if (!source) return h("span", {class: "muted"}, r.finished_at ? "no output" : "");
  const text = r[source].trim();
  const line = text.split(/\r?\n/)[0];
  const cut = r[`${source}_truncated`] || line.length < text.length;
  return h(
    "span",
    {class: `output-preview${source === "stderr" ? " output-err" : ""}`, title: text.slice(0, 200)},
    line,
    cut ? " …" : "",
  );
}

function oneLine(text) {
  return (text ?? "").replace(/\s*\r?\n\s*/g, " ⏎ ");
}

function readLimit(query) {
  const asked = Number.parseInt(query.get("limit") ?? "", 10);
  return PAGE.choices.includes(asked) ? asked : PAGE.fallback;
}
