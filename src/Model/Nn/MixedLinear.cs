using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>
/// A linear layer with float32 master parameters that computes in bfloat16 under <see cref="Precision.Bf16Mixed"/>.
/// Parameter names <c>weight</c> and <c>bias</c>, initialised like torch.nn.Linear.
/// </summary>
public sealed class MixedLinear : nn.Module<Tensor, Tensor>, IMixedPrecision
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    public MixedLinear(long inFeatures, long outFeatures)
        : base(nameof(MixedLinear))
    {
        weight = new Parameter(empty(outFeatures, inFeatures));
        bias = new Parameter(empty(outFeatures));
        // torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
        double bound = 1.0 / Math.Sqrt(inFeatures);
        nn.init.uniform_(bias, -bound, bound);
        RegisterComponents();
    }

    public Precision Precision { get; set; } = Precision.Fp32;

    /// <summary>
    /// torch.nn.Linear's initialisation drawn from <paramref name="generator"/>: kaiming_uniform_(a=sqrt(5)) is
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, and the bias has the same bound.
    /// </summary>
    public void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        double bound = 1.0 / Math.Sqrt(weight.shape[1]);
        weight.uniform_(-bound, bound, generator); // (nn.init.uniform_ ignores its generator in TorchSharp 0.107)
        bias.uniform_(-bound, bound, generator);
    }

    public Parameter Weight => weight;

    public Parameter Bias => bias;

    public override Tensor forward(Tensor input)
    {
        if (Precision == Precision.Bf16Mixed)
        {
            using var w = weight.to(ScalarType.BFloat16);
            using var b = bias.to(ScalarType.BFloat16);
            using var x = input.dtype == ScalarType.BFloat16 ? null : input.to(ScalarType.BFloat16);
            LayerCallRecorder.Record("linear", x ?? input, w, 1, 0, input.requires_grad && is_grad_enabled());
            return nn.functional.linear(x ?? input, w, b);
        }
        using var cast = input.dtype == weight.dtype ? null : input.to(weight.dtype);
        LayerCallRecorder.Record("linear", cast ?? input, weight, 1, 0, input.requires_grad && is_grad_enabled());
        return nn.functional.linear(cast ?? input, weight, bias);
    }
}
