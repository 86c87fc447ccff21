// Splits a byte stream into lines without holding more than one line's worth of bytes: a
// worker that writes without newlines cannot grow Monoceros's memory past maxLineBytes.

export const LINE_BYTES_MAX_DEFAULT = 64 * 1024;

/** Appended to every piece of a line that was longer than the limit, except its last. */
export const SPLIT_MARKER = " …[line split: longer than the limit]";

const NEWLINE = 0x0a;

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineBytes = LINE_BYTES_MAX_DEFAULT,
  ) {}

  /** Feeds a chunk; calls onLine for every complete line in it (without its newline). */
  push(chunk: Buffer): void {
    let start = 0;
    if (this.pendingBytes > 0) {
      // First finish the line the previous chunk began.
      const newline = chunk.indexOf(NEWLINE);
      if (newline === -1) {
        this.take(chunk, 0, chunk.length);
        return;
      }
      this.take(chunk, 0, newline);
      this.emit(false);
      start = newline + 1;
    }
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    if (lastNewline >= start && lastNewline - start <= this.maxLineBytes) {
      // Whole lines, none of them over the limit: decode them in one go and split the text. The
      // same text as line by line: a newline byte is never part of a multi-byte UTF-8 sequence.
      const text = chunk.toString("utf8", start, lastNewline);
      let from = 0;
      for (let newline = text.indexOf("\n"); newline !== -1; newline = text.indexOf("\n", from)) {
        this.deliver(text.slice(from, newline), false);
        from = newline + 1;
      }
      this.deliver(text.slice(from), false);
      start = lastNewline + 1;
    } else {
      for (let newline = chunk.indexOf(NEWLINE, start); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
        this.take(chunk, start, newline);
        this.emit(false);
        start = newline + 1;
      }
    }
    if (start < chunk.length) this.take(chunk, start, chunk.length);
  }

  /** Emits what is left (a last line without a newline) when the stream ends. */
  end(): void {
    if (this.pendingBytes > 0) this.emit(false);
  }

  private take(chunk: Buffer, start: number, end: number): void {
    while (start < end) {
      const room = this.maxLineBytes - this.pendingBytes;
      const piece = Math.min(room, end - start);
      this.pending.push(chunk.subarray(start, start + piece));
      this.pendingBytes += piece;
      start += piece;
      if (this.pendingBytes >= this.maxLineBytes && start < end) this.emit(true);
    }
  }

  private emit(split: boolean): void {
    const text = this.pending.length === 1 ? (this.pending[0] as Buffer).toString("utf8") : Buffer.concat(this.pending, this.pendingBytes).toString("utf8");
    this.pending = [];
    this.pendingBytes = 0;
    this.deliver(text, split);
  }

  private deliver(text: string, split: boolean): void {
    const line = text.endsWith("\r") ? text.slice(0, -1) : text;
    this.onLine(split ? line + SPLIT_MARKER : line);
  }
}
