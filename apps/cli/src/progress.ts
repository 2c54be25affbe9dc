/** Where progress goes: stderr, so stdout stays the command's result (an export may be on it). */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Without a terminal, a line each time the count passes another multiple of this. */
  every?: number;
  /** On a terminal, the least time between redraws of the one updating line. */
  redrawMs?: number;
  /** Milliseconds; a test passes its own. */
  now?: () => number;
}

/**
 * Counts something long-running for the person at the terminal: one line redrawn in place on a
 * terminal, else (a log, a pipe, CI) a line every `every` items, so a million-event export writes
 * a hundred lines rather than a million or none. Each line has the count and the rate, which is
 * what tells a responder whether to wait or to look elsewhere.
 */
export class Progress {
  private readonly stream: ProgressStream;
  private readonly every: number;
  private readonly redrawMs: number;
  private readonly now: () => number;
  private readonly started: number;
  private nextLine: number;
  private lastDraw = -Infinity;
  private drawn = false;

  /** `label`: what is counted, as `export` or `  keys`; `noun`: the count's unit, as `events`. */
  constructor(
    private readonly label: string,
    private readonly noun: string,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.every = options.every ?? 10_000;
    this.redrawMs = options.redrawMs ?? 250;
    this.now = options.now ?? Date.now;
    this.started = this.now();
    this.nextLine = this.every;
  }

  /** The count so far; cheap enough to call once per item. */
  update(count: number): void {
    if (this.stream.isTTY) {
      const now = this.now();
      if (now - this.lastDraw < this.redrawMs) return;
      this.lastDraw = now;
      this.drawn = true;
      this.stream.write(`\r${this.line(count, now)}\x1b[K`);
      return;
    }
    if (count < this.nextLine) return;
    this.stream.write(`${this.line(count, this.now())}\n`);
    this.nextLine = (Math.floor(count / this.every) + 1) * this.every;
  }

  /** The last line, always written: the total, the time taken and the rate. */
  done(count: number): void {
    const now = this.now();
    const seconds = (now - this.started) / 1000;
    const rate = this.rate(count, now);
    const text = `${this.label}: ${count} ${this.noun} in ${seconds.toFixed(1)} s${rate ? ` (${rate})` : ''}`;
    this.stream.write(this.stream.isTTY && this.drawn ? `\r${text}\x1b[K\n` : `${text}\n`);
  }

  private line(count: number, now: number): string {
    const rate = this.rate(count, now);
    return `${this.label}: ${count} ${this.noun}${rate ? `, ${rate}` : ''}`;
  }

  /** Items a second, or nothing before a measurable time has passed. */
  private rate(count: number, now: number): string | null {
    const ms = now - this.started;
    if (ms <= 0) return null;
    return `${Math.round((count * 1000) / ms)} ${this.unit()}/s`;
  }

  /** `events replayed` runs at `events/s`: the rate names the thing, not what was done to it. */
  private unit(): string {
    return this.noun.split(' ')[0];
  }
}
