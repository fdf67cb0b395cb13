// What observability events mean for a PC's state over time: four lanes (power, session,
// sleep, activity), each a sequence of states that an event of the lane's kinds switches.
// The kind-to-lane mapping is the API's (lane_seeds uses the same one) and must stay so.

/** Lanes in display order; kinds map to the state an event of that kind starts. */
export const LANES = [
  {
    key: "power",
    label: "Power",
    kinds: {
      boot: "on",
      log_service_started: "on",
      shutdown: "off",
      log_service_stopped: "off",
      unexpected_shutdown: "crashed",
    },
  },
  {key: "session", label: "Session", kinds: {logon: "logged-on", logoff: "logged-off"}},
  {key: "sleep", label: "Sleep", kinds: {sleep: "asleep", resume: "awake"}},
  {key: "active", label: "Activity", kinds: {active: "active", idle: "idle"}},
];

/** Every state a band can show, per lane, with its legend text. */
export const STATES = {
  on: "On",
  off: "Off",
  crashed: "Crashed (unexpected shutdown)",
  "logged-on": "Logged on",
  "logged-off": "Logged off",
  asleep: "Asleep",
  awake: "Awake",
  active: "Active",
  idle: "Idle",
  unknown: "Unknown (no event yet)",
};

/** Every kind that belongs to a lane (what the timeline asks the API for). */
export const LANE_KINDS = LANES.flatMap((lane) => Object.keys(lane.kinds));

const laneByKind = new Map(LANES.flatMap((lane) => Object.keys(lane.kinds).map((k) => [k, lane])));

/** The lane key of an event kind, or null when the kind is in no lane. */
export function laneOf(kind) {
  return laneByKind.get(kind)?.key ?? null;
}

/** The state an event of this kind starts, or null when the kind is in no lane. */
export function stateOf(kind) {
  return laneByKind.get(kind)?.kinds[kind] ?? null;
}

/**
 * Bands of one PC over [from, to) (milliseconds): {laneKey: [{start, end, state, event,
 * events}]}. seeds: the PC's newest event of each lane before `from` (the state each lane
 * starts in; none = unknown); events: the PC's lane events inside the window, any order.
 * A band starts at the event that changed the state; repeats of the same state extend it
 * (events counts them). startAt (default from) is where knowledge begins: before it the
 * lanes are unknown (used when the window's oldest events were cut off).
 */
export function pcBands({seeds = [], events, from, to, startAt = from}) {
  const out = {};
  for (const lane of LANES) {
    const seed = startAt === from ? seeds.find((e) => laneOf(e.kind) === lane.key) : null;
    const own = events
      .filter((e) => laneOf(e.kind) === lane.key)
      .map((e) => ({...e, t: Date.parse(e.at)}))
      .sort((a, b) => a.t - b.t || a.id - b.id);
    const bands = [];
    if (startAt > from) bands.push({start: from, end: startAt, state: "unknown", event: null, events: 0});
    let open = {start: startAt, state: seed ? stateOf(seed.kind) : "unknown", event: seed ?? null, events: 0};
    for (const event of own) {
      const t = Math.min(Math.max(event.t, from), to);
      const state = stateOf(event.kind);
      if (state === open.state) {
        open.events += 1;
        continue;
      }
      if (t > open.start) bands.push({...open, end: t});
      open = {start: t, state, event, events: 1};
    }
    if (to > open.start) bands.push({...open, end: to});
    out[lane.key] = bands;
  }
  return out;
}

/**
 * The accessible text of one band: "Session: Logged on (user), from logon (winlog:Security)".
 * span names the shown period ("window", "range"); countRepeats adds how many events of
 * the same kind the band merges.
 */
export function bandText(lane, band, {span = "window", countRepeats = true} = {}) {
  const state = STATES[band.state];
  if (!band.event) return `${lane.label}: ${state}`;
  const user = band.event.payload?.user;
  const who = band.state === "logged-on" && user ? ` (${user})` : "";
  const cause = `${band.event.kind} (${band.event.source})`;
  if (!band.events) return `${lane.label}: ${state}${who}, since ${cause} before the ${span}`;
  const repeats =
    countRepeats && band.events > 1 ? `, ${band.events} ${band.event.kind} events` : "";
  return `${lane.label}: ${state}${who}, from ${cause}${repeats}`;
}

/** The legend groups of a lane chart: each lane's states, then the unknown state. */
export function legendGroups() {
  return LANES.map((lane) => ({
    label: lane.label,
    states: [...new Set(Object.values(lane.kinds))].map((state) => ({state, label: STATES[state]})),
  })).concat([{label: "Any lane", states: [{state: "unknown", label: STATES.unknown}]}]);
}
