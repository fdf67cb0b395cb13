// Pagers bound to the URL: offset/limit paging (agents) and keyset cursors (results,
// executions, audit, events). Moving writes the query through view.setQuery.

import {h} from "./dom.js";
import {formatNumber} from "./format.js";

/**
 * offsetPager(view, {total, limit, count?, offsetKey?}) -> <nav>.
 * "1–50 of 1,234" and Previous/Next buttons; reads the offset from view.query[offsetKey].
 */
export function offsetPager(view, {total, limit, count = null, offsetKey = "offset"}) {
  const offset = Math.max(0, Number.parseInt(view.query.get(offsetKey) ?? "0", 10) || 0);
  const shown = count ?? Math.max(0, Math.min(limit, total - offset));
  const range = shown ? `${formatNumber(offset + 1)}–${formatNumber(offset + shown)}` : "0";
  const go = (next) => () => view.setQuery({[offsetKey]: next > 0 ? next : null});
  return h(
    "nav",
    {class: "pager", "aria-label": "Pages"},
    h("span", {class: "pager-range"}, `${range} of ${formatNumber(total)}`),
    h(
      "button",
      {type: "button", class: "btn", disabled: offset <= 0, onClick: go(Math.max(0, offset - limit))},
      "Previous",
    ),
    h(
      "button",
      {type: "button", class: "btn", disabled: offset + limit >= total, onClick: go(offset + limit)},
      "Next",
    ),
  );
}

/**
 * cursorPager(view, {nextCursor, cursorKey?}) -> <nav>.
 * nextCursor: the X-Next-Cursor header (null on the last page). "Newest" returns to the
 * first page; "Older" follows the cursor; the browser's Back goes to the previous page.
 */
export function cursorPager(view, {nextCursor, cursorKey = "cursor"}) {
  const deep = view.query.has(cursorKey);
  return h(
    "nav",
    {class: "pager", "aria-label": "Pages"},
    h(
      "button",
      {type: "button", class: "btn", disabled: !deep, onClick: () => view.setQuery({[cursorKey]: null})},
      "Newest",
    ),
    h(
      "button",
      {
        type: "button",
        class: "btn",
        disabled: !nextCursor,
        onClick: () => view.setQuery({[cursorKey]: nextCursor}),
      },
      "Older",
    ),
  );
}

/**
 * pageSizeSelect(view, {choices, fallback, key?, resetKeys?}) -> labelled <select>.
 * Changing it writes key (default "limit") and drops the paging keys.
 */
export function pageSizeSelect(
  view,
  {choices = [50, 200, 1000], fallback = choices[0], key = "limit", resetKeys = ["offset", "cursor"]} = {},
) {
  const id = `page-size-${key}`;
  const current = view.query.get(key) ?? String(fallback);
  const select = h(
    "select",
    {id},
    choices.map((n) => h("option", {value: n, selected: String(n) === current}, String(n))),
  );
  select.addEventListener("change", () => {
    const updates = Object.fromEntries(resetKeys.map((k) => [k, null]));
    view.setQuery({...updates, [key]: select.value});
  });
  return h("div", {class: "page-size"}, h("label", {for: id}, "Rows"), select);
}
