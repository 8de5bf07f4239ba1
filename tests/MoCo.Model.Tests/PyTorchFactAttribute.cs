using System.Diagnostics;

namespace MoCo.Model.Tests;

/// <summary>
/// A fact that needs Debian's PyTorch and torchvision (<see cref="Python"/>). Outside CI a machine without them skips the
/// test and says how to install them; in CI (<c>CI=true</c>) the test runs and fails with that message, so a CI machine
/// cannot silently lose the cross-check (.ci/run installs them).
/// </summary>
public sealed class PyTorchFactAttribute : FactAttribute
{
    /// <summary>Debian's own interpreter: a pyenv or venv python3 earlier on PATH does not see Debian's packages.</summary>
    public const string Python = "/usr/bin/python3";

    public const string HowToInstall =
        "Debian's PyTorch is not installed for " + Python + ": sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "
        + "python3-torch python3-torchvision (.ci/run does it)";

    private static readonly Lazy<bool> s_available = new(Probe);

    public PyTorchFactAttribute()
    {
        if (!Available && Environment.GetEnvironmentVariable("CI") != "true")
        {
            Skip = HowToInstall;
        }
    }

    /// <summary>Whether <c>import torch, torchvision</c> works in <see cref="Python"/> (probed once per test run).</summary>
    public static bool Available => s_available.Value;

    private static bool Probe()
    {
        if (!File.Exists(Python))
        {
            return false;
        }

        try
        {
            using var process = Process.Start(new ProcessStartInfo(Python, ["-c", "import torch, torchvision"])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            })!;
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
