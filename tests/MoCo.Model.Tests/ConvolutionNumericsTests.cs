using MoCo.Model.Diagnostics;
using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// The convolutions the networks make, against float64 (libtorch's plain float64 path, which no ISA dispatch or
/// CPUID-derived blocking touches). Before <see cref="AlignedConvolution"/>, on this project's cloud CPUs (CPUID leaves
/// for caches and cores zeroed by the hypervisor), libtorch 2.10 computed 957 of these 4320 float32 shapes wrongly
/// (826 with DNNL_MAX_CPU_ISA=AVX2) and 2349 in bfloat16, and 1x1 stride-2 backward with 512 → 1024 channels stopped
/// the process with SIGFPE. CI runs this file under the default ISA and under AVX2.
/// Tolerances, on ‖a − b‖ / ‖b‖ per tensor: 1e-4 in float32 (measured at most 2e-6), 5e-2 in bfloat16 (8 bits of
/// mantissa: measured at most 1e-2); the wrong results were 0.1 to 1 off, or NaN.
/// </summary>
public class ConvolutionNumericsTests
{
    private static readonly long[] Channels = [1, 3, 4, 7, 8, 12, 16, 17, 24, 32, 48, 64];

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Every_channel_count_kernel_and_stride_matches_float64(ScalarType dtype)
    {
        double tolerance = dtype == ScalarType.BFloat16 ? 5e-2 : 1e-4;
        var wrong = new List<string>();
        using var generator = new Generator(11);
        var cases =
            from k in new long[] { 3, 1 }
            from s in new long[] { 1, 2 }
            from dx in new[] { true, false }
            from ic in Channels
            from oc in Channels
            select (ic, oc, k, s, dx, hw: 12L);
        // the image stems (7x7 stride 2, 3x3 stride 1 on 3 channels) and the shapes that crashed or went wrong in ResNet-50
        cases = cases.Concat([(3, 64, 7, 2, false, 32), (3, 16, 3, 1, false, 32), (512, 1024, 1, 2, true, 14), (1024, 2048, 1, 2, true, 14), (48, 48, 3, 2, true, 12), (80, 96, 3, 2, true, 12)]);
        foreach (var (ic, oc, k, s, dx, hw) in cases)
        {
            using var scope = NewDisposeScope();
            var call = new LayerCall("conv2d", [8, ic, hw, hw], [oc, ic, k, k], s, k / 2, dtype, dx);
            foreach (var entry in NumericsCheck.CheckLayer(call, 8, CPU, generator))
            {
                if (!entry.Finite || entry.RelativeError > tolerance)
                {
                    wrong.Add($"{entry.Name} {entry.RelativeError:0.0e0}");
                }
            }
        }

        Assert.True(wrong.Count == 0, $"{wrong.Count} wrong ({CpuDescription.Current()}): {string.Join("; ", wrong.Take(10))}");
    }

    /// <summary>
    /// The kNN monitor's forward (<see cref="MoCo.Model.Evaluation.FoldedEncoder"/>): channels-last activations and
    /// weights with a bias, no gradient, which oneDNN computes with other kernels than the contiguous layout's; every
    /// channel count, kernel and stride here, up to 256 channels at 4 to 32 pixels, and the image stems, against float64,
    /// with the tolerances above. (Above 256 channels the channels-last 1x1 kernels were wrong or stopped the process with
    /// SIGFPE on these CPUs: the folded encoder then keeps the contiguous layout, and no such shape is run here.)
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Channels_last_forward_with_a_bias_matches_float64(ScalarType dtype)
    {
        double tolerance = dtype == ScalarType.BFloat16 ? 5e-2 : 1e-4;
        var wrong = new List<string>();
        using var generator = new Generator(12);
        var cases =
            from k in new long[] { 3, 1 }
            from s in new long[] { 1, 2 }
            from ic in Channels
            from oc in Channels
            select (ic, oc, k, s, hw: 12L);
        // up to FoldedEncoder.ChannelsLastLimit channels at the spatial sizes a 32-pixel network has; the image stems
        var wide =
            from k in new long[] { 3, 1 }
            from s in new long[] { 1, 2 }
            from ic in new long[] { 64, 128, 256 }
            from oc in new long[] { 64, 128, 256 }
            from hw in new long[] { 4, 8, 16, 32 }
            select (ic, oc, k, s, hw);
        cases = cases.Concat(wide).Concat([(3, 64, 7, 2, 32), (3, 16, 3, 1, 32)]);
        int count = 0;
        foreach (var (ic, oc, k, s, hw) in cases)
        {
            using var scope = NewDisposeScope();
            var x = randn([8, ic, hw, hw], dtype: ScalarType.Float64, generator: generator);
            var w = randn([oc, ic, k, k], dtype: ScalarType.Float64, generator: generator).div_(Math.Sqrt(ic * k * k));
            var b = randn([oc], dtype: ScalarType.Float64, generator: generator);
            long padding = k == 7 ? 3 : k / 2;
            var expected = AlignedConvolution.Reference(x, w, s, padding).add_(b.view(1, -1, 1, 1));
            Tensor actual;
            using (no_grad())
            {
                var xl = MoCo.Model.Evaluation.FoldedEncoder.ChannelsLast(x.to(dtype));
                var wl = MoCo.Model.Evaluation.FoldedEncoder.ChannelsLast(w.to(dtype));
                actual = AlignedConvolution.Conv2d(xl, wl, s, padding, b.to(dtype)).to(ScalarType.Float64);
            }
            double error = NumericsCheck.RelativeError(actual, expected);
            count++;
            if (!double.IsFinite(error) || error > tolerance)
            {
                wrong.Add($"{ic}->{oc} {k}x{k}/{s}: {error:0.0e0}");
            }
        }

        Assert.True(count > 500);
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {count} wrong ({CpuDescription.Current()}): {string.Join("; ", wrong.Take(10))}");
    }

    [Fact]
    public void Padding_adds_channels_only_where_needed()
    {
        Assert.Equal(12, AlignedConvolution.Padding(4));
        Assert.Equal(0, AlignedConvolution.Padding(16));
        Assert.Equal(15, AlignedConvolution.Padding(17));
        Assert.Equal(16, AlignedConvolution.Padding(48)); // an odd number of 16-channel blocks: 3x3 stride-2 backward was wrong
        Assert.Equal(0, AlignedConvolution.Padding(64));
        Assert.Equal(0, AlignedConvolution.Padding(2048));
    }

    [Fact]
    public void Strided_1x1_convolution_is_the_convolution_of_every_other_pixel()
    {
        using var generator = new Generator(3);
        var x = randn([2, 32, 7, 7], generator: generator);
        var w = randn([64, 32, 1, 1], generator: generator);
        var actual = AlignedConvolution.Conv2d(x, w, 2, 0);
        var expected = AlignedConvolution.Reference(x.to(ScalarType.Float64), w.to(ScalarType.Float64), 2, 0);
        Assert.Equal([2L, 64, 4, 4], actual.shape);
        Assert.True(NumericsCheck.RelativeError(actual, expected) < 1e-6);
    }

    [Theory]
    [InlineData(3, 1, 1)]
    [InlineData(3, 2, 1)]
    [InlineData(7, 2, 3)]
    [InlineData(1, 2, 0)]
    public void The_float64_reference_is_libtorchs_convolution(long kernel, long stride, long padding)
    {
        // im2col and a matrix product against libtorch's own float64 convolution: the same sums, to rounding
        using var generator = new Generator(4);
        var x = randn([3, 5, 13, 13], dtype: ScalarType.Float64, generator: generator);
        var w = randn([6, 5, kernel, kernel], dtype: ScalarType.Float64, generator: generator);
        var expected = nn.functional.conv2d(x, w, null, strides: [stride, stride], padding: [padding, padding]);
        var actual = AlignedConvolution.Reference(x, w, stride, padding);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(NumericsCheck.RelativeError(actual, expected) < 1e-12);
    }

    [Fact]
    public void The_check_catches_a_wrong_convolution_and_a_NaN()
    {
        using var generator = new Generator(5);
        var call = new LayerCall("conv2d", [8, 16, 12, 12], [16, 16, 3, 3], 1, 1, ScalarType.Float32, true);
        // one part in a thousand off: far inside what the wrong kernels did (0.1 to 1), ten times the tolerance
        NumericsCheck.Convolution slightlyWrong = (x, w, s, p) => AlignedConvolution.Conv2d(x, w, s, p) * 1.001;
        var entries = NumericsCheck.CheckLayer(call, 8, CPU, generator, slightlyWrong).ToList();
        Assert.Contains(entries, e => e.Name.EndsWith("output", StringComparison.Ordinal) && !e.Passed && e.RelativeError > 5e-4);
        Assert.Contains(entries, e => e.Name.EndsWith("input gradient", StringComparison.Ordinal) && !e.Passed);

        // a NaN in one sample's output, the last: the check compares the first and the last
        NumericsCheck.Convolution lastSampleNaN = (x, w, s, p) =>
        {
            var y = AlignedConvolution.Conv2d(x, w, s, p);
            var mask = ones_like(y);
            using (no_grad())
            {
                mask[^1, 0, 0, 0] = float.NaN;
            }

            return y * mask;
        };
        var nan = NumericsCheck.CheckLayer(call, 8, CPU, generator, lastSampleNaN).ToList();
        Assert.Contains(nan, e => !e.Finite);
        Assert.All(NumericsCheck.CheckLayer(call, 8, CPU, generator), e => Assert.True(e.Passed, $"{e.Name} {e.RelativeError}"));
    }

    [Theory]
    [InlineData("fp32")]
    [InlineData("bf16-mixed")]
    public void The_test_networks_pass_the_whole_check(string precision)
    {
        foreach (var spec in new[] { new EncoderSpec("resnet18", 4, Stem.Cifar, 8, false, 4), new EncoderSpec("resnet18", 16, Stem.Cifar, 128, true, 8) })
        {
            var report = NumericsCheck.Run(spec, PrecisionNames.Parse(precision), 32, 16);
            Assert.True(report.Passed, NumericsCheckFailedException.Describe(report));
            // every distinct layer was checked: convolutions, BatchNorms, the head, and the network twice
            Assert.Contains(report.Entries, e => e.Name.StartsWith("conv2d", StringComparison.Ordinal));
            Assert.Contains(report.Entries, e => e.Name.StartsWith("batch_norm", StringComparison.Ordinal));
            Assert.Contains(report.Entries, e => e.Name.StartsWith("linear", StringComparison.Ordinal));
            Assert.Equal(2, report.Entries.Count(e => e.Name.StartsWith("network", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void The_recorded_calls_are_the_networks_distinct_layers()
    {
        var calls = NumericsCheck.RecordCalls(new EncoderSpec("resnet18", 16, Stem.Cifar, 128, false, 8), Precision.Fp32, 32);
        var convolutions = calls.Where(c => c.Kind == "conv2d").ToList();
        // stem; layer1 (16→16, one shape); layer2..4: strided 3x3, 3x3, strided 1x1 downsample
        Assert.Equal(1 + 1 + 3 * 3, convolutions.Count);
        var stem = convolutions[0];
        Assert.Equal([16L, 3, 3, 3], stem.WeightShape);
        Assert.False(stem.InputGradient); // images need no gradient: the stem keeps its 3 channels
        Assert.All(convolutions.Skip(1), c => Assert.True(c.InputGradient));
        Assert.Single(calls, c => c.Kind == "linear");
    }
}
