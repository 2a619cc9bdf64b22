/** `keys list|add|remove`: a user's own SSH keys (admins: anyone's, with --user). */
import { parsePublicKey } from '../../users/public-key.ts';
import { type Command, CommandError, type Invocation, parse } from '../command.ts';

/** The user a key command acts on: yourself, or with --user another one (admins only). */
function subject(invocation: Invocation, requested: string | undefined): string {
  if (requested === undefined || requested === invocation.user.name) {
    if (invocation.local && requested === undefined) throw new CommandError('run locally, keys commands need --user NAME');
    return invocation.user.name;
  }
  if (!invocation.user.admin) throw new CommandError("only admins may manage other users' keys");
  return requested;
}

export const keysListCommand: Command = {
  name: 'keys list',
  usage: 'keys list [--user NAME] [--json]',
  summary: 'list your SSH keys (admins: anyone\'s)',
  access: 'user',
  async run(invocation) {
    const { values } = parse(invocation.args, { user: { type: 'string' }, json: { type: 'boolean' } }, { min: 0, max: 0 });
    const keys = invocation.services().state.users.keys(subject(invocation, values.user));
    if (values.json) invocation.io.out(`${JSON.stringify(keys, null, 2)}\n`);
    else for (const k of keys) invocation.io.out(`${k.fingerprint}  ${k.algorithm}  ${k.comment ?? ''}\n`);
    return 0;
  },
};

export const keysAddCommand: Command = {
  name: 'keys add',
  usage: 'keys add [--user NAME] < key.pub',
  summary: 'add the public key given on standard input',
  access: 'user',
  async run(invocation) {
    const { values } = parse(invocation.args, { user: { type: 'string' } }, { min: 0, max: 0 });
    const user = subject(invocation, values.user);
    const key = parsePublicKey(await invocation.io.input());
    invocation.services().state.users.addKey(user, key);
    invocation.io.out(`added key ${key.fingerprint} for ${user}\n`);
    return 0;
  },
};

export const keysRemoveCommand: Command = {
  name: 'keys remove',
  usage: 'keys remove FINGERPRINT [--user NAME]',
  summary: 'remove a key by its SHA256 fingerprint',
  access: 'user',
  async run(invocation) {
    const { values, positionals } = parse(invocation.args, { user: { type: 'string' } }, { min: 1, max: 1 });
    const user = subject(invocation, values.user);
    invocation.services().state.users.removeKey(user, positionals[0] as string);
    invocation.io.out(`removed key ${positionals[0]} of ${user}\n`);
    return 0;
  },
};

export { subject as keySubject };
