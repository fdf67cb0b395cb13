// An execution's status as a chip: the executions table's status words (pending,
// running, completed, expired) with a colour each; any other word shows as is.

import {chip} from "./dom.js";

/** The statuses an execution moves through, in order, with their chip tones. */
export const EXECUTION_STATUSES = [
  {value: "pending", label: "pending", tone: "muted"},
  {value: "running", label: "running", tone: "info"},
  {value: "completed", label: "completed", tone: "ok"},
  {value: "expired", label: "expired", tone: "warn"},
];

/** A chip for an execution's status. */
export function execChip(status) {
  const known = EXECUTION_STATUSES.find((s) => s.value === status);
  return chip(known?.label ?? status ?? "unknown", known?.tone ?? "muted");
}
