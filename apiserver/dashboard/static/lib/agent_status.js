// Whether an agent is online, by the API's rule: a heartbeat within the last 2 minutes
// (the same rule the X-Online-Count header counts with).

import {chip} from "./dom.js";

/** The online window of the API, in milliseconds. */
export const ONLINE_WINDOW_MS = 2 * 60 * 1000;

/** "online", "offline", or "never" (no heartbeat yet) for an AgentRow. */
export function agentStatus(agent, now = Date.now()) {
  if (!agent.last_heartbeat) return "never";
  const at = Date.parse(agent.last_heartbeat);
  return now - at <= ONLINE_WINDOW_MS ? "online" : "offline";
}

const CHIPS = {
  online: ["online", "ok"],
  offline: ["offline", "bad"],
  never: ["never seen", "muted"],
};

/** A chip for agentStatus()'s answer. */
export function statusChip(status) {
  const [label, tone] = CHIPS[status] ?? [status, "muted"];
  return chip(label, tone);
}
