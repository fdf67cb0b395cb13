// Swimlanes of state bands over a time window, drawn with DOM elements: one row per
// subject (e.g. a PC), a few lanes per row, a UTC time axis. Every band carries its
// meaning as text (aria-label and title), and a legend names the colours, so the
// picture is never the only way to read it.

import {h} from "./dom.js";
import {formatDuration} from "./format.js";

const MINUTE = 60 * 1000;
const STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880].map((m) => m * MINUTE);

/**
 * swimlane({from, to, lanes, rows, label}) -> element.
 * from/to: the window (ms); lanes: [{key, label}] (the lanes of every row, in order);
 * rows: [{key, head: Node (the row's heading), name: string (for labels),
 *   bands: {laneKey: [{start, end, state, text}]}}]; a band's class is sl-state-<state>
 *   and its text says what it means (the time span is added here).
 * label: the accessible name of the whole chart.
 */
export function swimlane({from, to, lanes, rows, label}) {
  const span = Math.max(to - from, 1);
  const pct = (t) => ((Math.min(Math.max(t, from), to) - from) / span) * 100;
  const ticks = timeTicks(from, to, 8);
  const root = h("div", {class: "swimlane", role: "group", "aria-label": label});
  root.style.setProperty("--sl-grid", gridImage(ticks.map((t) => pct(t))));

  const axis = h(
    "div",
    {class: "sl-axis", "aria-hidden": "true"},
    h("div", {class: "sl-axis-pad"}),
    h(
      "div",
      {class: "sl-axis-track"},
      ticks.map((t, i) =>
        h("span", {class: `sl-tick${i % 2 ? " sl-tick-minor" : ""}`, style: {left: `${pct(t)}%`}}, tickLabel(t, ticks)),
      ),
    ),
  );

  const list = h(
    "div",
    {class: "sl-rows", role: "list"},
    rows.map((row) =>
      h(
        "div",
        {class: "sl-row", role: "listitem", dataset: {row: row.key}},
        h("div", {class: "sl-head"}, row.head),
        h(
          "div",
          {class: "sl-lanes"},
          lanes.map((lane) =>
            h(
              "div",
              {class: "sl-lane", dataset: {lane: lane.key}},
              h("span", {class: "sl-lane-label", "aria-hidden": "true"}, lane.label),
              h(
                "div",
                {class: "sl-track", role: "list", "aria-label": `${row.name} ${lane.label}`},
                (row.bands[lane.key] ?? []).map((band) => bandElement(band, pct)),
              ),
            ),
          ),
        ),
      ),
    ),
  );
  root.append(axis, list);
  return root;
}

function bandElement(band, pct) {
  const left = pct(band.start);
  const width = Math.max(pct(band.end) - left, 0);
  const when = `${clock(band.start)} – ${clock(band.end)} UTC (${formatDuration(band.end - band.start)})`;
  const text = `${band.text}, ${when}`;
  return h("span", {
    class: `sl-band sl-state-${band.state}`,
    role: "listitem",
    "aria-label": text,
    title: text,
    style: {left: `${left}%`, width: `${width}%`},
    dataset: {state: band.state, start: new Date(band.start).toISOString()},
  });
}

/**
 * swimlaneLegend(groups) -> element. groups: [{label, states: [{state, label}]}]; each
 * swatch uses the band class of its state.
 */
export function swimlaneLegend(groups) {
  return h(
    "dl",
    {class: "sl-legend"},
    groups.map((group) =>
      h(
        "div",
        {class: "sl-legend-group"},
        h("dt", null, group.label),
        group.states.map((s) =>
          h("dd", null, h("span", {class: `sl-swatch sl-state-${s.state}`, "aria-hidden": "true"}), s.label),
        ),
      ),
    ),
  );
}

/** Round UTC instants inside [from, to], at most about `max` of them. */
export function timeTicks(from, to, max) {
  const step = STEPS.find((s) => (to - from) / s <= max) ?? STEPS[STEPS.length - 1];
  const ticks = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push(t);
  return ticks;
}

function tickLabel(t, ticks) {
  const iso = new Date(t).toISOString();
  const dayStep = ticks.length > 1 && ticks[1] - ticks[0] >= 1440 * MINUTE;
  const clockText = iso.slice(11, 16);
  return dayStep || clockText === "00:00" ? iso.slice(5, 10) : clockText;
}

function clock(t) {
  const iso = new Date(t).toISOString();
  return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

// One background image with a thin line at each tick (percent of the track's width).
function gridImage(positions) {
  if (!positions.length) return "none";
  const stops = positions.flatMap((p) => [
    `transparent ${p}%`,
    `var(--sl-grid-line) ${p}%`,
    `var(--sl-grid-line) calc(${p}% + 1px)`,
    `transparent calc(${p}% + 1px)`,
  ]);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}
