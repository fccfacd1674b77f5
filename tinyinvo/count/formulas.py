"""Closed-form parameter and multiply-add (MAC) counts, one function per layer type.

The convention, used everywhere in tinyinvo:
- One MAC is one product of an activation with a weight, added into an output. A weight is a
  parameter (convolution, linear) or a generated involution kernel entry.
- FLOPs = 2 x MACs (a multiply and an add). Papers usually print MACs and call them FLOPs.
- Counts are per image: a batch of N images costs N times the MACs; params do not depend on N.
- 0 MACs for everything that is not a multiply-add with a weight: bias adds, ReLU, max/avg pooling,
  residual adds, and BatchNorm (at inference BN is a per-channel affine map that is folded into the
  weights and bias of the conv before it, so it costs nothing; papers, this one included, do not
  count it).
- BatchNorm has 2*C params (gamma, beta); its running mean and variance are buffers, not params.
- GroupNorm (the "group" op_norm) has the same 2*C params and, like ReLU and residual adds, no
  multiply with a weight: 0 MACs. Unlike BatchNorm it cannot be folded away at inference, so it
  costs time the MACs do not show (a few passes over its input).

Each function returns a ``Cost``. ``Cost.aggregation_macs`` is the part of ``macs`` spent in the
involution aggregation itself (the sum over the K x K window), so that a total can be read with
and without it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    """Params and MACs per image of a layer or of a whole network; ``a + b`` adds them up."""

    params: int = 0
    macs: int = 0
    aggregation_macs: int = 0  # the involution aggregation's share of ``macs``

    def __add__(self, other):
        return Cost(self.params + other.params, self.macs + other.macs,
                    self.aggregation_macs + other.aggregation_macs)


def conv2d_cost(Ci, Co, K, Ho, Wo, bias=False):
    """Dense K x K convolution from Ci to Co channels, producing a Ho x Wo output.

    params = Co*Ci*K*K (+ Co with a bias)
    MACs   = Co*Ci*K*K*Ho*Wo: each of the Co*Ho*Wo outputs sums Ci*K*K products (the bias add is free)
    """
    return Cost(params=Co * Ci * K * K + (Co if bias else 0), macs=Co * Ci * K * K * Ho * Wo)


def depthwise_conv2d_cost(C, K, Ho, Wo, bias=False):
    """Depthwise K x K convolution (one filter per channel) on C channels, output Ho x Wo.

    params = C*K*K (+ C with a bias)
    MACs   = C*K*K*Ho*Wo: each of the C*Ho*Wo outputs sums K*K products
    """
    return Cost(params=C * K * K + (C if bias else 0), macs=C * K * K * Ho * Wo)


def batchnorm_cost(C):
    """BatchNorm over C channels: params = 2*C (gamma, beta); MACs = 0 (folded into the conv before it)."""
    return Cost(params=2 * C)


def relu_cost():
    """ReLU: params = 0; MACs = 0 (max(x, 0) is a comparison, not a multiply-add)."""
    return Cost()


def pooling_cost():
    """Max, average and global average pooling: params = 0; MACs = 0 (comparisons and additions;
    the 1 / (K*K) of an average is a constant scale, not a learned weight)."""
    return Cost()


def linear_cost(Ci, Co):
    """Fully connected layer Ci -> Co with bias: params = Co*Ci + Co; MACs = Co*Ci."""
    return Cost(params=Co * Ci + Co, macs=Co * Ci)


def involution_aggregation_cost(C, K, Ho, Wo):
    """The involution op itself: out[c, i, j] = sum_{p,q} kernel[g(c), p, q, i, j] * xpad[c, ...].

    params = 0 (the kernel is generated from the input, see involution_generator_cost)
    MACs   = C*K*K*Ho*Wo: each of the C*Ho*Wo outputs sums K*K products, as a depthwise conv
    """
    macs = C * K * K * Ho * Wo
    return Cost(macs=macs, aggregation_macs=macs)


def involution_generator_cost(C, K, G, r, Ho, Wo):
    """The kernel generator of an involution on C channels, with G groups and reduction ratio r.

    It runs at the output resolution Ho x Wo (the input is average-pooled first when stride > 1):
    1x1 reduce C -> C/r (no bias) -> BN(C/r) -> ReLU -> 1x1 span C/r -> K*K*G (with bias).
    params = C*(C/r) + 2*(C/r) + (C/r)*K*K*G + K*K*G
    MACs   = (C*(C/r) + (C/r)*K*K*G)*Ho*Wo
    """
    hidden = C // r
    return (conv2d_cost(C, hidden, 1, Ho, Wo) + batchnorm_cost(hidden) + relu_cost()
            + conv2d_cost(hidden, K * K * G, 1, Ho, Wo, bias=True))


def involution_cost(C, K, G, r, Ho, Wo):
    """A whole involution layer: kernel generation + aggregation (stride only changes Ho, Wo).

    params = C*(C/r) + 2*(C/r) + (C/r)*K*K*G + K*K*G
    MACs   = (C*(C/r) + (C/r)*K*K*G)*Ho*Wo + C*K*K*Ho*Wo, the last term being ``aggregation_macs``
    """
    return involution_generator_cost(C, K, G, r, Ho, Wo) + involution_aggregation_cost(C, K, Ho, Wo)
