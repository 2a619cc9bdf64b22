/**
 * Text bound for someone's terminal (a pusher's, a follower's, an admin's)
 * shown as data only. Build output, commit messages and metadata strings come
 * from apps, and git before 2.49 prints what a server sends as it is: an
 * escape sequence could clear a line, move the cursor over the real error and
 * draw "-----> Package ... is now current" in its place, or retitle the
 * window. Colours (SGR: ESC [ ... m) stay, as git 2.49 keeps them by default,
 * and are reset at the end; every other control character but tab and newline
 * is shown in caret notation (ESC as ^[, backspace as ^H, CR as ^M).
 */
const CONTROL = /[\x00-\x08\x0b-\x1f]/;
const COLOUR_OR_CONTROL = /\x1b\[[0-9;:]*m|[\x00-\x08\x0b-\x1f]/g;
const RESET = '\x1b[m';

export function forTerminal(text: string): string {
  if (!CONTROL.test(text)) return text;
  let coloured = false;
  const shown = text.replace(COLOUR_OR_CONTROL, (match) => {
    if (match.length > 1) {
      coloured = match !== RESET && match !== '\x1b[0m';
      return match;
    }
    return `^${String.fromCharCode(match.charCodeAt(0) + 64)}`;
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
