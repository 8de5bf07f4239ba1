using System.Diagnostics;
using System.Globalization;
using MoCo.Model.Nn;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// How close each configuration of <c>moco-bench step</c> comes to the machine: its achieved GFLOP/s (FLOPs counted
/// from the network's shapes) against the peak of a large matrix product in libtorch measured in the same run, in
/// float32 and in bfloat16.
/// </summary>
/// <remarks>
/// FLOPs of one image through the encoder's forward, F: every convolution and linear call of an eval-mode forward,
/// recorded with their shapes (<see cref="LayerCallRecorder"/>), 2·(output elements)·(input channels)·k² each, and
/// 2·in·out for a linear layer; BatchNorm, ReLU, pooling and additions are not counted (they are memory-bound, and
/// counting them would flatter the figure). Backward is counted as twice the forward (the input's and the weight's
/// gradients). Per image: (a) 3F (forward and backward of the query encoder); (b), (c) and (e) 4F (the query encoder's
/// forward and backward, the key encoder's forward of the other view) plus the logits against the queue,
/// 3·2·dim·(K + 1) (forward and its two gradients). (d) computes no FLOPs of the network.
/// </remarks>
internal static class MachineLimit
{
    private const int GemmSize = 4096;
    private const int GemmRepeats = 5;
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>
    /// The GEMM peaks (fp32, bf16) in this process at the children's thread count: measured before the children run and
    /// again after them, and the higher of the two kept, so that a slow spell of the machine lowers the peak less.
    /// </summary>
    public static (double Fp32, double Bf16) MeasurePeaks(StepOptions options, (double Fp32, double Bf16)? earlier = null)
    {
        int threads = torch.get_num_threads();
        torch.set_num_threads(options.Threads);
        double fp32 = PeakGflops(ScalarType.Float32);
        double bf16 = PeakGflops(ScalarType.BFloat16);
        torch.set_num_threads(threads);
        return earlier is { } e ? (Math.Max(e.Fp32, fp32), Math.Max(e.Bf16, bf16)) : (fp32, bf16);
    }

    /// <summary>The table, against <paramref name="peaks"/> (<see cref="MeasurePeaks"/>).</summary>
    public static Table Table(Model.Training.RunConfig config, StepOptions options, IReadOnlyDictionary<StepWorkload, ChildRun> results, (double Fp32, double Bf16) peaks)
    {
        var (fp32Peak, bf16Peak) = peaks;
        double forward = ForwardFlopsPerImage(config.Encoder, config.ImageSize);
        double logits = 3.0 * 2 * config.MocoDim * (config.MocoK + 1);

        var table = new Table().Title($"the machine's limit: width {config.Width}, the best {GemmSize}x{GemmSize} GEMM before and after the children").Border(TableBorder.Markdown);
        table.AddColumn("");
        table.AddColumn(new TableColumn("GFLOP per image").RightAligned());
        table.AddColumn(new TableColumn("achieved GFLOP/s").RightAligned());
        table.AddColumn(new TableColumn("GEMM peak GFLOP/s").RightAligned());
        table.AddColumn(new TableColumn("fraction of peak").RightAligned());
        foreach (var (what, run) in results)
        {
            if (run.Measurement is not { } m || what == StepWorkload.Loader)
            {
                continue;
            }

            double perImage = what == StepWorkload.BareLoop ? 3 * forward : 4 * forward + logits;
            double achieved = perImage * m.ImagesPerSecond / 1e9;
            double peak = what == StepWorkload.MocoBf16 ? bf16Peak : fp32Peak;
            table.AddRow($"({what.Letter()}) {Markup.Escape(what.Describe())}", (perImage / 1e9).ToString("F3", C), achieved.ToString("F1", C),
                $"{peak.ToString("F0", C)} ({(what == StepWorkload.MocoBf16 ? "bf16" : "fp32")})", (achieved / peak).ToString("P1", C));
        }

        table.Caption(Markup.Escape($"forward {(forward / 1e6).ToString("F1", C)} MFLOP per image (convolutions and linear layers); GEMM peak fp32 {fp32Peak.ToString("F0", C)}, "
            + $"bf16 {bf16Peak.ToString("F0", C)} GFLOP/s with {options.Threads} thread(s), best of {GemmRepeats} before and {GemmRepeats} after the children"));
        return table;
    }

    /// <summary>FLOPs of one image's forward through the encoder: its convolutions and linear layers, from their recorded shapes.</summary>
    public static double ForwardFlopsPerImage(EncoderSpec spec, int imageSize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var model = new ResNet(spec, Precision.Fp32);
        model.eval();
        var calls = new List<LayerCall>();
        Tensor output;
        using (LayerCallRecorder.Open(calls))
        {
            output = model.forward(zeros(1, 3, imageSize, imageSize));
        }

        double flops = 0;
        foreach (var call in calls)
        {
            if (call.Kind == "conv2d")
            {
                long k = call.WeightShape[2] * call.WeightShape[3];
                long outSide = (call.InputShape[2] + 2 * call.Padding - call.WeightShape[2]) / call.Stride + 1;
                flops += 2.0 * outSide * outSide * call.WeightShape[0] * call.WeightShape[1] * k;
            }
            else if (call.Kind == "linear")
            {
                flops += 2.0 * call.WeightShape[0] * call.WeightShape[1];
            }
        }

        return flops;
    }

    /// <summary>
    /// The best GFLOP/s in <paramref name="dtype"/> of two GEMMs of the same size: <c>mm</c> of two square matrices of
    /// <see cref="GemmSize"/> (BLAS for float32, oneDNN for bfloat16 in libtorch 2.10), and a GEMM of 16,384 x 1024
    /// x 1024 as a 1x1 convolution (oneDNN's convolution kernels, which the network's convolutions use), whichever is faster.
    /// </summary>
    private static double PeakGflops(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var a = randn(GemmSize, GemmSize).to(dtype);
        var b = randn(GemmSize, GemmSize).to(dtype);
        // a GEMM as a 1x1 convolution: 4 images of 64x64 pixels (16,384 rows), 1024 channels in and out (34 GFLOP)
        var x = randn(4, 1024, 64, 64).to(dtype);
        var w = randn(1024, 1024, 1, 1).to(dtype);
        double mm = Best(() => a.mm(b).Dispose(), 2.0 * GemmSize * GemmSize * GemmSize);
        double conv = Best(() => nn.functional.conv2d(x, w).Dispose(), 2.0 * 4 * 64 * 64 * 1024 * 1024);
        return Math.Max(mm, conv);
    }

    private static double Best(Action run, double flops)
    {
        run(); // warm-up: the kernel chosen and its buffers made
        double best = double.PositiveInfinity;
        for (int i = 0; i < GemmRepeats; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }

        return flops / best / 1e9;
    }
}
