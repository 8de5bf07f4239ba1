using System.Globalization;
using System.Text.RegularExpressions;
using MoCo.Model.Tests;

namespace MoCo.Host.Tests;

/// <summary>
/// Weights in: <c>moco knn</c> and <c>moco lincls</c> read an official MoCo checkpoint and a torchvision state_dict
/// written by Debian's PyTorch (tests/python/make_official.py, from the weights of one of our runs) and evaluate them
/// to the same accuracy as the run's own checkpoint; a file of no known layout is refused with the layouts named.
/// </summary>
public sealed partial class WeightsInTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moco-weights-in-" + Guid.NewGuid().ToString("N"));

    private static readonly string[] Tiny =
    [
        "--data", "synthetic:256", "--epochs", "1", "--batch-size", "32", "--moco-k", "64", "--width", "8",
        "--moco-dim", "16", "--bn-splits", "4", "--knn-every", "0", "--mlp", "true",
    ];

    [PyTorchFact]
    public void Official_and_torchvision_layouts_evaluate_like_the_run_they_came_from()
    {
        Directory.CreateDirectory(_dir);
        var runDir = Path.Combine(_dir, "run");
        var (code, output) = Run(["train", .. Tiny, "--run-dir", runDir]);
        Assert.True(code == 0, output);
        (code, output) = Run(["export", "--checkpoint", runDir, "--out", Path.Combine(_dir, "encoder.pth"), "--with-head"]);
        Assert.True(code == 0, output);
        (code, output) = Run(["export", "--checkpoint", runDir, "--out", Path.Combine(_dir, "encoder.safetensors"), "--with-head", "--format", "safetensors"]);
        Assert.True(code == 0, output);
        var python = Python([Path.Combine(Repository(), "tests", "python", "make_official.py"), Path.Combine(_dir, "encoder.pth"), _dir]);
        Assert.True(python.ExitCode == 0, python.Output);

        // the run's own checkpoint, then the same weights in three other layouts, with the data and preset of the run
        string[] eval = ["--data", "synthetic:256", "--preset", "quickstart"];
        var (ours, oursOutput) = Knn(["--checkpoint", runDir, "--data", "synthetic:256"]);
        foreach (var (file, layout) in new[]
                 {
                     ("official.pth.tar", "an official MoCo checkpoint"), ("torchvision.pth", "a torchvision ResNet state_dict"),
                     ("encoder.safetensors", "safetensors with torchvision names"),
                 })
        {
            var (top1, text) = Knn(["--checkpoint", Path.Combine(_dir, file), .. eval]);
            Assert.Contains($"weights: {layout}", text);
            Assert.Contains("resnet18 width 8, cifar stem, MLP head of 16", text);
            // the same weights, data and kNN settings: the same top-1 (tolerance 0.1 point, the issue's bound; one
            // test image is 0.5 point here, so any difference at all fails)
            Assert.True(Math.Abs(top1 - ours) <= 0.1, $"{file}: top-1 {top1} vs the run's {ours}\n{text}\n{oursOutput}");
        }

        // lincls reads the official layout too (one epoch on cached features: the path, not the protocol, is tested)
        (code, output) = Run(["lincls", "--pretrained", Path.Combine(_dir, "official.pth.tar"), "--preset", "quickstart", "--data", "synthetic:256",
            "--epochs", "1", "--cache-features", "--batch-size", "64"]);
        Assert.True(code == 0, output);
        Assert.Contains("epoch 0: loss", output);

        // train --init: both encoders start from the official checkpoint, so the kNN before the first step is the
        // source run's final one (same data and kNN settings); a network that does not fit is refused by name
        (code, output) = Run(["train", .. Tiny.Select(a => a == "0" ? "1" : a), "--run-dir", Path.Combine(_dir, "init"), "--init", Path.Combine(_dir, "official.pth.tar")]);
        Assert.True(code == 0, output);
        Assert.Contains("init: both encoders start from", output);
        Assert.Contains("head included", output);
        Assert.Contains("kNN top-1 before the first step (weights from official.pth.tar)", output);
        var atStart = KnnAtStart().Match(output);
        Assert.True(atStart.Success, output);
        Assert.True(Math.Abs(double.Parse(atStart.Groups[1].Value, CultureInfo.InvariantCulture) - ours) <= 0.1, $"kNN at the start of the --init run vs the source run's {ours}:\n{output}");
        (code, output) = Run(["train", .. Tiny.Select(a => a == "8" ? "16" : a), "--run-dir", Path.Combine(_dir, "init-wide"), "--init", Path.Combine(_dir, "official.pth.tar")]);
        Assert.Equal(2, code);
        Assert.Contains("holds a resnet18 of width 8", output);
        Assert.Contains("this run builds a resnet18 of width 16", output);

        // no known layout: refused with what was found and what is expected
        (code, output) = Run(["knn", "--checkpoint", Path.Combine(_dir, "unknown.pth"), "--data", "synthetic:256"]);
        Assert.Equal(2, code);
        Assert.Contains("holds keys weights", output);
        Assert.Contains("an official MoCo checkpoint", output);
        File.WriteAllBytes(Path.Combine(_dir, "garbage.bin"), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        (code, output) = Run(["knn", "--checkpoint", Path.Combine(_dir, "garbage.bin"), "--data", "synthetic:256"]);
        Assert.Equal(2, code);
        Assert.Contains("is none of the weights layouts", output);
    }

    private (double Top1, string Output) Knn(string[] args)
    {
        var (code, output) = Run(["knn", .. args]);
        Assert.True(code == 0, output);
        var match = Top1().Match(output);
        Assert.True(match.Success, output);
        return (double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), output);
    }

    [GeneratedRegex(@"top-1 ([0-9.]+)%")]
    private static partial Regex Top1();

    [GeneratedRegex(@"kNN top-1 (?:of the random encoder|before the first step \(weights from [^)]+\)): ([0-9.]+)%")]
    private static partial Regex KnnAtStart();

    private static (int Code, string Output) Run(string[] args)
    {
        using var process = MultiProcess.MocoProcess.Start("moco " + args[0], args);
        int code = process.WaitForExitAsync(TimeSpan.FromMinutes(3)).GetAwaiter().GetResult();
        return (code, process.Output);
    }

    private static (int ExitCode, string Output) Python(string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(PyTorchFactAttribute.Python, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "timed out after 2 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static string Repository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoCo.Actors.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no MoCo.Actors.sln above {AppContext.BaseDirectory}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
