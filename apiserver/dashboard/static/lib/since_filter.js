// "Since" filters of lists that take a lower time bound (results, audit): a short choice
// of spans kept in the URL, turned into the RFC 3339 bound the API wants at load time, so
// an open page keeps following now.

/** The spans a list may go back, as URL values; "all" sends no bound. */
export const SINCE_CHOICES = [
  {value: "1h", label: "Last hour", ms: 3600 * 1000},
  {value: "24h", label: "Last 24 hours", ms: 24 * 3600 * 1000},
  {value: "7d", label: "Last 7 days", ms: 7 * 24 * 3600 * 1000},
  {value: "30d", label: "Last 30 days", ms: 30 * 24 * 3600 * 1000},
  {value: "all", label: "All time", ms: null},
];

/** The chosen span's URL value: `asked` when it is one of SINCE_CHOICES, else `fallback`. */
export function sinceValue(asked, fallback = "24h") {
  return SINCE_CHOICES.some((c) => c.value === asked) ? asked : fallback;
}

/** The API bound for a span value: an RFC 3339 time `ms` before now, or null for "all". */
export function sinceBound(value, now = Date.now()) {
  const choice = SINCE_CHOICES.find((c) => c.value === value);
  return choice?.ms ? new Date(now - choice.ms).toISOString() : null;
}

/** A filterBar select field for the span (name "since"). */
export function sinceField(fallback = "24h", label = "Started") {
  return {
    name: "since",
    label,
    type: "select",
    default: fallback,
    options: SINCE_CHOICES.map((c) => ({value: c.value, label: c.label})),
  };
}
