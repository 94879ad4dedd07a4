"""Train the cavity/pipe detector on real labelled images + synthetic windows + hard negatives.

Every batch mixes (shares in :data:`MIX`): random windows of the ``train`` split of
:mod:`export.data.real_bscan` (Morocco cavities/utilities/intact, S&S hyperbolas, ConcreteNet
rebar), synthetic processed windows from ``python -m export.data.synth_bscan`` (what the real
sets lack: known polarity cavities vs pipes, device processing), windows cut at the device's
widths (scales 1, 2, 4) from synthetic survey lines processed by the device pipeline
(``python -m export.data.synth_lines``, ``--lines``) and hard negatives: windows
of the device pipeline's processed output of two real raw files (XLINE00 outside its two
diffractions, traces < 300; test_gssi, layering and noise). FILE____032 is NOT used: it
stays an independent check of the direct-wave band and dipping reflectors.

All windows go through :func:`edge.gpr.detector.normalise_window` in ``robust`` mode, the
mode the manifest names for the device. Losses and targets are the ones of
:mod:`export.train.detector` (CenterNet). Starts from the shipped weights. Time-limited
(``--minutes``), cosine schedule over the time budget; every ``--eval-min`` minutes the
held-out sets are scored (logged, never used to pick weights: the last checkpoint is the
result) and the checkpoint written.

    PYTHONPATH=. python3 -m export.train.real_detector --out real.pt --synthetic DIR --minutes 55
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.gpr.detector import WINDOW, Detection, normalise_window
from export.data.device_lines import device_processed
from export.data.paths import data_root
from export.data.real_bscan import CLASSES, Record, load_all, sample_window
from export.data.synth_lines import Line, crop
from export.data.synth_lines import load as load_lines

log = logging.getLogger("train_real")

MIX = {
    "morocco": 0.35,
    "sns": 0.20,
    "concretenet": 0.10,
    "synthetic": 0.15,
    "lines": 0.10,
    "raw_negative": 0.10,
}
MODE = "robust"
RAW_NEGATIVES = {  # file -> trace range free of labelled / visible targets
    str(data_root() / "gpr/gprpy/XLINE00.DT1"): (0, 300),
    str(data_root() / "gpr/impdar/test_gssi.DZT"): (0, None),
}


def load_synthetic(root: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    from export.data.detection import read_dataset

    paths, labels, _ = read_dataset(root)
    return np.stack([np.load(p).astype(np.float16) for p in paths]), labels


def augment(
    x: np.ndarray, b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror along track, gain ramp along time, noise; polarity kept. Output normalised."""
    h = x.shape[0]
    b = b.copy()
    if rng.random() < 0.5:
        x = x[:, ::-1]
        if len(b):
            b[:, 1] = 1.0 - b[:, 1]
    if rng.random() < 0.4:
        ramp = np.exp(rng.uniform(-1.5, 1.5) * np.linspace(0, 1, h, dtype=np.float32))
        x = x * ramp[:, None]
    x = normalise_window(np.ascontiguousarray(x, dtype=np.float32), MODE)
    if rng.random() < 0.25:
        x = normalise_window(
            x + rng.normal(0, rng.uniform(0.05, 0.4), x.shape).astype(np.float32), MODE
        )
    return x, b


class Sampler:
    def __init__(
        self,
        records: list[Record],
        synth: tuple[np.ndarray, list[np.ndarray]] | None,
        raws: list[np.ndarray],
        rng: np.random.Generator,
        shares: dict[str, float] = MIX,
        lines: list[Line] | None = None,
    ) -> None:
        self.by_source = {
            s: [r for r in records if r.source == s and r.split == "train"]
            for s in ("morocco", "sns", "concretenet")
        }
        self.synth = synth
        self.lines = lines or []
        self.raws = raws
        self.rng = rng
        mix = {
            k: v
            for k, v in shares.items()
            if (self.by_source.get(k))
            or (k == "synthetic" and synth)
            or (k == "lines" and self.lines)
            or (k == "raw_negative" and raws)
        }
        self.names = list(mix)
        p = np.array([mix[k] for k in self.names])
        self.p = p / p.sum()

    def one(self) -> tuple[np.ndarray, np.ndarray, str]:
        rng = self.rng
        src = self.names[rng.choice(len(self.names), p=self.p)]
        if src == "synthetic":
            if self.synth is None:
                raise ValueError("synthetic windows drawn but no synthetic set was loaded")
            wins, labs = self.synth
            i = int(rng.integers(len(wins)))
            x, b = wins[i].astype(np.float32), labs[i]
        elif src == "lines":
            x, b = crop(self.lines[int(rng.integers(len(self.lines)))], rng, WINDOW)
        elif src == "raw_negative":
            full = self.raws[int(rng.integers(len(self.raws)))]
            H, W = full.shape
            r1 = H if rng.random() < 0.5 else int(H * rng.uniform(0.25, 1.0))
            cw = int(min(W, rng.integers(64, 257)))
            c0 = int(rng.integers(0, W - cw + 1))
            x = cv2.resize(
                np.ascontiguousarray(full[:r1, c0 : c0 + cw]),
                WINDOW[::-1],
                interpolation=cv2.INTER_AREA,
            )
            b = np.zeros((0, 5), np.float32)
        else:
            recs = self.by_source[src]
            x, b = sample_window(recs[int(rng.integers(len(recs)))], WINDOW, rng)
        x, b = augment(x, b, rng)
        return x, b, src


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init", default="default", help="'default' (shipped), 'none' or a .pt")
    p.add_argument(
        "--synthetic",
        type=Path,
        required=True,
        help="a synthetic window set (python -m export.data.detection --out DIR --count N)",
    )
    p.add_argument(
        "--lines",
        type=Path,
        help="synthetic survey lines (python -m export.data.synth_lines --out DIR --count N)",
    )
    p.add_argument("--minutes", type=float, default=55.0)
    p.add_argument("--eval-min", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--mix",
        nargs="+",
        default=[],
        metavar="SOURCE=SHARE",
        help=f"batch shares replacing the defaults {MIX} for the sources named",
    )
    args = p.parse_args(argv)
    mix = dict(MIX)
    for item in args.mix:
        source, _, share = item.partition("=")
        if source not in MIX:
            p.error(f"--mix {item}: the sources are {', '.join(MIX)}")
        try:
            mix[source] = float(share)
        except ValueError:
            p.error(f"--mix {item}: the share must be a number")
        if not 0 <= mix[source] <= 1:
            p.error(f"--mix {item}: the share must be within 0..1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from edge.gpr.detector import STRIDE
    from edge.models.manifest import Normalisation
    from export.train.detector import (
        build_net,
        detector_manifest,
        learning_rate,
        loss_fn,
        save_checkpoint,
        targets,
    )
    from export.train.eval_detector import score_set

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    records = load_all()
    synth = load_synthetic(args.synthetic) if (args.synthetic / "images").is_dir() else None
    raws = []
    for path, (t0, t1) in RAW_NEGATIVES.items():
        full = device_processed(path)
        raws.append(full[:, t0:t1])
    lines = load_lines(args.lines) if args.lines else None
    sampler = Sampler(records, synth, raws, rng, mix, lines)
    val = {
        s: [r for r in records if r.source == s and r.split == "val"]
        for s in ("morocco", "sns", "concretenet")
    }
    counts: dict[str, int | list[int]] = {s: len(v) for s, v in sampler.by_source.items()}
    counts["synthetic"] = 0 if synth is None else len(synth[0])
    counts["lines"] = len(lines or [])
    counts["raw_negative_traces"] = [r.shape[1] for r in raws]
    log.info(
        "train pool %s, mix %s", counts, dict(zip(sampler.names, sampler.p.round(3), strict=False))
    )

    nc = len(CLASSES)
    net, width = build_net(nc, 16, args.init)
    grid = (WINDOW[0] // STRIDE, WINDOW[1] // STRIDE)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    start = time.monotonic()
    next_eval = args.eval_min
    steps, running, history = 0, None, []
    seen = dict.fromkeys(sampler.names, 0)

    class _NetDet:  # the in-memory net with the scoring interface
        classes, input_hw, score_threshold = CLASSES, WINDOW, 0.5

        def detect(self, windows: np.ndarray) -> list[list[Detection]]:
            from export.train.eval_detector import TorchDetector

            td = TorchDetector.__new__(TorchDetector)
            td.net, td.classes, td.input_hw = net, CLASSES, WINDOW
            td.window_mode, td.score_threshold, td.iou_threshold = MODE, self.score_threshold, 0.5
            return td.detect(windows)

    def checkpoint(final: bool) -> None:
        net.eval()
        det = _NetDet()
        res = {s: score_set(det, v) for s, v in val.items()}
        minutes = (time.monotonic() - start) / 60
        history.append(
            {
                "minutes": round(minutes, 1),
                "steps": steps,
                "loss": round(running or 0.0, 4),
                **{
                    f"{s}_{k}": res[s][k]
                    for s in res
                    for k in ("map50", "ap50_any_class", "recall_at_p80")
                },
            }
        )
        log.info("eval %s", json.dumps(history[-1]))
        manifest = detector_manifest(CLASSES, "", {})
        manifest.normalisation = Normalisation(
            scale=1.0,
            mean=[0.0],
            std=[1.0],
            window=MODE,
            note=(
                "input: a processed B-scan window (rows = two-way time from time zero, "
                "columns = traces) resampled to H x W (cv2 INTER_AREA), then "
                "normalise_window(mode='robust'): v - median, divided by the 99th "
                "percentile of |v - median|, clipped to [-1, 1] "
                "(edge.gpr.detector.normalise_window). Rendered real images enter as grey "
                "amplitude (8-bit or colour-mapped render -> channel mean, axes cropped; "
                "export.data.real_bscan)."
            ),
        )
        manifest.training_data = json.dumps(
            {"pool": counts, "mix": mix, "steps": steps, "batch": args.batch, "init": args.init}
        )
        manifest.metrics = {
            "heldout_real": res,
            "history": history,
            "train_minutes": round(minutes, 1),
            "steps": steps,
        }
        save_checkpoint(net, args.out, width, manifest)
        net.train()

    net.train()
    while True:
        elapsed = (time.monotonic() - start) / 60
        if elapsed >= args.minutes:
            break
        xs, heats, regs = [], [], []
        for _ in range(args.batch):
            x, b, src = sampler.one()
            seen[src] += 1
            h, r = targets(b, nc, grid)
            xs.append(x)
            heats.append(h)
            regs.append(r)
        for g in opt.param_groups:
            g["lr"] = learning_rate(args.lr, elapsed / args.minutes)
        out = net(torch.from_numpy(np.stack(xs)[:, None]))
        loss = loss_fn(out, torch.from_numpy(np.stack(heats)), torch.from_numpy(np.stack(regs)), nc)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        v = float(loss.detach())
        running = v if running is None else 0.98 * running + 0.02 * v
        if steps % 50 == 0:
            log.info(
                "step %d  %.1f min  loss %.3f  lr %.2e  seen %s",
                steps,
                elapsed,
                running,
                opt.param_groups[0]["lr"],
                seen,
            )
        if elapsed >= next_eval:
            checkpoint(False)
            next_eval += args.eval_min
    checkpoint(True)
    log.info("done: %d steps, %s", steps, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
