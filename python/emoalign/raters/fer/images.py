"""Image loading and optional face cropping for FER raters (off by default: the paper's stimuli are
face-centred portraits).

Face-crop methods:

``"haar"`` (or ``True``)
    OpenCV's frontal-face Haar cascade (Viola & Jones, 2001), the detector the ``fer`` package uses.
    Needs an OpenCV build that has ``cv2.CascadeClassifier`` and the cascade XML (opencv-python 4.x ships
    both in ``cv2.data.haarcascades``; OpenCV 5 dropped them): pass ``face_cascade=PATH`` to use another
    XML file.
``"box"``
    a bounding box given per image in the stimuli table: columns ``face_x``, ``face_y``, ``face_w``,
    ``face_h`` (pixels, top-left origin).

The largest detected face is used; the box is made square around its centre and enlarged by
``face_margin`` (fraction of its side, default 0.1, clipped at the image border) — ``fer`` similarly
squares the box and adds a fixed 10-pixel offset. When no face is found the whole image is rated and the
row records ``face_detected = False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from emoalign.errors import EmoalignError
from emoalign.raters.image_io import load_rgb  # noqa: F401  (used as images.load_rgb)

FaceCrop = Literal[False, "haar", "box"]
BOX_COLUMNS = ("face_x", "face_y", "face_w", "face_h")


def normalise_face_crop(face_crop) -> FaceCrop:
    if face_crop in (False, None, "", "none", "off", "false"):
        return False
    if face_crop in (True, "haar", "true", "on"):
        return "haar"
    if face_crop == "box":
        return "box"
    raise EmoalignError(f"unknown face_crop {face_crop!r}", hint="use false (default), 'haar' or 'box'")


class HaarFaceDetector:
    """OpenCV Haar-cascade frontal face detector (parameters as in ``fer``: scale 1.1, 5 neighbours)."""

    def __init__(self, cascade: str | Path | None = None, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 30):
        try:
            import cv2
        except ImportError as exc:
            raise EmoalignError("face_crop='haar' needs OpenCV, which is not installed",
                                hint="pip install opencv-python-headless, or set face_crop: false") from exc
        if not hasattr(cv2, "CascadeClassifier"):
            raise EmoalignError(
                f"face_crop='haar' needs cv2.CascadeClassifier, which OpenCV {cv2.__version__} lacks (removed in OpenCV 5)",
                hint="install opencv-python-headless<5, use face_crop='box' with face_x/face_y/face_w/face_h "
                     "columns in the stimuli table, or set face_crop: false",
            )
        if cascade is None:
            base = getattr(getattr(cv2, "data", None), "haarcascades", "") or ""
            cascade = Path(base) / "haarcascade_frontalface_default.xml"
        cascade = Path(cascade)
        if not cascade.is_file():
            raise EmoalignError(f"Haar cascade file {cascade} not found",
                                hint="pass face_cascade=PATH to a haarcascade_frontalface_default.xml")
        self._cv2 = cv2
        self.cascade_path = str(cascade)
        self.detector = cv2.CascadeClassifier(self.cascade_path)
        if self.detector.empty():
            raise EmoalignError(f"OpenCV could not load the Haar cascade {cascade}", hint="check the XML file")
        self.params = dict(scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size))

    def __call__(self, image: Image.Image) -> tuple[int, int, int, int] | None:
        gray = np.asarray(image.convert("L"))
        faces = self.detector.detectMultiScale(gray, **self.params)
        if len(faces) == 0:
            return None
        x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda b: b[2] * b[3])
        return x, y, w, h


def box_from_meta(meta: dict, image_id: str) -> tuple[int, int, int, int] | None:
    """The face box from the stimuli row's ``face_x/face_y/face_w/face_h`` (None when all are missing)."""
    vals = [meta.get(c) for c in BOX_COLUMNS]
    if all(v is None or (isinstance(v, float) and np.isnan(v)) for v in vals):
        return None
    try:
        x, y, w, h = (int(round(float(v))) for v in vals)
    except (TypeError, ValueError):
        raise EmoalignError(f"stimuli row {image_id!r}: face box {dict(zip(BOX_COLUMNS, vals))} is not numeric",
                            hint="face_x, face_y, face_w, face_h must be pixel numbers") from None
    if w <= 0 or h <= 0:
        raise EmoalignError(f"stimuli row {image_id!r}: face box has non-positive size ({w} x {h})",
                            hint="face_w and face_h must be > 0")
    return x, y, w, h


def crop_square(image: Image.Image, box: tuple[int, int, int, int], margin: float = 0.1) -> Image.Image:
    """Crop a square around the box centre, side = max(w, h) * (1 + 2 * margin), clipped to the image."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    left, top = max(0, int(round(cx - side / 2))), max(0, int(round(cy - side / 2)))
    right, bottom = min(image.width, int(round(cx + side / 2))), min(image.height, int(round(cy + side / 2)))
    if right <= left or bottom <= top:
        return image
    return image.crop((left, top, right, bottom))
