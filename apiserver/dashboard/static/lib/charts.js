// Time-series charts over the vendored uPlot: UTC axes (the dashboard's absolute times are
// UTC), one y scale, responsive width, and a legend that shows formatted values on hover.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import {h} from "./dom.js";

/** The palette series take in order when they name no colour. */
export const SERIES_COLORS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2"];

/**
 * timeChart(el, {series, yFormat, height, yMin, yMax, label, xRange}) -> {update(series), destroy()}.
 * series: [{label, points: [{at: RFC 3339, value: number|null}], color?}]; points of all
 * series are aligned on the union of their instants (missing = gap). yFormat(v) formats the
 * axis and legend values (default: the number). label: the chart's accessible name.
 * xRange: optional [from, to] (Dates or ms) the x axis spans whatever the data covers, so
 * a chart of "the last hour" shows the whole hour. A value between two gaps is drawn as a
 * dot (a line needs two neighbours).
 */
export function timeChart(
  el,
  {series, yFormat = (v) => String(v), height = 220, yMin, yMax, label, xRange = null},
) {
  const box = h("div", {class: "chart", role: "img", "aria-label": label ?? "time chart"});
  el.append(box);
  const fmt = (v) => (v === null || v === undefined ? "—" : yFormat(v));
  const opts = {
    width: Math.max(box.clientWidth || el.clientWidth || 300, 200),
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: {
      x: xRange
        ? {time: true, range: () => xRange.map((t) => Math.floor(Number(t) / 1000))}
        : {time: true},
      y: {range: (u, min, max) => yRange(min, max, yMin, yMax)},
    },
    axes: [
      {
        stroke: "#5b6473",
        grid: {stroke: "#eceef2"},
        ticks: {stroke: "#d5d9e0"},
        values: (u, splits) => splits.map(axisTime),
      },
      {
        stroke: "#5b6473",
        grid: {stroke: "#eceef2"},
        ticks: {stroke: "#d5d9e0"},
        size: 70,
        values: (u, splits) => splits.map(fmt),
      },
    ],
    series: [
      {label: "Time (UTC)", value: (u, ts) => (ts === null ? "—" : utcLabel(ts))},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color ?? SERIES_COLORS[i % SERIES_COLORS.length],
        fill: `${s.color ?? SERIES_COLORS[i % SERIES_COLORS.length]}1a`,
        width: 2,
        points: {show: false, filter: isolated},
        spanGaps: false,
        value: (u, v) => fmt(v),
      })),
    ],
    legend: {live: true},
    cursor: {drag: {x: false, y: false}},
  };
  const plot = new uPlot(opts, align(series), box);

  // Follow the card's width; stop once the chart has left the page (a re-render).
  const observer = new ResizeObserver(() => {
    if (!box.isConnected) {
      destroy();
      return;
    }
    const width = Math.max(box.clientWidth, 200);
    if (width !== plot.width) plot.setSize({width, height});
  });
  observer.observe(box);

  function destroy() {
    observer.disconnect();
    plot.destroy();
  }
  return {
    /** Replace the data (same series count and order). */
    update(next) {
      plot.setData(align(next));
    },
    /** Remove the chart and its observers. */
    destroy,
  };
}

// Indexes of values with no value on either side: a line would not show them.
function isolated(u, seriesIdx) {
  const ys = u.data[seriesIdx];
  const out = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] === null || ys[i] === undefined) continue;
    const before = i > 0 ? ys[i - 1] : null;
    const after = i < ys.length - 1 ? ys[i + 1] : null;
    if ((before === null || before === undefined) && (after === null || after === undefined)) out.push(i);
  }
  return out.length ? out : null;
}

function yRange(min, max, fixedMin, fixedMax) {
  let lo = fixedMin ?? Math.min(0, min ?? 0);
  let hi = fixedMax ?? (max === null || max === undefined ? 1 : max * 1.1);
  if (hi <= lo) hi = lo + 1;
  return [lo, hi];
}

// 24-hour UTC ticks; midnight shows the date instead.
function axisTime(ts) {
  const iso = new Date(ts * 1000).toISOString();
  const clock = iso.slice(11, 16);
  return clock === "00:00" ? iso.slice(5, 10) : clock;
}

function utcLabel(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ");
}

// uPlot wants columns: [xs, ys1, ys2, ...] over one sorted x axis (seconds).
function align(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => toSeconds(p.at))))].sort(
    (a, b) => a - b,
  );
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = series.map((s) => {
    const ys = new Array(xs.length).fill(null);
    for (const p of s.points) ys[index.get(toSeconds(p.at))] = p.value;
    return ys;
  });
  return [xs, ...columns];
}

function toSeconds(iso) {
  return Math.floor(new Date(iso).getTime() / 1000);
}
