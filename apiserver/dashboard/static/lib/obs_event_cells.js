// Table cells of an observability event, shared by the Events and Agent detail pages.

import {h} from "./dom.js";
import {stateOf} from "./obs_lanes.js";

/** The event's kind, behind the swatch of the lane state it starts (none: not a lane kind). */
export function kindCell(event) {
  const state = stateOf(event.kind);
  return h(
    "span",
    {class: "event-kind"},
    h("span", {class: `sl-swatch ${state ? `sl-state-${state}` : "sl-swatch-none"}`, "aria-hidden": "true"}),
    event.kind,
  );
}

/** The payload as one line of JSON (whole text in the title); null when there is none. */
export function payloadCell(event) {
  if (event.payload === null || event.payload === undefined) return null;
  const text = JSON.stringify(event.payload);
  return h("code", {class: "payload-cell", title: text}, text);
}
