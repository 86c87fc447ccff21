// Parsers for the /proc files of one process that the `proc` snapshot shows (status, smaps_rollup,
// limits, stack, cmdline, the ppid in stat), pure functions over their text so they are tested on
// captured samples. What a file does not say comes back as null, never as a guess.

export interface ProcStatus {
  name: string | null;
  /** As the kernel words it: "S (sleeping)". */
  state: string | null;
  ppid: number | null;
  threads: number | null;
  /** The real uid. */
  uid: number | null;
}

export function parseStatus(text: string): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const integer = (key: string): number | null => {
    const value = Number((fields.get(key) ?? "").split(/\s+/)[0]);
    return fields.has(key) && Number.isInteger(value) ? value : null;
  };
  return { name: fields.get("Name") ?? null, state: fields.get("State") ?? null, ppid: integer("PPid"), threads: integer("Threads"), uid: integer("Uid") };
}

/** The parent pid from a /proc/<pid>/stat text (field 4, after the command name's last ")"). */
export function parseStatPpid(text: string): number | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const ppid = Number(text.slice(close + 2).split(" ")[1]);
  return Number.isInteger(ppid) && ppid >= 0 ? ppid : null;
}

/** The single-letter state from a stat text: R, S, D, T, t, Z, X, I. */
export function parseStatState(text: string): string | null {
  const close = text.lastIndexOf(")");
  const state = close < 0 ? "" : text.slice(close + 2, close + 3);
  return /^[A-Za-z]$/.test(state) ? state : null;
}

/**
 * smaps_rollup: the process's memory summed over its mappings, in bytes by the kernel's names
 * (Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem, Shared_Clean, Private_Dirty, Swap, …). Rss splits into
 * anonymous, file-backed and shared memory by the Pss_* lines (since Linux 5.8).
 */
export function parseSmapsRollup(text: string): Record<string, number> | null {
  const sizes: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\w+):\s+(\d+) kB$/.exec(line.trim());
    if (match !== null) sizes[match[1] as string] = Number(match[2]) * 1024;
  }
  return Object.keys(sizes).length === 0 ? null : sizes;
}

export interface LimitRow {
  name: string;
  soft: string;
  hard: string;
  /** "files", "bytes", "seconds", … or "" when the kernel gives none. */
  unit: string;
}

/**
 * /proc/<pid>/limits: the kernel prints fixed-width columns ("%-25s %-20s %-20s %-10s"); names
 * have single spaces inside, so columns are cut by position, with the header's positions when it has
 * them.
 */
export function parseLimitsTable(text: string): LimitRow[] {
  const lines = text.split("\n");
  const header = lines[0] ?? "";
  const softAt = header.indexOf("Soft Limit");
  const hardAt = header.indexOf("Hard Limit");
  const unitAt = header.indexOf("Units");
  if (softAt < 0 || hardAt < softAt || unitAt < hardAt) return [];
  const rows: LimitRow[] = [];
  for (const line of lines.slice(1)) {
    if (line.trim() === "") continue;
    rows.push({ name: line.slice(0, softAt).trim(), soft: line.slice(softAt, hardAt).trim(), hard: line.slice(hardAt, unitAt).trim(), unit: line.slice(unitAt).trim() });
  }
  return rows;
}

/** /proc/<pid>/stack lines ("[<0>] ep_poll+0x2a1/0x2d0") without the address column (always 0 unless root with kptr_restrict 0). */
export function parseKernelStack(text: string, linesMax: number): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/^\[<[0-9a-fA-F]+>\]\s*/, "").trim())
    .filter((line) => line !== "")
    .slice(0, linesMax);
}

/** /proc/<pid>/cmdline (NUL-separated) as one line; an argument with spaces is quoted. Empty for kernel threads and zombies. */
export function parseCmdline(text: string, charsMax: number): string {
  const args = text.split("\0");
  if (args[args.length - 1] === "") args.pop();
  const line = args.map((arg) => (arg === "" || /[\s"']/.test(arg) ? JSON.stringify(arg) : arg)).join(" ");
  return line.length <= charsMax ? line : `${line.slice(0, charsMax)}…`;
}

/** /proc/<pid>/wchan: the kernel function a sleeping task waits in; "0" (or nothing) when it runs. */
export function parseWchan(text: string): string | null {
  const trimmed = text.trim();
  return trimmed === "" || trimmed === "0" ? null : trimmed;
}
