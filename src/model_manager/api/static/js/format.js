// Units: GPU memory in GiB (as the GPU report and Ollama's memory figures count), downloads in GB
// (decimal, as Ollama and the catalog count them).

const GIB = 2 ** 30;

export const DASH = '—';

export function gib(bytes, digits = 1) {
  if (bytes === null || bytes === undefined) return DASH;
  return `${(bytes / GIB).toFixed(digits)} GiB`;
}

export function gibOf(gb, digits = 1) {
  return gb === null || gb === undefined ? DASH : `${Number(gb).toFixed(digits)} GiB`;
}

export function gbDecimal(bytes) {
  if (!bytes) return '0 GB';
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
}

export function downloadSize(mb) {
  return mb ? (mb >= 1000 ? `${(mb / 1000).toFixed(1)} GB` : `${mb} MB`) : DASH;
}

export function percent(fraction, digits = 0) {
  return fraction === null || fraction === undefined ? DASH : `${(fraction * 100).toFixed(digits)}%`;
}

export function seconds(value) {
  if (value === null || value === undefined) return DASH;
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(1)} s`;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function when(iso) {
  if (!iso) return DASH;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function clock(date = new Date()) {
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "48% GPU / 52% CPU", as `ollama ps` describes a model split between the two. */
export function split(fractionOnGpu) {
  const gpu = Math.round(fractionOnGpu * 100);
  if (gpu >= 100) return '100% GPU';
  if (gpu <= 0) return '100% CPU';
  return `${gpu}% GPU / ${100 - gpu}% CPU`;
}
