using System.Diagnostics;
using System.Globalization;

namespace MoCo.Bench;

/// <summary>Runs bench/gloo_allreduce.py (PyTorch's Gloo backend) for one process count and reads its measurements.</summary>
internal static class GlooBaseline
{
    /// <summary>The measurements for <paramref name="procs"/> processes, or the reason there are none.</summary>
    public static (IReadOnlyList<AllReduceMeasurement> Measurements, string? Error) Run(AllReduceOptions options, int procs)
    {
        var c = CultureInfo.InvariantCulture;
        var script = RepoPaths.Resolve("bench/gloo_allreduce.py");
        var info = new ProcessStartInfo
        {
            FileName = options.Python,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add("--world");
        info.ArgumentList.Add(procs.ToString(c));
        info.ArgumentList.Add("--sizes");
        info.ArgumentList.Add(string.Join(",", options.SizesBytes.Select(b => b.ToString(c))));
        info.ArgumentList.Add("--iters");
        info.ArgumentList.Add(string.Join(",", options.SizesBytes.Select(b => AllReduceOptions.Iterations(b).ToString(c))));
        info.ArgumentList.Add("--warmup");
        info.ArgumentList.Add(options.Warmup.ToString(c));
        try
        {
            using var process = Process.Start(info)!;
            var errors = process.StandardError.ReadToEndAsync();
            var measurements = new List<AllReduceMeasurement>();
            while (process.StandardOutput.ReadLine() is { } line)
            {
                if (AllReduceMeasurement.TryParse(line.Trim()) is { } m)
                {
                    measurements.Add(m);
                }
            }
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                var tail = errors.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(10);
                return (measurements, $"{options.Python} {script} ended with exit code {process.ExitCode}:\n{string.Join("\n", tail)}");
            }
            return (measurements, null);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return ([], $"cannot start {options.Python}: {e.Message} (on Debian: apt-get install python3-torch)");
        }
    }
}
