// Small, dependency-free statistics for benchmark samples (milliseconds unless said otherwise).

/** The q-quantile (0..1) by linear interpolation between closest ranks; NaN for no samples. */
export function quantile(samples, q) {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (s) => quantile(s, 0.5);
export const p99 = (s) => quantile(s, 0.99);
export const mean = (s) => (s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN);
export const max = (s) => (s.length ? s.reduce((a, b) => (b > a ? b : a), -Infinity) : NaN);

export function summary(samples) {
  return { n: samples.length, median: median(samples), p99: p99(samples), max: max(samples), mean: mean(samples) };
}

/** Least-squares slope of y over x. */
export function slope(xs, ys) {
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

export const round = (v, digits = 2) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);
