using System.CommandLine;
using System.Text.Json;
using MoCo.Actors.Persistence;
using MoCo.Host.Commands;
using MoCo.Host.History;
using MoCo.Model.Training;

namespace MoCo.Host.Tests;

/// <summary><c>moco runs</c>, <c>history</c> and <c>replay</c> against a journal written by the recorder.</summary>
public sealed class HistoryCommandsTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly JournalFixture _journal = new();

    [Fact]
    public async Task History_json_must_hold_generations_membership_epochs_and_checkpoints()
    {
        await _journal.WriteAsync(("alpha", JournalFixture.Script("alpha")));

        var (code, output) = Invoke("history", _journal.Directory, "--json");

        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal("alpha", root.GetProperty("runId").GetString());
        Assert.Equal("Completed", root.GetProperty("status").GetString());
        Assert.Equal(250, root.GetProperty("lastStep").GetInt64());

        var generations = root.GetProperty("generations").EnumerateArray().ToList();
        Assert.Equal([1, 2], generations.Select(g => g.GetProperty("generation").GetInt32()));
        Assert.Equal([0L, 100L], generations.Select(g => g.GetProperty("step").GetInt64()));
        Assert.Equal(["w0", "w1"], generations[0].GetProperty("ranks").EnumerateArray().Select(w => w.GetProperty("workerId").GetString()));
        Assert.Equal(["w0"], generations[1].GetProperty("ranks").EnumerateArray().Select(w => w.GetProperty("workerId").GetString()));

        var membership = root.GetProperty("membership").EnumerateArray().ToList();
        Assert.Equal(["joined", "joined", "left"], membership.Select(m => m.GetProperty("change").GetString()));
        Assert.Equal("node-b unreachable", membership[2].GetProperty("reason").GetString());

        var epochs = root.GetProperty("epochs").EnumerateArray().ToList();
        Assert.Equal([0, 1], epochs.Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.Equal([100L, 150L], epochs.Select(e => e.GetProperty("steps").GetInt64()));
        Assert.Equal(7.125, epochs[0].GetProperty("loss").GetDouble());
        Assert.Equal(JsonValueKind.Null, epochs[0].GetProperty("knnTop1").ValueKind);
        Assert.Equal(0.35, epochs[1].GetProperty("knnTop1").GetDouble());

        var checkpoint = Assert.Single(root.GetProperty("checkpoints").EnumerateArray());
        Assert.Equal("/runs/alpha/ckpt-0.pt", checkpoint.GetProperty("path").GetString());
        Assert.Equal(new string('e', 64), checkpoint.GetProperty("sha256").GetString());
        Assert.Empty(root.GetProperty("failures").EnumerateArray());
        Assert.Equal(10, root.GetProperty("events").GetArrayLength());
    }

    [Fact]
    public async Task History_tables_must_name_the_run_and_its_parts()
    {
        await _journal.WriteAsync(("alpha", JournalFixture.Script("alpha")));

        var (code, output) = Invoke("history", Path.Combine(_journal.Directory, RunJournal.DatabaseFileName), "--run", "alpha");

        Assert.Equal(0, code);
        Assert.Contains("run alpha: Completed", output);
        foreach (var title in new[] { "generations", "membership", "epochs", "checkpoints", "node-b unreachable", "ckpt-0.pt" })
        {
            Assert.Contains(title, output);
        }
    }

    [Fact]
    public async Task Replay_must_rebuild_metrics_csv_and_three_png_plots()
    {
        await _journal.WriteAsync(("alpha", JournalFixture.Script("alpha")));
        var outDir = Path.Combine(_journal.Directory, "replay");

        var (code, _) = Invoke("replay", _journal.Directory, "--run", "alpha", "--out", outDir);

        Assert.Equal(0, code);
        string[] expected =
        [
            MetricsCsv.Header,
            "0,100,7.125,0.40625,0.03,,,10.50,1500.4,,",
            "1,150,6.5,0.5,0.015,35.00,65.00,9.75,1612.5,,",
        ];
        Assert.Equal(expected, await File.ReadAllLinesAsync(Path.Combine(outDir, "metrics.csv")));
        foreach (var plot in new[] { MetricsReplay.LossPlot, MetricsReplay.LearningRatePlot, MetricsReplay.KnnPlot })
        {
            var bytes = await File.ReadAllBytesAsync(Path.Combine(outDir, plot));
            Assert.True(bytes.Length > 1000, $"{plot} has only {bytes.Length} bytes");
            Assert.Equal(PngSignature, bytes[..8]);
        }
    }

    [Fact]
    public async Task Runs_must_list_every_run_and_history_must_ask_for_one()
    {
        await _journal.WriteAsync(("alpha", JournalFixture.Script("alpha")), ("beta", JournalFixture.Script("beta").Take(5).ToList()));

        var (code, output) = Invoke("runs", _journal.Directory);
        Assert.Equal(0, code);
        Assert.Contains("alpha", output);
        Assert.Contains("beta", output);
        Assert.Contains("Completed", output);
        Assert.Contains("Running", output);

        var ambiguous = Assert.Throws<HistoryError>(() => Invoke("history", _journal.Directory));
        Assert.Contains("2 runs (alpha, beta)", ambiguous.Message);
        Assert.Contains("--run", ambiguous.Message);

        var unknown = Assert.Throws<HistoryError>(() => Invoke("history", _journal.Directory, "--run", "gamma"));
        Assert.Contains("No run 'gamma'", unknown.Message);
        Assert.DoesNotContain('\n', unknown.Message);
    }

    [Fact]
    public void A_missing_journal_must_be_a_clear_error()
    {
        var missing = Path.Combine(_journal.Directory, "nowhere");

        var error = Assert.Throws<FileNotFoundException>(() => Invoke("runs", missing));

        Assert.Contains("No run journal at", error.Message);
        Assert.Throws<FileNotFoundException>(() => Invoke("history", _journal.Directory));
    }

    [Theory]
    [InlineData("Host=db;Database=moco", true)]
    [InlineData("postgres://u:p@db:5433/moco", true)]
    [InlineData("postgresql://db/moco", true)]
    [InlineData("runs/r1", false)]
    [InlineData("/tmp/Host=x/journal.db", false)]
    public void Journal_argument_must_tell_postgres_from_a_path(string journal, bool postgres)
    {
        Assert.Equal(postgres, RunJournal.IsPostgreSqlConnectionString(journal));
    }

    [Fact]
    public void A_postgres_uri_must_become_an_npgsql_connection_string()
    {
        var cs = RunJournal.NormalizePostgreSqlConnectionString("postgres://moco:p%40ss@db.local:5433/runs");

        Assert.Contains("Host=db.local", cs);
        Assert.Contains("Port=5433", cs);
        Assert.Contains("Database=runs", cs);
        Assert.Contains("Username=moco", cs);
        Assert.Contains("Password=p@ss", cs);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _journal.Dispose();
    }

    private static (int Code, string Output) Invoke(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(HistoryCommands.CreateRuns());
        root.Subcommands.Add(HistoryCommands.CreateHistory());
        root.Subcommands.Add(HistoryCommands.CreateReplay());
        var output = new StringWriter();
        var code = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = output, EnableDefaultExceptionHandler = false });
        return (code, output.ToString());
    }
}
