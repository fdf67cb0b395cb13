// A schedule's coverage as one stacked bar: how many of its target PCs last ran the job
// successfully, failed, are running or have no run yet. The counts are also written out,
// so the bar is never the only way to read them.

import {h} from "./dom.js";
import {formatNumber} from "./format.js";

/** Coverage states in bar order, with their words. */
export const COVERAGE_STATES = [
  {key: "ok", label: "ok"},
  {key: "fail", label: "failed"},
  {key: "running", label: "running"},
  {key: "pending", label: "pending"},
];

/**
 * coverageBar({total, ok, fail, running, pending}, {compact, name}) -> element.
 * name: what the bar's accessible label calls the counts (default "Coverage").
 */
export function coverageBar(counts, {compact = false, name = "Coverage"} = {}) {
  const total = counts.total ?? 0;
  const words = COVERAGE_STATES.map((s) => `${formatNumber(counts[s.key] ?? 0)} ${s.label}`);
  const summary = `${words.join(", ")} of ${formatNumber(total)} PCs`;
  const percent = total ? Math.round(((counts.ok ?? 0) / total) * 100) : 0;
  const bar = h(
    "div",
    {class: "cov-bar", role: "img", "aria-label": `${name}: ${summary}`, title: summary},
    total
      ? COVERAGE_STATES.filter((s) => counts[s.key]).map((s) =>
          h("span", {class: `cov-seg cov-${s.key}`, style: {width: `${(counts[s.key] / total) * 100}%`}}),
        )
      : null,
  );
  return h(
    "div",
    {class: `coverage${compact ? " coverage-compact" : ""}`},
    h("div", {class: "cov-line"}, bar, h("span", {class: "cov-percent"}, total ? `${percent} %` : "no PCs")),
    h(
      "div",
      {class: "cov-counts"},
      COVERAGE_STATES.map((s) =>
        h(
          "span",
          {class: `cov-count${counts[s.key] ? "" : " cov-zero"}`},
          h("span", {class: `cov-dot cov-${s.key}`, "aria-hidden": "true"}),
          `${formatNumber(counts[s.key] ?? 0)} ${s.label}`,
        ),
      ),
      h("span", {class: "cov-count cov-total"}, `of ${formatNumber(total)}`),
    ),
  );
}
