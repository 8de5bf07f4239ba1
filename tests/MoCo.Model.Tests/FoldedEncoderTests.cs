using MoCo.Model.Evaluation;
using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// <see cref="FoldedEncoder"/> computes what the encoder computes in eval mode: its BatchNorms folded into the
/// convolutions change only the rounding (float32: 1e-4 of the output's scale; the unfolded and folded networks sum
/// in different orders), for both stems, basic and bottleneck blocks, linear and MLP heads, with running statistics
/// away from their defaults; in bfloat16 within the precision bf16 has (3e-2 of the scale, 8 mantissa bits through
/// ~20 layers), as the kNN monitor's float32 vote then sees it.
/// </summary>
public sealed class FoldedEncoderTests
{
    [Theory]
    [InlineData("resnet18", Stem.Cifar, false, 16)]
    [InlineData("resnet18", Stem.ImageNet, true, 16)]
    [InlineData("resnet50", Stem.Cifar, true, 8)]
    [InlineData("resnet18", Stem.Cifar, false, 64)]
    public void Folded_forward_equals_the_eval_mode_encoder(string arch, Stem stem, bool mlp, int width)
    {
        torch.random.manual_seed(7);
        using var encoder = new ResNet(new EncoderSpec(arch, width, stem, 32, mlp, 1));
        using (no_grad())
        {
            foreach (var bn in encoder.Norms)
            {
                bn.RunningMean.uniform_(-0.2, 0.2);
                bn.RunningVar.uniform_(0.5, 2.0);
            }
            foreach (var (name, p) in encoder.named_parameters())
            {
                if (name.Contains("bn", StringComparison.Ordinal) || name.Contains("downsample.1", StringComparison.Ordinal))
                {
                    p.uniform_(0.5, 1.5); // BN affine parameters away from 1 and 0
                }
            }
        }
        encoder.eval();
        using var x = torch.randn(4, 3, 32, 32);
        foreach (var source in new[] { FeatureSource.Head, FeatureSource.Backbone })
        {
            using var expected = source == FeatureSource.Head ? encoder.forward(x) : encoder.Backbone(x);
            using var fp32 = new FoldedEncoder(encoder);
            using var folded = fp32.Forward(x, source);
            double scale = expected.abs().max().item<float>();
            double error = (folded - expected).abs().max().item<float>();
            Assert.True(error <= 1e-4 * scale, $"{arch} {stem} {source}: float32 folded differs by {error:G3} (scale {scale:G3})");

            using var bf16 = new FoldedEncoder(encoder, ScalarType.BFloat16);
            using var low = bf16.Forward(x, source);
            Assert.Equal(ScalarType.Float32, low.dtype);
            error = (low - expected).abs().max().item<float>();
            Assert.True(error <= 3e-2 * scale, $"{arch} {stem} {source}: bfloat16 folded differs by {error:G3} (scale {scale:G3})");
        }
        Assert.False(encoder.training); // untouched
    }

    [Theory]
    [InlineData(16, true)]
    [InlineData(32, true)]
    [InlineData(64, false)] // 512 channels in layer4: oneDNN's channels-last 1x1 kernels are wrong there on these CPUs
    public void Channels_last_is_used_up_to_256_channels(int width, bool expected)
    {
        torch.random.manual_seed(3);
        using var encoder = new ResNet(new EncoderSpec("resnet18", width, Stem.Cifar, 32, false, 1));
        encoder.eval();
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var folded = new FoldedEncoder(encoder, dtype);
            Assert.Equal(expected, folded.UsesChannelsLast);
        }
    }
}
