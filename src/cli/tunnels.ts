/** `plexus expose`, `unexpose` and `forward add|ls|rm`: traffic between servers. */
import type { Command } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { UsageError } from './errors.ts';
import { printJson, printTable } from './output.ts';

interface ForwardView {
  id: string;
  listen: string;
  target: string;
  state: string;
  error?: string;
  active: number;
  connections: number;
  refused: number;
  lastError?: string;
  carrier?: string;
}

function portOf(text: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535)
    throw new UsageError(`'${text}' is not a port (1..65535)`);
  return port;
}

/** Registers the tunnel verbs. */
export function registerTunnels(program: Command): void {
  program
    .command('expose')
    .description('make a local port reachable from the mesh as NAME (service.node)')
    .argument('<name>', 'service name (a DNS label, e.g. db)')
    .argument('<port>', 'local TCP port on 127.0.0.1')
    .option('--json', 'print JSON')
    .action(async (name: string, port: string, _opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('tunnels.expose', { name, port: portOf(port) })) as {
        name: string;
        port: number;
      };
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`exposed ${r.name} → 127.0.0.1:${r.port}; reach it as ${r.name}.<this node>\n`);
    });

  program
    .command('unexpose')
    .description('stop exposing a service to the mesh')
    .argument('<name>', 'service name')
    .option('--json', 'print JSON')
    .action(async (name: string, _opts, cmd: Command) => {
      const r = await agentOf(cmd).call('tunnels.unexpose', { name });
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`${name} is no longer exposed\n`);
    });

  const forward = program.command('forward').description('local ports tunnelled to services on other nodes');
  forward
    .command('add')
    .description('listen on [HOST:]PORT (default 127.0.0.1, any free port) and tunnel to TARGET')
    .usage('[options] [HOST:]PORT TARGET | TARGET')
    // Commander cannot put an optional argument first: take one or two and sort them out.
    .argument('<listen-or-target>', '[HOST:]PORT to listen on, or TARGET alone (any free port)')
    .argument('[target]', 'service.node or node:port')
    .option('--json', 'print JSON')
    .action(async (a: string, b: string | undefined, _opts, cmd: Command) => {
      const [listen, target] = b === undefined ? [undefined, a] : [a, b];
      const f = (await agentOf(cmd).call('tunnels.forward.add', { listen, target })) as ForwardView;
      if (wantsJson(cmd)) return printJson(f);
      process.stdout.write(`${f.id}: ${f.listen} → ${f.target}\n`);
    });
  forward
    .command('ls')
    .description('list forwards')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const list = (await agentOf(cmd).call('tunnels.forward.list')) as ForwardView[];
      if (wantsJson(cmd)) return printJson(list);
      if (list.length === 0) {
        process.stdout.write(
          "no forwards; add one with 'plexus forward add [127.0.0.1:PORT] service.node'\n",
        );
        return;
      }
      printTable(
        ['id', 'listen', 'target', 'state', 'active', 'conns', 'refused', 'via', 'last error'],
        list.map((f) => [
          f.id,
          f.listen,
          f.target,
          f.state === 'failed' ? `failed: ${f.error}` : f.state,
          f.active,
          f.connections,
          f.refused,
          f.carrier ?? '-',
          f.lastError ?? '-',
        ]),
      );
    });
  forward
    .command('rm')
    .description('remove a forward (its open connections are reset)')
    .argument('<id>', 'forward id (see forward ls)')
    .option('--json', 'print JSON')
    .action(async (id: string, _opts, cmd: Command) => {
      const r = await agentOf(cmd).call('tunnels.forward.remove', { id });
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`removed ${id}\n`);
    });
}
