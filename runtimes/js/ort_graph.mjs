// The driver core's run-graph interface over onnxruntime's JavaScript API, which onnxruntime-node and
// onnxruntime-web share: the host passes its own `ort` module, so this file imports neither.
import { BundleError } from "./seq2seq.mjs";

const firstLine = (e) => String(e?.message ?? e).split("\n")[0];

/** An onnxruntime session for the ONNX `bytes` as {inputNames, outputNames, run(feeds, outputNames)}. */
export async function ortGraph(ort, bytes, name, sessionOptions = {}) {
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (e) {
    throw new BundleError(`${name}: onnxruntime cannot load this graph: ${firstLine(e)}`);
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, outputNames) {
      const tensors = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
      let result;
      try {
        result = await session.run(tensors, outputNames);
      } catch (e) {
        throw new BundleError(`${name}: onnxruntime failed to run this graph: ${firstLine(e)}`);
      }
      return Object.fromEntries(outputNames.map((n) => [n, { type: result[n].type, data: result[n].data, dims: result[n].dims }]));
    },
  };
}
