// Element builders: the only way pages create DOM, so text always goes in as text
// (never parsed as HTML) and attributes stay consistent.

/**
 * Build an element: h("a", {href: "/x", class: "link", onClick: fn}, "text", child, [more]).
 * attrs: `class`, `style` (object), `dataset` (object), `on<Event>` listeners, booleans
 * (true sets an empty attribute, false/null/undefined omit it), anything else as attribute.
 * children: strings/numbers become text, null/false/undefined are skipped, arrays are flattened.
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class" || key === "className") el.className = value;
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Append children to el with the same rules as h(); returns el. */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : text(child));
  }
  return el;
}

/** A text node; null and undefined become "". */
export function text(value) {
  return document.createTextNode(value === null || value === undefined ? "" : String(value));
}

/** Remove every child of el; returns el. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

/**
 * A status chip: colour AND text, so it reads without colour.
 * tone: "ok" | "warn" | "bad" | "info" | "muted".
 */
export function chip(label, tone = "muted") {
  return h("span", {class: `chip chip-${tone}`}, label);
}
