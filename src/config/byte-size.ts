// Memory sizes: a whole number of bytes, or a number with a unit. Decimal (K, M, G, KB, MB, GB)
// and binary (Ki, Mi, Gi, KiB, MiB, GiB) units are both accepted because Kubernetes users write
// the former for limits and the latter everywhere else.

const BYTES_PER_UNIT: Readonly<Record<string, number>> = {
  b: 1,
  k: 1e3, kb: 1e3, ki: 1024, kib: 1024,
  m: 1e6, mb: 1e6, mi: 1024 ** 2, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gi: 1024 ** 3, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, ti: 1024 ** 4, tib: 1024 ** 4,
};

export type ByteSizeResult = { ok: true; bytes: number } | { ok: false; error: string };

export function parseByteSize(value: unknown): ByteSizeResult {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0
      ? { ok: true, bytes: value }
      : { ok: false, error: "must be a whole number of bytes (>= 0) or a size such as 512MiB" };
  }
  if (typeof value !== "string") return { ok: false, error: "must be a size such as 512MiB or a number of bytes" };
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = (match?.[2] ?? "").toLowerCase();
  const bytesPerUnit = unit === "" ? 1 : BYTES_PER_UNIT[unit];
  if (!match || bytesPerUnit === undefined) {
    return { ok: false, error: "must be a size such as 512MiB, 1Gi, 800M or a number of bytes" };
  }
  return { ok: true, bytes: Math.round(Number(match[1]) * bytesPerUnit) };
}
