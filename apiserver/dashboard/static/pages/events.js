// Events: what the agents observed on their PCs. A swimlane timeline shows each PC's
// power, session, sleep and activity state over a time window (seeded with the state
// each lane was in when the window opens), and the event table below lists the events
// themselves. Window, filters and both pagers live in the URL.

import {h, append} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {cursorPager, offsetPager, pageSizeSelect} from "../lib/pager.js";
import {formatNumber, formatRelative, formatUtc} from "../lib/format.js";
import {WINDOW_LENGTHS, readWindow, windowStepper} from "../lib/time_window.js";
import {LANES, LANE_KINDS, bandText, legendGroups, pcBands} from "../lib/obs_lanes.js";
import {swimlane, swimlaneLegend} from "../lib/swimlane.js";
import {kindCell, payloadCell} from "../lib/obs_event_cells.js";

export const title = "Events";

const LANE_PAGE = {key: "lanes", sizeKey: "lane_rows", choices: [10, 20, 40], fallback: 20};
const TABLE_PAGE = {choices: [50, 200, 1000], fallback: 50};
const PC_EVENTS_LIMIT = 5000; // the API's most; more in one PC's window is cut (and said)
const PARALLEL = 6; // requests in flight at once (a browser's per-host connection limit)

export async function render(view) {
  const filters = {
    pc: view.query.get("pc") || null,
    kind: view.query.get("kind") || null,
    source: view.query.get("source") || null,
  };
  view.root.append(h("h1", {class: "page-title"}, "Events"));
  view.root.append(filterBar(view, await filterFields(), {resetKeys: ["cursor", LANE_PAGE.key]}));
  timelineCard(view, filters.pc);
  eventTable(view, filters);
}

// The kind and source lists come from the API; without them the fields take free text.
async function filterFields() {
  const [kinds, sources] = await Promise.allSettled([
    apiGet("/api/obs_events/kinds"),
    apiGet("/api/obs_events/sources"),
  ]);
  const choice = (name, label, answer, key, placeholder) =>
    answer.status === "fulfilled"
      ? {
          name,
          label,
          type: "select",
          options: [{value: "", label: `All ${key}`}, ...answer.value.data[key].map((v) => ({value: v}))],
        }
      : {name, label, placeholder};
  return [
    {name: "pc", label: "PC", type: "search", placeholder: "PC id (exact)"},
    choice("kind", "Kind", kinds, "kinds", "e.g. logon"),
    choice("source", "Source", sources, "sources", "e.g. winlog:Security"),
    {
      name: "range",
      label: "Window",
      type: "select",
      default: "24h",
      options: WINDOW_LENGTHS.map((w) => ({value: w.value, label: w.label})),
    },
    {name: "end", label: "Window ends (UTC)", type: "datetime-local"},
  ];
}

// --------------------------------------------------------------------------- timeline

function timelineCard(view, pc) {
  const limit = pageLimit(view, LANE_PAGE.sizeKey, LANE_PAGE);
  const offset = Math.max(0, Number.parseInt(view.query.get(LANE_PAGE.key) ?? "0", 10) || 0);
  view.card("Timeline", {
    className: "card-wide card-timeline",
    load: () => loadLanes(view, pc, limit, offset),
    isEmpty: (data) => data.pcs.length === 0,
    emptyText: pc ? `No agent ${pc}.` : "No agents yet.",
    render(data, body) {
      const {win} = data;
      const rows = data.pcs.map((agent) => laneRow(view, agent, data));
      const pager = pc
        ? null
        : offsetPager(view, {total: data.total, limit, count: data.pcs.length, offsetKey: LANE_PAGE.key});
      pager?.setAttribute("aria-label", "Timeline pages");
      const size = pc
        ? null
        : pageSizeSelect(view, {
            choices: LANE_PAGE.choices,
            fallback: LANE_PAGE.fallback,
            key: LANE_PAGE.sizeKey,
            resetKeys: [LANE_PAGE.key],
          });
      size?.querySelector("label").replaceChildren("PCs per page");
      const cut = data.pcs.filter((agent) => data.events.get(agent.pc_id).cut).map((a) => a.pc_id);
      append(body, [
        h("div", {class: "timeline-bar"}, windowStepper(view, win, {resetKeys: ["cursor"]})),
        swimlaneLegend(legendGroups()),
        cut.length
          ? h(
              "p",
              {class: "timeline-note", role: "note"},
              `More than ${formatNumber(PC_EVENTS_LIMIT)} events in this window for ${cut.join(", ")}: `,
              "their oldest part shows as unknown. Choose a shorter window to see it.",
            )
          : null,
        swimlane({
          from: win.from.getTime(),
          to: win.to.getTime(),
          lanes: LANES,
          rows,
          label: `State timeline of ${data.pcs.length} PCs, ${win.length} window`,
        }),
        pager || size ? h("div", {class: "card-foot pager-row"}, pager, size) : null,
      ]);
    },
  });
}

async function loadLanes(view, pc, limit, offset) {
  const win = readWindow(view.query);
  let pcs;
  let total;
  if (pc) {
    pcs = [{pc_id: pc, hostname: null}];
    total = 1;
  } else {
    const {data, headers} = await apiGet("/api/agents", {limit, offset, sort: "pc_id"});
    pcs = data;
    total = Number.parseInt(headers.get("X-Total-Count") ?? `${data.length}`, 10);
  }
  if (!pcs.length) return {win, pcs, total, seeds: [], events: new Map()};
  const ids = pcs.map((a) => a.pc_id);
  const [seeds, perPc] = await Promise.all([
    apiGet("/api/obs_events/lane_seeds", {pcs: ids.join(","), before: win.from.toISOString()}),
    mapLimited(ids, PARALLEL, (id) => pcEvents(id, win)),
  ]);
  return {win, pcs, total, seeds: seeds.data.events, events: new Map(ids.map((id, i) => [id, perPc[i]]))};
}

async function pcEvents(pcId, win) {
  const {data, headers} = await apiGet("/api/obs_events", {
    pc_id: pcId,
    kinds: LANE_KINDS.join(","),
    from: win.from.toISOString(),
    to: win.to.toISOString(),
    limit: PC_EVENTS_LIMIT,
  });
  return {events: data.events, cut: Boolean(headers.get("X-Next-Cursor"))};
}

function laneRow(view, agent, data) {
  const {win} = data;
  const {events, cut} = data.events.get(agent.pc_id);
  const from = win.from.getTime();
  const to = win.to.getTime();
  // When the window held more events than one page, knowledge starts at the oldest read.
  const startAt = cut && events.length ? Date.parse(events[events.length - 1].at) : from;
  const seeds = data.seeds.filter((e) => e.pc_id === agent.pc_id);
  const bands = pcBands({seeds, events, from, to, startAt});
  const described = {};
  for (const lane of LANES) {
    described[lane.key] = bands[lane.key].map((band) => ({...band, text: bandText(lane, band)}));
  }
  const link = view.link(`/agents/${encodeURIComponent(agent.pc_id)}`, agent.pc_id);
  link.className = "sl-pc";
  const count = events.length;
  return {
    key: agent.pc_id,
    name: agent.pc_id,
    head: [
      link,
      h("span", {class: "sl-sub"}, agent.hostname ?? ""),
      h("span", {class: "sl-sub"}, count ? `${formatNumber(count)} event${count === 1 ? "" : "s"}` : "no events"),
    ],
    bands: described,
  };
}

// --------------------------------------------------------------------------- table

function eventTable(view, filters) {
  const limit = pageLimit(view, "limit", TABLE_PAGE);
  view.card("Events", {
    className: "card-wide",
    load() {
      const win = readWindow(view.query);
      return apiGet("/api/obs_events", {
        pc_id: filters.pc,
        kind: filters.kind,
        source: filters.source,
        from: win.from.toISOString(),
        to: win.to.toISOString(),
        limit,
        cursor: view.query.get("cursor"),
      });
    },
    isEmpty: () => false,
    render(data, body, {headers}) {
      body.append(
        dataTable({
          caption: "Events, newest first",
          columns: [
            {key: "at", label: "When (UTC)", render: (e) => h("time", {datetime: e.at, title: formatRelative(e.at)}, formatUtc(e.at).slice(0, 19))},
            {key: "pc_id", label: "PC", render: (e) => view.link(`/agents/${encodeURIComponent(e.pc_id)}`, e.pc_id)},
            {key: "kind", label: "Kind", render: kindCell},
            {key: "source", label: "Source"},
            {key: "event_record_id", label: "Record"},
            {key: "payload", label: "Payload", render: (e) => payloadCell(e) ?? h("span", {class: "muted"}, "—")},
          ],
          rows: data.events,
          empty: view.query.has("cursor") ? "No older events." : "No events in this window match.",
        }),
        h(
          "div",
          {class: "card-foot pager-row"},
          cursorPager(view, {nextCursor: headers.get("X-Next-Cursor")}),
          pageSizeSelect(view, {...TABLE_PAGE}),
        ),
      );
    },
  });
}


// --------------------------------------------------------------------------- helpers

function pageLimit(view, key, {choices, fallback}) {
  const asked = Number.parseInt(view.query.get(key) ?? "", 10);
  return choices.includes(asked) ? asked : fallback;
}

// Run fn over items with at most `width` calls pending; results in item order.
async function mapLimited(items, width, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  }
  await Promise.all(Array.from({length: Math.min(width, items.length)}, worker));
  return results;
}
