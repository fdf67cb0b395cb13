// Formatting for display: numbers, bytes, durations, and times both relative ("5 min ago")
// and absolute in UTC. Missing values render as an em dash everywhere.

import {h} from "./dom.js";

/** What a missing value shows as. */
export const MISSING = "—";

const missing = (v) => v === null || v === undefined || v === "" || Number.isNaN(v);
const numberFormat = new Intl.NumberFormat("en-US");

/** 12345 -> "12,345"; digits fixes the fraction digits (e.g. 1 -> "12.3"). */
export function formatNumber(value, digits = null) {
  if (missing(value)) return MISSING;
  if (digits === null) return numberFormat.format(value);
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** 12.345 -> "12.3 %". */
export function formatPercent(value, digits = 1) {
  return missing(value) ? MISSING : `${Number(value).toFixed(digits)} %`;
}

/** 1536 -> "1.5 KiB" (binary units). */
export function formatBytes(value, digits = 1) {
  if (missing(value)) return MISSING;
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let n = Number(value);
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(digits)} ${units[i]}`;
}

/** Milliseconds -> "850 ms", "4.2 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
export function formatDuration(ms) {
  if (missing(ms)) return MISSING;
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(abs / 1000);
  const sign = ms < 0 ? "-" : "";
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${sign}${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${sign}${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** RFC 3339 -> "2026-11-22 12:00:05 UTC". */
export function formatUtc(iso) {
  if (missing(iso)) return MISSING;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A Date (default now) -> "HH:MM:SS" in UTC. */
export function formatClock(date = new Date()) {
  return date.toISOString().slice(11, 19);
}

/** RFC 3339 -> "just now", "5 min ago", "in 3 h", "2 d ago" relative to now (ms or Date). */
export function formatRelative(iso, now = Date.now()) {
  if (missing(iso)) return MISSING;
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return String(iso);
  const diff = (typeof now === "number" ? now : now.getTime()) - t;
  const s = Math.round(Math.abs(diff) / 1000);
  let span;
  if (s < 10) return "just now";
  if (s < 60) span = `${s} s`;
  else if (s < 3600) span = `${Math.floor(s / 60)} min`;
  else if (s < 86400) span = `${Math.floor(s / 3600)} h`;
  else span = `${Math.floor(s / 86400)} d`;
  return diff >= 0 ? `${span} ago` : `in ${span}`;
}

/** A <time> element: relative text, absolute UTC on hover and in datetime. */
export function timeElement(iso) {
  if (missing(iso)) return h("span", {class: "muted"}, MISSING);
  return h("time", {datetime: iso, title: formatUtc(iso)}, formatRelative(iso));
}
