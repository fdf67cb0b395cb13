// Placeholder until the page is built: shows its title.

import {h} from "../lib/dom.js";

export const title = "Result";

export function render(view) {
  view.root.append(h("h1", {class: "page-title"}, title));
}
