import type { Command } from 'commander';

/** How a command prints its result: `--json` gives one JSON document on stdout, else text for a person. */
export interface Output {
  readonly json: boolean;
  /** The command's result: `value` as JSON, or the lines `human` renders. */
  result(value: unknown, human: () => string | readonly string[]): void;
  /** Progress and notes for a person, on stderr, so stdout stays the result alone. */
  note(line: string): void;
}

export function outputFor(command: Command): Output {
  const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
  return {
    json,
    result(value, human) {
      if (json) {
        process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      } else {
        const lines = human();
        process.stdout.write(`${typeof lines === 'string' ? lines : lines.join('\n')}\n`);
      }
    },
    note(line) {
      process.stderr.write(`${line}\n`);
    },
  };
}

/** A plain text table: a header, a rule, and columns padded to their widest cell. */
export function table(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
