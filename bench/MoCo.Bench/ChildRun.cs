using System.Diagnostics;

namespace MoCo.Bench;

/// <summary>The outcome of one <c>step-one</c> child: its measurement, or why there is none.</summary>
/// <param name="Measurement">The JSON line the child printed; null when it failed.</param>
/// <param name="ExitCode">The child's exit code.</param>
/// <param name="ErrorTail">The last lines of the child's standard error (empty when it said nothing).</param>
/// <param name="WallSeconds">The child's whole life, set-up included.</param>
internal sealed record ChildRun(StepMeasurement? Measurement, int ExitCode, string ErrorTail, double WallSeconds)
{
    private const int TailLines = 15;

    /// <summary>Starts this same executable with <paramref name="arguments"/>, waits for it, and reads its JSON line.</summary>
    public static ChildRun Start(IEnumerable<string> arguments)
    {
        var raw = StartRaw(arguments);
        StepMeasurement? measurement = null;
        foreach (var line in raw.Output.Split('\n'))
        {
            measurement = StepMeasurement.TryParse(line.Trim()) ?? measurement;
        }

        return new ChildRun(raw.ExitCode == 0 ? measurement : null, raw.ExitCode, raw.ErrorTail, raw.WallSeconds);
    }

    /// <summary>Starts this same executable with <paramref name="arguments"/> and waits for it: its whole standard output, exit code and the tail of its standard error.</summary>
    public static (string Output, int ExitCode, string ErrorTail, double WallSeconds) StartRaw(IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo
        {
            FileName = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this executable is unknown"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet")
        {
            // run as `dotnet moco-bench.dll ...`: the child needs the assembly too
            info.ArgumentList.Add(typeof(ChildRun).Assembly.Location);
        }
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var errors = new Queue<string>();
        long t0 = Stopwatch.GetTimestamp();
        using var process = new Process { StartInfo = info };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            lock (errors)
            {
                errors.Enqueue(e.Data);
                if (errors.Count > TailLines)
                {
                    errors.Dequeue();
                }
            }
        };
        process.Start();
        process.BeginErrorReadLine();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        string tail;
        lock (errors)
        {
            tail = string.Join(Environment.NewLine, errors);
        }
        return (output, process.ExitCode, tail, wall);
    }
}
