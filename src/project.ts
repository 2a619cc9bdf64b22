/**
 * Where upaas's own files are (hooks/, examples/): the project root, from
 * source and from the bundle alike. This module runs as src/project.ts or
 * inside dist/upaas.mjs (scripts/bundle.js); both sit one folder below the
 * root, so no path here is written relative to any other module's folder.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A file or folder of the project, by its path from the root (`hooks/update`). */
export function projectPath(path: string): string {
  return join(PROJECT_ROOT, path);
}
