/**
 * `count` offsets between 5 % and 95 % of `total`, in order, from a seed (mulberry32): where a
 * test's relay cuts the connection, the same bytes in every run.
 */
export function cutOffsets(seed: number, count: number, total: number): number[] {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return Array.from({ length: count }, () => Math.floor(total * (0.05 + 0.9 * next()))).sort((x, y) => x - y);
}
