// Audit: what operators, the scheduler and agents did, newest first. Actor, action,
// target and payload patterns, the time span, page size and cursor live in the URL; each
// payload opens in place, and what it names (a job, a schedule, an execution) links on.

import {h, append} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {cursorPager, pageSizeSelect} from "../lib/pager.js";
import {sinceBound, sinceField, sinceValue} from "../lib/since_filter.js";
import {formatNumber, formatRelative, formatUtc} from "../lib/format.js";

export const title = "Audit";

const PAGE = {choices: [50, 200, 1000], fallback: 50};
const PATTERNS = ["actor", "action", "target", "payload"];
// The actors kanade's parts write as (suggestions; the field takes any pattern).
const ACTORS = ["scheduler", "operator", "self-update", "agent"];
const CANDIDATES = 10_000; // entries one page of a pattern search examines at most
const PREVIEW_CHARS = 120;

export function render(view) {
  const filters = Object.fromEntries(PATTERNS.map((key) => [key, view.query.get(key) || null]));
  const since = sinceValue(view.query.get("since"));
  const limit = readLimit(view.query);
  const filtered = Object.values(filters).some(Boolean);
  // Payloads the reader opened stay open across refreshes.
  const opened = new Set();

  view.root.append(h("h1", {class: "page-title"}, "Audit"));
  const form = filterBar(view, [
    {name: "actor", label: "Actor", type: "search", placeholder: "e.g. ^operator$"},
    {name: "action", label: "Action", type: "search", placeholder: "regex, e.g. exec"},
    {name: "target", label: "Target", type: "search", placeholder: "regex"},
    {name: "payload", label: "Payload", type: "search", placeholder: "regex over the JSON"},
    sinceField("24h", "Occurred"),
  ]);
  const actors = h("datalist", {id: "audit-actors"}, ACTORS.map((a) => h("option", {value: `^${a}$`}, a)));
  form.querySelector("input[name=actor]").setAttribute("list", actors.id);
  form.append(actors);
  view.root.append(form);

  view.card("Audit trail", {
    className: "card-wide audit-card",
    load: () =>
      apiGet("/api/audit", {...filters, since: sinceBound(since), limit, cursor: view.query.get("cursor")}),
    isEmpty: () => false,
    render(rows, body, {headers}) {
      const next = headers.get("X-Next-Cursor");
      const deep = view.query.has("cursor");
      append(body, [
        dataTable({
          caption: "Audit entries, newest first",
          rows,
          empty: deep
            ? "No older entries."
            : filtered
              ? "No entries match these filters."
              : "No audit entries in this time range.",
          columns: [
            {key: "occurred_at", label: "When (UTC)", render: (r) => timeCell(r.occurred_at)},
            {key: "actor", label: "Actor", render: (r) => h("span", {class: "actor"}, r.actor)},
            {key: "action", label: "Action", render: (r) => h("code", {class: "action"}, r.action)},
            {key: "target", label: "Target", render: (r) => targetCell(view, r)},
            {key: "payload", label: "Payload", className: "payload-col", render: (r) => payloadCell(view, r, opened)},
          ],
        }),
        filtered && next && rows.length < limit
          ? h(
              "p",
              {class: "card-note", role: "note"},
              `A page of a pattern search examines at most ${formatNumber(CANDIDATES)} entries, so it can come up short: Older searches further back.`,
            )
          : null,
        h("div", {class: "card-foot pager-row"}, cursorPager(view, {nextCursor: next}), pageSizeSelect(view, PAGE)),
      ]);
    },
  });
}

function timeCell(iso) {
  if (!iso) return null;
  return h("time", {datetime: iso, title: formatRelative(iso)}, formatUtc(iso).slice(0, 19));
}

// Targets name a job for job actions and scheduler fires, a schedule for schedule actions.
function targetCell(view, row) {
  const target = row.target;
  if (!target) return null;
  if (row.action === "exec" || row.action.startsWith("job")) {
    return view.link(`/jobs?job=${encodeURIComponent(target)}`, target);
  }
  if (row.action.startsWith("schedule")) {
    return view.link(`/schedules/${encodeURIComponent(target)}`, target);
  }
  return target;
}

function payloadCell(view, row, opened) {
  const payload = row.payload;
  if (payload === null || payload === undefined) return h("span", {class: "muted"}, "—");
  const compact = JSON.stringify(payload);
  const preview = compact.length > PREVIEW_CHARS ? `${compact.slice(0, PREVIEW_CHARS)}…` : compact;
  const details = h(
    "details",
    {class: "payload-details", open: opened.has(row.id)},
    h("summary", null, h("code", {class: "payload-preview"}, preview)),
    execLink(view, payload),
    h("pre", {class: "payload-pre"}, JSON.stringify(payload, null, 2)),
  );
  details.addEventListener("toggle", () => {
    if (details.open) opened.add(row.id);
    else opened.delete(row.id);
  });
  return details;
}

// A scheduler fire's payload names the execution it started: its results are one click on.
function execLink(view, payload) {
  const execId = typeof payload === "object" && payload !== null ? payload.exec_id : null;
  if (typeof execId !== "string" || !execId) return null;
  return h(
    "p",
    {class: "payload-links"},
    view.link(`/activity?exec_id=${encodeURIComponent(execId)}`, "Results of this execution"),
  );
}

function readLimit(query) {
  const asked = Number.parseInt(query.get("limit") ?? "", 10);
  return PAGE.choices.includes(asked) ? asked : PAGE.fallback;
}
