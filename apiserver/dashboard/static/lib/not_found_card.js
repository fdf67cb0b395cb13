// The page shown for an id nothing has: what was asked for, why it may be missing, and
// the way back to the list it would be in.

import {h} from "./dom.js";

/**
 * notFoundCard(view, {title, lead, id, why, back: [path, label]}) appends the card and
 * sets the document title, e.g. "Agent not found" / "No agent has the PC id" / <id> /
 * "It has never sent a heartbeat, or the id is mistyped."
 */
export function notFoundCard(view, {title, lead, id, why, back}) {
  document.title = `${title} · kanade`;
  view.root.append(
    h(
      "section",
      {class: "card not-found"},
      h("h1", null, title),
      h("p", null, `${lead} `, h("code", null, id), `. ${why}`),
      h("p", null, view.link(...back)),
    ),
  );
}
