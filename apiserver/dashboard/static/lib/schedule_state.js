// Where a schedule stands now, as one status with a chip: it runs on the agents, is
// paused, outside its active dates, held by the fleet freeze, or enabled. The rules are
// the scheduler's gates (scheduler.md §3), read in the browser's clock.

import {chip} from "./dom.js";

/** Every status, in the order the gates apply, with its chip tone and meaning. */
export const SCHEDULE_STATES = {
  agent: {label: "agent-run", tone: "info", help: "the agents fire it, not the backend"},
  paused: {label: "paused", tone: "muted", help: "disabled: it does not fire until enabled"},
  ended: {label: "ended", tone: "muted", help: "its active dates are over"},
  waiting: {label: "not started", tone: "info", help: "its active dates have not begun"},
  frozen: {label: "frozen", tone: "warn", help: "the fleet freeze holds scheduled fires"},
  enabled: {label: "enabled", tone: "ok", help: "fires as scheduled"},
};

/**
 * The status key of a stored schedule: agent, paused, ended, waiting, frozen or enabled.
 * freeze: the /api/freeze answer (null = no freeze).
 */
export function scheduleState(schedule, freeze, now = Date.now()) {
  if (schedule.runs_on === "agent" || (schedule.when && "on" in schedule.when)) return "agent";
  if (schedule.enabled === false) return "paused";
  const active = schedule.active ?? {};
  const from = bound(active.from);
  const until = bound(active.until);
  // The scheduler lets an unreadable active bound through (fail open).
  if (until !== null && !Number.isNaN(until) && now >= until) return "ended";
  if (from !== null && !Number.isNaN(from) && now < from) return "waiting";
  if (freezeHolds(freeze, now)) return "frozen";
  return "enabled";
}

/** A status chip whose title says what the status means. */
export function stateChip(state) {
  const s = SCHEDULE_STATES[state] ?? {label: state, tone: "muted", help: ""};
  const el = chip(s.label, s.tone);
  el.title = s.help;
  return el;
}

/**
 * Whether a freeze holds now: none = no; {} = indefinitely; else within [from, until).
 * Like the scheduler, a bound that cannot be read counts as frozen (fail closed).
 */
export function freezeHolds(freeze, now = Date.now()) {
  if (freeze === null || freeze === undefined) return false;
  const from = bound(freeze.from);
  const until = bound(freeze.until);
  if (Number.isNaN(from) || Number.isNaN(until)) return true;
  return (from === null || now >= from) && (until === null || now < until);
}

// "YYYY-MM-DD" (midnight; UTC here, as the server's local zone is not known to the
// browser) or RFC 3339 -> ms; absent -> null; unreadable -> NaN.
function bound(text) {
  if (text === null || text === undefined || text === "") return null;
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return Date.parse(`${text}T00:00:00Z`);
  return Date.parse(text);
}
