// Agent detail: one PC. Its state from the last heartbeat, host performance over a time
// range (1 h to 7 d, kept in the URL as `range`), the newest process snapshot and the
// process CPU over the range, its recent runs, and a timeline of what it observed
// (power, session, sleep, activity). An unknown PC id gets a "not found" page.

import {detailLoader} from "../lib/detail_loader.js";
import {kindCell, payloadCell} from "../lib/obs_event_cells.js";
import {h, append} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {timeChart} from "../lib/charts.js";
import {toggleGroup} from "../lib/toggle_group.js";
import {exactPattern} from "../lib/exact_pattern.js";
import {agentStatus, statusChip} from "../lib/agent_status.js";
import {LANES, LANE_KINDS, bandText, legendGroups, pcBands} from "../lib/obs_lanes.js";
import {swimlane, swimlaneLegend} from "../lib/swimlane.js";
import {
  formatBytes,
  formatDuration,
  formatNumber,
  formatPercent,
  formatRelative,
  formatUtc,
  timeElement,
} from "../lib/format.js";

export const title = "Agent";

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
// The range picker: window length and the bucket width that gives 48 to 84 points.
const RANGES = [
  {value: "1h", label: "1 h", name: "last hour", ms: HOUR, step: MINUTE, per: "minute"},
  {value: "6h", label: "6 h", name: "last 6 hours", ms: 6 * HOUR, step: 5 * MINUTE, per: "5 minutes"},
  {value: "24h", label: "24 h", name: "last 24 hours", ms: 24 * HOUR, step: 30 * MINUTE, per: "30 minutes"},
  {value: "7d", label: "7 d", name: "last 7 days", ms: 168 * HOUR, step: 2 * HOUR, per: "2 hours"},
];
const PROCESS_ROWS = 12;
const PROCESS_SERIES = 5;
const RUN_ROWS = 8;
const EVENT_ROWS = 8;
const LANE_EVENTS_LIMIT = 5000; // the API's most per page; more in the range is cut (and said)

export async function render(view) {
  const pcId = view.params.pcId;
  const range = RANGES.find((r) => r.value === view.query.get("range")) ?? RANGES[0];
  const path = `/api/agents/${encodeURIComponent(pcId)}`;

  const loadAgent = await detailLoader(view, path, {
    title: "Agent not found",
    lead: "No agent has the PC id",
    id: pcId,
    why: "It has never sent a heartbeat, or the id is mistyped.",
    back: ["/agents", "Back to Agents"],
  });
  if (loadAgent === null) return;
  document.title = `${pcId} · Agents · kanade`;

  const head = pageHead(view, pcId, range);
  view.root.append(head.el);
  const agentCard = view.card(null, {
    className: "card-wide agent-card",
    load: loadAgent,
    render(agent, body) {
      head.show(agent);
      body.append(agentFacts(agent));
    },
  });
  agentCard.setAttribute("aria-label", "Agent state");

  perfCard(view, pcId, range);
  group(view, "detail-pair", [processCard(view, pcId), processChartCard(view, pcId, range)]);
  timelineCard(view, pcId, range);
  group(view, "detail-pair", [runsCard(view, pcId), eventsCard(view, pcId, range)]);
}

// --------------------------------------------------------------------------- head

function pageHead(view, pcId, range) {
  const status = h("span", {class: "detail-status"});
  const sub = h("p", {class: "detail-sub muted"});
  const el = h(
    "div",
    {class: "detail-head"},
    h(
      "div",
      {class: "detail-heading"},
      h("nav", {class: "breadcrumb", "aria-label": "Breadcrumb"}, view.link("/agents", "Agents"), " / "),
      h("div", {class: "detail-title"}, h("h1", {class: "page-title"}, pcId), status),
      sub,
    ),
    h(
      "div",
      {class: "range-picker"},
      h("span", {class: "range-label", "aria-hidden": "true"}, "Range"),
      toggleGroup({
        label: "Time range",
        value: range.value,
        options: RANGES.map((r) => ({value: r.value, label: r.label})),
        onChange: (value) => view.setQuery({range: value === RANGES[0].value ? null : value}),
      }),
    ),
  );
  return {
    el,
    show(agent) {
      status.replaceChildren(statusChip(agentStatus(agent)));
      const parts = [agent.hostname, agent.os_family, agent.agent_version && `agent ${agent.agent_version}`];
      sub.replaceChildren(parts.filter(Boolean).join(" · ") || "No details reported yet");
    },
  };
}

// --------------------------------------------------------------------------- state

function agentFacts(agent) {
  const status = agentStatus(agent);
  const quarantined = agent.quarantined_versions ?? [];
  const keys = agent.command_keys;
  const facts = [
    ["Status", h("span", {class: "status-line"}, statusChip(status), status === "never" ? null : timeElement(agent.last_heartbeat))],
    ["Last heartbeat", agent.last_heartbeat ? formatUtc(agent.last_heartbeat) : "never"],
    ["Host name", agent.hostname],
    ["OS", agent.os_family],
    ["Agent version", agent.agent_version],
    [
      "Quarantined versions",
      quarantined.length ? h("span", {class: "chip chip-warn"}, quarantined.join(", ")) : "none",
    ],
    [
      "Last logon",
      agent.last_logon_user
        ? h(
            "span",
            null,
            agent.last_logon_user,
            agent.last_logon_display_name ? h("span", {class: "muted"}, ` (${agent.last_logon_display_name})`) : null,
          )
        : null,
    ],
    ["Agent CPU", formatPercent(agent.agent_cpu_pct)],
    ["Agent memory", formatBytes(agent.agent_rss_bytes)],
    [
      "Agent disk I/O",
      `${formatBytes(agent.agent_disk_read_bytes)} read · ${formatBytes(agent.agent_disk_written_bytes)} written`,
    ],
    [
      "Command keys",
      keys === undefined ? "not reported" : keys.length ? h("span", {title: keys.join("\n")}, `${keys.length} trusted`) : "none",
    ],
    ["Signature enforcement", agent.enforcing === undefined ? "not reported" : agent.enforcing ? "on" : "off"],
    [
      "NATS user",
      agent.nats_user
        ? h("span", null, agent.nats_user, agent.nats_user_since ? h("span", {class: "muted"}, " since ", timeElement(agent.nats_user_since)) : null)
        : null,
    ],
    ["Record updated", timeElement(agent.updated_at)],
  ];
  return h(
    "dl",
    {class: "fact-grid"},
    facts.map(([term, value]) =>
      h("div", {class: "fact"}, h("dt", null, term), h("dd", null, value ?? h("span", {class: "muted"}, "—"))),
    ),
  );
}

// --------------------------------------------------------------------------- performance

const PERF_PANELS = [
  {
    title: "CPU",
    series: [{key: "cpu_pct", label: "CPU"}],
    unit: "percent",
    yMax: 100,
  },
  {
    title: "Memory",
    series: [
      {key: "mem_used_bytes", label: "Used"},
      {key: "mem_total_bytes", label: "Total", color: "#98a1b0"},
      {key: "swap_used_bytes", label: "Swap used", color: "#7c3aed"},
    ],
    unit: "bytes",
  },
  {
    title: "Disk",
    series: [
      {key: "disk_read_bytes_per_sec", label: "Read"},
      {key: "disk_written_bytes_per_sec", label: "Written", color: "#d97706"},
    ],
    unit: "rate",
  },
  {
    title: "Network",
    series: [
      {key: "net_rx_bytes_per_sec", label: "Received", color: "#059669"},
      {key: "net_tx_bytes_per_sec", label: "Sent", color: "#0891b2"},
    ],
    unit: "rate",
  },
];

function perfCard(view, pcId, range) {
  view.card(`Host performance, ${range.name}`, {
    className: "card-wide",
    async load() {
      const win = windowOf(range);
      const {data} = await apiGet(`/api/agents/${encodeURIComponent(pcId)}/perf`, {
        from: win.from.toISOString(),
        to: win.to.toISOString(),
        step: `${range.step / 1000}s`,
      });
      return {...data, win};
    },
    isEmpty: (perf) => perf.points.length === 0,
    emptyText: "No performance samples in this range.",
    render(perf, body) {
      const points = withGaps(perf.points, perf.win, range.step);
      const latest = perf.points[perf.points.length - 1];
      body.append(
        h(
          "p",
          {class: "card-note muted"},
          `Averages per ${range.per}. Beside each title: the newest average, from `,
          timeElement(latest.at),
          ".",
        ),
      );
      const grid = h("div", {class: "perf-grid"});
      body.append(grid);
      for (const panel of PERF_PANELS) {
        const scale = panelScale(panel, points);
        const el = h(
          "div",
          {class: "perf-panel"},
          h(
            "h3",
            null,
            panel.title,
            h("span", {class: "perf-now"}, panel.series.map((s) => nowText(s, latest, scale.detail)).filter(Boolean).join(" · ")),
          ),
        );
        grid.append(el);
        timeChart(el, {
          series: panel.series.map((s) => ({
            label: s.label,
            color: s.color,
            points: points.map((p) => ({at: p.at, value: scaled(p[s.key], scale.div)})),
          })),
          yFormat: scale.axis,
          yMin: 0,
          yMax: panel.yMax,
          height: 180,
          xRange: [perf.win.from, perf.win.to],
          label: `${panel.title} of ${pcId}, ${range.name}`,
        });
      }
    },
  });
}

// Byte axes in one binary unit picked from the largest value, so the ticks fall on round
// numbers of that unit ("10 GiB", "20 GiB") rather than on round numbers of bytes.
function panelScale(panel, points) {
  if (panel.unit === "percent") {
    return {div: 1, axis: (v) => formatPercent(v, 0), detail: (v) => formatPercent(v)};
  }
  const suffix = panel.unit === "rate" ? "/s" : "";
  const peak = Math.max(0, ...points.flatMap((p) => panel.series.map((s) => p[s.key] ?? 0)));
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (i < units.length - 1 && peak >= 1024 ** (i + 1)) i += 1;
  return {
    div: 1024 ** i,
    axis: (v) => `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}${suffix}`,
    detail: (v) => `${formatBytes(v)}${suffix}`,
  };
}

function scaled(value, div) {
  return value === null || value === undefined ? null : value / div;
}

function nowText(series, latest, format) {
  const value = latest[series.key];
  return value === null || value === undefined ? null : `${series.label.toLowerCase()} ${format(value)}`;
}

// A bucket without samples becomes an explicit gap, so a PC that was off shows as a break
// in the line instead of a straight line across the hours it sent nothing.
function withGaps(points, win, step) {
  const have = new Map(points.map((p) => [Date.parse(p.at), p]));
  const out = [];
  const start = Math.floor(win.from.getTime() / step) * step;
  for (let t = start; t < win.to.getTime(); t += step) {
    out.push(have.get(t) ?? {at: new Date(t).toISOString()});
    have.delete(t);
  }
  // Buckets off the grid (a step the API rounded) are kept as they are.
  out.push(...have.values());
  return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

function windowOf(range) {
  const to = new Date();
  return {from: new Date(to.getTime() - range.ms), to};
}

// --------------------------------------------------------------------------- processes

const NO_PROCESSES = "Agents send process samples only while investigation mode is on.";

function processCard(view, pcId) {
  return view.card("Top processes", {
    load: () => apiGet(`/api/agents/${encodeURIComponent(pcId)}/processes`),
    isEmpty: (snap) => snap.processes.length === 0,
    emptyText: `No process samples. ${NO_PROCESSES}`,
    render(snap, body) {
      const rows = snap.processes.slice(0, PROCESS_ROWS);
      const more = snap.processes.length - rows.length;
      append(body, [
        h("p", {class: "card-note muted"}, "Snapshot of ", timeElement(snap.latest_at), `, ${snap.processes.length} processes, highest CPU first.`),
        dataTable({
          caption: `Processes of ${pcId}`,
          columns: [
            {key: "name", label: "Process", className: "cell-strong"},
            {key: "pid", label: "PID", align: "right"},
            {key: "cpu_pct", label: "CPU", align: "right", render: (p) => formatPercent(p.cpu_pct)},
            {key: "rss_bytes", label: "Memory", align: "right", render: (p) => formatBytes(p.rss_bytes)},
            {key: "disk_read_bytes_per_sec", label: "Disk read", align: "right", render: (p) => rate(p.disk_read_bytes_per_sec)},
            {key: "disk_written_bytes_per_sec", label: "Disk write", align: "right", render: (p) => rate(p.disk_written_bytes_per_sec)},
          ],
          rows,
        }),
        more > 0 ? h("p", {class: "card-foot muted"}, `and ${formatNumber(more)} more`) : null,
      ]);
    },
  });
}

function processChartCard(view, pcId, range) {
  return view.card(`Process CPU, ${range.name}`, {
    async load() {
      const win = windowOf(range);
      const {data} = await apiGet(`/api/agents/${encodeURIComponent(pcId)}/processes/timeline`, {
        metric: "cpu_pct",
        from: win.from.toISOString(),
        to: win.to.toISOString(),
        step: `${range.step / 1000}s`,
        top: PROCESS_SERIES,
      });
      return {...data, win};
    },
    isEmpty: (tl) => tl.points.length === 0,
    emptyText: `No process samples in this range. ${NO_PROCESSES}`,
    render(tl, body) {
      const own = tl.names.filter((name) => name !== "other").length;
      const rest = tl.names.includes("other") ? ", and every other process as “other”" : "";
      body.append(h("p", {class: "card-note muted"}, `Average CPU (% of one core) of the ${own} busiest processes${rest}.`));
      timeChart(body, {
        series: tl.names.map((name) => ({
          label: name,
          points: tl.points.map((p) => ({at: p.at, value: p.values[name] ?? null})),
        })),
        yFormat: (v) => formatPercent(v, 0),
        yMin: 0,
        height: 200,
        xRange: [tl.win.from, tl.win.to],
        label: `Process CPU of ${pcId}, ${range.name}`,
      });
    },
  });
}

function rate(value) {
  return value === null || value === undefined ? null : `${formatBytes(value)}/s`;
}

// --------------------------------------------------------------------------- runs

function runsCard(view, pcId) {
  const pattern = exactPattern(pcId);
  return view.card("Recent runs", {
    load: () => apiGet("/api/results", {pc_id: pattern, limit: RUN_ROWS}),
    emptyText: "No runs on this PC yet.",
    render(runs, body) {
      body.append(
        dataTable({
          caption: `Recent runs on ${pcId}`,
          columns: [
            {
              key: "result_id",
              label: "Result",
              render: (r) => view.link(`/activity/${encodeURIComponent(r.result_id)}`, r.result_id.slice(0, 8)),
            },
            {key: "job_id", label: "Job", render: (r) => h("span", {title: r.version ? `version ${r.version}` : null}, r.job_id ?? "ad hoc")},
            {key: "exit_code", label: "Status", render: exitChip},
            {key: "started_at", label: "Started", render: (r) => timeElement(r.started_at)},
            {key: "duration", label: "Duration", align: "right", render: runDuration},
          ],
          rows: runs,
        }),
        h("p", {class: "card-foot"}, view.link(`/activity?pc_id=${encodeURIComponent(pattern)}`, "All runs on this PC")),
      );
    },
  });
}

function exitChip(run) {
  if (run.skipped) return h("span", {class: "chip chip-muted"}, "skipped");
  if (run.exit_code === null) return h("span", {class: "chip chip-info"}, "running");
  if (run.exit_code === 0) return h("span", {class: "chip chip-ok"}, "ok");
  return h("span", {class: "chip chip-bad"}, `failed ${run.exit_code}`);
}

function runDuration(run) {
  if (!run.started_at || !run.finished_at) return null;
  return formatDuration(Date.parse(run.finished_at) - Date.parse(run.started_at));
}

// --------------------------------------------------------------------------- events

function timelineCard(view, pcId, range) {
  view.card(`Timeline, ${range.name}`, {
    className: "card-wide",
    async load() {
      const win = windowOf(range);
      const [seeds, events] = await Promise.all([
        apiGet("/api/obs_events/lane_seeds", {pcs: pcId, before: win.from.toISOString()}),
        apiGet("/api/obs_events", {
          pc_id: pcId,
          kinds: LANE_KINDS.join(","),
          from: win.from.toISOString(),
          to: win.to.toISOString(),
          limit: LANE_EVENTS_LIMIT,
        }),
      ]);
      return {
        win,
        seeds: seeds.data.events,
        events: events.data.events,
        cut: Boolean(events.headers.get("X-Next-Cursor")),
      };
    },
    isEmpty: () => false, // an all-unknown lane still says "nothing observed"
    render(data, body) {
      const from = data.win.from.getTime();
      const to = data.win.to.getTime();
      const oldest = data.events[data.events.length - 1];
      const startAt = data.cut && oldest ? Date.parse(oldest.at) : from;
      const bands = pcBands({seeds: data.seeds, events: data.events, from, to, startAt});
      const described = {};
      for (const lane of LANES) {
        described[lane.key] = bands[lane.key].map((band) => ({...band, text: bandText(lane, band, {span: "range", countRepeats: false})}));
      }
      const count = data.events.length;
      append(body, [
        swimlaneLegend(legendGroups()),
        data.cut
          ? h(
              "p",
              {class: "timeline-note", role: "note"},
              `More than ${formatNumber(LANE_EVENTS_LIMIT)} events in this range: the oldest part shows as unknown.`,
            )
          : null,
        swimlane({
          from,
          to,
          lanes: LANES,
          label: `State timeline of ${pcId}, ${range.name}`,
          rows: [
            {
              key: pcId,
              name: pcId,
              head: [
                h("span", {class: "sl-pc"}, pcId),
                h("span", {class: "sl-sub"}, count ? `${formatNumber(count)} state event${count === 1 ? "" : "s"}` : "no state events"),
              ],
              bands: described,
            },
          ],
        }),
      ]);
    },
  });
}

function eventsCard(view, pcId, range) {
  return view.card("Latest events", {
    load() {
      const win = windowOf(range);
      return apiGet("/api/obs_events", {
        pc_id: pcId,
        from: win.from.toISOString(),
        to: win.to.toISOString(),
        limit: EVENT_ROWS,
      });
    },
    isEmpty: (data) => data.events.length === 0,
    emptyText: `No events in the ${range.name}.`,
    render(data, body) {
      body.append(
        dataTable({
          caption: `Latest events of ${pcId}`,
          columns: [
            {
              key: "at",
              label: "When (UTC)",
              render: (e) => h("time", {datetime: e.at, title: formatRelative(e.at)}, formatUtc(e.at).slice(5, 19)),
            },
            {key: "kind", label: "Kind", render: kindCell},
            {key: "source", label: "Source"},
            {key: "payload", label: "Details", render: payloadCell},
          ],
          rows: data.events,
        }),
        h(
          "p",
          {class: "card-foot"},
          view.link(`/events?pc=${encodeURIComponent(pcId)}&range=${range.value}`, "All events of this PC"),
        ),
      );
    },
  });
}


// --------------------------------------------------------------------------- layout

// Cards side by side on wide screens (the page grid would make them a third wide).
function group(view, className, cards) {
  view.root.append(h("div", {class: className}, cards));
}
