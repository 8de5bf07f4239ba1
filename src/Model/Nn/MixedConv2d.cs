using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>
/// A bias-free 2-D convolution with a float32 master weight that computes in bfloat16 under
/// <see cref="Precision.Bf16Mixed"/>: the weight cast is part of the graph, so its gradient arrives in float32.
/// Parameter name <c>weight</c>, as torch.nn.Conv2d.
///
/// Channel counts that are not a multiple of <see cref="ChannelAlignment"/> are computed with zero channels added
/// (<see cref="AlignedConvolution"/>): the oneDNN 3.7.1 inside libtorch 2.10 computes wrong values (and NaN from
/// memory it never wrote) for such channel counts on AVX2 and AVX-512 CPUs. The result is the same convolution.
/// </summary>
public sealed class MixedConv2d : nn.Module<Tensor, Tensor>, IMixedPrecision
{
    private readonly Parameter weight;
    private readonly long _stride;
    private readonly long _padding;

    public MixedConv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long padding = 0)
        : base(nameof(MixedConv2d))
    {
        _stride = stride;
        _padding = padding;
        weight = new Parameter(empty(outChannels, inChannels, kernelSize, kernelSize));
        // torchvision ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu")
        nn.init.kaiming_normal_(weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
        RegisterComponents();
    }

    public Precision Precision { get; set; } = Precision.Fp32;

    /// <summary>
    /// torchvision's initialisation, kaiming_normal_(mode="fan_out", nonlinearity="relu"), drawn from
    /// <paramref name="generator"/> (TorchSharp's kaiming functions take none): N(0, sqrt(2 / fan_out)).
    /// </summary>
    public void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        var s = weight.shape;
        double fanOut = s[0] * s[2] * s[3];
        weight.normal_(0.0, Math.Sqrt(2.0 / fanOut), generator); // (nn.init.normal_ ignores its generator in TorchSharp 0.107)
    }

    public Parameter Weight => weight;

    public override Tensor forward(Tensor input)
    {
        if (Precision == Precision.Bf16Mixed)
        {
            using var w = weight.to(ScalarType.BFloat16);
            using var x = input.dtype == ScalarType.BFloat16 ? null : input.to(ScalarType.BFloat16);
            return AlignedConvolution.Conv2d(x ?? input, w, _stride, _padding);
        }
        return AlignedConvolution.Conv2d(input, weight, _stride, _padding);
    }
}
