/** Picks the storage handler named in the config and validates its settings. */
import { isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/config.ts';
import { ValidationError, describe } from '../config/schema.ts';
import type { StorageHandler } from './handler.ts';
import { LocalStorage } from './local.ts';

export function createStorage(config: Config): StorageHandler {
  const settings = config.storage.settings;
  const source = config.file ?? 'embedded defaults';
  switch (config.storage.handler) {
    case 'local': {
      for (const key of Object.keys(settings)) {
        if (key !== 'dir') throw new ValidationError(source, [`storage.settings.${key}: unknown key (known keys: dir)`]);
      }
      const dir = settings.dir ?? join(config.paths.state, 'storage');
      if (typeof dir !== 'string' || dir === '') {
        throw new ValidationError(source, [`storage.settings.dir: expected a folder path, got ${describe(dir)}`]);
      }
      const base = config.file ? resolve(config.file, '..') : process.cwd();
      return new LocalStorage(isAbsolute(dir) ? dir : resolve(base, dir));
    }
  }
}
