// A stored schedule (wire-contract Schedule) in words: its trigger, target, zone and
// constraints, for the schedule pages. Unknown shapes fall back to their JSON, so a newer
// field never renders as nothing.

/** The `when` object as a sentence: "Daily at 03:15", "Per PC, every 1d", ... */
export function describeWhen(when) {
  if (!when || typeof when !== "object") return "—";
  if ("per_pc" in when) return reconcile("Per PC", "each PC once", when.per_pc);
  if ("per_target" in when) return reconcile("Per target", "until one PC of the target succeeds", when.per_target);
  if ("calendar" in when) {
    const {at, days} = when.calendar ?? {};
    if (typeof at === "string" && /\d{4}[-/]\d{2}[-/]\d{2}/.test(at)) return `Once, at ${at}`;
    if (!days || !days.length || (days.length === 1 && days[0] === "*")) return `Daily at ${at}`;
    return `At ${at} on ${days.join(", ")}`;
  }
  if ("on" in when) return `On agent events: ${[].concat(when.on).join(", ")}`;
  return JSON.stringify(when);
}

function reconcile(prefix, once, policy) {
  if (policy === "once") return `${prefix}: ${once}`;
  if (policy && typeof policy === "object" && policy.every) return `${prefix}, every ${policy.every}`;
  return `${prefix}: ${JSON.stringify(policy)}`;
}

/** Whether the trigger has fire instants (a calendar), polls (per_pc/per_target) or is agent-side. */
export function triggerKind(when) {
  if (when && typeof when === "object") {
    if ("calendar" in when) return "calendar";
    if ("per_pc" in when || "per_target" in when) return "reconcile";
    if ("on" in when) return "event";
  }
  return "unknown";
}

/** Target (and rollout) in words: "All PCs", "Groups office, lab", "3 PCs: a, b, c". */
export function describeTarget(target, rollout) {
  const parts = [];
  if (target?.all) parts.push("All PCs");
  if (target?.groups?.length) parts.push(`${plural(target.groups.length, "Group", "Groups")} ${target.groups.join(", ")}`);
  if (target?.pcs?.length) {
    const shown = target.pcs.slice(0, 3).join(", ");
    const more = target.pcs.length > 3 ? `, +${target.pcs.length - 3} more` : "";
    parts.push(`${target.pcs.length} ${target.pcs.length === 1 ? "PC" : "PCs"}: ${shown}${more}`);
  }
  const waves = rollout?.waves?.length ?? 0;
  if (waves) parts.push(`rollout in ${waves} ${plural(waves, "wave", "waves")}`);
  return parts.length ? parts.join(" + ") : "No target";
}

/** The schedule's zone: "UTC", "server local time" or the IANA name. */
export function describeZone(tz) {
  if (!tz || tz === "local") return "server local time";
  if (tz === "utc") return "UTC";
  return tz;
}

/** Rollout waves in words: "office after 0s → lab after 30m". */
export function describeWaves(rollout) {
  return (rollout?.waves ?? []).map((w) => `${w.group} after ${w.delay ?? "0s"}`).join(" → ");
}

function plural(n, one, many) {
  return n === 1 ? one : many;
}
