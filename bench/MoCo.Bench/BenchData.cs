using System.Diagnostics;
using System.Globalization;
using MoCo.Model.Data;

namespace MoCo.Bench;

/// <summary>Opens the data set of the loader configurations and makes its images ready before any timing.</summary>
internal static class BenchData
{
    /// <summary>
    /// Opens <paramref name="spec"/> (resolved by <see cref="RepoPaths.ResolveData"/>) and reads every train image
    /// once, so that rendering the synthetic textures or a first decode is not timed as augmentation. Returns the
    /// splits and a line saying what was opened and how long that took.
    /// </summary>
    /// <exception cref="ArgumentException">The train split holds fewer images than one batch.</exception>
    public static (DatasetSplits Data, string Note) Open(string spec, int batch, int threads)
    {
        long t0 = Stopwatch.GetTimestamp();
        var data = DataSource.Open(RepoPaths.ResolveData(spec));
        if (data.Train.Count < batch)
        {
            throw new ArgumentException($"the train split of '{spec}' has {data.Train.Count} images, fewer than one batch of {batch}");
        }
        var train = data.Train;
        Parallel.For(0, train.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i => _ = train.Image(i));
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return (data, $"{train.Count} train images, opened and read in {seconds.ToString("F1", CultureInfo.InvariantCulture)} s");
    }
}
