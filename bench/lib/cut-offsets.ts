/**
 * `count` offsets in [from, from + span) of `total` (fractions; 5 % to 95 % unless given), in
 * order, from a seed (mulberry32): where a benchmark's client (or a test's relay) cuts the
 * connection, the same bytes in every run.
 */
export function cutOffsets(seed: number, count: number, total: number, from = 0.05, span = 0.9): number[] {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return Array.from({ length: count }, () => Math.floor(total * (from + span * next()))).sort((x, y) => x - y);
}
