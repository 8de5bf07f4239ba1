using System.Text.Json;
using Xunit.Abstractions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>
/// The <c>moco</c> processes of one test and the folder they write in: every process is killed when the test ends, also
/// on failure, its output is written to the test's log, and the folder is deleted.
/// </summary>
public sealed class MocoProcessGroup(ITestOutputHelper output, string prefix) : IDisposable
{
    private readonly List<MocoProcess> _processes = [];

    /// <summary>A fresh folder under the temporary directory for this test's runs.</summary>
    public string Directory { get; } = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));

    private string? _certificate;

    /// <summary>
    /// This test's cluster certificate (made on first use, in <see cref="Directory"/>): every process of the group gets it
    /// through MOCO_CLUSTER_CERTIFICATE unless its environment names another (or none, with an empty value).
    /// </summary>
    public string Certificate
    {
        get
        {
            if (_certificate is null)
            {
                System.IO.Directory.CreateDirectory(Directory);
                var path = Path.Combine(Directory, "cluster.pem");
                var (pem, certificate) = MoCo.Host.Hosting.ClusterCertificate.Create("moco-test-cluster", 90);
                certificate.Dispose();
                File.WriteAllText(path, pem);
                _certificate = path;
            }

            return _certificate;
        }
    }

    /// <summary>Starts <c>moco</c> with <paramref name="args"/> and an environment of its own.</summary>
    public MocoProcess Start(string name, string[] args, params (string, string)[] environment)
    {
        if (!environment.Any(e => e.Item1 == MoCo.Host.Hosting.ClusterCertificate.Variable))
        {
            environment = [.. environment, (MoCo.Host.Hosting.ClusterCertificate.Variable, Certificate)];
        }

        var process = MocoProcess.Start(name, args, environment);
        _processes.Add(process);
        return process;
    }

    /// <summary>The journal of the run in <paramref name="runDirectory"/>, as <c>moco history --json</c> prints it.</summary>
    public JsonElement History(string runDirectory)
    {
        var history = Start("history", ["history", runDirectory, "--json"]);
        Assert.Equal(0, history.WaitForExitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult());
        return JsonDocument.Parse(history.Output).RootElement.Clone();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        foreach (var process in _processes)
        {
            output.WriteLine($"--- {process.Name}\n{process.Output}");
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
