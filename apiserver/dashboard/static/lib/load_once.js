// Several cards of one page often show parts of one answer. Every card re-runs its load()
// on each refresh, in the same tick; sharing the request keeps that one round trip.

/**
 * loadOnce(loader) -> load(): calls made while a load is in flight get its promise;
 * the next call after it settles starts a new one (the next refresh sees fresh data).
 */
export function loadOnce(loader) {
  let pending = null;
  return () => {
    // Cleared on the next task, so every card of this refresh round shares the answer.
    pending ??= loader().finally(() => setTimeout(() => (pending = null), 0));
    return pending;
  };
}
