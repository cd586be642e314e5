/** Plain values (what both decoders are normalised to) and a field-by-field difference. */

export type Plain = null | boolean | number | bigint | string | Plain[] | { [key: string]: Plain };

export interface Difference {
  path: string;
  ours: string;
  kaitai: string;
}

const show = (v: Plain | undefined): string =>
  v === undefined ? 'missing' : typeof v === 'bigint' ? `${v}n` : typeof v === 'object' && v !== null ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)) : String(v);

/** Differences between two plain values, at most `limit` of them, each with its path. */
export function differences(a: Plain | undefined, b: Plain | undefined, path = '', limit = 20, out: Difference[] = []): Difference[] {
  if (out.length >= limit) return out;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push({ path: `${path}.length`, ours: String(a.length), kaitai: String(b.length) });
    for (let i = 0; i < Math.min(a.length, b.length); i++) differences(a[i], b[i], `${path}[${i}]`, limit, out);
    return out;
  }
  if (isObject(a) && isObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) differences(a[key], b[key], path ? `${path}.${key}` : key, limit, out);
    return out;
  }
  if (a !== b) out.push({ path: path || '(root)', ours: show(a), kaitai: show(b) });
  return out;
}

function isObject(v: Plain | undefined): v is { [key: string]: Plain } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
