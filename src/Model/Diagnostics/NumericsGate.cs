using System.Collections.Concurrent;
using MoCo.Model.Nn;
using static TorchSharp.torch;

namespace MoCo.Model.Diagnostics;

/// <summary>
/// The numerical self-check before training, once per process for each network, precision, image size, batch, device
/// and thread count (the things that decide which kernels libtorch runs): every worker calls it before its first step,
/// and the second worker of a process with the same setting gets the first one's report.
/// </summary>
public static class NumericsGate
{
    /// <summary>The layers are checked at most at this batch (a worker's share may be larger; the check then costs less than a step).</summary>
    public const long MaxBatch = 64;

    private static readonly ConcurrentDictionary<string, Lazy<NumericsReport>> Reports = new();

    /// <summary>The check's report for this setting (run now or earlier in this process); throws when it failed.</summary>
    /// <exception cref="NumericsCheckFailedException">A layer or the network is beyond its tolerance, or not finite.</exception>
    public static NumericsReport Ensure(EncoderSpec spec, Precision precision, int imageSize, long localBatch, Device? device = null)
    {
        long batch = Math.Clamp(localBatch, 2, MaxBatch);
        string key = $"{spec} {precision} {imageSize} {batch} {device?.ToString() ?? "cpu"} {get_num_threads()}";
        var report = Reports.GetOrAdd(key, _ => new Lazy<NumericsReport>(() => NumericsCheck.Run(spec, precision, imageSize, batch, device))).Value;
        return report.Passed ? report : throw new NumericsCheckFailedException(report);
    }
}
