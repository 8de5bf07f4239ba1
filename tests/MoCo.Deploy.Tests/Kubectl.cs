using System.Diagnostics;

namespace MoCo.Deploy.Tests;

/// <summary>
/// Runs <c>kubectl kustomize</c> (offline: it renders, it talks to no cluster). kubectl comes from the machine's
/// packages (Debian: <c>apt-get install kubectl</c>; .ci/run installs it when missing).
/// </summary>
public static class Kubectl
{
    /// <summary>What to do when kubectl is missing or too old.</summary>
    public const string HowToProvide =
        "kubectl with kustomize v4 or later (for kind: Component) is needed to render k8s/: install it (apt-get install kubectl; .ci/run does) " +
        "or put it on PATH";

    private static readonly Lazy<string?> Problem = new(FindProblem);

    /// <summary>Null when kubectl can render, else why not.</summary>
    public static string? Unavailable => Problem.Value;

    /// <summary>Renders the kustomization in <paramref name="directory"/>; throws with kubectl's message when it fails.</summary>
    public static string Kustomize(string directory)
    {
        if (Unavailable is { } problem)
        {
            throw new InvalidOperationException(problem);
        }
        var (code, stdout, stderr) = Run("kustomize", directory);
        if (code != 0)
        {
            throw new InvalidOperationException($"kubectl kustomize {directory} failed ({code}): {stderr.Trim()}");
        }
        return stdout;
    }

    private static string? FindProblem()
    {
        (int Code, string Stdout, string Stderr) version;
        try
        {
            version = Run("version", "--client");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "kubectl not found on PATH. " + HowToProvide;
        }
        if (version.Code != 0)
        {
            return $"kubectl version --client failed ({version.Code}): {version.Stderr.Trim()}. " + HowToProvide;
        }
        // "Kustomize Version: v5.5.0"; kubectl before 1.21 bundled kustomize v2, which has no components
        var line = version.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("Kustomize Version:", StringComparison.Ordinal));
        if (line is null || !int.TryParse(line.Split(':')[1].Trim().TrimStart('v').Split('.')[0], out var major) || major < 4)
        {
            return $"kubectl's kustomize is too old or unknown ({line ?? "no Kustomize Version line"}). " + HowToProvide;
        }
        return null;
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo("kubectl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not finish in 60 s");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>
/// A fact that renders manifests with kubectl. Outside CI a missing kubectl skips it, saying how to install one; in CI
/// (<c>CI=true</c>) it runs and fails with that message, so CI cannot silently lose the manifest checks.
/// </summary>
public sealed class KubectlFactAttribute : FactAttribute
{
    public KubectlFactAttribute()
    {
        if (Kubectl.Unavailable is { } problem && !Repository.IsCi)
        {
            Skip = problem;
        }
    }
}

/// <summary>The theory form of <see cref="KubectlFactAttribute"/>.</summary>
public sealed class KubectlTheoryAttribute : TheoryAttribute
{
    public KubectlTheoryAttribute()
    {
        if (Kubectl.Unavailable is { } problem && !Repository.IsCi)
        {
            Skip = problem;
        }
    }
}
