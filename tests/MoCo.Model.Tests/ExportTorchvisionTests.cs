using System.Collections.Specialized;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MoCo.Model.Checkpoints;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// Loads our exports in real PyTorch (Debian's python3-torch and python3-torchvision, run with
/// /usr/bin/python3) through tests/python/check_export.py. Skipped outside CI when PyTorch is missing (saying how to
/// install it), failed in CI (.ci/run installs it): <see cref="PyTorchFactAttribute"/>.
/// </summary>
public sealed class ExportTorchvisionTests : IDisposable
{
    private const string Python = PyTorchFactAttribute.Python;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(25);

    private readonly string _dir = Directory.CreateTempSubdirectory("moco-export-py-").FullName;
    private readonly ITestOutputHelper _output;

    /// <summary>xunit gives the output sink; the script's report lands there.</summary>
    public ExportTorchvisionTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [PyTorchFact]
    public void Export_loads_strictly_in_torchvision()
    {
        var probe = Run(Python, ["-c", "import torch, torchvision"], TimeSpan.FromSeconds(20));
        Assert.True(probe.ExitCode == 0, $"{PyTorchFactAttribute.HowToInstall}. Probe said: {probe.Output}");

        var clock = Stopwatch.StartNew();
        var cases = new JsonArray();
        // our own encoders, with BN statistics moved off their defaults so that eval-mode outputs test them too
        using var imagenet = OurResNet(cifarStem: false, seed: 11);
        using var cifar = OurResNet(cifarStem: true, seed: 13);
        cases.Add(WriteCase("resnet18-backbone.pth", imagenet, cifarStem: false, "mlp", new PyTorchExportOptions(), seed: 11));
        cases.Add(WriteCase("resnet18-detectron2.pth", imagenet, cifarStem: false, "mlp",
            new PyTorchExportOptions { Detectron2Names = true }, seed: 12));
        cases.Add(WriteCase("resnet18-cifar-mlp.pth", cifar, cifarStem: true, "mlp",
            new PyTorchExportOptions { IncludeHead = true }, seed: 13));
        cases.Add(WriteCase("resnet18-backbone.safetensors", imagenet, cifarStem: false, "mlp",
            new PyTorchExportOptions { Format = ExportFormat.Safetensors }, seed: 14));
        // the official converter keeps the head (as stem.fc.*): so does this case
        cases.Add(WriteCase("resnet18-detectron2-converter.pkl", imagenet, cifarStem: false, "mlp",
            new PyTorchExportOptions { Format = ExportFormat.Detectron2Pkl, IncludeHead = true }, seed: 15));
        File.WriteAllText(Path.Combine(_dir, "manifest.json"), new JsonObject { ["cases"] = cases }.ToJsonString());

        _output.WriteLine($"C# export of 5 ResNet-18 files: {clock.Elapsed.TotalSeconds:F1} s");
        clock.Restart();
        var check = Run(Python, [Path.Combine(RepoRoot(), "tests", "python", "check_export.py"), _dir], s_timeout);
        _output.WriteLine($"check_export.py: {clock.Elapsed.TotalSeconds:F1} s\n{check.Output}");
        Assert.True(check.ExitCode == 0, $"check_export.py failed (exit {check.ExitCode}):\n{check.Output}");
        Assert.Equal(5, check.Output.Split('\n').Count(l => l.StartsWith("OK ", StringComparison.Ordinal)));
    }

    /// <summary>Exports <paramref name="stateDict"/> (a full-width ResNet-18) and writes its manifest entry and its input/expected stem output.</summary>
    private JsonObject WriteCase(string file, MoCo.Model.Nn.ResNet net, bool cifarStem, string head,
        PyTorchExportOptions options, long seed)
    {
        var stateDict = net.TorchvisionStateDict(withHead: true);
        PyTorchExport.Save(Path.Combine(_dir, file), stateDict, options);

        var tensors = new JsonObject();
        foreach (var (name, tensor) in PyTorchExport.Map(stateDict, options.Format == ExportFormat.Detectron2Pkl ? options with { Detectron2Names = true } : options))
        {
            using var contiguous = tensor.contiguous();
            tensors[name] = new JsonObject
            {
                ["dtype"] = tensor.dtype == ScalarType.Int64 ? "int64" : "float32",
                ["shape"] = new JsonArray(tensor.shape.Select(d => (JsonNode)d).ToArray()),
                ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(contiguous.bytes)),
            };
        }

        string expected = Path.ChangeExtension(file, ".io.pth");
        WriteExpectation(Path.Combine(_dir, expected), net, stateDict.ToDictionary(p => p.Key, p => p.Value), cifarStem, options.IncludeHead, seed);

        var outputs = stateDict.FirstOrDefault(p => p.Key is "fc.weight" or "fc.2.weight").Value?.shape[0] ?? 0;
        return new JsonObject
        {
            ["file"] = file,
            ["expected"] = expected,
            ["arch"] = "resnet18",
            ["cifar_stem"] = cifarStem,
            ["head"] = options.IncludeHead ? head : "none",
            ["outputs"] = outputs,
            ["names"] = options.Detectron2Names || options.Format == ExportFormat.Detectron2Pkl ? "detectron2" : "torchvision",
            ["format"] = options.Format switch { ExportFormat.Safetensors => "safetensors", ExportFormat.Detectron2Pkl => "detectron2-pkl", _ => "pth" },
            ["tensors"] = tensors,
        };
    }

    /// <summary>A full-width ResNet-18 of ours with an MLP head and non-default BN running statistics.</summary>
    private static MoCo.Model.Nn.ResNet OurResNet(bool cifarStem, long seed)
    {
        torch.random.manual_seed(seed);
        var net = new MoCo.Model.Nn.ResNet(new MoCo.Model.Nn.EncoderSpec("resnet18", 64, cifarStem ? MoCo.Model.Nn.Stem.Cifar : MoCo.Model.Nn.Stem.ImageNet, 128, true, 1));
        using (torch.no_grad())
        {
            foreach (var bn in net.Norms)
            {
                bn.RunningMean.uniform_(-0.1, 0.1);
                bn.RunningVar.uniform_(0.5, 1.5);
            }
        }
        net.eval();
        return net;
    }

    /// <summary>
    /// relu(bn1(conv1(x))) and our encoder's whole eval-mode output (the head's, or the pooled backbone features
    /// when the head is dropped), computed here, for the script to compare with torchvision's.
    /// </summary>
    private static void WriteExpectation(string path, MoCo.Model.Nn.ResNet net, Dictionary<string, Tensor> sd, bool cifarStem, bool withHead, long seed)
    {
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator((ulong)seed + 1000);
        long size = cifarStem ? 32 : 64;
        var x = torch.randn([2, 3, size, size], generator: generator);
        long stride = cifarStem ? 1 : 2;
        long padding = cifarStem ? 1 : 3;
        var conv = nn.functional.conv2d(x, sd["conv1.weight"], null, [stride, stride], [padding, padding]);
        var bn = nn.functional.batch_norm(conv, sd["bn1.running_mean"], sd["bn1.running_var"], sd["bn1.weight"], sd["bn1.bias"],
            training: false, momentum: 0.1, eps: 1e-5);
        var stem = nn.functional.relu(bn);
        var output = withHead ? net.forward(x) : net.Backbone(x);
        var io = new OrderedDictionary { ["input"] = x, ["stem"] = stem, ["output"] = output };
        using var stream = File.Create(path);
        PyTorchPickler.PickleStateDict(stream, io, leaveOpen: true);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "tests", "python", "check_export.py")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No tests/python/check_export.py above {AppContext.BaseDirectory}.");
    }

    private static (int ExitCode, string Output) Run(string program, string[] arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        try
        {
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"timed out after {timeout.TotalSeconds} s\n{stdout.Result}{stderr.Result}");
            }
            return (process.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"{program} could not be started: {e.Message}");
        }
    }
}
