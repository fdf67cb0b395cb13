// The fleet freeze as a banner card: shown while KV fleet_config/freeze exists, hidden
// otherwise, refreshed with the page. Pages whose data the freeze changes show it.

import {h} from "./dom.js";
import {apiGet} from "./api.js";

/** Append the banner card to the view (hidden while there is no freeze). */
export function freezeBanner(view) {
  view.card(null, {
    className: "freeze-banner card-wide",
    load: () => apiGet("/api/freeze"),
    isEmpty: () => false,
    render(freeze, body) {
      body.closest(".card").hidden = freeze === null;
      if (freeze === null) return;
      const span = [
        freeze.from ? `from ${freeze.from}` : null,
        freeze.until ? `until ${freeze.until}` : "until lifted",
        freeze.tz ? `(${freeze.tz})` : null,
      ].filter(Boolean);
      body.append(
        h("strong", null, "Fleet frozen"),
        ` — scheduled fires are held ${span.join(" ")}`,
        freeze.reason ? `: ${freeze.reason}` : ".",
      );
    },
  });
}
