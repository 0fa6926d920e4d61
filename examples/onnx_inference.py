"""Generate showers from an exported calozdc model with onnxruntime and numpy only.

    python examples/onnx_inference.py MODEL.onnx [-n 4] [--seed 0] [--conditions 1500,...]

Reads the model card ``MODEL.onnx.json`` written by ``calozdc export``, draws the noise the
card describes (standard normal, ``noise_size`` numbers per shower), runs the graph and
prints each shower's channel sums (zn44's five ALICE ZN channels for a 44 x 44 image, else
the total). No Keras, TensorFlow, JAX or PyTorch is imported: this is what a deployment
(or a C++ caller, see docs/deploy.md) does.
"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def zn44_channel_sums(images):
    """The 5 ZN channels of ``(N, 44, 44)`` images: the four quadrants of the cells with
    row + column even, and all cells with row + column odd (calozdc.metrics.zdc)."""
    rows, cols = np.meshgrid(np.arange(44), np.arange(44), indexing="ij")
    even = (rows + cols) % 2 == 0
    top, left = rows < 22, cols < 22
    masks = [even & top & left, even & top & ~left, even & ~top & left, even & ~top & ~left,
             ~even]
    return np.stack([images[:, m].sum(axis=1) for m in masks], axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="exported .onnx file (its card: MODEL.json)")
    parser.add_argument("-n", type=int, default=4, help="showers to generate (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--conditions", default=None,
                        help="one condition row, comma-separated, in the card's units "
                             "(default: the card's example row)")
    args = parser.parse_args(argv)

    with open(args.model + ".json") as f:
        card = json.load(f)
    inputs = {spec["name"]: spec for spec in card["inputs"]}
    if card.get("part") == "decoder":
        sys.exit("This file is a VQ decoder: it takes code indices from the model's prior, "
                 "not noise. Received: part='decoder'")
    noise_spec = next(s for s in card["inputs"] if "segments" in s)
    cond_spec = next(s for s in card["inputs"] if "segments" not in s)
    k = cond_spec["shape"][1]
    if args.conditions is not None:
        row = np.array([float(v) for v in args.conditions.split(",")], dtype="float32")
    else:
        row = np.asarray(card["example_conditions"], dtype="float32")
    if row.shape != (k,):
        sys.exit(f"--conditions must have {k} values ({', '.join(card['condition_columns'])}). "
                 f"Received: {row.size}")
    n = args.n
    batch = noise_spec["shape"][0]
    if isinstance(batch, int) and batch != n:
        n = batch  # a file exported with a fixed batch size
    conditions = np.repeat(row[None], n, axis=0)
    if card["layout"] == "alice-o2":  # O2's caller standardises the particle itself
        o2 = card["alice_o2"]
        conditions = ((conditions - np.asarray(o2["means"])) / np.asarray(o2["scales"]))
        conditions = conditions.astype("float32")
    rng = np.random.default_rng(args.seed)
    noise = rng.standard_normal((n, card["noise_size"])).astype("float32")

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    feeds = {cond_spec["name"]: conditions, noise_spec["name"]: noise}
    assert set(feeds) == set(inputs)
    showers = session.run(None, feeds)[0].astype("float64")
    if card["layout"] == "alice-o2":
        showers = np.expm1(showers)  # the file returns log(1 + photons), as O2 reads it
    images = showers.reshape(n, *showers.shape[1:3])
    print(f"{card['family'] or card['model_class']} ({card['format']}, layout {card['layout']}, "
          f"sampler {card['sampler']}): {n} showers for conditions "
          f"{dict(zip(card['condition_columns'], row.tolist()))}")
    if images.shape[1:] == (44, 44):
        sums = zn44_channel_sums(images)
        print("channel sums (ZN 1-4, common):")
    else:
        sums = images.reshape(n, -1).sum(axis=1, keepdims=True)
        print("totals:")
    for i, s in enumerate(sums):
        print(f"  shower {i}: " + " ".join(f"{v:10.2f}" for v in s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
