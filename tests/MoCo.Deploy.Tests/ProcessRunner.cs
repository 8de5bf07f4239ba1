using System.Diagnostics;
using System.Text;

namespace MoCo.Deploy.Tests;

/// <summary>Runs a program to its end with a time limit, capturing stdout and stderr together.</summary>
public static class ProcessRunner
{
    public sealed record Result(int ExitCode, string Output)
    {
        /// <summary>The last lines of the output, for an assertion message.</summary>
        public string Tail(int lines = 40) => string.Join('\n', Output.Split('\n').TakeLast(lines));
    }

    public static Result Run(string program, IEnumerable<string> args, string workingDirectory, TimeSpan limit)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // a child `dotnet` must not inherit the test host's MSBuild settings
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
        {
            start.Environment.Remove(name);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output)
            {
                throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in {limit.TotalSeconds:F0} s:\n{output}");
            }
        }
        process.WaitForExit();
        lock (output)
        {
            return new Result(process.ExitCode, output.ToString());
        }
    }
}
