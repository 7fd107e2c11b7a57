/** A sluice row again, without the deployed malloc tuning: what `node dist/server.js` does bare. */
import { UNTUNED } from '../lib/deployed-env.js';
import type { RowPlan } from '../lib/types.js';

export function untuned(plan: RowPlan): RowPlan {
  const server = plan.server;
  if (server.kind !== 'sluice') throw new Error(`untuned(${plan.name}): only sluice rows have a deployed tuning`);
  return {
    ...plan,
    name: `${plan.name}-untuned`,
    description: `${plan.description}, glibc malloc defaults (GLIBC_TUNABLES unset)`,
    ratioTo: [plan.name, ...plan.ratioTo],
    server: { kind: 'sluice', env: (ports) => ({ ...server.env(ports), ...UNTUNED }) },
  };
}
