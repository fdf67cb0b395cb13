// Tables whose rows each open a page: a click anywhere on the row goes there, while the
// row's own link stays the keyboard and open-in-new-tab path (rows are not focusable).

/**
 * linkRows(view, tableWrap, rows, pathOf): every <tbody> row i of tableWrap opens
 * pathOf(rows[i]) in the app. Clicks on links and buttons, and clicks that end a text
 * selection, are left alone.
 */
export function linkRows(view, tableWrap, rows, pathOf) {
  tableWrap.querySelectorAll("tbody tr").forEach((tr, i) => {
    if (!rows[i]) return;
    tr.classList.add("row-link");
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a, button, summary, details") || getSelection()?.toString()) return;
      view.navigate(pathOf(rows[i]));
    });
  });
  return tableWrap;
}
