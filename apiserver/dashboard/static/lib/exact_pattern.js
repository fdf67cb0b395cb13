// The API filters ids with RE2 patterns (unanchored); a link or a request that means
// "exactly this id" needs the id escaped and anchored.

/** "sim-0001" -> "^sim-0001$", with every regex metacharacter escaped. */
export function exactPattern(text) {
  return `^${String(text).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`;
}
