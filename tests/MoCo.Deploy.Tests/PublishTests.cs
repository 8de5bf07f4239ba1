namespace MoCo.Deploy.Tests;

/// <summary>
/// build/publish.sh, the script whose output the Dockerfiles copy, run into a temporary folder; the published
/// self-contained <c>moco</c> then trains the quickstart briefly from another folder (no repository around it).
/// </summary>
public sealed class PublishTests
{
    [Fact]
    public void Published_moco_trains_the_quickstart()
    {
        var temp = Directory.CreateTempSubdirectory("moco-publish-");
        try
        {
            var output = Path.Combine(temp.FullName, "moco");
            var publish = ProcessRunner.Run("bash", [Repository.PathOf("build", "publish.sh"), "--variant", "cpu", output], Repository.Root, TimeSpan.FromMinutes(10));
            Assert.True(publish.ExitCode == 0, $"build/publish.sh failed ({publish.ExitCode}):\n{publish.Tail()}");
            foreach (var file in new[] { "moco", "libLibTorchSharp.so", "libtorch_cpu.so", "hocon/quickstart.conf", "hocon/kubernetes.conf" })
            {
                Assert.True(File.Exists(Path.Combine(output, file)), $"the published output lacks {file}");
            }
            Assert.False(File.Exists(Path.Combine(output, "hocon", "kustomization.yaml")), "hocon/kustomization.yaml is for kustomize, not the host");

            var work = Directory.CreateDirectory(Path.Combine(temp.FullName, "work")).FullName;
            var help = ProcessRunner.Run(Path.Combine(output, "moco"), ["--help"], work, TimeSpan.FromMinutes(1));
            Assert.True(help.ExitCode == 0 && help.Output.Contains("train"), $"moco --help (the image's default command) failed:\n{help.Tail()}");

            // 256 synthetic images, batch 64: 4 steps an epoch, 2 epochs, the kNN monitor after each
            var runDir = Path.Combine(work, "run");
            var train = ProcessRunner.Run(Path.Combine(output, "moco"),
                ["train", "--data", "synthetic:256", "--epochs", "2", "--batch-size", "64", "--knn-at-start", "false", "--threads", "2", "--run-dir", runDir],
                work, TimeSpan.FromMinutes(5));
            Assert.True(train.ExitCode == 0, $"the published moco failed to train ({train.ExitCode}):\n{train.Tail()}");
            Assert.Contains("done: 8 steps", train.Output);
            var rows = File.ReadAllLines(Path.Combine(runDir, "metrics.csv"));
            Assert.Equal(3, rows.Length); // header and two epochs
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(runDir, "checkpoints")));
            Assert.True(File.Exists(Path.Combine(runDir, "journal.db")), "the run's journal was not written");
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    [Fact]
    public void Publish_script_refuses_an_unknown_variant_and_a_full_folder()
    {
        var temp = Directory.CreateTempSubdirectory("moco-publish-");
        try
        {
            var variant = ProcessRunner.Run("bash", [Repository.PathOf("build", "publish.sh"), "--variant", "rocm", temp.FullName], Repository.Root, TimeSpan.FromMinutes(1));
            Assert.Equal(2, variant.ExitCode);
            Assert.Contains("--variant must be cpu or cuda, not 'rocm'", variant.Output);
            File.WriteAllText(Path.Combine(temp.FullName, "old"), "");
            var full = ProcessRunner.Run("bash", [Repository.PathOf("build", "publish.sh"), temp.FullName], Repository.Root, TimeSpan.FromMinutes(1));
            Assert.Equal(2, full.ExitCode);
            Assert.Contains("is not empty", full.Output);
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("cpu", "libtorch-cpu-linux-x64", "TorchSharp-cuda-linux")]
    [InlineData("cuda", "TorchSharp-cuda-linux", "libtorch-cpu-linux-x64")]
    public void Torch_backend_property_selects_the_native_package(string backend, string present, string absent)
    {
        // evaluation only (no restore): TorchSharp-cuda-linux is not on every NuGet feed this repository builds from
        var result = ProcessRunner.Run("dotnet", ["msbuild", Repository.PathOf("src", "Model", "MoCo.Model.csproj"), "-getItem:PackageReference", $"-p:MoCoTorchBackend={backend}"],
            Repository.Root, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.Tail());
        Assert.Contains($"\"Identity\": \"{present}\"", result.Output);
        Assert.DoesNotContain($"\"Identity\": \"{absent}\"", result.Output);
        Assert.Contains("\"Identity\": \"TorchSharp\"", result.Output);
    }
}
