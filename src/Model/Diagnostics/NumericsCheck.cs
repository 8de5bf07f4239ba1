using System.Diagnostics;
using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Diagnostics;

/// <summary>One tensor of the check: how far it is from the float64 computation, ‖a − b‖ / ‖b‖ (infinite for NaN or Inf).</summary>
public sealed record NumericsCheckEntry(string Name, double RelativeError, double Tolerance)
{
    public bool Finite => double.IsFinite(RelativeError);

    public bool Passed => Finite && RelativeError <= Tolerance;
}

/// <summary>What <see cref="NumericsCheck.Run"/> found.</summary>
public sealed record NumericsReport(
    EncoderSpec Encoder,
    Precision Precision,
    int ImageSize,
    long Batch,
    string Device,
    int Threads,
    CpuDescription Cpu,
    IReadOnlyList<NumericsCheckEntry> Entries,
    double Seconds)
{
    /// <summary>The entry furthest beyond its tolerance (a non-finite one first).</summary>
    public NumericsCheckEntry Worst => Entries.OrderByDescending(e => e.Finite ? e.RelativeError / e.Tolerance : double.PositiveInfinity).First();

    public bool Passed => Entries.All(e => e.Passed);

    /// <summary>Where it ran: the network, the device, the threads and the CPU.</summary>
    public string Setting =>
        $"{Encoder.Arch} width {Encoder.Width} {Encoder.Stem.ToString().ToLowerInvariant()} stem, {Precision.Name()}, {ImageSize}px, batch {Batch}; "
        + $"{Device}, {Threads} torch threads; {Cpu}";

    /// <summary>One line: the verdict, the worst tensor and its tolerance.</summary>
    public string Summary =>
        $"{(Passed ? "passed" : "FAILED")}: {Entries.Count} checks against float64, worst {Worst.Name} at "
        + $"{(Worst.Finite ? Worst.RelativeError.ToString("0.0e0") : "NaN/Inf")} (tolerance {Worst.Tolerance:0e0}), {Seconds:F1} s";
}

/// <summary>
/// The numerical self-check of the configured encoder on this machine, against float64 in which every convolution is
/// im2col and a matrix product (<see cref="AlignedConvolution.Reference"/>: no convolution kernel, no oneDNN blocking):
/// <list type="bullet">
/// <item><b>Every layer</b>: each distinct convolution, linear and training-mode BatchNorm call of the network
/// (recorded from a forward at the configured image size) is made again at the training batch size and the configured
/// precision, through the same code (<see cref="AlignedConvolution"/>), so that libtorch picks the kernels training will
/// get. Convolutions and linear layers: the output and the gradients of the weight and (where training needs it) the
/// input, compared on the first and the last sample (the output's gradient is zero elsewhere, which keeps the float64
/// side small). BatchNorm couples the batch, so it is compared whole (it is cheap). A correct kernel stays near 1e-6 in
/// float32 and 4e-3 in bfloat16 (8 bits of mantissa); a wrong one is 0.1 to 1 off or NaN: tolerances 1e-4 and 3e-2.</item>
/// <item><b>The network</b>: the whole encoder at the configured precision, forward and backward, BatchNorm with its
/// running statistics (eval mode) on two images per BN group: the output, and all parameter gradients together.
/// Measured in float32 up to 2e-5 (ResNet-50 at 224 pixels; tolerance 1e-3); in bf16-mixed 1e-2 for the output and 0.12 for the gradients, which
/// bf16 rounds layer after layer (tolerances 3e-2 and 0.3). Training mode is left to the layer checks: there,
/// BatchNorm's backward subtracts means over tiny groups and turns rounding alone into per-tensor differences of 1e-2
/// (float32) to 0.5 (bf16) from float64, which would hide a wrong kernel rather than show it.</item>
/// </list>
/// </summary>
public static class NumericsCheck
{
    public const double LayerFp32Tolerance = 1e-4;

    public const double LayerBf16Tolerance = 3e-2;

    public const double NetworkFp32Tolerance = 1e-3;

    public const double NetworkBf16OutputTolerance = 3e-2;

    public const double NetworkBf16GradientTolerance = 0.3;

    /// <summary>
    /// Runs the check for <paramref name="spec"/> at <paramref name="precision"/> with images of
    /// <paramref name="imageSize"/> pixels and the layers at a batch of <paramref name="batch"/> (one worker's share of the
    /// global batch); <paramref name="device"/> null is the CPU.
    /// </summary>
    public static NumericsReport Run(EncoderSpec spec, Precision precision, int imageSize, long batch, Device? device = null, ulong seed = 0x5eed)
    {
        var clock = Stopwatch.StartNew();
        device ??= CPU;
        if (batch < 2)
        {
            throw new ArgumentException($"the numerics check needs a batch of at least 2, not {batch}");
        }

        var entries = new List<NumericsCheckEntry>();
        using (var generator = new Generator(seed))
        {
            foreach (var call in RecordCalls(spec, precision, imageSize))
            {
                entries.AddRange(CheckLayer(call, batch, device, generator));
            }

            entries.AddRange(CheckNetwork(spec, precision, imageSize, device, generator));
        }

        return new NumericsReport(spec, precision, imageSize, batch, device.ToString(), get_num_threads(), CpuDescription.Current(), entries, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The distinct convolution, linear and BatchNorm calls of a training-mode forward of the encoder.</summary>
    public static IReadOnlyList<LayerCall> RecordCalls(EncoderSpec spec, Precision precision, int imageSize)
    {
        using var scope = NewDisposeScope();
        using var model = new ResNet(spec, precision);
        model.train();
        var calls = new List<LayerCall>();
        using (LayerCallRecorder.Open(calls))
        {
            model.forward(zeros(2L * spec.BnGroups, 3, imageSize, imageSize));
        }

        model.DropNormStatistics();
        return calls.DistinctBy(c => c.Key).ToList();
    }

    /// <summary>A convolution as the network computes it: (input, weight, stride, padding) → output.</summary>
    public delegate Tensor Convolution(Tensor input, Tensor weight, long stride, long padding);

    /// <summary>
    /// One layer call again at <paramref name="batch"/>, its output and gradients on samples 0 and batch − 1 against
    /// float64. <paramref name="convolution"/> replaces the network's convolution (<see cref="AlignedConvolution.Conv2d"/>),
    /// for tests that show the check catching a wrong one.
    /// </summary>
    public static IEnumerable<NumericsCheckEntry> CheckLayer(LayerCall call, long batch, Device device, Generator generator, Convolution? convolution = null) =>
        call.Kind == "batch_norm" ? CheckBatchNorm(call, batch, device, generator) : CheckWeightLayer(call, batch, device, generator, convolution ?? AlignedConvolution.Conv2d);

    private static IEnumerable<NumericsCheckEntry> CheckWeightLayer(LayerCall call, long batch, Device device, Generator generator, Convolution convolution)
    {
        using var scope = NewDisposeScope();
        double tolerance = call.ComputeType == ScalarType.BFloat16 ? LayerBf16Tolerance : LayerFp32Tolerance;
        var shape = call.InputShape.ToArray();
        shape[0] = batch;
        var x = randn(shape, generator: generator).to(call.ComputeType).to(device).requires_grad_(call.InputGradient);
        double fanIn = call.WeightShape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var w = (randn(call.WeightShape, generator: generator) / Math.Sqrt(fanIn)).to(call.ComputeType).to(device).requires_grad_(true);
        var y = Forward(call, x, w, convolution);
        long last = batch - 1;
        var samples = tensor(new long[] { 0, last });
        var mask = zeros(batch, dtype: ScalarType.Float32);
        mask[0] = 1;
        mask[last] = 1;
        var maskShape = Enumerable.Repeat(1L, (int)y.dim()).ToArray();
        maskShape[0] = batch;
        var gy = (randn(y.shape, generator: generator) * mask.view(maskShape)).to(call.ComputeType);
        y.backward([gy.to(device)]);

        var x64 = x.detach().cpu().index_select(0, samples).to(ScalarType.Float64).requires_grad_(call.InputGradient);
        var w64 = w.detach().cpu().to(ScalarType.Float64).requires_grad_(true);
        var y64 = Forward(call with { ComputeType = ScalarType.Float64 }, x64, w64, convolution);
        y64.backward([gy.index_select(0, samples).to(ScalarType.Float64)]);

        string name = call.Key;
        yield return new NumericsCheckEntry(name + ": output", RelativeError(y.detach().cpu().index_select(0, samples), y64), tolerance);
        yield return new NumericsCheckEntry(name + ": weight gradient", RelativeError(w.grad!, w64.grad!), tolerance);
        if (call.InputGradient)
        {
            // samples other than the two got no output gradient: their input gradient must be exactly zero
            var dx = x.grad!.cpu();
            var dx64 = zeros(dx.shape, dtype: ScalarType.Float64).index_copy_(0, samples, x64.grad!);
            yield return new NumericsCheckEntry(name + ": input gradient", RelativeError(dx, dx64), tolerance);
        }
    }

    /// <summary>
    /// A training-mode BatchNorm over the call's groups (SplitBatchNorm's view: group j holds the samples n with
    /// n mod G = j), whole batch against float64: output and the gradients of input, weight and bias.
    /// </summary>
    private static IEnumerable<NumericsCheckEntry> CheckBatchNorm(LayerCall call, long batch, Device device, Generator generator)
    {
        using var scope = NewDisposeScope();
        double tolerance = call.ComputeType == ScalarType.BFloat16 ? LayerBf16Tolerance : LayerFp32Tolerance;
        long groups = call.Groups;
        long features = call.WeightShape[0];
        batch = Math.Max(groups, batch / groups * groups);
        var shape = call.InputShape.ToArray();
        shape[0] = batch;
        var x = (randn(shape, generator: generator) * 2 + 0.5).to(call.ComputeType).to(device).requires_grad_(true);
        var weight = (rand(features, generator: generator) + 0.5).to(device).requires_grad_(true);
        var bias = randn(features, generator: generator).to(device).requires_grad_(true);
        var gy = randn(shape, generator: generator).to(call.ComputeType);
        var y = SplitForward(x, weight, bias, groups);
        y.backward([gy.to(device)]);
        var x64 = x.detach().cpu().to(ScalarType.Float64).requires_grad_(true);
        var weight64 = weight.detach().cpu().to(ScalarType.Float64).requires_grad_(true);
        var bias64 = bias.detach().cpu().to(ScalarType.Float64).requires_grad_(true);
        var y64 = SplitForward(x64, weight64, bias64, groups);
        y64.backward([gy.to(ScalarType.Float64)]);

        string name = call.Key;
        yield return new NumericsCheckEntry(name + ": output", RelativeError(y, y64), tolerance);
        yield return new NumericsCheckEntry(name + ": input gradient", RelativeError(x.grad!, x64.grad!), tolerance);
        yield return new NumericsCheckEntry(name + ": weight gradient", RelativeError(weight.grad!, weight64.grad!), tolerance);
        yield return new NumericsCheckEntry(name + ": bias gradient", RelativeError(bias.grad!, bias64.grad!), tolerance);
    }

    private static Tensor SplitForward(Tensor x, Tensor weight, Tensor bias, long groups)
    {
        var shape = x.shape;
        long features = weight.shape[0];
        var view = x.view(shape[0] / groups, features * groups, shape[2], shape[3]);
        var statistics = weight.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var mean = zeros(features * groups, dtype: statistics, device: x.device);
        var variance = ones(features * groups, dtype: statistics, device: x.device);
        return nn.functional.batch_norm(view, mean, variance, weight.repeat(groups), bias.repeat(groups), true, 0.1, 1e-5).view(shape);
    }

    private static Tensor Forward(LayerCall call, Tensor x, Tensor w, Convolution convolution) => call.Kind switch
    {
        // float64 is the reference (im2col and a matrix product); float32 and bf16 take the network's own path
        "conv2d" when call.ComputeType == ScalarType.Float64 => AlignedConvolution.Reference(x, w, call.Stride, call.Padding),
        "conv2d" => convolution(x, w, call.Stride, call.Padding),
        "linear" => nn.functional.linear(x, w),
        _ => throw new ArgumentException($"unknown layer kind {call.Kind}"),
    };

    /// <summary>The whole encoder at <paramref name="precision"/> in eval mode against float64: output and every parameter gradient together.</summary>
    private static IEnumerable<NumericsCheckEntry> CheckNetwork(EncoderSpec spec, Precision precision, int imageSize, Device device, Generator generator)
    {
        using var scope = NewDisposeScope();
        using var model = new ResNet(spec, precision);
        model.ResetParameters(generator);
        using (no_grad())
        {
            // running statistics away from the initial 0 and 1, so that eval-mode BN does something
            foreach (var bn in model.Norms)
            {
                bn.RunningMean.copy_(randn(bn.RunningMean.shape, generator: generator) * 0.1);
                bn.RunningVar.copy_(rand(bn.RunningVar.shape, generator: generator) + 0.5);
            }
        }

        using var reference = new ResNet(spec, Precision.Fp32);
        reference.load_state_dict(model.state_dict());
        reference.to(ScalarType.Float64);
        model.to(device);
        model.eval();
        reference.eval();
        var images = randn([2L * spec.BnGroups, 3, imageSize, imageSize], generator: generator);
        var output = model.forward(images.to(device));
        var weights = randn(output.shape, generator: generator); // the loss sum(output * weights) has gradient weights
        (output * weights.to(device)).sum().backward();
        var outputReference = reference.forward(images.to(ScalarType.Float64));
        (outputReference * weights.to(ScalarType.Float64)).sum().backward();

        bool bf16 = precision == Precision.Bf16Mixed;
        string name = $"network ({precision.Name()}, eval mode)";
        yield return new NumericsCheckEntry(name + ": output", RelativeError(output, outputReference), bf16 ? NetworkBf16OutputTolerance : NetworkFp32Tolerance);
        var gradients = cat(model.parameters().Select(p => p.grad!.cpu().flatten()).ToList(), 0);
        var referenceGradients = cat(reference.parameters().Select(p => p.grad!.flatten()).ToList(), 0);
        yield return new NumericsCheckEntry(name + ": all parameter gradients", RelativeError(gradients, referenceGradients), bf16 ? NetworkBf16GradientTolerance : NetworkFp32Tolerance);
    }

    /// <summary>‖a − b‖ / ‖b‖ in float64; infinite when a holds NaN or Inf.</summary>
    public static double RelativeError(Tensor actual, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var a = actual.detach().cpu().to(ScalarType.Float64);
        var b = reference.detach().cpu().to(ScalarType.Float64);
        if (!a.isfinite().all().item<bool>())
        {
            return double.PositiveInfinity;
        }

        double scale = b.norm().item<double>();
        double error = (a - b).norm().item<double>();
        return scale > 0 ? error / scale : error;
    }
}
