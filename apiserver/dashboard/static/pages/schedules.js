// Schedules: every valid schedule with its status and next fire, the soonest fires across
// the fleet, each schedule's coverage (its own card: that endpoint is the slow one, so the
// rest shows first) and what the scheduler refused. Search and status filter in the URL.

import {h, chip} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {formatNumber, formatUtc, timeElement} from "../lib/format.js";
import {describeTarget, describeWhen, describeZone, triggerKind} from "../lib/schedule_text.js";
import {SCHEDULE_STATES, scheduleState, stateChip} from "../lib/schedule_state.js";
import {coverageBar} from "../lib/coverage_bar.js";
import {freezeBanner} from "../lib/freeze_banner.js";

export const title = "Schedules";

const UPCOMING_SCAN = 100; // the soonest fires read to find each schedule's next one
const UPCOMING_ROWS = 10;

export function render(view) {
  const filters = {q: (view.query.get("q") ?? "").trim().toLowerCase(), status: view.query.get("status") || null};
  view.root.append(h("h1", {class: "page-title"}, "Schedules"));
  freezeBanner(view);
  view.root.append(
    filterBar(
      view,
      [
        {name: "q", label: "Search", type: "search", placeholder: "schedule or job id"},
        {
          name: "status",
          label: "Status",
          type: "select",
          options: [{value: "", label: "Any status"}].concat(
            Object.entries(SCHEDULE_STATES).map(([value, s]) => ({value, label: s.label})),
          ),
        },
      ],
      {resetKeys: []},
    ),
  );
  scheduleList(view, filters);
  coverageCard(view, filters);
  // Two short cards side by side across the page, rather than two of three grid columns.
  view.root.append(h("div", {class: "card-pair"}, upcomingCard(view), rejectsCard(view)));
}

function matches(filters, schedule) {
  if (!filters.q) return true;
  return [schedule.id, schedule.job_id].some((v) => String(v ?? "").toLowerCase().includes(filters.q));
}

// --------------------------------------------------------------------------- list

function scheduleList(view, filters) {
  view.card("All schedules", {
    className: "card-wide",
    async load() {
      const [list, freeze, upcoming] = await Promise.all([
        apiGet("/api/schedules"),
        apiGet("/api/freeze"),
        apiGet("/api/schedules/upcoming", {limit: UPCOMING_SCAN}),
      ]);
      const now = Date.now();
      const rows = list.data.map((s) => ({...s, state: scheduleState(s, freeze.data, now)}));
      const next = new Map();
      for (const fire of upcoming.data) if (!next.has(fire.id)) next.set(fire.id, fire.at);
      // A calendar schedule may fire later than the soonest fires read: ask it directly.
      const unseen = rows.filter(
        (s) => triggerKind(s.when) === "calendar" && !next.has(s.id) && ["enabled", "frozen", "waiting"].includes(s.state),
      );
      const previews = await Promise.all(
        unseen.map((s) => apiGet(`/api/schedules/${encodeURIComponent(s.id)}/preview`, {count: 1})),
      );
      previews.forEach(({data}) => data.fires.length && next.set(data.id, data.fires[0]));
      return rows.map((s) => ({...s, next: next.get(s.id) ?? null}));
    },
    emptyText: "No schedules in KV yet.",
    render(rows, body) {
      const shown = rows.filter((s) => matches(filters, s) && (!filters.status || s.state === filters.status));
      body.append(
        statusSummary(view, rows),
        dataTable({
          caption: "Schedules",
          columns: [
            {key: "id", label: "Schedule", render: (s) => scheduleLink(view, s.id)},
            {key: "when", label: "When", render: whenCell},
            {key: "job_id", label: "Job", render: (s) => view.link(`/jobs?job=${encodeURIComponent(s.job_id)}`, s.job_id)},
            {key: "target", label: "Target", render: (s) => describeTarget(s.target, s.rollout)},
            {key: "state", label: "Status", render: (s) => stateChip(s.state)},
            {key: "next", label: "Next fire", render: nextCell},
          ],
          rows: shown,
          empty: "No schedule matches these filters.",
        }),
      );
    },
  });
}

function statusSummary(view, rows) {
  const counts = new Map();
  for (const s of rows) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const parts = Object.keys(SCHEDULE_STATES)
    .filter((state) => counts.has(state))
    .map((state) => {
      const label = `${formatNumber(counts.get(state))} ${SCHEDULE_STATES[state].label}`;
      return h(
        "a",
        {href: `/schedules?status=${state}`, class: "status-count", "aria-label": `${label}: show only these`},
        stateChip(state),
        ` ${formatNumber(counts.get(state))}`,
      );
    });
  return h("p", {class: "summary"}, `${formatNumber(rows.length)} schedules:`, parts);
}

function whenCell(s) {
  return h("span", {class: "two-line"}, describeWhen(s.when), h("span", {class: "sub"}, describeZone(s.tz)));
}

function nextCell(s) {
  if (s.next) return h("span", {class: "two-line"}, h("time", {datetime: s.next}, formatUtc(s.next).slice(0, 16)), h("span", {class: "sub"}, timeElement(s.next)));
  const kind = triggerKind(s.when);
  if (s.state === "agent") return h("span", {class: "muted"}, "on the agents");
  if (s.state === "paused" || s.state === "ended") return h("span", {class: "muted"}, "none");
  if (kind === "reconcile") return h("span", {class: "muted", title: "re-evaluated every minute, gated by its cooldown"}, "every minute (reconcile)");
  return h("span", {class: "muted"}, "none ahead");
}

function scheduleLink(view, id) {
  return view.link(`/schedules/${encodeURIComponent(id)}`, id);
}

// --------------------------------------------------------------------------- cards

function coverageCard(view, filters) {
  view.card("Coverage", {
    className: "card-wide",
    load: () => apiGet("/api/schedules/coverage"),
    emptyText: "No schedules to cover.",
    render(rows, body) {
      body.append(
        h("p", {class: "card-note"}, "Target PCs, offline ones included, by their latest run of the schedule's job."),
        dataTable({
          caption: "Coverage per schedule",
          columns: [
            {
              key: "id",
              label: "Schedule",
              render: (c) => h("span", {class: "two-line"}, scheduleLink(view, c.id), h("span", {class: "sub"}, `job ${c.job_id}`)),
            },
            {key: "bar", label: "Coverage", className: "cov-cell", render: (c) => coverageBar(c, {compact: true})},
          ],
          rows: rows.filter((c) => matches(filters, c)),
          empty: "No schedule matches these filters.",
        }),
      );
    },
  });
}

function upcomingCard(view) {
  return view.card("Next fires", {
    load: () => apiGet("/api/schedules/upcoming", {limit: UPCOMING_ROWS}),
    emptyText: "No calendar fires ahead.",
    render(rows, body) {
      body.append(
        dataTable({
          caption: "The soonest fires of every enabled calendar schedule",
          columns: [
            {key: "at", label: "Fires (UTC)", render: (f) => h("time", {datetime: f.at}, formatUtc(f.at).slice(0, 16))},
            {key: "in", label: "In", render: (f) => timeElement(f.at)},
            {key: "id", label: "Schedule", render: (f) => scheduleLink(view, f.id)},
            {key: "when", label: "When", className: "wrap"},
          ],
          rows,
        }),
        h("p", {class: "card-foot muted"}, "The fleet freeze is not applied to these times."),
      );
    },
  });
}

function rejectsCard(view) {
  return view.card("Refused by the scheduler", {
    load: () => apiGet("/api/schedules/rejects"),
    emptyText: "Nothing refused: every schedule and job in KV is valid.",
    render(rows, body) {
      body.append(
        dataTable({
          caption: "Schedules and jobs the scheduler refused",
          columns: [
            {key: "kind", label: "Kind", render: (r) => chip(r.kind, "bad")},
            {
              key: "key",
              label: "Key",
              render: (r) => (r.kind === "schedule" ? scheduleLink(view, r.key) : r.key),
            },
            {key: "error", label: "Why", className: "wrap", render: (r) => r.error},
            {key: "seen_at", label: "Seen", render: (r) => timeElement(r.seen_at)},
          ],
          rows,
        }),
      );
    },
  });
}
