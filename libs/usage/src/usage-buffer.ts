import type { UsageSink, Verification } from '@keyward/keys';
import type { UsageCounters } from './usage-counters';
import { UsageTally } from './usage';

export interface UsageBufferOptions {
  /** How long a verification may wait in memory before it is handed to Redis. */
  intervalMs: number;
  /**
   * Distinct cells (minute × key × code × source) held at most. Reached only while Redis is away
   * for a long time; verifications beyond it are not counted, and that is reported.
   */
  maxCells: number;
  onError: (error: unknown, message: string, detail?: Record<string, unknown>) => void;
  /** How long `stop` waits for the last hand-off; 5 s unless given. */
  stopTimeoutMs?: number;
  /**
   * How long a hand-off may go unanswered before its counts are given up; 5 s unless given. A hung
   * Redis may never settle a MULTI whose connection died (ioredis 5), and without this bound every
   * later hand-off would wait behind it for good.
   */
  handOffTimeoutMs?: number;
}

/** A hand-off Redis did not answer in time: it may or may not have been applied. */
class Unanswered extends Error {}

/**
 * Counts verifications in process and hands the sums to Redis every `intervalMs`, so the verify
 * answer never waits on usage. A hand-off that fails keeps its counts for the next one. `stop`
 * hands off what is held (a graceful stop loses nothing); a hard crash loses at most one
 * interval's counts of this instance.
 */
export class UsageBuffer implements UsageSink {
  private tally = new UsageTally();
  private timer: NodeJS.Timeout | null = null;
  private handing: Promise<void> | null = null;
  private dropped = 0;

  constructor(
    private readonly counters: UsageCounters,
    private readonly options: UsageBufferOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.options.intervalMs);
    // The buffer alone must not keep a process alive.
    this.timer.unref();
  }

  record(verification: Verification): void {
    if (this.tally.size >= this.options.maxCells) {
      this.dropped++;
      return;
    }
    this.tally.add(verification);
  }

  /** Verifications counted in memory but not yet in Redis, as distinct cells. */
  get held(): number {
    return this.tally.size;
  }

  /** Hands what is held to Redis; one hand-off at a time, and a second call waits for the first. */
  async flush(): Promise<void> {
    while (this.handing) await this.handing;
    if (this.tally.empty) return this.reportDropped();
    const tally = this.tally;
    this.tally = new UsageTally();
    let timer: NodeJS.Timeout | undefined;
    const added = this.counters.add(tally);
    const unanswered = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Unanswered()), this.options.handOffTimeoutMs ?? 5_000);
    });
    this.handing = Promise.race([added, unanswered])
      .catch((error: unknown) => {
        if (error instanceof Unanswered) {
          // It may yet be applied, so these counts cannot be tried again without counting twice:
          // given up, as a crash would lose them, and the next hand-offs go on.
          added.catch(() => undefined);
          this.options.onError(error, 'Redis did not answer a usage hand-off; its counts are given up', {
            cells: tally.size,
          });
          return;
        }
        // Back into the buffer for the next try: Redis may be away only for a moment.
        tally.merge(this.tally);
        this.tally = tally;
        this.options.onError(error, 'could not hand usage counts to Redis; keeping them for the next try', {
          cells: tally.size,
        });
      })
      .finally(() => {
        clearTimeout(timer);
        this.handing = null;
      });
    await this.handing;
    this.reportDropped();
  }

  /**
   * Stops the timer and hands off everything held. A hand-off that Redis never answers (a hung
   * server: ioredis 5 may never settle a MULTI whose connection died) must not hold the shutdown,
   * so after `stopTimeoutMs` what is still held is reported and given up, as a crash loses it.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.options.stopTimeoutMs ?? 5_000;
    const handed = await Promise.race([
      this.flush().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!handed) {
      this.options.onError(
        new Error(`usage hand-off not answered within ${timeoutMs} ms`),
        'stopping without handing usage counts to Redis; they are lost',
        { cells: this.tally.size },
      );
    }
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    const dropped = this.dropped;
    this.dropped = 0;
    this.options.onError(new Error('usage buffer full'), 'usage buffer full: verifications not counted', {
      dropped,
    });
  }
}
