"""Where the losses come from: accuracy per variant with the localizer's box (the app's
path) and with the true hand box (from the masks), on the validation people only.

    python benchmarks/box_diagnosis.py [--model model.h5] [--localizer localizer.h5]
                                       [--scenes ../shared/scenes] [--backgrounds FOLDER]

The busy, dark and webcam-like pictures are made on the validation side's held-out real
photos, as ``python -m signdigits evaluate --people validation`` makes them (the shipped
pictures where the real scenes are missing). ``--backgrounds`` takes them from your own
photos instead (any picture in FOLDER the app reads, each used with its mirror image):
backgrounds that neither model has seen anything like.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402, F401  (puts the project on the path)

import signdigits.backend  # noqa: E402, F401
from signdigits import DEFAULT_SCENES_DIR  # noqa: E402
from signdigits import evaluate as ev  # noqa: E402
from signdigits.classifier import Classifier  # noqa: E402
from signdigits.data import load_dataset, split_indices  # noqa: E402
from signdigits.localizer_training import box_iou  # noqa: E402
from signdigits.pictures import display_photo  # noqa: E402
from signdigits.preprocess import decode  # noqa: E402
from signdigits.real_scenes import ScenesMissing, caltech_photos, photo_arrays  # noqa: E402
from signdigits.scenes import hand_mask, mask_box  # noqa: E402
from signdigits.sources import IMAGE_SUFFIXES  # noqa: E402
from signdigits.training import TrainConfig  # noqa: E402


def true_boxes(photo, mask, sample, pasted):
    """The hand's true box in ``sample``'s picture (None for hand-less scenes)."""
    h, w = photo.shape[:2]
    x0, y0, x1, y1 = mask_box(mask)
    if sample.variant in ("plain", "grey"):
        return (x0, y0, x1, y1)
    if sample.variant == "mirrored":
        return (w - x1, y0, w - x0, y1)
    if sample.variant == "rotated":
        return mask_box(hand_mask(np.asarray(sample.image)))
    if sample.variant in ("silhouette", "outline", "thin outline", "thick outline"):
        image = np.asarray(sample.image).astype(int)
        ink = np.abs(image - image[0, 0]).sum(-1) > 30
        return mask_box(ink)
    return pasted.pop(0)


def own_pictures(folder: Path) -> list[np.ndarray]:
    """The photos in ``folder`` as RGB arrays, each with its mirror image (the variants
    crop the right 40 % of a picture, the mirror image gives the left)."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        sys.exit(f"no pictures in {folder}")
    pictures = [np.asarray(display_photo(p.read_bytes())) for p in paths]
    return pictures + [p[:, ::-1].copy() for p in pictures]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="model.h5")
    parser.add_argument("--localizer", default="localizer.h5")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--scenes", default=DEFAULT_SCENES_DIR, help="the real scenes' folder")
    parser.add_argument("--backgrounds", type=Path, help="a folder of your own photos for the busy scenes")
    args = parser.parse_args()
    classifier = Classifier(args.model, args.localizer)
    dataset = load_dataset()
    config = TrainConfig()
    _, rows, _, _ = split_indices(dataset, config.test_fraction, config.val_fraction, config.split_seed)
    pictures, real = ev.shipped_pictures(), None
    if args.backgrounds:
        pictures = own_pictures(args.backgrounds)
    else:
        try:
            real = photo_arrays(caltech_photos("validation", args.scenes))
        except ScenesMissing as exc:
            print(f"{exc}: the shipped pictures stand in", file=sys.stderr)
    recorded = []
    paste = ev.paste_hand

    def recording(*a, **k):
        scene, box = paste(*a, **k)
        recorded.append(box)
        return scene, box

    ev.paste_hand = recording
    samples, truths = [], []
    for i in rows:
        photo, digit = dataset.photos[i], int(dataset.digits[i])
        mask = hand_mask(photo)
        if not (mask.any() and mask_box(mask)[3] > mask_box(mask)[1]):
            continue
        recorded.clear()
        made = ev.variants_of(photo, mask, digit, np.random.default_rng([args.seed, int(i)]), pictures, real)
        pasted = list(recorded)
        for sample in made:
            samples.append(sample)
            truths.append(true_boxes(photo, mask, sample, pasted))
    decoded = [decode(s.image) for s in samples]
    found = classifier._read(decoded)
    given = classifier._read(decoded, truths)
    print(f"{len(rows)} validation photos, {len(samples)} pictures")
    print("| variant | localizer box | true box | median IoU of its box | hand found |")
    print("|---|---:|---:|---:|---:|")
    for variant in dict.fromkeys(s.variant for s in samples):
        idx = [k for k, s in enumerate(samples) if s.variant == variant]
        truth = np.asarray([samples[k].digit for k in idx])
        ok = [k for k in idx if found[k].model_input is not None]
        acc_found = 0.0
        if ok:
            p = classifier.probabilities(np.stack([found[k].model_inputs for k in ok])).argmax(1)
            acc_found = float((p == np.asarray([samples[k].digit for k in ok])).sum()) / len(idx)
        p = classifier.probabilities(np.stack([given[k].model_inputs for k in idx])).argmax(1)
        acc_true = float((p == truth).mean())
        sizes = np.asarray([found[k].size * 2 for k in ok], np.float32)
        boxes = np.asarray([found[k].box for k in ok], np.float32) / sizes
        iou = box_iou(np.asarray([truths[k] for k in ok], np.float32) / sizes, boxes).numpy()
        print(f"| {variant} | {acc_found:.1%} | {acc_true:.1%} | {np.median(iou):.3f} | {len(ok) / len(idx):.1%} |")


if __name__ == "__main__":
    main()
