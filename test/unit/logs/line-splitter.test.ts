// The line splitter against a plain model of what it must do, over random byte streams cut into
// random chunks: every line comes out once, in order, decoded as UTF-8 without its newline (and a
// trailing CR), lines over the limit in pieces of at most the limit, each piece but the last marked.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LineSplitter, SPLIT_MARKER } from "../../../src/logs/line-splitter.js";

function model(bytes: Buffer, maxLineBytes: number): string[] {
  const lines: string[] = [];
  const deliver = (piece: Buffer, split: boolean) => {
    const text = piece.toString("utf8");
    const line = text.endsWith("\r") ? text.slice(0, -1) : text;
    lines.push(split ? line + SPLIT_MARKER : line);
  };
  const pieces = (line: Buffer) => {
    if (line.length === 0) return deliver(line, false);
    for (let at = 0; at < line.length; at += maxLineBytes) deliver(line.subarray(at, at + maxLineBytes), at + maxLineBytes < line.length);
  };
  let start = 0;
  for (let newline = bytes.indexOf(10); newline !== -1; newline = bytes.indexOf(10, start)) {
    pieces(bytes.subarray(start, newline));
    start = newline + 1;
  }
  if (start < bytes.length) pieces(bytes.subarray(start));
  return lines;
}

function split(bytes: Buffer, cuts: number[], maxLineBytes: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxLineBytes);
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    splitter.push(bytes.subarray(from, cut));
    from = cut;
  }
  splitter.push(bytes.subarray(from));
  splitter.end();
  return lines;
}

// Text with what makes splitting hard: newlines, CRs, multi-byte characters, long runs.
const piece = fc.oneof(
  fc.constantFrom("\n", "\r\n", "\r", "é", "€", "𝄞", "{\"a\":1}", ""),
  fc.string({ maxLength: 12 }),
  fc.nat({ max: 90 }).map((n) => "x".repeat(n)),
);
const stream = fc.array(piece, { maxLength: 60 }).map((parts) => Buffer.from(parts.join(""), "utf8"));

describe("LineSplitter", () => {
  it("matches the model for any stream, chunking and limit", () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 1, max: 64 }), (bytes, cuts, maxLineBytes) => {
        expect(split(bytes, cuts, maxLineBytes)).toEqual(model(bytes, maxLineBytes));
      }),
      { numRuns: 2_000 },
    );
  });

  it("gives the same lines for a chunk decoded at once as line by line, including broken UTF-8", () => {
    const bytes = Buffer.concat([Buffer.from("ok\n"), Buffer.from([0xe2, 0x0a, 0xe2, 0x82]), Buffer.from("\nlast")]);
    expect(split(bytes, [], 1024)).toEqual(model(bytes, 1024));
    expect(split(bytes, [], 1024)).toEqual(["ok", "\ufffd", "\ufffd", "last"]);
  });

  it("never holds more than one line's worth of bytes from a stream without newlines", () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line), 1000);
    for (let i = 0; i < 100; i++) splitter.push(Buffer.alloc(4096, 0x61));
    expect(lines).toHaveLength(409);
    expect(lines.every((line) => line === "a".repeat(1000) + SPLIT_MARKER)).toBe(true);
  });
});
