// Beam search for the JS drivers (Node.js and the browser), step for step as the Python runtime's
// seq2seq_export/runtime/beam.py, so that the n-best token sequences are the same and the scores
// agree to float rounding:
//
// - every live hypothesis of every input of a batch is one row of a single decoder step call; rows
//   are grouped by input, in batch order;
// - log-probs are the log-softmax of the step's float32 logits in float64 (JS numbers), computed like
//   runtime/core.py's log_softmax: max-shifted, minus log of the sum of exp, the sum taken in numpy's
//   pairwise order; a NaN log-prob becomes -Infinity (such a token is never picked);
// - of an input's candidates (its rows x the target vocabulary, ranked by log-prob sum) the beamSize
//   best survive, equal sums to the lower (row, token), -Infinity never: those ending in <eos> (or any
//   at maxLen) are finished and leave the batch, the others are the next step's rows, their carried
//   tensors gathered by row (rows repeat where a hypothesis has several heirs);
// - score = (sum of the log-probs, <eos>'s included) / length ** lengthPenalty, length counting <eos>;
//   a hypothesis cut at maxLen has length maxLen and no <eos>;
// - an input stops when its beam is empty, at maxLen, or when it holds beamSize finished hypotheses and
//   no live one can beat the worst of them: a live sum s can score at most s / maxLen ** lengthPenalty.

export const MAX_BEAM_SIZE = 4096; // seq2seq_export.constants.MAX_BEAM_SIZE
export const MAX_LENGTH_PENALTY = 10; // seq2seq_export.constants.MAX_LENGTH_PENALTY
const PW_BLOCKSIZE = 128; // numpy's pairwise summation block (numpy/_core/src/umath/loops_utils.h.src)

/** A number as Python's repr writes it in the same message ("-1.0", "nan", "inf"). */
const pyRepr = (v) => (Number.isInteger(v) && Math.abs(v) < 1e16 ? v.toFixed(1) : Number.isNaN(v) ? "nan" : Math.abs(v) === Infinity ? `${v < 0 ? "-" : ""}inf` : String(v));

/** The search settings, checked with the Python runtime's messages (runtime/core.py DecodeOptions);
 * a bad value throws RangeError. */
export function searchOptions({ beamSize = 1, numHypotheses = 1, lengthPenalty = 1.0 } = {}) {
  if (!Number.isInteger(beamSize) || beamSize < 1 || beamSize > MAX_BEAM_SIZE) {
    throw new RangeError(`beam_size must lie in [1, ${MAX_BEAM_SIZE}], got ${beamSize}`);
  }
  if (!Number.isInteger(numHypotheses) || numHypotheses < 1 || numHypotheses > beamSize) {
    throw new RangeError(`num_hypotheses must lie in [1, beam_size ${beamSize}], got ${numHypotheses}: raise the beam size or ask for fewer hypotheses`);
  }
  if (typeof lengthPenalty !== "number" || !Number.isFinite(lengthPenalty) || lengthPenalty < 0 || lengthPenalty > MAX_LENGTH_PENALTY) {
    throw new RangeError(`length_penalty must be a finite number in [0, ${MAX_LENGTH_PENALTY}], got ${typeof lengthPenalty === "number" ? pyRepr(lengthPenalty) : JSON.stringify(lengthPenalty)}`);
  }
  return { beamSize, numHypotheses, lengthPenalty };
}

/** Sum of a[lo, lo + n) in numpy's pairwise order (pairwise_sum_DOUBLE), so that sums match bit for bit. */
export function pairwiseSum(a, lo, n) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[lo + i];
    return res;
  }
  if (n <= PW_BLOCKSIZE) {
    const r = Array.from({ length: 8 }, (_, j) => a[lo + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[lo + i + j];
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[lo + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, lo, n2) + pairwiseSum(a, lo + n2, n - n2);
}

/** (rows, vocab) float32 logits, row-major -> float64 log-probs, NaN -> -Infinity (core.log_softmax). */
export function logSoftmax(logits, rows, vocab) {
  const out = Float64Array.from(logits);
  const exp = new Float64Array(vocab);
  for (let r = 0; r < rows; r++) {
    const lo = r * vocab;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, out[lo + j]); // NaN if any is NaN, as numpy's max
    for (let j = 0; j < vocab; j++) exp[j] = Math.exp((out[lo + j] -= max));
    const log = Math.log(pairwiseSum(exp, 0, vocab));
    for (let j = 0; j < vocab; j++) {
      const v = out[lo + j] - log;
      out[lo + j] = Number.isNaN(v) ? -Infinity : v;
    }
  }
  return out;
}

/** A row's k best tokens by sum (total + log-prob), best first, equal sums to the lower token; no -Infinity. */
function rowBest(logp, lo, vocab, total, k) {
  const best = []; // [{value, token}], sorted: value descending, then token ascending
  for (let token = 0; token < vocab; token++) {
    const value = total + logp[lo + token];
    if (value === -Infinity || (best.length === k && value <= best[k - 1].value)) continue;
    let at = best.length;
    while (at > 0 && best[at - 1].value < value) at--; // after every equal value: the lower token stays first
    best.splice(at, 0, { value, token });
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Each input's k best one-token extensions of its rows (beam.py best_candidates): a list grouped by
 * input like the rows, best first within an input, equal sums to the lower (row, token).
 */
export function bestCandidates(rows, logp, vocab, k) {
  const cands = [];
  for (let start = 0; start < rows.length; ) {
    let end = start;
    const group = [];
    for (; end < rows.length && rows[end].seq === rows[start].seq; end++) {
      for (const { value, token } of rowBest(logp, end * vocab, vocab, rows[end].total, k)) group.push({ parent: end, token, value });
    }
    group.sort((a, b) => b.value - a.value); // stable: equal sums keep (row, token) order
    cands.push(...group.slice(0, k));
    start = end;
  }
  return cands;
}

/**
 * Decode one batch of source id lists by beam search; per input its n-best list, at most
 * numHypotheses {ids (without <sos>/<eos>), score, tokenScores}, best score first (equal scores:
 * the one finished first). `model` runs the graphs: encodeBatch(seqs) -> carried,
 * stepLogits(prev BigInt64Array, carried) -> {logits: {data, dims: [rows, vocab]}, carried},
 * selectCarried(carried, rows) -> carried; startId and endId are its special ids.
 */
export async function beamSearch(model, seqs, { beamSize: k, numHypotheses, lengthPenalty: a, maxLen }) {
  const kept = seqs.map(() => []); // per input: its best (at most k) finished hypotheses, best first
  const worst = seqs.map(() => -Infinity); // per input: the k-th best finished score (-Infinity while fewer)
  if (seqs.length === 0) return kept;
  let carried = await model.encodeBatch(seqs);
  let rows = seqs.map((_, seq) => ({ seq, ids: [], logps: [], total: 0 }));
  let prev = new BigInt64Array(seqs.length).fill(BigInt(model.startId));
  for (let t = 1; t <= maxLen; t++) {
    const stepped = await model.stepLogits(prev, carried);
    carried = stepped.carried;
    const vocab = stepped.logits.dims[1];
    const logp = logSoftmax(stepped.logits.data, rows.length, vocab);
    const cands = bestCandidates(rows, logp, vocab, k).map(({ parent, token }) => {
      const row = rows[parent];
      const tokenLogp = logp[parent * vocab + token];
      const eos = token === model.endId;
      return { parent, token, eos, ended: eos || t === maxLen, seq: row.seq, ids: [...row.ids, token], logps: [...row.logps, tokenLogp], total: row.total + tokenLogp };
    });
    finish(kept, worst, cands, t, k, a);
    const bestLive = new Map(); // per input: its best live sum
    for (const c of cands) if (!c.ended) bestLive.set(c.seq, Math.max(bestLive.get(c.seq) ?? -Infinity, c.total));
    const done = (seq) => Number.isFinite(worst[seq]) && bestLive.get(seq) / maxLen ** a <= worst[seq]; // the bound: see the top
    const live = cands.filter((c) => !c.ended && !done(c.seq));
    if (live.length === 0) break;
    if (!(live.length === rows.length && live.every((c, i) => c.parent === i))) {
      carried = model.selectCarried(carried, live.map((c) => c.parent)); // rows repeat where a hypothesis has several heirs
    }
    rows = live;
    prev = BigInt64Array.from(live, (c) => BigInt(c.token));
  }
  return kept.map((found) => found.slice(0, numHypotheses));
}

/** Score the candidates that ended at step t (<eos>, or maxLen) into their inputs' kept lists (beam.py _finish). */
function finish(kept, worst, cands, t, k, a) {
  const touched = new Set();
  for (const c of cands) {
    if (!c.ended) continue;
    kept[c.seq].push({ ids: c.eos ? c.ids.slice(0, -1) : c.ids, score: c.total / t ** a, tokenScores: c.logps });
    touched.add(c.seq);
  }
  for (const s of touched) {
    kept[s] = kept[s].sort((x, y) => y.score - x.score).slice(0, k); // stable: earlier finished first on ties
    worst[s] = kept[s].length === k ? kept[s][k - 1].score : -Infinity;
  }
}
