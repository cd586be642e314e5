/** What a subcommand may touch: its arguments and the process's streams. Tests pass fakes. */
export interface CliContext {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stdout is a terminal (progress is shown only then). */
  isTTY: boolean;
}

export type Subcommand = (args: string[], ctx: CliContext) => Promise<number>;

export function processContext(): CliContext {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
  };
}
