/** `webhooks deliveries APP [--json]`: APP's webhook deliveries, newest first, with their outcome (admins only: the URLs are the admin's). */
import { openRepo } from '../../core/access.ts';
import { listDeliveries } from '../../core/webhooks.ts';
import { defineCommand } from '../command.ts';
import { printJson } from '../output.ts';

export const webhooksDeliveriesCommand = defineCommand({
  name: 'webhooks deliveries',
  summary: "list APP's webhook deliveries, newest first: event, URL, status, tries, last response",
  positionals: [{ name: 'APP', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'admin',
  async run({ io, user, services }, { values, args }) {
    const all = services();
    const repo = openRepo(all, user, args.APP, 'read');
    const list = listDeliveries(all, repo.name);
    if (values.json) {
      await printJson(io, list);
      return 0;
    }
    if (list.length === 0) io.out(`${repo.name} has no webhook deliveries yet\n`);
    for (const d of list) {
      const tries = d.attempts === 1 ? '1 try' : `${d.attempts} tries`;
      const answer = d.responseCode === null ? '-' : `HTTP ${d.responseCode}`;
      const line = [d.createdAt, d.id, d.event.padEnd(15), d.status.padEnd(9), tries.padEnd(7), answer.padEnd(8), d.url];
      io.out(`${line.join('  ')}${d.error && d.status !== 'delivered' ? `\n    ${d.error}` : ''}\n`);
    }
    return 0;
  },
});
