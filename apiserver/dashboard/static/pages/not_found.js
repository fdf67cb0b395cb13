// Unknown in-app paths.

import {h} from "../lib/dom.js";

export const title = "Not found";

export function render(view) {
  view.root.append(
    h(
      "section",
      {class: "card not-found"},
      h("h1", null, "Page not found"),
      h("p", null, "Nothing lives at ", h("code", null, location.pathname), "."),
      h("p", null, view.link("/dashboard", "Go to the dashboard")),
    ),
  );
}
