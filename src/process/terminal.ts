/**
 * Text bound for someone's terminal (a pusher's, a follower's, an admin's)
 * shown as data only. Build output, commit messages and metadata strings come
 * from apps, and git before 2.49 prints what a server sends as it is: an
 * escape sequence could clear a line, move the cursor over the real error and
 * draw "-----> Package ... is now current" in its place, or retitle the
 * window. Colours (SGR: ESC [ ... m) stay, as git 2.49 keeps them by default,
 * except conceal (SGR 8, it hides text), and are reset at the end; every other
 * control character but tab and newline is shown in caret notation (ESC as
 * ^[, backspace as ^H, CR as ^M; the 8-bit controls, which some terminals also
 * obey, as M-^[ and so on).
 */
const CONTROL = /[\x00-\x08\x0b-\x1f\x80-\x9f]/;
const COLOUR_OR_CONTROL = /\x1b\[[0-9;:]*m|[\x00-\x08\x0b-\x1f\x80-\x9f]/g;
const RESET = '\x1b[m';

const caret = (code: number): string => (code >= 0x80 ? `M-^${String.fromCharCode(code - 0x80 + 64)}` : `^${String.fromCharCode(code + 64)}`);

export function forTerminal(text: string): string {
  if (!CONTROL.test(text)) return text;
  let coloured = false;
  const shown = text.replace(COLOUR_OR_CONTROL, (match) => {
    if (match.length === 1) return caret(match.charCodeAt(0));
    if (match.slice(2, -1).split(/[;:]/).includes('8')) return `^[${match.slice(1)}`;
    coloured = match !== RESET && match !== '\x1b[0m';
    return match;
  });
  if (!coloured) return shown;
  // The reset goes before a final newline, so that it ends this text's own line.
  return shown.endsWith('\n') ? `${shown.slice(0, -1)}${RESET}\n` : `${shown}${RESET}`;
}

/**
 * What a terminal would show of a line that redraws itself with carriage
 * returns (progress bars): the last text written over it.
 */
export function lastRedraw(line: string): string {
  if (!line.includes('\r')) return line;
  const parts = line.split('\r').filter((part) => part !== '');
  return parts[parts.length - 1] ?? '';
}
