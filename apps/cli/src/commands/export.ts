import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { EventFeed, ndjsonLine } from '@keyward/audit';
import { Conflict, DomainError } from '@keyward/core';
import { outputFor } from '../output';
import { Progress } from '../progress';
import { requireTenant, tenantOption, withReadDb } from './read-db';

/** Lines are gathered up to this many characters per write: one write per event costs more than the event. */
const WRITE_CHUNK = 64 * 1024;

/** The API's forms (apps/api/src/audit/audit.dto.ts): 18 digits stay inside PostgreSQL's bigint. */
const POSITION = /^\d{1,18}$/;
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9._-]{0,99}$/;
const MAX_TYPES = 20;

/** Writing the export failed after it began: the destination went away or filled up. */
class ExportFailed extends DomainError {
  readonly code = 'EXPORT_FAILED';
}

function positionOf(value: string): bigint {
  if (!POSITION.test(value)) {
    throw new InvalidArgumentError('expected an event position: a whole number of up to 18 digits');
  }
  return BigInt(value);
}

/** `--type A,B` and `--type A --type B` alike. */
function collectTypes(value: string, previous: string[] | undefined): string[] {
  const types = [...(previous ?? []), ...value.split(',')];
  if (types.length > MAX_TYPES || !types.every((t) => EVENT_TYPE.test(t))) {
    throw new InvalidArgumentError(`expected event types such as KeyIssued, up to ${MAX_TYPES} in all`);
  }
  return types;
}

/**
 * Where the NDJSON goes, written with backpressure: the next batch of events is read from the
 * database only once the destination has taken the last, so memory stays flat however long the
 * history, and a slow pipe slows the export instead of filling memory.
 */
class Sink {
  private failure: Error | null = null;

  constructor(
    private readonly stream: Writable,
    private readonly name: string,
  ) {
    // Also keeps an EPIPE (the reader of a pipe went away) from crashing the process unhandled.
    stream.on('error', (error) => (this.failure ??= error));
  }

  async write(text: string): Promise<void> {
    this.check();
    if (!this.stream.write(text)) {
      await new Promise<void>((done) => {
        const wake = () => {
          this.stream.off('drain', wake);
          this.stream.off('error', wake);
          this.stream.off('close', wake);
          done();
        };
        this.stream.on('drain', wake);
        this.stream.on('error', wake);
        this.stream.on('close', wake);
      });
    }
    this.check();
  }

  /** Waits until everything written has reached the destination. */
  async flush(): Promise<void> {
    await new Promise<void>((done) => this.stream.write('', () => done()));
    this.check();
  }

  private check(): void {
    if (this.failure) {
      throw new ExportFailed(`writing to ${this.name} failed: ${this.failure.message}`);
    }
    if (this.stream.destroyed) throw new ExportFailed(`${this.name} was closed before the export finished`);
  }
}

/**
 * The export file is written beside its final name and renamed into place when complete: a file
 * under the asked name is always a whole export, never one cut short by an error or a Ctrl-C
 * (which leaves a `.partial` file that says what it is). Owner-only, as it holds the tenant's
 * whole audit history.
 */
class ExportFile {
  private constructor(
    readonly path: string,
    private readonly partial: string,
    private readonly stream: Writable,
    readonly sink: Sink,
  ) {}

  static async open(path: string): Promise<ExportFile> {
    // Evidence is not overwritten by a second export run by mistake.
    if (existsSync(path)) throw new Conflict(`${path} exists: an export does not overwrite a file`);
    const partial = `${path}.${randomBytes(4).toString('hex')}.partial`;
    const stream = createWriteStream(partial, { flags: 'wx', mode: 0o600 });
    // Fail on a missing directory or a refused permission before reading any event.
    await new Promise<void>((opened, failed) => {
      stream.once('open', () => opened());
      stream.once('error', (error) => failed(new ExportFailed(`cannot write ${path}: ${error.message}`)));
    });
    return new ExportFile(path, partial, stream, new Sink(stream, path));
  }

  async complete(): Promise<void> {
    this.stream.end();
    await finished(this.stream);
    await rename(this.partial, this.path);
  }

  async abandon(): Promise<void> {
    this.stream.destroy();
    await finished(this.stream).catch(() => undefined);
    await unlink(this.partial).catch(() => undefined);
  }
}

interface ExportOptions {
  tenant: string;
  after?: bigint;
  toFile?: string;
  type?: string[];
}

/**
 * `export`: the CLI's counterpart of GET /v1/events as NDJSON: the tenant's events in commit
 * order, to stdout or a file, with progress on stderr. Bounded by the events committed when it
 * began, so appends meanwhile cannot make it endless; `--after` the last position continues it.
 */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description("the tenant's events in commit order as NDJSON, to stdout or a file")
    .addOption(tenantOption())
    .addOption(
      new Option('--after <position>', 'continue after the event at this position (commit order)').argParser(
        positionOf,
      ),
    )
    .addOption(new Option('--to-file <path>', 'write to this new file instead of stdout'))
    .addOption(
      new Option(
        '--type <types>',
        'only events of these types: comma-separated, or the option repeated',
      ).argParser(collectTypes),
    )
    .action(async (options: ExportOptions, command: Command) => {
      const out = outputFor(command);
      const path = options.toFile === undefined ? null : resolve(options.toFile);
      const result = await withReadDb(async (db) => {
        await requireTenant(db, options.tenant);
        const feed = new EventFeed(db);
        // An --after naming no event of this tenant is refused here, before a file is made.
        const from = await feed.start(options.tenant, { after: options.after });
        const file = path === null ? null : await ExportFile.open(path);
        const sink = file?.sink ?? new Sink(process.stdout, 'stdout');
        // Export lines scrolling on the terminal would be torn by progress lines between them:
        // then only the closing count is written.
        const onScreen = file === null && process.stdout.isTTY === true;
        const progress = new Progress(
          'export',
          'events',
          onScreen ? { every: Infinity, stream: { write: (t) => process.stderr.write(t) } } : {},
        );
        let events = 0;
        let lastPosition: bigint | null = null;
        try {
          let chunk = '';
          for await (const event of feed.stream(options.tenant, from, { types: options.type })) {
            chunk += ndjsonLine(event);
            events += 1;
            lastPosition = event.position;
            progress.update(events);
            if (chunk.length >= WRITE_CHUNK) {
              await sink.write(chunk);
              chunk = '';
            }
          }
          if (chunk) await sink.write(chunk);
          await sink.flush();
          await file?.complete();
        } catch (error) {
          await file?.abandon();
          throw error;
        }
        progress.done(events);
        return { events, lastPosition: lastPosition === null ? null : Number(lastPosition) };
      });
      // On stdout the NDJSON is the result, in --json mode too: the summary has nowhere else to go.
      if (path === null) return;
      out.result({ file: path, events: result.events, lastPosition: result.lastPosition }, () =>
        result.lastPosition === null
          ? `exported no events to ${path}`
          : `exported ${result.events} events to ${path} (last position ${result.lastPosition}; continue with --after ${result.lastPosition})`,
      );
    });
}
