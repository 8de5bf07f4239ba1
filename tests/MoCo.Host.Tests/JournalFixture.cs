using Akka.Actor;
using Akka.Configuration;
using Microsoft.Data.Sqlite;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;

namespace MoCo.Host.Tests;

/// <summary>
/// A run directory whose <see cref="RunJournal.DatabaseFileName"/> holds runs written through the real recorder,
/// then closed, as a finished training process leaves it.
/// </summary>
public sealed class JournalFixture : IDisposable
{
    /// <summary>The first worker.</summary>
    public static readonly WorkerInfo W0 = new("w0", "node-a", "cpu");

    /// <summary>The second worker.</summary>
    public static readonly WorkerInfo W1 = new("w1", "node-b", "cuda:0");

    /// <summary>Creates an empty run directory under the temporary folder.</summary>
    public JournalFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "moco-host-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    /// <summary>The run directory.</summary>
    public string Directory { get; }

    /// <summary>The metrics of the first epoch (no kNN monitor).</summary>
    public static EpochMetrics Epoch0 { get; } = new(7.125, 0.40625, 0.03, null, null, 10.5, 1500.375);

    /// <summary>The metrics of the second epoch (with the kNN monitor).</summary>
    public static EpochMetrics Epoch1 { get; } = new(6.5, 0.5, 0.015, 0.35, 0.65, 9.75, 1612.5);

    /// <summary>A short, valid run: two workers, an epoch, a checkpoint, one leaves, a second epoch, done.</summary>
    /// <param name="runId">The run.</param>
    public static IReadOnlyList<RunRecorder.ICommand> Script(string runId)
    {
        return
        [
            new RunRecorder.StartRun(runId, "{\"epochs\":2,\"batch\":256}"),
            new RunRecorder.JoinWorker(W0),
            new RunRecorder.JoinWorker(W1),
            new RunRecorder.StartGeneration([W0, W1], 0),
            new RunRecorder.RecordEpoch(0, 100, Epoch0),
            new RunRecorder.RecordCheckpoint($"/runs/{runId}/ckpt-0.pt", new string('e', 64), 0, 100),
            new RunRecorder.LeaveWorker("w1", "node-b unreachable"),
            new RunRecorder.StartGeneration([W0], 100),
            new RunRecorder.RecordEpoch(1, 250, Epoch1),
            new RunRecorder.CompleteRun(250),
        ];
    }

    /// <summary>Writes each run's commands through its recorder on the SQLite journal, then stops the system.</summary>
    /// <param name="runs">Run id → commands.</param>
    public async Task WriteAsync(params (string RunId, IReadOnlyList<RunRecorder.ICommand> Commands)[] runs)
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING")
            .WithFallback(RunJournal.Sqlite(Path.Combine(Directory, RunJournal.DatabaseFileName)));
        var system = ActorSystem.Create("moco-host-test", config);
        try
        {
            foreach (var (runId, commands) in runs)
            {
                var recorder = system.ActorOf(RunRecorderActor.Props(runId), "run-recorder-" + runId);
                foreach (var command in commands)
                {
                    var reply = await recorder.Ask<object>(command, TimeSpan.FromSeconds(10));
                    Assert.IsType<RunRecorder.Ack>(reply);
                }
            }
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a pooled connection stays in the temporary folder; nothing depends on it.
        }
    }
}
