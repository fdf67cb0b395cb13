// The dashboard: fleet health at a glance. Every card loads on its own, so one slow or
// failing endpoint never blanks the page; all refresh every 30 s.

import {h, chip} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {timeChart} from "../lib/charts.js";
import {freezeBanner} from "../lib/freeze_banner.js";
import {exactPattern} from "../lib/exact_pattern.js";
import {
  formatBytes,
  formatDuration,
  formatNumber,
  formatPercent,
  formatUtc,
  timeElement,
} from "../lib/format.js";

export const title = "Dashboard";

const DAY_MS = 24 * 3600 * 1000;
const LIST_ROWS = 8;

export function render(view) {
  view.root.append(h("h1", {class: "page-title"}, "Dashboard"));
  freezeBanner(view);
  fleetHealth(view);
  agentCounts(view);
  projectorSummary(view);
  fleetChart(view, "Fleet CPU, 24 h", "cpu", (v) => formatPercent(v, 0), "Average CPU of all PCs");
  fleetChart(view, "Fleet memory, 24 h", "mem", (v) => formatBytes(v, 1), "Average memory used per PC");
  topPcs(view, "Top CPU now", "cpu", (v) => formatPercent(v));
  topPcs(view, "Top memory now", "mem", (v) => formatBytes(v));
  investigations(view);
  agentVersions(view);
  scanDurations(view);
  recentAudit(view);
  recentRuns(view);
  upcomingSchedules(view);
  latestEvents(view);
}

const HEALTH_TONE = {ok: "ok", unknown: "muted", degraded: "bad"};

function fleetHealth(view) {
  view.card("Fleet health", {
    // 503 means degraded and carries the same body, which is what this card shows.
    load: () => apiGet("/api/health/fleet", {}, {accept: [503]}),
    render(health, body) {
      const {agents, jetstream, recent_results: runs} = health;
      const missing = jetstream.missing.length
        ? h("span", {class: "missing"}, ` missing: ${jetstream.missing.join(", ")}`)
        : null;
      body.append(
        h("div", {class: "health-status"}, chip(health.status, HEALTH_TONE[health.status] ?? "muted")),
        facts([
          ["Agents online", view.link("/agents?status=online", `${formatNumber(agents.active)} of ${formatNumber(agents.known)}`)],
          ["Agents stale", view.link("/agents?status=offline", formatNumber(agents.stale))],
          [
            "JetStream",
            h(
              "span",
              null,
              chip(jetstream.all_ok ? "healthy" : "incomplete", jetstream.all_ok ? "ok" : "bad"),
              ` ${jetstream.healthy} of ${jetstream.total} resources`,
              missing,
            ),
          ],
          [
            `Runs, ${runs.window_hours} h`,
            h(
              "span",
              null,
              formatNumber(runs.total),
              " · ",
              view.link("/activity?status=failure", `${formatNumber(runs.failed)} failed`),
            ),
          ],
          ["Observed", timeElement(health.observed_at)],
        ]),
      );
    },
  });
}

function agentCounts(view) {
  view.card("Agents", {
    load: () => apiGet("/api/agents", {limit: 1}),
    isEmpty: () => false,
    render(_rows, body, {headers}) {
      const count = (name) => Number.parseInt(headers.get(name) ?? "0", 10);
      body.append(
        h(
          "div",
          {class: "stats"},
          stat("Online", count("X-Online-Count"), "/agents?status=online", "ok", view),
          stat("Offline", count("X-Offline-Count"), "/agents?status=offline", "bad", view),
          stat("Known", count("X-Total-Count"), "/agents", "muted", view),
        ),
      );
    },
  });
}

function projectorSummary(view) {
  view.card("Projectors", {
    load: () => apiGet("/api/projector/status"),
    isEmpty: (status) => status.projectors.length === 0,
    emptyText: "No projector has reported yet.",
    render(status, body) {
      const behind = status.projectors.filter((p) => (p.lag ?? 0) > 0).length;
      const rejects = status.projectors.reduce((n, p) => n + p.reject_count, 0);
      body.append(
        h(
          "p",
          {class: "summary"},
          behind ? chip(`${behind} behind`, "warn") : chip("caught up", "ok"),
          " ",
          rejects ? chip(`${formatNumber(rejects)} rejects`, "bad") : chip("no rejects", "ok"),
          " ",
          view.link("/projector", "Details"),
        ),
        dataTable({
          caption: "Projectors",
          columns: [
            {key: "projector", label: "Projector"},
            {key: "lag", label: "Lag", align: "right", render: (p) => (p.lag === null ? "—" : formatNumber(p.lag))},
            {key: "reject_count", label: "Rejects", align: "right", render: (p) => formatNumber(p.reject_count)},
            {key: "last_message_at", label: "Last message", render: (p) => timeElement(p.last_message_at)},
          ],
          rows: status.projectors,
        }),
      );
    },
  });
}

function fleetChart(view, cardTitle, metric, yFormat, label) {
  view.card(cardTitle, {
    className: "card-chart",
    load: () =>
      apiGet("/api/perf/fleet", {
        metric,
        step: "15m",
        from: new Date(Date.now() - DAY_MS).toISOString(),
      }),
    isEmpty: (perf) => perf.points.length === 0,
    emptyText: "No samples in the last 24 hours.",
    render(perf, body) {
      timeChart(body, {series: [{label, points: perf.points}], yFormat, yMin: 0, label: cardTitle});
    },
  });
}

function topPcs(view, cardTitle, metric, format) {
  view.card(cardTitle, {
    load: () => apiGet("/api/perf/top", {metric, limit: 5}),
    isEmpty: (top) => top.rows.length === 0,
    emptyText: "No samples in the last 5 minutes.",
    render(top, body) {
      body.append(
        dataTable({
          caption: cardTitle,
          columns: [
            {key: "pc_id", label: "PC", render: (r) => view.link(`/agents/${encodeURIComponent(r.pc_id)}`, r.pc_id)},
            {key: "hostname", label: "Host name"},
            {key: "value", label: `Average, ${Math.round(top.window_seconds / 60)} min`, align: "right", render: (r) => format(r.value)},
          ],
          rows: top.rows,
        }),
      );
    },
  });
}

function investigations(view) {
  view.card("PCs under investigation", {
    load: () => apiGet("/api/perf/active-investigations"),
    isEmpty: (data) => data.rows.length === 0,
    emptyText: "No PC has sent process samples in the last 5 minutes.",
    render(data, body) {
      const minutes = Math.round(data.window_seconds / 60);
      body.append(
        h("p", {class: "card-note"}, `PCs in investigation mode: process samples in the last ${minutes} min.`),
        dataTable({
          caption: "PCs under investigation",
          columns: [
            {key: "pc_id", label: "PC", render: (r) => view.link(`/agents/${encodeURIComponent(r.pc_id)}`, r.pc_id)},
            {key: "hostname", label: "Host name"},
            {key: "latest_at", label: "Latest sample", render: (r) => timeElement(r.latest_at)},
          ],
          rows: data.rows,
        }),
      );
    },
  });
}

// uPlot draws time series only; a few versions read best as a table with bars.
function agentVersions(view) {
  view.card("Agent versions", {
    load: () => apiGet("/api/agents/versions"),
    emptyText: "No agent has reported yet.",
    render(rows, body) {
      const widest = Math.max(...rows.map((r) => r.total), 1);
      body.append(
        h(
          "p",
          {class: "card-note version-legend"},
          h("span", {class: "version-swatch version-bar-online"}),
          "online",
          h("span", {class: "version-swatch version-bar-total"}),
          "offline",
        ),
        dataTable({
          caption: "Agents per version",
          columns: [
            {
              key: "version",
              label: "Version",
              render: (r) =>
                view.link(
                  `/agents?version=${encodeURIComponent(exactPattern(r.version ?? ""))}`,
                  r.version ?? "unknown",
                ),
            },
            {key: "share", label: "Agents", className: "version-bar-cell", render: (r) => versionBar(r, widest)},
            {key: "active", label: "Online", align: "right", render: (r) => formatNumber(r.active)},
            {key: "total", label: "Total", align: "right", render: (r) => formatNumber(r.total)},
          ],
          rows,
        }),
      );
    },
  });
}

// Bar length: the version's agents against the most common version; the darker part
// is the online share.
function versionBar(row, widest) {
  const words = `${formatNumber(row.active)} of ${formatNumber(row.total)} online`;
  return h(
    "div",
    {class: "version-bar", role: "img", "aria-label": `${row.version ?? "unknown"}: ${words}`, title: words},
    h(
      "span",
      {class: "version-bar-total", style: {width: `${(row.total / widest) * 100}%`}},
      h("span", {class: "version-bar-online", style: {width: `${row.total ? (row.active / row.total) * 100 : 0}%`}}),
    ),
  );
}

function exitChip(run) {
  if (run.skipped) return chip("skipped", "muted");
  if (run.exit_code === null) return chip("running", "info");
  if (run.exit_code === 0) return chip("ok", "ok");
  return chip(`failed ${run.exit_code}`, "bad");
}

function runDuration(run) {
  if (!run.started_at || !run.finished_at) return "—";
  return formatDuration(new Date(run.finished_at) - new Date(run.started_at));
}

function recentRuns(view) {
  view.card("Recent runs", {
    className: "card-wide",
    load: () => apiGet("/api/results", {limit: LIST_ROWS}),
    emptyText: "No runs yet.",
    render(runs, body) {
      body.append(
        dataTable({
          caption: "Recent runs",
          columns: [
            {key: "result_id", label: "Result", render: (r) => view.link(`/activity/${encodeURIComponent(r.result_id)}`, r.result_id.slice(0, 8))},
            {key: "pc_id", label: "PC", render: (r) => view.link(`/agents/${encodeURIComponent(r.pc_id)}`, r.pc_id)},
            {key: "job_id", label: "Job"},
            {key: "exit_code", label: "Status", render: exitChip},
            {key: "started_at", label: "Started", render: (r) => timeElement(r.started_at)},
            {key: "duration", label: "Duration", align: "right", render: runDuration},
          ],
          rows: runs,
        }),
        h("p", {class: "card-foot"}, view.link("/activity", "All activity")),
      );
    },
  });
}

function recentAudit(view) {
  view.card("Recent audit", {
    load: () => apiGet("/api/audit", {limit: LIST_ROWS}),
    emptyText: "No audit entries yet.",
    render(rows, body) {
      body.append(
        dataTable({
          caption: "Recent audit",
          columns: [
            {key: "occurred_at", label: "When", render: (r) => timeElement(r.occurred_at)},
            {key: "actor", label: "Actor"},
            {key: "action", label: "Action"},
            {key: "target", label: "Target"},
          ],
          rows,
        }),
        h("p", {class: "card-foot"}, view.link("/audit", "All audit entries")),
      );
    },
  });
}

function scanDurations(view) {
  view.card("Run durations, 24 h", {
    load: () => apiGet("/api/health/scan_durations"),
    emptyText: "No finished runs in the last 24 hours.",
    render(rows, body) {
      const ms = (key) => ({key, label: key.replace("_ms", "").toUpperCase(), align: "right", render: (r) => formatDuration(r[key])});
      body.append(
        dataTable({
          caption: "Run durations per job",
          columns: [
            {key: "job_id", label: "Job"},
            {key: "count", label: "Runs", align: "right", render: (r) => formatNumber(r.count)},
            ms("p50_ms"),
            ms("p95_ms"),
            ms("p99_ms"),
            {
              key: "max_ms",
              label: "Max",
              align: "right",
              render: (r) =>
                r.max_result_id
                  ? view.link(`/activity/${encodeURIComponent(r.max_result_id)}`, formatDuration(r.max_ms))
                  : formatDuration(r.max_ms),
            },
          ],
          rows,
        }),
      );
    },
  });
}

function upcomingSchedules(view) {
  view.card("Upcoming schedules", {
    load: () => apiGet("/api/schedules/upcoming", {limit: LIST_ROWS}),
    emptyText: "No calendar fires ahead.",
    render(rows, body) {
      body.append(
        dataTable({
          caption: "Upcoming schedule fires",
          columns: [
            {key: "at", label: "Fires", render: (r) => h("time", {datetime: r.at, title: formatUtc(r.at)}, formatUtc(r.at).slice(0, 16))},
            {key: "id", label: "Schedule", render: (r) => scheduleLink(view, r)},
            {key: "job_id", label: "Job"},
          ],
          rows,
        }),
      );
    },
  });
}

function scheduleLink(view, fire) {
  const link = view.link(`/schedules/${encodeURIComponent(fire.id)}`, fire.id);
  link.title = fire.when;
  return link;
}

function latestEvents(view) {
  view.card("Latest events", {
    load: () => apiGet("/api/obs_events/recent", {limit: LIST_ROWS}),
    isEmpty: (data) => data.events.length === 0,
    emptyText: "No events yet.",
    render(data, body) {
      body.append(
        dataTable({
          caption: "Latest events",
          columns: [
            {key: "at", label: "When", render: (e) => timeElement(e.at)},
            {key: "pc_id", label: "PC", render: (e) => view.link(`/agents/${encodeURIComponent(e.pc_id)}`, e.pc_id)},
            {key: "kind", label: "Kind"},
            {key: "source", label: "Source"},
          ],
          rows: data.events,
        }),
        h("p", {class: "card-foot"}, view.link("/events", "All events")),
      );
    },
  });
}

function facts(pairs) {
  return h(
    "dl",
    {class: "facts"},
    pairs.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
  );
}

function stat(label, value, href, tone, view) {
  const link = view.link(href, formatNumber(value));
  link.className = "stat-value";
  return h("div", {class: `stat stat-${tone}`}, link, h("div", {class: "stat-label"}, label));
}
