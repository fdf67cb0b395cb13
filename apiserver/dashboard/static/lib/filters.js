// Filter bars: a form whose fields mirror URL query parameters. Applying it writes the
// URL through view.setQuery (so views are shareable and Back works) and resets paging.

import {h} from "./dom.js";

let uid = 0;

/**
 * filterBar(view, fields, {resetKeys}) -> <form>.
 * fields: [{name, label, type?: "text"|"search"|"number"|"select"|"datetime-local",
 *   options?: [{value, label}] (select), placeholder?, default?, width?}].
 * Initial values come from view.query (else field.default). Submit (Enter or "Apply")
 * writes every field; a select applies as soon as it changes; "Clear" deletes them all.
 * resetKeys (default ["offset", "cursor"]) are deleted whenever filters change.
 */
export function filterBar(view, fields, {resetKeys = ["offset", "cursor"]} = {}) {
  const inputs = new Map();
  const form = h("form", {class: "filter-bar", role: "search"});
  for (const field of fields) {
    const id = `f-${field.name.replace(/[^a-z0-9_-]/gi, "_")}-${++uid}`;
    const value = view.query.get(field.name) ?? field.default ?? "";
    const input = field.type === "select" ? selectInput(field, value) : textInput(field, value);
    input.id = id;
    input.name = field.name;
    if (field.type === "select") input.addEventListener("change", () => apply());
    inputs.set(field.name, input);
    form.append(
      h(
        "div",
        {class: "filter-field", style: field.width ? {width: field.width} : null},
        h("label", {for: id}, field.label),
        input,
      ),
    );
  }

  function apply(values = null) {
    const updates = Object.fromEntries(resetKeys.map((key) => [key, null]));
    for (const [name, input] of inputs) {
      updates[name] = values ? values[name] ?? null : input.value.trim();
    }
    view.setQuery(updates);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  form.append(
    h(
      "div",
      {class: "filter-actions"},
      h("button", {type: "submit", class: "btn btn-primary"}, "Apply"),
      h("button", {type: "button", class: "btn", onClick: () => apply({})}, "Clear"),
    ),
  );
  return form;
}

function textInput(field, value) {
  return h("input", {
    type: field.type ?? "text",
    value,
    placeholder: field.placeholder ?? null,
    autocomplete: "off",
    spellcheck: "false",
  });
}

function selectInput(field, value) {
  const select = h(
    "select",
    null,
    (field.options ?? []).map((o) =>
      h("option", {value: o.value, selected: String(o.value) === String(value)}, o.label ?? o.value),
    ),
  );
  select.value = value;
  return select;
}
