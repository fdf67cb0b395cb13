// What a command result's row says about the run: in flight, succeeded, failed, skipped by
// the agent, or reaped by the backend. One reading for every page that lists runs, with
// the synthetic exit codes of the agents spelled out.

import {chip} from "./dom.js";

/** Why an agent skipped a run, by its synthetic exit code (only with skipped: true). */
export const SKIP_REASONS = {
  122: "unsupported on this OS",
  124: "another version pinned",
  125: "past its deadline",
  126: "script revoked",
  127: "cached state too old",
};

/** Exit codes that are failures with a name of their own. */
const NAMED_FAILURES = {
  123: "refused: unsigned command",
  "-1": "reaped: no result in time",
};

/**
 * The state of a result row: "running" (no finish yet), "ok" (exit 0), "skipped"
 * (skipped: true), "reaped" (reaped: true) or "failed".
 */
export function runState(result) {
  if (result.reaped) return "reaped";
  if (!result.finished_at || result.exit_code === null || result.exit_code === undefined) return "running";
  if (result.skipped) return "skipped";
  return result.exit_code === 0 ? "ok" : "failed";
}

/** Words for a result's exit: "exit 0", "exit 125: past its deadline", ... */
export function exitText(result) {
  const code = result.exit_code;
  if (code === null || code === undefined) return "no exit code yet";
  const why = result.skipped ? SKIP_REASONS[code] : NAMED_FAILURES[String(code)];
  return why ? `exit ${code}: ${why}` : `exit ${code}`;
}

/** A status chip for a result row: text and colour. */
export function runChip(result) {
  const state = runState(result);
  const code = result.exit_code;
  if (state === "running") return chip("running", "info");
  if (state === "ok") return chip("ok", "ok");
  if (state === "skipped") return withTitle(chip("skipped", "warn"), exitText(result));
  if (state === "reaped") return withTitle(chip("timed out", "bad"), exitText(result));
  return withTitle(chip(`failed · exit ${code}`, "bad"), exitText(result));
}

function withTitle(el, title) {
  el.title = title;
  return el;
}
