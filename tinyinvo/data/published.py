"""Published ImageNet figures (224x224 unless noted, 1000 classes): params, MACs, top-1 accuracy.

Each number is copied from the table cited in its ``source``; nothing is re-measured here. MACs are
what the papers call FLOPs (multiply-adds). They place the RedNet-vs-ResNet claim among the
depthwise (MobileNet / EfficientNet / ConvNeXt) models that the paper does not compare against.

    from tinyinvo.data.published import PUBLISHED
    [m.name for m in PUBLISHED if m.op == "depthwise"]
"""

from dataclasses import dataclass

INVOLUTION_README = ("Li et al., Involution, CVPR 2021: model zoo table of the official README "
                     "(github.com/d-li14/involution)")
INVOLUTION_PAPER = "Li et al., Involution, CVPR 2021: ImageNet table of Sec. 5.1 (ResNet baselines)"
MOBILENET_V2 = "Sandler et al., MobileNetV2, CVPR 2018: Table 4"
MOBILENET_V3 = "Howard et al., Searching for MobileNetV3, ICCV 2019: Table 3"
MNASNET = "Tan et al., MnasNet, CVPR 2019: Table 1"
EFFICIENTNET = "Tan & Le, EfficientNet, ICML 2019: Table 2"
CONVNEXT = "Liu et al., A ConvNet for the 2020s, CVPR 2022: Table 1 (ImageNet-1K trained)"


@dataclass(frozen=True)
class PublishedModel:
    """One published ImageNet result.

    - name: the model's name in its paper
    - family: models drawn as one curve (e.g. "ResNet", "EfficientNet")
    - op: the spatial op of its blocks: "conv" (dense 3x3), "involution" or "depthwise"
    - params_m: parameters, millions; macs_g: multiply-adds per image, billions
    - top1: ImageNet top-1 accuracy, %; resolution: input side length the figures are for
    - source: paper and table the numbers come from
    """

    name: str
    family: str
    op: str
    params_m: float
    macs_g: float
    top1: float
    source: str
    resolution: int = 224


PUBLISHED = (
    PublishedModel("ResNet-26", "ResNet", "conv", 13.7, 2.4, 73.6, INVOLUTION_PAPER),
    PublishedModel("ResNet-38", "ResNet", "conv", 19.6, 3.2, 76.0, INVOLUTION_PAPER),
    PublishedModel("ResNet-50", "ResNet", "conv", 25.6, 4.1, 76.8, INVOLUTION_PAPER),
    PublishedModel("ResNet-101", "ResNet", "conv", 44.6, 7.9, 78.5, INVOLUTION_PAPER),
    PublishedModel("ResNet-152", "ResNet", "conv", 60.2, 11.6, 79.3, INVOLUTION_PAPER),
    PublishedModel("RedNet-26", "RedNet", "involution", 9.23, 1.73, 75.96, INVOLUTION_README),
    PublishedModel("RedNet-38", "RedNet", "involution", 12.39, 2.22, 77.48, INVOLUTION_README),
    PublishedModel("RedNet-50", "RedNet", "involution", 15.54, 2.71, 78.35, INVOLUTION_README),
    PublishedModel("RedNet-101", "RedNet", "involution", 25.65, 4.74, 78.92, INVOLUTION_README),
    PublishedModel("RedNet-152", "RedNet", "involution", 33.99, 6.79, 79.12, INVOLUTION_README),
    PublishedModel("MobileNetV2 1.0", "MobileNetV2", "depthwise", 3.4, 0.300, 72.0, MOBILENET_V2),
    PublishedModel("MobileNetV2 1.4", "MobileNetV2", "depthwise", 6.9, 0.585, 74.7, MOBILENET_V2),
    PublishedModel("MobileNetV3-Large 1.0", "MobileNetV3", "depthwise", 5.4, 0.219, 75.2,
                   MOBILENET_V3),
    PublishedModel("MnasNet-A1", "MnasNet", "depthwise", 3.9, 0.312, 75.2, MNASNET),
    PublishedModel("EfficientNet-B0", "EfficientNet", "depthwise", 5.3, 0.39, 77.1, EFFICIENTNET),
    PublishedModel("EfficientNet-B1", "EfficientNet", "depthwise", 7.8, 0.70, 79.1, EFFICIENTNET,
                   resolution=240),
    PublishedModel("EfficientNet-B2", "EfficientNet", "depthwise", 9.2, 1.0, 80.1, EFFICIENTNET,
                   resolution=260),
    PublishedModel("EfficientNet-B3", "EfficientNet", "depthwise", 12.0, 1.8, 81.6, EFFICIENTNET,
                   resolution=300),
    PublishedModel("ConvNeXt-T", "ConvNeXt", "depthwise", 28.0, 4.5, 82.1, CONVNEXT),
    PublishedModel("ConvNeXt-S", "ConvNeXt", "depthwise", 50.0, 8.7, 83.1, CONVNEXT),
)
