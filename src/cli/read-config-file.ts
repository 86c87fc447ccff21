import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { CONFIG_BYTES_MAX } from "../config/load.js";

export type ReadResult = { ok: true; text: string } | { ok: false; error: string };

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "it is a folder, not a file",
  ENOTDIR: "a part of the path is not a folder",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the path is too long",
};

/** Reads at most CONFIG_BYTES_MAX + 1 bytes, so that `-c /dev/zero` fails fast instead of filling memory. */
export function readConfigFile(path: string): ReadResult {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    if (fstatSync(fd).isDirectory()) return { ok: false, error: `cannot read config file "${path}": ${REASONS.EISDIR}` };
    const buffer = Buffer.alloc(CONFIG_BYTES_MAX + 1);
    let length = 0;
    for (let bytesRead = -1; bytesRead !== 0 && length < buffer.length; length += bytesRead) {
      bytesRead = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length > CONFIG_BYTES_MAX) return { ok: false, error: `cannot read config file "${path}": larger than ${CONFIG_BYTES_MAX} bytes` };
    return { ok: true, text: buffer.subarray(0, length).toString("utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    const reason = REASONS[code] ?? (error instanceof Error ? error.message : String(error));
    return { ok: false, error: `cannot read config file "${path}": ${reason}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
