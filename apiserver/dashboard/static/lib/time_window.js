// A window of history for pages that show a span of time: a length from a fixed list and
// an end, both in the URL. Without an end the window ends now, so it follows every
// auto-refresh; with one it is pinned (shareable, and stable while paging).

import {h} from "./dom.js";
import {formatUtc} from "./format.js";

const HOUR = 3600 * 1000;

/** The lengths a window may have (URL value, label, milliseconds). */
export const WINDOW_LENGTHS = [
  {value: "1h", label: "1 hour", ms: HOUR},
  {value: "6h", label: "6 hours", ms: 6 * HOUR},
  {value: "24h", label: "24 hours", ms: 24 * HOUR},
  {value: "3d", label: "3 days", ms: 72 * HOUR},
  {value: "7d", label: "7 days", ms: 168 * HOUR},
];

/**
 * The window a query asks for: {length, ms, from, to (Dates), live, pinnedEnd}.
 * lengthKey (default "range") names a WINDOW_LENGTHS value, else `fallback` applies;
 * endKey (default "end") is a UTC time (see parseEnd); absent or unreadable = now (live).
 */
export function readWindow(query, {lengthKey = "range", endKey = "end", fallback = "24h", now = Date.now()} = {}) {
  const length =
    WINDOW_LENGTHS.find((w) => w.value === query.get(lengthKey)) ??
    WINDOW_LENGTHS.find((w) => w.value === fallback);
  const end = parseEnd(query.get(endKey));
  const live = end === null || end.getTime() >= now;
  const to = live ? new Date(now) : end;
  return {length: length.value, ms: length.ms, from: new Date(to.getTime() - length.ms), to, live};
}

/**
 * A URL end value as a Date, or null: "YYYY-MM-DDTHH:MM[:SS]" (what a datetime-local
 * input gives) read as UTC, or any RFC 3339 time with its own offset.
 */
export function parseEnd(text) {
  if (!text) return null;
  const wall = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(text);
  const date = new Date(wall ? `${text}Z` : text);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** A Date as a URL end value (UTC, to the minute), as a datetime-local input shows it. */
export function endValue(date) {
  return date.toISOString().slice(0, 16);
}

/** "2026-11-21 14:05 – 2026-11-22 14:05 UTC" (the date once when both ends share it). */
export function windowLabel(win) {
  const from = formatUtc(win.from.toISOString()).slice(0, 16);
  const to = formatUtc(win.to.toISOString()).slice(0, 16);
  const sameDay = from.slice(0, 10) === to.slice(0, 10);
  return `${from} – ${sameDay ? to.slice(11) : to} UTC${win.live ? " (now)" : ""}`;
}

/**
 * windowStepper(view, win, {endKey, resetKeys}) -> <nav>: the window's span and buttons
 * that move it one length earlier or later, or back to "now" (live). Moving past now
 * returns to live. resetKeys (paging) are dropped on every move.
 */
export function windowStepper(view, win, {endKey = "end", resetKeys = ["cursor"]} = {}) {
  const reset = Object.fromEntries(resetKeys.map((key) => [key, null]));
  const moveTo = (end) => {
    const live = end === null || end.getTime() >= Date.now();
    view.setQuery({...reset, [endKey]: live ? null : endValue(end)});
  };
  const button = (label, attrs, onClick) =>
    h("button", {type: "button", class: "btn btn-small", ...attrs, onClick}, label);
  return h(
    "nav",
    {class: "window-stepper", "aria-label": "Time window"},
    h("span", {class: "window-span"}, windowLabel(win)),
    h(
      "span",
      {class: "window-buttons"},
      button("◀ Earlier", {"aria-label": "Earlier window"}, () =>
        moveTo(new Date(win.to.getTime() - win.ms)),
      ),
      button("Later ▶", {"aria-label": "Later window", disabled: win.live}, () =>
        moveTo(new Date(win.to.getTime() + win.ms)),
      ),
      button("Now", {disabled: win.live}, () => moveTo(null)),
    ),
  );
}
