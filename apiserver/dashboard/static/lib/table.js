// Data tables: header cells with scope, optional sortable headers (the page owns the
// sort state, usually in the URL), and a wrapper that scrolls horizontally on phones.

import {h} from "./dom.js";
import {MISSING} from "./format.js";

/**
 * dataTable({columns, rows, sort, onSort, empty, caption, rowClass}) -> element (a scroll wrapper).
 * columns: [{key, label, render?(row) -> Node|string, sortable?, align?: "right", className?}].
 * sort: {key, dir: "asc"|"desc"} of the current order; onSort(key, dir) when a sortable
 * header is clicked (clicking the sorted column flips dir). empty: text when rows is empty.
 * rowClass(row): optional class of a row's <tr> (e.g. to highlight a problem row).
 */
export function dataTable({
  columns,
  rows,
  sort = null,
  onSort = null,
  empty = "No rows.",
  caption,
  rowClass = null,
}) {
  const head = h(
    "tr",
    null,
    columns.map((col) => headerCell(col, sort, onSort)),
  );
  const body = rows.length
    ? rows.map((row) =>
        h(
          "tr",
          rowClass ? {class: rowClass(row) || null} : null,
          columns.map((col) => h("td", {class: cellClass(col)}, cellValue(col, row))),
        ),
      )
    : h("tr", null, h("td", {class: "table-empty", colspan: columns.length}, empty));
  const table = h(
    "table",
    {class: "data-table"},
    caption ? h("caption", {class: "visually-hidden"}, caption) : null,
    h("thead", null, head),
    h("tbody", null, body),
  );
  return h("div", {class: "table-wrap"}, table);
}

function cellClass(col) {
  return [col.align === "right" ? "num" : "", col.className ?? ""].join(" ").trim() || null;
}

function cellValue(col, row) {
  if (col.render) return col.render(row) ?? MISSING;
  const value = row[col.key];
  return value === null || value === undefined || value === "" ? MISSING : String(value);
}

function headerCell(col, sort, onSort) {
  const sorted = sort && sort.key === col.key ? sort.dir : null;
  const attrs = {
    scope: "col",
    class: cellClass(col),
    "aria-sort": sorted ? (sorted === "asc" ? "ascending" : "descending") : null,
  };
  if (!col.sortable || !onSort) return h("th", attrs, col.label);
  const next = sorted === "asc" ? "desc" : sorted === "desc" ? "asc" : col.defaultDir ?? "asc";
  const arrow = sorted ? (sorted === "asc" ? " ▲" : " ▼") : "";
  return h(
    "th",
    attrs,
    h(
      "button",
      {type: "button", class: "sort-button", onClick: () => onSort(col.key, next)},
      col.label,
      h("span", {"aria-hidden": "true"}, arrow),
    ),
  );
}
