"""The codecs: one entry per codec, the one place that names their stages, rate points and labels.

A codec is a package under ``lfcomp/codecs/`` plus one entry in ``CODECS``. The entry says which
CLI stages it has and what each writes, which parameters make a rate point (QDLR: rank and
centroids) and how a rate point is named in paths (``r22/n256``) and tables (``r22-n256``), which
model kinds it runs on, and how its curves look in plots. The workflow, the summaries, the BD
tables and the plots read this registry. A codec that runs on several model kinds appears in
tables once per kind, as ``<codec>-<kind>`` (``qdlr-nerf``, ``qdlr-nelf``). Importing this module
does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lfcomp.errors import LfcompError
from lfcomp.models.registry import MODEL_KINDS


@dataclass(frozen=True)
class RateParameter:
    """One parameter of a rate point, e.g. QDLR's rank: ``r{rank}`` in paths."""

    name: str
    prefix: str  # path component prefix: r -> r22
    type: type = int
    help: str = ""

    def format(self, value: Any) -> str:
        return f"{self.prefix}{value}"


@dataclass(frozen=True)
class Stage:
    """A stage of a codec: one ``lfcomp`` subcommand writing one artifact.

    ``sections`` are the config sections the stage reads, or single keys of a section
    (``train.seed``): a change there reruns it and what follows; ``report`` is the key of the stage's PSNR/size report in a checkpoint's ``stages``
    (Table 2), with ``title`` its column title, ``{model}`` standing for the kind's display name.
    """

    name: str
    artifact: str  # relative to results/{scene}/{model}/
    help: str
    sections: tuple[str, ...] = ()
    report: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Codec:
    """A codec family and everything the workflow and the reports need to know about it."""

    name: str
    description: str
    model_kinds: tuple[str, ...]  # empty: the codec has no model kinds, one label = name
    rate_parameters: tuple[RateParameter, ...]
    stages: tuple[Stage, ...]
    package: str  # the codec's package: `commands` (its CLI stages), `report` (its metrics of a rate point)
    final_stage: str  # the stage whose checkpoint `lfcomp evaluate --model` reads
    decoder: str  # module with decode_cost(payload, source) -> DecodeCost (validates the whole header) and
    #               decoded_model(payload, source, device) -> DecodedModel
    markers: dict[str, str] = field(default_factory=dict)  # plot marker per label
    # True: a target bitrate is met while training (λ search) and names its rate point (t0.02);
    # False: a target is planned to the codec's own rate parameters before training.
    searches_targets: bool = False

    def labels(self) -> list[str]:
        """Its names in tables and plots: ``qdlr-nerf``, ``qdlr-nelf``."""
        return [self.label(kind) for kind in self.model_kinds] or [self.name]

    def label(self, kind: str | None) -> str:
        return f"{self.name}-{kind}" if kind else self.name

    def rate_point_dir(self, point: dict[str, Any]) -> str:
        """Path of a rate point below ``results/{scene}/{model}/``: ``r22/n256``; ``t0.02`` for a
        target that the codec meets while training (the latent codec's λ search)."""
        if self.searches_targets and point.get(TARGET.name) is not None:
            return TARGET.format(point[TARGET.name])
        return "/".join(p.format(point[p.name]) for p in self.rate_parameters)

    def rate_point_label(self, point: dict[str, Any]) -> str:
        """A rate point's name in tables: ``r22-n256``; ``t0.02`` for a searched target."""
        if self.searches_targets and point.get(TARGET.name) is not None:
            return TARGET.format(point[TARGET.name])
        return "-".join(p.format(point.get(p.name)) for p in self.rate_parameters)

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def report_stages(self) -> list[Stage]:
        """The stages whose reports make a row of Table 2, in order."""
        return [stage for stage in self.stages if stage.report]

    def stage_titles(self, kind: str) -> dict[str, str]:
        """{report key: column title} for a kind: NeRF-org, LR-NeRF, DLR-NeRF, QDLR-NeRF."""
        display = MODEL_KINDS[kind].display_name if kind in MODEL_KINDS else kind.upper()
        return {stage.report: stage.title.format(model=display) for stage in self.report_stages()}


# A rate point given as a target bitrate (``lfcomp.codecs.targets``): QDLR plans its (rank,
# centroids) before training and keeps their paths; a codec that searches while training (latent)
# names the rate point by its target, ``t0.02``.
TARGET = RateParameter("target_bpp", "t", float, "target bitrate, bits per pixel")

QDLR = Codec(
    name="qdlr",
    description="Shi & Guillemot, ICASSP 2023: scene model -> ADMM low rank -> TT distillation -> "
                "shared-codebook QAT -> Huffman",
    model_kinds=tuple(MODEL_KINDS),
    rate_parameters=(
        RateParameter("rank", "r", int, "rank of the low-rank layers"),
        RateParameter("centroids", "n", int, "size of the shared codebook"),
    ),
    stages=(
        Stage("train", "{model}.pt", "scene model trained on all views (NeRF-org)", ("model", "camera", "train"),
              "nerf", "{model}-org"),
        Stage("lowrank", "r{rank}/lr_{model}.pt", "low-rank training by ADMM", ("lowrank",), "lowrank", "LR-{model}"),
        Stage("decompose", "r{rank}/tt_cores.zarr", "TT decomposition of the low-rank weights"),
        Stage("distill", "r{rank}/dlr_{model}.pt", "slim network from the TT cores, fine-tuned", ("distill",),
              "distill", "DLR-{model}"),
        Stage("quantize", "r{rank}/n{centroids}/qdlr_{model}.pt", "shared codebook, quantisation-aware training",
              ("quantize",), "quantize", "QDLR-{model}"),
        Stage("encode", "r{rank}/n{centroids}/bitstream.lfc", "Huffman-coded bitstream"),
        Stage("decode", "r{rank}/n{centroids}/decoded.zarr", "every view rendered from the bitstream alone"),
        Stage("evaluate", "r{rank}/n{centroids}/metrics.json", "PSNR, bpp and every stage's report"),
    ),
    package="lfcomp.codecs.qdlr",
    final_stage="quantize",
    decoder="lfcomp.codecs.qdlr.payload",
    markers={"qdlr-nerf": "o", "qdlr-nelf": "s"},
)

LATENT = Codec(
    name="latent",
    description="rate–distortion-trained latent light field: latent pyramid + disparity warp + small synthesis "
                "network, checkerboard-context entropy model, range coding",
    model_kinds=(),
    rate_parameters=(RateParameter("lmbda", "l", float, "λ of the loss MSE + λ·bits per pixel"),),
    stages=(
        Stage("latent-fit", "{point}/latent.pt", "latents, synthesis and entropy model trained at λ (l{lmbda}) "
              "or at the λ found for a target bitrate (t{target_bpp})",
              ("latent", "train.seed", "train.holdout_views", "train.eval_views", "train.log_every",
               "train.resume_every")),
        Stage("latent-encode", "{point}/bitstream.lfc", "range-coded bitstream"),
        Stage("decode", "{point}/decoded.zarr", "every view rendered from the bitstream alone"),
        Stage("evaluate", "{point}/metrics.json", "PSNR, bpp, MAC/pixel"),
    ),
    package="lfcomp.codecs.latent",
    final_stage="latent",
    decoder="lfcomp.codecs.latent.payload",
    markers={"latent": "D"},
    searches_targets=True,
)

CODECS: dict[str, Codec] = {codec.name: codec for codec in (QDLR, LATENT)}


def codec_labels() -> list[str]:
    """Every codec label, in registry order (the paper's qdlr-nerf first)."""
    return [label for codec in CODECS.values() for label in codec.labels()]


def parse_label(label: str) -> tuple[Codec, str | None] | None:
    """(codec, model kind) of a label such as ``qdlr-nelf``; None for a label no codec owns (an anchor)."""
    for codec in CODECS.values():
        for kind in codec.model_kinds or (None,):
            if codec.label(kind) == label:
                return codec, kind
    return None


def get_codec(name: str, where: str = "codec") -> Codec:
    if name not in CODECS:
        raise LfcompError(where, f"unknown codec {name!r} (choose from {', '.join(CODECS)})")
    return CODECS[name]
