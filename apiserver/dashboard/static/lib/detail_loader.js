// The first request of a detail page (one agent, one result): asked before the page is
// built, so an unknown id gets a clear answer instead of a page of empty cards.

import {apiGet} from "./api.js";
import {notFoundCard} from "./not_found_card.js";

/**
 * detailLoader(view, path, notFound) asks for `path` once. On a 404 it shows
 * notFoundCard(view, notFound) and returns null. Otherwise it returns the page's load
 * function: its first call hands back that answer (after any other error it asks again,
 * so the cards show the error with Retry), later calls ask anew.
 */
export async function detailLoader(view, path, notFound) {
  let first = null;
  try {
    first = await apiGet(path);
  } catch (err) {
    if (err.status === 404) {
      notFoundCard(view, notFound);
      return null;
    }
  }
  return async () => {
    const ready = first;
    first = null;
    return ready ?? apiGet(path);
  };
}
