/** The examples every verb's --help ends with (the CLI's conventions, docs/install.md). */

/** Formats 1-3 example command lines as the last part of a verb's help. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}
