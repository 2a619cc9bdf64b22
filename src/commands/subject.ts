/** Which user a keys/tokens command acts on. */
import { CommandError, type Invocation } from './command.ts';

/** The user a keys or tokens command acts on: yourself, or with --user another one (admins only). */
export function subject(invocation: Invocation, requested: string | undefined): string {
  if (requested === undefined || requested === invocation.user.name) {
    if (invocation.local && requested === undefined) throw new CommandError('run locally, keys and tokens commands need --user NAME');
    return invocation.user.name;
  }
  if (!invocation.user.admin) throw new CommandError("only admins may manage other users' keys and tokens");
  return requested;
}
