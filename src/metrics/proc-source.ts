// The only reads of /proc behind the per-worker figures. Every outcome of a read is a value:
// a process that vanished (ENOENT, ESRCH), one that is not ours to look at (EACCES), and
// Monoceros itself out of descriptors (EMFILE, ENFILE) all come back as "nothing", so a scrape
// under fd exhaustion returns what it can instead of failing.
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";

/** What the process figures need from /proc; a fake one in tests. */
export interface ProcSource {
  /** Pids of every process (thread-group leaders only, as /proc lists them); [] when /proc cannot be listed. */
  pids(): number[];
  /** The text of /proc/<pid>/stat, or null. */
  stat(pid: number): string | null;
  /** The text of /proc/<pid>/limits, or null. */
  limits(pid: number): string | null;
  /** How many descriptors the process has open, or null. */
  openFds(pid: number): number | null;
}

/**
 * /proc/<pid>/stat is under 1 KiB (the command name is at most 15 bytes) and /proc/<pid>/limits
 * under 2 KiB; a read that fills the buffer is cut short, and its text then fails to parse.
 */
const READ_BUFFER_BYTES = 8 * 1024;
const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/**
 * One read of a small /proc file into a shared buffer: the kernel fills the buffer from the file's
 * whole text, so one open, one read and one close per file (not the usual extra read that returns 0).
 */
function readSmall(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    const length = readSync(fd, readBuffer, 0, READ_BUFFER_BYTES, null);
    return readBuffer.toString("latin1", 0, length);
  } catch {
    return null; // ESRCH: the process exited between open and read
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing left to do with it
    }
  }
}

const isDigit = (code: number) => code >= 48 && code <= 57;

export interface ProcfsOptions {
  /** Where proc is mounted; a folder shaped like it in tests. */
  root?: string;
  /**
   * Count a process's descriptors from the size of /proc/<pid>/fd (Linux 6.2 and later; older
   * kernels report 0 and the folder is listed instead). Off for a folder that is not proc, where
   * a folder's size means something else.
   */
  fdsFromFolderSize?: boolean;
}

export function procfs({ root = "/proc", fdsFromFolderSize = true }: ProcfsOptions = {}): ProcSource {
  return {
    pids() {
      let entries: string[];
      try {
        entries = readdirSync(root);
      } catch {
        return [];
      }
      const pids: number[] = [];
      for (const entry of entries) if (isDigit(entry.charCodeAt(0))) pids.push(Number(entry));
      return pids;
    },
    stat: (pid) => readSmall(`${root}/${pid}/stat`),
    limits: (pid) => readSmall(`${root}/${pid}/limits`),
    openFds(pid) {
      const folder = `${root}/${pid}/fd`;
      try {
        // One stat instead of listing every descriptor: a quarter of the cost, whatever their number.
        const size = fdsFromFolderSize ? statSync(folder).size : 0;
        return size > 0 ? size : readdirSync(folder).length;
      } catch {
        return null;
      }
    },
  };
}
